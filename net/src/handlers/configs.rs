//! DescribeConfigs (API 32, v1-4), AlterConfigs (API 33, v0-2) and IncrementalAlterConfigs (API 44, v0-1)
//! for topics and brokers.
//!
//! Describe answers from this shard's image: every key Sluice implements, its value, its source (topic
//! override, dynamic broker, static broker, default) and, on request, the synonyms behind it. Alters run on
//! the controller: validated, committed to the metadata log, published, and applied live by every shard
//! (`PartitionLog::set_config`). AlterConfigs replaces a resource's whole override set, as Kafka's does;
//! IncrementalAlterConfigs sets or deletes single keys. Broker changes apply cluster-wide defaults and only
//! keys Kafka also treats as dynamic are accepted.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use sluice_replication::config::{
    broker_config_def, topic_config_def, validate_broker_config, validate_topic_config, ConfigSource, EffectiveConfig,
    BROKER_CONFIGS, TOPIC_CONFIGS,
};
use sluice_replication::metadata::{ClusterImage, MetadataRecord};

use super::text;
use crate::error::{config_error, controller_error, ResponseError};
use crate::shard::Shard;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

type Failure = (ResponseError, String);

struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    read_only: bool,
    kafka_type: i8,
    doc: &'static str,
    synonyms: Vec<(String, String, ConfigSource)>,
}

fn topic_entries(config: EffectiveConfig<'_>, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = config.topic_value(overrides, def.name);
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), value.clone(), ConfigSource::TopicOverride));
            }
            let (broker_value, broker_source) = config.broker_value(def.broker_key);
            synonyms.push((def.broker_key.to_string(), broker_value, broker_source));
            Entry {
                name: def.name.to_string(),
                value,
                source,
                read_only: false,
                kafka_type: def.kind.kafka_type_code(),
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

fn broker_entries(shard: &Shard, config: EffectiveConfig<'_>) -> Vec<Entry> {
    let settings = &shard.settings;
    let mut entries: Vec<Entry> = BROKER_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = config.broker_value(def.name);
            Entry {
                name: def.name.to_string(),
                synonyms: vec![(def.name.to_string(), value.clone(), source)],
                value,
                source,
                read_only: !def.dynamic,
                kafka_type: def.kind.kafka_type_code(),
                doc: "",
            }
        })
        .collect();
    let runtime = [
        ("node.id", settings.node_id.to_string()),
        ("broker.id", settings.node_id.to_string()),
        ("log.dirs", settings.data_dir.display().to_string()),
        ("listeners", format!("PLAINTEXT://{}", settings.listen)),
        ("advertised.listeners", format!("PLAINTEXT://{}:{}", settings.advertised_host, settings.advertised_port)),
        ("num.shards", settings.shards.to_string()),
    ];
    for (name, value) in runtime {
        entries.push(Entry {
            name: name.to_string(),
            synonyms: vec![(name.to_string(), value.clone(), ConfigSource::StaticBroker)],
            value,
            source: ConfigSource::StaticBroker,
            read_only: true,
            kafka_type: 2,
            doc: "",
        });
    }
    entries
}

fn is_this_broker(shard: &Shard, name: &str) -> bool {
    name.is_empty() || name.trim() == shard.settings.node_id.to_string()
}

pub fn describe(shard: &Shard, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let image = shard.image();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries = shard.with_config(&image, |config| match resource.resource_type {
                RESOURCE_TOPIC => match image.topic(&name) {
                    Some(topic) => Ok(topic_entries(config, &topic.configs)),
                    None => Err((ResponseError::UnknownTopicOrPartition, format!("no topic '{name}'"))),
                },
                RESOURCE_BROKER if is_this_broker(shard, &name) => Ok(broker_entries(shard, config)),
                RESOURCE_BROKER => Err((ResponseError::InvalidRequest, format!("broker '{name}' is not this broker"))),
                other => Err((ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
            });
            let entries = match entries {
                Ok(entries) => entries,
                Err((error, message)) => {
                    return result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                }
            };
            // Null or empty: every key.
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .filter(|keys| !keys.is_empty())
                .map(|keys| keys.iter().map(|k| k.to_string()).collect());
            let configs = entries
                .into_iter()
                .filter(|entry| keys.as_ref().is_none_or(|keys| keys.contains(&entry.name)))
                .map(|entry| {
                    let synonyms = if request.include_synonyms {
                        entry
                            .synonyms
                            .iter()
                            .map(|(name, value, source)| {
                                DescribeConfigsSynonym::default()
                                    .with_name(text(name))
                                    .with_value(Some(text(value)))
                                    .with_source(*source as i8)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(text(&entry.name))
                        .with_value(Some(text(&entry.value)))
                        .with_read_only(entry.read_only)
                        .with_config_source(entry.source as i8)
                        .with_config_type(entry.kafka_type)
                        .with_synonyms(synonyms)
                        .with_documentation(
                            (request.include_documentation && !entry.doc.is_empty()).then(|| text(entry.doc)),
                        )
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One resource's requested change: for a topic the new override set, for the broker the new dynamic set.
#[derive(Debug, Clone)]
struct Change {
    resource_type: i8,
    name: String,
    /// (key, Some(value)) sets, (key, None) deletes.
    ops: Vec<(String, Option<String>)>,
    /// AlterConfigs semantics: keys not named are removed.
    replace: bool,
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
async fn apply(shard: &Rc<Shard>, changes: Vec<Change>, validate_only: bool) -> Vec<(i8, String, Option<Failure>)> {
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

pub async fn alter(shard: &Rc<Shard>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let changes = request
        .resources
        .into_iter()
        .map(|resource| Change {
            resource_type: resource.resource_type,
            name: resource.resource_name.to_string(),
            ops: resource.configs.into_iter().map(|c| (c.name.to_string(), c.value.map(|v| v.to_string()))).collect(),
            replace: true,
        })
        .collect();
    let responses = apply(shard, changes, request.validate_only)
        .await
        .into_iter()
        .map(|(resource_type, name, failure)| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(&name));
            match failure {
                Some((error, message)) => {
                    response.with_error_code(error.code()).with_error_message(Some(text(&message)))
                }
                None => response,
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    shard: &Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut unsupported = Vec::new();
    let mut changes = Vec::new();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let mut ops = Vec::new();
        let mut bad_op = None;
        for config in resource.configs {
            match config.config_operation {
                0 => ops.push((config.name.to_string(), Some(config.value.map(|v| v.to_string()).unwrap_or_default()))),
                1 => ops.push((config.name.to_string(), None)),
                op => bad_op = Some(op),
            }
        }
        match bad_op {
            Some(op) => unsupported.push((resource.resource_type, name, op)),
            None => changes.push(Change { resource_type: resource.resource_type, name, ops, replace: false }),
        }
    }
    let mut results = apply(shard, changes, request.validate_only).await;
    for (resource_type, name, op) in unsupported {
        let message = format!("config operation {op} (APPEND/SUBTRACT) needs a list-typed key; Sluice has none");
        results.push((resource_type, name, Some((ResponseError::InvalidRequest, message))));
    }
    let responses = results
        .into_iter()
        .map(|(resource_type, name, failure)| {
            let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(&name));
            match failure {
                Some((error, message)) => {
                    response.with_error_code(error.code()).with_error_message(Some(text(&message)))
                }
                None => response,
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
