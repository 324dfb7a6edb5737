//! DescribeConfigs (API 32), versions 1-4, for topics, this broker and consumer groups (any group id, as
//! Kafka: a group without configs of its own shows the broker's). Answers from this shard's image: every key
//! Sluice implements, its value, its source (topic or group override, dynamic broker, static broker, default)
//! and, on request, the synonyms behind it.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::config::{
    ConfigSource, EffectiveConfig, TopicConfigDef, BROKER_CONFIGS, GROUP_CONFIGS, TOPIC_CONFIGS,
};

use super::api::{text, versions, Api};
use super::config_changes::{is_this_broker, refused, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    read_only: bool,
    kafka_type: i8,
    doc: &'static str,
    synonyms: Vec<(String, String, ConfigSource)>,
}

/// The entries of a topic (`TOPIC_CONFIGS`, `ConfigSource::TopicOverride`) or a group (`GROUP_CONFIGS`,
/// `ConfigSource::GroupOverride`): each key's override, else the broker key behind it.
fn resource_entries(
    config: EffectiveConfig<'_>,
    defs: &[TopicConfigDef],
    overridden: ConfigSource,
    overrides: &BTreeMap<String, String>,
) -> Vec<Entry> {
    defs.iter()
        .map(|def| {
            let (value, source) = match overrides.get(def.name) {
                Some(value) => (value.clone(), overridden),
                None => config.broker_value(def.broker_key),
            };
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), value.clone(), overridden));
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
    // What the node runs with, whatever the file or flags said.
    let listen = settings.listen.map_or_else(String::new, |listen| format!("PLAINTEXT://{listen}"));
    let runtime = [
        ("node.id", settings.node_id.to_string()),
        ("broker.id", settings.node_id.to_string()),
        ("log.dirs", settings.data_dir.display().to_string()),
        ("listeners", listen),
        ("advertised.listeners", format!("PLAINTEXT://{}:{}", settings.advertised_host, settings.advertised_port)),
        ("num.shards", settings.shards.to_string()),
    ];
    let mut entries: Vec<Entry> = BROKER_CONFIGS
        .iter()
        .filter(|def| !runtime.iter().any(|(name, _)| *name == def.name))
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

pub struct DescribeConfigs;

impl Api for DescribeConfigs {
    const KEY: ApiKey = ApiKey::DescribeConfigs;
    const VERSIONS: VersionRange = versions(1, 4);
    type Request = DescribeConfigsRequest;
    type Response = DescribeConfigsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        let image = shard.image();
        let results = request
            .resources
            .into_iter()
            .map(|resource| {
                let name = resource.resource_name.to_string();
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                if let Some((error, message)) =
                    refused(shard, header, resource.resource_type, &name, AclOperation::DescribeConfigs)
                {
                    return result.with_error_code(error.code()).with_error_message(Some(text(&message)));
                }
                let entries = shard.with_config(&image, |config| match resource.resource_type {
                    RESOURCE_TOPIC => match image.topic(&name) {
                        Some(topic) => {
                            Ok(resource_entries(config, TOPIC_CONFIGS, ConfigSource::TopicOverride, &topic.configs))
                        }
                        None => Err((ResponseError::UnknownTopicOrPartition, format!("no topic '{name}'"))),
                    },
                    RESOURCE_BROKER if name.trim().is_empty() => Ok(broker_entries(shard, config.cluster_default())),
                    RESOURCE_BROKER if is_this_broker(shard, &name) => Ok(broker_entries(shard, config)),
                    RESOURCE_BROKER => {
                        Err((ResponseError::InvalidRequest, format!("broker '{name}' is not this broker")))
                    }
                    RESOURCE_GROUP if name.is_empty() => {
                        Err((ResponseError::InvalidRequest, "a group config needs a group id".to_string()))
                    }
                    RESOURCE_GROUP => {
                        let none = BTreeMap::new();
                        let overrides = image.group_configs.get(&name).unwrap_or(&none);
                        Ok(resource_entries(config, GROUP_CONFIGS, ConfigSource::GroupOverride, overrides))
                    }
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
}
