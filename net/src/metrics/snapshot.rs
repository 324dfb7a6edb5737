//! What one shard reports to a scrape, and the scrape's gathering of every shard's report over the mesh.
//!
//! [`snapshot`] runs on each shard (through `Shard::run_on`): it copies the shard's counters
//! (`counters.rs`) and reads the gauges of state the shard owns: connections, partitions led and followed, the
//! log end, size and high watermark of each partition it owns, and the groups its coordinator holds, with their
//! committed offsets. Consumer lag is computed from those two by the exposition (`exposition.rs`), since a
//! group's coordinator and the partitions it commits to usually live on different shards.

use std::rc::Rc;

use sluice_engine::stats::{EngineStatsSnapshot, HistogramSnapshot};
use sluice_engine::TopicPartition;
use sluice_replication::metadata::NO_LEADER;

use super::counters::{self, ApiSnapshot, TopicCounters};
use crate::groups::GroupOffsets;
use crate::shard::Shard;

/// One partition's log on its owner shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub log_end_offset: i64,
    pub size_bytes: u64,
}

/// A partition's high watermark as this broker's replica knows it: exact on its leader, what the leader
/// last told it on a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HighWatermark {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader: bool,
}

/// What one shard reports to a scrape. `Send`: it travels over the mesh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub apis: Vec<ApiSnapshot>,
    pub errors: Vec<(i16, i16, u64)>,
    pub topics: Vec<(String, TopicCounters)>,
    pub connections: u64,
    pub requests_in_flight: u64,
    pub request_bytes_reserved: u64,
    pub request_bytes_peak: u64,
    pub request_bytes_limit: Option<u64>,
    pub partitions_led: u64,
    pub partitions_followed: u64,
    pub under_replicated: u64,
    /// Log end and size per partition, when `metrics.per.partition.enabled`.
    pub partitions: Vec<PartitionSnapshot>,
    /// Every partition this shard owns (for consumer lag, whatever the per-partition switch says).
    pub high_watermarks: Vec<HighWatermark>,
    /// Groups whose coordinator is this shard.
    pub groups: Vec<GroupOffsets>,
    /// Partitions this shard leads whose ISR is smaller than their `min.insync.replicas`.
    pub under_min_isr: u64,
    /// Partitions this shard should hold whose log is offline (corrupt, or poisoned by a failed write).
    pub offline_logs: u64,
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    /// Seconds the shard's executor has spent running tasks and polling I/O.
    pub busy_seconds: f64,
    /// Produce stage times on this shard, indexed like `counters::PRODUCE_STAGES`.
    pub produce_stages: Vec<HistogramSnapshot>,
    /// The shard's logs: fsyncs, group commit, the cleaner and retention.
    pub engine: EngineStatsSnapshot,
    /// The cluster as this node sees it (shard 0 only, which runs the control plane).
    pub cluster: Option<ClusterView>,
}

/// The cluster as one node's metadata image and quorum member see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Whether this node is the active controller.
    pub active_controller: bool,
    /// Whether this node knows an active controller at all.
    pub controller_known: bool,
    pub brokers: u64,
    pub fenced_brokers: u64,
    /// Partitions with no leader (Kafka's OfflinePartitionsCount).
    pub partitions_without_leader: u64,
    /// On the active controller: each voter's metadata log entries behind the leader's log end (-1 for a
    /// voter it has not heard from).
    pub voter_lags: Vec<(i32, i64)>,
    /// The index of the last metadata log entry this node applied (none on a node without a quorum member).
    pub metadata_applied: Option<i64>,
}

/// This shard's counters and gauges, now.
pub fn snapshot(shard: &Shard, per_partition: bool) -> ShardSnapshot {
    let local = counters::local_on_executor();
    let mut snapshot = ShardSnapshot {
        shard: shard.id,
        apis: local.apis,
        errors: local.errors,
        topics: local.topics,
        connections: shard.connections.get() as u64,
        requests_in_flight: local.requests_in_flight,
        request_bytes_reserved: local.request_bytes_reserved,
        request_bytes_peak: local.request_bytes_peak,
        request_bytes_limit: local.request_bytes_limit,
        groups: shard.coordinator.offsets_view(),
        isr_shrinks: local.isr_shrinks,
        isr_expands: local.isr_expands,
        busy_seconds: local.busy_seconds,
        produce_stages: local.produce_stages,
        engine: shard.manager.stats(),
        cluster: (shard.id == 0).then(|| cluster_view(shard)),
        ..ShardSnapshot::default()
    };
    let image = shard.image();
    let replicas = shard.replicas();
    let mut owned = shard.manager.partitions();
    owned.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    for tp in owned {
        let Some(log) = shard.manager.get(&tp) else { continue };
        let mut leader = true;
        if let Some(replica) = replicas.as_ref().and_then(|replicas| replicas.get(&tp)) {
            match replica.leader() {
                Some(state) => {
                    snapshot.partitions_led += 1;
                    let replica_count = image.partition(&tp.topic, tp.partition).map_or(0, |p| p.replicas.len());
                    if state.isr_len() < replica_count {
                        snapshot.under_replicated += 1;
                    }
                    if state.isr_len() < state.min_isr() {
                        snapshot.under_min_isr += 1;
                    }
                }
                None => {
                    snapshot.partitions_followed += 1;
                    leader = false;
                }
            }
        }
        let TopicPartition { topic, partition } = tp;
        snapshot.high_watermarks.push(HighWatermark {
            topic: topic.to_string(),
            partition,
            offset: log.high_watermark().0,
            leader,
        });
        if per_partition {
            snapshot.partitions.push(PartitionSnapshot {
                topic: topic.to_string(),
                partition,
                log_end_offset: log.log_end_offset().0,
                size_bytes: log.size_bytes(),
            });
        }
    }
    snapshot.offline_logs = offline_logs(shard);
    snapshot
}

/// Partitions this shard should hold (in the image, with this node a replica) whose log is offline.
fn offline_logs(shard: &Shard) -> u64 {
    let node = shard.node_id();
    shard
        .image()
        .partitions()
        .filter(|(topic, partition, state)| {
            shard.owner(topic, *partition) == shard.id && state.replicas.contains(&node)
        })
        .filter(|(topic, partition, _)| {
            shard.manager.offline_reason(&TopicPartition::new(*topic, *partition)).is_some()
        })
        .count() as u64
}

fn cluster_view(shard: &Shard) -> ClusterView {
    let image = shard.image();
    let node = shard.cluster();
    let active = node.as_ref().and_then(|node| node.active_controller());
    let quorum = node.as_ref().and_then(|node| node.quorum());
    let voter_lags = match quorum.as_ref().map(|quorum| quorum.describe()) {
        Some(Ok(description)) => {
            let end = description.voters.iter().map(|v| v.log_end_offset).max().unwrap_or(0);
            let lag = |log_end: i64| if log_end < 0 { -1 } else { (end - log_end).max(0) };
            description.voters.iter().map(|v| (v.node_id, lag(v.log_end_offset))).collect()
        }
        _ => Vec::new(),
    };
    ClusterView {
        voter_lags,
        metadata_applied: quorum.map(|quorum| quorum.applied_watch().get()),
        active_controller: active.is_some() && active == node.as_ref().map(|node| node.node_id()),
        controller_known: active.is_some(),
        brokers: image.brokers.len() as u64,
        fenced_brokers: image.brokers.values().filter(|broker| broker.fenced).count() as u64,
        partitions_without_leader: image.partitions().filter(|(_, _, state)| state.leader == NO_LEADER).count() as u64,
    }
}

/// Every shard's snapshot, gathered over the mesh, in shard order.
pub async fn gather(shard: &Rc<Shard>, per_partition: bool) -> Vec<ShardSnapshot> {
    let calls = (0..shard.shards())
        .map(|target| shard.run_on(target, move |shard| async move { snapshot(&shard, per_partition) }));
    futures::future::join_all(calls).await
}

/// What the process as a whole uses, from `/proc/self`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        // SAFETY: sysconf only reads a system constant.
        let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let resident_bytes = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
            .map(|pages| pages * page_bytes);
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|entries| entries.count() as u64);
        ProcessStats { resident_bytes, open_fds }
    }
}
