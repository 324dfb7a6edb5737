//! What nodes say to each other, and the transport `net` implements for it.
//!
//! Two channels leave a node:
//! - **The controller listener** (Kafka's `controller.listener.names`): Raft messages between voters, typed
//!   controller commands from brokers to the active controller, and metadata fetches by brokers that are not
//!   voters. [`PeerTransport`] sends on it; [`PeerService`] answers what arrives. Every connection opens with
//!   a [`Hello`] that names the cluster, the node and the voter set, so a node of another cluster or with
//!   another voter list is refused with a log line instead of joining a split brain.
//! - **Replica fetches** to partition leaders, on the inter-broker listener, in Kafka's Fetch protocol:
//!   [`crate::replica::FetchTransport`].
//!
//! The messages are serde values; `net` encodes them (JSON, except Raft messages, which stay raft-rs'
//! protobuf bytes).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::controller::commands::{AdminError, Committed, ControllerRequest};
use crate::metadata::{ClusterImage, MetadataRecord, NodeId};

pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The version of this protocol; a peer with another is refused.
pub const PEER_PROTOCOL_VERSION: u16 = 1;

/// The first frame on a controller-listener connection, both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub node_id: NodeId,
    /// Empty until the node has learned it.
    pub cluster_id: String,
    /// `controller.quorum.voters` as the node parsed it: `id@host:port`, sorted by id.
    pub voters: String,
    pub directory_id: String,
    /// The node started with an empty metadata log while a quorum existed: a leader forgets what it had
    /// acknowledged before (see `QuorumNode::forget_progress`).
    #[serde(default)]
    pub empty_log: bool,
}

/// A fresh voter's question before it takes part in forming a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// The node holds a committed cluster (it knows the cluster id).
    pub has_state: bool,
}

/// Committed metadata for a node that is not a voter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataChunk {
    /// The requested entries were compacted: the image as of `index`.
    Snapshot { index: u64, image: Box<ClusterImage> },
    /// Committed entries from the requested index on, each with its records.
    Entries { entries: Vec<(u64, Vec<MetadataRecord>)> },
}

/// The quorum as its leader sees it (Kafka's DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: NodeId,
    pub leader_epoch: i64,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaProgress>,
    pub observers: Vec<ReplicaProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaProgress {
    pub node_id: NodeId,
    /// The next index this replica would hold (Kafka's log end offset), -1 when unknown.
    pub log_end_offset: i64,
    /// Milliseconds since the Unix epoch, -1 when unknown.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    Probe,
    Controller(ControllerRequest),
    FetchMetadata { from_index: u64, max_wait_ms: u64 },
    DescribeQuorum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerResponse {
    Probe(ProbeAnswer),
    /// `leader` is the active controller as the answering node knows it, for a retry.
    Controller {
        result: Result<Committed, AdminError>,
        leader: Option<NodeId>,
    },
    Metadata {
        chunk: MetadataChunk,
        leader: Option<NodeId>,
    },
    Quorum(Result<QuorumDescription, AdminError>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("node {node} is not a configured peer")]
    UnknownPeer { node: NodeId },
    #[error("node {node} is unreachable: {reason}")]
    Unreachable { node: NodeId, reason: String },
    #[error("node {node} refused the connection: {reason}")]
    Refused { node: NodeId, reason: String },
    #[error("node {node} did not answer within {timeout_ms} ms")]
    TimedOut { node: NodeId, timeout_ms: u64 },
    #[error("node {node} answered something that does not parse: {reason}")]
    Malformed { node: NodeId, reason: String },
}

/// Sends to other nodes' controller listeners. Implemented by `net`.
pub trait PeerTransport {
    /// Queues a Raft message; it may be lost (Raft retries).
    fn send_raft(&self, to: NodeId, message: Vec<u8>);

    /// One request and its answer.
    fn request(
        &self,
        to: NodeId,
        request: PeerRequest,
        timeout: Duration,
    ) -> LocalFuture<'_, Result<PeerResponse, TransportError>>;
}

/// Answers what arrives on this node's controller listener. Implemented by `replication`, called by `net`.
pub trait PeerService {
    /// This node's own hello.
    fn hello(&self) -> Hello;

    /// Whether a peer's hello belongs to this cluster and voter set; the reason to refuse it otherwise.
    fn accept(&self, peer: &Hello) -> Result<(), String>;

    fn on_raft(&self, from: NodeId, message: &[u8]);

    fn handle(&self, from: NodeId, request: PeerRequest) -> LocalFuture<'_, PeerResponse>;

    /// A peer's connection closed (a broker whose process died closes its heartbeat connection).
    fn on_disconnect(&self, node: NodeId);

    /// A peer refused this node's hello, for `reason`, naming the cluster it belongs to.
    fn on_refused(&self, node: NodeId, peer_cluster_id: &str, reason: &str);
}
