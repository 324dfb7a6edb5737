//! A shard: one glommio executor pinned to a core, owning a set of partitions outright.
//!
//! Each shard holds its engine [`LogManager`], a read copy of the cluster metadata image, its
//! [`ReplicaManager`] (the leaders and followers of the partitions it owns), its part of the group
//! coordinator, and a sender to every other shard. Work for a partition runs on its owner through
//! [`Shard::run_on`]: the closure travels over a glommio channel mesh, runs there, and its result travels
//! back. Nothing mutable is shared between shards and no borrow is held across an `.await`.
//!
//! **Invariant:** one owner shard per partition, `owner_shard(topic, partition)`. Only the owner opens, appends
//! to and reads a partition's log; a shard that opens or is asked for a partition it does not own asserts.
//!
//! Shard 0 also runs this node's control plane ([`ClusterNode`]): the controller quorum member, the broker's
//! registration and heartbeats, and the metadata it applies. Each newly applied image is published to every
//! shard ([`Shard::publish`]), which opens, reconfigures or deletes its partitions and moves leaderships
//! before it reports the image applied. Admin requests go to the active controller through shard 0
//! ([`Shard::controller_call`]) and are answered once every shard has applied their change, so the client's
//! next request sees it.
//!
//! **Leadership is checked in one place**, [`Shard::leader_log`]: produce, fetch, ListOffsets,
//! OffsetForLeaderEpoch and DeleteRecords go through it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::stream::{self, StreamExt};
use glommio::channels::channel_mesh::{Receivers, Senders};
use sluice_engine::watch::OffsetWatch;
use sluice_engine::{LeaderEpoch, LogManager, PartitionLog, TopicPartition};
use sluice_replication::acl::Authorizer;
use sluice_replication::config::{broker, topic, EffectiveConfig, StaticConfig};
use sluice_replication::controller::commands::{AdminError, AdminErrorKind, ControllerRequest, ControllerResponse};
use sluice_replication::metadata::{owner_shard, ClusterImage, NodeId, SharedImage, METADATA_TOPIC};
use sluice_replication::node::ClusterNode;
use sluice_replication::replica::{throttle, LeaderState, ReplicaManager, ReplicaPolicy, ThrottleRates};
use sluice_replication::scram::ScramMechanism;
use tracing::Instrument;

use crate::error::ResponseError;
use crate::groups::{Coordinator, GroupConfig, OFFSETS_TOPIC};

/// What every shard knows about the broker it is part of. Immutable after startup.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub node_id: NodeId,
    /// The client listener (absent on a node that is only a controller).
    pub listen: Option<SocketAddr>,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub data_dir: PathBuf,
    pub shards: usize,
    pub static_config: StaticConfig,
    /// The SCRAM mechanisms a `SASL_PLAINTEXT` client listener enables (`sasl.enabled.mechanisms`); empty for a
    /// PLAINTEXT listener.
    pub sasl_mechanisms: Vec<ScramMechanism>,
}

/// How long an admin request waits for the active controller.
pub const CONTROLLER_CALL_TIMEOUT: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce(Rc<Shard>) -> Pin<Box<dyn Future<Output = Box<dyn Any + Send>>>> + Send>;

/// A message between shards.
pub enum Envelope {
    Job { id: u64, from: usize, job: Job },
    Reply { id: u64, value: Box<dyn Any + Send> },
}

pub struct Shard {
    pub id: usize,
    pub settings: Arc<BrokerSettings>,
    pub manager: Rc<LogManager>,
    image: RefCell<SharedImage>,
    mesh: Option<Senders<Envelope>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Box<dyn Any + Send>>>>,
    next_call_id: Cell<u64>,
    /// This node's control plane; on shard 0 only.
    cluster: RefCell<Option<Rc<ClusterNode>>>,
    /// Leaders and followers of the partitions this shard owns.
    replicas: RefCell<Option<Rc<ReplicaManager>>>,
    /// Open client connections on this shard.
    pub connections: Cell<usize>,
    /// Groups whose `__consumer_offsets` partition this shard owns and this broker leads.
    pub coordinator: Rc<Coordinator>,
    /// Version of the last image this shard finished applying (0: none yet).
    applied: OffsetWatch,
    /// On shard 0: version of the last image every shard has applied.
    published: OffsetWatch,
    /// Producer ids this broker may hand out: the rest of a block the controller allocated (shard 0).
    producer_ids: Cell<(i64, i64)>,
    /// The ACL authorizer, when `authorizer.class.name` turns it on (`crate::authorize`).
    pub(crate) authorizer: Option<Authorizer>,
}

/// Partitions opened concurrently when an image arrives.
const OPEN_CONCURRENCY: usize = 32;

impl Shard {
    pub fn new(
        id: usize,
        settings: Arc<BrokerSettings>,
        manager: Rc<LogManager>,
        mesh: Option<Senders<Envelope>>,
    ) -> Rc<Shard> {
        let dynamic = Default::default();
        let config = EffectiveConfig::new(&settings.static_config, &dynamic);
        let group_config = GroupConfig {
            initial_rebalance_delay: Duration::from_millis(config.get(broker::GROUP_INITIAL_REBALANCE_DELAY_MS) as u64),
            min_session_timeout_ms: config.get(broker::GROUP_MIN_SESSION_TIMEOUT_MS),
            max_session_timeout_ms: config.get(broker::GROUP_MAX_SESSION_TIMEOUT_MS),
            max_size: config.get(broker::GROUP_MAX_SIZE) as usize,
            offset_metadata_max_bytes: config.get(broker::OFFSET_METADATA_MAX_BYTES) as usize,
            offsets_retention_ms: i64::from(config.get(broker::OFFSETS_RETENTION_MINUTES)).saturating_mul(60_000),
        };
        Rc::new(Shard {
            authorizer: Authorizer::configured(&settings.static_config),
            coordinator: Coordinator::new(group_config),
            id,
            settings,
            manager,
            image: RefCell::new(Arc::new(ClusterImage::default())),
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_call_id: Cell::new(0),
            cluster: RefCell::new(None),
            replicas: RefCell::new(None),
            connections: Cell::new(0),
            applied: OffsetWatch::new(0),
            published: OffsetWatch::new(0),
            producer_ids: Cell::new((0, 0)),
        })
    }

    pub fn shards(&self) -> usize {
        self.settings.shards
    }

    pub fn image(&self) -> SharedImage {
        self.image.borrow().clone()
    }

    /// The current image, borrowed for a synchronous read (an authorization check) without taking a handle.
    /// Never hold it across an await: installing the next image needs the cell.
    pub fn image_ref(&self) -> std::cell::Ref<'_, SharedImage> {
        self.image.borrow()
    }

    /// Version of the last image this shard has fully applied: its partitions opened, configs set, leaders and
    /// followers in place. The image itself ([`Shard::image`]) is installed before that work starts.
    pub fn applied_version(&self) -> i64 {
        self.applied.get()
    }

    /// Waits until this shard has applied the metadata entry `version`, or `timeout` passes.
    pub async fn wait_applied(&self, version: i64, timeout: Duration) -> bool {
        let wait = self.applied.wait_for(version);
        let timer = glommio::timer::sleep(timeout);
        futures::pin_mut!(wait);
        futures::pin_mut!(timer);
        matches!(futures::future::select(wait, timer).await, futures::future::Either::Left((Ok(()), _)))
    }

    pub fn node_id(&self) -> NodeId {
        self.settings.node_id
    }

    /// Shard 0's control plane.
    pub fn set_cluster(&self, node: Rc<ClusterNode>) {
        *self.cluster.borrow_mut() = Some(node);
    }

    /// This node's control plane; present on shard 0 only.
    pub fn cluster(&self) -> Option<Rc<ClusterNode>> {
        self.cluster.borrow().clone()
    }

    pub fn set_replicas(&self, replicas: Rc<ReplicaManager>) {
        *self.replicas.borrow_mut() = Some(replicas);
    }

    /// This shard's replica manager (set before the shard serves).
    pub fn replicas(&self) -> Option<Rc<ReplicaManager>> {
        self.replicas.borrow().clone()
    }

    /// Runs `f` with the broker configuration in effect: static values, the cluster-wide dynamic ones, and this
    /// broker's own dynamic ones over them.
    pub fn with_config<R>(&self, image: &ClusterImage, f: impl FnOnce(EffectiveConfig<'_>) -> R) -> R {
        f(EffectiveConfig {
            static_config: &self.settings.static_config,
            dynamic: &image.broker_configs,
            own: image.node_configs.get(&self.settings.node_id),
        })
    }

    pub fn owner(&self, topic: &str, partition: i32) -> usize {
        owner_shard(topic, partition, self.shards())
    }

    /// Asserts that this shard owns the partition. One owner shard per partition: only the owner opens, appends
    /// to and reads a log, and work for it reaches the owner through [`Shard::run_on`].
    fn assert_owner(&self, topic: &str, partition: i32) {
        let owner = self.owner(topic, partition);
        assert_eq!(
            owner, self.id,
            "partition {topic}-{partition} belongs to shard {owner}, not to shard {}: one owner shard per partition",
            self.id
        );
    }

    /// The partition's log on this shard, which must be its owner, or the Kafka error a client should see.
    pub fn local_log(&self, topic: &str, partition: i32) -> Result<Rc<PartitionLog>, ResponseError> {
        self.assert_owner(topic, partition);
        let image = self.image();
        if image.partition(topic, partition).is_none() {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        let tp = TopicPartition::new(topic, partition);
        match self.manager.get(&tp) {
            Some(log) => Ok(log),
            None if self.manager.offline_reason(&tp).is_some() => Err(ResponseError::KafkaStorageError),
            None => Err(ResponseError::NotLeaderOrFollower),
        }
    }

    /// The one leadership check: the partition's log and its leader state when this broker leads it, or the
    /// error a client should see (NOT_LEADER_OR_FOLLOWER when another broker leads it or none does).
    pub fn leader_log(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Rc<PartitionLog>, Rc<LeaderState>), ResponseError> {
        let log = self.local_log(topic, partition)?;
        let leader = self
            .replicas()
            .and_then(|replicas| replicas.get(log.topic_partition()))
            .and_then(|replica| replica.leader())
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        Ok((log, leader))
    }

    /// Kafka's leader-epoch fencing against this leader's epoch: an older epoch than the leader's is fenced, a
    /// newer one is unknown here (the client saw newer metadata than this broker has applied).
    pub fn check_leader_epoch(&self, leader: &LeaderState, current: i32) -> Option<ResponseError> {
        if current < 0 {
            return None;
        }
        match current.cmp(&leader.leader_epoch()) {
            std::cmp::Ordering::Less => Some(ResponseError::FencedLeaderEpoch),
            std::cmp::Ordering::Greater => Some(ResponseError::UnknownLeaderEpoch),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// Runs a command on the active controller (through shard 0's client, wherever the controller is) and waits
    /// until every shard of this broker has applied its change, so the client's next request sees it whichever
    /// shard it reaches.
    pub async fn controller_call(
        self: &Rc<Self>,
        request: ControllerRequest,
    ) -> Result<ControllerResponse, AdminError> {
        self.run_on(0, move |shard| async move {
            let committed = match shard.cluster() {
                Some(node) => node.client().call(request, CONTROLLER_CALL_TIMEOUT).await?,
                None => return Err(AdminError::new(AdminErrorKind::NotController, "the control plane is not running")),
            };
            if !shard.wait_published(committed.metadata_offset, CONTROLLER_CALL_TIMEOUT).await {
                tracing::warn!(offset = committed.metadata_offset, "a committed change was not applied here in time");
            }
            Ok(committed.response)
        })
        .await
    }

    /// On shard 0: waits until every shard has applied the metadata entry `version`, or `timeout` passes.
    pub async fn wait_published(&self, version: i64, timeout: Duration) -> bool {
        let wait = self.published.wait_for(version);
        let timer = glommio::timer::sleep(timeout);
        futures::pin_mut!(wait);
        futures::pin_mut!(timer);
        matches!(futures::future::select(wait, timer).await, futures::future::Either::Left((Ok(()), _)))
    }

    /// A new producer id (KIP-98), from a block the controller allocated to this broker; a new block is asked
    /// for when one runs out. Ids are never reused: each block's end is committed before any id is handed out.
    pub async fn allocate_producer_id(self: &Rc<Self>) -> Result<i64, AdminError> {
        self.run_on(0, |shard| async move {
            loop {
                let (next, end) = shard.producer_ids.get();
                if next < end {
                    shard.producer_ids.set((next + 1, end));
                    return Ok(next);
                }
                match shard.controller_call(ControllerRequest::AllocateProducerIds).await? {
                    ControllerResponse::ProducerIds { first, count } => {
                        let (next, end) = shard.producer_ids.get();
                        // Another caller may have got a block meanwhile: the newer one wins, the rest is skipped.
                        if next >= end || first >= end {
                            shard.producer_ids.set((first, first + count));
                        }
                    }
                    other => {
                        return Err(AdminError::new(
                            AdminErrorKind::Unavailable,
                            format!("unexpected answer {other:?}"),
                        ))
                    }
                }
            }
        })
        .await
    }

    /// Runs `f` on shard `target` and returns its result. Local calls run inline; remote ones travel over the
    /// channel mesh.
    pub async fn run_on<T, F, Fut>(self: &Rc<Self>, target: usize, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let mesh = match &self.mesh {
            Some(mesh) if target != self.id => mesh,
            _ => return f(self.clone()).await,
        };
        let job: Job = Box::new(move |shard| Box::pin(async move { Box::new(f(shard).await) as Box<dyn Any + Send> }));
        let id = self.next_call_id.get();
        self.next_call_id.set(id + 1);
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, sender);
        let sent = mesh.send_to(target, Envelope::Job { id, from: self.id, job }).await;
        assert!(sent.is_ok(), "shard {target} stopped receiving while shard {} runs", self.id);
        let value = receiver.await;
        let value = match value {
            Ok(value) => value,
            Err(_) => panic!("shard {target} dropped a call from shard {}", self.id),
        };
        match value.downcast::<T>() {
            Ok(value) => *value,
            Err(_) => panic!("a cross-shard reply had the wrong type"),
        }
    }

    /// Serves calls from one peer until the mesh closes. One task per peer.
    pub async fn serve_peer(self: Rc<Self>, receivers: Rc<Receivers<Envelope>>, peer: usize) {
        while let Ok(Some(envelope)) = receivers.recv_from(peer).await {
            match envelope {
                Envelope::Job { id, from, job } => {
                    let shard = self.clone();
                    glommio::spawn_local(async move {
                        let value = job(shard.clone()).await;
                        if let Some(mesh) = &shard.mesh {
                            let _ = mesh.send_to(from, Envelope::Reply { id, value }).await;
                        }
                    })
                    .detach();
                }
                Envelope::Reply { id, value } => {
                    if let Some(sender) = self.pending.borrow_mut().remove(&id) {
                        let _ = sender.send(value);
                    }
                }
            }
        }
    }

    /// Sends `image` to every shard and waits until each has applied it.
    pub async fn publish(self: &Rc<Self>, image: SharedImage) {
        let version = image.version;
        let calls = (0..self.shards()).map(|target| {
            let image = image.clone();
            self.run_on(target, move |shard| async move { shard.apply_image(image).await })
        });
        futures::future::join_all(calls).await;
        self.published.advance(version);
    }

    /// Installs a new image: deletes the logs of partitions this broker no longer replicates (topics deleted or
    /// recreated, replicas reassigned away), opens those it now replicates, applies changed configs live,
    /// makes each replica a leader or a follower, and loads or unloads the consumer groups of the
    /// `__consumer_offsets` partitions whose leadership moved.
    pub async fn apply_image(self: &Rc<Self>, image: SharedImage) {
        let old = self.image.replace(image.clone());
        if old.version > image.version {
            // Images arrive in commit order from one writer; an older one is a bug upstream.
            *self.image.borrow_mut() = old;
            return;
        }
        let node = self.node_id();
        crate::metrics::record_isr_changes(&old, &image, node, |topic, partition| {
            self.owner(topic, partition) == self.id
        });
        let removed: Vec<TopicPartition> = old
            .partitions()
            .map(|(topic, partition, _)| TopicPartition::new(topic, partition))
            .filter(|tp| self.owner(&tp.topic, tp.partition) == self.id)
            .filter(|tp| {
                let recreated = match (old.topic(&tp.topic), image.topic(&tp.topic)) {
                    (Some(before), Some(now)) => before.topic_id != now.topic_id,
                    _ => false,
                };
                let kept = image.partition(&tp.topic, tp.partition).is_some_and(|p| p.replicas.contains(&node));
                recreated || !kept
            })
            .collect();
        for tp in removed {
            if self.manager.get(&tp).is_none() && self.manager.offline_reason(&tp).is_none() {
                continue;
            }
            if tp.topic == OFFSETS_TOPIC {
                self.coordinator.unload_partition(tp.partition);
            }
            if let Err(error) = self.manager.delete_log(&tp).await {
                tracing::error!(partition = %tp.dir_name(), %error, "deleting a partition this broker no longer holds failed");
            }
        }
        let mut to_open = Vec::new();
        let mut logs = Vec::new();
        for topic_image in image.topics.values() {
            let (mut config, min_isr, leader_throttled, follower_throttled) = self.with_config(&image, |config| {
                (
                    config.log_config(&topic_image.configs),
                    config.topic(&topic_image.configs, topic::MIN_INSYNC_REPLICAS),
                    config.topic(&topic_image.configs, topic::LEADER_REPLICATION_THROTTLED_REPLICAS),
                    config.topic(&topic_image.configs, topic::FOLLOWER_REPLICATION_THROTTLED_REPLICAS),
                )
            });
            if topic_image.name == OFFSETS_TOPIC {
                // Always compacted, as Kafka's is, whatever the topic's configs say (those created before
                // compaction existed have none).
                config.cleanup_policy = sluice_engine::CleanupPolicy { delete: false, compact: true };
            }
            let min_isr = usize::try_from(min_isr).unwrap_or(1);
            for (partition, state) in topic_image.partitions.iter().enumerate() {
                let partition = partition as i32;
                if self.owner(&topic_image.name, partition) != self.id || !state.replicas.contains(&node) {
                    continue;
                }
                let policy = ReplicaPolicy {
                    min_isr,
                    leader_throttled: throttle::lists(&leader_throttled, partition, node),
                    follower_throttled: throttle::lists(&follower_throttled, partition, node),
                };
                let tp = TopicPartition::new(topic_image.name.clone(), partition);
                match self.manager.get(&tp) {
                    Some(log) => {
                        if log.config() != config {
                            log.set_config(config.clone());
                        }
                        logs.push((log, policy));
                    }
                    None if self.manager.offline_reason(&tp).is_some() => {}
                    None => to_open.push((tp, config.clone(), policy)),
                }
            }
        }
        let manager = self.manager.clone();
        let opened: Vec<(Rc<PartitionLog>, ReplicaPolicy)> = stream::iter(to_open)
            .map(|(tp, config, policy)| {
                let manager = manager.clone();
                self.assert_owner(&tp.topic, tp.partition);
                // Recovery's lines carry the partition they recover.
                let span = tracing::info_span!("open_log", partition = %tp.dir_name());
                async move {
                    match manager.open_log(&tp, config).instrument(span).await {
                        Ok(log) => Some((log, policy)),
                        Err(sluice_engine::EngineError::Closed { .. }) => {
                            tracing::debug!(partition = %tp.dir_name(), "not opened: the shard is shutting down");
                            None
                        }
                        Err(error) => {
                            tracing::error!(partition = %tp.dir_name(), %error, "partition is offline");
                            None
                        }
                    }
                }
            })
            .buffer_unordered(OPEN_CONCURRENCY)
            .filter_map(|opened| async move { opened })
            .collect()
            .await;
        logs.extend(opened);
        if let Some(replicas) = self.replicas() {
            let rates = self.with_config(&image, |config| ThrottleRates {
                leader: throttle::shard_rate(config.get(broker::LEADER_REPLICATION_THROTTLED_RATE), self.shards()),
                follower: throttle::shard_rate(config.get(broker::FOLLOWER_REPLICATION_THROTTLED_RATE), self.shards()),
            });
            replicas.apply_image(image.clone(), logs, rates).await;
        }
        self.load_group_partitions(&image).await;
        crate::metrics::set_slow_request_threshold_ms(
            self.with_config(&image, |config| config.get(broker::LOG_SLOW_REQUEST_MS)),
        );
        self.applied.advance(image.version);
    }

    /// Loads the groups of the `__consumer_offsets` partitions this shard owns and this broker now leads, and
    /// unloads those whose leadership moved away.
    async fn load_group_partitions(&self, image: &ClusterImage) {
        let Some(offsets) = image.topic(OFFSETS_TOPIC) else { return };
        self.coordinator.set_offsets_partitions(offsets.partitions.len() as i32);
        // Every partition to take over is marked as loading before the first is read: FindCoordinator already
        // names this broker for all of them, and a group whose partition waited its turn unmarked was answered
        // NOT_COORDINATOR (an error librdkafka hands a synchronous commit) instead of COORDINATOR_LOAD_IN_PROGRESS.
        let mut to_load = Vec::new();
        for partition in 0..offsets.partitions.len() as i32 {
            if self.owner(OFFSETS_TOPIC, partition) != self.id {
                continue;
            }
            let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
            let leader = self
                .replicas()
                .and_then(|r| r.get(&tp))
                .and_then(|replica| replica.leader().map(|leader| (replica.log.clone(), leader.leader_epoch())));
            let held = self.coordinator.holds_partition(partition);
            match leader {
                Some((log, epoch)) if !held => {
                    self.coordinator.mark_loading(partition);
                    to_load.push((partition, log, epoch));
                }
                None if held => self.coordinator.unload_partition(partition),
                _ => {}
            }
        }
        for (partition, log, epoch) in to_load {
            if !self.coordinator.is_loading(partition) {
                continue; // unloaded meanwhile: its leadership moved on
            }
            let span = tracing::info_span!("group_load", shard = self.id, partition);
            match self.coordinator.load_partition(partition, log, LeaderEpoch(epoch)).instrument(span).await {
                Ok(records) if records > 0 => {
                    tracing::info!(shard = self.id, partition, records, "loaded consumer groups")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(
                    shard = self.id,
                    partition,
                    %error,
                    "__consumer_offsets partition refused: its records cannot be replayed, so none of its \
                     groups are loaded and they answer COORDINATOR_NOT_AVAILABLE until another broker leads \
                     it or this one takes it over again"
                ),
            }
        }
    }

    /// Group housekeeping: session expiry at the earliest member's deadline, and at least every 100 ms; offset
    /// expiry every `offsets.retention.check.interval.ms`.
    pub fn spawn_group_housekeeping(self: &Rc<Self>) {
        let shard = self.clone();
        let check_every = {
            let image = self.image();
            Duration::from_millis(
                self.with_config(&image, |c| c.get(broker::OFFSETS_RETENTION_CHECK_INTERVAL_MS)) as u64
            )
        };
        glommio::spawn_local(async move {
            let mut last_check = std::time::Instant::now();
            let mut wait = Duration::from_millis(100);
            loop {
                glommio::timer::sleep(wait).await;
                let next_deadline = shard.coordinator.expire_members();
                // Deadlines set after this pass are at least a session timeout away (6 s by default), so the
                // 100 ms bound keeps them within 100 ms; those already set are met to the millisecond.
                wait = next_deadline.map_or(Duration::from_millis(100), |deadline| {
                    deadline
                        .saturating_duration_since(std::time::Instant::now())
                        .clamp(Duration::from_millis(1), Duration::from_millis(100))
                });
                if last_check.elapsed() >= check_every {
                    last_check = std::time::Instant::now();
                    let span = tracing::debug_span!("group_housekeeping", shard = shard.id);
                    shard.coordinator.expire_offsets().instrument(span).await;
                }
            }
        })
        .detach();
    }

    /// Partition directories on disk that this shard owns but this broker does not replicate in the image (a
    /// topic deleted, or a replica moved away, just before a crash): renamed aside with a warning, never
    /// opened and never silently deleted. Call it only once the broker has caught up with the metadata log,
    /// or a partition created after the last applied entry would look orphaned.
    pub async fn set_aside_orphans(&self) {
        let image = self.image();
        let Ok(found) = sluice_engine::manager::discover_partitions(&self.settings.data_dir) else {
            return;
        };
        let node = self.node_id();
        for tp in found {
            if tp.topic == METADATA_TOPIC || self.owner(&tp.topic, tp.partition) != self.id {
                continue;
            }
            if image.partition(&tp.topic, tp.partition).is_some_and(|p| p.replicas.contains(&node)) {
                continue;
            }
            if self.manager.get(&tp).is_some() {
                continue;
            }
            let from = self.settings.data_dir.join(tp.dir_name());
            let to =
                self.settings.data_dir.join(format!("{}.{}-orphaned", tp.dir_name(), sluice_engine::types::now_ms()));
            tracing::warn!(from = %from.display(), to = %to.display(), "partition directory not in the metadata log; set aside");
            if let Err(error) = glommio::io::rename(&from, &to).await {
                tracing::error!(path = %from.display(), %error, "could not set an orphaned partition aside");
            } else if let Err(error) = sluice_engine::checkpoint::sync_dir(&self.settings.data_dir).await {
                tracing::warn!(%error, "could not sync the data directory after setting a partition aside");
            }
        }
    }
}
