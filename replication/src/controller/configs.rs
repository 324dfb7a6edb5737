//! Config changes on the active controller: AlterConfigs (the whole override set) and IncrementalAlterConfigs
//! (SET, DELETE, APPEND and SUBTRACT per key) for topics, one broker, every broker's default, or a consumer
//! group (whose session timeout and heartbeat interval must stay within the broker's bounds, as in Kafka).

use std::collections::BTreeMap;

use crate::config::{
    broker_config_def, group_config_def, topic_config_def, validate_broker_config, validate_group_config,
    validate_topic_config, ConfigError, EffectiveConfig,
};
use crate::metadata::{ClusterImage, MetadataRecord, NodeId};

use super::commands::{AdminError, AdminErrorKind, AdminResult, ConfigChange, ConfigOp, ConfigResource};
use super::topics::OFFSETS_TOPIC;
use sluice_engine::CleanupPolicy;

fn invalid(kind: AdminErrorKind, message: impl Into<String>) -> AdminError {
    AdminError::new(kind, message)
}

fn list_items(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

/// The broker a resource name addresses: `None` for the cluster-wide default (the empty name).
fn broker_target(image: &ClusterImage, name: &str) -> AdminResult<Option<NodeId>> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let id: NodeId =
        name.parse().map_err(|_| invalid(AdminErrorKind::InvalidRequest, format!("'{name}' is not a broker id")))?;
    if !image.brokers.contains_key(&id) {
        return Err(invalid(AdminErrorKind::InvalidRequest, format!("broker {id} is not registered")));
    }
    Ok(Some(id))
}

/// Plans one resource's change: the record that makes it, or why it is refused.
pub fn plan(image: &ClusterImage, config: &EffectiveConfig<'_>, change: &ConfigChange) -> AdminResult<MetadataRecord> {
    let (existing, node) = match change.resource {
        ConfigResource::Group if change.name.is_empty() => {
            return Err(invalid(AdminErrorKind::InvalidRequest, "a group config needs a group id"))
        }
        ConfigResource::Group => (image.group_configs.get(&change.name).cloned().unwrap_or_default(), None),
        ConfigResource::Topic => match image.topic(&change.name) {
            Some(topic) => (topic.configs.clone(), None),
            None => {
                return Err(invalid(AdminErrorKind::UnknownTopicOrPartition, format!("no topic '{}'", change.name)))
            }
        },
        ConfigResource::Broker => {
            let node = broker_target(image, &change.name)?;
            let existing = match node {
                None => image.broker_configs.clone(),
                Some(node) => image.node_configs.get(&node).cloned().unwrap_or_default(),
            };
            (existing, node)
        }
    };
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    let mut remove = Vec::new();
    for (key, op) in &change.ops {
        let key = key.trim().to_string();
        // The key's kind, and the default APPEND and SUBTRACT start from when there is no value yet: Kafka's
        // static default of the key (a topic key's is its broker key's), not the broker's configured value.
        let def = match change.resource {
            ConfigResource::Topic => topic_config_def(&key)
                .map(|def| (def.kind, broker_config_def(def.broker_key).map_or("", |broker| broker.default))),
            ConfigResource::Broker => broker_config_def(&key).map(|def| (def.kind, def.default)),
            ConfigResource::Group => group_config_def(&key)
                .map(|def| (def.kind, broker_config_def(def.broker_key).map_or("", |broker| broker.default))),
        };
        let Some((kind, default)) = def else {
            return Err(invalid(AdminErrorKind::InvalidConfig, format!("unknown config key '{key}'")));
        };
        let value = match op {
            ConfigOp::Delete => {
                remove.push(key);
                continue;
            }
            ConfigOp::Set(value) => value.trim().to_string(),
            ConfigOp::Append(items) | ConfigOp::Subtract(items) => {
                let name = if matches!(op, ConfigOp::Append(_)) { "APPEND" } else { "SUBTRACT" };
                if !kind.is_list() {
                    return Err(invalid(
                        AdminErrorKind::InvalidConfig,
                        format!("can't {name} to '{key}': its type is not LIST (APPEND and SUBTRACT apply to lists)"),
                    ));
                }
                // The value in effect after the request's earlier operations: this request's, else the stored
                // override, else the default.
                let current = match set.get(&key) {
                    Some(value) => value.clone(),
                    None if remove.contains(&key) => default.to_string(),
                    None => existing.get(&key).cloned().unwrap_or_else(|| default.to_string()),
                };
                let mut list = list_items(&current);
                let changed = list_items(items);
                if matches!(op, ConfigOp::Append(_)) {
                    for item in changed {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                } else {
                    list.retain(|item| !changed.contains(item));
                }
                // An emptied list stays an override of "" (Kafka), validated like a SET of "".
                list.join(",")
            }
        };
        let checked = match change.resource {
            ConfigResource::Topic => validate_topic_config(&key, &value),
            ConfigResource::Broker => validate_broker_config(&key, &value, true),
            ConfigResource::Group => validate_group_config(&key, &value),
        };
        // A value a broker key's type refuses is INVALID_REQUEST on a broker resource, where Kafka's broker-side
        // check answers it; on topics and groups it is INVALID_CONFIG.
        checked.map_err(|error| {
            let kind = match (&change.resource, &error) {
                (ConfigResource::Broker, ConfigError::InvalidValue { .. }) => AdminErrorKind::InvalidRequest,
                _ => AdminErrorKind::InvalidConfig,
            };
            invalid(kind, error.to_string())
        })?;
        remove.retain(|removed| *removed != key);
        set.insert(key, value);
    }
    if change.replace_all {
        remove.extend(existing.keys().filter(|key| !set.contains_key(*key)).cloned());
    }
    if matches!(change.resource, ConfigResource::Topic) && change.name == OFFSETS_TOPIC {
        // `__consumer_offsets` is compacted, only: the cleaner keeps every group's latest records. With `delete`
        // too, retention would delete the only record of a live group's offsets, so the policy stays `compact`
        // (the broker applies it whatever the topic says). Retention keys may change: without `delete` they
        // have no effect, as in Kafka.
        let policy = set.get("cleanup.policy").map(|value| CleanupPolicy::parse(value));
        if policy.is_some_and(|policy| policy != CleanupPolicy { delete: false, compact: true }) {
            return Err(invalid(
                AdminErrorKind::InvalidConfig,
                format!(
                    "cleanup.policy of {OFFSETS_TOPIC} must stay compact: deletion would lose live groups' offsets"
                ),
            ));
        }
    }
    if matches!(change.resource, ConfigResource::Group) {
        // The group's values together, as they will be: each within the broker's bounds, and the session
        // timeout above the heartbeat interval (Kafka's `GroupConfig.validateValues`).
        let mut after = existing.clone();
        after.retain(|key, _| !remove.contains(key));
        after.extend(set.iter().map(|(key, value)| (key.clone(), value.clone())));
        config.validate_group_configs(&after).map_err(|reason| invalid(AdminErrorKind::InvalidConfig, reason))?;
    }
    Ok(match change.resource {
        ConfigResource::Topic => MetadataRecord::TopicConfigs { name: change.name.clone(), set, remove },
        ConfigResource::Broker => MetadataRecord::BrokerConfigs { node, set, remove },
        ConfigResource::Group => MetadataRecord::GroupConfigs { group: change.name.clone(), set, remove },
    })
}

/// Plans every change; the records of those that passed, and one answer per change.
pub fn alter(
    image: &ClusterImage,
    config: &EffectiveConfig<'_>,
    changes: &[ConfigChange],
) -> (Vec<MetadataRecord>, Vec<AdminResult<()>>) {
    let mut records = Vec::new();
    let answers = changes
        .iter()
        .map(|change| {
            plan(image, config, change).map(|record| {
                records.push(record);
            })
        })
        .collect();
    (records, answers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::StaticConfig;

    fn plan_with_defaults(image: &ClusterImage, change: &ConfigChange) -> AdminResult<MetadataRecord> {
        let (static_config, dynamic) = (StaticConfig::default(), BTreeMap::new());
        plan(image, &EffectiveConfig::new(&static_config, &dynamic), change)
    }

    #[test]
    fn group_configs_stay_within_the_brokers_bounds() {
        let mut image = ClusterImage::default();
        let group = |ops: Vec<(&str, ConfigOp)>| ConfigChange {
            resource: ConfigResource::Group,
            name: "my-group".into(),
            ops: ops.into_iter().map(|(k, op)| (k.to_string(), op)).collect(),
            replace_all: false,
        };
        // Kafka's defaults: session timeouts in [45 s, 60 s], heartbeat intervals in [5 s, 15 s].
        let record =
            plan_with_defaults(&image, &group(vec![("consumer.session.timeout.ms", ConfigOp::Set("50000".into()))]))
                .unwrap();
        assert!(matches!(&record, MetadataRecord::GroupConfigs { group, set, .. }
            if group == "my-group" && set["consumer.session.timeout.ms"] == "50000"));
        image.apply_entry(1, &[record]);
        assert_eq!(image.group_configs["my-group"]["consumer.session.timeout.ms"], "50000");
        for (key, value) in [
            ("consumer.session.timeout.ms", "44999"),
            ("consumer.session.timeout.ms", "60001"),
            ("consumer.heartbeat.interval.ms", "4999"),
            ("consumer.heartbeat.interval.ms", "15001"),
            ("consumer.session.timeout.ms", "x"),
        ] {
            let err = plan_with_defaults(&image, &group(vec![(key, ConfigOp::Set(value.into()))])).unwrap_err();
            assert_eq!(err.kind, AdminErrorKind::InvalidConfig, "{key}={value}");
        }
        // Share-group keys, list operations and an empty group id are refused.
        let err = plan_with_defaults(&image, &group(vec![("share.session.timeout.ms", ConfigOp::Set("45000".into()))]));
        assert_eq!(err.unwrap_err().kind, AdminErrorKind::InvalidConfig);
        let err =
            plan_with_defaults(&image, &group(vec![("consumer.session.timeout.ms", ConfigOp::Append("1".into()))]));
        assert_eq!(err.unwrap_err().kind, AdminErrorKind::InvalidConfig);
        let err = plan_with_defaults(&image, &ConfigChange { name: String::new(), ..group(vec![]) });
        assert_eq!(err.unwrap_err().kind, AdminErrorKind::InvalidRequest);
        // DELETE takes the override away; the image drops a group left with none.
        let record =
            plan_with_defaults(&image, &group(vec![("consumer.session.timeout.ms", ConfigOp::Delete)])).unwrap();
        image.apply_entry(2, &[record]);
        assert!(!image.group_configs.contains_key("my-group"));
    }

    fn image_with_topic() -> ClusterImage {
        let mut image = ClusterImage::default();
        image.apply_entry(
            1,
            &[MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: 1,
                partitions: vec![],
                configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
            }],
        );
        image
    }

    fn change(ops: Vec<(&str, ConfigOp)>, replace_all: bool) -> ConfigChange {
        ConfigChange {
            resource: ConfigResource::Topic,
            name: "t".into(),
            ops: ops.into_iter().map(|(k, op)| (k.to_string(), op)).collect(),
            replace_all,
        }
    }

    #[test]
    fn consumer_offsets_stays_compacted() {
        let mut image = ClusterImage::default();
        image.apply_entry(
            1,
            &[MetadataRecord::CreateTopic {
                name: OFFSETS_TOPIC.into(),
                topic_id: 2,
                partitions: vec![],
                configs: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
            }],
        );
        let on_offsets = |ops: Vec<(&str, ConfigOp)>| {
            plan_with_defaults(&image, &ConfigChange { name: OFFSETS_TOPIC.into(), ..change(ops, false) })
        };
        for value in ["delete", "compact,delete"] {
            let err = on_offsets(vec![("cleanup.policy", ConfigOp::Set(value.into()))]).unwrap_err();
            assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
        }
        let err = on_offsets(vec![("cleanup.policy", ConfigOp::Append("delete".into()))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
        assert!(on_offsets(vec![("retention.ms", ConfigOp::Set("1000".into()))]).is_ok());
        assert!(on_offsets(vec![("segment.bytes", ConfigOp::Set("1048576".into()))]).is_ok());
        // Other topics are not held to it.
        let ordinary = plan_with_defaults(
            &image_with_topic(),
            &change(vec![("cleanup.policy", ConfigOp::Set("delete".into()))], false),
        );
        assert!(ordinary.is_ok());
    }

    #[test]
    fn set_delete_and_replace() {
        let image = image_with_topic();
        let record =
            plan_with_defaults(&image, &change(vec![("segment.ms", ConfigOp::Set("100".into()))], true)).unwrap();
        match record {
            MetadataRecord::TopicConfigs { set, remove, .. } => {
                assert_eq!(set["segment.ms"], "100");
                assert_eq!(remove, vec!["retention.ms".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let err = plan_with_defaults(&image, &change(vec![("no.such", ConfigOp::Delete)], false)).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
    }

    fn topic_record(
        image: &ClusterImage,
        ops: Vec<(&str, ConfigOp)>,
    ) -> AdminResult<(BTreeMap<String, String>, Vec<String>)> {
        match plan_with_defaults(image, &change(ops, false))? {
            MetadataRecord::TopicConfigs { set, remove, .. } => Ok((set, remove)),
            other => panic!("{other:?}"),
        }
    }

    fn append(value: &str) -> ConfigOp {
        ConfigOp::Append(value.into())
    }

    fn subtract(value: &str) -> ConfigOp {
        ConfigOp::Subtract(value.into())
    }

    #[test]
    fn append_and_subtract_only_on_list_keys() {
        let image = image_with_topic();
        for op in [append("1"), subtract("5")] {
            let err = topic_record(&image, vec![("retention.ms", op)]).unwrap_err();
            assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
            assert!(err.message.contains("not LIST"), "{}", err.message);
        }
    }

    #[test]
    fn append_adds_what_is_missing_and_subtract_removes() {
        const LEADER: &str = "leader.replication.throttled.replicas";
        let image = image_with_topic();
        // No override: the list starts from the default (empty); APPEND adds only items not already there.
        let (set, _) = topic_record(&image, vec![(LEADER, append("0:1,1:2")), (LEADER, append("1:2,2:3"))]).unwrap();
        assert_eq!(set[LEADER], "0:1,1:2,2:3");
        let mut image = image;
        image.apply_entry(2, &[MetadataRecord::TopicConfigs { name: "t".into(), set: set.clone(), remove: vec![] }]);
        let (set, _) = topic_record(&image, vec![(LEADER, subtract("1:2,9:9"))]).unwrap();
        assert_eq!(set[LEADER], "0:1,2:3");
        // Subtracting every item leaves an empty override, as Kafka does, not the default.
        let (set, remove) = topic_record(&image, vec![(LEADER, subtract("0:1,1:2,2:3"))]).unwrap();
        assert_eq!(set[LEADER], "");
        assert!(remove.is_empty());
        // The result is validated like a SET.
        let err = topic_record(&image, vec![(LEADER, append("not-a-pair"))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
    }

    #[test]
    fn cleanup_policy_takes_append_and_subtract_as_kafka_does() {
        let image = image_with_topic();
        // APPEND starts from the default `delete`.
        let (set, _) = topic_record(&image, vec![("cleanup.policy", append("compact"))]).unwrap();
        assert_eq!(set["cleanup.policy"], "delete,compact");
        let (set, _) = topic_record(&image, vec![("cleanup.policy", append("delete"))]).unwrap();
        assert_eq!(set["cleanup.policy"], "delete");
        let (set, _) = topic_record(&image, vec![("cleanup.policy", subtract("compact"))]).unwrap();
        assert_eq!(set["cleanup.policy"], "delete");
        // Removing the last policy leaves none: every record is kept (Kafka 4.1+). An unknown one is refused.
        let (set, _) = topic_record(&image, vec![("cleanup.policy", subtract("delete"))]).unwrap();
        assert_eq!(set["cleanup.policy"], "");
        let err = topic_record(&image, vec![("cleanup.policy", append("shred"))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
    }

    #[test]
    fn broker_list_keys_take_append_and_subtract() {
        let image = image_with_topic();
        let broker = |ops: Vec<(&str, ConfigOp)>| {
            let change = ConfigChange {
                resource: ConfigResource::Broker,
                name: String::new(),
                ops: ops.into_iter().map(|(k, op)| (k.to_string(), op)).collect(),
                replace_all: false,
            };
            plan_with_defaults(&image, &change).map(|record| match record {
                MetadataRecord::BrokerConfigs { set, .. } => set,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(broker(vec![("log.cleanup.policy", append("delete"))]).unwrap()["log.cleanup.policy"], "delete");
        let set = broker(vec![("log.cleanup.policy", append("compact"))]).unwrap();
        assert_eq!(set["log.cleanup.policy"], "delete,compact");
        // Topic-level lists are refused on a broker resource, as Kafka refuses them.
        assert!(broker(vec![("follower.replication.throttled.replicas", append("*"))]).is_err());
        let err = broker(vec![("log.retention.ms", append("1"))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
        // A value the key's type refuses: INVALID_REQUEST on a broker (Kafka's answer), INVALID_CONFIG on a topic.
        let err = broker(vec![("log.cleanup.policy", append("shred"))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidRequest);
        let err = broker(vec![("log.retention.ms", ConfigOp::Set("soon".into()))]).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidRequest);
    }

    #[test]
    fn broker_resources_address_the_default_or_one_broker() {
        let image = image_with_topic();
        let ok = ConfigChange {
            resource: ConfigResource::Broker,
            name: String::new(),
            ops: vec![("log.retention.ms".into(), ConfigOp::Set("1000".into()))],
            replace_all: false,
        };
        assert!(matches!(plan_with_defaults(&image, &ok).unwrap(), MetadataRecord::BrokerConfigs { node: None, .. }));
        let unknown = ConfigChange { name: "9".into(), ..ok };
        assert_eq!(plan_with_defaults(&image, &unknown).unwrap_err().kind, AdminErrorKind::InvalidRequest);
    }
}
