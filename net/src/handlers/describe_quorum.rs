//! DescribeQuorum (API 55), versions 0-2: the controller quorum of `__cluster_metadata` partition 0 as its
//! leader sees it: the leader and its epoch (the Raft term), the high watermark (commit index + 1), and each
//! voter's and observer's log end, last fetch and last caught-up time. Any broker answers: it asks the
//! quorum's leader through its controller connections (what `kafka-metadata-quorum describe` sends).

use std::rc::Rc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::metadata::METADATA_TOPIC;
use sluice_replication::transport::{QuorumDescription, ReplicaProgress};

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct DescribeQuorum;

/// The quorum as its leader described it, with the voters' controller listeners; or why it could not.
type Described = Result<(QuorumDescription, Vec<(i32, String, u16)>), (ResponseError, String)>;

fn replica(progress: &ReplicaProgress, version: i16) -> ReplicaState {
    let state = ReplicaState::default()
        .with_replica_id(BrokerId(progress.node_id))
        .with_log_end_offset(progress.log_end_offset);
    if version >= 1 {
        state
            .with_last_fetch_timestamp(progress.last_fetch_timestamp)
            .with_last_caught_up_timestamp(progress.last_caught_up_timestamp)
    } else {
        state
    }
}

impl Api for DescribeQuorum {
    const KEY: ApiKey = ApiKey::DescribeQuorum;
    const VERSIONS: VersionRange = versions(0, 2);
    type Request = DescribeQuorumRequest;
    type Response = DescribeQuorumResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: DescribeQuorumRequest,
    ) -> DescribeQuorumResponse {
        if !shard.authorized_on_cluster(header, AclOperation::Describe) {
            return DescribeQuorumResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        }
        let version = header.api_version;
        let described: Described = shard
            .run_on(0, |shard| async move {
                let Some(node) = shard.cluster() else {
                    return Err((ResponseError::NotController, "the control plane is not running".to_string()));
                };
                let voters: Vec<(i32, String, u16)> =
                    node.settings().voters.iter().map(|v| (v.node_id, v.host.clone(), v.port)).collect();
                node.describe_quorum().await.map(|d| (d, voters)).map_err(|e| (admin_error(&e), e.message))
            })
            .await;
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        let data = PartitionData::default().with_partition_index(partition.partition_index);
                        if topic.topic_name.0.as_str() != METADATA_TOPIC || partition.partition_index != 0 {
                            return data.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        }
                        match &described {
                            Ok((quorum, _)) => data
                                .with_leader_id(BrokerId(quorum.leader_id))
                                .with_leader_epoch(i32::try_from(quorum.leader_epoch).unwrap_or(i32::MAX))
                                .with_high_watermark(quorum.high_watermark)
                                .with_current_voters(quorum.voters.iter().map(|v| replica(v, version)).collect())
                                .with_observers(quorum.observers.iter().map(|o| replica(o, version)).collect()),
                            Err((error, message)) => {
                                let data = data.with_error_code(error.code());
                                if version >= 2 {
                                    data.with_error_message(Some(text(message)))
                                } else {
                                    data
                                }
                            }
                        }
                    })
                    .collect();
                TopicData::default()
                    .with_topic_name(topic_name(topic.topic_name.0.as_str()))
                    .with_partitions(partitions)
            })
            .collect();
        let mut response = DescribeQuorumResponse::default().with_topics(topics);
        if version >= 2 {
            if let Ok((_, voters)) = &described {
                let nodes = voters
                    .iter()
                    .map(|(id, host, port)| {
                        Node::default().with_node_id(BrokerId(*id)).with_listeners(vec![Listener::default()
                            .with_name(text("CONTROLLER"))
                            .with_host(text(host))
                            .with_port(*port)])
                    })
                    .collect();
                response = response.with_nodes(nodes);
            }
        }
        response
    }
}
