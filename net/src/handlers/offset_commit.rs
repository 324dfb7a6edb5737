//! OffsetCommit (API 8), versions 2-8: committed offsets, written to the group's `__consumer_offsets`
//! partition and durable before the answer. Unknown partitions are refused one by one, before the group is
//! asked.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct OffsetCommit;

impl Api for OffsetCommit {
    const KEY: ApiKey = ApiKey::OffsetCommit;
    const VERSIONS: VersionRange = versions(2, 8);
    type Request = OffsetCommitRequest;
    type Response = OffsetCommitResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetCommitRequest) -> OffsetCommitResponse {
        let group = request.group_id.to_string();
        let image = shard.image();
        // Topics the client may not READ, and unknown topics and partitions, are refused per partition, before the
        // group is asked.
        let mut valid = Vec::new();
        let mut results: BTreeMap<(String, i32), i16> = BTreeMap::new();
        for topic in &request.topics {
            let readable = shard.authorized(header, AclOperation::Read, ResourceType::Topic, &topic.name);
            for p in &topic.partitions {
                let key = (topic.name.to_string(), p.partition_index);
                if !readable {
                    results.insert(key, ResponseError::TopicAuthorizationFailed.code());
                } else if image.partition(&key.0, key.1).is_none() {
                    results.insert(key, ResponseError::UnknownTopicOrPartition.code());
                } else {
                    valid.push((
                        key.0.clone(),
                        key.1,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.as_ref().map(|m| m.to_string()),
                    ));
                }
            }
        }
        let errors: Vec<Option<ResponseError>> = match coordinator_shard(shard, header, AclOperation::Read, &group) {
            Err(error) => vec![Some(error); valid.len()],
            Ok(_) if valid.is_empty() => Vec::new(),
            Ok(target) => {
                let (generation, member) = (request.generation_id_or_member_epoch, request.member_id.to_string());
                let offsets = valid.clone();
                let instance = request.group_instance_id.as_ref().map(|id| id.to_string());
                shard
                    .run_on(target, move |shard| async move {
                        match shard.coordinator.fenced_instance(&group, &member, instance.as_deref()) {
                            Some(error) => vec![Some(error); offsets.len()],
                            None => shard.coordinator.commit(&group, generation, &member, offsets).await,
                        }
                    })
                    .await
            }
        };
        for ((topic, partition, ..), error) in valid.iter().zip(errors) {
            results.insert((topic.clone(), *partition), code(error));
        }
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let error = results.get(&(topic.name.to_string(), p.partition_index)).copied().unwrap_or(0);
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error)
                        })
                        .collect(),
                )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }
}
