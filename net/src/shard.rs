//! A shard: one glommio executor pinned to a core, owning a set of partitions outright.
//!
//! Each shard holds its engine [`LogManager`], a read copy of the cluster metadata image, and a sender to every
//! other shard. Work for a partition runs on its owner through [`Shard::run_on`]: the closure travels over a
//! glommio channel mesh, runs there, and its result travels back. Nothing mutable is shared between shards
//! and no borrow is held across an `.await`.
//!
//! **Invariant:** one owner shard per partition, `owner_shard(topic, partition)`. Only the owner opens, appends
//! to and reads a partition's log; a shard that opens or is asked for a partition it does not own asserts.
//!
//! Shard 0 also runs the [`Controller`], the single writer of the metadata log. After a commit it publishes
//! the new image to every shard ([`Shard::publish`]) and waits until each has opened, reconfigured or deleted
//! the partitions it owns, so an admin request is answered only once its effect is visible everywhere.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
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
use sluice_engine::{LogManager, PartitionLog, TopicPartition};
use sluice_replication::config::{broker, EffectiveConfig, StaticConfig};
use sluice_replication::controller::{new_topic_id, Controller, ControllerError, WriteGuard};
use sluice_replication::metadata::{
    owner_shard, ClusterImage, MetadataRecord, NodeId, PartitionImage, SharedImage, METADATA_TOPIC,
};

use crate::groups::{Coordinator, GroupConfig, OFFSETS_TOPIC};

use crate::error::ResponseError;

/// What every shard knows about the broker it is part of. Immutable after startup.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub node_id: NodeId,
    pub listen: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub data_dir: PathBuf,
    pub shards: usize,
    pub static_config: StaticConfig,
}

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
    controller: RefCell<Option<Rc<Controller>>>,
    /// Open client connections on this shard.
    pub connections: Cell<usize>,
    /// Groups whose `__consumer_offsets` partition this shard owns.
    pub coordinator: Rc<Coordinator>,
    /// `__consumer_offsets` partitions already loaded into the coordinator.
    loaded_offsets_partitions: RefCell<HashSet<i32>>,
    /// Version of the last image whose partitions this shard finished opening (0: none yet).
    applied_version: Cell<i64>,
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
        let config = EffectiveConfig { static_config: &settings.static_config, dynamic: &dynamic };
        let group_config = GroupConfig {
            initial_rebalance_delay: Duration::from_millis(config.get(broker::GROUP_INITIAL_REBALANCE_DELAY_MS) as u64),
            min_session_timeout_ms: config.get(broker::GROUP_MIN_SESSION_TIMEOUT_MS),
            max_session_timeout_ms: config.get(broker::GROUP_MAX_SESSION_TIMEOUT_MS),
            max_size: config.get(broker::GROUP_MAX_SIZE) as usize,
            offset_metadata_max_bytes: config.get(broker::OFFSET_METADATA_MAX_BYTES) as usize,
            offsets_retention_ms: i64::from(config.get(broker::OFFSETS_RETENTION_MINUTES)).saturating_mul(60_000),
        };
        Rc::new(Shard {
            coordinator: Coordinator::new(group_config),
            loaded_offsets_partitions: RefCell::new(HashSet::new()),
            id,
            settings,
            manager,
            image: RefCell::new(Arc::new(ClusterImage::default())),
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_call_id: Cell::new(0),
            controller: RefCell::new(None),
            connections: Cell::new(0),
            applied_version: Cell::new(0),
        })
    }

    pub fn shards(&self) -> usize {
        self.settings.shards
    }

    pub fn image(&self) -> SharedImage {
        self.image.borrow().clone()
    }

    /// Version of the last image this shard has fully applied: its partitions opened, configs set. The image
    /// itself ([`Shard::image`]) is installed before that work starts.
    pub fn applied_version(&self) -> i64 {
        self.applied_version.get()
    }

    pub fn set_controller(&self, controller: Rc<Controller>) {
        *self.controller.borrow_mut() = Some(controller);
    }

    /// The controller; present on shard 0 only.
    pub fn controller(&self) -> Option<Rc<Controller>> {
        self.controller.borrow().clone()
    }

    /// Runs `f` with the broker configuration in effect (static values plus the image's dynamic ones).
    pub fn with_config<R>(&self, image: &ClusterImage, f: impl FnOnce(EffectiveConfig<'_>) -> R) -> R {
        f(EffectiveConfig { static_config: &self.settings.static_config, dynamic: &image.broker_configs })
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

    /// Kafka's leader-epoch fencing: an older epoch than the leader's is fenced, a newer one is unknown here.
    pub fn check_leader_epoch(&self, topic: &str, partition: i32, current: i32) -> Option<ResponseError> {
        if current < 0 {
            return None;
        }
        let image = self.image();
        let epoch = image.partition(topic, partition)?.leader_epoch;
        match current.cmp(&epoch) {
            std::cmp::Ordering::Less => Some(ResponseError::FencedLeaderEpoch),
            std::cmp::Ordering::Greater => Some(ResponseError::UnknownLeaderEpoch),
            std::cmp::Ordering::Equal => None,
        }
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

    /// Commits `records` through the controller, releases its write lock, and publishes the new image to
    /// every shard: the tail of every admin change. Returns the committed image.
    pub async fn commit_and_publish(
        self: &Rc<Self>,
        controller: &Controller,
        guard: WriteGuard,
        records: Vec<MetadataRecord>,
    ) -> Result<SharedImage, ControllerError> {
        let image = controller.commit(&guard, records).await?;
        drop(guard);
        self.publish(image.clone()).await;
        Ok(image)
    }

    /// Sends `image` to every shard and waits until each has applied it.
    pub async fn publish(self: &Rc<Self>, image: SharedImage) {
        let calls = (0..self.shards()).map(|target| {
            let image = image.clone();
            self.run_on(target, move |shard| async move { shard.apply_image(image).await })
        });
        futures::future::join_all(calls).await;
    }

    /// Installs a new image: deletes the logs of topics that are gone (or were recreated under a new id),
    /// opens the partitions this shard now owns, and applies changed configs live.
    pub async fn apply_image(self: &Rc<Self>, image: SharedImage) {
        let old = self.image.replace(image.clone());
        if old.version > image.version {
            // Images arrive in commit order from one writer; an older one is a bug upstream.
            *self.image.borrow_mut() = old;
            return;
        }
        let removed: Vec<TopicPartition> = old
            .topics
            .values()
            .filter(|topic| image.topic(&topic.name).is_none_or(|new| new.topic_id != topic.topic_id))
            .flat_map(|topic| (0..topic.partitions.len() as i32).map(|p| TopicPartition::new(topic.name.clone(), p)))
            .filter(|tp| self.owner(&tp.topic, tp.partition) == self.id)
            .collect();
        for tp in removed {
            if let Err(error) = self.manager.delete_log(&tp).await {
                tracing::error!(partition = %tp.dir_name(), %error, "deleting a partition of a deleted topic failed");
            }
        }
        let mut to_open = Vec::new();
        for topic in image.topics.values() {
            let config = self.with_config(&image, |config| config.log_config(&topic.configs));
            for partition in 0..topic.partitions.len() as i32 {
                if self.owner(&topic.name, partition) != self.id {
                    continue;
                }
                let tp = TopicPartition::new(topic.name.clone(), partition);
                match self.manager.get(&tp) {
                    Some(log) if log.config() != config => log.set_config(config.clone()),
                    Some(_) => {}
                    None if self.manager.offline_reason(&tp).is_some() => {}
                    None => to_open.push((tp, config.clone())),
                }
            }
        }
        let manager = self.manager.clone();
        stream::iter(to_open)
            .for_each_concurrent(OPEN_CONCURRENCY, |(tp, config)| {
                let manager = manager.clone();
                self.assert_owner(&tp.topic, tp.partition);
                async move {
                    match manager.open_log(&tp, config).await {
                        Ok(log) => log.set_high_watermark_follows_durable(true),
                        Err(error) => {
                            tracing::error!(partition = %tp.dir_name(), %error, "partition is offline")
                        }
                    }
                }
            })
            .await;
        self.load_group_partitions(&image).await;
        self.applied_version.set(self.applied_version.get().max(image.version));
    }

    /// Loads the `__consumer_offsets` partitions this shard owns and has not loaded yet into its coordinator.
    async fn load_group_partitions(&self, image: &ClusterImage) {
        let Some(topic) = image.topic(OFFSETS_TOPIC) else { return };
        self.coordinator.set_offsets_partitions(topic.partitions.len() as i32);
        for partition in 0..topic.partitions.len() as i32 {
            if self.owner(OFFSETS_TOPIC, partition) != self.id
                || self.loaded_offsets_partitions.borrow().contains(&partition)
            {
                continue;
            }
            let Some(log) = self.manager.get(&TopicPartition::new(OFFSETS_TOPIC, partition)) else { continue };
            match self.coordinator.load_partition(partition, log).await {
                Ok(records) => {
                    self.loaded_offsets_partitions.borrow_mut().insert(partition);
                    if records > 0 {
                        tracing::info!(shard = self.id, partition, records, "loaded consumer groups");
                    }
                }
                Err(error) => tracing::error!(partition, %error, "could not load consumer groups"),
            }
        }
    }

    /// Creates `__consumer_offsets` on first start (shard 0, with the controller).
    pub async fn ensure_internal_topics(self: &Rc<Self>, controller: &Controller) -> Result<(), ControllerError> {
        let image = controller.image();
        if image.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let partitions = self.with_config(&image, |config| config.get(broker::OFFSETS_TOPIC_NUM_PARTITIONS)) as usize;
        let configs = [("retention.ms", "-1"), ("segment.bytes", "104857600"), ("flush.policy", "always")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let record = MetadataRecord::CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            topic_id: new_topic_id(),
            partitions: vec![PartitionImage::new(vec![self.settings.node_id]); partitions],
            configs,
        };
        let guard = controller.lock().await?;
        controller.commit(&guard, vec![record]).await?;
        Ok(())
    }

    /// Group housekeeping: session expiry every 100 ms, offset expiry and log trimming every
    /// `offsets.retention.check.interval.ms`.
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
            loop {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                shard.coordinator.expire_members();
                if last_check.elapsed() >= check_every {
                    last_check = std::time::Instant::now();
                    shard.coordinator.expire_offsets().await;
                    shard.coordinator.trim().await;
                }
            }
        })
        .detach();
    }

    /// Partition directories on disk that this shard owns but the image does not know (a topic deleted just
    /// before a crash): renamed aside with a warning, never opened and never silently deleted.
    pub async fn set_aside_orphans(&self) {
        let image = self.image();
        let Ok(found) = sluice_engine::manager::discover_partitions(&self.settings.data_dir) else {
            return;
        };
        for tp in found {
            if tp.topic == METADATA_TOPIC || self.owner(&tp.topic, tp.partition) != self.id {
                continue;
            }
            if image.partition(&tp.topic, tp.partition).is_some() {
                continue;
            }
            let from = self.settings.data_dir.join(tp.dir_name());
            let to =
                self.settings.data_dir.join(format!("{}.{}-orphaned", tp.dir_name(), sluice_engine::types::now_ms()));
            tracing::warn!(from = %from.display(), to = %to.display(), "partition directory not in the metadata log; set aside");
            if let Err(error) = glommio::io::rename(&from, &to).await {
                tracing::error!(path = %from.display(), %error, "could not set an orphaned partition aside");
            }
        }
    }
}
