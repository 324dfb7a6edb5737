//! The group coordinator: consumer groups (classic protocol) and committed offsets.
//!
//! A group maps to a partition of the internal topic `__consumer_offsets` (Kafka's `abs(hashCode) % n`); the
//! shard that owns that partition is the group's coordinator, and every request for the group runs there.
//! Group state lives in a shard-local table and is changed only in short synchronous sections: no borrow is
//! held across an `.await`. Waiting members (a JoinGroup held until the rebalance completes, a SyncGroup held
//! until the leader assigns) wait on one-shot channels.
//!
//! Durable state is records in `__consumer_offsets` (flush policy `always`): a committed offset per
//! (group, topic, partition) and a group record (protocol type and generation), with null values as
//! tombstones. A shard rebuilds its groups from the partitions it owns at startup. When a partition has
//! accumulated [`SNAPSHOT_AFTER_RECORDS`] records since its start, the live state is appended again and
//! everything before it is deleted, so the topic does not grow without bound.
//!
//! States follow Kafka: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead. Session timeouts and
//! rebalance timeouts evict members; generation ids fence stale members; static members
//! (`group.instance.id`) that come back within their session timeout take their old place without a
//! rebalance.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use sluice_engine::batch::{self, BatchBuilder, RecordSpec};
use sluice_engine::types::now_ms;
use sluice_engine::{AppendMode, LeaderEpoch, Offset, PartitionLog};

use crate::error::ResponseError;

/// The internal topic holding groups and offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Records in a coordinator partition after which its live state is rewritten and the rest deleted.
pub const SNAPSHOT_AFTER_RECORDS: i64 = 100_000;

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
    fn error(error: ResponseError, member_id: &str) -> Self {
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
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Group {
    pub(crate) id: String,
    pub(crate) state: GroupState,
    pub(crate) protocol_type: Option<String>,
    protocol: Option<String>,
    pub(crate) generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used to join.
    pending: BTreeMap<String, Instant>,
    static_members: HashMap<String, String>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    pub(crate) state_changed_ms: i64,
    rebalance_running: bool,
    /// Set when the group uses the KIP-848 consumer protocol (see `consumer_protocol.rs`).
    pub(crate) consumer: Option<crate::consumer_protocol::ConsumerGroupState>,
}

impl Group {
    fn new(id: &str) -> Self {
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
            consumer: None,
        }
    }

    /// A JoinGroup answer that repeats the current generation (no rebalance), for a follower.
    fn current_generation(&self, member_id: String) -> JoinOutcome {
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
    pub(crate) fn members_is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_changed_ms = now_ms();
    }

    /// A protocol every member supports, chosen by the members' preference order (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
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

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
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
    fn subscribed_topics(&self) -> Vec<String> {
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
fn parse_subscription_topics(metadata: &[u8]) -> Vec<String> {
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

/// Persisted record: key and value as JSON (null value = tombstone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(crate) enum RecordKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupValue {
    protocol_type: Option<String>,
    generation: i32,
}

pub(crate) type Persisted = (RecordKey, Option<Vec<u8>>);

fn offset_record(group: &str, topic: &str, partition: i32, value: Option<&CommittedOffset>) -> Persisted {
    let key = RecordKey::Offset { group: group.to_string(), topic: topic.to_string(), partition };
    let value = value.map(|v| {
        serde_json::to_vec(&OffsetValue {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp_ms: v.commit_timestamp_ms,
        })
        .unwrap_or_default()
    });
    (key, value)
}

pub(crate) fn group_record(group: &Group, live: bool) -> Persisted {
    let key = RecordKey::Group { group: group.id.clone() };
    let value = live.then(|| {
        serde_json::to_vec(&GroupValue { protocol_type: group.protocol_type.clone(), generation: group.generation })
            .unwrap_or_default()
    });
    (key, value)
}

/// The groups of one shard, for the `__consumer_offsets` partitions it owns.
pub struct Coordinator {
    groups: RefCell<HashMap<String, Rc<RefCell<Group>>>>,
    /// Logs of the owned `__consumer_offsets` partitions, by partition.
    logs: RefCell<HashMap<i32, Rc<PartitionLog>>>,
    config: RefCell<GroupConfig>,
    /// Partition count of `__consumer_offsets`.
    offsets_partitions: Cell<i32>,
}

/// Why a group operation failed before reaching the group.
pub type GroupResult<T> = Result<T, ResponseError>;

impl Coordinator {
    pub fn new(config: GroupConfig) -> Rc<Coordinator> {
        Rc::new(Coordinator {
            groups: RefCell::new(HashMap::new()),
            logs: RefCell::new(HashMap::new()),
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

    /// Takes over a `__consumer_offsets` partition: replays its records into groups.
    pub async fn load_partition(
        &self,
        partition: i32,
        log: Rc<PartitionLog>,
    ) -> Result<usize, sluice_engine::EngineError> {
        let mut position = log.log_start_offset();
        let end = log.high_watermark();
        let mut applied = 0;
        while position < end {
            let bytes = log.read_bytes(position, 1 << 20, end).await?;
            let batches = batch::split_batches(&bytes);
            if batches.is_empty() {
                break;
            }
            for one in batches {
                let Some(records) = batch::records(one) else { continue };
                for record in records {
                    position = Offset(record.offset + 1);
                    let Some(key) = record.key.and_then(|k| serde_json::from_slice::<RecordKey>(k).ok()) else {
                        continue;
                    };
                    self.apply_record(&key, record.value);
                    applied += 1;
                }
            }
        }
        self.logs.borrow_mut().insert(partition, log);
        Ok(applied)
    }

    fn apply_record(&self, key: &RecordKey, value: Option<&[u8]>) {
        match key {
            RecordKey::Offset { group, topic, partition } => {
                let group = self.group_or_create(group);
                let mut group = group.borrow_mut();
                match value.and_then(|v| serde_json::from_slice::<OffsetValue>(v).ok()) {
                    Some(v) => {
                        group.offsets.insert(
                            (topic.clone(), *partition),
                            CommittedOffset {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp_ms: v.commit_timestamp_ms,
                            },
                        );
                    }
                    None => {
                        group.offsets.remove(&(topic.clone(), *partition));
                    }
                }
            }
            RecordKey::Group { group: id } => match value.and_then(|v| serde_json::from_slice::<GroupValue>(v).ok()) {
                Some(v) => {
                    let group = self.group_or_create(id);
                    let mut group = group.borrow_mut();
                    group.protocol_type = v.protocol_type;
                    group.generation = v.generation;
                }
                None => {
                    self.groups.borrow_mut().remove(id);
                }
            },
        }
    }

    pub(crate) fn group(&self, id: &str) -> Option<Rc<RefCell<Group>>> {
        self.groups.borrow().get(id).cloned()
    }

    pub(crate) fn group_or_create(&self, id: &str) -> Rc<RefCell<Group>> {
        self.groups.borrow_mut().entry(id.to_string()).or_insert_with(|| Rc::new(RefCell::new(Group::new(id)))).clone()
    }

    pub(crate) fn log_for(&self, group_id: &str) -> GroupResult<Rc<PartitionLog>> {
        let partition = partition_for_group(group_id, self.offsets_partitions.get());
        self.logs.borrow().get(&partition).cloned().ok_or(ResponseError::NotCoordinator)
    }

    /// Appends records to the group's partition and waits until they are durable.
    pub(crate) async fn persist(&self, group_id: &str, records: Vec<Persisted>) -> GroupResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let log = self.log_for(group_id)?;
        let now = now_ms();
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            records.iter().map(|(key, value)| (serde_json::to_vec(key).unwrap_or_default(), value.clone())).collect();
        let mut builder = BatchBuilder::with_capacity(
            encoded.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>() + 256,
        );
        for (key, value) in &encoded {
            builder.push(&RecordSpec { key: Some(key), value: value.as_deref(), headers: &[], timestamp_ms: now });
        }
        let info = log
            .append(builder.finish(), AppendMode::Coordinator { leader_epoch: LeaderEpoch(0) })
            .await
            .map_err(|error| {
                tracing::error!(group = group_id, %error, "writing to __consumer_offsets failed");
                ResponseError::KafkaStorageError
            })?;
        log.high_watermark_watch()
            .wait_for(info.last_offset.next().0)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        Ok(())
    }
}

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
        if self.log_for(&request.group_id).is_err() {
            return JoinOutcome::error(ResponseError::NotCoordinator, &request.member_id);
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
            if !initial_delay.is_zero() {
                glommio::timer::sleep(initial_delay.min(rebalance_timeout.max(Duration::from_millis(1)))).await;
            }
            loop {
                let done = {
                    let group = group_rc.borrow();
                    group.state != GroupState::PreparingRebalance
                        || group.members.values().all(|m| m.join_waiter.is_some())
                };
                if done || started.elapsed() >= rebalance_timeout {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            coordinator.complete_join(&group_rc).await;
        })
        .detach();
    }

    /// Ends the join phase: members that did not rejoin are removed, a new generation starts, and every
    /// waiting member gets its JoinGroup answer (the leader with the member list).
    async fn complete_join(&self, group_rc: &Rc<RefCell<Group>>) {
        let record = {
            let mut group = group_rc.borrow_mut();
            group.rebalance_running = false;
            if group.state != GroupState::PreparingRebalance {
                return;
            }
            let gone: Vec<String> =
                group.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
            for id in gone {
                group.remove_member(&id);
            }
            group.generation += 1;
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
            _ => {}
        }
    }

    /// Evicts members whose session timed out. Called by the shard's housekeeping every 100 ms.
    pub fn expire_members(self: &Rc<Self>) {
        let now = Instant::now();
        let groups: Vec<Rc<RefCell<Group>>> = self.groups.borrow().values().cloned().collect();
        for group_rc in groups {
            let mut group = group_rc.borrow_mut();
            if group.consumer.is_some() {
                let id = group.id.clone();
                if let Some(consumer) = group.consumer.as_mut() {
                    consumer.expire(now, &id);
                }
                continue;
            }
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
    }

    /// Checks an OffsetCommit against the group; creates a memberless group for simple commits.
    fn check_commit(&self, group_id: &str, generation: i32, member_id: &str) -> GroupResult<Rc<RefCell<Group>>> {
        self.log_for(group_id)?;
        let group_rc = match self.group(group_id) {
            Some(group) => group,
            None if generation < 0 => self.group_or_create(group_id),
            None => return Err(ResponseError::IllegalGeneration),
        };
        {
            let mut group = group_rc.borrow_mut();
            if let Some(consumer) = group.consumer.as_mut() {
                return match consumer.check_commit(member_id, generation) {
                    None => Ok(group_rc.clone()),
                    Some(error) => Err(error),
                };
            }
            if generation < 0 && member_id.is_empty() {
                if group.members.is_empty() {
                    return Ok(group_rc.clone());
                }
                return Err(ResponseError::UnknownMemberId);
            }
            let state = group.state;
            let current = group.generation;
            let Some(member) = group.members.get_mut(member_id) else { return Err(ResponseError::UnknownMemberId) };
            member.last_heartbeat = Instant::now();
            if generation != current {
                return Err(ResponseError::IllegalGeneration);
            }
            if matches!(state, GroupState::PreparingRebalance | GroupState::CompletingRebalance) {
                return Err(ResponseError::RebalanceInProgress);
            }
        }
        Ok(group_rc)
    }

    /// OffsetCommit. `offsets` are (topic, partition, offset, leader epoch, metadata) already checked for
    /// existence; returns one error per offset, in order.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        offsets: Vec<(String, i32, i64, i32, Option<String>)>,
    ) -> Vec<Option<ResponseError>> {
        let group_rc = match self.check_commit(group_id, generation, member_id) {
            Ok(group) => group,
            Err(error) => return vec![Some(error); offsets.len()],
        };
        let max_metadata = self.config().offset_metadata_max_bytes;
        let now = now_ms();
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (topic, partition, offset, leader_epoch, metadata) in offsets {
            let metadata = metadata.unwrap_or_default();
            if metadata.len() > max_metadata {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            let committed = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now };
            records.push(offset_record(group_id, &topic, partition, Some(&committed)));
            accepted.push(((topic, partition), committed));
            results.push(None);
        }
        let first_record = {
            let group = group_rc.borrow();
            (group.offsets.is_empty() && group.members.is_empty()).then(|| group_record(&group, true))
        };
        records.extend(first_record);
        if let Err(error) = self.persist(group_id, records).await {
            return results.into_iter().map(|r| r.or(Some(error))).collect();
        }
        let mut group = group_rc.borrow_mut();
        for (key, committed) in accepted {
            group.offsets.insert(key, committed);
        }
        results
    }

    /// Committed offsets of a group: all of them, or those asked for (-1 where none).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, i32)>>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let group = self.group(group_id);
        match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partition)| {
                    let found =
                        group.as_ref().and_then(|g| g.borrow().offsets.get(&(topic.clone(), partition)).cloned());
                    (topic, partition, found)
                })
                .collect(),
            None => group
                .map(|g| g.borrow().offsets.iter().map(|((t, p), o)| (t.clone(), *p, Some(o.clone()))).collect())
                .unwrap_or_default(),
        }
    }

    /// A consumer-protocol group's state, for ConsumerGroupDescribe.
    pub fn consumer_state(&self, group_id: &str) -> Option<crate::consumer_protocol::ConsumerGroupState> {
        self.group(group_id)?.borrow().consumer.clone()
    }

    /// (group id, protocol type, state) of every group on this shard.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        self.groups
            .borrow()
            .values()
            .map(|g| {
                let g = g.borrow();
                (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state)
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

    /// DeleteGroups for one group: only an empty group, with all its offsets.
    pub async fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        if self.log_for(group_id).is_err() {
            return Some(ResponseError::NotCoordinator);
        }
        let Some(group_rc) = self.group(group_id) else { return Some(ResponseError::GroupIdNotFound) };
        let records = {
            let group = group_rc.borrow();
            if group.state != GroupState::Empty || !group.members.is_empty() {
                return Some(ResponseError::NonEmptyGroup);
            }
            let mut records: Vec<Persisted> =
                group.offsets.keys().map(|(t, p)| offset_record(group_id, t, *p, None)).collect();
            records.push(group_record(&group, false));
            records
        };
        if let Err(error) = self.persist(group_id, records).await {
            return Some(error);
        }
        group_rc.borrow_mut().set_state(GroupState::Dead);
        self.groups.borrow_mut().remove(group_id);
        None
    }

    /// OffsetDelete: removes offsets of topics the group is not subscribed to.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.log_for(group_id)?;
        let Some(group_rc) = self.group(group_id) else { return Err(ResponseError::GroupIdNotFound) };
        let (results, records) = {
            let group = group_rc.borrow();
            let subscribed = if group.state == GroupState::Empty { Vec::new() } else { group.subscribed_topics() };
            let mut results = Vec::new();
            let mut records = Vec::new();
            for (topic, partition) in &partitions {
                if subscribed.contains(topic) {
                    results.push(Some(ResponseError::GroupSubscribedToTopic));
                } else {
                    if group.offsets.contains_key(&(topic.clone(), *partition)) {
                        records.push(offset_record(group_id, topic, *partition, None));
                    }
                    results.push(None);
                }
            }
            (results, records)
        };
        self.persist(group_id, records).await?;
        let mut group = group_rc.borrow_mut();
        for ((topic, partition), result) in partitions.iter().zip(&results) {
            if result.is_none() {
                group.offsets.remove(&(topic.clone(), *partition));
            }
        }
        Ok(results)
    }

    /// Drops the offsets of groups that have been empty for longer than `offsets.retention.minutes`.
    pub async fn expire_offsets(&self) {
        let retention = self.config().offsets_retention_ms;
        let now = now_ms();
        let expired: Vec<(String, Vec<(String, i32)>)> = self
            .groups
            .borrow()
            .values()
            .filter_map(|g| {
                let g = g.borrow();
                (g.state == GroupState::Empty && now - g.state_changed_ms > retention).then(|| {
                    (
                        g.id.clone(),
                        g.offsets
                            .iter()
                            .filter(|(_, o)| now - o.commit_timestamp_ms > retention)
                            .map(|(k, _)| k.clone())
                            .collect(),
                    )
                })
            })
            .collect();
        for (group_id, keys) in expired {
            if keys.is_empty() {
                continue;
            }
            let records = keys.iter().map(|(t, p)| offset_record(&group_id, t, *p, None)).collect();
            if self.persist(&group_id, records).await.is_ok() {
                if let Some(group) = self.group(&group_id) {
                    let mut group = group.borrow_mut();
                    for key in &keys {
                        group.offsets.remove(key);
                    }
                    tracing::info!(group = group_id, partitions = keys.len(), "expired committed offsets");
                }
            }
        }
    }

    /// Rewrites the live state of partitions that have grown past [`SNAPSHOT_AFTER_RECORDS`] and deletes
    /// everything before the rewrite.
    pub async fn trim(&self) {
        let logs: Vec<(i32, Rc<PartitionLog>)> = self.logs.borrow().iter().map(|(p, l)| (*p, l.clone())).collect();
        let partitions = self.offsets_partitions.get();
        for (partition, log) in logs {
            if log.log_end_offset().0 - log.log_start_offset().0 < SNAPSHOT_AFTER_RECORDS {
                continue;
            }
            let records: Vec<Persisted> = self
                .groups
                .borrow()
                .values()
                .filter(|g| partition_for_group(&g.borrow().id, partitions) == partition)
                .flat_map(|g| {
                    let g = g.borrow();
                    let mut records = vec![group_record(&g, true)];
                    records.extend(g.offsets.iter().map(|((t, p), o)| offset_record(&g.id, t, *p, Some(o))));
                    records
                })
                .collect();
            let start = log.log_end_offset();
            let Some(any_group) = self
                .groups
                .borrow()
                .values()
                .map(|g| g.borrow().id.clone())
                .find(|id| partition_for_group(id, partitions) == partition)
            else {
                continue;
            };
            for chunk in records.chunks(1000) {
                if self.persist(&any_group, chunk.to_vec()).await.is_err() {
                    return;
                }
            }
            match log.delete_records_before(start).await {
                Ok(low) => tracing::info!(partition, low_watermark = low.0, "trimmed __consumer_offsets"),
                Err(error) => tracing::warn!(partition, %error, "could not trim __consumer_offsets"),
            }
        }
    }
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
