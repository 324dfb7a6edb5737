//! One partition's state in the image: replicas, ISR, leader and epochs, and a reassignment in progress.

use serde::{Deserialize, Serialize};

use super::names::NodeId;

/// No leader: the partition is offline.
pub const NO_LEADER: NodeId = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Assigned replicas in preference order: the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// [`NO_LEADER`] when offline.
    pub leader: NodeId,
    /// Bumped at every leader change (and so at every change that needs followers to re-check the leader).
    pub leader_epoch: i32,
    /// Bumped at every change of this partition's state; AlterPartition requests must name the current one.
    #[serde(default)]
    pub partition_epoch: i32,
    /// Replicas being added by a reassignment (they are in `replicas` too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<NodeId>,
    /// Replicas being removed by a reassignment (they are in `replicas` until it completes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<NodeId>,
}

impl PartitionImage {
    /// A new partition on `replicas`, led by the first, with every replica in sync.
    pub fn new(replicas: Vec<NodeId>) -> Self {
        let leader = replicas.first().copied().unwrap_or(NO_LEADER);
        PartitionImage {
            isr: replicas.clone(),
            replicas,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    pub fn is_offline(&self) -> bool {
        self.leader == NO_LEADER
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas the partition ends with once a reassignment completes.
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r)).collect()
    }
}
