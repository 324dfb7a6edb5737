//! The cluster image: what the committed metadata records say, applied in order.
//!
//! Every node builds the same image from the same committed entries, so every broker answers Metadata alike
//! and leader epochs never go backwards from any of them. An image is immutable once published
//! (`Arc<ClusterImage>`); a shard swaps its read copy when a newer one arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::names::NodeId;
use super::partition::PartitionImage;
use super::records::MetadataRecord;
use crate::acl::AclBinding;
use crate::scram::{ScramCredential, ScramMechanism};

/// A registered broker, as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerImage {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Index of the entry that registered this incarnation (Kafka's broker epoch).
    pub epoch: i64,
    pub incarnation_id: String,
    /// Fenced brokers lead nothing and are in no ISR.
    pub fenced: bool,
    /// In controlled shutdown: leads nothing new and is leaving every ISR it can.
    #[serde(default)]
    pub shutting_down: bool,
}

impl BrokerImage {
    /// Unfenced and not shutting down: may lead partitions and receive new replicas.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.shutting_down
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    /// Kafka topic id (a UUID), as 16 big-endian bytes in a u128.
    #[serde(with = "super::records::uuid_text")]
    pub topic_id: u128,
    pub partitions: Vec<PartitionImage>,
    /// Topic-level overrides only; defaults come from the broker configuration.
    pub configs: BTreeMap<String, String>,
}

/// The state the metadata log describes. Immutable once published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    /// Index of the last Raft entry applied (0: nothing yet). Images are published in this order.
    pub version: i64,
    pub cluster_id: String,
    /// A node clients may send admin requests to: the active controller if it is a broker, else the node
    /// that published this copy. Not part of the log.
    #[serde(skip)]
    pub controller_id: NodeId,
    /// The broker epoch this node's process registered with (-1 before it has): replicas act on the image
    /// only while the image's registration of this node is that one. Not part of the log.
    #[serde(skip)]
    pub local_broker_epoch: i64,
    pub brokers: BTreeMap<NodeId, BrokerImage>,
    /// Controllers' directory ids, from their registrations.
    pub controllers: BTreeMap<NodeId, String>,
    pub topics: BTreeMap<String, TopicImage>,
    /// Dynamic broker configs: the cluster-wide defaults.
    pub broker_configs: BTreeMap<String, String>,
    /// Dynamic broker configs of single brokers, over the defaults.
    #[serde(default)]
    pub node_configs: BTreeMap<NodeId, BTreeMap<String, String>>,
    /// Consumer groups' own configs (group id → overrides), whether or not the group exists.
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    pub next_producer_id_block: i64,
    /// The cluster's ACLs.
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// SCRAM credentials: user → mechanism → credential.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
}

fn apply_config_change(target: &mut BTreeMap<String, String>, set: &BTreeMap<String, String>, remove: &[String]) {
    for key in remove {
        target.remove(key);
    }
    target.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
}

impl ClusterImage {
    /// Applies the records of the entry at `index`, in order.
    pub fn apply_entry(&mut self, index: i64, records: &[MetadataRecord]) {
        assert!(index > self.version, "entry {index} applied after entry {}: entries apply in order", self.version);
        for record in records {
            self.apply(index, record);
        }
        self.version = index;
    }

    fn apply(&mut self, index: i64, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterId { cluster_id } => self.cluster_id.clone_from(cluster_id),
            MetadataRecord::RegisterController { node_id, directory_id } => {
                self.controllers.insert(*node_id, directory_id.clone());
            }
            MetadataRecord::RegisterBroker { node_id, incarnation_id, host, port, rack } => {
                self.brokers.insert(
                    *node_id,
                    BrokerImage {
                        node_id: *node_id,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        epoch: index,
                        incarnation_id: incarnation_id.clone(),
                        fenced: true,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { node_id, broker_epoch } => {
                if let Some(broker) = self.brokers.get_mut(node_id).filter(|b| b.epoch == *broker_epoch) {
                    broker.fenced = true;
                    broker.shutting_down = false;
                }
            }
            MetadataRecord::UnfenceBroker { node_id, broker_epoch } => {
                if let Some(broker) = self.brokers.get_mut(node_id).filter(|b| b.epoch == *broker_epoch) {
                    broker.fenced = false;
                }
            }
            MetadataRecord::BrokerShuttingDown { node_id, broker_epoch } => {
                if let Some(broker) = self.brokers.get_mut(node_id).filter(|b| b.epoch == *broker_epoch) {
                    broker.shutting_down = true;
                }
            }
            MetadataRecord::CreateTopic { name, topic_id, partitions, configs } => {
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: partitions.clone(),
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::AddPartitions { name, partitions } => {
                if let Some(topic) = self.topics.get_mut(name) {
                    topic.partitions.extend(partitions.iter().cloned());
                }
            }
            MetadataRecord::DeleteTopic { name } => {
                self.topics.remove(name);
            }
            MetadataRecord::TopicConfigs { name, set, remove } => {
                if let Some(topic) = self.topics.get_mut(name) {
                    apply_config_change(&mut topic.configs, set, remove);
                }
            }
            MetadataRecord::BrokerConfigs { node, set, remove } => match node {
                None => apply_config_change(&mut self.broker_configs, set, remove),
                Some(node) => {
                    let configs = self.node_configs.entry(*node).or_default();
                    apply_config_change(configs, set, remove);
                    if configs.is_empty() {
                        self.node_configs.remove(node);
                    }
                }
            },
            MetadataRecord::GroupConfigs { group, set, remove } => {
                let configs = self.group_configs.entry(group.clone()).or_default();
                apply_config_change(configs, set, remove);
                if configs.is_empty() {
                    self.group_configs.remove(group);
                }
            }
            MetadataRecord::PartitionChange { topic, partition, state } => {
                if let Some(image) = self.partition_mut(topic, *partition) {
                    assert!(
                        state.leader_epoch >= image.leader_epoch,
                        "{topic}-{partition}: leader epoch {} would go back to {}",
                        image.leader_epoch,
                        state.leader_epoch
                    );
                    *image = state.clone();
                }
            }
            MetadataRecord::ProducerIdBlock { next_block_start } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_block_start);
            }
            MetadataRecord::CreateAcls { acls } => self.acls.extend(acls.iter().cloned()),
            MetadataRecord::DeleteAcls { acls } => {
                for acl in acls {
                    self.acls.remove(acl);
                }
            }
            MetadataRecord::UpsertScram { user, credential } => {
                self.scram.entry(user.clone()).or_default().insert(credential.mechanism, credential.clone());
            }
            MetadataRecord::DeleteScram { user, mechanism } => {
                if let Some(credentials) = self.scram.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        self.scram.remove(user);
                    }
                }
            }
        }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionImage> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get_mut(topic)?.partitions.get_mut(index)
    }

    pub fn topic_by_id(&self, topic_id: u128) -> Option<&TopicImage> {
        self.topics.values().find(|topic| topic.topic_id == topic_id)
    }

    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|topic| topic.partitions.len()).sum()
    }

    /// Brokers that may lead partitions and take new replicas.
    pub fn active_brokers(&self) -> impl Iterator<Item = &BrokerImage> {
        self.brokers.values().filter(|broker| broker.is_active())
    }

    pub fn is_active_broker(&self, node_id: NodeId) -> bool {
        self.brokers.get(&node_id).is_some_and(BrokerImage::is_active)
    }

    /// Every (topic, partition, state), in name and index order.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionImage)> {
        self.topics.values().flat_map(|topic| {
            topic.partitions.iter().enumerate().map(move |(index, state)| (topic.name.as_str(), index as i32, state))
        })
    }
}

pub type SharedImage = Arc<ClusterImage>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn register(node_id: NodeId) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            incarnation_id: format!("inc-{node_id}"),
            host: "h".into(),
            port: 9092,
            rack: None,
        }
    }

    #[test]
    fn entries_apply_in_order_and_brokers_carry_their_epoch() {
        let mut image = ClusterImage::default();
        image.apply_entry(1, &[MetadataRecord::ClusterId { cluster_id: "c".into() }]);
        image.apply_entry(2, &[register(1)]);
        image.apply_entry(3, &[register(2)]);
        assert_eq!(image.brokers[&1].epoch, 2);
        assert!(image.brokers[&1].fenced, "a broker registers fenced");
        image.apply_entry(4, &[MetadataRecord::UnfenceBroker { node_id: 1, broker_epoch: 2 }]);
        // A stale epoch changes nothing.
        image.apply_entry(5, &[MetadataRecord::UnfenceBroker { node_id: 2, broker_epoch: 99 }]);
        assert!(image.is_active_broker(1));
        assert!(!image.is_active_broker(2));
        assert_eq!(image.active_brokers().count(), 1);
        assert_eq!(image.version, 5);
    }

    #[test]
    fn topics_partitions_and_configs() {
        let mut image = ClusterImage::default();
        let records = vec![
            MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: 7,
                partitions: vec![PartitionImage::new(vec![0])],
                configs: BTreeMap::from([("retention.ms".into(), "1".into())]),
            },
            MetadataRecord::AddPartitions { name: "t".into(), partitions: vec![PartitionImage::new(vec![0])] },
            MetadataRecord::TopicConfigs {
                name: "t".into(),
                set: BTreeMap::new(),
                remove: vec!["retention.ms".into()],
            },
            MetadataRecord::BrokerConfigs {
                node: Some(3),
                set: BTreeMap::from([("num.partitions".into(), "2".into())]),
                remove: vec![],
            },
            MetadataRecord::ProducerIdBlock { next_block_start: 1000 },
        ];
        image.apply_entry(1, &records);
        assert_eq!(image.topic("t").unwrap().partitions.len(), 2);
        assert!(image.topic("t").unwrap().configs.is_empty());
        assert_eq!(image.node_configs[&3]["num.partitions"], "2");
        assert_eq!(image.next_producer_id_block, 1000);
        let mut state = image.partition("t", 1).unwrap().clone();
        state.leader_epoch = 3;
        state.partition_epoch = 4;
        image.apply_entry(2, &[MetadataRecord::PartitionChange { topic: "t".into(), partition: 1, state }]);
        assert_eq!(image.partition("t", 1).unwrap().leader_epoch, 3);
        image.apply_entry(3, &[MetadataRecord::DeleteTopic { name: "t".into() }]);
        assert!(image.topics.is_empty());
    }

    #[test]
    fn images_round_trip_as_snapshots() {
        let mut image = ClusterImage::default();
        image.apply_entry(1, &[MetadataRecord::ClusterId { cluster_id: "c".into() }, register(4)]);
        let text = serde_json::to_vec(&image).unwrap();
        let back: ClusterImage = serde_json::from_slice(&text).unwrap();
        assert_eq!(back, image);
    }
}
