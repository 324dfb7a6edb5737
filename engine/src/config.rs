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

/// `cleanup.policy`: what removes old records. Kafka's list of `delete` and `compact`; an empty list removes
/// nothing but what DeleteRecords cuts off (Kafka 4.1+'s "delete with infinite retention").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: retention by time and size.
    pub delete: bool,
    /// `compact`: keep the latest record per key (log compaction, `crate::clean`).
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy { delete: true, compact: false };

    /// Kafka's comma-separated list; unknown items are ignored (the config registry refuses them first).
    pub fn parse(value: &str) -> CleanupPolicy {
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        CleanupPolicy { delete: items.contains(&"delete"), compact: items.contains(&"compact") }
    }
}

/// Log compaction's settings: the topic's (`min.cleanable.dirty.ratio`, `delete.retention.ms`,
/// `min.compaction.lag.ms`, `max.compaction.lag.ms`) and the broker's cleaner keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`: clean once the dirty bytes are this share of the cleanable log.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaner first reached it.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: a record is not cleaned before it is this old.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log with dirty records this old is cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `log.cleaner.enable`.
    pub cleaner_enabled: bool,
    /// `log.cleaner.threads`; Sluice's meaning: logs one shard cleans at once.
    pub cleaner_threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: the offset maps' bytes for the whole broker, divided among the shards
    /// and their cleanings.
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second` for one cleaning (bytes read and written).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: how long a shard's cleaner sleeps when no log needs cleaning.
    pub backoff_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            cleaner_enabled: true,
            cleaner_threads: 1,
            dedupe_buffer_bytes: 128 << 20,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
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
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    pub compaction: CompactionConfig,
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
            cleanup_policy: CleanupPolicy::DELETE,
            compaction: CompactionConfig::default(),
        }
    }
}
