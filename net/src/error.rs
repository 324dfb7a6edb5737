//! Kafka error codes: the one place where Sluice errors become Kafka's.
//!
//! Handlers never pick a numeric code themselves; they call [`engine_error_code`] or name a
//! [`ResponseError`] variant. Codes come from kafka-protocol's table, which follows Apache Kafka's `Errors`.

pub use kafka_protocol::error::ResponseError;
use sluice_engine::{BatchError, EngineError, SequenceError};
use sluice_replication::config::ConfigError;
use sluice_replication::controller::ControllerError;

/// No error.
pub const NONE: i16 = 0;

pub fn code(error: ResponseError) -> i16 {
    error.code()
}

/// The Kafka error for an engine error, as a produce, fetch or admin response carries it.
pub fn engine_error(error: &EngineError) -> ResponseError {
    match error {
        EngineError::Batch { source, .. } => match source {
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
            BatchError::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat,
            BatchError::CrcMismatch { .. } | BatchError::Truncated { .. } | BatchError::InvalidLength { .. } => {
                ResponseError::CorruptMessage
            }
            BatchError::Invalid { .. } => ResponseError::InvalidRecord,
        },
        EngineError::Sequence { source, .. } => match source {
            SequenceError::Fenced { .. } => ResponseError::InvalidProducerEpoch,
            SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
        },
        EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // The request acted on a metadata image older than the log: the client refreshes and retries.
        EngineError::StaleLeaderEpoch { .. } => ResponseError::NotLeaderOrFollower,
        EngineError::Offline { .. }
        | EngineError::Poisoned { .. }
        | EngineError::Corrupt { .. }
        | EngineError::Io { .. } => ResponseError::KafkaStorageError,
        EngineError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        EngineError::UnknownPartition(_) => ResponseError::UnknownTopicOrPartition,
        EngineError::InvalidConfig { .. } => ResponseError::InvalidConfig,
        EngineError::InvalidRequest(_) => ResponseError::InvalidRequest,
    }
}

pub fn engine_error_code(error: &EngineError) -> i16 {
    engine_error(error).code()
}

pub fn config_error(error: &ConfigError) -> ResponseError {
    match error {
        ConfigError::UnknownKey(_) | ConfigError::InvalidValue { .. } | ConfigError::Syntax { .. } => {
            ResponseError::InvalidConfig
        }
        ConfigError::NotDynamic(_) => ResponseError::InvalidRequest,
    }
}

pub fn controller_error(error: &ControllerError) -> ResponseError {
    match error {
        ControllerError::Engine(inner) => match engine_error(inner) {
            ResponseError::KafkaStorageError => ResponseError::KafkaStorageError,
            _ => ResponseError::UnknownServerError,
        },
        ControllerError::Corrupt { .. } => ResponseError::KafkaStorageError,
        ControllerError::Closed => ResponseError::NotController,
    }
}

/// Connection-level failures: the connection is closed and the reason logged.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("frame of {declared} bytes exceeds socket.request.max.bytes {limit}")]
    FrameTooLarge { declared: i64, limit: usize },
    #[error("malformed request (api key {api_key}, version {api_version}): {reason}")]
    Malformed { api_key: i16, api_version: i16, reason: String },
    #[error("connection idle for longer than connections.max.idle.ms")]
    Idle,
    #[error("socket {operation}: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}
