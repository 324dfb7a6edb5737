//! The registry of every config key Sluice implements: per key its default, its kind (how it is validated,
//! and how it is read), whether AlterConfigs may change it, and for topic keys the broker key that gives the
//! default. Everything else in `config` reads this table.

/// How a value is checked; also gives Kafka's DescribeConfigs type code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfigKind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    Bool,
    /// A floating-point number within `[min, max]` (Kafka's DOUBLE), such as `min.cleanable.dirty.ratio`.
    Double {
        min: f64,
        max: f64,
    },
    Choice(&'static [&'static str]),
    Text,
    /// A comma-separated list (Kafka's LIST type) of items that are each one of these, or none: Kafka's
    /// `cleanup.policy`.
    List(&'static [&'static str]),
    /// Kafka's throttled-replica lists: `*`, or `partition:broker` pairs separated by commas (or empty).
    ReplicaList,
}

impl ConfigKind {
    /// DescribeConfigs v3+ `config_type`: BOOLEAN 1, STRING 2, INT 3, LONG 5, DOUBLE 6, LIST 7.
    pub fn kafka_type_code(self) -> i8 {
        match self {
            ConfigKind::Bool => 1,
            ConfigKind::Text | ConfigKind::Choice(_) => 2,
            ConfigKind::Int { .. } => 3,
            ConfigKind::Long { .. } => 5,
            ConfigKind::Double { .. } => 6,
            ConfigKind::List(_) | ConfigKind::ReplicaList => 7,
        }
    }

    /// Whether values are comma-separated lists, so IncrementalAlterConfigs may APPEND to and SUBTRACT from
    /// them (Kafka's LIST type).
    pub fn is_list(self) -> bool {
        matches!(self, ConfigKind::List(_) | ConfigKind::ReplicaList)
    }

    pub fn validate(self, value: &str) -> Result<(), String> {
        match self {
            ConfigKind::Long { min } | ConfigKind::Int { min } => {
                let parsed: i64 = value.trim().parse().map_err(|_| format!("'{value}' is not a number"))?;
                if matches!(self, ConfigKind::Int { .. }) && i32::try_from(parsed).is_err() {
                    return Err(format!("{parsed} does not fit in a 32-bit int"));
                }
                if parsed < min {
                    return Err(format!("{parsed} is below the minimum {min}"));
                }
                Ok(())
            }
            ConfigKind::Double { min, max } => {
                let parsed: f64 = value.trim().parse().map_err(|_| format!("'{value}' is not a number"))?;
                if !(min..=max).contains(&parsed) {
                    return Err(format!("{parsed} is outside [{min}, {max}]"));
                }
                Ok(())
            }
            ConfigKind::Bool => match value.trim() {
                "true" | "false" => Ok(()),
                _ => Err(format!("'{value}' is not true or false")),
            },
            ConfigKind::Choice(choices) => {
                if choices.contains(&value.trim()) {
                    Ok(())
                } else {
                    Err(format!("'{value}' is not one of {}", choices.join(", ")))
                }
            }
            ConfigKind::Text => Ok(()),
            ConfigKind::List(items) => {
                // Empty is a value too: for `cleanup.policy`, neither retention nor compaction (Kafka 4.1+:
                // "delete" with infinite retention).
                let listed: Vec<&str> = value.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
                match listed.iter().find(|item| !items.contains(item)) {
                    Some(item) => Err(format!("'{item}' is not one of {}", items.join(", "))),
                    None => Ok(()),
                }
            }
            ConfigKind::ReplicaList => {
                let value = value.trim();
                if value.is_empty() || value == "*" {
                    return Ok(());
                }
                for pair in value.split(',').map(str::trim) {
                    let well_formed = pair
                        .split_once(':')
                        .is_some_and(|(p, b)| p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok());
                    if !well_formed {
                        return Err(format!("'{pair}' is not partition:broker (the list is '*' or such pairs)"));
                    }
                }
                Ok(())
            }
        }
    }
}

/// A topic-level key and the broker key that gives its default.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub broker_key: &'static str,
    pub kind: ConfigKind,
    pub doc: &'static str,
}

/// A broker-level key.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigKind,
    /// AlterConfigs may change it at runtime (through the metadata log).
    pub dynamic: bool,
}

const FLUSH_POLICIES: &[&str] = &["always", "interval", "replication-only"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
/// An empty list (Kafka: neither deletion nor compaction) is refused.
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const COMPRESSION_TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

/// Topic keys Sluice implements.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_key: "log.cleanup.policy",
        kind: ConfigKind::List(CLEANUP_POLICIES),
        doc: "delete (retention), compact (latest record per key), both, or neither (empty: keep every record)",
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_key: "log.cleaner.min.cleanable.ratio",
        kind: ConfigKind::Double { min: 0.0, max: 1.0 },
        doc: "",
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        broker_key: "log.cleaner.delete.retention.ms",
        kind: ConfigKind::Long { min: 0 },
        doc: "",
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        broker_key: "log.cleaner.min.compaction.lag.ms",
        kind: ConfigKind::Long { min: 0 },
        doc: "",
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        broker_key: "log.cleaner.max.compaction.lag.ms",
        kind: ConfigKind::Long { min: 1 },
        doc: "",
    },
    TopicConfigDef {
        name: "compression.type",
        broker_key: "compression.type",
        kind: ConfigKind::Choice(COMPRESSION_TYPES),
        doc: "producer stores batches as sent; a codec stores every batch in it, recompressing the others",
    },
    TopicConfigDef {
        name: "retention.ms",
        broker_key: "log.retention.ms",
        kind: ConfigKind::Long { min: -1 },
        doc: "",
    },
    TopicConfigDef {
        name: "retention.bytes",
        broker_key: "log.retention.bytes",
        kind: ConfigKind::Long { min: -1 },
        doc: "",
    },
    TopicConfigDef {
        name: "segment.bytes",
        broker_key: "log.segment.bytes",
        kind: ConfigKind::Int { min: 14 },
        doc: "",
    },
    TopicConfigDef { name: "segment.ms", broker_key: "log.roll.ms", kind: ConfigKind::Long { min: 1 }, doc: "" },
    TopicConfigDef {
        name: "max.message.bytes",
        broker_key: "message.max.bytes",
        kind: ConfigKind::Int { min: 0 },
        doc: "",
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        broker_key: "log.index.interval.bytes",
        kind: ConfigKind::Int { min: 0 },
        doc: "",
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        broker_key: "log.message.timestamp.type",
        kind: ConfigKind::Choice(TIMESTAMP_TYPES),
        doc: "",
    },
    TopicConfigDef {
        name: "flush.policy",
        broker_key: "log.flush.policy",
        kind: ConfigKind::Choice(FLUSH_POLICIES),
        doc: "Sluice: always (fsync before acks=all), interval (flush.messages/flush.ms) or replication-only",
    },
    TopicConfigDef {
        name: "flush.messages",
        broker_key: "log.flush.interval.messages",
        kind: ConfigKind::Long { min: 1 },
        doc: "with flush.policy=interval",
    },
    TopicConfigDef {
        name: "flush.ms",
        broker_key: "log.flush.interval.ms",
        kind: ConfigKind::Long { min: 0 },
        doc: "with flush.policy=interval",
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        broker_key: "min.insync.replicas",
        kind: ConfigKind::Int { min: 1 },
        doc: "",
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        broker_key: "unclean.leader.election.enable",
        kind: ConfigKind::Bool,
        doc: "",
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        broker_key: "leader.replication.throttled.replicas",
        kind: ConfigKind::ReplicaList,
        doc: "replicas whose leader side is held to leader.replication.throttled.rate while they are out of sync",
    },
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        broker_key: "follower.replication.throttled.replicas",
        kind: ConfigKind::ReplicaList,
        doc: "replicas whose follower side is held to follower.replication.throttled.rate while out of sync",
    },
];

const WEEK_MS: &str = "604800000";

/// Broker keys Sluice implements, with Kafka's defaults (DESIGN.md overrides noted in the module doc).
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    BrokerConfigDef { name: "num.partitions", default: "1", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef {
        name: "default.replication.factor",
        default: "1",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef { name: "auto.create.topics.enable", default: "true", kind: ConfigKind::Bool, dynamic: false },
    BrokerConfigDef { name: "delete.topic.enable", default: "true", kind: ConfigKind::Bool, dynamic: false },
    BrokerConfigDef {
        name: "log.cleanup.policy",
        default: "delete",
        kind: ConfigKind::List(CLEANUP_POLICIES),
        dynamic: true,
    },
    // The log cleaner (engine/src/log/clean.rs). Sluice's `log.cleaner.threads` is logs cleaned at once per
    // shard; the dedupe buffer is the whole broker's, divided among shards and their cleanings.
    BrokerConfigDef { name: "log.cleaner.enable", default: "true", kind: ConfigKind::Bool, dynamic: true },
    BrokerConfigDef { name: "log.cleaner.threads", default: "1", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef {
        name: "log.cleaner.dedupe.buffer.size",
        default: "134217728",
        kind: ConfigKind::Long { min: 1024 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.io.max.bytes.per.second",
        default: "1.7976931348623157E308",
        kind: ConfigKind::Double { min: 1.0, max: f64::MAX },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.backoff.ms",
        default: "15000",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        kind: ConfigKind::Double { min: 0.0, max: 1.0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.delete.retention.ms",
        default: "86400000",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.cleaner.max.compaction.lag.ms",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 1 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "compression.type",
        default: "producer",
        kind: ConfigKind::Choice(COMPRESSION_TYPES),
        dynamic: true,
    },
    BrokerConfigDef { name: "log.retention.ms", default: WEEK_MS, kind: ConfigKind::Long { min: -1 }, dynamic: true },
    BrokerConfigDef { name: "log.retention.bytes", default: "-1", kind: ConfigKind::Long { min: -1 }, dynamic: true },
    BrokerConfigDef {
        name: "log.segment.bytes",
        default: "1073741824",
        kind: ConfigKind::Int { min: 14 },
        dynamic: true,
    },
    BrokerConfigDef { name: "log.roll.ms", default: WEEK_MS, kind: ConfigKind::Long { min: 1 }, dynamic: true },
    BrokerConfigDef { name: "message.max.bytes", default: "1048588", kind: ConfigKind::Int { min: 0 }, dynamic: true },
    BrokerConfigDef {
        name: "log.index.interval.bytes",
        default: "4096",
        kind: ConfigKind::Int { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.message.timestamp.type",
        default: "CreateTime",
        kind: ConfigKind::Choice(TIMESTAMP_TYPES),
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.flush.policy",
        default: "always",
        kind: ConfigKind::Choice(FLUSH_POLICIES),
        dynamic: true,
    },
    // Sluice: zeros kept written past the end of a log whose fsync rounds are small, so that an fsync after a
    // small append does not also write the file's size (engine/src/prewrite.rs); 0 turns it off.
    BrokerConfigDef {
        name: "log.segment.prewrite.bytes",
        default: "1048576",
        kind: ConfigKind::Long { min: 0 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "log.flush.interval.messages",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 1 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "log.flush.interval.ms",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef { name: "min.insync.replicas", default: "1", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef { name: "unclean.leader.election.enable", default: "false", kind: ConfigKind::Bool, dynamic: true },
    BrokerConfigDef {
        name: "log.retention.check.interval.ms",
        default: "300000",
        kind: ConfigKind::Long { min: 1 },
        dynamic: false,
    },
    // Producer ids whose last batch is older are forgotten (engine/src/producer.rs); Kafka's defaults.
    BrokerConfigDef {
        name: "producer.id.expiration.ms",
        default: "86400000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "producer.id.expiration.check.interval.ms",
        default: "600000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "socket.request.max.bytes",
        default: "104857600",
        kind: ConfigKind::Int { min: 1024 },
        dynamic: false,
    },
    BrokerConfigDef { name: "max.connections", default: "10000", kind: ConfigKind::Int { min: 1 }, dynamic: false },
    BrokerConfigDef {
        name: "connections.max.idle.ms",
        default: "600000",
        kind: ConfigKind::Long { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "queued.max.requests.per.connection",
        default: "100",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    // Request bytes one shard holds in memory at once (Kafka: per broker, default -1, unbounded; -1 keeps
    // that meaning here). 256 MiB per shard holds two requests of the default socket.request.max.bytes
    // (100 MiB) and many small ones. A positive value below socket.request.max.bytes is refused at startup.
    BrokerConfigDef {
        name: "queued.max.request.bytes",
        default: "268435456",
        kind: ConfigKind::Long { min: -1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "offsets.retention.minutes",
        default: "10080",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "offsets.retention.check.interval.ms",
        default: "600000",
        kind: ConfigKind::Long { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "offsets.topic.num.partitions",
        default: "50",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "offset.metadata.max.bytes",
        default: "4096",
        kind: ConfigKind::Int { min: 0 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.initial.rebalance.delay.ms",
        default: "3000",
        kind: ConfigKind::Int { min: 0 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.min.session.timeout.ms",
        default: "6000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.max.session.timeout.ms",
        default: "1800000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.consumer.session.timeout.ms",
        default: "45000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.consumer.heartbeat.interval.ms",
        default: "5000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    // The bounds a consumer group's own `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
    // (group configs, below) must stay within, as Kafka's.
    BrokerConfigDef {
        name: "group.consumer.min.session.timeout.ms",
        default: "45000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.consumer.max.session.timeout.ms",
        default: "60000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.consumer.min.heartbeat.interval.ms",
        default: "5000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "group.consumer.max.heartbeat.interval.ms",
        default: "15000",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef { name: "group.max.size", default: "2147483647", kind: ConfigKind::Int { min: 1 }, dynamic: false },
    // ----- the cluster: KRaft's keys, with Kafka's meanings ------------------------------------------------
    BrokerConfigDef {
        name: "process.roles",
        default: "broker,controller",
        kind: ConfigKind::Choice(&["broker,controller", "controller,broker", "broker", "controller"]),
        dynamic: false,
    },
    BrokerConfigDef { name: "node.id", default: "0", kind: ConfigKind::Int { min: 0 }, dynamic: false },
    // Empty: a single node that is its own quorum of one.
    BrokerConfigDef { name: "controller.quorum.voters", default: "", kind: ConfigKind::Text, dynamic: false },
    BrokerConfigDef { name: "listeners", default: "PLAINTEXT://0.0.0.0:9092", kind: ConfigKind::Text, dynamic: false },
    BrokerConfigDef { name: "advertised.listeners", default: "", kind: ConfigKind::Text, dynamic: false },
    // Sluice: the operators' HTTP listener (/metrics, /health/live, /health/ready), one `host:port` or
    // `http://host:port`. `:PORT` (the default) takes the host of the node's first client listener, so local
    // nodes on 127.0.0.1, .2 and .3 do not collide; empty turns it off. 9644 is Redpanda's admin port.
    BrokerConfigDef { name: "admin.listeners", default: ":9644", kind: ConfigKind::Text, dynamic: false },
    // Sluice: a log end offset and log size series per partition on /metrics; off for brokers with many.
    BrokerConfigDef { name: "metrics.per.partition.enabled", default: "true", kind: ConfigKind::Bool, dynamic: false },
    // Sluice: a request answered more than this many milliseconds after it was decoded is logged at WARN with
    // its timings (queue, handler); 0 turns the log off. Fetch, JoinGroup and SyncGroup wait by design (long
    // polls, rebalances) and are not logged. Changeable at run time (IncrementalAlterConfigs on the broker).
    BrokerConfigDef { name: "log.slow.request.ms", default: "1000", kind: ConfigKind::Long { min: 0 }, dynamic: true },
    BrokerConfigDef {
        name: "controller.listener.names",
        default: "CONTROLLER",
        kind: ConfigKind::Text,
        dynamic: false,
    },
    BrokerConfigDef {
        name: "listener.security.protocol.map",
        default: "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        kind: ConfigKind::Text,
        dynamic: false,
    },
    BrokerConfigDef {
        name: "inter.broker.listener.name",
        default: "PLAINTEXT",
        kind: ConfigKind::Text,
        dynamic: false,
    },
    // ----- authorization: Kafka's ACL authorizer, built in ---------------------------------------------------
    // Either of Kafka's authorizer classes turns on Sluice's authorizer, which follows StandardAuthorizer's
    // rules (`sluice_replication::acl`); empty (the default, as in Kafka) leaves every request allowed and the
    // ACL APIs answering SECURITY_DISABLED. Sluice loads no Java class, so any other name is refused at start.
    BrokerConfigDef {
        name: "authorizer.class.name",
        default: "",
        kind: ConfigKind::Choice(&[
            "",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "kafka.security.authorizer.AclAuthorizer",
        ]),
        dynamic: false,
    },
    // The SASL mechanisms a SASL_PLAINTEXT listener offers. Kafka's default is GSSAPI, which Sluice does not
    // serve; Sluice's is both SCRAM mechanisms.
    BrokerConfigDef {
        name: "sasl.enabled.mechanisms",
        default: "SCRAM-SHA-256,SCRAM-SHA-512",
        kind: ConfigKind::Text,
        dynamic: false,
    },
    // Principals allowed everything, separated by `;` (`User:admin;User:broker`).
    BrokerConfigDef { name: "super.users", default: "", kind: ConfigKind::Text, dynamic: false },
    BrokerConfigDef {
        name: "allow.everyone.if.no.acl.found",
        default: "false",
        kind: ConfigKind::Bool,
        dynamic: false,
    },
    BrokerConfigDef { name: "log.dirs", default: "./sluice-data", kind: ConfigKind::Text, dynamic: false },
    BrokerConfigDef { name: "broker.rack", default: "", kind: ConfigKind::Text, dynamic: false },
    // Sluice: 500 ms and 2 s against Kafka's 2 s and 9 s, for a failover window under 3 s (README).
    BrokerConfigDef {
        name: "broker.heartbeat.interval.ms",
        default: "500",
        kind: ConfigKind::Int { min: 10 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "broker.session.timeout.ms",
        default: "2000",
        kind: ConfigKind::Int { min: 100 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "controller.quorum.election.timeout.ms",
        default: "1000",
        kind: ConfigKind::Int { min: 100 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "offsets.topic.replication.factor",
        default: "3",
        kind: ConfigKind::Int { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef { name: "auto.leader.rebalance.enable", default: "true", kind: ConfigKind::Bool, dynamic: false },
    BrokerConfigDef {
        name: "leader.imbalance.check.interval.seconds",
        default: "300",
        kind: ConfigKind::Long { min: 1 },
        dynamic: false,
    },
    // ----- replication ---------------------------------------------------------------------------------
    // Sluice: 10 s against Kafka's 30 s, so a follower that stalls leaves the ISR (and stops holding acks=all
    // back) sooner.
    BrokerConfigDef {
        name: "replica.lag.time.max.ms",
        default: "10000",
        kind: ConfigKind::Long { min: 1 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "replica.fetch.max.bytes",
        default: "1048576",
        kind: ConfigKind::Int { min: 1024 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "replica.fetch.response.max.bytes",
        default: "10485760",
        kind: ConfigKind::Int { min: 1024 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "replica.fetch.wait.max.ms",
        default: "500",
        kind: ConfigKind::Int { min: 0 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "replica.fetch.backoff.ms",
        default: "1000",
        kind: ConfigKind::Int { min: 0 },
        dynamic: false,
    },
    BrokerConfigDef {
        name: "leader.replication.throttled.rate",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "follower.replication.throttled.rate",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    // Kafka's limit on copying a replica from one of a broker's log directories to another. Sluice keeps one
    // directory per broker, so no such copy ever runs and the limit holds nothing back; the key exists so
    // that `kafka-reassign-partitions` can set it (--replica-alter-log-dirs-throttle) and clear it (--verify,
    // which deletes every reassignment throttle on every broker), as it does against Kafka.
    BrokerConfigDef {
        name: "replica.alter.log.dirs.io.max.bytes.per.second",
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
    // Topic-level in Kafka; the broker-level defaults exist because every topic key has one here. Empty: no
    // replica is throttled unless its topic says so. Not dynamic: Kafka refuses them on a broker resource
    // (they name replicas of one topic), and so does Sluice; a config file may still set a default.
    BrokerConfigDef {
        name: "leader.replication.throttled.replicas",
        default: "",
        kind: ConfigKind::ReplicaList,
        dynamic: false,
    },
    BrokerConfigDef {
        name: "follower.replication.throttled.replicas",
        default: "",
        kind: ConfigKind::ReplicaList,
        dynamic: false,
    },
    // Kafka's thread pools and its Kerberos relogin interval: dynamic in Kafka, so tools and librdkafka's test
    // 0081 set them on a broker resource. Sluice runs one thread per core and has no Kerberos login, so a value
    // is kept and described and changes nothing (also listed in IGNORED_KAFKA_KEYS, logged at start).
    BrokerConfigDef { name: "background.threads", default: "10", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef { name: "num.io.threads", default: "8", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef { name: "num.network.threads", default: "3", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef { name: "num.replica.fetchers", default: "1", kind: ConfigKind::Int { min: 1 }, dynamic: true },
    BrokerConfigDef {
        name: "num.recovery.threads.per.data.dir",
        default: "2",
        kind: ConfigKind::Int { min: 1 },
        dynamic: true,
    },
    BrokerConfigDef {
        name: "sasl.kerberos.min.time.before.relogin",
        default: "60000",
        kind: ConfigKind::Long { min: 0 },
        dynamic: true,
    },
];

/// Kafka keys a `server.properties` may carry that Sluice accepts and does not use: thread pools and socket
/// buffers (Sluice runs one thread per core and lets the kernel size buffers) and topics it has no use for
/// yet. A config file written for Kafka starts unchanged; each is logged once at start. Those with a
/// [`BROKER_CONFIGS`] line are also validated, kept and described, and may be set at run time.
pub const IGNORED_KAFKA_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "sasl.kerberos.min.time.before.relogin",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "group.coordinator.rebalance.protocols",
    "zookeeper.connection.timeout.ms",
    "controlled.shutdown.enable",
];

/// Group keys Sluice implements (Kafka's `GroupConfig`, KIP-848): a consumer group's own session timeout and
/// heartbeat interval, over the broker's `group.consumer.*` values. They share the topic keys' shape: a name,
/// the broker key that gives the default, a kind. Kafka's `share.*` group keys are absent, as share groups are.
pub const GROUP_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "consumer.session.timeout.ms",
        broker_key: "group.consumer.session.timeout.ms",
        kind: ConfigKind::Int { min: 1 },
        doc: "how long a consumer group member may go without a heartbeat before it is removed",
    },
    TopicConfigDef {
        name: "consumer.heartbeat.interval.ms",
        broker_key: "group.consumer.heartbeat.interval.ms",
        kind: ConfigKind::Int { min: 1 },
        doc: "how often the group's members heartbeat",
    },
];

pub fn group_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    GROUP_CONFIGS.iter().find(|def| def.name == name)
}

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|def| def.name == name)
}

/// DescribeConfigs `config_source` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    /// A group's own value (Kafka's GROUP_CONFIG).
    GroupOverride = 8,
}
