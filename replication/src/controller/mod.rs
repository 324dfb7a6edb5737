//! The active controller: the single writer of the metadata log.
//!
//! Runs on shard 0 of every controller node, but acts only on the one that leads the quorum. A command
//! ([`commands::ControllerRequest`]) arrives from a local handler or over the controller listener; the
//! controller takes its write lock, plans the command against the applied image (pure functions in
//! [`topics`], [`configs`], [`brokers`] and [`partitions`]), proposes the records through the quorum, and
//! answers once they are committed and applied here, with the index of their entry. The lock makes every
//! plan see every earlier change: commands are serialised at the quorum's commit latency.
//!
//! The controller also keeps the brokers' sessions: a broker whose heartbeats stop for
//! `broker.session.timeout.ms` is fenced, and one whose controller connection closes gets a short grace
//! instead (a dead process closes its sockets at once, so a kill -9 is noticed in well under a second).
//! A new active controller starts every session afresh. A heartbeat keeps its broker's session from when it
//! arrives until it is answered, and the answer renews it (Kafka's contact-time tracker): time it spent
//! waiting for the write lock is the controller's delay, not the broker's silence. A session is judged again
//! under the write lock just before its broker is fenced; and time in which this controller's shard did not
//! run at all is not counted against any session, since the brokers' heartbeats were waiting in its sockets.
//! Every `leader.imbalance.check.interval.seconds` it moves leadership back to preferred replicas that are in
//! sync.

pub mod brokers;
pub mod commands;
pub mod configs;
pub mod partitions;
pub mod security;
#[cfg(test)]
mod tests;
pub mod topics;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use crate::config::{EffectiveConfig, StaticConfig};
use crate::metadata::{ClusterImage, MetadataRecord, NodeId, PRODUCER_ID_BLOCK};
use crate::quorum::QuorumNode;

use commands::{AdminError, AdminErrorKind, AdminResult, Committed, ControllerRequest, ControllerResponse};

/// How long a broker whose controller connection closed keeps its session, in case it reconnects.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);
/// The first session a new active controller gives a broker that is also a voter (see
/// `start_sessions_if_new_term`).
const VOTER_FIRST_SESSION: Duration = Duration::from_secs(1);

/// How often sessions are checked.
const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How often the stall watch looks at the clock, and the gap between two looks that means the shard was
/// stalled (did not run its tasks) rather than busy.
const AWAKE_TICK: Duration = Duration::from_millis(50);
const STALL_GAP: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub static_config: StaticConfig,
    pub session_timeout: Duration,
    /// `auto.leader.rebalance.enable` and `leader.imbalance.check.interval.seconds`.
    pub rebalance_interval: Option<Duration>,
}

pub struct Controller {
    quorum: Rc<QuorumNode>,
    settings: ControllerSettings,
    /// Broker id → session deadline.
    sessions: RefCell<BTreeMap<NodeId, Instant>>,
    /// The term whose sessions were started; a new active controller starts them afresh.
    session_term: Cell<u64>,
    /// When this node's sessions for its term started.
    session_start: Cell<Instant>,
    /// When the stall watch last saw this shard run (see `discount_stall`).
    awake_at: Cell<Instant>,
    /// Broker id → heartbeats of its current epoch that this controller is still handling (waiting for the
    /// write lock or for their commit). A broker with one in flight is alive, whatever its deadline says.
    in_flight: RefCell<BTreeMap<NodeId, usize>>,
    write_lock: Rc<Semaphore>,
}

/// A heartbeat being handled: its broker's session cannot end meanwhile, and is renewed when it is answered
/// (or given up), since the time it waited was the controller's, not the broker's silence.
struct HeartbeatInFlight<'a> {
    controller: &'a Controller,
    node: NodeId,
}

impl Drop for HeartbeatInFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.controller.in_flight.borrow_mut();
        if let Some(count) = in_flight.get_mut(&self.node) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.node);
            }
        }
        drop(in_flight);
        self.controller.touch(self.node);
    }
}

/// Whether a topic allows unclean leader election: its override, else the broker default.
fn unclean_allowed(static_config: &StaticConfig, image: &ClusterImage, topic: &str) -> bool {
    let config = EffectiveConfig::new(static_config, &image.broker_configs);
    let overrides = image.topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
    config.topic(&overrides, crate::config::topic::UNCLEAN_LEADER_ELECTION_ENABLE)
}

impl Controller {
    pub fn new(quorum: Rc<QuorumNode>, settings: ControllerSettings) -> Rc<Controller> {
        let controller = Rc::new(Controller {
            quorum,
            settings,
            sessions: RefCell::new(BTreeMap::new()),
            session_term: Cell::new(0),
            session_start: Cell::new(Instant::now()),
            awake_at: Cell::new(Instant::now()),
            in_flight: RefCell::new(BTreeMap::new()),
            write_lock: Rc::new(Semaphore::new(1)),
        });
        let timers = controller.clone();
        glommio::spawn_local(async move { timers.run_timers().await }).detach();
        let watch = Rc::downgrade(&controller);
        glommio::spawn_local(async move {
            while let Some(controller) = watch.upgrade() {
                controller.discount_stall();
                drop(controller);
                glommio::timer::sleep(AWAKE_TICK).await;
            }
        })
        .detach();
        controller
    }

    pub fn quorum(&self) -> &Rc<QuorumNode> {
        &self.quorum
    }

    /// Runs one command on the active controller.
    pub async fn handle(&self, request: ControllerRequest) -> AdminResult<Committed> {
        if !self.quorum.state().leader_ready {
            return Err(self.quorum.not_controller());
        }
        self.start_sessions_if_new_term();
        let _heartbeat = self.note_heartbeat(&request);
        let _permit = Semaphore::acquire_static_permit(&self.write_lock, 1)
            .await
            .map_err(|_| AdminError::new(AdminErrorKind::NotController, "the controller is stopping"))?;
        let image = self.quorum.image();
        let (records, response) = self.plan(&image, request)?;
        if records.is_empty() {
            return Ok(Committed { response, metadata_offset: image.version });
        }
        let index = self.quorum.propose(&records).await?;
        let response = match response {
            // A broker's epoch is the index of the entry that registered it.
            ControllerResponse::RegisterBroker { .. } => {
                ControllerResponse::RegisterBroker { broker_epoch: index as i64 }
            }
            other => other,
        };
        Ok(Committed { response, metadata_offset: index as i64 })
    }

    fn plan(
        &self,
        image: &ClusterImage,
        request: ControllerRequest,
    ) -> AdminResult<(Vec<MetadataRecord>, ControllerResponse)> {
        let static_config = &self.settings.static_config;
        let config = EffectiveConfig::new(static_config, &image.broker_configs);
        let unclean = |image: &ClusterImage, topic: &str| unclean_allowed(static_config, image, topic);
        Ok(match request {
            ControllerRequest::CreateTopics { topics, validate_only } => {
                let (records, answers) = topics::create(&config, image, &topics);
                (if validate_only { Vec::new() } else { records }, ControllerResponse::CreateTopics(answers))
            }
            ControllerRequest::DeleteTopics { topics } => {
                let (records, answers) = topics::delete(&config, image, &topics);
                (records, ControllerResponse::DeleteTopics(answers))
            }
            ControllerRequest::CreatePartitions { topics, validate_only } => {
                let (records, answers) = topics::add_partitions(image, &topics);
                (if validate_only { Vec::new() } else { records }, ControllerResponse::CreatePartitions(answers))
            }
            ControllerRequest::AlterConfigs { changes, validate_only } => {
                let (records, answers) = configs::alter(image, &config, &changes);
                (if validate_only { Vec::new() } else { records }, ControllerResponse::AlterConfigs(answers))
            }
            ControllerRequest::AllocateProducerIds => {
                let first = image.next_producer_id_block;
                let record = MetadataRecord::ProducerIdBlock { next_block_start: first + PRODUCER_ID_BLOCK };
                (vec![record], ControllerResponse::ProducerIds { first, count: PRODUCER_ID_BLOCK })
            }
            ControllerRequest::RegisterController { node_id, directory_id, replace } => {
                match image.controllers.get(&node_id) {
                    Some(existing) if *existing == directory_id => (Vec::new(), ControllerResponse::RegisterController),
                    Some(existing) if !replace => {
                        return Err(AdminError::new(
                            AdminErrorKind::StaleDirectory,
                            format!(
                                "voter {node_id} was registered with data directory {existing} but came back with                                  {directory_id}: its log.dirs was wiped or replaced, and a voter that lost its log                                  must not vote as if it still held it. Restore the directory from a backup, or                                  restart the node with `sluice serve --rejoin-with-empty-log`: it then takes no part                                  in elections until it has copied the committed log from the other voters"
                            ),
                        ))
                    }
                    _ => (
                        vec![MetadataRecord::RegisterController { node_id, directory_id }],
                        ControllerResponse::RegisterController,
                    ),
                }
            }
            ControllerRequest::RegisterBroker(registration) => {
                let alive = self.session_alive(registration.node_id);
                let records = brokers::register(image, &registration, alive, &unclean)?;
                self.touch(registration.node_id);
                // The epoch is the index of the entry these records go into: the next one.
                (records, ControllerResponse::RegisterBroker { broker_epoch: -1 })
            }
            ControllerRequest::BrokerHeartbeat(heartbeat) => {
                let (records, answer) = brokers::heartbeat(image, &heartbeat, &unclean)?;
                self.touch(heartbeat.node_id);
                (records, ControllerResponse::BrokerHeartbeat(answer))
            }
            ControllerRequest::AlterPartition(alter) => {
                let Some(state) = image.partition(&alter.topic, alter.partition) else {
                    return Err(AdminError::new(
                        AdminErrorKind::UnknownTopicOrPartition,
                        format!("no partition {}-{}", alter.topic, alter.partition),
                    ));
                };
                let next = partitions::alter_isr(image, state, &alter, image)?;
                let records = if next == *state {
                    Vec::new()
                } else {
                    vec![MetadataRecord::PartitionChange {
                        topic: alter.topic.clone(),
                        partition: alter.partition,
                        state: next.clone(),
                    }]
                };
                (records, ControllerResponse::AlterPartition(next))
            }
            ControllerRequest::AlterReassignments { reassignments } => {
                let mut records = Vec::new();
                let answers = reassignments
                    .iter()
                    .map(|wanted| {
                        let Some(state) = image.partition(&wanted.topic, wanted.partition) else {
                            return Err(AdminError::new(
                                AdminErrorKind::UnknownTopicOrPartition,
                                format!("no partition {}-{}", wanted.topic, wanted.partition),
                            ));
                        };
                        let next = partitions::reassign(image, state, wanted)?;
                        if next != *state {
                            records.push(MetadataRecord::PartitionChange {
                                topic: wanted.topic.clone(),
                                partition: wanted.partition,
                                state: next,
                            });
                        }
                        Ok(())
                    })
                    .collect();
                (records, ControllerResponse::AlterReassignments(answers))
            }
            ControllerRequest::ListReassignments { partitions } => {
                let ongoing = image
                    .partitions()
                    .filter(|(topic, partition, state)| {
                        state.is_reassigning()
                            && partitions
                                .as_ref()
                                .is_none_or(|wanted| wanted.iter().any(|(t, p)| t == topic && p == partition))
                    })
                    .map(|(topic, partition, state)| commands::OngoingReassignment {
                        topic: topic.to_string(),
                        partition,
                        replicas: state.replicas.clone(),
                        adding: state.adding.clone(),
                        removing: state.removing.clone(),
                    })
                    .collect();
                (Vec::new(), ControllerResponse::ListReassignments(ongoing))
            }
            ControllerRequest::EnsureOffsetsTopic => {
                let record = topics::offsets_topic(&config, image)?;
                (record.into_iter().collect(), ControllerResponse::EnsureOffsetsTopic)
            }
            ControllerRequest::CreateAcls { acls } => {
                let (records, answers) = security::create_acls(image, &acls);
                (records, ControllerResponse::CreateAcls(answers))
            }
            ControllerRequest::DeleteAcls { filters } => {
                let (records, answers) = security::delete_acls(image, &filters);
                (records, ControllerResponse::DeleteAcls(answers))
            }
            ControllerRequest::AlterScram { deletions, upsertions } => {
                let (records, answers) = security::alter_scram(image, &deletions, &upsertions);
                (records, ControllerResponse::AlterScram(answers))
            }
        })
    }

    fn session_alive(&self, node: NodeId) -> bool {
        self.sessions.borrow().get(&node).is_some_and(|deadline| *deadline > Instant::now())
    }

    fn touch(&self, node: NodeId) {
        self.sessions.borrow_mut().insert(node, Instant::now() + self.settings.session_timeout);
    }

    /// A heartbeat of the broker's current epoch renews its session as it arrives, before it waits for the
    /// write lock, and keeps it alive until it is answered: commands queued ahead of it (a burst of ISR changes
    /// after a restart, a command that cannot commit while the other voters are away) are the controller's
    /// delay, not the broker's silence. A heartbeat of an old epoch (a zombie) renews nothing.
    fn note_heartbeat(&self, request: &ControllerRequest) -> Option<HeartbeatInFlight<'_>> {
        let ControllerRequest::BrokerHeartbeat(heartbeat) = request else { return None };
        let image = self.quorum.image();
        if image.brokers.get(&heartbeat.node_id).is_none_or(|b| b.epoch != heartbeat.broker_epoch) {
            return None;
        }
        self.touch(heartbeat.node_id);
        *self.in_flight.borrow_mut().entry(heartbeat.node_id).or_default() += 1;
        Some(HeartbeatInFlight { controller: self, node: heartbeat.node_id })
    }

    /// Whether a broker's session has ended, as of now.
    fn session_expired(&self, node: NodeId) -> bool {
        let now = Instant::now();
        self.sessions.borrow().get(&node).is_none_or(|deadline| *deadline <= now)
            && !self.in_flight.borrow().contains_key(&node)
            && !self.alive_by_raft(node)
    }

    /// If this shard has not run for a while (the process was stopped, or starved of CPU), moves every session
    /// deadline on by that time and returns true: the heartbeats sent meanwhile sit unread in the sockets, so
    /// no session may be judged before they are read. Called by the stall watch every `AWAKE_TICK`, and before
    /// any session is judged, whichever runs first after the stall.
    fn discount_stall(&self) -> bool {
        let now = Instant::now();
        let gap = now.saturating_duration_since(self.awake_at.replace(now));
        if gap <= STALL_GAP {
            return false;
        }
        let stall = gap.saturating_sub(AWAKE_TICK);
        for deadline in self.sessions.borrow_mut().values_mut() {
            *deadline += stall;
        }
        self.session_start.set(self.session_start.get() + stall);
        if self.quorum.state().leader_ready {
            tracing::warn!(
                stalled_ms = stall.as_millis() as u64,
                "the controller's shard did not run for a while: that time is not counted against broker sessions"
            );
        }
        true
    }

    /// A broker's controller connection closed: unless it heartbeats again soon, its session ends.
    pub fn on_disconnect(&self, node: NodeId) {
        let mut sessions = self.sessions.borrow_mut();
        if let Some(deadline) = sessions.get_mut(&node) {
            *deadline = (*deadline).min(Instant::now() + DISCONNECT_GRACE);
        }
    }

    fn start_sessions_if_new_term(&self) {
        let state = self.quorum.state();
        if !state.leader_ready || self.session_term.get() == state.term {
            return;
        }
        self.session_term.set(state.term);
        let now = Instant::now();
        self.session_start.set(now);
        let image = self.quorum.image();
        let me = self.quorum.config().node_id;
        // Sessions start afresh: the new controller has heard no heartbeat yet. A broker that is also a voter
        // shows it is alive sooner, by answering this leader's Raft heartbeats; one that does not (its process
        // died with the old controller's) gets a short first session instead of a whole one, so its
        // partitions move on without waiting out `broker.session.timeout.ms` again.
        let first = |id: NodeId| {
            let voter = id != me && self.quorum.config().voters.contains(&id);
            now + if voter {
                self.settings.session_timeout.min(VOTER_FIRST_SESSION)
            } else {
                self.settings.session_timeout
            }
        };
        *self.sessions.borrow_mut() = image.brokers.keys().map(|id| (*id, first(*id))).collect();
    }

    /// A voter broker that has not reached this controller yet, in the first session period of its term, but
    /// whose Raft messages arrive: alive, just slow to find the new controller.
    fn alive_by_raft(&self, node: NodeId) -> bool {
        self.session_start.get().elapsed() < self.settings.session_timeout
            && self.quorum.config().voters.contains(&node)
            && self.quorum.heard_within(node, VOTER_FIRST_SESSION)
    }

    /// Session expiry, the cluster id of a new cluster, and preferred leaders, while this node leads.
    async fn run_timers(self: Rc<Self>) {
        let mut last_rebalance = Instant::now();
        loop {
            glommio::timer::sleep(SESSION_CHECK_INTERVAL).await;
            // Just after a stall, the heartbeats it held up are read first.
            if self.discount_stall() || !self.quorum.state().leader_ready {
                continue;
            }
            self.start_sessions_if_new_term();
            let image = self.quorum.image();
            if image.cluster_id.is_empty() {
                let cluster_id = new_cluster_id();
                let record = MetadataRecord::ClusterId { cluster_id: cluster_id.clone() };
                match self
                    .commit_with(|image| if image.cluster_id.is_empty() { vec![record] } else { Vec::new() })
                    .await
                {
                    Ok(_) => tracing::info!(%cluster_id, "formed a new cluster"),
                    Err(error) => tracing::warn!(%error, "could not commit the cluster id yet"),
                }
                continue;
            }
            self.create_offsets_topic_when_brokers_are_up(&image).await;
            let expired: Vec<NodeId> = image
                .brokers
                .values()
                .filter(|broker| !broker.fenced && self.session_expired(broker.node_id))
                .map(|broker| broker.node_id)
                .collect();
            for node in expired {
                let static_config = &self.settings.static_config;
                // Judged again under the write lock: heartbeats that waited for it ahead of this fence, or a
                // stall while this waited, may have kept the session.
                let fenced = self
                    .commit_with(|image| {
                        if self.discount_stall() || !self.session_expired(node) {
                            return Vec::new();
                        }
                        brokers::fence(image, node, &|image, topic| unclean_allowed(static_config, image, topic))
                    })
                    .await;
                match fenced {
                    Ok(Some(_)) => tracing::warn!(node, "broker session expired: fenced it and moved its leaderships"),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(node, %error, "fencing the broker failed; retrying"),
                }
            }
            if let Some(interval) = self.settings.rebalance_interval {
                if last_rebalance.elapsed() >= interval {
                    last_rebalance = Instant::now();
                    self.prefer_leaders().await;
                }
            }
        }
    }

    /// Creates `__consumer_offsets` once as many brokers are active as it wants replicas (at most one per
    /// voter), so a cluster that forms gets it fully replicated and a single node gets it at once. A group
    /// client that comes earlier has FindCoordinator create it, capped at the brokers then active.
    async fn create_offsets_topic_when_brokers_are_up(&self, image: &ClusterImage) {
        if image.topic(topics::OFFSETS_TOPIC).is_some() {
            return;
        }
        let static_config = &self.settings.static_config;
        let config = EffectiveConfig::new(static_config, &image.broker_configs);
        let wanted = usize::try_from(config.get(crate::config::broker::OFFSETS_TOPIC_REPLICATION_FACTOR)).unwrap_or(1);
        let wanted = wanted.min(self.quorum.config().voters.len()).max(1);
        if image.active_brokers().count() < wanted {
            return;
        }
        let created = self
            .commit_with(|image| {
                let config = EffectiveConfig::new(static_config, &image.broker_configs);
                topics::offsets_topic(&config, image).ok().flatten().into_iter().collect()
            })
            .await;
        if let Err(error) = created {
            tracing::warn!(%error, "could not create __consumer_offsets yet");
        }
    }

    async fn prefer_leaders(&self) {
        let moved = Cell::new(0);
        let result = self
            .commit_with(|image| {
                let records: Vec<MetadataRecord> = image
                    .partitions()
                    .filter_map(|(topic, partition, state)| {
                        partitions::prefer_leader(state, image).map(|state| MetadataRecord::PartitionChange {
                            topic: topic.to_string(),
                            partition,
                            state,
                        })
                    })
                    .take(1000)
                    .collect();
                moved.set(records.len());
                records
            })
            .await;
        match result {
            Ok(Some(_)) => tracing::info!(partitions = moved.get(), "moved leadership back to preferred replicas"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "preferred leader election failed"),
        }
    }

    /// Commits what the controller decided itself: planned under the write lock against the current image.
    /// `Ok(None)` when the plan had nothing to do.
    async fn commit_with(&self, plan: impl FnOnce(&ClusterImage) -> Vec<MetadataRecord>) -> AdminResult<Option<u64>> {
        let _permit = Semaphore::acquire_static_permit(&self.write_lock, 1)
            .await
            .map_err(|_| AdminError::new(AdminErrorKind::NotController, "the controller is stopping"))?;
        let records = plan(&self.quorum.image());
        if records.is_empty() {
            return Ok(None);
        }
        self.quorum.propose(&records).await.map(Some)
    }
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding (22 characters).
pub fn new_cluster_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}
