//! The replica manager of one shard: makes each local replica a leader or a follower as images arrive, starts
//! and stops the fetchers, serves the leader side of follower fetches, and sends ISR changes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use sluice_engine::{LeaderEpoch, PartitionLog, TopicPartition};

use super::fetcher::Fetcher;
use super::leader::{FollowerRead, LeaderState};
use super::local::{Replica, Role};
use super::throttle::{ReplicaPolicy, Throttle};
use super::types::*;
use crate::controller::commands::AlterPartition;
use crate::metadata::{NodeId, PartitionImage, SharedImage};

pub struct ReplicaManager {
    node_id: NodeId,
    settings: ReplicaSettings,
    replicas: RefCell<HashMap<TopicPartition, Rc<Replica>>>,
    fetchers: RefCell<HashMap<NodeId, Rc<Fetcher>>>,
    transport: Rc<dyn FetchTransport>,
    isr: Rc<dyn IsrChannel>,
    image: RefCell<SharedImage>,
    /// `leader.replication.throttled.rate` and `follower.replication.throttled.rate`, this shard's share.
    leader_throttle: Throttle,
    follower_throttle: Throttle,
}

/// The replication throttle rates an image sets, in bytes per second for this shard (`u64::MAX`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRates {
    pub leader: u64,
    pub follower: u64,
}

impl ThrottleRates {
    pub const NONE: ThrottleRates = ThrottleRates { leader: u64::MAX, follower: u64::MAX };
}

impl ReplicaManager {
    pub fn new(
        node_id: NodeId,
        settings: ReplicaSettings,
        transport: Rc<dyn FetchTransport>,
        isr: Rc<dyn IsrChannel>,
    ) -> Rc<ReplicaManager> {
        let replicas = Rc::new(ReplicaManager {
            node_id,
            settings,
            replicas: RefCell::new(HashMap::new()),
            fetchers: RefCell::new(HashMap::new()),
            transport,
            isr,
            image: RefCell::new(SharedImage::default()),
            leader_throttle: Throttle::default(),
            follower_throttle: Throttle::default(),
        });
        let checker = Rc::downgrade(&replicas);
        let interval = (replicas.settings.lag_time_max / 2).max(Duration::from_millis(100));
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                let Some(replicas) = checker.upgrade() else { return };
                replicas.shrink_lagging_isrs();
            }
        })
        .detach();
        replicas
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn settings(&self) -> &ReplicaSettings {
        &self.settings
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Rc<Replica>> {
        self.replicas.borrow().get(tp).cloned()
    }

    /// This broker's epoch as the image records it (-1 before it registered).
    pub fn broker_epoch(&self) -> i64 {
        self.image.borrow().brokers.get(&self.node_id).map_or(-1, |b| b.epoch)
    }

    /// Makes each local replica of `image` a leader or follower as it says. `logs` are the partitions this
    /// shard owns and has open, with the topic's `min.insync.replicas`.
    pub async fn apply_image(
        self: &Rc<Self>,
        image: SharedImage,
        logs: Vec<(Rc<PartitionLog>, ReplicaPolicy)>,
        rates: ThrottleRates,
    ) {
        *self.image.borrow_mut() = image.clone();
        self.leader_throttle.set_rate(rates.leader);
        self.follower_throttle.set_rate(rates.follower);
        // Only this process's own registration may lead or follow: an image from before it registered (or a
        // process with a duplicate id, never registered) describes another incarnation's roles.
        let registered = image.brokers.get(&self.node_id).map(|b| b.epoch);
        if image.local_broker_epoch < 0 || registered != Some(image.local_broker_epoch) {
            self.stop_everything();
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for (log, policy) in logs {
            let tp = log.topic_partition().clone();
            let Some(state) = image.partition(&tp.topic, tp.partition) else { continue };
            if !state.replicas.contains(&self.node_id) {
                continue;
            }
            seen.insert(tp.clone());
            let replica = self
                .replicas
                .borrow_mut()
                .entry(tp.clone())
                .or_insert_with(|| {
                    Rc::new(Replica {
                        tp: tp.clone(),
                        log: log.clone(),
                        role: RefCell::new(Role::Offline),
                        policy: Cell::new(policy),
                    })
                })
                .clone();
            replica.policy.set(policy);
            self.transition(&replica, state, effective_min_isr(policy.min_isr, state.replicas.len())).await;
        }
        let gone: Vec<TopicPartition> =
            self.replicas.borrow().keys().filter(|tp| !seen.contains(*tp)).cloned().collect();
        for tp in gone {
            let removed = self.replicas.borrow_mut().remove(&tp);
            if let Some(replica) = removed {
                replica.set_role(Role::Offline);
            }
            for fetcher in self.fetchers.borrow().values() {
                fetcher.remove(&tp);
            }
        }
    }

    async fn transition(self: &Rc<Self>, replica: &Rc<Replica>, state: &PartitionImage, min_isr: usize) {
        let tp = &replica.tp;
        if state.leader == self.node_id {
            let current = replica.leader();
            match current {
                Some(leader) if leader.leader_epoch() == state.leader_epoch => {
                    leader.update_committed(state, min_isr);
                }
                _ => {
                    self.stop_following(tp);
                    // The new epoch starts at this log's end (KIP-101): followers truncate to it.
                    if let Err(error) = replica.log.start_leader_epoch(LeaderEpoch(state.leader_epoch)).await {
                        tracing::error!(partition = %tp, %error, "could not record the new leader epoch");
                        return;
                    }
                    let leader = LeaderState::new(self.node_id, replica.log.clone(), state, min_isr);
                    tracing::debug!(
                        partition = %tp,
                        leader_epoch = state.leader_epoch,
                        isr = ?state.isr,
                        log_end = replica.log.log_end_offset().0,
                        "became leader"
                    );
                    replica.set_role(Role::Leader(leader));
                }
            }
            return;
        }
        if state.is_offline() {
            self.stop_following(tp);
            replica.log.set_replica_bound(replica.log.high_watermark());
            replica.set_role(Role::Offline);
            return;
        }
        let already = matches!(&*replica.role.borrow(), Role::Follower { leader, leader_epoch }
            if *leader == state.leader && *leader_epoch == state.leader_epoch);
        if already {
            return;
        }
        self.stop_following(tp);
        // A deposed leader keeps its high watermark; the new leader's arrives with the first fetch.
        replica.log.set_replica_bound(replica.log.high_watermark());
        replica.set_role(Role::Follower { leader: state.leader, leader_epoch: state.leader_epoch });
        tracing::debug!(partition = %tp, leader = state.leader, leader_epoch = state.leader_epoch, "became follower");
        self.fetcher_for(state.leader).add(replica.clone(), state.leader_epoch);
    }

    /// Gives up every role: no leader, no follower, until an image with this process's registration.
    fn stop_everything(&self) {
        let replicas: Vec<Rc<Replica>> = self.replicas.borrow_mut().drain().map(|(_, r)| r).collect();
        for replica in replicas {
            self.stop_following(&replica.tp);
            replica.set_role(Role::Offline);
        }
    }

    fn stop_following(&self, tp: &TopicPartition) {
        for fetcher in self.fetchers.borrow().values() {
            fetcher.remove(tp);
        }
    }

    fn fetcher_for(self: &Rc<Self>, leader: NodeId) -> Rc<Fetcher> {
        if let Some(fetcher) = self.fetchers.borrow().get(&leader) {
            return fetcher.clone();
        }
        let host: std::rc::Weak<dyn FetcherHost> = Rc::downgrade(self) as std::rc::Weak<ReplicaManager>;
        let fetcher = Fetcher::start(leader, host, self.transport.clone());
        self.fetchers.borrow_mut().insert(leader, fetcher.clone());
        fetcher
    }

    /// The leader side of a follower's fetch for one partition: checks epochs and divergence, records the
    /// follower's progress (which may move the high watermark or start an ISR expansion), and says what to
    /// read. Runs on the partition's owner shard.
    pub fn follower_fetch(
        self: &Rc<Self>,
        follower: NodeId,
        broker_epoch: i64,
        partition: &FetchPartition,
    ) -> Result<FollowerRead, ReplicaError> {
        let Some(replica) = self.get(&partition.tp) else {
            let known = self.image.borrow().partition(&partition.tp.topic, partition.tp.partition).is_some();
            return Err(if known { ReplicaError::NotLeader } else { ReplicaError::UnknownTopicOrPartition });
        };
        let Some(leader) = replica.leader() else { return Err(ReplicaError::NotLeader) };
        let image = self.image.borrow().clone();
        let registered = image.brokers.get(&follower).map(|b| b.epoch);
        if broker_epoch >= 0 && registered.is_some_and(|epoch| epoch > broker_epoch) {
            // A stale incarnation of the follower (KIP-903).
            return Err(ReplicaError::NotLeader);
        }
        let mut read = leader.follower_fetch(follower, partition)?;
        // Kafka's leader-side throttle: a listed replica that is out of sync gets no data while the quota is
        // spent (an in-sync one never waits, so the high watermark never does).
        if replica.policy().leader_throttled && !leader.in_sync(follower) && self.leader_throttle.exceeded() {
            read.throttled = true;
        }
        // Only a broker that is running may join an ISR; the controller would refuse a fenced or stopping one,
        // and asking at each of its fetches would only flood it with refusals.
        let eligible = image.brokers.get(&follower).is_some_and(|b| !b.fenced && !b.shutting_down);
        if let Some(request) = eligible
            .then(|| leader.isr_change_wanted(Some(follower), self.settings.lag_time_max, self.broker_epoch()))
            .flatten()
        {
            self.submit_isr_change(replica.clone(), leader.clone(), request);
        }
        Ok(read)
    }

    /// Asks the controller to drop followers that fell behind for longer than `replica.lag.time.max.ms`.
    fn shrink_lagging_isrs(self: &Rc<Self>) {
        let replicas: Vec<Rc<Replica>> = self.replicas.borrow().values().cloned().collect();
        for replica in replicas {
            let Some(leader) = replica.leader() else { continue };
            if let Some(request) = leader.isr_change_wanted(None, self.settings.lag_time_max, self.broker_epoch()) {
                self.submit_isr_change(replica.clone(), leader, request);
            }
        }
    }

    fn submit_isr_change(self: &Rc<Self>, replica: Rc<Replica>, leader: Rc<LeaderState>, request: AlterPartition) {
        if !leader.begin_isr_change(&request.new_isr) {
            return;
        }
        tracing::info!(partition = %replica.tp, isr = ?request.new_isr, "asking the controller to change the ISR");
        let channel = self.isr.clone();
        glommio::spawn_local(async move {
            let result = channel.alter_partition(request).await;
            match &result {
                Ok(state) => tracing::info!(partition = %replica.tp, isr = ?state.isr, partition_epoch = state.partition_epoch, "ISR changed"),
                Err(error) => tracing::warn!(partition = %replica.tp, %error, "ISR change refused"),
            }
            leader.end_isr_change(result.ok());
        })
        .detach();
    }
}

impl ReplicaManager {
    /// Counts bytes sent to a follower against the leader-side throttle, if that replica is throttled.
    pub fn record_follower_read(&self, tp: &TopicPartition, follower: NodeId, bytes: usize) {
        let Some(replica) = self.get(tp) else { return };
        let Some(leader) = replica.leader() else { return };
        if replica.policy().leader_throttled && !leader.in_sync(follower) {
            self.leader_throttle.record(bytes);
        }
    }
}

impl FetcherHost for ReplicaManager {
    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn settings(&self) -> &ReplicaSettings {
        &self.settings
    }

    fn broker_epoch(&self) -> i64 {
        ReplicaManager::broker_epoch(self)
    }

    fn follower_throttle(&self) -> &Throttle {
        &self.follower_throttle
    }

    fn in_sync(&self, tp: &TopicPartition) -> bool {
        self.image.borrow().partition(&tp.topic, tp.partition).is_some_and(|p| p.isr.contains(&self.node_id))
    }
}
