//! SyncGroup (API 14), versions 0-5: the leader hands out the assignment; every member waits for its part.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{text, versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::groups::SyncOutcome;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct SyncGroup;

impl Api for SyncGroup {
    const KEY: ApiKey = ApiKey::SyncGroup;
    const VERSIONS: VersionRange = versions(0, 5);
    type Request = SyncGroupRequest;
    type Response = SyncGroupResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: SyncGroupRequest) -> SyncGroupResponse {
        let group = request.group_id.to_string();
        let target = match coordinator_shard(shard, header, AclOperation::Read, &group) {
            Ok(target) => target,
            Err(error) => return SyncGroupResponse::default().with_error_code(error.code()),
        };
        let outcome = shard
            .run_on(target, move |shard| async move {
                let instance = request.group_instance_id.as_deref();
                if let Some(error) = shard.coordinator.fenced_instance(&group, &request.member_id, instance) {
                    return SyncOutcome { error: Some(error), ..Default::default() };
                }
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
}
