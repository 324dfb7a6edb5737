//! OffsetDelete (API 47), version 0: removes a group's offsets for topics it is not subscribed to.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{topic_name, versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct OffsetDelete;

impl Api for OffsetDelete {
    const KEY: ApiKey = ApiKey::OffsetDelete;
    const VERSIONS: VersionRange = versions(0, 0);
    type Request = OffsetDeleteRequest;
    type Response = OffsetDeleteResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
        let group = request.group_id.to_string();
        // Kafka's checks: DELETE on the group, then READ on each topic.
        let partitions: Vec<(String, i32, bool)> = request
            .topics
            .iter()
            .flat_map(|t| {
                let readable = shard.authorized(header, AclOperation::Read, ResourceType::Topic, &t.name);
                t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index, readable))
            })
            .collect();
        let outcome = match coordinator_shard(shard, header, AclOperation::Delete, &group) {
            Err(error) => Err(error),
            Ok(target) => {
                let asked: Vec<(String, i32)> =
                    partitions.iter().filter(|(_, _, readable)| *readable).map(|(t, p, _)| (t.clone(), *p)).collect();
                shard
                    .run_on(target, move |shard| async move { shard.coordinator.delete_offsets(&group, asked).await })
                    .await
            }
        };
        match outcome {
            Err(error) => OffsetDeleteResponse::default().with_error_code(error.code()),
            Ok(errors) => {
                let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
                let mut errors = errors.into_iter();
                for (topic, partition, readable) in partitions {
                    let error =
                        if readable { errors.next().flatten() } else { Some(ResponseError::TopicAuthorizationFailed) };
                    by_topic.entry(topic).or_default().push(
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(partition)
                            .with_error_code(code(error)),
                    );
                }
                let topics = by_topic
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetDeleteResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
                    })
                    .collect();
                OffsetDeleteResponse::default().with_topics(topics)
            }
        }
    }
}
