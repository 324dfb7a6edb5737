//! Config changes on the active controller: AlterConfigs (the whole override set) and IncrementalAlterConfigs
//! (SET, DELETE, APPEND and SUBTRACT per key) for topics, one broker, or every broker's default.

use std::collections::BTreeMap;

use crate::config::{broker_config_def, topic_config_def, validate_broker_config, validate_topic_config};
use crate::metadata::{ClusterImage, MetadataRecord, NodeId};

use super::commands::{AdminError, AdminErrorKind, AdminResult, ConfigChange, ConfigOp, ConfigResource};
use super::topics::OFFSETS_TOPIC;

/// Keys whose values are comma-separated lists, so APPEND and SUBTRACT apply to them (Kafka's LIST type).
pub const LIST_KEYS: &[&str] =
    &["cleanup.policy", "leader.replication.throttled.replicas", "follower.replication.throttled.replicas"];

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
pub fn plan(image: &ClusterImage, change: &ConfigChange) -> AdminResult<MetadataRecord> {
    let (existing, node) = match change.resource {
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
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for (key, op) in &change.ops {
        let key = key.trim().to_string();
        let known = match change.resource {
            ConfigResource::Topic => topic_config_def(&key).is_some(),
            ConfigResource::Broker => broker_config_def(&key).is_some(),
        };
        if !known {
            return Err(invalid(AdminErrorKind::InvalidConfig, format!("unknown config key '{key}'")));
        }
        let value = match op {
            ConfigOp::Delete => {
                remove.push(key);
                continue;
            }
            ConfigOp::Set(value) => value.trim().to_string(),
            ConfigOp::Append(items) | ConfigOp::Subtract(items) => {
                if !LIST_KEYS.contains(&key.as_str()) {
                    return Err(invalid(
                        AdminErrorKind::InvalidConfig,
                        format!("'{key}' is not a list: APPEND and SUBTRACT apply to list-typed keys only"),
                    ));
                }
                let current = set.get(&key).cloned().or_else(|| existing.get(&key).cloned()).unwrap_or_default();
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
                if list.is_empty() {
                    set.remove(&key);
                    remove.push(key);
                    continue;
                }
                list.join(",")
            }
        };
        let checked = match change.resource {
            ConfigResource::Topic => validate_topic_config(&key, &value),
            ConfigResource::Broker => validate_broker_config(&key, &value, true),
        };
        checked.map_err(|error| invalid(AdminErrorKind::InvalidConfig, error.to_string()))?;
        remove.retain(|removed| *removed != key);
        set.insert(key, value);
    }
    if change.replace_all {
        remove.extend(existing.keys().filter(|key| !set.contains_key(*key)).cloned());
    }
    if matches!(change.resource, ConfigResource::Topic) && change.name == OFFSETS_TOPIC {
        // Kafka compacts `__consumer_offsets`, so retention there never loses a group's latest offset. Sluice
        // has no compaction: the coordinator bounds the partition itself (it rewrites the live state and deletes
        // what is older), and retention would delete the only record of live groups' offsets.
        for key in ["retention.ms", "retention.bytes"] {
            let unbounded = match set.get(key) {
                Some(value) => value == "-1",
                None => !remove.iter().any(|removed| removed == key),
            };
            if !unbounded {
                return Err(invalid(
                    AdminErrorKind::InvalidConfig,
                    format!(
                        "{key} of {OFFSETS_TOPIC} must stay -1: without log compaction retention would delete \
                         the committed offsets of live groups (the group coordinator trims the topic itself)"
                    ),
                ));
            }
        }
    }
    Ok(match change.resource {
        ConfigResource::Topic => MetadataRecord::TopicConfigs { name: change.name.clone(), set, remove },
        ConfigResource::Broker => MetadataRecord::BrokerConfigs { node, set, remove },
    })
}

/// Plans every change; the records of those that passed, and one answer per change.
pub fn alter(image: &ClusterImage, changes: &[ConfigChange]) -> (Vec<MetadataRecord>, Vec<AdminResult<()>>) {
    let mut records = Vec::new();
    let answers = changes
        .iter()
        .map(|change| {
            plan(image, change).map(|record| {
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
    fn consumer_offsets_retention_stays_unbounded() {
        let mut image = ClusterImage::default();
        image.apply_entry(
            1,
            &[MetadataRecord::CreateTopic {
                name: OFFSETS_TOPIC.into(),
                topic_id: 2,
                partitions: vec![],
                configs: BTreeMap::from([("retention.ms".into(), "-1".into())]),
            }],
        );
        let on_offsets = |ops: Vec<(&str, ConfigOp)>, replace_all: bool| {
            plan(&image, &ConfigChange { name: OFFSETS_TOPIC.into(), ..change(ops, replace_all) })
        };
        for ops in [
            vec![("retention.ms", ConfigOp::Set("1".into()))],
            vec![("retention.bytes", ConfigOp::Set("1000".into()))],
            vec![("retention.ms", ConfigOp::Delete)],
        ] {
            let err = on_offsets(ops, false).unwrap_err();
            assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
        }
        assert!(on_offsets(vec![("segment.bytes", ConfigOp::Set("1048576".into()))], true).is_err());
        assert!(on_offsets(vec![("segment.bytes", ConfigOp::Set("1048576".into()))], false).is_ok());
        assert!(on_offsets(vec![("retention.bytes", ConfigOp::Set("-1".into()))], false).is_ok());
        // Other topics are not held to it.
        let ordinary = plan(&image_with_topic(), &change(vec![("retention.ms", ConfigOp::Set("1".into()))], false));
        assert!(ordinary.is_ok());
    }

    #[test]
    fn set_delete_and_replace() {
        let image = image_with_topic();
        let record = plan(&image, &change(vec![("segment.ms", ConfigOp::Set("100".into()))], true)).unwrap();
        match record {
            MetadataRecord::TopicConfigs { set, remove, .. } => {
                assert_eq!(set["segment.ms"], "100");
                assert_eq!(remove, vec!["retention.ms".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let err = plan(&image, &change(vec![("no.such", ConfigOp::Delete)], false)).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
    }

    #[test]
    fn append_and_subtract_only_on_lists() {
        let image = image_with_topic();
        let err = plan(&image, &change(vec![("retention.ms", ConfigOp::Append("1".into()))], false)).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::InvalidConfig);
        let record = plan(
            &image,
            &change(vec![("leader.replication.throttled.replicas", ConfigOp::Append("0:1,1:2".into()))], false),
        );
        if let Ok(MetadataRecord::TopicConfigs { set, .. }) = record {
            assert_eq!(set["leader.replication.throttled.replicas"], "0:1,1:2");
        }
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
        assert!(matches!(plan(&image, &ok).unwrap(), MetadataRecord::BrokerConfigs { node: None, .. }));
        let unknown = ConfigChange { name: "9".into(), ..ok };
        assert_eq!(plan(&image, &unknown).unwrap_err().kind, AdminErrorKind::InvalidRequest);
    }
}
