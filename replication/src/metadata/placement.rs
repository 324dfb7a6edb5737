//! Where a new partition's replicas go.
//!
//! Replicas go to active brokers (registered, unfenced, not shutting down), balanced by what each already
//! holds: the leader (first replica, the preferred leader) goes to the broker that leads the fewest
//! partitions, and each follower to the broker with the fewest replicas, preferring racks (`broker.rack`) the
//! partition does not use yet. Ties go to the lowest broker id after a rotation by partition index, so equal
//! brokers take turns. Deterministic for a given image, so the controller's choice can be tested.

use std::collections::{BTreeMap, BTreeSet};

use super::image::ClusterImage;
use super::names::NodeId;

#[derive(Debug, Clone, Copy, Default)]
struct Load {
    leaders: usize,
    replicas: usize,
}

/// Replica lists for `count` new partitions of `replication_factor` replicas each. Fails when there are
/// fewer active brokers than the replication factor.
pub fn place(image: &ClusterImage, count: usize, replication_factor: usize) -> Result<Vec<Vec<NodeId>>, String> {
    let brokers: Vec<(NodeId, Option<String>)> =
        image.active_brokers().map(|broker| (broker.node_id, broker.rack.clone())).collect();
    if replication_factor == 0 || replication_factor > brokers.len() {
        return Err(format!(
            "replication factor {replication_factor} is larger than the {} available broker(s)",
            brokers.len()
        ));
    }
    let mut load: BTreeMap<NodeId, Load> = brokers.iter().map(|(id, _)| (*id, Load::default())).collect();
    for (_, _, partition) in image.partitions() {
        for (position, replica) in partition.replicas.iter().enumerate() {
            if let Some(entry) = load.get_mut(replica) {
                entry.replicas += 1;
                if position == 0 {
                    entry.leaders += 1;
                }
            }
        }
    }
    let rack_of: BTreeMap<NodeId, Option<String>> = brokers.iter().cloned().collect();
    let ids: Vec<NodeId> = brokers.iter().map(|(id, _)| *id).collect();
    let existing = image.partition_count();
    let mut placed = Vec::with_capacity(count);
    for index in 0..count {
        let rotation = (existing + index) % ids.len();
        // Rank of a broker in this partition's rotation: equal brokers take turns.
        let turn = |id: NodeId| ids.iter().position(|x| *x == id).map_or(0, |p| (p + ids.len() - rotation) % ids.len());
        let mut replicas: Vec<NodeId> = Vec::with_capacity(replication_factor);
        let mut racks: BTreeSet<Option<String>> = BTreeSet::new();
        let leader =
            ids.iter().copied().min_by_key(|id| (load[id].leaders, load[id].replicas, turn(*id))).unwrap_or_default();
        replicas.push(leader);
        racks.insert(rack_of[&leader].clone());
        while replicas.len() < replication_factor {
            let next = ids
                .iter()
                .copied()
                .filter(|id| !replicas.contains(id))
                .min_by_key(|id| {
                    let rack = &rack_of[id];
                    let rack_used = rack.is_some() && racks.contains(rack);
                    (rack_used, load[id].replicas, turn(*id))
                })
                .unwrap_or_default();
            replicas.push(next);
            racks.insert(rack_of[&next].clone());
        }
        for (position, replica) in replicas.iter().enumerate() {
            let entry = load.entry(*replica).or_default();
            entry.replicas += 1;
            if position == 0 {
                entry.leaders += 1;
            }
        }
        placed.push(replicas);
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metadata::{MetadataRecord, PartitionImage};

    fn cluster(racks: &[Option<&str>]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for (i, rack) in racks.iter().enumerate() {
            let node_id = i as NodeId + 1;
            let index = image.version + 1;
            image.apply_entry(
                index,
                &[MetadataRecord::RegisterBroker {
                    node_id,
                    incarnation_id: "x".into(),
                    host: "h".into(),
                    port: 1,
                    rack: rack.map(str::to_string),
                }],
            );
            image.apply_entry(index + 1, &[MetadataRecord::UnfenceBroker { node_id, broker_epoch: index }]);
        }
        image
    }

    #[test]
    fn replicas_and_leaders_are_balanced() {
        let image = cluster(&[None, None, None]);
        let placed = place(&image, 6, 3).unwrap();
        let mut leaders = BTreeMap::new();
        for replicas in &placed {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{placed:?}");
    }

    #[test]
    fn existing_load_is_counted() {
        let mut image = cluster(&[None, None, None]);
        let next = image.version + 1;
        image.apply_entry(
            next,
            &[MetadataRecord::CreateTopic {
                name: "busy".into(),
                topic_id: 1,
                partitions: vec![PartitionImage::new(vec![1]); 4],
                configs: BTreeMap::new(),
            }],
        );
        let placed = place(&image, 2, 1).unwrap();
        assert!(placed.iter().all(|r| r[0] != 1), "{placed:?}");
    }

    #[test]
    fn racks_are_spread_and_too_few_brokers_fail() {
        let image = cluster(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        for replicas in place(&image, 8, 2).unwrap() {
            let racks: BTreeSet<_> = replicas.iter().map(|id| if *id <= 2 { "a" } else { "b" }).collect();
            assert_eq!(racks.len(), 2, "{replicas:?}");
        }
        assert!(place(&image, 1, 5).is_err());
        assert!(place(&ClusterImage::default(), 1, 1).is_err());
    }
}
