//! Engine error type. Every variant carries the context an operator needs (partition, offset, path), and I/O
//! errors keep their source. Only `net` maps these to Kafka error codes.

use std::path::PathBuf;

use crate::types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId};

/// The most record errors one refused append reports: a batch decompressing to millions of keyless records
/// must not make a response of millions of entries. librdkafka's largest default batch (`batch.num.messages`)
/// fits whole.
pub const RECORD_ERRORS_MAX: usize = 10_000;

/// Why a record batch was refused. Each reason maps to one Kafka error code in `net`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch is truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("batch length field {batch_length} is invalid")]
    InvalidLength { batch_length: i32 },
    #[error("unsupported record batch magic {magic} (only v2 is accepted)")]
    UnsupportedMagic { magic: i8 },
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    #[error("invalid record batch: {reason}")]
    Invalid { reason: &'static str },
    /// The records do not decompress with the batch's codec (only decompressed to recompress them for a topic
    /// whose `compression.type` names another codec).
    #[error("{codec} records do not decompress: {reason}")]
    Decompress { codec: &'static str, reason: String },
    /// The records decompress to more than the engine allows (a compression bomb, or a batch far larger than
    /// any client builds).
    #[error("{codec} records decompress to more than {max_bytes} bytes")]
    DecompressedTooLarge { codec: &'static str, max_bytes: usize },
    /// Records without a key, for a compacted topic (Kafka's "Compacted topic cannot accept message without
    /// key"). `record_indexes` are the positions of the first of them (at most [`RECORD_ERRORS_MAX`]) among the
    /// records of the append, counted from 0 across its batches: what Kafka's Produce response lists as record
    /// errors, so that a client fails exactly those records and tells the others they were only caught in the
    /// same batch.
    #[error("a compacted topic cannot accept a record without a key: {count} record(s) have none")]
    MissingKey { count: usize, record_indexes: Vec<u32> },
}

/// Errors from the producer-state checks of idempotent and transactional producers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id:?} epoch {epoch:?} is fenced by epoch {current:?}")]
    Fenced { producer_id: ProducerId, epoch: ProducerEpoch, current: ProducerEpoch },
    #[error("out of order sequence for producer {producer_id:?}: got {first_sequence}, expected {expected}")]
    OutOfOrder { producer_id: ProducerId, first_sequence: i32, expected: i32 },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("partition {partition}: batch at byte {position} rejected: {source}")]
    Batch {
        partition: String,
        position: usize,
        #[source]
        source: BatchError,
    },
    #[error("partition {partition}: {source}")]
    Sequence {
        partition: String,
        #[source]
        source: SequenceError,
    },
    /// A leader append in an epoch older than the log's latest: the caller acted on a stale view of the
    /// partition (leader epochs never decrease along a log).
    #[error("partition {partition}: append in leader epoch {epoch:?}, older than the log's latest epoch {latest:?}")]
    StaleLeaderEpoch { partition: String, epoch: LeaderEpoch, latest: LeaderEpoch },
    #[error("partition {partition}: offset {offset:?} is out of range [{log_start:?}, {log_end:?}]")]
    OffsetOutOfRange { partition: String, offset: Offset, log_start: Offset, log_end: Offset },
    #[error("partition {partition} is offline: {reason}")]
    Offline { partition: String, reason: String },
    /// The log was closed (its partition deleted, moved away or the shard stopping) while the caller held it:
    /// nothing more is written to it, and the caller's view of the partition is stale.
    #[error("partition {partition}: the log is closed")]
    Closed { partition: String },
    #[error("partition {partition} is poisoned after a failed {operation}; it refuses writes until restart")]
    Poisoned { partition: String, operation: &'static str },
    #[error("partition {partition} is corrupt at {path}:{position}: {reason}")]
    Corrupt { partition: String, path: PathBuf, position: u64, reason: String },
    #[error("{operation} failed on {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("partition {0} already exists")]
    AlreadyExists(String),
    #[error("partition {0} does not exist")]
    UnknownPartition(String),
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig { key: String, value: String, reason: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl EngineError {
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io { operation, path: path.into(), source }
    }

    pub(crate) fn glommio(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: glommio::GlommioError<()>,
    ) -> Self {
        EngineError::Io { operation, path: path.into(), source: source.into() }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
