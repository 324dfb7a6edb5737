//! AlterPartitionReassignments (API 45), versions 0-1: starts (target replicas) or cancels (null) a
//! partition's reassignment, what `kafka-reassign-partitions --execute` sends. The controller adds the new
//! replicas; they catch up from the leader and join the ISR; then the replicas not in the target are
//! removed (and a removed leader replaced). A typed controller command.

use std::rc::Rc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse, Reassignment};

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct AlterPartitionReassignments;

impl Api for AlterPartitionReassignments {
    const KEY: ApiKey = ApiKey::AlterPartitionReassignments;
    const VERSIONS: VersionRange = versions(0, 1);
    type Request = AlterPartitionReassignmentsRequest;
    type Response = AlterPartitionReassignmentsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: AlterPartitionReassignmentsRequest,
    ) -> AlterPartitionReassignmentsResponse {
        if !shard.authorized_on_cluster(header, AclOperation::Alter) {
            return AlterPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(text("reassignments need ALTER on the cluster")));
        }
        let wanted: Vec<Reassignment> = request
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(move |partition| Reassignment {
                    topic: topic.name.0.to_string(),
                    partition: partition.partition_index,
                    replicas: partition.replicas.as_ref().map(|r| r.iter().map(|id| id.0).collect()),
                })
            })
            .collect();
        let count = wanted.len();
        let answers: Vec<Option<(ResponseError, String)>> =
            match shard.controller_call(ControllerRequest::AlterReassignments { reassignments: wanted }).await {
                Ok(ControllerResponse::AlterReassignments(answers)) if answers.len() == count => {
                    answers.into_iter().map(|a| a.err().map(|e| (admin_error(&e), e.message))).collect()
                }
                Ok(other) => {
                    let failure =
                        (ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}"));
                    vec![Some(failure); count]
                }
                Err(error) => vec![Some((admin_error(&error), error.message)); count],
            };
        let mut answers = answers.into_iter();
        let responses = request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        let result =
                            ReassignablePartitionResponse::default().with_partition_index(partition.partition_index);
                        match answers.next().flatten() {
                            Some((error, message)) => {
                                result.with_error_code(error.code()).with_error_message(Some(text(&message)))
                            }
                            None => result,
                        }
                    })
                    .collect();
                ReassignableTopicResponse::default()
                    .with_name(topic_name(topic.name.0.as_str()))
                    .with_partitions(partitions)
            })
            .collect();
        AlterPartitionReassignmentsResponse::default().with_responses(responses)
    }
}
