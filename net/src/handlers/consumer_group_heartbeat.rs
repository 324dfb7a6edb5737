//! ConsumerGroupHeartbeat (API 68), versions 0-1: the KIP-848 consumer protocol. A member heartbeats its
//! subscriptions and owned partitions, and the coordinator answers with its assignment; the state machine and
//! the server-side assignors are in `crate::groups::consumer`.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::{AclOperation, ResourceType};
use sluice_replication::metadata::ClusterImage;

use super::api::{text, versions, Api};
use super::group_routing::coordinator_shard;
use crate::error::ResponseError;
use crate::groups::{ConsumerProtocolConfig, HeartbeatRequest};
use crate::shard::Shard;
use crate::wire::RequestHeader;

/// The group's session timeout and heartbeat interval: its own configs (IncrementalAlterConfigs on the group
/// resource), else the broker's `group.consumer.*`. Read at every heartbeat, so a change applies to the next
/// one, as in Kafka.
fn consumer_protocol_config(shard: &Shard, group: &str) -> ConsumerProtocolConfig {
    let image = shard.image();
    let none = BTreeMap::new();
    let overrides = image.group_configs.get(group).unwrap_or(&none);
    shard.with_config(&image, |config| {
        let (session_ms, heartbeat_ms) = config.group_consumer_timeouts(overrides);
        ConsumerProtocolConfig {
            session_timeout: std::time::Duration::from_millis(u64::try_from(session_ms).unwrap_or(0)),
            heartbeat_interval_ms: heartbeat_ms,
        }
    })
}

fn topic_partitions_by_id(image: &ClusterImage, partitions: &BTreeSet<(String, i32)>) -> Vec<TopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let id = image.topic(topic)?.topic_id;
            Some(TopicPartitions::default().with_topic_id(uuid::Uuid::from_u128(id)).with_partitions(partitions))
        })
        .collect()
}

pub struct ConsumerGroupHeartbeat;

impl Api for ConsumerGroupHeartbeat {
    const KEY: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    const VERSIONS: VersionRange = versions(0, 1);
    type Request = ConsumerGroupHeartbeatRequest;
    type Response = ConsumerGroupHeartbeatResponse;

    async fn handle(
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
        let target = match coordinator_shard(shard, header, AclOperation::Read, &group) {
            Ok(target) => target,
            Err(error) => return fail(error, ""),
        };
        // As in Kafka 4: a member may subscribe only to topics it may describe, or it could learn of topics
        // hidden from its Metadata through the assignment.
        let hidden = request
            .subscribed_topic_names
            .iter()
            .flatten()
            .find(|topic| !shard.authorized(header, AclOperation::Describe, ResourceType::Topic, topic));
        if let Some(topic) = hidden {
            return fail(
                ResponseError::TopicAuthorizationFailed,
                &format!("not allowed to describe topic {}", topic.as_str()),
            );
        }
        let image = shard.image();
        let owned = request.topic_partitions.as_ref().map(|list| {
            list.iter()
                .filter_map(|tp| {
                    image.topic_by_id(tp.topic_id.as_u128()).map(|t| (t.name.clone(), tp.partitions.clone()))
                })
                .flat_map(|(name, partitions)| partitions.into_iter().map(move |p| (name.clone(), p)))
                .collect()
        });
        let config = consumer_protocol_config(shard, &group);
        let heartbeat = HeartbeatRequest {
            group_id: group,
            member_id: request.member_id.to_string(),
            member_epoch: request.member_epoch,
            instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
            rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
            client_id: header.client_id.clone().unwrap_or_default(),
            client_host: header.client_host.clone(),
            subscribed: request
                .subscribed_topic_names
                .as_ref()
                .map(|names| names.iter().map(|n| n.to_string()).collect()),
            server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()).filter(|s| !s.is_empty()),
            owned,
        };
        let outcome = shard
            .run_on(target, move |shard| async move {
                let image = shard.image();
                shard.coordinator.consumer_heartbeat(heartbeat, &image, config).await
            })
            .await;
        if let Some((error, message)) = outcome.error {
            return fail(error, &message);
        }
        let assignment = outcome
            .assignment
            .map(|partitions| Assignment::default().with_topic_partitions(topic_partitions_by_id(&image, &partitions)));
        ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(text(&outcome.member_id)))
            .with_member_epoch(outcome.member_epoch)
            .with_heartbeat_interval_ms(outcome.heartbeat_interval_ms)
            .with_assignment(assignment)
    }
}
