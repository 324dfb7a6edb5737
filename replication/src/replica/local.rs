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

    /// Changes the role. A leadership that ends (to any other role, or to a new leadership) resigns, which
    /// answers the acks=all writes still waiting on it with NOT_LEADER_OR_FOLLOWER: once deposed, its log may be
    /// truncated and its high watermark is the new leader's, so reaching an offset no longer means the write is
    /// committed.
    pub(super) fn set_role(&self, role: Role) {
        let old = std::mem::replace(&mut *self.role.borrow_mut(), role);
        if let Role::Leader(old) = old {
            let kept = matches!(&*self.role.borrow(), Role::Leader(new) if Rc::ptr_eq(new, &old));
            if !kept {
                old.resign();
            }
        }
    }

    pub fn leader(&self) -> Option<Rc<LeaderState>> {
        match &*self.role.borrow() {
            Role::Leader(state) => Some(state.clone()),
            _ => None,
        }
    }
}
