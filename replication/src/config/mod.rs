//! Broker and topic configuration under Kafka's names and defaults.
//!
//! One registry ([`TOPIC_CONFIGS`], [`BROKER_CONFIGS`]) says, per key, its default, its type, how it is
//! validated and, for topic keys, which broker key supplies the default. Values are kept as strings, exactly
//! as Kafka's DescribeConfigs shows them, and parsed when a [`LogConfig`] is derived.
//!
//! Code reads a value through a typed key ([`broker`], [`topic`]): `config.get(broker::NUM_PARTITIONS)` is an
//! `i32`, and `config.topic(&overrides, topic::SEGMENT_BYTES)` the topic's value or its broker default. Each
//! key constant is checked against the registry when the crate compiles: a name the registry lacks, or a type
//! that does not fit its kind (`Int` is `i32`, `Long` is `i64`, `Bool` is `bool`, others are text), fails the
//! build.
//!
//! Where a value comes from, highest first: a topic override (metadata log), a dynamic broker value
//! (metadata log, set by AlterConfigs), a static broker value (`--config FILE` or `--set`), the default.
//!
//! Sluice departs from Kafka's defaults in two places, both from DESIGN.md: `flush.policy` (a Sluice key)
//! defaults to `always`, and `max.connections` is bounded (10,000) instead of unlimited.

mod keys;
mod registry;

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_engine::{CleanupPolicy, CompactionConfig, FlushPolicy, LogConfig, TimestampType, TopicCompression};

pub use keys::{broker, topic, BrokerKey, ConfigValue, TopicKey, ValueType};
pub use registry::{
    broker_config_def, group_config_def, topic_config_def, BrokerConfigDef, ConfigKind, ConfigSource, TopicConfigDef,
    BROKER_CONFIGS, GROUP_CONFIGS, IGNORED_KAFKA_KEYS, TOPIC_CONFIGS,
};

/// Kafka's coarser spellings, folded into the canonical key when no finer one is given.
const ALIASES: &[(&str, &str, i64)] = &[
    ("log.retention.hours", "log.retention.ms", 3_600_000),
    ("log.retention.minutes", "log.retention.ms", 60_000),
    ("log.roll.hours", "log.roll.ms", 3_600_000),
];

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

/// Validates one group-level key and value on its own (Kafka's `GroupConfig` keys); [`EffectiveConfig::
/// validate_group_configs`] checks a group's whole set against the broker's bounds.
pub fn validate_group_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let def = group_config_def(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
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
    /// Kafka keys given and not used ([`IGNORED_KAFKA_KEYS`]), for the start-up log.
    ignored: Vec<String>,
}

/// Kafka's older names for keys Sluice reads under the newer one.
const RENAMED: &[(&str, &str)] = &[("broker.id", "node.id"), ("log.dir", "log.dirs")];

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
        if let Some(canonical) = RENAMED.iter().find(|(old, _)| *old == key).map(|(_, new)| *new) {
            return self.set(canonical, value);
        }
        let ignored = IGNORED_KAFKA_KEYS.contains(&key);
        if ignored && broker_config_def(key).is_none() {
            self.ignored.push(key.to_string());
            return Ok(());
        }
        validate_broker_config(key, value, false)?;
        if ignored {
            self.ignored.push(key.to_string());
        }
        self.values.insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Kafka keys the configuration named that Sluice does not use.
    pub fn ignored_keys(&self) -> &[String] {
        &self.ignored
    }
}

/// The broker configuration in effect: static values plus the dynamic ones from the metadata image, the
/// cluster-wide defaults and this broker's own over them.
#[derive(Debug, Clone, Copy)]
pub struct EffectiveConfig<'a> {
    pub static_config: &'a StaticConfig,
    /// Cluster-wide dynamic values (Kafka's `--entity-default`).
    pub dynamic: &'a BTreeMap<String, String>,
    /// This broker's own dynamic values (Kafka's `--entity-name ID`), if it has any.
    pub own: Option<&'a BTreeMap<String, String>>,
}

impl<'a> EffectiveConfig<'a> {
    /// Static values and the cluster-wide dynamic ones, without any broker's own.
    pub fn new(static_config: &'a StaticConfig, dynamic: &'a BTreeMap<String, String>) -> Self {
        EffectiveConfig { static_config, dynamic, own: None }
    }

    /// The configuration a describe of the cluster-wide default broker resource (an empty name) shows.
    pub fn cluster_default(self) -> Self {
        EffectiveConfig { own: None, ..self }
    }

    /// A broker key's value and where it came from. Unknown keys give the empty string and `Default`.
    pub fn broker_value(&self, key: &str) -> (String, ConfigSource) {
        if let Some(value) = self.own.and_then(|own| own.get(key)) {
            return (value.clone(), ConfigSource::DynamicBroker);
        }
        if let Some(value) = self.dynamic.get(key) {
            return (value.clone(), ConfigSource::DynamicDefaultBroker);
        }
        if let Some(value) = self.static_config.get(key) {
            return (value.to_string(), ConfigSource::StaticBroker);
        }
        (broker_config_def(key).map_or("", |def| def.default).to_string(), ConfigSource::Default)
    }

    /// A broker key's value in effect. A value that does not parse (validation keeps them out) reads as the
    /// default.
    pub fn get<T: ConfigValue + Default>(&self, key: BrokerKey<T>) -> T {
        let (value, _) = self.broker_value(key.name());
        T::parse(&value)
            .or_else(|| broker_config_def(key.name()).and_then(|def| T::parse(def.default)))
            .unwrap_or_default()
    }

    /// A topic key's value given the topic's overrides: the override, or else the broker key behind it.
    pub fn topic<T: ConfigValue + Default>(&self, overrides: &BTreeMap<String, String>, key: TopicKey<T>) -> T {
        let (value, _) = self.topic_value(overrides, key.name());
        T::parse(&value).unwrap_or_else(|| self.get(key.broker_key()))
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

    /// A group key's value given the group's overrides, and its source: the override, else the broker key
    /// behind it (Kafka's `GroupConfig` defaults are the broker's `group.consumer.*` values).
    pub fn group_value(&self, overrides: &BTreeMap<String, String>, key: &str) -> (String, ConfigSource) {
        if let Some(value) = overrides.get(key) {
            return (value.clone(), ConfigSource::GroupOverride);
        }
        match group_config_def(key) {
            Some(def) => self.broker_value(def.broker_key),
            None => (String::new(), ConfigSource::Default),
        }
    }

    /// A group's session timeout and heartbeat interval in effect, in ms.
    pub fn group_consumer_timeouts(&self, overrides: &BTreeMap<String, String>) -> (i32, i32) {
        let read = |key: &str, fallback: BrokerKey<i32>| {
            self.group_value(overrides, key).0.trim().parse::<i32>().unwrap_or_else(|_| self.get(fallback))
        };
        (
            read("consumer.session.timeout.ms", broker::GROUP_CONSUMER_SESSION_TIMEOUT_MS),
            read("consumer.heartbeat.interval.ms", broker::GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS),
        )
    }

    /// Checks a group's whole set of overrides as Kafka's `GroupConfig.validateValues` does: the session
    /// timeout and the heartbeat interval within the broker's `group.consumer.min/max.*` bounds, and the
    /// session timeout above the heartbeat interval.
    pub fn validate_group_configs(&self, overrides: &BTreeMap<String, String>) -> Result<(), String> {
        let (session_ms, heartbeat_ms) = self.group_consumer_timeouts(overrides);
        let bound = |value: i32, key: &str, min: BrokerKey<i32>, max: BrokerKey<i32>| {
            if value < self.get(min) {
                return Err(format!("{key} must be greater than or equal to {}", min.name()));
            }
            if value > self.get(max) {
                return Err(format!("{key} must be less than or equal to {}", max.name()));
            }
            Ok(())
        };
        bound(
            heartbeat_ms,
            "consumer.heartbeat.interval.ms",
            broker::GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS,
            broker::GROUP_CONSUMER_MAX_HEARTBEAT_INTERVAL_MS,
        )?;
        bound(
            session_ms,
            "consumer.session.timeout.ms",
            broker::GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS,
            broker::GROUP_CONSUMER_MAX_SESSION_TIMEOUT_MS,
        )?;
        if session_ms <= heartbeat_ms {
            return Err("consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms".into());
        }
        Ok(())
    }

    /// The engine's view of a topic's configuration.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let flush_messages = u64::try_from(self.topic(overrides, topic::FLUSH_MESSAGES)).unwrap_or(u64::MAX);
        let flush_interval =
            Duration::from_millis(u64::try_from(self.topic(overrides, topic::FLUSH_MS)).unwrap_or(u64::MAX));
        let flush_policy = match self.topic(overrides, topic::FLUSH_POLICY).as_str() {
            "interval" => FlushPolicy::Interval { flush_messages, flush_interval },
            "replication-only" => FlushPolicy::ReplicationOnly,
            _ => FlushPolicy::Always,
        };
        LogConfig {
            segment_bytes: u64::try_from(self.topic(overrides, topic::SEGMENT_BYTES)).unwrap_or(1 << 30),
            segment_ms: self.topic(overrides, topic::SEGMENT_MS),
            retention_ms: self.topic(overrides, topic::RETENTION_MS),
            retention_bytes: self.topic(overrides, topic::RETENTION_BYTES),
            max_message_bytes: usize::try_from(self.topic(overrides, topic::MAX_MESSAGE_BYTES)).unwrap_or(0),
            index_interval_bytes: u32::try_from(self.topic(overrides, topic::INDEX_INTERVAL_BYTES)).unwrap_or(4096),
            flush_policy,
            timestamp_type: if self.topic(overrides, topic::MESSAGE_TIMESTAMP_TYPE) == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            producer_id_expiration_ms: i64::from(self.get(broker::PRODUCER_ID_EXPIRATION_MS)),
            compression: TopicCompression::parse(&self.topic(overrides, topic::COMPRESSION_TYPE)).unwrap_or_default(),
            cleanup_policy: CleanupPolicy::parse(&self.topic(overrides, topic::CLEANUP_POLICY)),
            compaction: CompactionConfig {
                min_cleanable_dirty_ratio: self.topic(overrides, topic::MIN_CLEANABLE_DIRTY_RATIO),
                delete_retention_ms: self.topic(overrides, topic::DELETE_RETENTION_MS),
                min_compaction_lag_ms: self.topic(overrides, topic::MIN_COMPACTION_LAG_MS),
                max_compaction_lag_ms: self.topic(overrides, topic::MAX_COMPACTION_LAG_MS),
                cleaner_enabled: self.get(broker::LOG_CLEANER_ENABLE),
                cleaner_threads: usize::try_from(self.get(broker::LOG_CLEANER_THREADS)).unwrap_or(1),
                dedupe_buffer_bytes: usize::try_from(self.get(broker::LOG_CLEANER_DEDUPE_BUFFER_SIZE)).unwrap_or(0),
                io_max_bytes_per_second: self.get(broker::LOG_CLEANER_IO_MAX_BYTES_PER_SECOND),
                backoff_ms: self.get(broker::LOG_CLEANER_BACKOFF_MS),
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
        let config = EffectiveConfig::new(&static_config, &dynamic);
        let log = config.log_config(&BTreeMap::new());
        assert_eq!(log, LogConfig::default());
        assert_eq!(config.get(broker::NUM_PARTITIONS), 1);
        assert!(config.get(broker::AUTO_CREATE_TOPICS_ENABLE));
        assert_eq!(
            config.get(broker::LOG_SEGMENT_PREWRITE_BYTES) as u64,
            sluice_engine::manager::DEFAULT_PREWRITE_WINDOW_BYTES
        );
        for def in TOPIC_CONFIGS {
            assert!(broker_config_def(def.broker_key).is_some(), "{} has no broker default", def.name);
        }
    }

    #[test]
    fn producer_id_expiration_is_a_live_broker_key_every_log_follows() {
        assert!(validate_broker_config("producer.id.expiration.ms", "1000", true).is_ok());
        assert!(validate_broker_config("producer.id.expiration.ms", "0", true).is_err());
        let static_config = StaticConfig::default();
        let mut dynamic = BTreeMap::new();
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(config.log_config(&BTreeMap::new()).producer_id_expiration_ms, 86_400_000);
        dynamic.insert("producer.id.expiration.ms".to_string(), "1000".to_string());
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(config.log_config(&BTreeMap::new()).producer_id_expiration_ms, 1000);
        assert_eq!(config.get(broker::PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS), 600_000);
        assert!(validate_broker_config("producer.id.expiration.check.interval.ms", "10", true).is_err());
    }

    #[test]
    fn sources_rank_topic_then_dynamic_then_static_then_default() {
        let mut static_config = StaticConfig::default();
        static_config.set("log.retention.hours", "1").unwrap();
        let mut dynamic = BTreeMap::new();
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(
            config.topic_value(&BTreeMap::new(), topic::RETENTION_MS.name()),
            ("3600000".into(), ConfigSource::StaticBroker)
        );
        dynamic.insert("log.retention.ms".to_string(), "5".to_string());
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(
            config.topic_value(&BTreeMap::new(), topic::RETENTION_MS.name()).1,
            ConfigSource::DynamicDefaultBroker
        );
        let overrides = BTreeMap::from([("retention.ms".to_string(), "7".to_string())]);
        assert_eq!(
            config.topic_value(&overrides, topic::RETENTION_MS.name()),
            ("7".into(), ConfigSource::TopicOverride)
        );
        assert_eq!(config.log_config(&overrides).retention_ms, 7);
        // compression.type: the broker's default, then the topic's own.
        dynamic.insert("compression.type".to_string(), "lz4".to_string());
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(
            config.log_config(&overrides).compression,
            TopicCompression::Codec(sluice_engine::batch::Compression::Lz4)
        );
        let overrides = BTreeMap::from([("compression.type".to_string(), "uncompressed".to_string())]);
        assert_eq!(
            config.log_config(&overrides).compression,
            TopicCompression::Codec(sluice_engine::batch::Compression::None)
        );
        // A broker's own dynamic value wins over the cluster-wide one, and says so; the default resource does
        // not see it.
        let own = BTreeMap::from([("log.retention.ms".to_string(), "9".to_string())]);
        let config = EffectiveConfig { own: Some(&own), ..EffectiveConfig::new(&static_config, &dynamic) };
        assert_eq!(config.broker_value("log.retention.ms"), ("9".into(), ConfigSource::DynamicBroker));
        assert_eq!(
            config.cluster_default().broker_value("log.retention.ms"),
            ("5".into(), ConfigSource::DynamicDefaultBroker)
        );
    }

    #[test]
    fn typed_keys_read_their_type_and_fall_back_to_the_broker_and_the_default() {
        let mut static_config = StaticConfig::default();
        static_config.set("num.partitions", "3").unwrap();
        static_config.set("log.retention.ms", "5000").unwrap();
        let mut dynamic = BTreeMap::new();
        dynamic.insert("delete.topic.enable".to_string(), "false".to_string());
        // Validation keeps values like this out; a reader still gets the default rather than garbage.
        dynamic.insert("max.connections".to_string(), "many".to_string());
        let config = EffectiveConfig::new(&static_config, &dynamic);
        assert_eq!(config.get(broker::NUM_PARTITIONS), 3);
        assert!(!config.get(broker::DELETE_TOPIC_ENABLE));
        assert_eq!(config.get(broker::MAX_CONNECTIONS), 10_000);
        assert_eq!(config.get(broker::LOG_FLUSH_POLICY), "always");
        let overrides = BTreeMap::from([("segment.bytes".to_string(), "4096".to_string())]);
        assert_eq!(config.topic(&overrides, topic::SEGMENT_BYTES), 4096);
        assert_eq!(config.topic(&overrides, topic::RETENTION_MS), 5000);
        assert_eq!(config.topic(&overrides, topic::MIN_INSYNC_REPLICAS), 1);
        assert_eq!(topic::RETENTION_MS.broker_key().name(), "log.retention.ms");
    }

    #[test]
    fn ignored_keys_with_a_registry_line_are_kept_and_still_logged_as_unused() {
        // Kafka's thread pools: no effect in Sluice, but validated, kept and described, and settable at run time.
        let mut config = StaticConfig::default();
        config.set("background.threads", "4").unwrap();
        assert_eq!(config.get("background.threads"), Some("4"));
        assert!(config.set("num.io.threads", "zero").is_err());
        config.set("socket.send.buffer.bytes", "1").unwrap();
        assert_eq!(config.get("socket.send.buffer.bytes"), None);
        assert_eq!(config.ignored_keys(), ["background.threads", "socket.send.buffer.bytes"]);
        assert!(validate_broker_config("background.threads", "9", true).is_ok());

        let mut config = StaticConfig::default();
        config.set("log.cleaner.enable", "false").unwrap();
        assert_eq!(config.get("log.cleaner.enable"), Some("false"));
        assert!(config.ignored_keys().is_empty());
    }

    #[test]
    fn bad_values_and_keys_are_refused() {
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "delete,compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "delete,shred").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.1").is_ok());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("delete.retention.ms", "-5").is_err());
        // Kafka 4.1+: an empty policy keeps everything.
        assert!(validate_topic_config("cleanup.policy", "").is_ok());
        assert!(validate_topic_config("cleanup.policy", "delete").is_ok());
        for codec in ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] {
            assert!(validate_topic_config("compression.type", codec).is_ok(), "{codec}");
            assert!(validate_broker_config("compression.type", codec, true).is_ok(), "{codec}");
        }
        assert!(validate_topic_config("compression.type", "brotli").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
        assert!(validate_broker_config("socket.request.max.bytes", "1000000", true).is_err());
        let parsed = StaticConfig::parse_properties("# c\nnum.partitions = 3\n\nlog.retention.ms=5\n").unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(StaticConfig::parse_properties("garbage").is_err());
    }
}
