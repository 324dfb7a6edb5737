//! The controller quorum: a Raft group of the `controller.quorum.voters`, on TiKV's raft-rs.
//!
//! Why raft-rs (0.7, pinned): it is sans-IO. The application owns the log, the timers and the network, so one
//! task on shard 0 can drive it inside a glommio executor, write its log through the engine and make it
//! durable with the engine's group commit. openraft owns its own tasks and runtime (tokio by default, with a
//! glommio adapter still to write) and its 0.10 line is alpha. The price of raft-rs is a synchronous storage
//! trait, answered from an in-memory copy of the entries since the last snapshot ([`store::MemoryLog`]).
//!
//! - [`store`]: the Raft log in the engine partition `__cluster_metadata-0`, its hard state and snapshots.
//! - [`node`]: the driver: ticks, messages, proposals, the `Ready` loop, applying entries to the image.
//! - [`identity`]: `meta.properties`, the node's identity on disk (node id, directory id, cluster id).
//! - this module: how a node with an empty data directory decides whether it forms a new cluster or joins
//!   an existing one.

pub mod identity;
mod log_bridge;
pub mod node;
pub mod store;

use std::time::{Duration, Instant};

pub use node::{QuorumConfig, QuorumNode, QuorumState};

use crate::metadata::NodeId;
use crate::transport::{PeerRequest, PeerResponse, PeerTransport};

/// How a voter starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formation {
    /// It holds quorum state: it goes on where it stopped.
    Resume,
    /// No voter holds state and a majority answered: a new cluster forms.
    New,
    /// Others hold the quorum's log: it joins in catch-up mode and votes only once it holds the committed log.
    Join,
}

/// For a voter with an empty data directory: asks the other voters whether a cluster exists, until a
/// majority has answered or one of them holds quorum state. Waits (and says so every few seconds) while
/// too few answer: forming a second cluster beside an existing one would be a split brain.
pub async fn decide_formation(transport: &dyn PeerTransport, me: NodeId, voters: &[NodeId]) -> Formation {
    let majority = voters.len() / 2 + 1;
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let mut fresh = 1usize;
        for peer in voters.iter().copied().filter(|v| *v != me) {
            match transport.request(peer, PeerRequest::Probe, Duration::from_millis(1000)).await {
                Ok(PeerResponse::Probe(answer)) if answer.has_state || !answer.cluster_id.is_empty() => {
                    tracing::info!(
                        peer,
                        cluster_id = %answer.cluster_id,
                        "a voter already holds the quorum's log: joining it (no vote until caught up)"
                    );
                    return Formation::Join;
                }
                Ok(PeerResponse::Probe(_)) => fresh += 1,
                Ok(other) => tracing::warn!(peer, ?other, "unexpected answer to a probe"),
                Err(error) => tracing::debug!(peer, %error, "probe failed"),
            }
        }
        if fresh >= majority {
            tracing::info!(voters = ?voters, answered = fresh, "no voter holds a cluster: forming a new one");
            return Formation::New;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            tracing::warn!(
                voters = ?voters,
                answered_fresh = fresh,
                needed = majority,
                waited_s = started.elapsed().as_secs(),
                "waiting for a majority of the controller quorum voters to answer before forming a cluster"
            );
        }
        glommio::timer::sleep(Duration::from_millis(500)).await;
    }
}
