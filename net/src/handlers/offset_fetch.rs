//! OffsetFetch (API 9), versions 1-8: a group's committed offsets, all or those asked for (-1 where none);
//! v8 asks for several groups at once.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{text, topic_name, versions, Api};
use super::group_routing::coordinator_shard;
use crate::error::ResponseError;
use crate::groups::CommittedOffset;
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// Per partition: its committed offset (`None`: none), or TOPIC_AUTHORIZATION_FAILED.
type FetchedOffsets = Vec<(String, i32, Result<Option<CommittedOffset>, ResponseError>)>;

/// A group's offsets, with Kafka's checks: DESCRIBE on the group, then DESCRIBE on each topic. Topics the client
/// may not describe are left out of "all offsets" and answered TOPIC_AUTHORIZATION_FAILED when named.
async fn fetch_group_offsets(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    group: String,
    wanted: Option<Vec<(String, i32)>>,
) -> Result<FetchedOffsets, ResponseError> {
    let target = coordinator_shard(shard, header, AclOperation::Describe, &group)?;
    let named = wanted.is_some();
    let offsets =
        shard.run_on(target, move |shard| async move { shard.coordinator.fetch_offsets(&group, wanted) }).await?;
    // A topic's partitions come together: the check is made once per topic.
    let mut last: Option<(String, bool)> = None;
    let mut describable = |topic: &str| match &last {
        Some((checked, allowed)) if checked == topic => *allowed,
        _ => {
            let allowed = shard.authorized(header, AclOperation::Describe, ResourceType::Topic, topic);
            last = Some((topic.to_string(), allowed));
            allowed
        }
    };
    Ok(offsets
        .into_iter()
        .filter_map(|(topic, partition, committed)| {
            if describable(&topic) {
                Some((topic, partition, Ok(committed)))
            } else {
                named.then_some((topic, partition, Err(ResponseError::TopicAuthorizationFailed)))
            }
        })
        .collect())
}

/// A partition's committed offset, leader epoch, metadata and error code.
fn parts(committed: Result<Option<CommittedOffset>, ResponseError>) -> (i64, i32, String, i16) {
    match committed {
        Ok(committed) => {
            let (offset, epoch, metadata) =
                committed.map_or((-1, -1, String::new()), |c| (c.offset, c.leader_epoch, c.metadata));
            (offset, epoch, metadata, 0)
        }
        Err(error) => (-1, -1, String::new(), error.code()),
    }
}

pub struct OffsetFetch;

impl Api for OffsetFetch {
    const KEY: ApiKey = ApiKey::OffsetFetch;
    const VERSIONS: VersionRange = versions(1, 8);
    type Request = OffsetFetchRequest;
    type Response = OffsetFetchResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetFetchRequest) -> OffsetFetchResponse {
        if header.api_version >= 8 {
            let mut groups = Vec::new();
            for group in request.groups {
                let wanted = group.topics.map(|topics| {
                    topics
                        .iter()
                        .flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.to_string(), *p)))
                        .collect()
                });
                let result = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
                match fetch_group_offsets(shard, header, group.group_id.to_string(), wanted).await {
                    Err(error) => groups.push(result.with_error_code(error.code())),
                    Ok(offsets) => {
                        let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartitions>> = BTreeMap::new();
                        for (topic, partition, committed) in offsets {
                            let (offset, epoch, metadata, error_code) = parts(committed);
                            by_topic.entry(topic).or_default().push(
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(partition)
                                    .with_error_code(error_code)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(text(&metadata))),
                            );
                        }
                        let topics = by_topic
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&name))
                                    .with_partitions(partitions)
                            })
                            .collect();
                        groups.push(result.with_topics(topics));
                    }
                }
            }
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let wanted = request.topics.map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.to_string(), *p))).collect()
        });
        match fetch_group_offsets(shard, header, request.group_id.to_string(), wanted.clone()).await {
            Err(error) if header.api_version >= 2 => OffsetFetchResponse::default().with_error_code(error.code()),
            Err(error) => {
                // v1 has no top-level error: each partition asked for carries it, never an empty answer that
                // would read as "no committed offset".
                let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
                for (topic, partition) in wanted.unwrap_or_default() {
                    by_topic.entry(topic).or_default().push(
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(-1)
                            .with_error_code(error.code()),
                    );
                }
                response_by_topic(by_topic)
            }
            Ok(offsets) => {
                let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
                for (topic, partition, committed) in offsets {
                    let (offset, epoch, metadata, error_code) = parts(committed);
                    let entry = OffsetFetchResponsePartition::default()
                        .with_partition_index(partition)
                        .with_error_code(error_code)
                        .with_committed_offset(offset)
                        .with_metadata(Some(text(&metadata)));
                    by_topic.entry(topic).or_default().push(if header.api_version >= 5 {
                        entry.with_committed_leader_epoch(epoch)
                    } else {
                        entry
                    });
                }
                response_by_topic(by_topic)
            }
        }
    }
}

/// A response with its partitions grouped under their topics.
fn response_by_topic(by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>>) -> OffsetFetchResponse {
    let topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
