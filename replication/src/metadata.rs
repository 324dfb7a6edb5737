//! The cluster metadata image and the records that change it.
//!
//! Metadata is a log of [`MetadataRecord`]s with a single writer (the controller). Applying the records in
//! order gives a [`ClusterImage`]: brokers, topics, partitions with their replicas, ISR, leader and leader
//! epoch, topic configs, dynamic broker configs and the producer-id allocator. Shards receive immutable
//! snapshots (`Arc<ClusterImage>`) and never change them; they keep a read copy and swap it when the
//! controller publishes a new one.
//!
//! Records are JSON inside the values of ordinary RecordBatch v2 batches in the engine partition
//! `__cluster_metadata-0`, so a replicated controller can later ship the same log through Raft.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub type NodeId = i32;

/// The engine partition holding the metadata log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Producer ids are handed out in blocks; the controller persists only the next block's start.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: i32,
}

impl PartitionImage {
    /// A new partition on `replicas`, led by the first.
    pub fn new(replicas: Vec<NodeId>) -> Self {
        let leader = replicas.first().copied().unwrap_or(-1);
        PartitionImage { isr: replicas.clone(), replicas, leader, leader_epoch: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    /// Kafka topic id (a UUID), as 16 big-endian bytes in a u128.
    pub topic_id: u128,
    pub partitions: Vec<PartitionImage>,
    /// Topic-level overrides only; defaults come from the broker configuration.
    pub configs: BTreeMap<String, String>,
}

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    ClusterId {
        cluster_id: String,
    },
    CreateTopic {
        name: String,
        #[serde(with = "uuid_text")]
        topic_id: u128,
        partitions: Vec<PartitionImage>,
        configs: BTreeMap<String, String>,
    },
    AddPartitions {
        name: String,
        partitions: Vec<PartitionImage>,
    },
    DeleteTopic {
        name: String,
    },
    TopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    BrokerConfigs {
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    PartitionChange {
        topic: String,
        partition: i32,
        leader: NodeId,
        isr: Vec<NodeId>,
        leader_epoch: i32,
    },
    ProducerIdBlock {
        next_block_start: i64,
    },
}

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Topic ids are written as UUID text: JSON numbers cannot carry 128 bits through serde's tagged enums.
mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&uuid::Uuid::from_u128(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        uuid::Uuid::parse_str(&text).map(|id| id.as_u128()).map_err(serde::de::Error::custom)
    }
}

/// The state the metadata log describes. Immutable once published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    /// Offset of the next metadata record; grows with every applied record.
    pub version: i64,
    pub cluster_id: String,
    pub controller_id: NodeId,
    /// Registered at startup; not part of the log in single-broker mode.
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    pub topics: BTreeMap<String, TopicImage>,
    pub broker_configs: BTreeMap<String, String>,
    pub next_producer_id_block: i64,
}

impl ClusterImage {
    pub fn apply(&mut self, record: &MetadataRecord) {
        self.version += 1;
        match record {
            MetadataRecord::ClusterId { cluster_id } => self.cluster_id.clone_from(cluster_id),
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
                    for key in remove {
                        topic.configs.remove(key);
                    }
                    topic.configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            MetadataRecord::BrokerConfigs { set, remove } => {
                for key in remove {
                    self.broker_configs.remove(key);
                }
                self.broker_configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            MetadataRecord::PartitionChange { topic, partition, leader, isr, leader_epoch } => {
                let found = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| usize::try_from(*partition).ok().and_then(|p| t.partitions.get_mut(p)));
                if let Some(image) = found {
                    image.leader = *leader;
                    image.isr.clone_from(isr);
                    image.leader_epoch = *leader_epoch;
                }
            }
            MetadataRecord::ProducerIdBlock { next_block_start } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_block_start);
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

    pub fn topic_by_id(&self, topic_id: u128) -> Option<&TopicImage> {
        self.topics.values().find(|topic| topic.topic_id == topic_id)
    }

    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|topic| topic.partitions.len()).sum()
    }
}

pub type SharedImage = Arc<ClusterImage>;

/// The shard that owns a partition: a stable hash (FNV-1a) of topic and partition, so placement is the same
/// on every restart with the same shard count and needs no table.
pub fn owner_shard(topic: &str, partition: i32, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes().iter().chain(partition.to_be_bytes().iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

/// Kafka's legal topic names: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!("topic name is {} characters long; at most 249 are allowed", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name '{name}' contains '{bad}'; only [a-zA-Z0-9._-] are allowed"));
    }
    if name.starts_with("__cluster_metadata") {
        return Err(format!("topic name '{name}' is reserved"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_apply() {
        let records = vec![
            MetadataRecord::ClusterId { cluster_id: "c".into() },
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
            MetadataRecord::ProducerIdBlock { next_block_start: 1000 },
        ];
        let mut image = ClusterImage::default();
        for record in &records {
            let decoded = MetadataRecord::decode(&record.encode()).unwrap();
            assert_eq!(&decoded, record);
            image.apply(&decoded);
        }
        assert_eq!(image.topic("t").unwrap().partitions.len(), 2);
        assert!(image.topic("t").unwrap().configs.is_empty());
        assert_eq!(image.next_producer_id_block, 1000);
        image.apply(&MetadataRecord::DeleteTopic { name: "t".into() });
        assert!(image.topics.is_empty());
        assert_eq!(image.version, 6);
    }

    #[test]
    fn placement_is_stable_and_spread() {
        let mut counts = [0usize; 4];
        for p in 0..1000 {
            counts[owner_shard("topic", p, 4)] += 1;
        }
        assert!(counts.iter().all(|c| *c > 150), "{counts:?}");
        assert_eq!(owner_shard("a", 3, 1), 0);
        assert_eq!(owner_shard("a", 3, 7), owner_shard("a", 3, 7));
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
