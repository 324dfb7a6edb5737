//! OffsetForLeaderEpoch (API 23), versions 2-4 (librdkafka uses v2 only): for a leader epoch, the largest
//! epoch at or below it and the offset where that epoch ended, so a consumer can detect log truncation
//! after a leader change (KIP-320). Answered by the owner shard from the engine's epoch cache.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_engine::LeaderEpoch;
use sluice_replication::acl::{AclOperation, ResourceType};

use super::api::{topic_name, versions, Api};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct OffsetForLeaderEpoch;

impl Api for OffsetForLeaderEpoch {
    const KEY: ApiKey = ApiKey::OffsetForLeaderEpoch;
    const VERSIONS: VersionRange = versions(2, 4);
    type Request = OffsetForLeaderEpochRequest;
    type Response = OffsetForLeaderEpochResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        let mut topics = Vec::new();
        // Kafka's checks: a follower (replica id set) needs CLUSTER_ACTION, a client DESCRIBE on the topic.
        let follower = request.replica_id.0 >= 0;
        let follower_denied = follower && !shard.authorized_on_cluster(header, AclOperation::ClusterAction);
        for topic in request.topics {
            let name = topic.topic.to_string();
            let denied = if follower_denied {
                Some(ResponseError::ClusterAuthorizationFailed)
            } else if !follower && !shard.authorized(header, AclOperation::Describe, ResourceType::Topic, &name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            let calls = topic.partitions.into_iter().map(|partition| {
                let name = name.clone();
                let owner = shard.owner(&name, partition.partition);
                shard.run_on(owner, move |owner| async move {
                    let result = EpochEndOffset::default().with_partition(partition.partition);
                    if let Some(error) = denied {
                        return result.with_error_code(error.code()).with_leader_epoch(-1).with_end_offset(-1);
                    }
                    let (log, leader) = match owner.leader_log(&name, partition.partition) {
                        Ok(found) => found,
                        Err(error) => {
                            return result.with_error_code(error.code()).with_leader_epoch(-1).with_end_offset(-1)
                        }
                    };
                    if let Some(error) = owner.check_leader_epoch(&leader, partition.current_leader_epoch) {
                        return result.with_error_code(error.code()).with_leader_epoch(-1).with_end_offset(-1);
                    }
                    let (epoch, end) = log.end_offset_for_epoch(LeaderEpoch(partition.leader_epoch));
                    result.with_leader_epoch(epoch.0).with_end_offset(end.0)
                })
            });
            let partitions = futures::future::join_all(calls).await;
            topics
                .push(OffsetForLeaderTopicResult::default().with_topic(topic_name(&name)).with_partitions(partitions));
        }
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    }
}
