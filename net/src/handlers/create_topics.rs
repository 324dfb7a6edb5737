//! CreateTopics (API 19), versions 2-7, and the auto-creation Metadata asks for. Runs on shard 0 under the
//! controller's write lock: validate against the current image, commit the records (unless `validate_only`),
//! then publish the new image and wait until every shard has opened its partitions. Placement
//! ([`replica_lists`]) is shared with CreatePartitions.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::config::{broker, validate_topic_config, TOPIC_CONFIGS};
use sluice_replication::controller::new_topic_id;
use sluice_replication::metadata::{validate_topic_name, ClusterImage, MetadataRecord, PartitionImage};

use super::api::{text, topic_name, versions, Api};
use crate::error::{config_error, controller_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// What a client asked to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit replica lists per partition index (CreateTopics `assignments`).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct TopicOutcome {
    pub name: String,
    pub error: Option<(ResponseError, String)>,
    pub topic_id: u128,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// (name, value, source) of every topic config, for CreateTopics v5+.
    pub configs: Vec<(String, String, i8)>,
}

/// Why a topic change was refused, and the message for the client.
pub type Failure = (ResponseError, String);

pub(super) fn fail<T>(error: ResponseError, message: impl Into<String>) -> Result<T, Failure> {
    Err((error, message.into()))
}

/// Replica lists for `count` new partitions starting at `first`: the explicit ones if given (checked against
/// the registered brokers), otherwise this broker for each replica.
pub(super) fn replica_lists(
    image: &ClusterImage,
    first: i32,
    count: i32,
    replication_factor: i16,
    explicit: &[(i32, Vec<i32>)],
) -> Result<Vec<PartitionImage>, Failure> {
    if !explicit.is_empty() {
        if explicit.len() != count as usize {
            return fail(ResponseError::InvalidReplicaAssignment, "assignments must cover every new partition");
        }
        let mut lists = Vec::with_capacity(explicit.len());
        for (offset, (index, replicas)) in explicit.iter().enumerate() {
            if *index != first + offset as i32 {
                return fail(
                    ResponseError::InvalidReplicaAssignment,
                    "assignment partition indexes must be contiguous",
                );
            }
            let unique: HashSet<_> = replicas.iter().collect();
            if replicas.is_empty() || unique.len() != replicas.len() {
                return fail(ResponseError::InvalidReplicaAssignment, "a replica list is empty or repeats a broker");
            }
            if let Some(unknown) = replicas.iter().find(|id| !image.brokers.contains_key(id)) {
                return fail(ResponseError::InvalidReplicaAssignment, format!("broker {unknown} is not registered"));
            }
            lists.push(PartitionImage::new(replicas.clone()));
        }
        return Ok(lists);
    }
    let brokers: Vec<i32> = image.brokers.keys().copied().collect();
    if replication_factor < 1 || replication_factor as usize > brokers.len() {
        return fail(
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {replication_factor} with {} broker(s) available", brokers.len()),
        );
    }
    Ok((0..count)
        .map(|index| {
            let start = (first + index) as usize;
            PartitionImage::new(
                (0..replication_factor as usize).map(|r| brokers[(start + r) % brokers.len()]).collect(),
            )
        })
        .collect())
}

fn check_spec(shard: &Shard, image: &ClusterImage, spec: &TopicSpec) -> Result<MetadataRecord, Failure> {
    validate_topic_name(&spec.name).map_err(|message| (ResponseError::InvalidTopicException, message))?;
    if image.topic(&spec.name).is_some() {
        return fail(ResponseError::TopicAlreadyExists, format!("topic '{}' already exists", spec.name));
    }
    let (default_partitions, default_replication) = shard.with_config(image, |config| {
        (config.get(broker::NUM_PARTITIONS), config.get(broker::DEFAULT_REPLICATION_FACTOR))
    });
    let num_partitions = match spec.num_partitions {
        -1 if spec.assignments.is_empty() => default_partitions,
        -1 => spec.assignments.len() as i32,
        n if n >= 1 => n,
        n => return fail(ResponseError::InvalidPartitions, format!("number of partitions {n} must be at least 1")),
    };
    let replication_factor =
        if spec.replication_factor == -1 { default_replication as i16 } else { spec.replication_factor };
    let partitions = replica_lists(image, 0, num_partitions, replication_factor, &spec.assignments)?;
    let mut configs = BTreeMap::new();
    for (key, value) in &spec.configs {
        let Some(value) = value else { continue };
        validate_topic_config(key, value).map_err(|error| (config_error(&error), error.to_string()))?;
        configs.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(MetadataRecord::CreateTopic { name: spec.name.clone(), topic_id: new_topic_id(), partitions, configs })
}

/// Creates topics on shard 0 and returns one outcome per spec, in order.
pub async fn create(shard: &Rc<Shard>, specs: Vec<TopicSpec>, validate_only: bool) -> Vec<TopicOutcome> {
    shard
        .run_on(0, move |shard| async move {
            let Some(controller) = shard.controller() else {
                return outcomes_all_failed(&specs, ResponseError::NotController, "no controller on this shard");
            };
            let guard = match controller.lock().await {
                Ok(guard) => guard,
                Err(error) => return outcomes_all_failed(&specs, controller_error(&error), &error.to_string()),
            };
            let image = controller.image();
            let mut seen = HashSet::new();
            let mut records = Vec::new();
            let mut checked = Vec::new();
            for spec in &specs {
                let result = if !seen.insert(spec.name.clone()) {
                    fail(ResponseError::InvalidRequest, "topic named twice in one request")
                } else {
                    check_spec(&shard, &image, spec)
                };
                if let Ok(record) = &result {
                    records.push(record.clone());
                }
                checked.push(result);
            }
            let mut committed = image;
            if !validate_only && !records.is_empty() {
                match shard.commit_and_publish(&controller, guard, records).await {
                    Ok(image) => committed = image,
                    Err(error) => return outcomes_all_failed(&specs, controller_error(&error), &error.to_string()),
                }
            }
            specs.iter().zip(checked).map(|(spec, result)| outcome(&shard, &committed, spec, result)).collect()
        })
        .await
}

fn outcome(
    shard: &Shard,
    image: &ClusterImage,
    spec: &TopicSpec,
    result: Result<MetadataRecord, Failure>,
) -> TopicOutcome {
    match result {
        Ok(MetadataRecord::CreateTopic { name, topic_id, partitions, configs }) => TopicOutcome {
            name,
            error: None,
            topic_id,
            num_partitions: partitions.len() as i32,
            replication_factor: partitions.first().map_or(0, |p| p.replicas.len() as i16),
            configs: shard.with_config(image, |config| {
                TOPIC_CONFIGS
                    .iter()
                    .map(|def| {
                        let (value, source) = config.topic_value(&configs, def.name);
                        (def.name.to_string(), value, source as i8)
                    })
                    .collect()
            }),
        },
        Ok(_) => failed_outcome(spec, ResponseError::UnknownServerError, "unexpected record"),
        Err((error, message)) => failed_outcome(spec, error, &message),
    }
}

fn failed_outcome(spec: &TopicSpec, error: ResponseError, message: &str) -> TopicOutcome {
    TopicOutcome {
        name: spec.name.clone(),
        error: Some((error, message.to_string())),
        topic_id: 0,
        num_partitions: -1,
        replication_factor: -1,
        configs: Vec::new(),
    }
}

fn outcomes_all_failed(specs: &[TopicSpec], error: ResponseError, message: &str) -> Vec<TopicOutcome> {
    specs.iter().map(|spec| failed_outcome(spec, error, message)).collect()
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
        match outcome.error {
            None => tracing::info!(topic = %outcome.name, partitions = outcome.num_partitions, "auto-created topic"),
            Some((error, message)) => tracing::debug!(topic = %outcome.name, ?error, message, "auto-create skipped"),
        }
    }
}

pub struct CreateTopics;

impl Api for CreateTopics {
    const KEY: ApiKey = ApiKey::CreateTopics;
    const VERSIONS: VersionRange = versions(2, 7);
    type Request = CreateTopicsRequest;
    type Response = CreateTopicsResponse;

    async fn handle(shard: &Rc<Shard>, _header: &RequestHeader, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let specs = request
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
        let outcomes = create(shard, specs, request.validate_only).await;
        let topics = outcomes
            .into_iter()
            .map(|outcome| {
                let result = CreatableTopicResult::default()
                    .with_name(topic_name(&outcome.name))
                    .with_topic_id(uuid::Uuid::from_u128(outcome.topic_id))
                    .with_num_partitions(outcome.num_partitions)
                    .with_replication_factor(outcome.replication_factor);
                match outcome.error {
                    Some((error, message)) => {
                        tracing::info!(topic = %outcome.name, ?error, message, "create topic refused");
                        result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                    }
                    None => result.with_configs(Some(
                        outcome
                            .configs
                            .iter()
                            .map(|(name, value, source)| {
                                CreatableTopicConfigs::default()
                                    .with_name(text(name))
                                    .with_value(Some(text(value)))
                                    .with_config_source(*source)
                            })
                            .collect(),
                    )),
                }
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }
}
