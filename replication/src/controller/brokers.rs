//! Broker lifecycle on the active controller: registration, heartbeats, fencing, unfencing and controlled
//! shutdown, each with the partition changes it implies. Pure functions from the image to records.
//!
//! A broker registers fenced; its heartbeats unfence it once it has applied the metadata log up to its own
//! registration. A broker whose session expires is fenced: it leaves every ISR (but the last member's) and
//! loses its leaderships. A broker that asks to shut down first loses its leaderships and ISR places the
//! same way, and is told it may stop once it leads nothing.

use std::collections::BTreeSet;

use crate::metadata::{ClusterImage, MetadataRecord, NodeId};

use super::commands::{AdminError, AdminErrorKind, AdminResult, BrokerHeartbeat, BrokerRegistration, HeartbeatAnswer};
use super::partitions::{self, Eligibility};

/// The image with some brokers taken out of (or put back into) the running, as the change being planned
/// will leave them.
struct Planned<'a> {
    image: &'a ClusterImage,
    leaving: BTreeSet<NodeId>,
    joining: BTreeSet<NodeId>,
}

impl Eligibility for Planned<'_> {
    fn in_sync_eligible(&self, node: NodeId) -> bool {
        !self.leaving.contains(&node) && (self.joining.contains(&node) || self.image.is_active_broker(node))
    }
}

/// Whether a topic allows unclean leader election (topic override, else the broker default).
pub type UncleanPolicy<'a> = &'a dyn Fn(&ClusterImage, &str) -> bool;

/// Partition changes once `leaving` brokers may no longer lead or stay in sync and `joining` ones may again.
pub fn reelect_all(
    image: &ClusterImage,
    leaving: &[NodeId],
    joining: &[NodeId],
    unclean: UncleanPolicy<'_>,
) -> Vec<MetadataRecord> {
    let planned =
        Planned { image, leaving: leaving.iter().copied().collect(), joining: joining.iter().copied().collect() };
    let mut records = Vec::new();
    for (topic, partition, state) in image.partitions() {
        let touched = state.replicas.iter().any(|r| planned.leaving.contains(r) || planned.joining.contains(r))
            || state.is_offline();
        if !touched {
            continue;
        }
        if let Some(change) = partitions::reelect(state, &planned, unclean(image, topic)) {
            if change.unclean {
                tracing::warn!(
                    topic,
                    partition,
                    leader = change.state.leader,
                    "UNCLEAN leader election: the new leader was not in sync; acknowledged records may be lost"
                );
            }
            records.push(MetadataRecord::PartitionChange { topic: topic.to_string(), partition, state: change.state });
        }
    }
    records
}

/// A registration: refused if another live process holds this id; otherwise a new broker epoch, fenced.
/// A re-registering broker that was running is taken out of its ISRs and leaderships at once.
pub fn register(
    image: &ClusterImage,
    request: &BrokerRegistration,
    session_alive: bool,
    unclean: UncleanPolicy<'_>,
) -> AdminResult<Vec<MetadataRecord>> {
    if !request.cluster_id.is_empty() && !image.cluster_id.is_empty() && request.cluster_id != image.cluster_id {
        return Err(AdminError::new(
            AdminErrorKind::InconsistentClusterId,
            format!(
                "broker {} belongs to cluster {}, this is cluster {}",
                request.node_id, request.cluster_id, image.cluster_id
            ),
        ));
    }
    if let Some(existing) = image.brokers.get(&request.node_id) {
        if existing.incarnation_id != request.incarnation_id && !existing.fenced && session_alive {
            return Err(AdminError::new(
                AdminErrorKind::DuplicateBrokerRegistration,
                format!(
                    "broker {} is already registered by a live process (incarnation {}); is another process running \
                     with node.id={}?",
                    request.node_id, existing.incarnation_id, request.node_id
                ),
            ));
        }
    }
    let mut records = Vec::new();
    if image.brokers.get(&request.node_id).is_some_and(|b| !b.fenced) {
        records.extend(reelect_all(image, &[request.node_id], &[], unclean));
    }
    records.push(MetadataRecord::RegisterBroker {
        node_id: request.node_id,
        incarnation_id: request.incarnation_id.clone(),
        host: request.host.clone(),
        port: request.port,
        rack: request.rack.clone(),
    });
    Ok(records)
}

/// A heartbeat: unfences a caught-up broker, starts a requested controlled shutdown, and says whether the
/// broker may stop.
pub fn heartbeat(
    image: &ClusterImage,
    request: &BrokerHeartbeat,
    unclean: UncleanPolicy<'_>,
) -> AdminResult<(Vec<MetadataRecord>, HeartbeatAnswer)> {
    let Some(broker) = image.brokers.get(&request.node_id).filter(|b| b.epoch == request.broker_epoch) else {
        return Err(AdminError::new(
            AdminErrorKind::StaleBrokerEpoch,
            format!("broker {} epoch {} is not registered", request.node_id, request.broker_epoch),
        ));
    };
    let node = request.node_id;
    let epoch = request.broker_epoch;
    let mut records = Vec::new();
    if request.want_shut_down {
        if broker.fenced {
            return Ok((records, HeartbeatAnswer { is_fenced: true, should_shut_down: true }));
        }
        if !broker.shutting_down {
            records.extend(reelect_all(image, &[node], &[], unclean));
            records.push(MetadataRecord::BrokerShuttingDown { node_id: node, broker_epoch: epoch });
        }
        let leads_after = leaders_after(image, &records, node);
        return Ok((records, HeartbeatAnswer { is_fenced: false, should_shut_down: leads_after == 0 }));
    }
    if broker.fenced && request.metadata_offset >= broker.epoch {
        records.push(MetadataRecord::UnfenceBroker { node_id: node, broker_epoch: epoch });
        records.extend(reelect_all(image, &[], &[node], unclean));
        return Ok((records, HeartbeatAnswer { is_fenced: false, should_shut_down: false }));
    }
    Ok((records, HeartbeatAnswer { is_fenced: broker.fenced, should_shut_down: false }))
}

/// Fences a broker whose session expired.
pub fn fence(image: &ClusterImage, node: NodeId, unclean: UncleanPolicy<'_>) -> Vec<MetadataRecord> {
    let Some(broker) = image.brokers.get(&node).filter(|b| !b.fenced) else { return Vec::new() };
    let mut records = reelect_all(image, &[node], &[], unclean);
    records.push(MetadataRecord::FenceBroker { node_id: node, broker_epoch: broker.epoch });
    records
}

/// How many partitions `node` leads once `records` apply on top of `image`.
fn leaders_after(image: &ClusterImage, records: &[MetadataRecord], node: NodeId) -> usize {
    let changed: BTreeSet<(&str, i32)> = records
        .iter()
        .filter_map(|record| match record {
            MetadataRecord::PartitionChange { topic, partition, .. } => Some((topic.as_str(), *partition)),
            _ => None,
        })
        .collect();
    let unchanged = image
        .partitions()
        .filter(|(topic, partition, state)| state.leader == node && !changed.contains(&(*topic, *partition)))
        .count();
    let changed_led = records
        .iter()
        .filter(|record| matches!(record, MetadataRecord::PartitionChange { state, .. } if state.leader == node))
        .count();
    unchanged + changed_led
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metadata::PartitionImage;
    use std::collections::BTreeMap;

    fn never(_: &ClusterImage, _: &str) -> bool {
        false
    }

    fn registration(node_id: NodeId, incarnation: &str) -> BrokerRegistration {
        BrokerRegistration {
            node_id,
            incarnation_id: incarnation.into(),
            cluster_id: String::new(),
            host: "h".into(),
            port: 1,
            rack: None,
        }
    }

    fn apply(image: &mut ClusterImage, records: Vec<MetadataRecord>) {
        let next = image.version + 1;
        image.apply_entry(next, &records);
    }

    fn three_brokers_one_topic() -> ClusterImage {
        let mut image = ClusterImage::default();
        for node in 1..=3 {
            let records = register(&image, &registration(node, "a"), false, &never).unwrap();
            apply(&mut image, records);
            let epoch = image.brokers[&node].epoch;
            let hb =
                BrokerHeartbeat { node_id: node, broker_epoch: epoch, metadata_offset: epoch, want_shut_down: false };
            let (records, answer) = heartbeat(&image, &hb, &never).unwrap();
            assert!(!answer.is_fenced);
            apply(&mut image, records);
        }
        apply(
            &mut image,
            vec![MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: 1,
                partitions: vec![PartitionImage::new(vec![1, 2, 3]), PartitionImage::new(vec![2, 3, 1])],
                configs: BTreeMap::new(),
            }],
        );
        image
    }

    #[test]
    fn a_broker_is_unfenced_only_once_caught_up() {
        let mut image = ClusterImage::default();
        let records = register(&image, &registration(1, "a"), false, &never).unwrap();
        apply(&mut image, records);
        let epoch = image.brokers[&1].epoch;
        let behind =
            BrokerHeartbeat { node_id: 1, broker_epoch: epoch, metadata_offset: epoch - 1, want_shut_down: false };
        let (records, answer) = heartbeat(&image, &behind, &never).unwrap();
        assert!(records.is_empty() && answer.is_fenced);
        let stale = BrokerHeartbeat { broker_epoch: epoch + 7, ..behind.clone() };
        assert_eq!(heartbeat(&image, &stale, &never).unwrap_err().kind, AdminErrorKind::StaleBrokerEpoch);
    }

    #[test]
    fn fencing_moves_leadership_and_duplicates_are_refused() {
        let mut image = three_brokers_one_topic();
        let err = register(&image, &registration(1, "b"), true, &never).unwrap_err();
        assert_eq!(err.kind, AdminErrorKind::DuplicateBrokerRegistration);
        let records = fence(&image, 1, &never);
        apply(&mut image, records);
        assert!(image.brokers[&1].fenced);
        let p0 = image.partition("t", 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone(), p0.leader_epoch), (2, vec![2, 3], 1));
        assert_eq!(image.partition("t", 1).unwrap().isr, vec![2, 3]);
        // Once fenced, the same id may register again (a restart).
        assert!(register(&image, &registration(1, "b"), false, &never).is_ok());
    }

    #[test]
    fn controlled_shutdown_moves_leaders_then_allows_the_stop() {
        let mut image = three_brokers_one_topic();
        let epoch = image.brokers[&2].epoch;
        let hb =
            BrokerHeartbeat { node_id: 2, broker_epoch: epoch, metadata_offset: image.version, want_shut_down: true };
        let (records, answer) = heartbeat(&image, &hb, &never).unwrap();
        assert!(answer.should_shut_down, "its leadership moves in the same change");
        apply(&mut image, records);
        assert_eq!(image.partition("t", 1).unwrap().leader, 3);
        assert!(image.partitions().all(|(_, _, p)| !p.isr.contains(&2)));
        assert!(image.brokers[&2].shutting_down);
    }
}
