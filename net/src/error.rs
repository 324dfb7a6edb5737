//! Kafka error codes: the one place where Sluice errors become Kafka's.
//!
//! Handlers never pick a numeric code themselves; they call [`engine_error_code`] or name a
//! [`ResponseError`] variant. Codes come from kafka-protocol's table, which follows Apache Kafka's `Errors`.

pub use kafka_protocol::error::ResponseError;
use sluice_engine::{BatchError, EngineError, SequenceError};
use sluice_replication::config::ConfigError;
use sluice_replication::controller::commands::{AdminError, AdminErrorKind};
use sluice_replication::replica::ReplicaError;

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
            BatchError::CrcMismatch { .. }
            | BatchError::Truncated { .. }
            | BatchError::InvalidLength { .. }
            | BatchError::Decompress { .. }
            | BatchError::DecompressedTooLarge { .. } => ResponseError::CorruptMessage,
            BatchError::Invalid { .. } | BatchError::MissingKey { .. } => ResponseError::InvalidRecord,
        },
        EngineError::Sequence { source, .. } => match source {
            SequenceError::Fenced { .. } => ResponseError::InvalidProducerEpoch,
            SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
        },
        EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // The request acted on a metadata image older than the log: the client refreshes and retries.
        EngineError::StaleLeaderEpoch { .. } => ResponseError::NotLeaderOrFollower,
        // The partition was deleted or moved away while the request held its log: the client's metadata is
        // stale, not the storage broken.
        EngineError::Closed { .. } => ResponseError::NotLeaderOrFollower,
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

/// The Kafka error for a controller's refusal.
pub fn admin_error(error: &AdminError) -> ResponseError {
    match error.kind {
        AdminErrorKind::TopicAlreadyExists => ResponseError::TopicAlreadyExists,
        AdminErrorKind::InvalidTopic => ResponseError::InvalidTopicException,
        AdminErrorKind::InvalidPartitions => ResponseError::InvalidPartitions,
        AdminErrorKind::InvalidReplicationFactor => ResponseError::InvalidReplicationFactor,
        AdminErrorKind::InvalidReplicaAssignment => ResponseError::InvalidReplicaAssignment,
        AdminErrorKind::InvalidConfig => ResponseError::InvalidConfig,
        AdminErrorKind::InvalidRequest => ResponseError::InvalidRequest,
        AdminErrorKind::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        AdminErrorKind::UnknownTopicId => ResponseError::UnknownTopicId,
        AdminErrorKind::TopicDeletionDisabled => ResponseError::TopicDeletionDisabled,
        // The request could not reach a controller in time: the client retries, as Kafka's do.
        AdminErrorKind::NotController | AdminErrorKind::Unavailable => ResponseError::RequestTimedOut,
        AdminErrorKind::StaleBrokerEpoch => ResponseError::StaleBrokerEpoch,
        AdminErrorKind::DuplicateBrokerRegistration => ResponseError::DuplicateBrokerRegistration,
        AdminErrorKind::InconsistentClusterId | AdminErrorKind::StaleDirectory => ResponseError::InconsistentClusterId,
        AdminErrorKind::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        AdminErrorKind::InvalidUpdateVersion => ResponseError::InvalidUpdateVersion,
        AdminErrorKind::IneligibleReplica => ResponseError::IneligibleReplica,
        AdminErrorKind::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        AdminErrorKind::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        AdminErrorKind::Storage => ResponseError::KafkaStorageError,
        AdminErrorKind::DuplicateResource => ResponseError::DuplicateResource,
        AdminErrorKind::ResourceNotFound => ResponseError::ResourceNotFound,
        AdminErrorKind::UnacceptableCredential => ResponseError::UnacceptableCredential,
    }
}

/// The Kafka error a leader answers a follower's fetch with.
pub fn replica_error(error: ReplicaError) -> ResponseError {
    match error {
        ReplicaError::NotLeader => ResponseError::NotLeaderOrFollower,
        ReplicaError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ReplicaError::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        ReplicaError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        ReplicaError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ReplicaError::Storage => ResponseError::KafkaStorageError,
        ReplicaError::Other(code) => ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
    }
}

/// What a follower makes of a leader's error code.
pub fn replica_error_from_code(code: i16) -> ReplicaError {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::NotLeaderOrFollower) => ReplicaError::NotLeader,
        Some(ResponseError::FencedLeaderEpoch) => ReplicaError::FencedLeaderEpoch,
        Some(ResponseError::UnknownLeaderEpoch) => ReplicaError::UnknownLeaderEpoch,
        Some(ResponseError::OffsetOutOfRange) => ReplicaError::OffsetOutOfRange,
        Some(ResponseError::UnknownTopicOrPartition) => ReplicaError::UnknownTopicOrPartition,
        Some(ResponseError::KafkaStorageError) => ReplicaError::Storage,
        _ => ReplicaError::Other(code),
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
    #[error(
        "no byte of a {size}-byte frame for {stalled_ms} ms while other connections waited for the request budget"
    )]
    StalledFrame { size: usize, stalled_ms: u64 },
    /// On a SASL listener, a request other than ApiVersions and the SASL exchange before it completed.
    #[error("request with api key {api_key} before SASL authentication completed")]
    Unauthenticated { api_key: i16 },
    /// The SASL exchange failed; the answer saying so was sent first.
    #[error("SASL authentication failed: {0}")]
    AuthenticationFailed(String),
    #[error("socket {operation}: {source}")]
    Io {
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}
