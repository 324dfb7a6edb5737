//! A node of the cluster, as the control plane sees it: its identity, its quorum member and controller
//! (when `process.roles` has `controller`), its broker lifecycle (when it has `broker`), the metadata it
//! follows, and what it answers on the controller listener ([`PeerService`]).
//!
//! Lifecycle, on shard 0: [`ClusterNode::start`] loads the identity, opens the metadata log, decides how a
//! voter with an empty directory starts ([`crate::quorum::Formation`]), starts the Raft driver and the
//! controller, registers the voter's directory, and starts the broker's registration and heartbeats. The
//! node answers probes from the start, so voters forming a cluster can find each other.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sluice_engine::watch::OffsetWatch;
use sluice_engine::{FlushPolicy, LogConfig, LogManager, TopicPartition};

use crate::broker::{BrokerLifecycle, ControllerClient, LifecycleSettings, MetadataFollower};
use crate::controller::commands::{AdminErrorKind, ControllerRequest};
use crate::controller::{Controller, ControllerSettings};
use crate::metadata::{NodeId, SharedImage, METADATA_TOPIC};
use crate::quorum::identity::{self, Identity};
use crate::quorum::store::DiskLog;
use crate::quorum::{decide_formation, Formation, QuorumConfig, QuorumNode};
use crate::transport::{
    Hello, LocalFuture, PeerRequest, PeerResponse, PeerService, PeerTransport, ProbeAnswer, QuorumDescription,
    PEER_PROTOCOL_VERSION,
};

/// Kafka's `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

/// One `controller.quorum.voters` entry: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub node_id: NodeId,
    pub host: String,
    pub port: u16,
}

impl Voter {
    /// Parses `1@127.0.0.1:9093,2@127.0.0.2:9093`. Sorted by id; an id named twice is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Voter>, String> {
        let mut voters = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (id, address) = item.split_once('@').ok_or_else(|| format!("'{item}' is not id@host:port"))?;
            let node_id: NodeId = id.trim().parse().map_err(|_| format!("'{id}' in '{item}' is not a node id"))?;
            let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("'{item}' has no port"))?;
            let port: u16 = port.parse().map_err(|_| format!("'{port}' in '{item}' is not a port"))?;
            if voters.iter().any(|v: &Voter| v.node_id == node_id) {
                return Err(format!("voter {node_id} is named twice"));
            }
            voters.push(Voter { node_id, host: host.trim_matches(['[', ']']).to_string(), port });
        }
        voters.sort_by_key(|v| v.node_id);
        Ok(voters)
    }

    pub fn list_text(voters: &[Voter]) -> String {
        voters.iter().map(|v| format!("{}@{}:{}", v.node_id, v.host, v.port)).collect::<Vec<_>>().join(",")
    }
}

#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_id: NodeId,
    pub roles: Roles,
    /// Empty: a single node that is its own quorum of one.
    pub voters: Vec<Voter>,
    pub data_dir: PathBuf,
    pub controller: ControllerSettings,
    pub broker: Option<LifecycleSettings>,
    pub quorum_tick: Duration,
    pub election_ticks: usize,
    /// `--rejoin-with-empty-log`: a voter that lost its directory may register a new one.
    pub rejoin_with_empty_log: bool,
}

impl NodeSettings {
    pub fn voter_ids(&self) -> Vec<NodeId> {
        if self.voters.is_empty() {
            vec![self.node_id]
        } else {
            self.voters.iter().map(|v| v.node_id).collect()
        }
    }

    pub fn is_voter(&self) -> bool {
        self.roles.controller && self.voter_ids().contains(&self.node_id)
    }
}

pub struct ClusterNode {
    settings: NodeSettings,
    identity: RefCell<Identity>,
    voters_text: String,
    quorum: RefCell<Option<Rc<QuorumNode>>>,
    controller: RefCell<Option<Rc<Controller>>>,
    follower: RefCell<Option<Rc<MetadataFollower>>>,
    client: Rc<ControllerClient>,
    transport: Rc<dyn PeerTransport>,
    lifecycle: RefCell<Option<Rc<BrokerLifecycle>>>,
    fatal: Rc<dyn Fn(String)>,
    /// Grows when the image source is set (the quorum or the follower).
    ready: OffsetWatch,
    /// Voters that refused this node for belonging to another cluster.
    refusing: RefCell<std::collections::BTreeSet<NodeId>>,
    /// Broker id → (applied index, last fetch time) for nodes following the log from here.
    observers: RefCell<std::collections::BTreeMap<NodeId, (i64, i64)>>,
}

/// The metadata log's engine config: kept forever (snapshots trim it), fsynced on every append.
fn metadata_log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: 64 << 20,
        flush_policy: FlushPolicy::Always,
        ..LogConfig::default()
    }
}

impl ClusterNode {
    /// Starts this node's control plane on the current shard. Returns at once; the quorum forms and the broker
    /// registers in the background. `fatal` stops the process with a message (a refused directory or cluster).
    pub fn start(
        settings: NodeSettings,
        identity: Identity,
        manager: Rc<LogManager>,
        transport: Rc<dyn PeerTransport>,
        fatal: Rc<dyn Fn(String)>,
    ) -> Rc<ClusterNode> {
        let client = ControllerClient::new(settings.node_id, settings.voter_ids(), transport.clone());
        let voters_text = Voter::list_text(&settings.voters);
        let node = Rc::new(ClusterNode {
            identity: RefCell::new(identity),
            voters_text,
            quorum: RefCell::new(None),
            controller: RefCell::new(None),
            follower: RefCell::new(None),
            client,
            transport: transport.clone(),
            lifecycle: RefCell::new(None),
            fatal,
            ready: OffsetWatch::new(0),
            refusing: RefCell::new(Default::default()),
            observers: RefCell::new(Default::default()),
            settings,
        });
        let starting = node.clone();
        glommio::spawn_local(async move {
            if let Err(message) = starting.clone().run(manager, transport).await {
                (starting.fatal)(message);
            }
        })
        .detach();
        node
    }

    async fn run(self: Rc<Self>, manager: Rc<LogManager>, transport: Rc<dyn PeerTransport>) -> Result<(), String> {
        if self.settings.is_voter() {
            let tp = TopicPartition::new(METADATA_TOPIC, 0);
            let log = match manager.get(&tp) {
                Some(log) => log,
                None => manager.open_log(&tp, metadata_log_config()).await.map_err(|e| format!("metadata log: {e}"))?,
            };
            let disk = DiskLog::new(log);
            let has_state = disk.has_state().await.map_err(|e| e.to_string())?;
            let voters = self.settings.voter_ids();
            let formation = if has_state {
                Formation::Resume
            } else if voters.len() == 1 {
                Formation::New
            } else {
                decide_formation(&*transport, self.settings.node_id, &voters).await
            };
            let config = QuorumConfig {
                node_id: self.settings.node_id,
                voters,
                tick: self.settings.quorum_tick,
                election_ticks: self.settings.election_ticks,
                // Raft heartbeats every 100 ms whatever the tick.
                heartbeat_ticks: (100 / self.settings.quorum_tick.as_millis().max(1)).max(1) as usize,
                snapshot_every_entries: 5000,
                snapshot_keep_entries: 500,
                catch_up_first: formation == Formation::Join,
            };
            let quorum = QuorumNode::start(config, disk, transport.clone()).await.map_err(|e| e.to_string())?;
            let (watched, fatal) = (quorum.clone(), self.fatal.clone());
            glommio::spawn_local(async move {
                let reason = watched.failed().await;
                fatal(format!("the metadata log failed: {reason}"));
            })
            .detach();
            let controller = Controller::new(quorum.clone(), self.settings.controller.clone());
            self.client.set_local(controller.clone());
            *self.controller.borrow_mut() = Some(controller);
            *self.quorum.borrow_mut() = Some(quorum);
            let registering = self.clone();
            glommio::spawn_local(async move { registering.register_directory().await }).detach();
        } else {
            *self.follower.borrow_mut() = Some(MetadataFollower::start(self.settings.voter_ids(), transport.clone()));
        }
        self.ready.advance(1);
        let learning = self.clone();
        glommio::spawn_local(async move { learning.learn_cluster_id().await }).detach();
        if let Some(broker) = self.settings.broker.clone() {
            let applied_node = Rc::downgrade(&self);
            let applied = Rc::new(move || applied_node.upgrade().map_or(0, |node| node.image().version));
            let cluster_id = self.identity.borrow().cluster_id.clone();
            let lifecycle =
                BrokerLifecycle::start(broker, self.client.clone(), cluster_id, applied, self.fatal.clone());
            *self.lifecycle.borrow_mut() = Some(lifecycle);
        }
        Ok(())
    }

    /// Records this voter's data directory with the quorum once it takes part, or stops the node if the quorum
    /// knows it by another directory (it lost its log).
    async fn register_directory(self: Rc<Self>) {
        let Some(quorum) = self.quorum() else { return };
        while !quorum.is_voting() || quorum.image().cluster_id.is_empty() {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        let request = ControllerRequest::RegisterController {
            node_id: self.settings.node_id,
            directory_id: self.identity.borrow().directory_id.clone(),
            replace: self.settings.rejoin_with_empty_log,
        };
        loop {
            match self.client.call(request.clone(), Duration::from_secs(30)).await {
                Ok(_) => {
                    tracing::info!(
                        node = self.settings.node_id,
                        "this voter's data directory is registered with the quorum"
                    );
                    return;
                }
                Err(error) if error.kind == AdminErrorKind::StaleDirectory => {
                    (self.fatal)(error.message);
                    return;
                }
                Err(error) => tracing::warn!(%error, "could not register this voter's directory yet; retrying"),
            }
        }
    }

    /// Writes the cluster id into `meta.properties` once known; a directory of another cluster stops the node.
    async fn learn_cluster_id(self: Rc<Self>) {
        loop {
            let image = self.image();
            if !image.cluster_id.is_empty() {
                let result = {
                    let mut identity = self.identity.borrow_mut();
                    identity::learn_cluster_id(&self.settings.data_dir, &mut identity, &image.cluster_id)
                };
                match result {
                    Ok(()) => {
                        if let Some(lifecycle) = self.lifecycle() {
                            lifecycle.set_cluster_id(&image.cluster_id);
                        }
                        return;
                    }
                    Err(error) => {
                        (self.fatal)(error.to_string());
                        return;
                    }
                }
            }
            let seen = self.applied_version();
            self.wait_for_version(seen + 1, Duration::from_secs(1)).await;
        }
    }

    pub fn settings(&self) -> &NodeSettings {
        &self.settings
    }

    pub fn node_id(&self) -> NodeId {
        self.settings.node_id
    }

    pub fn quorum(&self) -> Option<Rc<QuorumNode>> {
        self.quorum.borrow().clone()
    }

    pub fn controller(&self) -> Option<Rc<Controller>> {
        self.controller.borrow().clone()
    }

    pub fn client(&self) -> &Rc<ControllerClient> {
        &self.client
    }

    pub fn lifecycle(&self) -> Option<Rc<BrokerLifecycle>> {
        self.lifecycle.borrow().clone()
    }

    /// The committed metadata as this node has applied it.
    pub fn image(&self) -> SharedImage {
        if let Some(quorum) = self.quorum() {
            return quorum.image();
        }
        if let Some(follower) = self.follower.borrow().as_ref() {
            return follower.image();
        }
        SharedImage::default()
    }

    pub fn applied_version(&self) -> i64 {
        self.image().version
    }

    /// Waits until the applied metadata reaches `version`, or `timeout`.
    pub async fn wait_for_version(&self, version: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.ready.get() == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let quorum = self.quorum();
        let follower = self.follower.borrow().clone();
        let watch = match (&quorum, &follower) {
            (Some(quorum), _) => quorum.applied_watch(),
            (None, Some(follower)) => follower.applied_watch(),
            (None, None) => return false,
        };
        let wait = watch.wait_for(version);
        let timer = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
        futures::pin_mut!(wait);
        futures::pin_mut!(timer);
        matches!(futures::future::select(wait, timer).await, futures::future::Either::Left((Ok(()), _)))
    }

    /// Stops taking part in the quorum (before the logs close at shutdown).
    pub fn stop(&self) {
        if let Some(quorum) = self.quorum() {
            quorum.stop();
        }
    }

    /// At a clean shutdown, before [`ClusterNode::stop`]: if this node leads the controller quorum, hands the
    /// leadership to another voter (bounded by `timeout`).
    pub async fn resign_quorum_leadership(&self, timeout: std::time::Duration) {
        if let Some(quorum) = self.quorum() {
            if !quorum.resign(timeout).await {
                tracing::warn!("could not hand the controller quorum's leadership over; the others will elect one");
            }
        }
    }

    /// Whether this node may serve: a broker once the controller unfenced it (it has caught up with the
    /// metadata log), a controller-only node once the quorum has a leader and it takes part.
    pub fn serving(&self) -> bool {
        match self.lifecycle() {
            Some(lifecycle) => lifecycle.state() == crate::broker::BrokerState::Running,
            None => self.quorum().is_some_and(|q| q.state().leader.is_some() && q.is_voting()),
        }
    }

    /// The active controller as this node knows it.
    pub fn active_controller(&self) -> Option<NodeId> {
        self.quorum().and_then(|q| q.state().leader)
    }

    /// The quorum as its leader describes it (DescribeQuorum): from the local quorum member when it leads,
    /// else from the voters, the known leader first.
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, crate::controller::commands::AdminError> {
        if let Some(quorum) = self.quorum() {
            if quorum.state().role == raft::StateRole::Leader {
                return match self.handle(self.settings.node_id, PeerRequest::DescribeQuorum).await {
                    PeerResponse::Quorum(result) => result,
                    other => Err(crate::controller::commands::AdminError::new(
                        AdminErrorKind::Unavailable,
                        format!("unexpected answer {other:?}"),
                    )),
                };
            }
        }
        let mut voters = self.settings.voter_ids();
        if let Some(leader) = self.active_controller() {
            voters.retain(|v| *v != leader);
            voters.insert(0, leader);
        }
        let mut last = crate::controller::commands::AdminError::new(AdminErrorKind::Unavailable, "no voter answered");
        for voter in voters.into_iter().filter(|v| *v != self.settings.node_id) {
            match self.transport.request(voter, PeerRequest::DescribeQuorum, Duration::from_secs(5)).await {
                Ok(PeerResponse::Quorum(Ok(description))) => return Ok(description),
                Ok(PeerResponse::Quorum(Err(error))) => last = error,
                Ok(other) => tracing::debug!(?other, "unexpected answer to DescribeQuorum"),
                Err(error) => {
                    last = crate::controller::commands::AdminError::new(AdminErrorKind::Unavailable, error.to_string())
                }
            }
        }
        Err(last)
    }
}

impl PeerService for ClusterNode {
    fn hello(&self) -> Hello {
        let image_cluster = self.image().cluster_id.clone();
        let cluster_id =
            if image_cluster.is_empty() { self.identity.borrow().cluster_id.clone() } else { image_cluster };
        Hello {
            version: PEER_PROTOCOL_VERSION,
            node_id: self.settings.node_id,
            cluster_id,
            voters: self.voters_text.clone(),
            directory_id: self.identity.borrow().directory_id.clone(),
            empty_log: self.quorum().is_some_and(|q| !q.is_voting()),
        }
    }

    fn accept(&self, peer: &Hello) -> Result<(), String> {
        if peer.version != PEER_PROTOCOL_VERSION {
            return Err(format!(
                "node {} speaks peer protocol {}, this node {}",
                peer.node_id, peer.version, PEER_PROTOCOL_VERSION
            ));
        }
        if peer.node_id == self.settings.node_id {
            return Err(format!(
                "a node at the other end also has node.id={}: two processes must not share a node id",
                peer.node_id
            ));
        }
        if peer.voters != self.voters_text {
            return Err(format!(
                "node {} has controller.quorum.voters={}, this node has {}: every node must list the same voters",
                peer.node_id, peer.voters, self.voters_text
            ));
        }
        let ours = self.hello().cluster_id;
        if !peer.cluster_id.is_empty() && !ours.is_empty() && peer.cluster_id != ours {
            return Err(format!(
                "node {} belongs to cluster {}, this node to cluster {}: one of them has another cluster's data directory",
                peer.node_id, peer.cluster_id, ours
            ));
        }
        if peer.empty_log {
            if let Some(quorum) = self.quorum() {
                quorum.forget_progress(peer.node_id);
            }
        }
        Ok(())
    }

    fn on_raft(&self, from: NodeId, message: &[u8]) {
        if let Some(quorum) = self.quorum() {
            quorum.receive(from, message);
        }
    }

    fn handle(&self, from: NodeId, request: PeerRequest) -> LocalFuture<'_, PeerResponse> {
        Box::pin(async move {
            match request {
                PeerRequest::Probe => {
                    // A node that formed a quorum but committed nothing yet is as fresh as one that has not
                    // started: voters that start together all form. Only a committed cluster (its id) counts.
                    let cluster_id = self.hello().cluster_id;
                    PeerResponse::Probe(ProbeAnswer {
                        node_id: self.settings.node_id,
                        has_state: !cluster_id.is_empty(),
                        cluster_id,
                    })
                }
                PeerRequest::Controller(request) => {
                    let result = match self.controller() {
                        Some(controller) => controller.handle(request).await,
                        None => Err(crate::controller::commands::AdminError::new(
                            AdminErrorKind::NotController,
                            "this node is not a controller",
                        )),
                    };
                    PeerResponse::Controller { result, leader: self.active_controller() }
                }
                PeerRequest::FetchMetadata { from_index, max_wait_ms } => {
                    let wait = Duration::from_millis(max_wait_ms.min(5_000));
                    self.wait_for_version(from_index as i64, wait).await;
                    let chunk = match self.quorum() {
                        Some(quorum) => quorum.committed_since(from_index, 1000),
                        None => crate::transport::MetadataChunk::Entries { entries: Vec::new() },
                    };
                    self.observers.borrow_mut().insert(from, (from_index as i64, sluice_engine::types::now_ms()));
                    PeerResponse::Metadata { chunk, leader: self.active_controller() }
                }
                PeerRequest::DescribeQuorum => {
                    let described = match self.quorum() {
                        Some(quorum) => quorum.describe().map(|mut description| {
                            let committed = description.high_watermark;
                            description.observers = self
                                .observers
                                .borrow()
                                .iter()
                                .map(|(node, (fetched, at))| crate::transport::ReplicaProgress {
                                    node_id: *node,
                                    log_end_offset: *fetched,
                                    last_fetch_timestamp: *at,
                                    last_caught_up_timestamp: if *fetched >= committed { *at } else { -1 },
                                })
                                .collect();
                            description
                        }),
                        None => Err(crate::controller::commands::AdminError::new(
                            AdminErrorKind::NotController,
                            "this node is not a controller",
                        )),
                    };
                    PeerResponse::Quorum(described)
                }
            }
        })
    }

    fn on_disconnect(&self, node: NodeId) {
        if let Some(controller) = self.controller() {
            controller.on_disconnect(node);
        }
    }

    /// Voters that refuse this node because it belongs to another cluster: once most of them do, this node
    /// (not they) has the wrong data directory, and it stops with a clear error instead of retrying forever.
    fn on_refused(&self, node: NodeId, peer_cluster_id: &str, reason: &str) {
        let ours = self.hello().cluster_id;
        if peer_cluster_id.is_empty() || ours.is_empty() || peer_cluster_id == ours {
            return;
        }
        let mut refusing = self.refusing.borrow_mut();
        refusing.insert(node);
        let voters = self.settings.voter_ids();
        let others = voters.iter().filter(|v| **v != self.settings.node_id).count();
        let needed = if self.settings.is_voter() { voters.len() / 2 } else { voters.len() / 2 + 1 }.min(others).max(1);
        if refusing.len() >= needed {
            (self.fatal)(format!(
                "this node's data directory belongs to cluster {ours}, but the controller quorum is cluster                  {peer_cluster_id} ({reason}): point log.dirs at this cluster's directory for node {}, or at an empty                  one",
                self.settings.node_id
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn voter_lists_parse_and_refuse_nonsense() {
        let voters = Voter::parse_list("2@127.0.0.2:9093, 1@127.0.0.1:9093").unwrap();
        assert_eq!(voters[0], Voter { node_id: 1, host: "127.0.0.1".into(), port: 9093 });
        assert_eq!(Voter::list_text(&voters), "1@127.0.0.1:9093,2@127.0.0.2:9093");
        assert!(Voter::parse_list("1@a:1,1@b:2").is_err());
        assert!(Voter::parse_list("x@a:1").is_err());
        assert!(Voter::parse_list("1@a").is_err());
        assert!(Voter::parse_list("").unwrap().is_empty());
    }
}
