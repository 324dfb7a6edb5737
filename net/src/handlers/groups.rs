//! Consumer-group APIs (classic protocol): FindCoordinator (10, v0-4), JoinGroup (11, v0-9), SyncGroup
//! (14, v0-5), Heartbeat (12, v0-4), LeaveGroup (13, v0-5), OffsetCommit (8, v2-8), OffsetFetch (9, v1-8),
//! DescribeGroups (15, v0-5), ListGroups (16, v0-4), DeleteGroups (42, v0-2), OffsetDelete (47, v0).
//!
//! Each group's requests run on its coordinator shard (the owner of its `__consumer_offsets` partition);
//! ListGroups asks every shard. The state machine is in [`crate::coordinator`].

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use sluice_replication::config::broker;

use super::{text, topic_name};
use crate::coordinator::{partition_for_group, CommittedOffset, JoinRequest, OFFSETS_TOPIC};
use crate::error::ResponseError;
use crate::protocol::RequestHeader;
use crate::shard::Shard;

fn group_id(id: &str) -> GroupId {
    GroupId(text(id))
}

fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// The coordinator shard for a group, or COORDINATOR_NOT_AVAILABLE before `__consumer_offsets` exists.
pub fn coordinator_shard(shard: &Shard, group: &str) -> Result<usize, ResponseError> {
    let image = shard.image();
    let partitions =
        image.topic(OFFSETS_TOPIC).map(|t| t.partitions.len() as i32).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok(shard.owner(OFFSETS_TOPIC, partition_for_group(group, partitions)))
}

pub fn find_coordinator(
    shard: &Shard,
    header: &RequestHeader,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let image = shard.image();
    let (host, port) = (shard.settings.advertised_host.clone(), shard.settings.advertised_port);
    let answer = |key: &str| -> (i16, Option<String>) {
        if request.key_type != 0 {
            return (
                ResponseError::InvalidRequest.code(),
                Some("only group coordinators (key type 0) exist yet".into()),
            );
        }
        if key.is_empty() {
            return (ResponseError::InvalidRequest.code(), Some("empty group id".into()));
        }
        if image.topic(OFFSETS_TOPIC).is_none() {
            return (ResponseError::CoordinatorNotAvailable.code(), None);
        }
        (0, None)
    };
    let node = BrokerId(shard.settings.node_id);
    if header.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (error, message) = answer(key);
                CoordinatorEntry::default()
                    .with_key(key.clone())
                    .with_node_id(if error == 0 { node } else { BrokerId(-1) })
                    .with_host(if error == 0 { text(&host) } else { text("") })
                    .with_port(if error == 0 { port } else { -1 })
                    .with_error_code(error)
                    .with_error_message(message.as_deref().map(text))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (error, message) = answer(&request.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(error)
        .with_node_id(if error == 0 { node } else { BrokerId(-1) })
        .with_host(if error == 0 { text(&host) } else { text("") })
        .with_port(if error == 0 { port } else { -1 });
    if header.api_version >= 1 {
        response.with_error_message(message.as_deref().map(text))
    } else {
        response
    }
}

pub async fn join_group(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    client_host: String,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = header.api_version;
    let group = request.group_id.to_string();
    let target = match coordinator_shard(shard, &group) {
        Ok(target) => target,
        Err(error) => return JoinGroupResponse::default().with_error_code(error.code()).with_generation_id(-1),
    };
    let join = JoinRequest {
        group_id: group,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
    };
    let outcome = shard.run_on(target, move |shard| async move { shard.coordinator.join(join).await }).await;
    let mut response = JoinGroupResponse::default()
        .with_error_code(code(outcome.error))
        .with_generation_id(outcome.generation_id)
        .with_protocol_name(outcome.protocol_name.as_deref().map(text))
        .with_leader(text(&outcome.leader))
        .with_member_id(text(&outcome.member_id))
        .with_members(
            outcome
                .members
                .iter()
                .map(|(id, instance, metadata)| {
                    let member =
                        JoinGroupResponseMember::default().with_member_id(text(id)).with_metadata(metadata.clone());
                    if version >= 5 {
                        member.with_group_instance_id(instance.as_deref().map(text))
                    } else {
                        member
                    }
                })
                .collect(),
        );
    if version >= 7 {
        response = response.with_protocol_type(outcome.protocol_type.as_deref().map(text));
    }
    if version < 7 && response.protocol_name.is_none() {
        response = response.with_protocol_name(Some(text("")));
    }
    response
}

pub async fn sync_group(shard: &Rc<Shard>, header: &RequestHeader, request: SyncGroupRequest) -> SyncGroupResponse {
    let group = request.group_id.to_string();
    let target = match coordinator_shard(shard, &group) {
        Ok(target) => target,
        Err(error) => return SyncGroupResponse::default().with_error_code(error.code()),
    };
    let outcome = shard
        .run_on(target, move |shard| async move {
            let assignments =
                request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
            shard
                .coordinator
                .sync(
                    &group,
                    request.generation_id,
                    &request.member_id,
                    request.protocol_type.as_deref(),
                    request.protocol_name.as_deref(),
                    assignments,
                )
                .await
        })
        .await;
    let response =
        SyncGroupResponse::default().with_error_code(code(outcome.error)).with_assignment(outcome.assignment);
    if header.api_version >= 5 {
        response
            .with_protocol_type(outcome.protocol_type.as_deref().map(text))
            .with_protocol_name(outcome.protocol_name.as_deref().map(text))
    } else {
        response
    }
}

pub async fn heartbeat(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group = request.group_id.to_string();
    let target = match coordinator_shard(shard, &group) {
        Ok(target) => target,
        Err(error) => return HeartbeatResponse::default().with_error_code(error.code()),
    };
    let error = shard
        .run_on(target, move |shard| async move {
            shard.coordinator.heartbeat(&group, request.generation_id, &request.member_id)
        })
        .await;
    HeartbeatResponse::default().with_error_code(code(error))
}

pub async fn leave_group(shard: &Rc<Shard>, header: &RequestHeader, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = request.group_id.to_string();
    let target = match coordinator_shard(shard, &group) {
        Ok(target) => target,
        Err(error) => return LeaveGroupResponse::default().with_error_code(error.code()),
    };
    let leaving: Vec<(String, Option<String>)> = if header.api_version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let asked = leaving.clone();
    let errors: Vec<Option<ResponseError>> = shard
        .run_on(target, move |shard| async move {
            leaving
                .iter()
                .map(|(member, instance)| shard.coordinator.leave(&group, member, instance.as_deref()))
                .collect()
        })
        .await;
    if header.api_version >= 3 {
        let members = asked
            .iter()
            .zip(&errors)
            .map(|((member, instance), error)| {
                MemberResponse::default()
                    .with_member_id(text(member))
                    .with_group_instance_id(instance.as_deref().map(text))
                    .with_error_code(code(*error))
            })
            .collect();
        LeaveGroupResponse::default().with_members(members)
    } else {
        LeaveGroupResponse::default().with_error_code(code(errors.first().copied().flatten()))
    }
}

pub async fn offset_commit(shard: &Rc<Shard>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = request.group_id.to_string();
    let image = shard.image();
    // Unknown topics and partitions are refused per partition, before the group is asked.
    let mut valid = Vec::new();
    let mut results: BTreeMap<(String, i32), i16> = BTreeMap::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let key = (topic.name.to_string(), p.partition_index);
            if image.partition(&key.0, key.1).is_none() {
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
    let errors: Vec<Option<ResponseError>> = match coordinator_shard(shard, &group) {
        Err(error) => vec![Some(error); valid.len()],
        Ok(_) if valid.is_empty() => Vec::new(),
        Ok(target) => {
            let (generation, member) = (request.generation_id_or_member_epoch, request.member_id.to_string());
            let offsets = valid.clone();
            shard
                .run_on(target, move |shard| async move {
                    shard.coordinator.commit(&group, generation, &member, offsets).await
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

type FetchedOffsets = Vec<(String, i32, Option<CommittedOffset>)>;

async fn fetch_group_offsets(
    shard: &Rc<Shard>,
    group: String,
    wanted: Option<Vec<(String, i32)>>,
) -> Result<FetchedOffsets, ResponseError> {
    let target = coordinator_shard(shard, &group)?;
    Ok(shard.run_on(target, move |shard| async move { shard.coordinator.fetch_offsets(&group, wanted) }).await)
}

pub async fn offset_fetch(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if header.api_version >= 8 {
        let mut groups = Vec::new();
        for group in request.groups {
            let wanted = group.topics.map(|topics| {
                topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.to_string(), *p))).collect()
            });
            let result = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
            match fetch_group_offsets(shard, group.group_id.to_string(), wanted).await {
                Err(error) => groups.push(result.with_error_code(error.code())),
                Ok(offsets) => {
                    let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartitions>> = BTreeMap::new();
                    for (topic, partition, committed) in offsets {
                        let (offset, epoch, metadata) =
                            committed.map_or((-1, -1, String::new()), |c| (c.offset, c.leader_epoch, c.metadata));
                        by_topic.entry(topic).or_default().push(
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(partition)
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
    match fetch_group_offsets(shard, request.group_id.to_string(), wanted).await {
        Err(error) => {
            let response = OffsetFetchResponse::default();
            if header.api_version >= 2 {
                response.with_error_code(error.code())
            } else {
                response
            }
        }
        Ok(offsets) => {
            let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
            for (topic, partition, committed) in offsets {
                let (offset, epoch, metadata) =
                    committed.map_or((-1, -1, String::new()), |c| (c.offset, c.leader_epoch, c.metadata));
                let entry = OffsetFetchResponsePartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)
                    .with_metadata(Some(text(&metadata)));
                by_topic.entry(topic).or_default().push(if header.api_version >= 5 {
                    entry.with_committed_leader_epoch(epoch)
                } else {
                    entry
                });
            }
            let topics = by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}

pub async fn describe_groups(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut groups = Vec::new();
    for id in request.groups {
        let name = id.to_string();
        let result = DescribedGroup::default().with_group_id(id.clone());
        let described = match coordinator_shard(shard, &name) {
            Err(error) => Err(error),
            Ok(target) => {
                let lookup = name.clone();
                Ok(shard.run_on(target, move |shard| async move { shard.coordinator.describe(&lookup) }).await)
            }
        };
        let result = match described {
            Err(error) => result.with_error_code(error.code()),
            Ok(None) => result.with_group_state(text("Dead")),
            Ok(Some(group)) => result
                .with_group_state(text(group.state.name()))
                .with_protocol_type(text(&group.protocol_type))
                .with_protocol_data(text(&group.protocol))
                .with_members(
                    group
                        .members
                        .iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(text(&m.member_id))
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_member_metadata(m.metadata.clone())
                                .with_member_assignment(m.assignment.clone());
                            if header.api_version >= 4 {
                                member.with_group_instance_id(m.instance_id.as_deref().map(text))
                            } else {
                                member
                            }
                        })
                        .collect(),
                ),
        };
        let result = if header.api_version >= 3 && request.include_authorized_operations {
            result.with_authorized_operations(GROUP_OPERATIONS)
        } else {
            result
        };
        groups.push(result);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// READ 3, DELETE 6, DESCRIBE 8 (no authorizer yet: everything is allowed).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn list_groups(shard: &Rc<Shard>, header: &RequestHeader, request: ListGroupsRequest) -> ListGroupsResponse {
    let filter: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let calls = (0..shard.shards()).map(|target| shard.run_on(target, |shard| async move { shard.coordinator.list() }));
    let mut groups: Vec<(String, String, &str)> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .map(|(id, protocol_type, state)| (id, protocol_type, state.name()))
        .filter(|(_, _, state)| filter.is_empty() || filter.contains(&state.to_lowercase()))
        .collect();
    groups.sort();
    let listed = groups
        .into_iter()
        .map(|(id, protocol_type, state)| {
            let listed = ListedGroup::default().with_group_id(group_id(&id)).with_protocol_type(text(&protocol_type));
            if header.api_version >= 4 {
                listed.with_group_state(text(state))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

pub async fn delete_groups(shard: &Rc<Shard>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::new();
    for id in request.groups_names {
        let name = id.to_string();
        let error = match coordinator_shard(shard, &name) {
            Err(error) => Some(error),
            Ok(target) => {
                shard.run_on(target, move |shard| async move { shard.coordinator.delete_group(&name).await }).await
            }
        };
        results.push(
            kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code(error)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

pub async fn offset_delete(shard: &Rc<Shard>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = request.group_id.to_string();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index)))
        .collect();
    let outcome = match coordinator_shard(shard, &group) {
        Err(error) => Err(error),
        Ok(target) => {
            let asked = partitions.clone();
            shard
                .run_on(target, move |shard| async move { shard.coordinator.delete_offsets(&group, asked).await })
                .await
        }
    };
    match outcome {
        Err(error) => OffsetDeleteResponse::default().with_error_code(error.code()),
        Ok(errors) => {
            let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> = BTreeMap::new();
            for ((topic, partition), error) in partitions.into_iter().zip(errors) {
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

fn consumer_protocol_config(shard: &Shard) -> crate::consumer_protocol::ConsumerProtocolConfig {
    let image = shard.image();
    shard.with_config(&image, |config| crate::consumer_protocol::ConsumerProtocolConfig {
        session_timeout: std::time::Duration::from_millis(config.get(broker::GROUP_CONSUMER_SESSION_TIMEOUT_MS) as u64),
        heartbeat_interval_ms: config.get(broker::GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS),
    })
}

fn topic_partitions_by_id(
    image: &sluice_replication::metadata::ClusterImage,
    partitions: &std::collections::BTreeSet<(String, i32)>,
) -> Vec<consumer_group_heartbeat_response::TopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let id = image.topic(topic)?.topic_id;
            Some(
                consumer_group_heartbeat_response::TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_u128(id))
                    .with_partitions(partitions),
            )
        })
        .collect()
}

pub async fn consumer_group_heartbeat(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group = request.group_id.to_string();
    let fail = |error: ResponseError, message: &str| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(text(message)))
            .with_member_epoch(-1)
    };
    if request.subscribed_topic_regex.as_ref().is_some_and(|r| !r.is_empty()) {
        return fail(ResponseError::InvalidRequest, "regular-expression subscriptions are not supported yet");
    }
    let target = match coordinator_shard(shard, &group) {
        Ok(target) => target,
        Err(error) => return fail(error, ""),
    };
    let image = shard.image();
    let owned = request.topic_partitions.as_ref().map(|list| {
        list.iter()
            .filter_map(|tp| image.topic_by_id(tp.topic_id.as_u128()).map(|t| (t.name.clone(), tp.partitions.clone())))
            .flat_map(|(name, partitions)| partitions.into_iter().map(move |p| (name.clone(), p)))
            .collect()
    });
    let heartbeat = crate::consumer_protocol::HeartbeatRequest {
        group_id: group,
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: header.client_host.clone(),
        subscribed: request.subscribed_topic_names.as_ref().map(|names| names.iter().map(|n| n.to_string()).collect()),
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()).filter(|s| !s.is_empty()),
        owned,
    };
    let config = consumer_protocol_config(shard);
    let outcome = shard
        .run_on(target, move |shard| async move {
            let image = shard.image();
            shard.coordinator.consumer_heartbeat(heartbeat, &image, config).await
        })
        .await;
    if let Some((error, message)) = outcome.error {
        return fail(error, &message);
    }
    let assignment = outcome.assignment.map(|partitions| {
        consumer_group_heartbeat_response::Assignment::default()
            .with_topic_partitions(topic_partitions_by_id(&image, &partitions))
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(text(&outcome.member_id)))
        .with_member_epoch(outcome.member_epoch)
        .with_heartbeat_interval_ms(outcome.heartbeat_interval_ms)
        .with_assignment(assignment)
}

pub async fn consumer_group_describe(
    shard: &Rc<Shard>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    use kafka_protocol::messages::consumer_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let image = shard.image();
    let described_partitions = |partitions: &std::collections::BTreeSet<(String, i32)>| {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        Assignment::default().with_topic_partitions(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    let id = image.topic(&topic).map_or(0, |t| t.topic_id);
                    TopicPartitions::default()
                        .with_topic_id(uuid::Uuid::from_u128(id))
                        .with_topic_name(topic_name(&topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
    };
    let mut groups = Vec::new();
    for id in request.group_ids {
        let name = id.to_string();
        let result = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
        let state = match coordinator_shard(shard, &name) {
            Err(error) => Err(error),
            Ok(target) => {
                let lookup = name.clone();
                Ok(shard.run_on(target, move |shard| async move { shard.coordinator.consumer_state(&lookup) }).await)
            }
        };
        groups.push(match state {
            Err(error) => result.with_error_code(error.code()),
            Ok(None) => result.with_error_code(ResponseError::GroupIdNotFound.code()),
            Ok(Some(state)) => result
                .with_group_state(text(state.state_name()))
                .with_group_epoch(state.group_epoch)
                .with_assignment_epoch(state.assignment_epoch)
                .with_assignor_name(text(&state.assignor))
                .with_members(
                    state
                        .members
                        .values()
                        .map(|m| {
                            Member::default()
                                .with_member_id(text(&m.member_id))
                                .with_instance_id(m.instance_id.as_deref().map(text))
                                .with_rack_id(m.rack_id.as_deref().map(text))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_subscribed_topic_names(m.subscribed.iter().map(|t| topic_name(t)).collect())
                                .with_assignment(described_partitions(&m.assigned))
                                .with_target_assignment(described_partitions(
                                    &state.target.get(&m.member_id).cloned().unwrap_or_default(),
                                ))
                        })
                        .collect(),
                ),
        });
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
