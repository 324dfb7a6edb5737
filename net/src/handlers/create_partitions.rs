//! CreatePartitions (API 37), versions 0-3: adds partitions to a topic, placed like CreateTopics places them
//! (or on the replicas given). Runs on shard 0 under the controller's write lock; every shard opens its new
//! partitions before the answer.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::metadata::{ClusterImage, MetadataRecord};

use super::api::{text, topic_name, versions, Api};
use super::create_topics::{fail, replica_lists, Failure};
use crate::error::{controller_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// A CreatePartitions ask: topic, new total count, explicit replica lists.
type PartitionsWanted = (String, i32, Option<Vec<Vec<i32>>>);

pub struct CreatePartitions;

impl Api for CreatePartitions {
    const KEY: ApiKey = ApiKey::CreatePartitions;
    const VERSIONS: VersionRange = versions(0, 3);
    type Request = CreatePartitionsRequest;
    type Response = CreatePartitionsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        _header: &RequestHeader,
        request: CreatePartitionsRequest,
    ) -> CreatePartitionsResponse {
        let validate_only = request.validate_only;
        let wanted: Vec<PartitionsWanted> = request
            .topics
            .into_iter()
            .map(|t| {
                let assignments = t
                    .assignments
                    .map(|list| list.into_iter().map(|a| a.broker_ids.into_iter().map(|id| id.0).collect()).collect());
                (t.name.to_string(), t.count, assignments)
            })
            .collect();
        let results: Vec<(String, Option<Failure>)> = shard
            .run_on(0, move |shard| async move {
                let Some(controller) = shard.controller() else {
                    return wanted
                        .into_iter()
                        .map(|(n, _, _)| (n, Some((ResponseError::NotController, String::new()))))
                        .collect();
                };
                let guard = match controller.lock().await {
                    Ok(guard) => guard,
                    Err(error) => {
                        let failure = (controller_error(&error), error.to_string());
                        return wanted.into_iter().map(|(n, _, _)| (n, Some(failure.clone()))).collect();
                    }
                };
                let image = controller.image();
                let mut records = Vec::new();
                let mut results = Vec::new();
                for (name, count, assignments) in wanted {
                    let result = add_partitions_record(&image, &name, count, assignments);
                    match result {
                        Ok(record) => {
                            records.push(record);
                            results.push((name, None));
                        }
                        Err(failure) => results.push((name, Some(failure))),
                    }
                }
                if !validate_only && !records.is_empty() {
                    match shard.commit_and_publish(&controller, guard, records).await {
                        Ok(_) => {}
                        Err(error) => {
                            let failure = (controller_error(&error), error.to_string());
                            return results.into_iter().map(|(n, _)| (n, Some(failure.clone()))).collect();
                        }
                    }
                }
                results
            })
            .await;
        let results = results
            .into_iter()
            .map(|(name, error)| {
                let result = CreatePartitionsTopicResult::default().with_name(topic_name(&name));
                match error {
                    Some((error, message)) => {
                        result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                    }
                    None => result,
                }
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    }
}

fn add_partitions_record(
    image: &ClusterImage,
    name: &str,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
) -> Result<MetadataRecord, Failure> {
    let Some(topic) = image.topic(name) else {
        return fail(ResponseError::UnknownTopicOrPartition, format!("no topic '{name}'"));
    };
    let current = topic.partitions.len() as i32;
    if count <= current {
        return fail(
            ResponseError::InvalidPartitions,
            format!("topic '{name}' has {current} partitions; the new count {count} must be larger"),
        );
    }
    let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len() as i16);
    let explicit: Vec<(i32, Vec<i32>)> = assignments
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| (current + i as i32, replicas))
        .collect();
    let partitions = replica_lists(image, current, count - current, replication_factor, &explicit)?;
    Ok(MetadataRecord::AddPartitions { name: name.to_string(), partitions })
}
