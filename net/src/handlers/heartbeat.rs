//! Heartbeat (API 12), versions 0-4: a classic-protocol member's liveness, answered with
//! REBALANCE_IN_PROGRESS when it must rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use sluice_replication::acl::AclOperation;

use super::api::{versions, Api};
use super::group_routing::{code, coordinator_shard};
use crate::shard::Shard;
use crate::wire::RequestHeader;

pub struct Heartbeat;

impl Api for Heartbeat {
    const KEY: ApiKey = ApiKey::Heartbeat;
    const VERSIONS: VersionRange = versions(0, 4);
    type Request = HeartbeatRequest;
    type Response = HeartbeatResponse;

    async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: HeartbeatRequest) -> HeartbeatResponse {
        let group = request.group_id.to_string();
        let target = match coordinator_shard(shard, header, AclOperation::Read, &group) {
            Ok(target) => target,
            Err(error) => return HeartbeatResponse::default().with_error_code(error.code()),
        };
        let error = shard
            .run_on(target, move |shard| async move {
                let instance = request.group_instance_id.as_deref();
                shard
                    .coordinator
                    .fenced_instance(&group, &request.member_id, instance)
                    .or_else(|| shard.coordinator.heartbeat(&group, request.generation_id, &request.member_id))
            })
            .await;
        HeartbeatResponse::default().with_error_code(code(error))
    }
}
