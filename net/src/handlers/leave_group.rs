//! LeaveGroup (API 13), versions 0-5: one member (v0-2) or several, by member id or static instance id (v3+).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{text, versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::error::ResponseError;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct LeaveGroup;

impl Api for LeaveGroup {
    const KEY: ApiKey = ApiKey::LeaveGroup;
    const VERSIONS: VersionRange = versions(0, 5);
    type Request = LeaveGroupRequest;
    type Response = LeaveGroupResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let group = request.group_id.to_string();
        let target = match coordinator_shard(shard, header, AclOperation::Read, &group) {
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
}
