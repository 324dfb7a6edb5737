//! ConsumerGroupDescribe (API 69), versions 0-1: a KIP-848 group's epochs, assignor, and each member's
//! current and target assignment.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{text, topic_name, versions, Api};
use super::group_routing::coordinator_shard;
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct ConsumerGroupDescribe;

impl Api for ConsumerGroupDescribe {
    const KEY: ApiKey = ApiKey::ConsumerGroupDescribe;
    const VERSIONS: VersionRange = versions(0, 1);
    type Request = ConsumerGroupDescribeRequest;
    type Response = ConsumerGroupDescribeResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: ConsumerGroupDescribeRequest,
    ) -> ConsumerGroupDescribeResponse {
        let image = shard.image();
        let described_partitions = |partitions: &BTreeSet<(String, i32)>| {
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
        let include_operations = request.include_authorized_operations;
        for id in request.group_ids {
            let name = id.to_string();
            let result = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
            let state = match coordinator_shard(shard, header, AclOperation::Describe, &name) {
                Err(error) => Err(error),
                Ok(target) => {
                    let lookup = name.clone();
                    Ok(shard
                        .run_on(target, move |shard| async move { shard.coordinator.consumer_state(&lookup) })
                        .await)
                }
            };
            groups.push(match state {
                Err(error) => result.with_error_code(error.code()),
                Ok(None) => result.with_error_code(ResponseError::GroupIdNotFound.code()),
                Ok(Some(state)) => result
                    .with_authorized_operations(if include_operations {
                        shard.authorized_operations(header, ResourceType::Group, &name)
                    } else {
                        i32::MIN
                    })
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
}
