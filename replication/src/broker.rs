//! The broker side of the control plane, on shard 0 of every node: reaching the active controller,
//! registration and heartbeats, and (on nodes that are not voters) following the committed metadata log.
//!
//! - [`ControllerClient`] sends a command to the active controller, wherever it is: inline when it is this
//!   node, else over the controller listener, following `NotController` hints and trying the voters in turn
//!   until the deadline.
//! - [`BrokerLifecycle`] registers this broker (a new broker epoch for every process), heartbeats every
//!   `broker.heartbeat.interval.ms` with the metadata it has applied, re-registers when its epoch goes stale,
//!   and drives a controlled shutdown. It knows when it last reached the controller, so the broker can tell
//!   that it may be fenced.
//! - [`MetadataFollower`] pulls committed entries (or a snapshot) from the voters and applies them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::watch::OffsetWatch;

use crate::controller::commands::{
    AdminError, AdminErrorKind, AdminResult, BrokerHeartbeat, BrokerRegistration, Committed, ControllerRequest,
    ControllerResponse,
};
use crate::controller::Controller;
use crate::metadata::{ClusterImage, NodeId, SharedImage};
use crate::quorum::node::apply_chunk;
use crate::transport::{PeerRequest, PeerResponse, PeerTransport};

/// One attempt's timeout towards one controller.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before retrying after an election in progress or an unreachable voter.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

pub struct ControllerClient {
    me: NodeId,
    voters: Vec<NodeId>,
    local: RefCell<Option<Rc<Controller>>>,
    transport: Rc<dyn PeerTransport>,
    leader_hint: Cell<Option<NodeId>>,
    next_voter: Cell<usize>,
}

impl ControllerClient {
    pub fn new(me: NodeId, voters: Vec<NodeId>, transport: Rc<dyn PeerTransport>) -> Rc<ControllerClient> {
        Rc::new(ControllerClient {
            me,
            voters,
            local: RefCell::new(None),
            transport,
            leader_hint: Cell::new(None),
            next_voter: Cell::new(0),
        })
    }

    /// This node's own controller, when it is a voter.
    pub fn set_local(&self, controller: Rc<Controller>) {
        *self.local.borrow_mut() = Some(controller);
    }

    pub fn local(&self) -> Option<Rc<Controller>> {
        self.local.borrow().clone()
    }

    fn target(&self) -> NodeId {
        if let Some(local) = self.local() {
            if let Some(leader) = local.quorum().state().leader {
                return leader;
            }
        }
        if let Some(hint) = self.leader_hint.get() {
            return hint;
        }
        let index = self.next_voter.get() % self.voters.len().max(1);
        self.voters.get(index).copied().unwrap_or(self.me)
    }

    fn rotate(&self) {
        self.leader_hint.set(None);
        self.next_voter.set(self.next_voter.get() + 1);
    }

    /// Sends `request` to the active controller until it answers or `timeout` passes. Only a definite answer
    /// ends early: `NotController` and unreachable voters are retried elsewhere.
    pub async fn call(&self, request: ControllerRequest, timeout: Duration) -> AdminResult<Committed> {
        let deadline = Instant::now() + timeout;
        let mut last_error = AdminError::new(AdminErrorKind::Unavailable, "no controller answered");
        while Instant::now() < deadline {
            let target = self.target();
            let result = match self.local() {
                Some(local) if target == self.me => local.handle(request.clone()).await,
                _ => {
                    let wait = ATTEMPT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
                    match self.transport.request(target, PeerRequest::Controller(request.clone()), wait).await {
                        Ok(PeerResponse::Controller { result, leader }) => {
                            if let Some(leader) = leader {
                                self.leader_hint.set(Some(leader));
                            }
                            result
                        }
                        Ok(other) => {
                            Err(AdminError::new(AdminErrorKind::Unavailable, format!("unexpected answer {other:?}")))
                        }
                        Err(error) => {
                            self.rotate();
                            Err(AdminError::new(AdminErrorKind::Unavailable, error.to_string()))
                        }
                    }
                }
            };
            match result {
                Ok(committed) => return Ok(committed),
                Err(error) if matches!(error.kind, AdminErrorKind::NotController | AdminErrorKind::Unavailable) => {
                    if error.kind == AdminErrorKind::NotController && self.leader_hint.get() == Some(target) {
                        self.rotate();
                    }
                    last_error = error;
                    glommio::timer::sleep(RETRY_BACKOFF).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }
}

#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
    /// How long without reaching the controller before this broker assumes it is fenced and stops leading:
    /// the session timeout plus time for the quorum to elect a new controller, which starts every session
    /// afresh (so a broker cut off only by an election is never fenced).
    pub self_fence_after: Duration,
}

/// Where this broker stands with the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// Not registered yet (or its epoch went stale).
    Starting,
    /// Registered, fenced until it has caught up with the metadata log.
    Fenced,
    Running,
    /// Asked to stop; leaderships are moving away.
    ShuttingDown,
    /// The controller said it may stop.
    MayStop,
}

pub struct BrokerLifecycle {
    settings: LifecycleSettings,
    client: Rc<ControllerClient>,
    incarnation_id: String,
    cluster_id: RefCell<String>,
    epoch: Cell<i64>,
    state: Cell<BrokerState>,
    last_contact: Cell<Option<Instant>>,
    want_shut_down: Cell<bool>,
    /// Grows every time the state changes.
    changes: OffsetWatch,
    /// Wakes the heartbeat loop before its interval (a shutdown was asked for).
    wake: OffsetWatch,
    /// The metadata index this broker has applied.
    applied: Rc<dyn Fn() -> i64>,
    fatal: Rc<dyn Fn(String)>,
}

impl BrokerLifecycle {
    pub fn start(
        settings: LifecycleSettings,
        client: Rc<ControllerClient>,
        cluster_id: String,
        applied: Rc<dyn Fn() -> i64>,
        fatal: Rc<dyn Fn(String)>,
    ) -> Rc<BrokerLifecycle> {
        let lifecycle = Rc::new(BrokerLifecycle {
            settings,
            client,
            incarnation_id: crate::quorum::identity::new_directory_id(),
            cluster_id: RefCell::new(cluster_id),
            epoch: Cell::new(-1),
            state: Cell::new(BrokerState::Starting),
            last_contact: Cell::new(None),
            want_shut_down: Cell::new(false),
            changes: OffsetWatch::new(0),
            wake: OffsetWatch::new(0),
            applied,
            fatal,
        });
        let runner = lifecycle.clone();
        glommio::spawn_local(async move { runner.run().await }).detach();
        lifecycle
    }

    pub fn state(&self) -> BrokerState {
        self.state.get()
    }

    pub fn broker_epoch(&self) -> i64 {
        self.epoch.get()
    }

    pub fn set_cluster_id(&self, cluster_id: &str) {
        cluster_id.clone_into(&mut self.cluster_id.borrow_mut());
    }

    /// Whether the controller heard from this broker within its session timeout: past it, the broker must
    /// assume it was fenced and its leaderships moved.
    pub fn in_session(&self) -> bool {
        self.last_contact.get().is_some_and(|at| at.elapsed() < self.settings.self_fence_after)
            && matches!(self.state.get(), BrokerState::Running | BrokerState::ShuttingDown)
    }

    fn set_state(&self, state: BrokerState) {
        if self.state.replace(state) != state {
            tracing::info!(node = self.settings.node_id, ?state, epoch = self.epoch.get(), "broker state");
            self.changes.advance(self.changes.get() + 1);
        }
    }

    /// Asks the controller to move this broker's leaderships away, and waits until it says the broker may stop
    /// or `timeout` passes. Returns whether it did.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        self.want_shut_down.set(true);
        self.wake.advance(self.wake.get() + 1);
        let deadline = Instant::now() + timeout;
        while self.state.get() != BrokerState::MayStop {
            let seen = self.changes.get();
            let wait = self.changes.wait_for(seen + 1);
            let timer = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
            futures::pin_mut!(wait);
            futures::pin_mut!(timer);
            if let futures::future::Either::Right(_) = futures::future::select(wait, timer).await {
                return false;
            }
        }
        true
    }

    async fn run(self: Rc<Self>) {
        loop {
            if self.epoch.get() < 0 {
                self.register().await;
            }
            let started = Instant::now();
            self.heartbeat().await;
            let interval =
                if self.want_shut_down.get() { Duration::from_millis(50) } else { self.settings.heartbeat_interval };
            let seen = self.wake.get();
            let wake = self.wake.wait_for(seen + 1);
            let timer = glommio::timer::sleep(interval.saturating_sub(started.elapsed()));
            futures::pin_mut!(wake);
            futures::pin_mut!(timer);
            let _ = futures::future::select(wake, timer).await;
        }
    }

    async fn register(&self) {
        let mut attempt = 0u32;
        // Since when every answer has been "registered by a live process": the clock starts at the first such
        // answer, not at process start, since waiting out a controller election first must not count.
        let mut refused_since: Option<Instant> = None;
        loop {
            let request = ControllerRequest::RegisterBroker(BrokerRegistration {
                node_id: self.settings.node_id,
                incarnation_id: self.incarnation_id.clone(),
                cluster_id: self.cluster_id.borrow().clone(),
                host: self.settings.host.clone(),
                port: self.settings.port,
                rack: self.settings.rack.clone(),
            });
            match self.client.call(request, self.settings.session_timeout).await {
                Ok(Committed { response: ControllerResponse::RegisterBroker { broker_epoch }, .. }) => {
                    self.epoch.set(broker_epoch);
                    self.last_contact.set(Some(Instant::now()));
                    self.set_state(BrokerState::Fenced);
                    tracing::info!(node = self.settings.node_id, broker_epoch, "registered with the controller");
                    return;
                }
                Ok(other) => tracing::error!(?other, "unexpected answer to a registration"),
                Err(error) if matches!(error.kind, AdminErrorKind::InconsistentClusterId) => {
                    (self.fatal)(error.message);
                    return;
                }
                // This node's previous process holds the id until its session ends (a restart right after a
                // kill -9); refused for a few session timeouts in a row, another live process has it.
                Err(error) if error.kind == AdminErrorKind::DuplicateBrokerRegistration => {
                    let since = *refused_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.settings.session_timeout * 3 {
                        (self.fatal)(error.message);
                        return;
                    }
                    attempt += 1;
                    if attempt % 10 == 1 {
                        tracing::warn!(node = self.settings.node_id, %error, "the previous process's session has not ended yet; retrying");
                    }
                }
                Err(error) => {
                    refused_since = None;
                    attempt += 1;
                    if attempt % 10 == 1 {
                        tracing::warn!(node = self.settings.node_id, %error, "cannot register with the controller quorum yet; retrying");
                    }
                }
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn heartbeat(&self) {
        let request = ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            node_id: self.settings.node_id,
            broker_epoch: self.epoch.get(),
            metadata_offset: (self.applied)(),
            want_shut_down: self.want_shut_down.get(),
        });
        match self.client.call(request, self.settings.heartbeat_interval.max(Duration::from_millis(500))).await {
            Ok(Committed { response: ControllerResponse::BrokerHeartbeat(answer), .. }) => {
                self.last_contact.set(Some(Instant::now()));
                let state = if answer.should_shut_down {
                    BrokerState::MayStop
                } else if self.want_shut_down.get() {
                    BrokerState::ShuttingDown
                } else if answer.is_fenced {
                    BrokerState::Fenced
                } else {
                    BrokerState::Running
                };
                self.set_state(state);
            }
            Ok(other) => tracing::error!(?other, "unexpected answer to a heartbeat"),
            Err(error) if error.kind == AdminErrorKind::StaleBrokerEpoch => {
                tracing::warn!(node = self.settings.node_id, %error, "broker epoch is stale: registering again");
                self.epoch.set(-1);
                self.set_state(BrokerState::Starting);
            }
            Err(error) => {
                let silent_for = self.last_contact.get().map(|at| at.elapsed());
                tracing::warn!(node = self.settings.node_id, %error, ?silent_for, "heartbeat failed");
                if !self.in_session() && self.state.get() == BrokerState::Running {
                    tracing::error!(
                        node = self.settings.node_id,
                        "no contact with the controller quorum for longer than its session and an election: this \
                         broker assumes it is fenced and stops leading until it reaches the quorum again"
                    );
                    self.set_state(BrokerState::Fenced);
                }
            }
        }
    }
}

/// Follows the committed metadata log from the voters, for a node that is not one.
pub struct MetadataFollower {
    voters: Vec<NodeId>,
    transport: Rc<dyn PeerTransport>,
    image: RefCell<SharedImage>,
    applied: OffsetWatch,
}

impl MetadataFollower {
    pub fn start(voters: Vec<NodeId>, transport: Rc<dyn PeerTransport>) -> Rc<MetadataFollower> {
        let follower = Rc::new(MetadataFollower {
            voters,
            transport,
            image: RefCell::new(Arc::new(ClusterImage::default())),
            applied: OffsetWatch::new(0),
        });
        let runner = follower.clone();
        glommio::spawn_local(async move { runner.run().await }).detach();
        follower
    }

    pub fn image(&self) -> SharedImage {
        self.image.borrow().clone()
    }

    pub fn applied_watch(&self) -> &OffsetWatch {
        &self.applied
    }

    async fn run(self: Rc<Self>) {
        let mut target = 0usize;
        let mut failures = 0u32;
        loop {
            let voter = self.voters[target % self.voters.len().max(1)];
            let from_index = self.image().version as u64 + 1;
            let request = PeerRequest::FetchMetadata { from_index, max_wait_ms: 500 };
            match self.transport.request(voter, request, Duration::from_secs(2)).await {
                Ok(PeerResponse::Metadata { chunk, .. }) => {
                    failures = 0;
                    let next = apply_chunk(&self.image(), chunk);
                    if next.version > self.image().version {
                        let version = next.version;
                        *self.image.borrow_mut() = Arc::new(next);
                        self.applied.advance(version);
                    }
                }
                Ok(other) => tracing::warn!(voter, ?other, "unexpected answer to a metadata fetch"),
                Err(error) => {
                    failures += 1;
                    target += 1;
                    if failures % 20 == 1 {
                        tracing::warn!(voter, %error, "cannot fetch metadata from the controller quorum; retrying");
                    }
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
