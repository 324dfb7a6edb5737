//! The cluster on the network side: wiring each shard's replica manager to its transports, and shard 0's
//! control plane to the controller listener and to the other shards.
//!
//! - Every shard gets a [`ReplicaManager`] whose follower fetches go out as Kafka Fetch requests
//!   ([`ReplicaFetchClient`]) and whose ISR changes go to the active controller through shard 0.
//! - Shard 0 starts the node's control plane ([`ClusterNode`]), serves the controller listener with it, and
//!   publishes every newly applied metadata image to all shards, in order ([`spawn_publisher`]).

use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use sluice_replication::config::broker;
use sluice_replication::controller::commands::{
    AdminError, AdminErrorKind, AdminResult, AlterPartition, ControllerRequest, ControllerResponse,
};
use sluice_replication::metadata::{PartitionImage, SharedImage};
use sluice_replication::node::ClusterNode;
use sluice_replication::replica::{IsrChannel, ReplicaManager, ReplicaSettings};
use sluice_replication::transport::LocalFuture;

use crate::replica_fetch::ReplicaFetchClient;
use crate::shard::Shard;

/// Sends a leader's ISR changes to the active controller.
struct ControllerIsr(Weak<Shard>);

impl IsrChannel for ControllerIsr {
    fn alter_partition(&self, request: AlterPartition) -> LocalFuture<'_, AdminResult<PartitionImage>> {
        Box::pin(async move {
            let shard = self
                .0
                .upgrade()
                .ok_or_else(|| AdminError::new(AdminErrorKind::Unavailable, "the shard is stopping"))?;
            match shard.controller_call(ControllerRequest::AlterPartition(request)).await? {
                ControllerResponse::AlterPartition(state) => Ok(state),
                other => Err(AdminError::new(AdminErrorKind::Unavailable, format!("unexpected answer {other:?}"))),
            }
        })
    }
}

/// Replication settings from the broker configuration (Kafka's `replica.*` keys).
pub fn replica_settings(shard: &Shard) -> ReplicaSettings {
    let image = shard.image();
    shard.with_config(&image, |config| ReplicaSettings {
        lag_time_max: Duration::from_millis(
            u64::try_from(config.get(broker::REPLICA_LAG_TIME_MAX_MS)).unwrap_or(10_000),
        ),
        fetch_partition_max_bytes: config.get(broker::REPLICA_FETCH_MAX_BYTES),
        fetch_response_max_bytes: config.get(broker::REPLICA_FETCH_RESPONSE_MAX_BYTES),
        fetch_wait_max: Duration::from_millis(
            u64::try_from(config.get(broker::REPLICA_FETCH_WAIT_MAX_MS)).unwrap_or(500),
        ),
        fetch_backoff: Duration::from_millis(
            u64::try_from(config.get(broker::REPLICA_FETCH_BACKOFF_MS)).unwrap_or(1000),
        ),
    })
}

/// Gives a shard its replica manager: follower fetches over Kafka's Fetch, ISR changes through shard 0.
pub fn start_replicas(shard: &Rc<Shard>) -> Rc<ReplicaManager> {
    let weak = Rc::downgrade(shard);
    let image = Rc::new(move || weak.upgrade().map_or_else(SharedImage::default, |shard| shard.image()));
    let fetches = ReplicaFetchClient::new(shard.node_id(), image);
    let replicas = ReplicaManager::new(
        shard.node_id(),
        replica_settings(shard),
        fetches,
        Rc::new(ControllerIsr(Rc::downgrade(shard))),
    );
    shard.set_replicas(replicas.clone());
    replicas
}

/// Publishes every image the control plane applies to all shards, newest first when several arrived during
/// one publication; each carries the controller id clients are told about.
pub fn spawn_publisher(shard: &Rc<Shard>, node: Rc<ClusterNode>) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut published = 0i64;
        let mut published_epoch = -1i64;
        loop {
            let next = node.applied_version().max(published + 1);
            // Also wake when this broker registers: its epoch decides whether its replicas may act.
            node.wait_for_version(next, Duration::from_millis(100)).await;
            let epoch = node.lifecycle().map_or(-1, |lifecycle| lifecycle.broker_epoch());
            if node.applied_version() <= published && epoch == published_epoch {
                continue;
            }
            published_epoch = epoch;
            let mut image = (*node.image()).clone();
            // Clients send admin requests to this id: the active controller if it is a live broker (every
            // broker forwards, so any would do), else this broker.
            image.controller_id = node
                .active_controller()
                .filter(|id| image.brokers.get(id).is_some_and(|b| !b.fenced))
                .unwrap_or(shard.node_id());
            image.local_broker_epoch = node.lifecycle().map_or(-1, |lifecycle| lifecycle.broker_epoch());
            published = image.version;
            shard.publish(Arc::new(image)).await;
        }
    })
    .detach();
}
