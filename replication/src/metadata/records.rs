//! Metadata records: every decision of the controller, in the order the quorum committed them.
//!
//! A record is JSON with a version field `v` beside its `type` (`{"v":1,"type":"CreateTopic",...}`), so that a
//! node can tell a record written by a newer Sluice from a malformed one during a rolling upgrade. Fields
//! added later carry `#[serde(default)]`, which keeps version 1 readable; a change that older nodes cannot
//! read raises [`RECORD_VERSION`]. One Raft entry holds one or more records (`docs/format.md` draws the
//! bytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::NodeId;
use super::partition::PartitionImage;
use crate::acl::AclBinding;
use crate::scram::{ScramCredential, ScramMechanism};

/// The newest version this build reads. Each record is written with the lowest version that can read it
/// ([`MetadataRecord::version`]): 1 for every record of the first layout, 2 for record types added since, so
/// an older node stops at them with "upgrade this node" rather than reading them as malformed.
pub const RECORD_VERSION: u16 = 2;

/// One change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The first record of a cluster: its id, chosen by the first elected quorum leader.
    ClusterId {
        cluster_id: String,
    },
    /// A controller's data directory identity (Kafka's `directory.id`). A voter that comes back with another
    /// directory lost its log and must not vote as if it still held it.
    RegisterController {
        node_id: NodeId,
        directory_id: String,
    },
    /// A broker process registered. Its broker epoch is the index of the entry that holds this record.
    RegisterBroker {
        node_id: NodeId,
        incarnation_id: String,
        host: String,
        port: i32,
        rack: Option<String>,
    },
    /// The broker's session ended (heartbeats stopped) or it finished a controlled shutdown.
    FenceBroker {
        node_id: NodeId,
        broker_epoch: i64,
    },
    /// The broker caught up with the metadata log and may lead partitions again.
    UnfenceBroker {
        node_id: NodeId,
        broker_epoch: i64,
    },
    /// The broker asked to stop: its leaderships move away, then it is told it may shut down.
    BrokerShuttingDown {
        node_id: NodeId,
        broker_epoch: i64,
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
    /// Dynamic broker configs: the cluster-wide default when `node` is absent, else one broker's.
    BrokerConfigs {
        #[serde(default)]
        node: Option<NodeId>,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// A consumer group's own configs (Kafka's group configs, KIP-848): the keys in `remove` go, then `set` is
    /// applied. The group need not exist. Version 2.
    GroupConfigs {
        group: String,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    /// A partition's new leader, ISR, replicas and epochs, whole.
    PartitionChange {
        topic: String,
        partition: i32,
        state: PartitionImage,
    },
    ProducerIdBlock {
        next_block_start: i64,
    },
    /// ACLs added (Kafka's AccessControlEntryRecord). Version 2.
    CreateAcls {
        acls: Vec<AclBinding>,
    },
    /// ACLs removed, each named whole (Kafka's RemoveAccessControlEntryRecord). Version 2.
    DeleteAcls {
        acls: Vec<AclBinding>,
    },
    /// A user's SCRAM credential for one mechanism, new or replacing (Kafka's UserScramCredentialRecord).
    /// Version 2.
    UpsertScram {
        user: String,
        credential: ScramCredential,
    },
    /// A user's SCRAM credential for one mechanism removed (Kafka's RemoveUserScramCredentialRecord). Version 2.
    DeleteScram {
        user: String,
        mechanism: ScramMechanism,
    },
}

#[derive(Serialize)]
struct VersionedRef<'a> {
    v: u16,
    #[serde(flatten)]
    record: &'a MetadataRecord,
}

#[derive(Deserialize)]
struct Versioned {
    v: u16,
    #[serde(flatten)]
    record: MetadataRecord,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record version {found} is newer than this build's {RECORD_VERSION}: upgrade this node")]
    NewerVersion { found: u16 },
    #[error("malformed metadata record: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl MetadataRecord {
    /// The layout version this record is written with: the first that has it.
    pub fn version(&self) -> u16 {
        match self {
            MetadataRecord::GroupConfigs { .. }
            | MetadataRecord::CreateAcls { .. }
            | MetadataRecord::DeleteAcls { .. }
            | MetadataRecord::UpsertScram { .. }
            | MetadataRecord::DeleteScram { .. } => 2,
            _ => 1,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(&VersionedRef { v: self.version(), record: self }).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            v: u16,
        }
        let version: VersionOnly = serde_json::from_slice(bytes)?;
        if version.v > RECORD_VERSION {
            return Err(RecordError::NewerVersion { found: version.v });
        }
        let versioned: Versioned = serde_json::from_slice(bytes)?;
        debug_assert_eq!(versioned.v, version.v);
        Ok(versioned.record)
    }

    /// Encodes several records as one Raft entry's data: a JSON array of versioned records.
    pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
        let items: Vec<VersionedRef<'_>> =
            records.iter().map(|record| VersionedRef { v: record.version(), record }).collect();
        serde_json::to_vec(&items).unwrap_or_default()
    }

    pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Self>, RecordError> {
        let items: Vec<serde_json::Value> = serde_json::from_slice(bytes)?;
        items
            .into_iter()
            .map(|item| {
                let found = item.get("v").and_then(serde_json::Value::as_u64).unwrap_or(0);
                if found > u64::from(RECORD_VERSION) {
                    return Err(RecordError::NewerVersion { found: u16::try_from(found).unwrap_or(u16::MAX) });
                }
                let versioned: Versioned = serde_json::from_value(item)?;
                Ok(versioned.record)
            })
            .collect()
    }
}

/// Topic ids are written as UUID text: JSON numbers cannot carry 128 bits through serde's tagged enums.
pub(crate) mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&uuid::Uuid::from_u128(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        uuid::Uuid::parse_str(&text).map(|id| id.as_u128()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_carry_their_version_and_round_trip() {
        let record = MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: 7,
            partitions: vec![PartitionImage::new(vec![1, 2])],
            configs: BTreeMap::from([("retention.ms".into(), "1".into())]),
        };
        let bytes = record.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"v":1,"type":"CreateTopic""#), "{text}");
        assert_eq!(MetadataRecord::decode(&bytes).unwrap(), record);
        let batch = MetadataRecord::encode_batch(&[record.clone(), MetadataRecord::DeleteTopic { name: "t".into() }]);
        let decoded = MetadataRecord::decode_batch(&batch).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0], record);
    }

    #[test]
    fn records_added_later_are_written_with_their_own_version() {
        let record = MetadataRecord::GroupConfigs { group: "g".into(), set: BTreeMap::new(), remove: vec!["k".into()] };
        let text = String::from_utf8(record.encode()).unwrap();
        assert!(text.starts_with(r#"{"v":2,"type":"GroupConfigs""#), "{text}");
        let batch = MetadataRecord::encode_batch(&[MetadataRecord::DeleteTopic { name: "t".into() }, record.clone()]);
        let text = String::from_utf8(batch.clone()).unwrap();
        assert!(text.contains(r#"{"v":1,"type":"DeleteTopic""#) && text.contains(r#"{"v":2,"type":"GroupConfigs""#));
        assert_eq!(MetadataRecord::decode_batch(&batch).unwrap()[1], record);
    }

    #[test]
    fn newer_versions_and_garbage_are_refused_by_name() {
        let newer = br#"{"v":3,"type":"DeleteTopic","name":"t"}"#;
        assert!(matches!(MetadataRecord::decode(newer), Err(RecordError::NewerVersion { found: 3 })));
        assert!(matches!(MetadataRecord::decode(b"{}"), Err(RecordError::Malformed(_))));
        assert!(matches!(MetadataRecord::decode_batch(b"[{\"v\":9}]"), Err(RecordError::NewerVersion { found: 9 })));
        // A version-1 record without a field added later still reads (serde default).
        let old = br#"{"v":1,"type":"BrokerConfigs","set":{},"remove":[]}"#;
        assert!(matches!(MetadataRecord::decode(old).unwrap(), MetadataRecord::BrokerConfigs { node: None, .. }));
    }
}
