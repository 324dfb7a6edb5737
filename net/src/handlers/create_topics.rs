//! CreateTopics (API 19), versions 2-7, and the auto-creation Metadata asks for. The request becomes a typed
//! controller command; the active controller (on this node or another) validates and places the partitions
//! and commits the topic, and the answer comes once this broker has applied it.

use std::rc::Rc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};
use sluice_replication::config::TOPIC_CONFIGS;
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse, CreatedTopic, TopicSpec};
use sluice_replication::metadata::validate_topic_name;

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

#[derive(Debug, Clone)]
pub struct TopicOutcome {
    pub name: String,
    pub result: Result<CreatedTopic, (ResponseError, String)>,
}

/// Creates topics through the active controller; one outcome per spec, in order.
pub async fn create(shard: &Rc<Shard>, specs: Vec<TopicSpec>, validate_only: bool) -> Vec<TopicOutcome> {
    let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let answers = match shard.controller_call(ControllerRequest::CreateTopics { topics: specs, validate_only }).await {
        Ok(ControllerResponse::CreateTopics(answers)) if answers.len() == names.len() => answers,
        Ok(other) => {
            let failure = (ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}"));
            return names.into_iter().map(|name| TopicOutcome { name, result: Err(failure.clone()) }).collect();
        }
        Err(error) => {
            let failure = (admin_error(&error), error.message);
            return names.into_iter().map(|name| TopicOutcome { name, result: Err(failure.clone()) }).collect();
        }
    };
    names
        .into_iter()
        .zip(answers)
        .map(|(name, answer)| TopicOutcome {
            name,
            result: answer.map_err(|error| (admin_error(&error), error.message)),
        })
        .collect()
}

/// Metadata's auto-creation: default partitions and replication factor, no overrides. Failures (a bad
/// name, a race with another creator) are left for the Metadata answer to report.
pub async fn auto_create(shard: &Rc<Shard>, names: Vec<String>) {
    let specs = names
        .into_iter()
        .filter(|name| validate_topic_name(name).is_ok())
        .map(|name| TopicSpec {
            name,
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect::<Vec<_>>();
    if specs.is_empty() {
        return;
    }
    for outcome in create(shard, specs, false).await {
        match outcome.result {
            Ok(created) => {
                tracing::info!(topic = %outcome.name, partitions = created.num_partitions, "auto-created topic")
            }
            Err((error, message)) => tracing::debug!(topic = %outcome.name, ?error, message, "auto-create skipped"),
        }
    }
}

pub struct CreateTopics;

impl Api for CreateTopics {
    const KEY: ApiKey = ApiKey::CreateTopics;
    const VERSIONS: VersionRange = versions(2, 7);
    type Request = CreateTopicsRequest;
    type Response = CreateTopicsResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let specs: Vec<TopicSpec> = request
            .topics
            .into_iter()
            .map(|topic| TopicSpec {
                name: topic.name.to_string(),
                num_partitions: topic.num_partitions,
                replication_factor: topic.replication_factor,
                assignments: topic
                    .assignments
                    .into_iter()
                    .map(|a| (a.partition_index, a.broker_ids.into_iter().map(|id| id.0).collect()))
                    .collect(),
                configs: topic
                    .configs
                    .into_iter()
                    .map(|c| (c.name.to_string(), c.value.map(|v| v.to_string())))
                    .collect(),
            })
            .collect();
        // Kafka's check: CREATE on the cluster, or on each topic.
        let on_cluster = shard.authorized_on_cluster(header, AclOperation::Create);
        let (allowed, denied): (Vec<TopicSpec>, Vec<TopicSpec>) = specs.into_iter().partition(|spec| {
            on_cluster || shard.authorized(header, AclOperation::Create, ResourceType::Topic, &spec.name)
        });
        let mut outcomes = create(shard, allowed, request.validate_only).await;
        outcomes.extend(denied.into_iter().map(|spec| TopicOutcome {
            name: spec.name,
            result: Err((ResponseError::TopicAuthorizationFailed, "CREATE on this topic is not allowed".into())),
        }));
        let image = shard.image();
        let topics = outcomes
            .into_iter()
            .map(|outcome| {
                let result = CreatableTopicResult::default().with_name(topic_name(&outcome.name));
                match outcome.result {
                    Err((error, message)) => {
                        tracing::info!(topic = %outcome.name, ?error, message, "create topic refused");
                        result
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                            .with_error_code(error.code())
                            .with_error_message(Some(text(&message)))
                    }
                    Ok(created) => {
                        let configs = shard.with_config(&image, |config| {
                            TOPIC_CONFIGS
                                .iter()
                                .map(|def| {
                                    let (value, source) = config.topic_value(&created.configs, def.name);
                                    CreatableTopicConfigs::default()
                                        .with_name(text(def.name))
                                        .with_value(Some(text(&value)))
                                        .with_config_source(source as i8)
                                })
                                .collect()
                        });
                        result
                            .with_topic_id(uuid::Uuid::from_u128(created.topic_id))
                            .with_num_partitions(created.num_partitions)
                            .with_replication_factor(created.replication_factor)
                            .with_configs(Some(configs))
                    }
                }
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }
}
