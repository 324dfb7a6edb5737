//! What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: the resource types, which broker a
//! request may name, and the change pipeline of both alters. Alters run on the controller: validated,
//! committed to the metadata log, published, and applied live by every shard (`PartitionLog::set_config`).
//! Broker changes apply cluster-wide defaults, and only keys Kafka also treats as dynamic are accepted.

use std::collections::BTreeMap;
use std::rc::Rc;

use sluice_replication::config::{broker_config_def, topic_config_def, validate_broker_config, validate_topic_config};
use sluice_replication::metadata::{ClusterImage, MetadataRecord};

use crate::error::{config_error, controller_error, ResponseError};
use crate::shard::Shard;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Why a change was refused, and the message for the client.
pub type Failure = (ResponseError, String);

/// Whether a broker resource name means this broker (empty means the default, which is this one).
pub fn is_this_broker(shard: &Shard, name: &str) -> bool {
    name.is_empty() || name.trim() == shard.settings.node_id.to_string()
}

/// One resource's requested change: for a topic the new override set, for the broker the new dynamic set.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_type: i8,
    pub name: String,
    /// (key, Some(value)) sets, (key, None) deletes.
    pub ops: Vec<(String, Option<String>)>,
    /// AlterConfigs semantics: keys not named are removed.
    pub replace: bool,
}

fn plan(shard: &Shard, image: &ClusterImage, change: &Change) -> Result<MetadataRecord, Failure> {
    let existing = match change.resource_type {
        RESOURCE_TOPIC => match image.topic(&change.name) {
            Some(topic) => topic.configs.clone(),
            None => return Err((ResponseError::UnknownTopicOrPartition, format!("no topic '{}'", change.name))),
        },
        RESOURCE_BROKER if is_this_broker(shard, &change.name) => image.broker_configs.clone(),
        RESOURCE_BROKER => {
            return Err((ResponseError::InvalidRequest, format!("broker '{}' is not this broker", change.name)))
        }
        other => return Err((ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
    };
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for (key, value) in &change.ops {
        let key = key.trim().to_string();
        let known = match change.resource_type {
            RESOURCE_TOPIC => topic_config_def(&key).is_some(),
            _ => broker_config_def(&key).is_some(),
        };
        if !known {
            return Err((ResponseError::InvalidConfig, format!("unknown config key '{key}'")));
        }
        match value {
            Some(value) => {
                let checked = match change.resource_type {
                    RESOURCE_TOPIC => validate_topic_config(&key, value),
                    _ => validate_broker_config(&key, value, true),
                };
                checked.map_err(|error| (config_error(&error), error.to_string()))?;
                set.insert(key, value.trim().to_string());
            }
            None => remove.push(key),
        }
    }
    if change.replace {
        remove.extend(existing.keys().filter(|key| !set.contains_key(*key)).cloned());
    }
    Ok(match change.resource_type {
        RESOURCE_TOPIC => MetadataRecord::TopicConfigs { name: change.name.clone(), set, remove },
        _ => MetadataRecord::BrokerConfigs { set, remove },
    })
}

/// Validates every change, commits the valid ones (unless `validate_only`) and publishes. One result per change.
pub async fn apply(shard: &Rc<Shard>, changes: Vec<Change>, validate_only: bool) -> Vec<(i8, String, Option<Failure>)> {
    shard
        .run_on(0, move |shard| async move {
            let failed = |changes: &[Change], failure: Failure| {
                changes.iter().map(|c| (c.resource_type, c.name.clone(), Some(failure.clone()))).collect::<Vec<_>>()
            };
            let Some(controller) = shard.controller() else {
                return failed(&changes, (ResponseError::NotController, String::new()));
            };
            let guard = match controller.lock().await {
                Ok(guard) => guard,
                Err(error) => return failed(&changes, (controller_error(&error), error.to_string())),
            };
            let image = controller.image();
            let mut records = Vec::new();
            let mut results = Vec::new();
            for change in &changes {
                match plan(&shard, &image, change) {
                    Ok(record) => {
                        records.push(record);
                        results.push((change.resource_type, change.name.clone(), None));
                    }
                    Err(failure) => results.push((change.resource_type, change.name.clone(), Some(failure))),
                }
            }
            if !validate_only && !records.is_empty() {
                match shard.commit_and_publish(&controller, guard, records).await {
                    Ok(_) => {}
                    Err(error) => return failed(&changes, (controller_error(&error), error.to_string())),
                }
            }
            results
        })
        .await
}
