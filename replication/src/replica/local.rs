//! One local replica of a partition and the role this broker plays for it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sluice_engine::{PartitionLog, TopicPartition};

use super::leader::LeaderState;
use super::throttle::ReplicaPolicy;
use crate::metadata::NodeId;

/// One local replica.
pub struct Replica {
    pub tp: TopicPartition,
    pub log: Rc<PartitionLog>,
    pub(super) role: RefCell<Role>,
    /// Its topic's `min.insync.replicas` and replication throttles, as of the last image.
    pub(super) policy: Cell<ReplicaPolicy>,
}

pub(super) enum Role {
    Leader(Rc<LeaderState>),
    Follower {
        leader: NodeId,
        leader_epoch: i32,
    },
    /// In the replica set but the partition has no leader.
    Offline,
}

impl Replica {
    pub fn policy(&self) -> ReplicaPolicy {
        self.policy.get()
    }

    pub fn leader(&self) -> Option<Rc<LeaderState>> {
        match &*self.role.borrow() {
            Role::Leader(state) => Some(state.clone()),
            _ => None,
        }
    }
}
