//! Typed keys: a broker or topic key together with the Rust type its value is read as. Each constant is
//! checked against the registry when the crate compiles, so code cannot read a key that does not exist or
//! read it as the wrong type.

use std::marker::PhantomData;

use super::registry::{ConfigKind, BROKER_CONFIGS, TOPIC_CONFIGS};

/// The Rust type a key of each kind is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Int,
    Long,
    Double,
    Bool,
    Text,
}

impl ConfigKind {
    /// The type a key of this kind is read as.
    pub const fn value_type(self) -> ValueType {
        match self {
            ConfigKind::Int { .. } => ValueType::Int,
            ConfigKind::Long { .. } => ValueType::Long,
            ConfigKind::Double { .. } => ValueType::Double,
            ConfigKind::Bool => ValueType::Bool,
            ConfigKind::Choice(_) | ConfigKind::List(_) | ConfigKind::Text | ConfigKind::ReplicaList => ValueType::Text,
        }
    }
}

/// A type a config value is read as.
pub trait ConfigValue: Sized {
    const TYPE: ValueType;
    /// The value, or `None` when the text does not parse (the caller then falls back to the default).
    fn parse(text: &str) -> Option<Self>;
}

impl ConfigValue for i32 {
    const TYPE: ValueType = ValueType::Int;
    fn parse(text: &str) -> Option<Self> {
        text.trim().parse::<i64>().ok().and_then(|value| i32::try_from(value).ok())
    }
}

impl ConfigValue for i64 {
    const TYPE: ValueType = ValueType::Long;
    fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

impl ConfigValue for f64 {
    const TYPE: ValueType = ValueType::Double;
    fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

impl ConfigValue for bool {
    const TYPE: ValueType = ValueType::Bool;
    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

impl ConfigValue for String {
    const TYPE: ValueType = ValueType::Text;
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_string())
    }
}

const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A broker key and the type its value is read as. Made only by [`BrokerKey::new`], which checks the name and
/// the type against [`BROKER_CONFIGS`] at compile time.
#[derive(Debug)]
pub struct BrokerKey<T> {
    name: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for BrokerKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for BrokerKey<T> {}

impl<T: ConfigValue> BrokerKey<T> {
    /// Panics (at compile time, for a `const`) unless `name` is a broker key whose kind reads as `T`.
    pub const fn new(name: &'static str) -> Self {
        let mut i = 0;
        while i < BROKER_CONFIGS.len() {
            if same_name(BROKER_CONFIGS[i].name, name) {
                assert!(
                    matches!(
                        (BROKER_CONFIGS[i].kind.value_type(), T::TYPE),
                        (ValueType::Int, ValueType::Int)
                            | (ValueType::Long, ValueType::Long)
                            | (ValueType::Bool, ValueType::Bool)
                            | (ValueType::Double, ValueType::Double)
                            | (ValueType::Text, ValueType::Text)
                    ),
                    "a typed broker key's type does not fit its kind in BROKER_CONFIGS"
                );
                return BrokerKey { name, value: PhantomData };
            }
            i += 1;
        }
        panic!("a typed broker key names a key that is not in BROKER_CONFIGS")
    }

    pub const fn name(self) -> &'static str {
        self.name
    }
}

/// A topic key and the type its value is read as. Made only by [`TopicKey::new`], which checks it against
/// [`TOPIC_CONFIGS`] at compile time.
#[derive(Debug)]
pub struct TopicKey<T> {
    name: &'static str,
    /// The broker key that gives the default.
    broker: BrokerKey<T>,
}

impl<T> Clone for TopicKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TopicKey<T> {}

impl<T: ConfigValue> TopicKey<T> {
    /// Panics (at compile time, for a `const`) unless `name` is a topic key whose kind reads as `T`.
    pub const fn new(name: &'static str) -> Self {
        let mut i = 0;
        while i < TOPIC_CONFIGS.len() {
            if same_name(TOPIC_CONFIGS[i].name, name) {
                assert!(
                    matches!(
                        (TOPIC_CONFIGS[i].kind.value_type(), T::TYPE),
                        (ValueType::Int, ValueType::Int)
                            | (ValueType::Long, ValueType::Long)
                            | (ValueType::Bool, ValueType::Bool)
                            | (ValueType::Double, ValueType::Double)
                            | (ValueType::Text, ValueType::Text)
                    ),
                    "a typed topic key's type does not fit its kind in TOPIC_CONFIGS"
                );
                return TopicKey { name, broker: BrokerKey::new(TOPIC_CONFIGS[i].broker_key) };
            }
            i += 1;
        }
        panic!("a typed topic key names a key that is not in TOPIC_CONFIGS")
    }

    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The broker key whose value is this key's default.
    pub const fn broker_key(self) -> BrokerKey<T> {
        self.broker
    }
}

/// The broker keys, typed: read them with [`EffectiveConfig::get`].
pub mod broker {
    use super::BrokerKey;

    pub const NUM_PARTITIONS: BrokerKey<i32> = BrokerKey::new("num.partitions");
    pub const DEFAULT_REPLICATION_FACTOR: BrokerKey<i32> = BrokerKey::new("default.replication.factor");
    pub const AUTO_CREATE_TOPICS_ENABLE: BrokerKey<bool> = BrokerKey::new("auto.create.topics.enable");
    pub const DELETE_TOPIC_ENABLE: BrokerKey<bool> = BrokerKey::new("delete.topic.enable");
    pub const LOG_CLEANUP_POLICY: BrokerKey<String> = BrokerKey::new("log.cleanup.policy");
    pub const COMPRESSION_TYPE: BrokerKey<String> = BrokerKey::new("compression.type");
    pub const LOG_CLEANER_ENABLE: BrokerKey<bool> = BrokerKey::new("log.cleaner.enable");
    pub const LOG_CLEANER_THREADS: BrokerKey<i32> = BrokerKey::new("log.cleaner.threads");
    pub const LOG_CLEANER_DEDUPE_BUFFER_SIZE: BrokerKey<i64> = BrokerKey::new("log.cleaner.dedupe.buffer.size");
    pub const LOG_CLEANER_IO_MAX_BYTES_PER_SECOND: BrokerKey<f64> =
        BrokerKey::new("log.cleaner.io.max.bytes.per.second");
    pub const LOG_CLEANER_BACKOFF_MS: BrokerKey<i64> = BrokerKey::new("log.cleaner.backoff.ms");
    pub const LOG_RETENTION_MS: BrokerKey<i64> = BrokerKey::new("log.retention.ms");
    pub const LOG_RETENTION_BYTES: BrokerKey<i64> = BrokerKey::new("log.retention.bytes");
    pub const LOG_SEGMENT_BYTES: BrokerKey<i32> = BrokerKey::new("log.segment.bytes");
    pub const LOG_ROLL_MS: BrokerKey<i64> = BrokerKey::new("log.roll.ms");
    pub const MESSAGE_MAX_BYTES: BrokerKey<i32> = BrokerKey::new("message.max.bytes");
    pub const LOG_INDEX_INTERVAL_BYTES: BrokerKey<i32> = BrokerKey::new("log.index.interval.bytes");
    pub const LOG_MESSAGE_TIMESTAMP_TYPE: BrokerKey<String> = BrokerKey::new("log.message.timestamp.type");
    pub const LOG_FLUSH_POLICY: BrokerKey<String> = BrokerKey::new("log.flush.policy");
    pub const LOG_SEGMENT_PREWRITE_BYTES: BrokerKey<i64> = BrokerKey::new("log.segment.prewrite.bytes");
    pub const LOG_FLUSH_INTERVAL_MESSAGES: BrokerKey<i64> = BrokerKey::new("log.flush.interval.messages");
    pub const LOG_FLUSH_INTERVAL_MS: BrokerKey<i64> = BrokerKey::new("log.flush.interval.ms");
    pub const MIN_INSYNC_REPLICAS: BrokerKey<i32> = BrokerKey::new("min.insync.replicas");
    pub const UNCLEAN_LEADER_ELECTION_ENABLE: BrokerKey<bool> = BrokerKey::new("unclean.leader.election.enable");
    pub const LOG_RETENTION_CHECK_INTERVAL_MS: BrokerKey<i64> = BrokerKey::new("log.retention.check.interval.ms");
    pub const PRODUCER_ID_EXPIRATION_MS: BrokerKey<i32> = BrokerKey::new("producer.id.expiration.ms");
    pub const PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS: BrokerKey<i32> =
        BrokerKey::new("producer.id.expiration.check.interval.ms");
    pub const SOCKET_REQUEST_MAX_BYTES: BrokerKey<i32> = BrokerKey::new("socket.request.max.bytes");
    pub const MAX_CONNECTIONS: BrokerKey<i32> = BrokerKey::new("max.connections");
    pub const CONNECTIONS_MAX_IDLE_MS: BrokerKey<i64> = BrokerKey::new("connections.max.idle.ms");
    pub const QUEUED_MAX_REQUESTS_PER_CONNECTION: BrokerKey<i32> = BrokerKey::new("queued.max.requests.per.connection");
    pub const QUEUED_MAX_REQUEST_BYTES: BrokerKey<i64> = BrokerKey::new("queued.max.request.bytes");
    pub const OFFSETS_RETENTION_MINUTES: BrokerKey<i32> = BrokerKey::new("offsets.retention.minutes");
    pub const OFFSETS_RETENTION_CHECK_INTERVAL_MS: BrokerKey<i64> =
        BrokerKey::new("offsets.retention.check.interval.ms");
    pub const OFFSETS_TOPIC_NUM_PARTITIONS: BrokerKey<i32> = BrokerKey::new("offsets.topic.num.partitions");
    pub const OFFSET_METADATA_MAX_BYTES: BrokerKey<i32> = BrokerKey::new("offset.metadata.max.bytes");
    pub const GROUP_INITIAL_REBALANCE_DELAY_MS: BrokerKey<i32> = BrokerKey::new("group.initial.rebalance.delay.ms");
    pub const GROUP_MIN_SESSION_TIMEOUT_MS: BrokerKey<i32> = BrokerKey::new("group.min.session.timeout.ms");
    pub const GROUP_MAX_SESSION_TIMEOUT_MS: BrokerKey<i32> = BrokerKey::new("group.max.session.timeout.ms");
    pub const GROUP_CONSUMER_SESSION_TIMEOUT_MS: BrokerKey<i32> = BrokerKey::new("group.consumer.session.timeout.ms");
    pub const GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS: BrokerKey<i32> =
        BrokerKey::new("group.consumer.heartbeat.interval.ms");
    pub const GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS: BrokerKey<i32> =
        BrokerKey::new("group.consumer.min.session.timeout.ms");
    pub const GROUP_CONSUMER_MAX_SESSION_TIMEOUT_MS: BrokerKey<i32> =
        BrokerKey::new("group.consumer.max.session.timeout.ms");
    pub const GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS: BrokerKey<i32> =
        BrokerKey::new("group.consumer.min.heartbeat.interval.ms");
    pub const GROUP_CONSUMER_MAX_HEARTBEAT_INTERVAL_MS: BrokerKey<i32> =
        BrokerKey::new("group.consumer.max.heartbeat.interval.ms");
    pub const GROUP_MAX_SIZE: BrokerKey<i32> = BrokerKey::new("group.max.size");
    pub const PROCESS_ROLES: BrokerKey<String> = BrokerKey::new("process.roles");
    pub const NODE_ID: BrokerKey<i32> = BrokerKey::new("node.id");
    pub const CONTROLLER_QUORUM_VOTERS: BrokerKey<String> = BrokerKey::new("controller.quorum.voters");
    pub const LISTENERS: BrokerKey<String> = BrokerKey::new("listeners");
    pub const ADVERTISED_LISTENERS: BrokerKey<String> = BrokerKey::new("advertised.listeners");
    pub const ADMIN_LISTENERS: BrokerKey<String> = BrokerKey::new("admin.listeners");
    pub const METRICS_PER_PARTITION_ENABLED: BrokerKey<bool> = BrokerKey::new("metrics.per.partition.enabled");
    pub const LOG_SLOW_REQUEST_MS: BrokerKey<i64> = BrokerKey::new("log.slow.request.ms");
    pub const CONTROLLER_LISTENER_NAMES: BrokerKey<String> = BrokerKey::new("controller.listener.names");
    pub const LISTENER_SECURITY_PROTOCOL_MAP: BrokerKey<String> = BrokerKey::new("listener.security.protocol.map");
    pub const INTER_BROKER_LISTENER_NAME: BrokerKey<String> = BrokerKey::new("inter.broker.listener.name");
    pub const LOG_DIRS: BrokerKey<String> = BrokerKey::new("log.dirs");
    pub const AUTHORIZER_CLASS_NAME: BrokerKey<String> = BrokerKey::new("authorizer.class.name");
    pub const SUPER_USERS: BrokerKey<String> = BrokerKey::new("super.users");
    pub const SASL_ENABLED_MECHANISMS: BrokerKey<String> = BrokerKey::new("sasl.enabled.mechanisms");
    pub const ALLOW_EVERYONE_IF_NO_ACL_FOUND: BrokerKey<bool> = BrokerKey::new("allow.everyone.if.no.acl.found");
    pub const BROKER_RACK: BrokerKey<String> = BrokerKey::new("broker.rack");
    pub const BROKER_HEARTBEAT_INTERVAL_MS: BrokerKey<i32> = BrokerKey::new("broker.heartbeat.interval.ms");
    pub const BROKER_SESSION_TIMEOUT_MS: BrokerKey<i32> = BrokerKey::new("broker.session.timeout.ms");
    pub const CONTROLLER_QUORUM_ELECTION_TIMEOUT_MS: BrokerKey<i32> =
        BrokerKey::new("controller.quorum.election.timeout.ms");
    pub const OFFSETS_TOPIC_REPLICATION_FACTOR: BrokerKey<i32> = BrokerKey::new("offsets.topic.replication.factor");
    pub const AUTO_LEADER_REBALANCE_ENABLE: BrokerKey<bool> = BrokerKey::new("auto.leader.rebalance.enable");
    pub const LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS: BrokerKey<i64> =
        BrokerKey::new("leader.imbalance.check.interval.seconds");
    pub const REPLICA_LAG_TIME_MAX_MS: BrokerKey<i64> = BrokerKey::new("replica.lag.time.max.ms");
    pub const REPLICA_FETCH_MAX_BYTES: BrokerKey<i32> = BrokerKey::new("replica.fetch.max.bytes");
    pub const REPLICA_FETCH_RESPONSE_MAX_BYTES: BrokerKey<i32> = BrokerKey::new("replica.fetch.response.max.bytes");
    pub const REPLICA_FETCH_WAIT_MAX_MS: BrokerKey<i32> = BrokerKey::new("replica.fetch.wait.max.ms");
    pub const REPLICA_FETCH_BACKOFF_MS: BrokerKey<i32> = BrokerKey::new("replica.fetch.backoff.ms");
    pub const LEADER_REPLICATION_THROTTLED_RATE: BrokerKey<i64> = BrokerKey::new("leader.replication.throttled.rate");
    pub const FOLLOWER_REPLICATION_THROTTLED_RATE: BrokerKey<i64> =
        BrokerKey::new("follower.replication.throttled.rate");
}

/// The topic keys, typed: read them with [`EffectiveConfig::topic`].
pub mod topic {
    use super::TopicKey;

    pub const CLEANUP_POLICY: TopicKey<String> = TopicKey::new("cleanup.policy");
    pub const COMPRESSION_TYPE: TopicKey<String> = TopicKey::new("compression.type");
    pub const MIN_CLEANABLE_DIRTY_RATIO: TopicKey<f64> = TopicKey::new("min.cleanable.dirty.ratio");
    pub const DELETE_RETENTION_MS: TopicKey<i64> = TopicKey::new("delete.retention.ms");
    pub const MIN_COMPACTION_LAG_MS: TopicKey<i64> = TopicKey::new("min.compaction.lag.ms");
    pub const MAX_COMPACTION_LAG_MS: TopicKey<i64> = TopicKey::new("max.compaction.lag.ms");
    pub const RETENTION_MS: TopicKey<i64> = TopicKey::new("retention.ms");
    pub const RETENTION_BYTES: TopicKey<i64> = TopicKey::new("retention.bytes");
    pub const SEGMENT_BYTES: TopicKey<i32> = TopicKey::new("segment.bytes");
    pub const SEGMENT_MS: TopicKey<i64> = TopicKey::new("segment.ms");
    pub const MAX_MESSAGE_BYTES: TopicKey<i32> = TopicKey::new("max.message.bytes");
    pub const INDEX_INTERVAL_BYTES: TopicKey<i32> = TopicKey::new("index.interval.bytes");
    pub const MESSAGE_TIMESTAMP_TYPE: TopicKey<String> = TopicKey::new("message.timestamp.type");
    pub const FLUSH_POLICY: TopicKey<String> = TopicKey::new("flush.policy");
    pub const FLUSH_MESSAGES: TopicKey<i64> = TopicKey::new("flush.messages");
    pub const FLUSH_MS: TopicKey<i64> = TopicKey::new("flush.ms");
    pub const MIN_INSYNC_REPLICAS: TopicKey<i32> = TopicKey::new("min.insync.replicas");
    pub const UNCLEAN_LEADER_ELECTION_ENABLE: TopicKey<bool> = TopicKey::new("unclean.leader.election.enable");
    pub const LEADER_REPLICATION_THROTTLED_REPLICAS: TopicKey<String> =
        TopicKey::new("leader.replication.throttled.replicas");
    pub const FOLLOWER_REPLICATION_THROTTLED_REPLICAS: TopicKey<String> =
        TopicKey::new("follower.replication.throttled.replicas");
}
