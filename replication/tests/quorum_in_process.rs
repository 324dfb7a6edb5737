//! Three controller voters in one process, on one executor, over an in-memory network the test controls:
//! they form a quorum, commit proposals through the leader, elect a new leader when it stops, keep every
//! committed entry across restarts, and bring a lagging node back through a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use sluice_engine::{LogManager, ManagerOptions};
use sluice_replication::metadata::{MetadataRecord, NodeId};
use sluice_replication::quorum::store::DiskLog;
use sluice_replication::quorum::{QuorumConfig, QuorumNode};
use sluice_replication::transport::{LocalFuture, PeerRequest, PeerResponse, PeerTransport, TransportError};

/// Delivers raft messages between the nodes registered on it, except to and from cut-off nodes.
#[derive(Default)]
struct Network {
    nodes: RefCell<BTreeMap<NodeId, Weak<QuorumNode>>>,
    cut: RefCell<BTreeSet<NodeId>>,
}

struct Endpoint {
    me: NodeId,
    network: Rc<Network>,
}

impl PeerTransport for Endpoint {
    fn send_raft(&self, to: NodeId, message: Vec<u8>) {
        if self.network.cut.borrow().contains(&self.me) || self.network.cut.borrow().contains(&to) {
            return;
        }
        let target = self.network.nodes.borrow().get(&to).and_then(Weak::upgrade);
        if let Some(node) = target {
            let from = self.me;
            // Deliver later, as a network would: never inside the sender's Ready handling.
            glommio::spawn_local(async move { node.receive(from, &message) }).detach();
        }
    }

    fn request(
        &self,
        to: NodeId,
        _: PeerRequest,
        _: Duration,
    ) -> LocalFuture<'_, Result<PeerResponse, TransportError>> {
        Box::pin(async move { Err(TransportError::Unreachable { node: to, reason: "not in this test".into() }) })
    }
}

struct Cluster {
    root: PathBuf,
    network: Rc<Network>,
    nodes: BTreeMap<NodeId, (Rc<LogManager>, Rc<QuorumNode>)>,
    snapshot_every: u64,
}

const VOTERS: [NodeId; 3] = [1, 2, 3];

impl Cluster {
    async fn start_node(&mut self, id: NodeId) {
        let dir = self.root.join(format!("node-{id}"));
        let manager = LogManager::new(&dir, ManagerOptions::default(), false);
        manager.spawn_background();
        let tp = sluice_engine::TopicPartition::new("__cluster_metadata", 0);
        let config = sluice_engine::LogConfig { retention_ms: -1, ..Default::default() };
        let log = manager.open_log(&tp, config).await.unwrap();
        let transport = Rc::new(Endpoint { me: id, network: self.network.clone() });
        let quorum_config = QuorumConfig {
            node_id: id,
            voters: VOTERS.to_vec(),
            tick: Duration::from_millis(20),
            election_ticks: 10,
            heartbeat_ticks: 1,
            snapshot_every_entries: self.snapshot_every,
            snapshot_keep_entries: 2,
            catch_up_first: false,
        };
        let node = QuorumNode::start(quorum_config, DiskLog::new(log), transport).await.unwrap();
        self.network.nodes.borrow_mut().insert(id, Rc::downgrade(&node));
        self.nodes.insert(id, (manager, node));
    }

    async fn stop_node(&mut self, id: NodeId) {
        let (manager, node) = self.nodes.remove(&id).unwrap();
        node.stop();
        self.network.nodes.borrow_mut().remove(&id);
        manager.shutdown().await.unwrap();
    }

    async fn leader(&self) -> Rc<QuorumNode> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for (_, node) in self.nodes.values() {
                if node.state().leader_ready && !self.network.cut.borrow().contains(&node.config().node_id) {
                    return node.clone();
                }
            }
            assert!(Instant::now() < deadline, "no leader within 20 s");
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn all_applied(&self, version: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (_, node) in self.nodes.values() {
            while node.image().version < version {
                assert!(Instant::now() < deadline, "node {} stuck at {}", node.config().node_id, node.image().version);
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::CreateTopic { name: name.into(), topic_id: 1, partitions: vec![], configs: BTreeMap::new() }
}

fn run(test: impl FnOnce(PathBuf) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    ex.run(test(root));
}

#[test]
fn three_voters_commit_elect_and_keep_every_entry() {
    run(|root| {
        Box::pin(async move {
            let mut cluster = Cluster { root, network: Rc::default(), nodes: BTreeMap::new(), snapshot_every: 1000 };
            for id in VOTERS {
                cluster.start_node(id).await;
            }
            let leader = cluster.leader().await;
            let first = leader.propose(&[topic("a")]).await.unwrap();
            cluster.all_applied(first as i64).await;
            for (_, node) in cluster.nodes.values() {
                assert!(node.image().topic("a").is_some());
            }
            // A follower refuses proposals: only the active controller writes.
            let follower = cluster.nodes.values().map(|(_, n)| n.clone()).find(|n| !n.state().leader_ready).unwrap();
            assert!(follower.propose(&[topic("nope")]).await.is_err());

            // The leader stops: another is elected and nothing committed is lost.
            let old = leader.config().node_id;
            cluster.stop_node(old).await;
            let leader = cluster.leader().await;
            assert_ne!(leader.config().node_id, old);
            let second = leader.propose(&[topic("b")]).await.unwrap();
            assert!(second > first);

            // The old leader comes back from its disk and catches up.
            cluster.start_node(old).await;
            cluster.all_applied(second as i64).await;
            let back = &cluster.nodes[&old].1;
            assert!(back.image().topic("a").is_some() && back.image().topic("b").is_some());
            for id in VOTERS {
                cluster.stop_node(id).await;
            }
        })
    });
}

#[test]
fn a_lagging_voter_catches_up_through_a_snapshot() {
    run(|root| {
        Box::pin(async move {
            let mut cluster = Cluster { root, network: Rc::default(), nodes: BTreeMap::new(), snapshot_every: 10 };
            for id in VOTERS {
                cluster.start_node(id).await;
            }
            let leader = cluster.leader().await;
            let lagging = VOTERS.iter().copied().find(|id| *id != leader.config().node_id).unwrap();
            cluster.network.cut.borrow_mut().insert(lagging);
            let mut last = 0;
            for i in 0..40 {
                let leader = cluster.leader().await;
                last = leader.propose(&[topic(&format!("t{i}"))]).await.unwrap();
            }
            cluster.network.cut.borrow_mut().remove(&lagging);
            cluster.all_applied(last as i64).await;
            assert_eq!(cluster.nodes[&lagging].1.image().topics.len(), 40);
            // Restarting from disk loads the snapshot and the entries after it.
            cluster.stop_node(lagging).await;
            cluster.start_node(lagging).await;
            cluster.all_applied(last as i64).await;
            assert_eq!(cluster.nodes[&lagging].1.image().topics.len(), 40);
            for id in VOTERS {
                cluster.stop_node(id).await;
            }
        })
    });
}
