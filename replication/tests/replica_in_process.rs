//! Two brokers' replica managers in one process, joined by a fetch transport that calls the leader directly
//! and an ISR channel that plays the controller: replication copies the leader's batches exactly, the high
//! watermark waits for the follower's durable offset, a follower that diverged after a leader change
//! truncates to the divergence point (never blindly to the high watermark), and a follower that stops
//! fetching leaves the ISR and comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_engine::batch::simple_batch;
use sluice_engine::{
    AppendMode, LeaderEpoch, LogConfig, LogManager, ManagerOptions, Offset, PartitionLog, TopicPartition,
};
use sluice_replication::controller::commands::{AdminResult, AlterPartition};
use sluice_replication::controller::partitions::alter_isr;
use sluice_replication::metadata::{ClusterImage, MetadataRecord, NodeId, PartitionImage, SharedImage};
use sluice_replication::replica::{
    FetchRequest, FetchResponse, FetchTransport, FetchedPartition, IsrChannel, ReplicaError, ReplicaManager,
    ReplicaPolicy, ReplicaSettings, ThrottleRates,
};
use sluice_replication::transport::{LocalFuture, TransportError};

struct Broker {
    manager: Rc<LogManager>,
    replicas: Rc<ReplicaManager>,
    log: Rc<PartitionLog>,
}

/// The brokers, the image they share, and the controller's part in it.
#[derive(Default)]
struct World {
    brokers: RefCell<BTreeMap<NodeId, Broker>>,
    image: RefCell<ClusterImage>,
    /// Brokers whose fetches fail (a paused follower).
    silent: RefCell<Vec<NodeId>>,
}

struct Direct(Weak<World>, NodeId);

impl FetchTransport for Direct {
    fn fetch(&self, leader: NodeId, request: FetchRequest) -> LocalFuture<'_, Result<FetchResponse, TransportError>> {
        Box::pin(async move {
            let world = self.0.upgrade().unwrap();
            if world.silent.borrow().contains(&self.1) {
                glommio::timer::sleep(Duration::from_millis(50)).await;
                return Err(TransportError::Unreachable { node: leader, reason: "paused".into() });
            }
            let (replicas, log) = {
                let brokers = world.brokers.borrow();
                let broker = brokers.get(&leader).unwrap();
                (broker.replicas.clone(), broker.log.clone())
            };
            let mut partitions = Vec::new();
            for partition in &request.partitions {
                let answer = replicas.follower_fetch(request.replica, request.broker_epoch, partition);
                let fetched = match answer {
                    Ok(read) if read.diverging.is_some() => FetchedPartition {
                        tp: partition.tp.clone(),
                        error: None,
                        high_watermark: read.high_watermark.0,
                        log_start_offset: read.log_start.0,
                        diverging_epoch: read.diverging,
                        records: Bytes::new(),
                    },
                    Ok(read) => {
                        let bytes = log
                            .read_bytes(
                                Offset(partition.fetch_offset),
                                partition.max_bytes as usize,
                                log.log_end_offset(),
                            )
                            .await
                            .unwrap();
                        FetchedPartition {
                            tp: partition.tp.clone(),
                            error: None,
                            high_watermark: read.high_watermark.0,
                            log_start_offset: read.log_start.0,
                            diverging_epoch: None,
                            records: Bytes::from(bytes),
                        }
                    }
                    Err(error) => FetchedPartition {
                        tp: partition.tp.clone(),
                        error: Some(error),
                        high_watermark: log.high_watermark().0,
                        log_start_offset: log.log_start_offset().0,
                        diverging_epoch: None,
                        records: Bytes::new(),
                    },
                };
                partitions.push(fetched);
            }
            if partitions.iter().all(|p| p.records.is_empty() && p.diverging_epoch.is_none()) {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            Ok(FetchResponse { partitions })
        })
    }
}

struct Controller(Weak<World>);

impl IsrChannel for Controller {
    fn alter_partition(&self, request: AlterPartition) -> LocalFuture<'_, AdminResult<PartitionImage>> {
        Box::pin(async move {
            let world = self.0.upgrade().unwrap();
            let next = {
                let image = world.image.borrow();
                let state = image.partition(&request.topic, request.partition).unwrap().clone();
                alter_isr(&image, &state, &request, &*image)?
            };
            world.set_partition(next.clone()).await;
            Ok(next)
        })
    }
}

const TOPIC: &str = "t";

impl World {
    async fn set_partition(&self, state: PartitionImage) {
        let version = self.image.borrow().version + 1;
        self.image
            .borrow_mut()
            .apply_entry(version, &[MetadataRecord::PartitionChange { topic: TOPIC.into(), partition: 0, state }]);
        self.publish().await;
    }

    async fn publish(&self) {
        let brokers: Vec<(NodeId, Rc<ReplicaManager>, Rc<PartitionLog>)> =
            self.brokers.borrow().iter().map(|(id, b)| (*id, b.replicas.clone(), b.log.clone())).collect();
        for (node, replicas, log) in brokers {
            // Each broker's copy names its own registration, as a node's publisher does.
            let mut image = self.image.borrow().clone();
            image.local_broker_epoch = image.brokers[&node].epoch;
            let image: SharedImage = Arc::new(image);
            replicas.apply_image(image, vec![(log, ReplicaPolicy::unthrottled(2))], ThrottleRates::NONE).await;
        }
    }

    fn log(&self, node: NodeId) -> Rc<PartitionLog> {
        self.brokers.borrow()[&node].log.clone()
    }
}

async fn world(root: &std::path::Path, lag: Duration) -> Rc<World> {
    let world = Rc::new(World::default());
    let mut image = ClusterImage::default();
    let mut records = Vec::new();
    for node in [1, 2] {
        records.push(MetadataRecord::RegisterBroker {
            node_id: node,
            incarnation_id: "i".into(),
            host: "h".into(),
            port: 1,
            rack: None,
        });
    }
    image.apply_entry(1, &records);
    image.apply_entry(
        2,
        &[
            MetadataRecord::UnfenceBroker { node_id: 1, broker_epoch: 1 },
            MetadataRecord::UnfenceBroker { node_id: 2, broker_epoch: 1 },
            MetadataRecord::CreateTopic {
                name: TOPIC.into(),
                topic_id: 1,
                partitions: vec![PartitionImage::new(vec![1, 2])],
                configs: BTreeMap::new(),
            },
        ],
    );
    *world.image.borrow_mut() = image;
    let settings = ReplicaSettings {
        lag_time_max: lag,
        fetch_partition_max_bytes: 1 << 20,
        fetch_response_max_bytes: 4 << 20,
        fetch_wait_max: Duration::from_millis(50),
        fetch_backoff: Duration::from_millis(20),
    };
    for node in [1, 2] {
        let manager = LogManager::new(root.join(format!("n{node}")), ManagerOptions::default(), false);
        manager.spawn_background();
        let log = manager.open_log(&TopicPartition::new(TOPIC, 0), LogConfig::default()).await.unwrap();
        let replicas = ReplicaManager::new(
            node,
            settings.clone(),
            Rc::new(Direct(Rc::downgrade(&world), node)),
            Rc::new(Controller(Rc::downgrade(&world))),
        );
        world.brokers.borrow_mut().insert(node, Broker { manager, replicas, log });
    }
    world.publish().await;
    world
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

fn run(
    test: impl FnOnce(std::path::PathBuf) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static,
) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    ex.run(test(root));
}

async fn produce(log: &Rc<PartitionLog>, epoch: i32, count: usize) -> Offset {
    let info = log
        .append(
            simple_batch(count, 32, sluice_engine::types::now_ms()),
            AppendMode::Client { leader_epoch: LeaderEpoch(epoch) },
        )
        .await
        .unwrap();
    info.last_offset.next()
}

async fn shutdown(world: &World) {
    let managers: Vec<Rc<LogManager>> = world.brokers.borrow().values().map(|b| b.manager.clone()).collect();
    for manager in managers {
        manager.shutdown().await.unwrap();
    }
}

async fn bytes_of(log: &Rc<PartitionLog>) -> Vec<u8> {
    log.read_bytes(log.log_start_offset(), 64 << 20, log.log_end_offset()).await.unwrap()
}

#[test]
fn followers_copy_exactly_and_the_high_watermark_waits_for_them() {
    run(|root| {
        Box::pin(async move {
            let world = world(&root, Duration::from_secs(30)).await;
            let (leader, follower) = (world.log(1), world.log(2));
            let end = produce(&leader, 0, 10).await;
            eventually("the follower copied the batch", || follower.log_end_offset() == end).await;
            eventually("the high watermark covered it", || leader.high_watermark() == end).await;
            assert_eq!(bytes_of(&leader).await, bytes_of(&follower).await, "the follower's bytes differ");
            eventually("the follower learned the high watermark", || follower.high_watermark() == end).await;
            // A silent follower holds the high watermark back: acks=all cannot complete without it.
            world.silent.borrow_mut().push(2);
            let end2 = produce(&leader, 0, 5).await;
            glommio::timer::sleep(Duration::from_millis(200)).await;
            assert_eq!(leader.high_watermark(), end, "the high watermark passed a record the follower lacks");
            world.silent.borrow_mut().clear();
            eventually("the follower caught up", || leader.high_watermark() == end2).await;
            shutdown(&world).await;
        })
    });
}

#[test]
fn a_diverged_follower_truncates_to_the_divergence_point_after_a_leader_change() {
    run(|root| {
        Box::pin(async move {
            let world = world(&root, Duration::from_secs(30)).await;
            let (one, two) = (world.log(1), world.log(2));
            let committed = produce(&one, 0, 10).await;
            eventually("replicated", || one.high_watermark() == committed).await;
            // Broker 2 stops fetching, and broker 1 appends what 2 never gets (acks=1 writes).
            world.silent.borrow_mut().push(2);
            let orphaned = produce(&one, 0, 5).await;
            assert!(orphaned > committed);
            // The controller makes 2 the leader at epoch 1; it writes in its own epoch.
            let mut state = world.image.borrow().partition(TOPIC, 0).unwrap().clone();
            state.leader = 2;
            state.leader_epoch = 1;
            state.partition_epoch += 1;
            world.set_partition(state).await;
            world.silent.borrow_mut().clear();
            let end = produce(&two, 1, 3).await;
            assert_eq!(end, Offset(13));
            // Broker 1 follows 2, finds where they diverge, cuts its orphaned records and copies 2's.
            eventually("broker 1 converged on broker 2's log", || one.log_end_offset() == end).await;
            assert_eq!(bytes_of(&one).await, bytes_of(&two).await);
            assert_eq!(one.end_offset_for_epoch(LeaderEpoch(0)), (LeaderEpoch(0), committed));
            shutdown(&world).await;
        })
    });
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_returns_once_caught_up() {
    run(|root| {
        Box::pin(async move {
            let world = world(&root, Duration::from_millis(300)).await;
            let leader = world.log(1);
            produce(&leader, 0, 3).await;
            world.silent.borrow_mut().push(2);
            produce(&leader, 0, 3).await;
            eventually("the ISR shrank to the leader", || {
                world.image.borrow().partition(TOPIC, 0).unwrap().isr == vec![1]
            })
            .await;
            // With the ISR at the leader alone (min.insync.replicas 2 asked, 2 replicas): the high watermark
            // stays frozen below min ISR.
            let frozen = leader.high_watermark();
            produce(&leader, 0, 3).await;
            glommio::timer::sleep(Duration::from_millis(100)).await;
            assert_eq!(leader.high_watermark(), frozen);
            world.silent.borrow_mut().clear();
            eventually("the follower rejoined the ISR", || {
                world.image.borrow().partition(TOPIC, 0).unwrap().isr.len() == 2
            })
            .await;
            eventually("the high watermark moved again", || leader.high_watermark() == leader.log_end_offset()).await;
            let _ = ReplicaError::NotLeader;
            shutdown(&world).await;
        })
    });
}
