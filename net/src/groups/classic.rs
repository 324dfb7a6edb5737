//! The classic group protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, the rebalance that ends a
//! join phase, and session expiry (for KIP-848 members too).
//!
//! States follow Kafka: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead. Waiting members (a
//! JoinGroup held until the rebalance completes, a SyncGroup held until the leader assigns) wait on one-shot
//! channels. Session timeouts and rebalance timeouts evict members; generation ids fence stale members;
//! static members (`group.instance.id`) that come back within their session timeout take their old place
//! without a rebalance, and the member they replaced is fenced (FENCED_INSTANCE_ID).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::store::group_record;
use super::table::{Coordinator, Group, GroupState, JoinOutcome, Member, SyncOutcome};
use crate::error::ResponseError;

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new dynamic member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

impl Coordinator {
    pub async fn join(self: &Rc<Self>, request: JoinRequest) -> JoinOutcome {
        let config = self.config();
        if request.group_id.is_empty() {
            return JoinOutcome::error(ResponseError::InvalidGroupId, &request.member_id);
        }
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            return JoinOutcome::error(ResponseError::InvalidSessionTimeout, &request.member_id);
        }
        if let Err(error) = self.log_for(&request.group_id) {
            return JoinOutcome::error(error, &request.member_id);
        }
        if !request.member_id.is_empty() {
            if let Some(error) =
                self.fenced_instance(&request.group_id, &request.member_id, request.instance_id.as_deref())
            {
                return JoinOutcome::error(error, &request.member_id);
            }
        }
        if !request.member_id.is_empty() && self.group(&request.group_id).is_none() {
            return JoinOutcome::error(ResponseError::UnknownMemberId, &request.member_id);
        }
        let group_rc = self.group_or_create(&request.group_id);
        let receiver = {
            let mut group = group_rc.borrow_mut();
            if group.state == GroupState::Dead {
                return JoinOutcome::error(ResponseError::CoordinatorNotAvailable, &request.member_id);
            }
            if group.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) {
                return JoinOutcome::error(ResponseError::InconsistentGroupProtocol, &request.member_id);
            }
            if !group.supports(&request.protocol_type, &request.protocols) {
                return JoinOutcome::error(ResponseError::InconsistentGroupProtocol, &request.member_id);
            }
            let now = Instant::now();
            let mut member_id = request.member_id.clone();
            if member_id.is_empty() {
                if let Some(instance) = &request.instance_id {
                    if let Some(old_id) = group.static_members.get(instance).cloned() {
                        // A static member back under a new id: it takes the old member's place.
                        let new_id = format!("{}-{}", instance, uuid::Uuid::new_v4());
                        if let Some(mut old) = group.members.remove(&old_id) {
                            if let Some(waiter) = old.join_waiter.take() {
                                let _ = waiter.send(JoinOutcome::error(ResponseError::FencedInstanceId, &old_id));
                            }
                            if let Some(waiter) = old.sync_waiter.take() {
                                let _ = waiter.send(SyncOutcome {
                                    error: Some(ResponseError::FencedInstanceId),
                                    ..Default::default()
                                });
                            }
                            let same_protocols = old.protocols == request.protocols;
                            old.id = new_id.clone();
                            old.protocols = request.protocols.clone();
                            old.session_timeout = Duration::from_millis(request.session_timeout_ms as u64);
                            old.rebalance_timeout = Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64);
                            old.last_heartbeat = now;
                            if group.leader.as_deref() == Some(&old_id) {
                                group.leader = Some(new_id.clone());
                            }
                            group.members.insert(new_id.clone(), old);
                            group.static_members.insert(instance.clone(), new_id.clone());
                            if group.state == GroupState::Stable && same_protocols {
                                // No rebalance: answer with the current generation (KIP-345).
                                return group.current_generation(new_id);
                            }
                            member_id = new_id;
                        }
                    }
                }
            }
            if member_id.is_empty() {
                let new_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
                if request.require_known_member_id && request.instance_id.is_none() {
                    group.pending.insert(new_id.clone(), now);
                    return JoinOutcome::error(ResponseError::MemberIdRequired, &new_id);
                }
                member_id = new_id;
            }
            let known = group.members.contains_key(&member_id);
            let pending = group.pending.remove(&member_id).is_some();
            if !known && !pending && request.member_id == member_id {
                return JoinOutcome::error(ResponseError::UnknownMemberId, &member_id);
            }
            if !known && group.members.len() >= config.max_size {
                return JoinOutcome::error(ResponseError::GroupMaxSizeReached, &member_id);
            }
            let (sender, receiver) = oneshot::channel();
            let protocols_changed = match group.members.get(&member_id) {
                Some(existing) => existing.protocols != request.protocols,
                None => true,
            };
            let is_leader = group.leader.as_deref() == Some(member_id.as_str());
            if known && !protocols_changed && !is_leader {
                match group.state {
                    GroupState::Stable | GroupState::CompletingRebalance => {
                        // Nothing changed: resend the current generation.
                        if let Some(member) = group.members.get_mut(&member_id) {
                            member.last_heartbeat = now;
                        }
                        return group.current_generation(member_id);
                    }
                    _ => {}
                }
            }
            let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
                id: member_id.clone(),
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout: Duration::from_millis(request.session_timeout_ms as u64),
                rebalance_timeout: Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64),
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            });
            member.protocols = request.protocols.clone();
            member.session_timeout = Duration::from_millis(request.session_timeout_ms as u64);
            member.rebalance_timeout = Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64);
            member.last_heartbeat = now;
            member.join_waiter = Some(sender);
            if let Some(instance) = &request.instance_id {
                group.static_members.insert(instance.clone(), member_id.clone());
            }
            if group.protocol_type.is_none() || group.members.len() == 1 {
                group.protocol_type = Some(request.protocol_type.clone());
            }
            if group.leader.is_none() {
                group.leader = Some(member_id.clone());
            }
            self.prepare_rebalance(&group_rc, &mut group);
            receiver
        };
        match receiver.await {
            Ok(outcome) => outcome,
            Err(_) => JoinOutcome::error(ResponseError::UnknownMemberId, &request.member_id),
        }
    }

    /// Moves a group to PreparingRebalance and starts the task that completes the join phase.
    fn prepare_rebalance(self: &Rc<Self>, group_rc: &Rc<RefCell<Group>>, group: &mut Group) {
        if group.state == GroupState::CompletingRebalance {
            // Members waiting for the leader's assignment must rejoin.
            for member in group.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter
                        .send(SyncOutcome { error: Some(ResponseError::RebalanceInProgress), ..Default::default() });
                }
            }
        }
        let was_empty = group.state == GroupState::Empty;
        if group.state != GroupState::PreparingRebalance {
            group.set_state(GroupState::PreparingRebalance);
        }
        if group.rebalance_running {
            group.wake_join_phase();
            return;
        }
        group.rebalance_running = true;
        let rebalance_timeout = group.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        let initial_delay = if was_empty { self.config().initial_rebalance_delay } else { Duration::ZERO };
        let coordinator = self.clone();
        let group_rc = group_rc.clone();
        glommio::spawn_local(async move {
            // glommio may poll a new task inside `spawn_local`, while our caller still holds the group's
            // borrow: give the caller back control before touching the group.
            glommio::executor().yield_now().await;
            let started = Instant::now();
            let deadline = started + rebalance_timeout;
            // A new group waits `group.initial.rebalance.delay.ms` for more members, as Kafka's does.
            if !initial_delay.is_zero() {
                glommio::timer::sleep(initial_delay.min(rebalance_timeout.max(Duration::from_millis(1)))).await;
            }
            // Then the phase ends when every member has rejoined (woken by each join, leave or expiry) or at
            // the rebalance timeout, when those that did not are removed.
            let timed_out = loop {
                let woken = {
                    let mut group = group_rc.borrow_mut();
                    if group.state != GroupState::PreparingRebalance || group.all_members_joined() {
                        break false;
                    }
                    let (wake, woken) = oneshot::channel();
                    group.join_phase_wake = Some(wake);
                    woken
                };
                let now = Instant::now();
                if now >= deadline {
                    break true;
                }
                let timeout = Box::pin(glommio::timer::sleep(deadline - now));
                futures::future::select(timeout, woken).await;
            };
            group_rc.borrow_mut().join_phase_wake = None;
            coordinator.complete_join(&group_rc, started.elapsed(), timed_out).await;
        })
        .detach();
    }

    /// Ends the join phase: members that did not rejoin are removed, a new generation starts, and every
    /// waiting member gets its JoinGroup answer (the leader with the member list).
    async fn complete_join(&self, group_rc: &Rc<RefCell<Group>>, waited: Duration, timed_out: bool) {
        let record = {
            let mut group = group_rc.borrow_mut();
            group.rebalance_running = false;
            if group.state != GroupState::PreparingRebalance {
                return;
            }
            let gone: Vec<String> =
                group.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
            for id in &gone {
                group.remove_member(id);
            }
            group.generation += 1;
            tracing::info!(
                group = %group.id,
                generation = group.generation,
                members = group.members.len(),
                waited_ms = waited.as_millis() as u64,
                timed_out,
                removed = ?gone,
                "join phase complete"
            );
            if group.members.is_empty() {
                group.protocol = None;
                group.leader = None;
                group.set_state(GroupState::Empty);
            } else {
                group.protocol = group.select_protocol();
                if group.leader.as_ref().is_none_or(|leader| !group.members.contains_key(leader)) {
                    group.leader = group.members.keys().next().cloned();
                }
                group.set_state(GroupState::CompletingRebalance);
                let protocol = group.protocol.clone().unwrap_or_default();
                let leader = group.leader.clone().unwrap_or_default();
                let all: Vec<(String, Option<String>, Bytes)> = group
                    .members
                    .values()
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol)))
                    .collect();
                let (generation, protocol_type, protocol_name) =
                    (group.generation, group.protocol_type.clone(), group.protocol.clone());
                let now = Instant::now();
                for member in group.members.values_mut() {
                    member.last_heartbeat = now;
                    if let Some(waiter) = member.join_waiter.take() {
                        let _ = waiter.send(JoinOutcome {
                            error: None,
                            generation_id: generation,
                            protocol_type: protocol_type.clone(),
                            protocol_name: protocol_name.clone(),
                            leader: leader.clone(),
                            member_id: member.id.clone(),
                            members: if member.id == leader { all.clone() } else { Vec::new() },
                        });
                    }
                }
            }
            group_record(&group, true)
        };
        let group_id = group_rc.borrow().id.clone();
        if let Err(error) = self.persist(&group_id, vec![record]).await {
            tracing::warn!(group = group_id, ?error, "could not persist the new generation");
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let error = |error| SyncOutcome { error: Some(error), ..Default::default() };
        let Some(group_rc) = self.group(group_id) else { return error(ResponseError::UnknownMemberId) };
        let (receiver, record) = {
            let mut group = group_rc.borrow_mut();
            if !group.members.contains_key(member_id) {
                return error(ResponseError::UnknownMemberId);
            }
            if generation != group.generation {
                return error(ResponseError::IllegalGeneration);
            }
            if protocol_type.is_some_and(|t| Some(t) != group.protocol_type.as_deref())
                || protocol_name.is_some_and(|p| Some(p) != group.protocol.as_deref())
            {
                return error(ResponseError::InconsistentGroupProtocol);
            }
            let outcome = |group: &Group, assignment: Bytes| SyncOutcome {
                error: None,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol.clone(),
                assignment,
            };
            match group.state {
                GroupState::Empty | GroupState::Dead => return error(ResponseError::UnknownMemberId),
                GroupState::PreparingRebalance => return error(ResponseError::RebalanceInProgress),
                GroupState::Stable => {
                    let assignment = group.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                    return outcome(&group, assignment);
                }
                GroupState::CompletingRebalance => {}
            }
            let (sender, receiver) = oneshot::channel();
            if let Some(member) = group.members.get_mut(member_id) {
                member.sync_waiter = Some(sender);
                member.last_heartbeat = Instant::now();
            }
            let mut record = None;
            if group.leader.as_deref() == Some(member_id) {
                let assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in group.members.values_mut() {
                    member.assignment = assigned.get(&member.id).cloned().unwrap_or_default();
                }
                group.set_state(GroupState::Stable);
                let (protocol_type, protocol_name) = (group.protocol_type.clone(), group.protocol.clone());
                for member in group.members.values_mut() {
                    if let Some(waiter) = member.sync_waiter.take() {
                        let _ = waiter.send(SyncOutcome {
                            error: None,
                            protocol_type: protocol_type.clone(),
                            protocol_name: protocol_name.clone(),
                            assignment: member.assignment.clone(),
                        });
                    }
                }
                record = Some(group_record(&group, true));
            }
            (receiver, record)
        };
        if let Some(record) = record {
            if let Err(error) = self.persist(group_id, vec![record]).await {
                tracing::warn!(group = group_id, ?error, "could not persist the group after sync");
            }
        }
        receiver.await.unwrap_or_else(|_| error(ResponseError::RebalanceInProgress))
    }

    /// The static-member fence (KIP-345): a request that names a `group.instance.id` now held by another
    /// member id comes from the member a newcomer with that id replaced, and gets FENCED_INSTANCE_ID, which
    /// clients treat as fatal, so two consumers never share one identity. For JoinGroup with a member id,
    /// SyncGroup, Heartbeat and OffsetCommit, of either protocol's members.
    pub fn fenced_instance(&self, group_id: &str, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        let instance = instance_id?;
        let group_rc = self.group(group_id)?;
        let group = group_rc.borrow();
        let holder = match &group.consumer {
            Some(consumer) => consumer.instance_holder(instance).map(str::to_string),
            None => group.static_members.get(instance).cloned(),
        }?;
        (holder != member_id).then_some(ResponseError::FencedInstanceId)
    }

    pub fn heartbeat(&self, group_id: &str, generation: i32, member_id: &str) -> Option<ResponseError> {
        let Some(group_rc) = self.group(group_id) else { return Some(ResponseError::UnknownMemberId) };
        let mut group = group_rc.borrow_mut();
        let state = group.state;
        let current = group.generation;
        let Some(member) = group.members.get_mut(member_id) else { return Some(ResponseError::UnknownMemberId) };
        member.last_heartbeat = Instant::now();
        match state {
            GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
            _ if generation != current => Some(ResponseError::IllegalGeneration),
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id for static members).
    pub fn leave(self: &Rc<Self>, group_id: &str, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        let Some(group_rc) = self.group(group_id) else { return Some(ResponseError::UnknownMemberId) };
        let mut group = group_rc.borrow_mut();
        let id = match instance_id {
            Some(instance) => match group.static_members.get(instance) {
                Some(id) if member_id.is_empty() || id == member_id => id.clone(),
                Some(_) => return Some(ResponseError::FencedInstanceId),
                None => return Some(ResponseError::UnknownMemberId),
            },
            None => member_id.to_string(),
        };
        if group.pending.remove(&id).is_some() {
            return None;
        }
        let Some(member) = group.remove_member(&id) else { return Some(ResponseError::UnknownMemberId) };
        if let Some(waiter) = member.join_waiter {
            let _ = waiter.send(JoinOutcome::error(ResponseError::UnknownMemberId, &id));
        }
        self.member_gone(&group_rc, &mut group);
        None
    }

    /// After a member left or expired: rebalance the rest, or settle an empty group.
    fn member_gone(self: &Rc<Self>, group_rc: &Rc<RefCell<Group>>, group: &mut Group) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance if !group.members.is_empty() => {
                self.prepare_rebalance(group_rc, group)
            }
            GroupState::Stable | GroupState::CompletingRebalance => {
                group.generation += 1;
                group.protocol = None;
                group.leader = None;
                group.set_state(GroupState::Empty);
            }
            // The join phase may now have every remaining member in.
            GroupState::PreparingRebalance => group.wake_join_phase(),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Evicts members whose session timed out, and returns the earliest session deadline still ahead (none
    /// without members). The shard's housekeeping calls it again at that deadline, or within 100 ms, so a
    /// session ends when it times out, as Kafka's timer ends it, not up to a polling interval later: a client
    /// that waits out the session timeout after closing a static member (librdkafka's test 0081) finds the
    /// group empty.
    pub fn expire_members(self: &Rc<Self>) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut ahead = |deadline: Option<Instant>| {
            if let Some(deadline) = deadline.filter(|deadline| *deadline >= now) {
                next = Some(next.map_or(deadline, |next| next.min(deadline)));
            }
        };
        let groups: Vec<Rc<RefCell<Group>>> = self.groups.borrow().values().cloned().collect();
        for group_rc in groups {
            let mut group = group_rc.borrow_mut();
            if group.consumer.is_some() {
                let id = group.id.clone();
                if let Some(consumer) = group.consumer.as_mut() {
                    consumer.expire(now, &id);
                    ahead(consumer.next_session_deadline());
                }
                continue;
            }
            ahead(
                group
                    .members
                    .values()
                    .filter(|m| m.join_waiter.is_none())
                    .map(|m| m.last_heartbeat + m.session_timeout)
                    .min(),
            );
            group.pending.retain(|_, since| now.duration_since(*since) < Duration::from_secs(300));
            // Members waiting in a join are held by the rebalance timeout, not the session timeout.
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.join_waiter.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout)
                .map(|m| m.id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            for id in &expired {
                tracing::info!(group = %group.id, member = %id, "session timed out; member removed");
                if let Some(member) = group.remove_member(id) {
                    if let Some(waiter) = member.sync_waiter {
                        let _ = waiter
                            .send(SyncOutcome { error: Some(ResponseError::UnknownMemberId), ..Default::default() });
                    }
                }
            }
            self.member_gone(&group_rc, &mut group);
        }
        next
    }
}
