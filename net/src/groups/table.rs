//! The group table of one shard: every group whose `__consumer_offsets` partition this shard owns, with its
//! members (classic protocol), its KIP-848 state, its committed offsets, and the logs of those partitions.
//!
//! A group maps to a partition of `__consumer_offsets` (Kafka's `abs(hashCode) % n`); the shard that owns
//! that partition is the group's coordinator, and every request for the group runs there. The table is
//! changed only in short synchronous sections: no borrow is held across an `.await`. What changes it lives
//! in the sibling files: `classic.rs` (join, sync, heartbeat, leave, expiry), `consumer.rs` (KIP-848),
//! `offsets.rs` (commits) and `store.rs` (persistence and replay).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use sluice_engine::types::now_ms;
use sluice_engine::PartitionLog;

use super::consumer_state::ConsumerGroupState;
use crate::error::ResponseError;

/// The internal topic holding groups and offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's partition for a group: `Utils.abs(groupId.hashCode()) % partitions`, Java's UTF-16 string hash.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (hash & 0x7fff_ffff) % partitions.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One group as ListGroups shows it: Kafka's group type ("classic" or "consumer", KIP-848) and the state name
/// of that type (a consumer-protocol group is "Assigning" or "Reconciling" where a classic one rebalances).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedGroup {
    pub id: String,
    pub protocol_type: String,
    pub group_type: &'static str,
    pub state: &'static str,
}

/// Group settings from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub offset_metadata_max_bytes: usize,
    pub offsets_retention_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata of the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinOutcome {
    pub(super) fn error(error: ResponseError, member_id: &str) -> Self {
        JoinOutcome { error: Some(error), generation_id: -1, member_id: member_id.to_string(), ..Default::default() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) assignment: Bytes,
    pub(super) last_heartbeat: Instant,
    pub(super) join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    pub(super) sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    pub(super) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) generation: i32,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used to join.
    pub(super) pending: BTreeMap<String, Instant>,
    pub(super) static_members: HashMap<String, String>,
    pub(super) offsets: BTreeMap<(String, i32), CommittedOffset>,
    pub(super) state_changed_ms: i64,
    /// A task ends the join phase of the rebalance in progress (`classic.rs`).
    pub(super) rebalance_running: bool,
    /// Wakes that task when a member joined or left, so the phase ends as soon as every member is in (Kafka
    /// completes its delayed join on each JoinGroup) rather than at the next poll or the timeout.
    pub(super) join_phase_wake: Option<oneshot::Sender<()>>,
    /// Set when the group uses the KIP-848 consumer protocol (see `consumer_state.rs`).
    pub(super) consumer: Option<ConsumerGroupState>,
}

impl Group {
    pub(super) fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            state_changed_ms: now_ms(),
            rebalance_running: false,
            join_phase_wake: None,
            consumer: None,
        }
    }

    /// A JoinGroup answer that repeats the current generation (no rebalance), for a follower.
    pub(super) fn current_generation(&self, member_id: String) -> JoinOutcome {
        JoinOutcome {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id,
            members: Vec::new(),
        }
    }

    /// No classic-protocol members.
    pub(super) fn members_is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Tells the task ending the join phase that the members changed (a join, a leave, an expiry).
    pub(super) fn wake_join_phase(&mut self) {
        if let Some(wake) = self.join_phase_wake.take() {
            let _ = wake.send(());
        }
    }

    /// Every member is waiting in a JoinGroup: the join phase can end.
    pub(super) fn all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_changed_ms = now_ms();
    }

    /// A protocol every member supports, chosen by the members' preference order (Kafka's vote).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == *name)))
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        candidates
            .into_iter()
            .max_by_key(|name| (votes.get(name).copied().unwrap_or(0), std::cmp::Reverse(*name)))
            .cloned()
    }

    pub(super) fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    pub(super) fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Topics the members' consumer-protocol subscriptions name.
    pub(super) fn subscribed_topics(&self) -> Vec<String> {
        let mut topics = Vec::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        let Some(protocol) = &self.protocol else { return topics };
        for member in self.members.values() {
            topics.extend(parse_subscription_topics(&member.metadata_for(protocol)));
        }
        topics.sort();
        topics.dedup();
        topics
    }
}

/// Topic names of a ConsumerProtocolSubscription (version i16, then an array of strings).
pub(super) fn parse_subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut reader = crate::wire::Reader::new(Bytes::copy_from_slice(metadata));
    let mut topics = Vec::new();
    if reader.i16("version").is_err() {
        return topics;
    }
    let Ok(count) = reader.array_len("topics", false) else { return topics };
    for _ in 0..count {
        match reader.string("topic") {
            Ok(topic) => topics.push(topic),
            Err(_) => break,
        }
    }
    topics
}

/// A `__consumer_offsets` partition this shard leads, and the leader epoch its records are written in.
#[derive(Debug, Clone)]
pub struct CoordinatorLog {
    pub log: Rc<PartitionLog>,
    pub leader_epoch: sluice_engine::LeaderEpoch,
    /// Reaches 1 when this shard gives the partition up (or loads it again in a newer epoch): a write waiting
    /// for the high watermark then fails with NOT_COORDINATOR, since a deposed leader's high watermark is the
    /// new leader's and its own records past it may be truncated.
    pub resigned: Rc<sluice_engine::watch::OffsetWatch>,
}

/// The groups of one shard, for the `__consumer_offsets` partitions it owns.
pub struct Coordinator {
    pub(super) groups: RefCell<HashMap<String, Rc<RefCell<Group>>>>,
    /// Logs of the owned `__consumer_offsets` partitions, by partition.
    pub(super) logs: RefCell<HashMap<i32, CoordinatorLog>>,
    /// Partitions being loaded: their groups answer COORDINATOR_LOAD_IN_PROGRESS until the replay is done.
    pub(super) loading: RefCell<std::collections::HashSet<i32>>,
    /// Partitions whose records could not be replayed (`store.rs`): their groups answer
    /// COORDINATOR_NOT_AVAILABLE until the partition is unloaded (its leadership moves) and loaded again.
    pub(super) refused: RefCell<std::collections::HashSet<i32>>,
    pub(super) config: RefCell<GroupConfig>,
    /// Partition count of `__consumer_offsets`.
    pub(super) offsets_partitions: Cell<i32>,
}

/// Why a group operation failed before reaching the group.
pub type GroupResult<T> = Result<T, ResponseError>;

impl Coordinator {
    pub fn new(config: GroupConfig) -> Rc<Coordinator> {
        Rc::new(Coordinator {
            groups: RefCell::new(HashMap::new()),
            logs: RefCell::new(HashMap::new()),
            loading: RefCell::new(std::collections::HashSet::new()),
            refused: RefCell::new(std::collections::HashSet::new()),
            config: RefCell::new(config),
            offsets_partitions: Cell::new(1),
        })
    }

    pub fn config(&self) -> GroupConfig {
        *self.config.borrow()
    }

    pub fn set_offsets_partitions(&self, partitions: i32) {
        self.offsets_partitions.set(partitions.max(1));
    }

    pub(super) fn group(&self, id: &str) -> Option<Rc<RefCell<Group>>> {
        self.groups.borrow().get(id).cloned()
    }

    pub(super) fn group_or_create(&self, id: &str) -> Rc<RefCell<Group>> {
        self.groups.borrow_mut().entry(id.to_string()).or_insert_with(|| Rc::new(RefCell::new(Group::new(id)))).clone()
    }

    /// The log a group's records go to, with the leader epoch to write them in. NOT_COORDINATOR when this
    /// broker does not lead the group's partition, COORDINATOR_LOAD_IN_PROGRESS while it is loading it,
    /// COORDINATOR_NOT_AVAILABLE when its records could not be replayed (as Kafka answers for a coordinator
    /// that failed to load: clients retry and look the coordinator up again).
    pub(super) fn log_for(&self, group_id: &str) -> GroupResult<CoordinatorLog> {
        let partition = partition_for_group(group_id, self.offsets_partitions.get());
        if self.loading.borrow().contains(&partition) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        if self.refused.borrow().contains(&partition) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.logs.borrow().get(&partition).cloned().ok_or(ResponseError::NotCoordinator)
    }

    /// Whether this coordinator serves, is loading or has refused a `__consumer_offsets` partition (a refused
    /// one is not read again with every new image, only once its leadership has moved and come back).
    pub fn holds_partition(&self, partition: i32) -> bool {
        self.logs.borrow().contains_key(&partition)
            || self.loading.borrow().contains(&partition)
            || self.refused.borrow().contains(&partition)
    }

    /// Gives up a partition whose leadership moved away: its groups leave this shard (their waiting members
    /// are answered with errors as their channels close) and later requests get NOT_COORDINATOR.
    pub fn unload_partition(&self, partition: i32) {
        let removed = self.logs.borrow_mut().remove(&partition);
        if let Some(removed) = removed {
            removed.resigned.advance(1);
        }
        self.loading.borrow_mut().remove(&partition);
        self.refused.borrow_mut().remove(&partition);
        let partitions = self.offsets_partitions.get();
        let gone: Vec<Rc<RefCell<Group>>> = {
            let mut groups = self.groups.borrow_mut();
            let ids: Vec<String> =
                groups.keys().filter(|id| partition_for_group(id, partitions) == partition).cloned().collect();
            ids.iter().filter_map(|id| groups.remove(id)).collect()
        };
        if !gone.is_empty() {
            tracing::info!(
                partition,
                groups = gone.len(),
                "unloaded consumer groups: the partition's leadership moved"
            );
        }
    }

    /// A consumer-protocol group's state, for ConsumerGroupDescribe.
    pub fn consumer_state(&self, group_id: &str) -> Option<ConsumerGroupState> {
        self.group(group_id)?.borrow().consumer.clone()
    }

    /// Every group on this shard, as ListGroups shows it.
    pub fn list(&self) -> Vec<ListedGroup> {
        self.groups
            .borrow()
            .values()
            .map(|g| {
                let g = g.borrow();
                let (group_type, state) = match &g.consumer {
                    Some(consumer) => ("consumer", consumer.state_name()),
                    None => ("classic", g.state.name()),
                };
                ListedGroup {
                    id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    group_type,
                    state,
                }
            })
            .collect()
    }

    /// Every group on this shard with its state, member count and committed offsets, for a metrics scrape.
    pub fn offsets_view(&self) -> Vec<GroupOffsets> {
        self.groups
            .borrow()
            .values()
            .map(|group| {
                let group = group.borrow();
                let (state, protocol) = match &group.consumer {
                    Some(consumer) => (consumer.state_name(), GroupProtocol::Consumer),
                    None => (group.state.name(), GroupProtocol::Classic),
                };
                GroupOffsets {
                    group: group.id.clone(),
                    protocol,
                    state,
                    members: group.consumer.as_ref().map_or(group.members.len(), |c| c.members.len()),
                    offsets: group
                        .offsets
                        .iter()
                        .map(|((topic, partition), committed)| (topic.clone(), *partition, committed.offset))
                        .collect(),
                }
            })
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let group = self.group(group_id)?;
        let group = group.borrow();
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol,
            generation: group.generation,
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(group.protocol.as_deref().unwrap_or_default()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }
}

/// Which protocol a group speaks, and so which states it can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    Classic,
    /// KIP-848.
    Consumer,
}

impl GroupProtocol {
    /// The states a group of this protocol can be in, as DescribeGroups and ConsumerGroupDescribe name them.
    pub fn states(self) -> &'static [&'static str] {
        match self {
            GroupProtocol::Classic => &["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"],
            GroupProtocol::Consumer => &["Empty", "Assigning", "Reconciling", "Stable"],
        }
    }
}

/// One group as a scrape sees it (`Send`: it crosses the mesh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    pub group: String,
    pub protocol: GroupProtocol,
    pub state: &'static str,
    pub members: usize,
    /// (topic, partition, committed offset).
    pub offsets: Vec<(String, i32, i64)>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberDescription>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partitions_match_kafka() {
        // Java: Math.abs("my-group".hashCode()) % 50 with Kafka's Utils.abs.
        assert_eq!("my-group".encode_utf16().count(), 8);
        let mut java_hash: i32 = 0;
        for c in "my-group".chars() {
            java_hash = java_hash.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(partition_for_group("my-group", 50), (java_hash & 0x7fff_ffff) % 50);
        assert_eq!(partition_for_group("", 50), 0);
    }

    #[test]
    fn subscriptions_parse_topics() {
        let mut data = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        assert_eq!(parse_subscription_topics(&data), vec!["a".to_string(), "bc".to_string()]);
        data.truncate(9);
        assert_eq!(parse_subscription_topics(&data), vec!["a".to_string()]);
    }
}
