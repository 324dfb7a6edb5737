//! What the replica manager, its fetchers and the leader state share: settings, the follower fetch as a typed
//! request, the transports `net` implements, and one local replica.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_engine::{Offset, PartitionLog, TopicPartition};

use crate::controller::commands::{AdminResult, AlterPartition};
use crate::metadata::{NodeId, PartitionImage};
use crate::transport::{LocalFuture, TransportError};

/// Replication settings (Kafka's names).
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// `replica.lag.time.max.ms`.
    pub lag_time_max: Duration,
    /// `replica.fetch.max.bytes`: per partition.
    pub fetch_partition_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_wait_max: Duration,
    /// `replica.fetch.backoff.ms`.
    pub fetch_backoff: Duration,
}

/// Why a follower fetch (or a request to a leader) was refused, as the leader decides it. `net` maps these to
/// Kafka codes, and the follower acts on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaError {
    NotLeader,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    OffsetOutOfRange,
    UnknownTopicOrPartition,
    Storage,
    /// Any other Kafka error the leader sent, by code.
    Other(i16),
}

/// One partition of a follower's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub current_leader_epoch: i32,
    pub log_start_offset: i64,
    pub max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub replica: NodeId,
    pub broker_epoch: i64,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub tp: TopicPartition,
    pub error: Option<ReplicaError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// (epoch, end offset) where the follower's log diverges from the leader's.
    pub diverging_epoch: Option<(i32, i64)>,
    pub records: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub partitions: Vec<FetchedPartition>,
}

/// Carries follower fetches to leaders. Implemented by `net` (Kafka's Fetch API on the broker listener).
pub trait FetchTransport {
    fn fetch(&self, leader: NodeId, request: FetchRequest) -> LocalFuture<'_, Result<FetchResponse, TransportError>>;
}

/// Sends a leader's ISR change to the active controller. Implemented by `net` (shard 0's controller client).
pub trait IsrChannel {
    fn alter_partition(&self, request: AlterPartition) -> LocalFuture<'_, AdminResult<PartitionImage>>;
}

/// Kafka's effective minimum ISR: `min.insync.replicas`, but never more than the replicas there are.
pub fn effective_min_isr(min_insync_replicas: usize, replicas: usize) -> usize {
    min_insync_replicas.min(replicas).max(1)
}

/// Where a replica's log stands, as its fetch reports it: (log end, latest leader epoch or -1, log start).
pub fn fetch_position(log: &PartitionLog) -> (Offset, i32, Offset) {
    (log.log_end_offset(), log.latest_epoch().map_or(-1, |e| e.0), log.log_start_offset())
}

/// What a fetcher asks of the replica manager that started it.
pub trait FetcherHost {
    fn node_id(&self) -> NodeId;
    fn settings(&self) -> &ReplicaSettings;
    /// This broker's epoch, sent with every fetch so a leader can refuse a stale incarnation.
    fn broker_epoch(&self) -> i64;
    /// The follower side's replication throttle (`follower.replication.throttled.rate`, this shard's share).
    fn follower_throttle(&self) -> &super::throttle::Throttle;
    /// Whether this broker is in the partition's ISR, as the last image says.
    fn in_sync(&self, tp: &TopicPartition) -> bool;
}
