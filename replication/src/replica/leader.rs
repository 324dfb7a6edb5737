//! A partition leader's view of its followers: Kafka's `Partition` leader side.
//!
//! Invariants:
//! - The high watermark never goes back, and never passes a record that is not in the log of every member of
//!   the ISR as the leader may believe it to be: the committed ISR plus any member an expansion in flight
//!   adds (the *maximal* ISR). A shrink counts only once the controller committed it. The engine further caps
//!   it at the leader's own durable offset.
//! - While the committed ISR is smaller than the effective `min.insync.replicas`, the high watermark does not
//!   move (Kafka 4's strict rule, KAFKA-15583): a write then acknowledged is on that many replicas.
//! - At most one ISR change is in flight; the state it carries names the partition epoch it was planned
//!   against, so a deposed leader's change is refused by the controller.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use sluice_engine::types::now_ms;
use sluice_engine::watch::OffsetWatch;
use sluice_engine::{LeaderEpoch, Offset, PartitionLog};

use super::types::{FetchPartition, ReplicaError};
use crate::controller::commands::AlterPartition;
use crate::metadata::{NodeId, PartitionImage};

/// A follower as its leader tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    /// Its log end (= its durable offset, see the module doc of `replica`), -1 until it fetched.
    log_end: i64,
    last_fetch_ms: i64,
    /// The latest time it was caught up with the leader's log end.
    last_caught_up_ms: i64,
    /// The leader's log end at its previous fetch.
    last_fetch_leader_end: i64,
}

impl Progress {
    fn new(in_sync: bool, now: i64) -> Self {
        Progress {
            log_end: -1,
            last_fetch_ms: -1,
            last_caught_up_ms: if in_sync { now } else { 0 },
            last_fetch_leader_end: -1,
        }
    }
}

/// What the leader tells a follower's fetch for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerRead {
    pub high_watermark: Offset,
    pub log_start: Offset,
    /// The follower's log diverges: (epoch, end offset) to truncate to; nothing is read.
    pub diverging: Option<(i32, i64)>,
    /// The leader's replication throttle holds this partition back for now: nothing is read.
    pub throttled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CommittedState {
    replicas: Vec<NodeId>,
    isr: Vec<NodeId>,
    partition_epoch: i32,
}

pub struct LeaderState {
    node_id: NodeId,
    log: Rc<PartitionLog>,
    leader_epoch: i32,
    /// The log end when this epoch started: a follower joins the ISR only once it has reached it.
    epoch_start_offset: Offset,
    committed: RefCell<CommittedState>,
    /// The ISR an AlterPartition in flight asks for.
    pending: RefCell<Option<Vec<NodeId>>>,
    followers: RefCell<BTreeMap<NodeId, Progress>>,
    min_isr: Cell<usize>,
    topic: String,
    partition: i32,
    /// Reaches 1 when this leadership ends (see [`LeaderState::resign`]).
    resigned: OffsetWatch,
}

impl LeaderState {
    pub fn new(node_id: NodeId, log: Rc<PartitionLog>, state: &PartitionImage, min_isr: usize) -> Rc<LeaderState> {
        let now = now_ms();
        let followers = state
            .replicas
            .iter()
            .filter(|r| **r != node_id)
            .map(|r| (*r, Progress::new(state.isr.contains(r), now)))
            .collect();
        let tp = log.topic_partition().clone();
        let leader = Rc::new(LeaderState {
            node_id,
            epoch_start_offset: log.log_end_offset(),
            log,
            leader_epoch: state.leader_epoch,
            committed: RefCell::new(CommittedState {
                replicas: state.replicas.clone(),
                isr: state.isr.clone(),
                partition_epoch: state.partition_epoch,
            }),
            pending: RefCell::new(None),
            followers: RefCell::new(followers),
            min_isr: Cell::new(min_isr),
            topic: tp.topic,
            partition: tp.partition,
            resigned: OffsetWatch::new(0),
        });
        leader.update_high_watermark();
        leader
    }

    /// Ends this leadership: the replica became a follower, went offline, was removed, or leads again in a
    /// newer epoch. Whoever waits for an offset to be committed under it must give up (Kafka's
    /// `checkEnoughReplicasReachOffset` answers NOT_LEADER_OR_FOLLOWER once the partition is no longer led here):
    /// a deposed leader's high watermark is the new leader's, and its own records past it may be truncated.
    pub fn resign(&self) {
        self.resigned.advance(1);
    }

    pub fn has_resigned(&self) -> bool {
        self.resigned.get() > 0
    }

    /// Resolves once this leadership has ended.
    pub async fn resigned(&self) {
        let _ = self.resigned.wait_for(1).await;
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.committed.borrow().partition_epoch
    }

    /// The committed ISR's size.
    pub fn isr_len(&self) -> usize {
        self.committed.borrow().isr.len()
    }

    /// The committed ISR plus a member an expansion in flight adds.
    /// Whether `node` is in the committed ISR.
    pub fn in_sync(&self, node: NodeId) -> bool {
        self.committed.borrow().isr.contains(&node)
    }

    pub fn maximal_isr_len(&self) -> usize {
        let committed = self.committed.borrow();
        match &*self.pending.borrow() {
            Some(pending) => committed.isr.len() + pending.iter().filter(|r| !committed.isr.contains(r)).count(),
            None => committed.isr.len(),
        }
    }

    pub fn min_isr(&self) -> usize {
        self.min_isr.get()
    }

    /// A newer committed state of this partition from the metadata image (same leader epoch).
    pub fn update_committed(&self, state: &PartitionImage, min_isr: usize) {
        self.min_isr.set(min_isr);
        {
            let mut committed = self.committed.borrow_mut();
            if state.partition_epoch < committed.partition_epoch {
                return;
            }
            *committed = CommittedState {
                replicas: state.replicas.clone(),
                isr: state.isr.clone(),
                partition_epoch: state.partition_epoch,
            };
        }
        let now = now_ms();
        let mut followers = self.followers.borrow_mut();
        followers.retain(|node, _| state.replicas.contains(node));
        for replica in state.replicas.iter().filter(|r| **r != self.node_id) {
            followers.entry(*replica).or_insert_with(|| Progress::new(false, now));
        }
        drop(followers);
        self.update_high_watermark();
    }

    /// Checks a follower's fetch and records its progress. See `ReplicaManager::follower_fetch`.
    pub fn follower_fetch(&self, follower: NodeId, fetch: &FetchPartition) -> Result<FollowerRead, ReplicaError> {
        if fetch.current_leader_epoch >= 0 {
            match fetch.current_leader_epoch.cmp(&self.leader_epoch) {
                std::cmp::Ordering::Less => return Err(ReplicaError::FencedLeaderEpoch),
                std::cmp::Ordering::Greater => return Err(ReplicaError::UnknownLeaderEpoch),
                std::cmp::Ordering::Equal => {}
            }
        }
        if !self.committed.borrow().replicas.contains(&follower) {
            return Err(if fetch.current_leader_epoch >= 0 {
                ReplicaError::UnknownLeaderEpoch
            } else {
                ReplicaError::NotLeader
            });
        }
        let log_start = self.log.log_start_offset();
        let log_end = self.log.log_end_offset();
        if fetch.fetch_offset < log_start.0 {
            return Err(ReplicaError::OffsetOutOfRange);
        }
        if fetch.last_fetched_epoch >= 0 {
            let (epoch, end) = self.log.end_offset_for_epoch(LeaderEpoch(fetch.last_fetched_epoch));
            if epoch.0 < 0 && end.0 < 0 {
                return Err(ReplicaError::OffsetOutOfRange);
            }
            if epoch.0 < fetch.last_fetched_epoch || end.0 < fetch.fetch_offset {
                return Ok(FollowerRead {
                    high_watermark: self.log.high_watermark(),
                    log_start,
                    diverging: Some((epoch.0, end.0)),
                    throttled: false,
                });
            }
        }
        if fetch.fetch_offset > log_end.0 {
            return Err(ReplicaError::OffsetOutOfRange);
        }
        let now = now_ms();
        {
            let mut followers = self.followers.borrow_mut();
            let progress = followers.entry(follower).or_insert_with(|| Progress::new(false, now));
            if fetch.fetch_offset >= log_end.0 {
                progress.last_caught_up_ms = progress.last_caught_up_ms.max(now);
            } else if progress.last_fetch_leader_end >= 0 && fetch.fetch_offset >= progress.last_fetch_leader_end {
                progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
            }
            progress.last_fetch_leader_end = progress.last_fetch_leader_end.max(log_end.0);
            progress.last_fetch_ms = now;
            progress.log_end = fetch.fetch_offset;
        }
        self.update_high_watermark();
        Ok(FollowerRead { high_watermark: self.log.high_watermark(), log_start, diverging: None, throttled: false })
    }

    /// Moves the high watermark to the smallest log end over the maximal ISR (see the module doc).
    pub fn update_high_watermark(&self) {
        let committed = self.committed.borrow();
        if committed.isr.len() < self.min_isr.get() {
            return;
        }
        let pending = self.pending.borrow();
        let followers = self.followers.borrow();
        let mut bound = i64::MAX;
        let members = committed.isr.iter().chain(pending.iter().flatten());
        for member in members.filter(|m| **m != self.node_id) {
            match followers.get(member) {
                Some(progress) if progress.log_end >= 0 => bound = bound.min(progress.log_end),
                // Not heard from since this leader took over: hold the high watermark where it is.
                _ => bound = bound.min(self.log.high_watermark().0),
            }
        }
        self.log.set_replica_bound(Offset(bound));
    }

    /// The ISR change this leader wants now, if any: `fetched` joins if it has caught up (its log end at or past
    /// the high watermark and this epoch's start), and in-sync followers that have not caught up within
    /// `lag_time_max` leave.
    pub fn isr_change_wanted(
        &self,
        fetched: Option<NodeId>,
        lag_time_max: Duration,
        broker_epoch: i64,
    ) -> Option<AlterPartition> {
        if self.pending.borrow().is_some() {
            return None;
        }
        let committed = self.committed.borrow();
        let followers = self.followers.borrow();
        let mut new_isr = committed.isr.clone();
        if let Some(follower) = fetched {
            let progress = followers.get(&follower)?;
            let caught_up =
                progress.log_end >= self.log.high_watermark().0 && progress.log_end >= self.epoch_start_offset.0;
            if !committed.isr.contains(&follower) && committed.replicas.contains(&follower) && caught_up {
                new_isr.push(follower);
            }
        } else {
            let now = now_ms();
            let lag = lag_time_max.as_millis() as i64;
            let log_end = self.log.log_end_offset().0;
            new_isr.retain(|member| {
                *member == self.node_id
                    || followers.get(member).is_none_or(|p| p.log_end >= log_end || now - p.last_caught_up_ms <= lag)
            });
        }
        if new_isr == committed.isr {
            return None;
        }
        Some(AlterPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            leader: self.node_id,
            broker_epoch,
            leader_epoch: self.leader_epoch,
            partition_epoch: committed.partition_epoch,
            new_isr,
        })
    }

    /// Marks an ISR change in flight; false if one already is.
    pub fn begin_isr_change(&self, new_isr: &[NodeId]) -> bool {
        let mut pending = self.pending.borrow_mut();
        if pending.is_some() {
            return false;
        }
        *pending = Some(new_isr.to_vec());
        true
    }

    /// The controller answered: the committed state it returned (if it accepted) is used at once.
    pub fn end_isr_change(&self, committed: Option<PartitionImage>) {
        *self.pending.borrow_mut() = None;
        if let Some(state) = committed.filter(|s| s.leader_epoch == self.leader_epoch && s.leader == self.node_id) {
            let min_isr = self.min_isr.get();
            self.update_committed(&state, min_isr);
        } else {
            self.update_high_watermark();
        }
    }
}
