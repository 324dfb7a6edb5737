//! A shard's replica fetcher for one leader broker: Kafka's `ReplicaFetcherThread`, as a task.
//!
//! One loop per (shard, leader). Each round it waits until what the previous round appended is durable
//! (so the fetch offset it reports is a durable offset), sends one Fetch for every partition it follows on
//! that leader, and handles each partition's answer:
//! - records: appended exactly as the leader stored them (the engine checks CRCs and that offsets continue
//!   the log), then the leader's high watermark and log start offset are taken;
//! - a diverging epoch: the log is truncated to where it agrees with the leader (KIP-595's truncation on
//!   fetch), never blindly to the high watermark;
//! - out of range below the leader's log start: the log restarts empty at the leader's log start (a new
//!   replica catching up after retention);
//! - a leadership error: the partition waits for the next metadata image.
//!
//! Memory is bounded by `replica.fetch.response.max.bytes` per round.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use sluice_engine::watch::OffsetWatch;
use sluice_engine::{AppendMode, LeaderEpoch, Offset, TopicPartition};

use super::local::Replica;
use super::types::{
    fetch_position, FetchPartition, FetchRequest, FetchTransport, FetchedPartition, FetcherHost, ReplicaError,
};
use crate::metadata::NodeId;

struct Followed {
    replica: Rc<Replica>,
    leader_epoch: i32,
    /// After a leadership or storage error: skipped until then (or until the metadata re-adds it).
    parked_until: Option<Instant>,
}

pub struct Fetcher {
    leader: NodeId,
    partitions: RefCell<BTreeMap<TopicPartition, Followed>>,
    wake: OffsetWatch,
    manager: Weak<dyn FetcherHost>,
    transport: Rc<dyn FetchTransport>,
    failures: Cell<u32>,
}

impl Fetcher {
    pub fn start(leader: NodeId, manager: Weak<dyn FetcherHost>, transport: Rc<dyn FetchTransport>) -> Rc<Fetcher> {
        let fetcher = Rc::new(Fetcher {
            leader,
            partitions: RefCell::new(BTreeMap::new()),
            wake: OffsetWatch::new(0),
            manager,
            transport,
            failures: Cell::new(0),
        });
        let runner = fetcher.clone();
        // Every line the fetcher logs carries the leader it fetches from.
        let span = tracing::info_span!("replica_fetcher", leader);
        glommio::spawn_local(tracing::Instrument::instrument(async move { runner.run().await }, span)).detach();
        fetcher
    }

    pub fn add(&self, replica: Rc<Replica>, leader_epoch: i32) {
        let tp = replica.tp.clone();
        self.partitions.borrow_mut().insert(tp, Followed { replica, leader_epoch, parked_until: None });
        self.wake.advance(self.wake.get() + 1);
    }

    pub fn remove(&self, tp: &TopicPartition) {
        self.partitions.borrow_mut().remove(tp);
    }

    async fn run(self: Rc<Self>) {
        loop {
            let Some(manager) = self.manager.upgrade() else { return };
            let settings = manager.settings().clone();
            let node_id = manager.node_id();
            let broker_epoch = manager.broker_epoch();
            let active: Vec<(Rc<Replica>, i32)> = self
                .partitions
                .borrow()
                .values()
                .filter(|f| f.parked_until.is_none_or(|until| Instant::now() >= until))
                .map(|f| (f.replica.clone(), f.leader_epoch))
                .collect();
            if active.is_empty() {
                // Sleep until a partition is added (woken) or the first parked one may be fetched again.
                let now = Instant::now();
                let next_unpark = self.partitions.borrow().values().filter_map(|f| f.parked_until).min();
                let nap = next_unpark.map_or(settings.fetch_backoff, |until| until.saturating_duration_since(now));
                let seen = self.wake.get();
                let wait = self.wake.wait_for(seen + 1);
                let timer = glommio::timer::sleep(nap.min(settings.fetch_backoff));
                futures::pin_mut!(wait);
                futures::pin_mut!(timer);
                let _ = futures::future::select(wait, timer).await;
                continue;
            }
            let mut partitions = Vec::with_capacity(active.len());
            // Kafka's follower-side throttle: listed replicas that are out of sync sit out while its quota is
            // spent; the bytes they bring are counted when the answer comes.
            let quota_spent = manager.follower_throttle().exceeded();
            let mut throttled = std::collections::HashSet::new();
            for (replica, leader_epoch) in &active {
                if replica.policy().follower_throttled && !manager.in_sync(&replica.tp) {
                    if quota_spent {
                        continue;
                    }
                    throttled.insert(replica.tp.clone());
                }
                let log = &replica.log;
                // Report only what is durable: the leader's high watermark counts this offset as on disk.
                if log.wait_durable(log.log_end_offset()).await.is_err() {
                    continue;
                }
                let (end, last_epoch, start) = fetch_position(log);
                partitions.push(FetchPartition {
                    tp: replica.tp.clone(),
                    fetch_offset: end.0,
                    last_fetched_epoch: last_epoch,
                    current_leader_epoch: *leader_epoch,
                    log_start_offset: start.0,
                    max_bytes: settings.fetch_partition_max_bytes,
                });
            }
            drop(manager);
            if partitions.is_empty() {
                glommio::timer::sleep(THROTTLED_PAUSE.min(settings.fetch_backoff)).await;
                continue;
            }
            let request = FetchRequest {
                replica: node_id,
                broker_epoch,
                max_wait_ms: settings.fetch_wait_max.as_millis() as i32,
                min_bytes: 1,
                max_bytes: settings.fetch_response_max_bytes,
                partitions,
            };
            match self.transport.fetch(self.leader, request).await {
                Ok(response) => {
                    self.failures.set(0);
                    if let Some(manager) = self.manager.upgrade() {
                        let bytes: usize = response
                            .partitions
                            .iter()
                            .filter(|f| throttled.contains(&f.tp))
                            .map(|f| f.records.len())
                            .sum();
                        manager.follower_throttle().record(bytes);
                    }
                    for fetched in response.partitions {
                        self.handle(fetched).await;
                    }
                }
                Err(error) => {
                    let failures = self.failures.get() + 1;
                    self.failures.set(failures);
                    if failures % 50 == 1 {
                        tracing::warn!(leader = self.leader, %error, "replica fetch failed; retrying");
                    }
                    glommio::timer::sleep(settings.fetch_backoff).await;
                }
            }
        }
    }

    async fn handle(&self, fetched: FetchedPartition) {
        let Some(replica) = self.partitions.borrow().get(&fetched.tp).map(|f| f.replica.clone()) else { return };
        let log = &replica.log;
        let tp = &fetched.tp;
        match (fetched.error, fetched.diverging_epoch) {
            (None, Some((epoch, end_offset))) => {
                let target = truncation_offset(log, epoch, end_offset);
                tracing::info!(partition = %tp, leader = self.leader, epoch, end_offset, truncate_to = target.0, "log diverges from the leader's: truncating");
                if let Err(error) = log.truncate_to(target).await {
                    tracing::error!(partition = %tp, %error, "truncation failed");
                    self.park(tp);
                }
            }
            (None, None) => {
                if !fetched.records.is_empty() {
                    if let Err(error) = log.append(fetched.records.to_vec(), AppendMode::Replica).await {
                        tracing::error!(partition = %tp, %error, "appending the leader's batches failed");
                        self.park(tp);
                        return;
                    }
                }
                log.set_replica_bound(Offset(fetched.high_watermark));
                let start = Offset(fetched.log_start_offset).min(log.high_watermark());
                if start > log.log_start_offset() {
                    if let Err(error) = log.delete_records_before(start).await {
                        tracing::warn!(partition = %tp, %error, "could not follow the leader's log start");
                    }
                }
            }
            (Some(ReplicaError::OffsetOutOfRange), _) => {
                let leader_start = Offset(fetched.log_start_offset);
                if leader_start.0 >= 0 && log.log_end_offset() < leader_start {
                    tracing::info!(partition = %tp, start = leader_start.0, "behind the leader's log start: restarting the log there");
                    if let Err(error) = log.reset_to(leader_start).await {
                        tracing::error!(partition = %tp, %error, "could not restart the log");
                        self.park(tp);
                    }
                } else if fetched.high_watermark >= 0 && log.log_end_offset().0 > fetched.high_watermark {
                    // Ahead of the leader with no divergence point: only after an unclean election.
                    tracing::warn!(partition = %tp, to = fetched.high_watermark, "ahead of the leader: truncating to its high watermark");
                    if let Err(error) = log.truncate_unclean(Offset(fetched.high_watermark)).await {
                        tracing::error!(partition = %tp, %error, "truncation failed");
                        self.park(tp);
                    }
                } else {
                    self.park(tp);
                }
            }
            (
                Some(
                    error @ (ReplicaError::NotLeader
                    | ReplicaError::UnknownTopicOrPartition
                    | ReplicaError::UnknownLeaderEpoch),
                ),
                _,
            ) => {
                // The leader has not applied the metadata that made it leader yet (every broker applies the
                // same records, a moment apart): ask again soon rather than after a whole backoff, which
                // would stall every acks=all write to a new partition or leader for that long.
                tracing::debug!(partition = %tp, leader = self.leader, ?error, "leader not ready for the fetch yet");
                self.park_for(tp, LEADER_NOT_READY_BACKOFF);
            }
            (Some(error), _) => {
                tracing::debug!(partition = %tp, leader = self.leader, ?error, "leader refused the fetch; waiting for metadata");
                self.park(tp);
            }
        }
    }

    /// Skips a partition for a while after an error (`replica.fetch.backoff.ms`).
    fn park(&self, tp: &TopicPartition) {
        let backoff = self.manager.upgrade().map_or(Duration::from_secs(1), |m| m.settings().fetch_backoff);
        self.park_for(tp, backoff);
    }

    fn park_for(&self, tp: &TopicPartition, backoff: Duration) {
        if let Some(followed) = self.partitions.borrow_mut().get_mut(tp) {
            followed.parked_until = Some(Instant::now() + backoff);
        }
    }
}

/// How long a fetcher whose partitions all wait on the follower throttle pauses before it looks again.
const THROTTLED_PAUSE: Duration = Duration::from_millis(100);

/// How soon a partition is fetched again after its leader said it does not lead it yet.
const LEADER_NOT_READY_BACKOFF: Duration = Duration::from_millis(50);

/// Where a follower truncates given the leader's (epoch, end offset) for its last fetched epoch (Kafka's
/// `getOffsetTruncationState`): the smaller of the leader's end for that epoch and the follower's own.
fn truncation_offset(log: &sluice_engine::PartitionLog, leader_epoch: i32, leader_end: i64) -> Offset {
    let log_end = log.log_end_offset();
    if leader_end < 0 {
        return log_end;
    }
    if leader_epoch < 0 {
        return Offset(leader_end).min(log_end);
    }
    let (epoch, own_end) = log.end_offset_for_epoch(LeaderEpoch(leader_epoch));
    if epoch.0 < 0 {
        return Offset(leader_end).min(log_end);
    }
    if epoch.0 == leader_epoch {
        Offset(leader_end).min(own_end).min(log_end)
    } else {
        own_end.min(log_end)
    }
}
