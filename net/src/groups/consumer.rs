//! The KIP-848 consumer protocol on the coordinator: ConsumerGroupHeartbeat against the group table. The
//! group's state and its transitions are in `consumer_state.rs`; this file finds or creates the group, keeps
//! the fields every group has (generation, state, protocol type) in step with it, and persists the group
//! epoch so it only grows.
//!
//! A consumer-protocol group shares the table with classic groups, so offsets, ListGroups and DeleteGroups
//! work unchanged; while a group has members, it speaks one protocol or the other.

use std::rc::Rc;
use std::time::Instant;

use sluice_replication::metadata::ClusterImage;

use super::consumer_state::{
    ConsumerGroupState, ConsumerProtocolConfig, HeartbeatOutcome, HeartbeatRequest, Membership, SUPPORTED_ASSIGNORS,
};
use super::store::group_record;
use super::table::{Coordinator, GroupState};
use crate::error::ResponseError;

impl Coordinator {
    pub async fn consumer_heartbeat(
        self: &Rc<Self>,
        request: HeartbeatRequest,
        image: &ClusterImage,
        config: ConsumerProtocolConfig,
    ) -> HeartbeatOutcome {
        let fail = |error: ResponseError, message: &str| HeartbeatOutcome {
            error: Some((error, message.to_string())),
            member_id: request.member_id.clone(),
            member_epoch: -1,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: None,
        };
        if request.group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId, "empty group id");
        }
        if let Err(error) = self.log_for(&request.group_id) {
            return fail(error, "");
        }
        if let Some(assignor) = &request.server_assignor {
            if !SUPPORTED_ASSIGNORS.contains(&assignor.as_str()) {
                return fail(ResponseError::UnsupportedAssignor, "server assignors are uniform and range");
            }
        }
        let group_rc = self.group_or_create(&request.group_id);
        let (outcome, persist) = {
            let mut group = group_rc.borrow_mut();
            if group.consumer.is_none() {
                if !group.members_is_empty() {
                    return fail(ResponseError::GroupIdNotFound, "the group uses the classic protocol");
                }
                group.consumer = Some(ConsumerGroupState::new(group.generation));
                group.protocol_type = Some("consumer".into());
            }
            let Some(state) = group.consumer.as_mut() else { return fail(ResponseError::UnknownServerError, "") };
            let epoch_before = state.group_epoch;
            let (outcome, membership) = match state.heartbeat(&request, image, config, Instant::now()) {
                Ok(done) => done,
                Err((error, message)) => return fail(error, message),
            };
            let persist = state.group_epoch != epoch_before;
            let (group_epoch, stable) = (state.group_epoch, state.state_name() == "Stable");
            group.generation = group_epoch;
            group.state = match membership {
                Membership::Left => GroupState::Empty,
                Membership::Active if stable => GroupState::Stable,
                Membership::Active => GroupState::PreparingRebalance,
            };
            (outcome, persist)
        };
        if persist {
            let record = group_record(&group_rc.borrow(), true);
            if let Err(error) = self.persist(&request.group_id, vec![record]).await {
                return fail(error, "could not persist the group epoch");
            }
        }
        outcome
    }
}
