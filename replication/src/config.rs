//! Broker and topic configuration under Kafka's names and defaults.
//!
//! One registry ([`TOPIC_CONFIGS`], [`BROKER_CONFIGS`]) says, per key, its default, its type, how it is
//! validated and, for topic keys, which broker key supplies the default. Values are kept as strings, exactly
//! as Kafka's DescribeConfigs shows them, and parsed when a [`LogConfig`] is derived.
//!
//! Where a value comes from, highest first: a topic override (metadata log), a dynamic broker value
//! (metadata log, set by AlterConfigs), a static broker value (`--config FILE` or `--set`), the default.
//!
//! Sluice departs from Kafka's defaults in two places, both from DESIGN.md: `flush.policy` (a Sluice key)
//! defaults to `always`, and `max.connections` is bounded (10,000) instead of unlimited.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_engine::{FlushPolicy, LogConfig, TimestampType};

/// How a value is checked; also gives Kafka's DescribeConfigs type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Long { min: i64 },
    Int { min: i64 },
    Bool,
    Choice(&'static [&'static str]),
    Text,
}

impl ConfigKind {
    /// DescribeConfigs v3+ `config_type`: BOOLEAN 1, STRING 2, INT 3, LONG 5.
    pub fn kafka_type_code(self) -> i8 {
        match self {
            ConfigKind::Bool => 1,
            ConfigKind::Text | ConfigKind::Choice(_) => 2,
            ConfigKind::Int { .. } => 3,
            ConfigKind::Long { .. } => 5,
        }
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

/// Topic keys Sluice implements. `cleanup.policy` accepts only `delete` (compaction is not built yet), and
/// `compression.type` only `producer` (batches are stored as sent, never recompressed).
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_key: "log.cleanup.policy",
        kind: ConfigKind::Choice(&["delete"]),
        doc: "only delete",
    },
    TopicConfigDef {
        name: "compression.type",
        broker_key: "compression.type",
        kind: ConfigKind::Choice(&["producer"]),
        doc: "batches are stored as the producer compressed them",
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
        kind: ConfigKind::Choice(&["delete"]),
        dynamic: true,
    },
    BrokerConfigDef {
        name: "compression.type",
        default: "producer",
        kind: ConfigKind::Choice(&["producer"]),
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
    BrokerConfigDef { name: "group.max.size", default: "2147483647", kind: ConfigKind::Int { min: 1 }, dynamic: false },
];

/// Kafka's coarser spellings, folded into the canonical key when no finer one is given.
const ALIASES: &[(&str, &str, i64)] = &[
    ("log.retention.hours", "log.retention.ms", 3_600_000),
    ("log.retention.minutes", "log.retention.ms", 60_000),
    ("log.roll.hours", "log.roll.ms", 3_600_000),
];

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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown config key '{0}'")]
    UnknownKey(String),
    #[error("invalid value for {key}: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("config '{0}' cannot be changed while the broker runs")]
    NotDynamic(String),
    #[error("line {line} of the config file is not KEY=VALUE: {text}")]
    Syntax { line: usize, text: String },
}

/// Validates one topic-level key and value.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let def = topic_config_def(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    def.kind.validate(value).map_err(|reason| ConfigError::InvalidValue { key: key.to_string(), reason })
}

/// Validates one broker-level key and value (static when `dynamic` is false).
pub fn validate_broker_config(key: &str, value: &str, dynamic: bool) -> Result<(), ConfigError> {
    let def = broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    if dynamic && !def.dynamic {
        return Err(ConfigError::NotDynamic(key.to_string()));
    }
    def.kind.validate(value).map_err(|reason| ConfigError::InvalidValue { key: key.to_string(), reason })
}

/// Static broker configuration: the config file and `--set` values over Kafka's defaults. Immutable once the
/// broker runs; dynamic values live in the metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticConfig {
    values: BTreeMap<String, String>,
}

impl StaticConfig {
    /// Parses Kafka `server.properties` text: `key=value` lines, `#` and `!` comments. Keys Sluice does not
    /// know are refused, so a typo never silently falls back to a default.
    pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| ConfigError::Syntax { line: index + 1, text: line.to_string() })?;
            out.push((key.trim().to_string(), value.trim().to_string()));
        }
        Ok(out)
    }

    /// Sets one static value after validating it. Aliases (`log.retention.hours`) are folded into the
    /// canonical key unless the canonical one was given.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        if let Some((_, canonical, scale)) = ALIASES.iter().find(|(alias, _, _)| *alias == key) {
            let units: i64 = value.trim().parse().map_err(|_| ConfigError::InvalidValue {
                key: key.to_string(),
                reason: format!("'{value}' is not a number"),
            })?;
            let millis = units.saturating_mul(*scale).to_string();
            self.values.entry((*canonical).to_string()).or_insert(millis);
            return Ok(());
        }
        validate_broker_config(key, value, false)?;
        self.values.insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The broker configuration in effect: static values plus the dynamic ones from the metadata image.
#[derive(Debug, Clone, Copy)]
pub struct EffectiveConfig<'a> {
    pub static_config: &'a StaticConfig,
    pub dynamic: &'a BTreeMap<String, String>,
}

impl<'a> EffectiveConfig<'a> {
    /// A broker key's value and where it came from. Unknown keys give the empty string and `Default`.
    pub fn broker_value(&self, key: &str) -> (String, ConfigSource) {
        if let Some(value) = self.dynamic.get(key) {
            return (value.clone(), ConfigSource::DynamicDefaultBroker);
        }
        if let Some(value) = self.static_config.get(key) {
            return (value.to_string(), ConfigSource::StaticBroker);
        }
        (broker_config_def(key).map_or("", |def| def.default).to_string(), ConfigSource::Default)
    }

    pub fn broker_i64(&self, key: &str) -> i64 {
        let (value, _) = self.broker_value(key);
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| broker_config_def(key).and_then(|def| def.default.parse().ok()).unwrap_or_default())
    }

    pub fn broker_bool(&self, key: &str) -> bool {
        self.broker_value(key).0.trim() == "true"
    }

    /// A topic key's value given the topic's overrides, and its source.
    pub fn topic_value(&self, overrides: &BTreeMap<String, String>, key: &str) -> (String, ConfigSource) {
        if let Some(value) = overrides.get(key) {
            return (value.clone(), ConfigSource::TopicOverride);
        }
        match topic_config_def(key) {
            Some(def) => self.broker_value(def.broker_key),
            None => (String::new(), ConfigSource::Default),
        }
    }

    /// The engine's view of a topic's configuration.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let long = |key: &str| -> i64 {
            let (value, _) = self.topic_value(overrides, key);
            value
                .trim()
                .parse()
                .unwrap_or_else(|_| topic_config_def(key).map_or(0, |def| self.broker_i64(def.broker_key)))
        };
        let text = |key: &str| self.topic_value(overrides, key).0;
        let flush_messages = u64::try_from(long("flush.messages")).unwrap_or(u64::MAX);
        let flush_interval = Duration::from_millis(u64::try_from(long("flush.ms")).unwrap_or(u64::MAX));
        let flush_policy = match text("flush.policy").as_str() {
            "interval" => FlushPolicy::Interval { flush_messages, flush_interval },
            "replication-only" => FlushPolicy::ReplicationOnly,
            _ => FlushPolicy::Always,
        };
        LogConfig {
            segment_bytes: u64::try_from(long("segment.bytes")).unwrap_or(1 << 30),
            segment_ms: long("segment.ms"),
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            max_message_bytes: usize::try_from(long("max.message.bytes")).unwrap_or(0),
            index_interval_bytes: u32::try_from(long("index.interval.bytes")).unwrap_or(4096),
            flush_policy,
            timestamp_type: if text("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_match_kafka_except_the_flush_policy() {
        let static_config = StaticConfig::default();
        let dynamic = BTreeMap::new();
        let config = EffectiveConfig { static_config: &static_config, dynamic: &dynamic };
        let log = config.log_config(&BTreeMap::new());
        assert_eq!(log, LogConfig::default());
        assert_eq!(config.broker_i64("num.partitions"), 1);
        assert!(config.broker_bool("auto.create.topics.enable"));
        assert_eq!(
            config.broker_i64("log.segment.prewrite.bytes") as u64,
            sluice_engine::manager::DEFAULT_PREWRITE_WINDOW_BYTES
        );
        for def in TOPIC_CONFIGS {
            assert!(broker_config_def(def.broker_key).is_some(), "{} has no broker default", def.name);
        }
    }

    #[test]
    fn sources_rank_topic_then_dynamic_then_static_then_default() {
        let mut static_config = StaticConfig::default();
        static_config.set("log.retention.hours", "1").unwrap();
        let mut dynamic = BTreeMap::new();
        let config = EffectiveConfig { static_config: &static_config, dynamic: &dynamic };
        assert_eq!(
            config.topic_value(&BTreeMap::new(), "retention.ms"),
            ("3600000".into(), ConfigSource::StaticBroker)
        );
        dynamic.insert("log.retention.ms".to_string(), "5".to_string());
        let config = EffectiveConfig { static_config: &static_config, dynamic: &dynamic };
        assert_eq!(config.topic_value(&BTreeMap::new(), "retention.ms").1, ConfigSource::DynamicDefaultBroker);
        let overrides = BTreeMap::from([("retention.ms".to_string(), "7".to_string())]);
        assert_eq!(config.topic_value(&overrides, "retention.ms"), ("7".into(), ConfigSource::TopicOverride));
        assert_eq!(config.log_config(&overrides).retention_ms, 7);
    }

    #[test]
    fn bad_values_and_keys_are_refused() {
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
        assert!(validate_broker_config("socket.request.max.bytes", "1000000", true).is_err());
        let parsed = StaticConfig::parse_properties("# c\nnum.partitions = 3\n\nlog.retention.ms=5\n").unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(StaticConfig::parse_properties("garbage").is_err());
    }
}
