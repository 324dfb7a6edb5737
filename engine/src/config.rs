//! Per-log settings, named after Kafka's topic configs. The broker resolves topic overrides over broker
//! defaults and hands the engine a finished `LogConfig`; configs may change at run time (`PartitionLog::
//! set_config`).

use std::time::Duration;

use crate::batch::Compression;
use crate::error::{EngineError, Result};

/// When appended data is fsynced. DESIGN.md §3: `always` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is covered by the shard's next group commit; "durable" means fsynced.
    Always,
    /// Fsync after `flush_messages` records or `flush_interval` (Kafka's `flush.messages`/`flush.ms`);
    /// "durable" means written to the page cache.
    Interval { flush_messages: u64, flush_interval: Duration },
    /// Never fsync on the append path; replication provides durability. Segments are still fsynced when they
    /// roll and at shutdown.
    ReplicationOnly,
}

impl FlushPolicy {
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "always" => Ok(FlushPolicy::Always),
            "interval" => {
                Ok(FlushPolicy::Interval { flush_messages: u64::MAX, flush_interval: Duration::from_millis(1000) })
            }
            "replication-only" => Ok(FlushPolicy::ReplicationOnly),
            other => Err(EngineError::InvalidConfig {
                key: "flush.policy".into(),
                value: other.into(),
                reason: "expected always, interval or replication-only".into(),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FlushPolicy::Always => "always",
            FlushPolicy::Interval { .. } => "interval",
            FlushPolicy::ReplicationOnly => "replication-only",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `compression.type`: how client batches are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// As the producer compressed them (`producer`): never decompressed.
    #[default]
    Producer,
    /// In this codec (`uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`): a client batch in another codec is
    /// recompressed when it is appended (`codec.rs`); one already in it is stored as sent.
    Codec(Compression),
}

impl TopicCompression {
    /// Kafka's `compression.type` values.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim() {
            "producer" => TopicCompression::Producer,
            "uncompressed" => TopicCompression::Codec(Compression::None),
            "gzip" => TopicCompression::Codec(Compression::Gzip),
            "snappy" => TopicCompression::Codec(Compression::Snappy),
            "lz4" => TopicCompression::Codec(Compression::Lz4),
            "zstd" => TopicCompression::Codec(Compression::Zstd),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older; negative keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger; negative is unbounded.
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    pub flush_policy: FlushPolicy,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `producer.id.expiration.ms` (a broker key): a producer id whose last batch is older than this is forgotten
    /// (`crate::producer`), so producer state stays bounded.
    pub producer_id_expiration_ms: i64,
    /// `compression.type`.
    pub compression: TopicCompression,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            flush_policy: FlushPolicy::Always,
            timestamp_type: TimestampType::CreateTime,
            producer_id_expiration_ms: 86_400_000,
            compression: TopicCompression::Producer,
        }
    }
}
