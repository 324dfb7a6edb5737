//! ListPartitionReassignments (API 46), version 0: the reassignments in progress (all, or of the partitions
//! named), each with its full replica list and the replicas being added and removed, from the controller.

use std::rc::Rc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;
use sluice_replication::controller::commands::{ControllerRequest, ControllerResponse};

use super::api::{text, topic_name, versions, Api};
use crate::error::{admin_error, ResponseError};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct ListPartitionReassignments;

impl Api for ListPartitionReassignments {
    const KEY: ApiKey = ApiKey::ListPartitionReassignments;
    const VERSIONS: VersionRange = versions(0, 0);
    type Request = ListPartitionReassignmentsRequest;
    type Response = ListPartitionReassignmentsResponse;

    async fn handle(
        shard: &Rc<Shard>,
        header: &RequestHeader,
        request: ListPartitionReassignmentsRequest,
    ) -> ListPartitionReassignmentsResponse {
        if !shard.authorized_on_cluster(header, AclOperation::Describe) {
            return ListPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(text("listing reassignments needs DESCRIBE on the cluster")));
        }
        let partitions = request.topics.map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.0.to_string(), *p))).collect()
        });
        let ongoing = match shard.controller_call(ControllerRequest::ListReassignments { partitions }).await {
            Ok(ControllerResponse::ListReassignments(ongoing)) => ongoing,
            Ok(other) => {
                return ListPartitionReassignmentsResponse::default()
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(Some(text(&format!("unexpected controller answer {other:?}"))))
            }
            Err(error) => {
                return ListPartitionReassignmentsResponse::default()
                    .with_error_code(admin_error(&error).code())
                    .with_error_message(Some(text(&error.message)))
            }
        };
        let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
        for entry in ongoing {
            let partition = OngoingPartitionReassignment::default()
                .with_partition_index(entry.partition)
                .with_replicas(entry.replicas.into_iter().map(BrokerId).collect())
                .with_adding_replicas(entry.adding.into_iter().map(BrokerId).collect())
                .with_removing_replicas(entry.removing.into_iter().map(BrokerId).collect());
            match topics.iter_mut().find(|t| t.name.0.as_str() == entry.topic) {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(
                    OngoingTopicReassignment::default()
                        .with_name(topic_name(&entry.topic))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        ListPartitionReassignmentsResponse::default().with_topics(topics)
    }
}
