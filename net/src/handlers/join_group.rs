//! JoinGroup (API 11), versions 0-9: on the group's coordinator shard, the member joins and waits until the
//! rebalance completes; the leader gets the member list. The state machine is in `crate::groups::classic`.

use std::rc::Rc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{text, versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::groups::JoinRequest;
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct JoinGroup;

impl Api for JoinGroup {
    const KEY: ApiKey = ApiKey::JoinGroup;
    const VERSIONS: VersionRange = versions(0, 9);
    type Request = JoinGroupRequest;
    type Response = JoinGroupResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: JoinGroupRequest) -> JoinGroupResponse {
        let client_host = header.client_host.clone();
        let version = header.api_version;
        let group = request.group_id.to_string();
        let target = match coordinator_shard(shard, header, AclOperation::Read, &group) {
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
}
