//! The KIP-848 consumer protocol's per-group state: members, their subscriptions and owned partitions, the
//! group and assignment epochs, the server-side assignors (`uniform`, `range`) and reconciliation.
//!
//! Members do not join and sync; they heartbeat with their subscriptions and the partitions they own, and
//! the coordinator assigns partitions with a server-side assignor. Every change of membership,
//! subscriptions or partition counts bumps the group epoch and recomputes the target assignment. Each
//! member then reconciles: while it still owns partitions the target took away, it is told to keep only the
//! rest and stays at its epoch; once it has let them go, it moves to the new epoch and gets its target
//! partitions, except those another member has not released yet, which follow on a later heartbeat. A
//! partition is never given to two members at once.
//!
//! Plain state and transitions, with no I/O: the coordinator (`consumer.rs`) holds one per consumer-protocol
//! group in its table and persists the group epoch. Members are not persisted: after a coordinator restart
//! they get UNKNOWN_MEMBER_ID and rejoin with epoch 0; the group epoch is persisted so it only grows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sluice_replication::metadata::ClusterImage;

use crate::error::ResponseError;

/// (topic name, partition).
pub type TopicPartitionName = (String, i32);

#[derive(Debug, Clone, Copy)]
pub struct ConsumerProtocolConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval_ms: i32,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub subscribed: Vec<String>,
    pub server_assignor: Option<String>,
    /// What this member was last told it owns.
    pub assigned: BTreeSet<TopicPartitionName>,
    session_deadline: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupState {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, BTreeSet<TopicPartitionName>>,
    /// Partition counts of the subscribed topics when the target was computed.
    partition_counts: BTreeMap<String, usize>,
}

impl ConsumerGroupState {
    /// Kafka's state names for consumer-protocol groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.member_epoch != self.assignment_epoch) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// OffsetCommit from a member: its epoch must be current (the commit's generation field carries it).
    pub fn check_commit(&mut self, member_id: &str, epoch: i32) -> Option<ResponseError> {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() { None } else { Some(ResponseError::UnknownMemberId) };
        }
        match self.members.get(member_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some(member) if member.member_epoch != epoch => Some(ResponseError::StaleMemberEpoch),
            Some(_) => None,
        }
    }

    /// The member id that holds a static `group.instance.id`, if any member does.
    pub fn instance_holder(&self, instance: &str) -> Option<&str> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)).map(|m| m.member_id.as_str())
    }

    /// Removes members whose session expired; the group epoch moves on if any went.
    /// The earliest session deadline of the group's members, if it has any.
    pub fn next_session_deadline(&self) -> Option<Instant> {
        self.members.values().map(|member| member.session_deadline).min()
    }

    pub fn expire(&mut self, now: Instant, group_id: &str) {
        let before = self.members.len();
        self.members.retain(|id, member| {
            let alive = member.session_deadline > now;
            if !alive {
                tracing::info!(group = group_id, member = %id, "consumer-protocol session timed out; member removed");
            }
            alive
        });
        if self.members.len() != before {
            self.group_epoch += 1;
        }
    }

    fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members.values().flat_map(|m| m.subscribed.iter().cloned()).collect()
    }

    /// Recomputes the target assignment for the current members, subscriptions and partition counts.
    fn compute_target(&mut self, image: &ClusterImage) {
        let counts: BTreeMap<String, usize> = self
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| image.topic(&t).map(|topic| (t, topic.partitions.len())))
            .collect();
        let previous = std::mem::take(&mut self.target);
        self.target = match self.assignor.as_str() {
            "range" => range_assign(&self.members, &counts),
            _ => uniform_assign(&self.members, &counts, &previous),
        };
        self.partition_counts = counts;
        self.assignment_epoch = self.group_epoch;
    }
}

/// `range`: per topic, members subscribed to it (by id) get contiguous ranges, the first ones one extra.
fn range_assign(
    members: &BTreeMap<String, ConsumerMember>,
    counts: &BTreeMap<String, usize>,
) -> BTreeMap<String, BTreeSet<TopicPartitionName>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartitionName>> =
        members.keys().map(|id| (id.clone(), BTreeSet::new())).collect();
    for (topic, count) in counts {
        let subscribers: Vec<&String> =
            members.values().filter(|m| m.subscribed.contains(topic)).map(|m| &m.member_id).collect();
        if subscribers.is_empty() {
            continue;
        }
        let (per, extra) = (count / subscribers.len(), count % subscribers.len());
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = per + usize::from(i < extra);
            for p in next..next + take {
                target.entry((*member).clone()).or_default().insert((topic.clone(), p as i32));
            }
            next += take;
        }
    }
    target
}

/// `uniform`: every subscribed partition spread evenly over the members subscribed to its topic, keeping
/// previous owners where the balance allows (sticky), so rebalances move as little as possible.
fn uniform_assign(
    members: &BTreeMap<String, ConsumerMember>,
    counts: &BTreeMap<String, usize>,
    previous: &BTreeMap<String, BTreeSet<TopicPartitionName>>,
) -> BTreeMap<String, BTreeSet<TopicPartitionName>> {
    let mut target: BTreeMap<String, BTreeSet<TopicPartitionName>> =
        members.keys().map(|id| (id.clone(), BTreeSet::new())).collect();
    let all: Vec<TopicPartitionName> =
        counts.iter().flat_map(|(t, c)| (0..*c as i32).map(move |p| (t.clone(), p))).collect();
    if members.is_empty() || all.is_empty() {
        return target;
    }
    let quota = |index: usize| all.len() / members.len() + usize::from(index < all.len() % members.len());
    let quotas: BTreeMap<&String, usize> = members.keys().enumerate().map(|(i, id)| (id, quota(i))).collect();
    let mut taken = BTreeSet::new();
    for (id, partitions) in previous {
        let Some(member) = members.get(id) else { continue };
        for tp in partitions {
            let room = target.get(id).map_or(0, BTreeSet::len) < quotas.get(id).copied().unwrap_or(0);
            if room
                && counts.contains_key(&tp.0)
                && member.subscribed.contains(&tp.0)
                && !taken.contains(tp)
                && (tp.1 as usize) < counts[&tp.0]
            {
                target.entry(id.clone()).or_default().insert(tp.clone());
                taken.insert(tp.clone());
            }
        }
    }
    for tp in all.iter().filter(|tp| !taken.contains(*tp)) {
        let candidate = members.values().filter(|m| m.subscribed.contains(&tp.0)).min_by_key(|m| {
            let have = target.get(&m.member_id).map_or(0, BTreeSet::len);
            let over = have >= quotas.get(&m.member_id).copied().unwrap_or(0);
            (over, have, m.member_id.clone())
        });
        if let Some(member) = candidate {
            target.entry(member.member_id.clone()).or_default().insert(tp.clone());
        }
    }
    target
}

/// A decoded ConsumerGroupHeartbeat.
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: Option<Vec<String>>,
    pub server_assignor: Option<String>,
    /// Owned partitions as reported (topic names resolved from ids), None when unchanged.
    pub owned: Option<BTreeSet<TopicPartitionName>>,
}

#[derive(Debug, Clone, Default)]
pub struct HeartbeatOutcome {
    pub error: Option<(ResponseError, String)>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed (or on join).
    pub assignment: Option<BTreeSet<TopicPartitionName>>,
}

const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;
/// The server-side assignors a member may ask for.
pub const SUPPORTED_ASSIGNORS: &[&str] = &["uniform", "range"];

/// Where a heartbeat left its member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The member is in the group (it joined, or heartbeated as a member).
    Active,
    /// The member left (epoch -1, or -2 for a static member).
    Left,
}

impl ConsumerGroupState {
    /// A new consumer-protocol group, continuing the epochs of what the group was (its generation).
    pub fn new(epoch: i32) -> ConsumerGroupState {
        ConsumerGroupState {
            group_epoch: epoch,
            assignment_epoch: epoch,
            assignor: "uniform".into(),
            ..Default::default()
        }
    }

    /// Applies one heartbeat at `now`: a join, a leave, subscription and ownership changes, then a new target if
    /// the group epoch moved, and the member's reconciliation towards it. A refusal is the error and its
    /// message.
    pub fn heartbeat(
        &mut self,
        request: &HeartbeatRequest,
        image: &ClusterImage,
        config: ConsumerProtocolConfig,
        now: Instant,
    ) -> Result<(HeartbeatOutcome, Membership), (ResponseError, &'static str)> {
        let state = self;
        match request.member_epoch {
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => {
                if state.members.remove(&request.member_id).is_some() {
                    state.group_epoch += 1;
                    state.target.remove(&request.member_id);
                }
                let outcome = HeartbeatOutcome {
                    error: None,
                    member_id: request.member_id.clone(),
                    member_epoch: request.member_epoch,
                    heartbeat_interval_ms: 0,
                    assignment: None,
                };
                Ok((outcome, Membership::Left))
            }
            epoch => {
                let joining = epoch == 0;
                let mut member_id = request.member_id.clone();
                if joining {
                    let Some(subscribed) = request.subscribed.clone() else {
                        return Err((ResponseError::InvalidRequest, "a joining member must send its subscriptions"));
                    };
                    if member_id.is_empty() {
                        member_id = uuid::Uuid::new_v4().to_string();
                    }
                    if let Some(instance) = &request.instance_id {
                        // Kafka's rule for KIP-848 static members: an instance id still held by another member
                        // (one that has neither left nor timed out) is not taken over; the newcomer is refused
                        // with UNRELEASED_INSTANCE_ID, which clients treat as fatal.
                        if state.instance_holder(instance).is_some_and(|holder| holder != member_id) {
                            return Err((
                                ResponseError::UnreleasedInstanceId,
                                "the group.instance.id is still held by another member; it must leave first",
                            ));
                        }
                    }
                    let existing =
                        state.members.get(&member_id).map(|m| (m.subscribed.clone(), m.server_assignor.clone()));
                    let member = state.members.entry(member_id.clone()).or_insert_with(|| ConsumerMember {
                        member_id: member_id.clone(),
                        instance_id: request.instance_id.clone(),
                        rack_id: request.rack_id.clone(),
                        client_id: request.client_id.clone(),
                        client_host: request.client_host.clone(),
                        member_epoch: 0,
                        subscribed: Vec::new(),
                        server_assignor: None,
                        assigned: BTreeSet::new(),
                        session_deadline: now,
                    });
                    member.member_epoch = 0;
                    member.subscribed = subscribed;
                    member.subscribed.sort();
                    member.server_assignor.clone_from(&request.server_assignor);
                    member.assigned.clear();
                    if existing != Some((member.subscribed.clone(), member.server_assignor.clone())) {
                        state.group_epoch += 1;
                    }
                }
                let Some(member) = state.members.get_mut(&member_id) else {
                    return Err((ResponseError::UnknownMemberId, "unknown member; rejoin with epoch 0"));
                };
                if !joining && epoch != member.member_epoch {
                    return Err((ResponseError::FencedMemberEpoch, "the member epoch is not current; rejoin"));
                }
                member.session_deadline = now + config.session_timeout;
                if !joining {
                    if let Some(subscribed) = &request.subscribed {
                        let mut subscribed = subscribed.clone();
                        subscribed.sort();
                        if subscribed != member.subscribed {
                            member.subscribed = subscribed;
                            state.group_epoch += 1;
                        }
                    }
                    if let Some(owned) = &request.owned {
                        member.assigned = owned.clone();
                    }
                }
                // A new preferred assignor applies to the whole group.
                if let Some(assignor) = state.members.values().filter_map(|m| m.server_assignor.clone()).next() {
                    state.assignor = assignor;
                }
                // Topic growth changes the target too.
                let counts: BTreeMap<String, usize> = state
                    .subscribed_topics()
                    .into_iter()
                    .filter_map(|t| image.topic(&t).map(|topic| (t, topic.partitions.len())))
                    .collect();
                if counts != state.partition_counts {
                    state.group_epoch += 1;
                }
                if state.assignment_epoch < state.group_epoch {
                    state.compute_target(image);
                }
                let outcome = reconcile(state, &member_id, joining, config);
                Ok((outcome, Membership::Active))
            }
        }
    }
}

/// Moves one member towards its target: revoke first, then assign what others have released.
fn reconcile(
    state: &mut ConsumerGroupState,
    member_id: &str,
    joining: bool,
    config: ConsumerProtocolConfig,
) -> HeartbeatOutcome {
    let target = state.target.get(member_id).cloned().unwrap_or_default();
    let owned_by_others: BTreeSet<TopicPartitionName> =
        state.members.values().filter(|m| m.member_id != member_id).flat_map(|m| m.assigned.iter().cloned()).collect();
    let assignment_epoch = state.assignment_epoch;
    let Some(member) = state.members.get_mut(member_id) else {
        return HeartbeatOutcome { error: Some((ResponseError::UnknownMemberId, String::new())), ..Default::default() };
    };
    let before = member.assigned.clone();
    let to_revoke: BTreeSet<_> = member.assigned.difference(&target).cloned().collect();
    if to_revoke.is_empty() {
        member.assigned = target.difference(&owned_by_others).cloned().collect();
        member.member_epoch = assignment_epoch;
    } else {
        member.assigned = member.assigned.intersection(&target).cloned().collect();
    }
    let changed = joining || member.assigned != before;
    HeartbeatOutcome {
        error: None,
        member_id: member.member_id.clone(),
        member_epoch: member.member_epoch,
        heartbeat_interval_ms: config.heartbeat_interval_ms,
        assignment: changed.then(|| member.assigned.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> ConsumerMember {
        ConsumerMember {
            member_id: id.into(),
            instance_id: None,
            rack_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            member_epoch: 0,
            subscribed: topics.iter().map(|t| t.to_string()).collect(),
            server_assignor: None,
            assigned: BTreeSet::new(),
            session_deadline: Instant::now(),
        }
    }

    #[test]
    fn assignors_cover_every_partition_once_and_balance() {
        let members: BTreeMap<String, ConsumerMember> =
            ["a", "b", "c"].iter().map(|id| (id.to_string(), member(id, &["t", "u"]))).collect();
        let counts = BTreeMap::from([("t".to_string(), 4), ("u".to_string(), 3)]);
        for target in [range_assign(&members, &counts), uniform_assign(&members, &counts, &BTreeMap::new())] {
            let all: Vec<_> = target.values().flatten().collect();
            assert_eq!(all.len(), 7);
            assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 7);
        }
        let uniform = uniform_assign(&members, &counts, &BTreeMap::new());
        let sizes: Vec<usize> = uniform.values().map(BTreeSet::len).collect();
        assert!(sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 1, "{sizes:?}");
        // Sticky: a member leaving moves only its own partitions.
        let mut fewer = members.clone();
        fewer.remove("c");
        let next = uniform_assign(&fewer, &counts, &uniform);
        for id in ["a", "b"] {
            assert!(uniform[id].is_subset(&next[id]), "{id} lost partitions it kept");
        }
    }

    #[test]
    fn reconciliation_revokes_before_assigning() {
        let config = ConsumerProtocolConfig { session_timeout: Duration::from_secs(45), heartbeat_interval_ms: 5000 };
        let mut state =
            ConsumerGroupState { group_epoch: 2, assignment_epoch: 2, assignor: "range".into(), ..Default::default() };
        let mut a = member("a", &["t"]);
        a.assigned = [("t".to_string(), 0), ("t".to_string(), 1)].into_iter().collect();
        a.member_epoch = 1;
        state.members.insert("a".into(), a);
        state.members.insert("b".into(), member("b", &["t"]));
        state.target.insert("a".into(), [("t".to_string(), 0)].into_iter().collect());
        state.target.insert("b".into(), [("t".to_string(), 1)].into_iter().collect());
        // b cannot have t-1 while a still owns it.
        let b = reconcile(&mut state, "b", true, config);
        assert_eq!(b.assignment, Some(BTreeSet::new()));
        let a = reconcile(&mut state, "a", false, config);
        assert_eq!(a.assignment, Some([("t".to_string(), 0)].into_iter().collect()));
        assert_eq!(a.member_epoch, 1, "a keeps its epoch until it has revoked");
        let a = reconcile(&mut state, "a", false, config);
        assert_eq!(a.member_epoch, 2);
        let b = reconcile(&mut state, "b", false, config);
        assert_eq!(b.assignment, Some([("t".to_string(), 1)].into_iter().collect()));
    }
}
