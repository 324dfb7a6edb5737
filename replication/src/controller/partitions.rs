//! Partition state changes: leader elections, ISR changes from leaders (AlterPartition), reassignments and
//! preferred-leader moves. Pure functions from the image to the partition's next state.
//!
//! Rules (Kafka's KRaft controller, `PartitionChangeBuilder`):
//! - The leader is the first replica, in replica order, that is in the ISR and active (registered, unfenced,
//!   not shutting down). With none, the partition is offline (leader [`NO_LEADER`]) unless unclean election
//!   is allowed, which picks the first active replica and makes it the whole ISR.
//! - A broker that is fenced or shutting down leaves the ISR, except the last member, which stays so that it
//!   alone is eligible when it comes back (nothing outside the ISR may lead without an unclean election).
//! - Every change bumps the partition epoch; a leader change also bumps the leader epoch. Neither goes back.
//! - A reassignment completes once every added replica is in the ISR: the removed replicas go, and the leader
//!   moves if it was one of them.

use crate::metadata::{ClusterImage, NodeId, PartitionImage, NO_LEADER};

use super::commands::{AdminError, AdminErrorKind, AdminResult, AlterPartition, Reassignment};

/// Who may stay in an ISR and who may lead, as of the change being planned.
pub trait Eligibility {
    /// May stay in (or join) the ISR: registered and unfenced, not shutting down.
    fn in_sync_eligible(&self, node: NodeId) -> bool;
}

impl Eligibility for ClusterImage {
    fn in_sync_eligible(&self, node: NodeId) -> bool {
        self.is_active_broker(node)
    }
}

/// An election's outcome beyond the new state: whether it was unclean (to be logged loudly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub state: PartitionImage,
    pub unclean: bool,
}

/// The partition's state after the brokers' eligibility changed: ineligible members leave the ISR (all but the
/// last), and a new leader is elected if the leader left or there was none. `None` if nothing changes.
pub fn reelect(state: &PartitionImage, who: &impl Eligibility, unclean_allowed: bool) -> Option<Change> {
    let mut next = state.clone();
    let kept: Vec<NodeId> = state.isr.iter().copied().filter(|r| who.in_sync_eligible(*r)).collect();
    next.isr = if kept.is_empty() {
        // Keep the last member: it alone may lead again without an unclean election.
        let last = if state.isr.contains(&state.leader) { Some(state.leader) } else { state.isr.first().copied() };
        last.into_iter().collect()
    } else {
        kept
    };
    let mut unclean = false;
    let leader_ok = next.leader != NO_LEADER && next.isr.contains(&next.leader) && who.in_sync_eligible(next.leader);
    if !leader_ok {
        let clean = next.replicas.iter().copied().find(|r| next.isr.contains(r) && who.in_sync_eligible(*r));
        next.leader = match clean {
            Some(leader) => leader,
            None if unclean_allowed => match next.replicas.iter().copied().find(|r| who.in_sync_eligible(*r)) {
                Some(leader) => {
                    unclean = true;
                    next.isr = vec![leader];
                    leader
                }
                None => NO_LEADER,
            },
            None => NO_LEADER,
        };
    }
    finish(state, next).map(|state| Change { state, unclean })
}

/// Bumps the epochs of a changed state; `None` if it did not change.
fn finish(old: &PartitionImage, mut next: PartitionImage) -> Option<PartitionImage> {
    if next == *old {
        return None;
    }
    if next.leader != old.leader {
        next.leader_epoch = old.leader_epoch + 1;
    }
    next.partition_epoch = old.partition_epoch + 1;
    Some(next)
}

/// Moves leadership back to the preferred replica (the first) when it is in the ISR and active.
pub fn prefer_leader(state: &PartitionImage, who: &impl Eligibility) -> Option<PartitionImage> {
    let preferred = *state.replicas.first()?;
    if state.leader == preferred || !state.isr.contains(&preferred) || !who.in_sync_eligible(preferred) {
        return None;
    }
    let mut next = state.clone();
    next.leader = preferred;
    finish(state, next)
}

/// Completes a reassignment whose added replicas are all in the ISR. `None` if there is none or it must wait.
fn complete_reassignment(state: &PartitionImage, who: &impl Eligibility) -> Option<PartitionImage> {
    if !state.is_reassigning() || !state.adding.iter().all(|r| state.isr.contains(r)) {
        return None;
    }
    let target = state.target_replicas();
    let isr: Vec<NodeId> = state.isr.iter().copied().filter(|r| target.contains(r)).collect();
    if isr.is_empty() {
        return None;
    }
    let mut next = state.clone();
    next.replicas = target;
    next.isr = isr;
    next.adding.clear();
    next.removing.clear();
    if !next.isr.contains(&next.leader) {
        next.leader = next.replicas.iter().copied().find(|r| next.isr.contains(r) && who.in_sync_eligible(*r))?;
    }
    Some(next)
}

/// A leader's ISR change (Kafka's AlterPartition), checked against the current state: the sender must be
/// the leader at the named leader epoch, the partition epoch must be current, and every ISR member must be an
/// eligible replica. A reassignment waiting for the new ISR completes in the same change.
pub fn alter_isr(
    image: &ClusterImage,
    state: &PartitionImage,
    request: &AlterPartition,
    who: &impl Eligibility,
) -> AdminResult<PartitionImage> {
    let registered_epoch = image.brokers.get(&request.leader).map(|b| b.epoch);
    if registered_epoch != Some(request.broker_epoch) {
        return Err(AdminError::new(
            AdminErrorKind::StaleBrokerEpoch,
            format!(
                "broker {} epoch {} is not the registered {:?}",
                request.leader, request.broker_epoch, registered_epoch
            ),
        ));
    }
    if state.leader != request.leader {
        return Err(AdminError::new(
            AdminErrorKind::NotLeaderOrFollower,
            format!("broker {} is not the leader (the leader is {})", request.leader, state.leader),
        ));
    }
    if request.leader_epoch != state.leader_epoch {
        return Err(AdminError::new(
            AdminErrorKind::FencedLeaderEpoch,
            format!("leader epoch {} is not the current {}", request.leader_epoch, state.leader_epoch),
        ));
    }
    if request.partition_epoch != state.partition_epoch {
        return Err(AdminError::new(
            AdminErrorKind::InvalidUpdateVersion,
            format!("partition epoch {} is not the current {}", request.partition_epoch, state.partition_epoch),
        ));
    }
    if !request.new_isr.contains(&request.leader) {
        return Err(AdminError::new(AdminErrorKind::InvalidRequest, "the leader must stay in the ISR"));
    }
    for member in &request.new_isr {
        if !state.replicas.contains(member) {
            return Err(AdminError::new(
                AdminErrorKind::IneligibleReplica,
                format!("broker {member} is not a replica"),
            ));
        }
        let joining = !state.isr.contains(member);
        if joining && !who.in_sync_eligible(*member) {
            return Err(AdminError::new(
                AdminErrorKind::IneligibleReplica,
                format!("broker {member} is fenced or shutting down and may not join the ISR"),
            ));
        }
    }
    let mut next = state.clone();
    next.isr = dedup(&request.new_isr);
    let next = complete_reassignment(&next, who).unwrap_or(next);
    Ok(finish(state, next.clone()).unwrap_or(next))
}

/// Starts or cancels a reassignment. During one, `replicas` is the target followed by the replicas being
/// removed; a reassignment that only removes replicas completes at once when the ISR allows.
pub fn reassign(image: &ClusterImage, state: &PartitionImage, request: &Reassignment) -> AdminResult<PartitionImage> {
    let mut next = state.clone();
    match &request.replicas {
        None => {
            if !state.is_reassigning() {
                return Err(AdminError::new(AdminErrorKind::NoReassignmentInProgress, "no reassignment to cancel"));
            }
            next.replicas = state.replicas.iter().copied().filter(|r| !state.adding.contains(r)).collect();
            next.isr = state.isr.iter().copied().filter(|r| next.replicas.contains(r)).collect();
            next.adding.clear();
            next.removing.clear();
            if next.isr.is_empty() {
                return Err(AdminError::new(
                    AdminErrorKind::InvalidReplicaAssignment,
                    "cancelling would empty the ISR",
                ));
            }
        }
        Some(target) => {
            let target = dedup(target);
            if target.len() != request.replicas.as_ref().map_or(0, Vec::len) || target.is_empty() {
                return Err(AdminError::new(
                    AdminErrorKind::InvalidReplicaAssignment,
                    "the target replica list is empty or names a broker twice",
                ));
            }
            if let Some(unknown) = target.iter().find(|r| !image.brokers.contains_key(r)) {
                return Err(AdminError::new(
                    AdminErrorKind::InvalidReplicaAssignment,
                    format!("broker {unknown} is not registered"),
                ));
            }
            // The original replicas, before any reassignment in progress.
            let original: Vec<NodeId> = state.replicas.iter().copied().filter(|r| !state.adding.contains(r)).collect();
            next.adding = target.iter().copied().filter(|r| !original.contains(r)).collect();
            next.removing = original.iter().copied().filter(|r| !target.contains(r)).collect();
            next.replicas = target.iter().chain(next.removing.iter()).copied().collect();
            next.isr = state.isr.iter().copied().filter(|r| next.replicas.contains(r)).collect();
            if next.isr.is_empty() {
                return Err(AdminError::new(AdminErrorKind::InvalidReplicaAssignment, "the ISR would be empty"));
            }
        }
    }
    if let Some(done) = complete_reassignment(&next, image) {
        next = done;
    }
    if !next.isr.contains(&next.leader) {
        next.leader = next
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && image.in_sync_eligible(*r))
            .unwrap_or(NO_LEADER);
    }
    Ok(finish(state, next.clone()).unwrap_or(next))
}

fn dedup(list: &[NodeId]) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(list.len());
    for id in list {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    struct Alive(BTreeSet<NodeId>);
    impl Eligibility for Alive {
        fn in_sync_eligible(&self, node: NodeId) -> bool {
            self.0.contains(&node)
        }
    }

    fn alive(ids: &[NodeId]) -> Alive {
        Alive(ids.iter().copied().collect())
    }

    #[test]
    fn a_fenced_leader_is_replaced_from_the_isr_with_new_epochs() {
        let state = PartitionImage::new(vec![1, 2, 3]);
        let change = reelect(&state, &alive(&[2, 3]), false).unwrap();
        assert_eq!(change.state.leader, 2);
        assert_eq!(change.state.isr, vec![2, 3]);
        assert_eq!((change.state.leader_epoch, change.state.partition_epoch), (1, 1));
        assert!(!change.unclean);
        // A fenced follower only leaves the ISR: partition epoch only.
        let change = reelect(&state, &alive(&[1, 2]), false).unwrap();
        assert_eq!((change.state.leader, change.state.leader_epoch, change.state.partition_epoch), (1, 0, 1));
        assert!(reelect(&state, &alive(&[1, 2, 3]), false).is_none());
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_goes_offline() {
        let mut state = PartitionImage::new(vec![1, 2]);
        state.isr = vec![1];
        let change = reelect(&state, &alive(&[2]), false).unwrap();
        assert_eq!(change.state.leader, NO_LEADER);
        assert_eq!(change.state.isr, vec![1], "the last ISR member stays eligible");
        // It comes back: it leads again.
        let back = reelect(&change.state, &alive(&[1, 2]), false).unwrap();
        assert_eq!(back.state.leader, 1);
        assert_eq!(back.state.leader_epoch, 2);
        // Unclean: replica 2 leads alone.
        let unclean = reelect(&change.state, &alive(&[2]), true).unwrap();
        assert!(unclean.unclean);
        assert_eq!((unclean.state.leader, unclean.state.isr.clone()), (2, vec![2]));
    }

    #[test]
    fn preferred_leader_returns_once_in_sync() {
        let mut state = PartitionImage::new(vec![1, 2, 3]);
        state.leader = 2;
        state.isr = vec![2, 3];
        assert!(prefer_leader(&state, &alive(&[1, 2, 3])).is_none(), "not in the ISR yet");
        state.isr = vec![2, 3, 1];
        let next = prefer_leader(&state, &alive(&[1, 2, 3])).unwrap();
        assert_eq!((next.leader, next.leader_epoch), (1, 1));
    }
}
