//! Group persistence: groups and committed offsets are records in the group's `__consumer_offsets`
//! partition (flush policy `always`), written before a change is answered and replayed when the shard takes
//! the partition over. Keys and values are versioned JSON (layout in `docs/format.md`); a null value is a
//! tombstone. When a partition has accumulated [`SNAPSHOT_AFTER_RECORDS`] records since its start, the live
//! state is appended again and everything before it is deleted, so the topic does not grow without bound.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sluice_engine::batch::{self, BatchBuilder, RecordSpec};
use sluice_engine::types::now_ms;
use sluice_engine::{AppendMode, LeaderEpoch, Offset, PartitionLog};

use super::table::{partition_for_group, CommittedOffset, Coordinator, CoordinatorLog, Group, GroupResult};
use crate::error::ResponseError;

/// Records in a coordinator partition after which its live state is rewritten and the rest deleted.
pub const SNAPSHOT_AFTER_RECORDS: i64 = 100_000;

/// The layout version of the records this broker writes, and the newest it reads. Every key and value
/// carries it (`"version"`), so that a cluster can be upgraded one broker at a time: a broker never misreads a
/// record a newer one wrote; it logs and skips it. Records written before the field existed have version 1's
/// layout and read as version 1.
pub const RECORD_VERSION: u16 = 1;

fn version_one() -> u16 {
    1
}

/// A record's key, as JSON. The value is JSON too, or null for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(super) enum RecordKey {
    Offset {
        #[serde(default = "version_one")]
        version: u16,
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        #[serde(default = "version_one")]
        version: u16,
        group: String,
    },
}

impl RecordKey {
    fn version(&self) -> u16 {
        match self {
            RecordKey::Offset { version, .. } | RecordKey::Group { version, .. } => *version,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OffsetValue {
    #[serde(default = "version_one")]
    version: u16,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupValue {
    #[serde(default = "version_one")]
    version: u16,
    protocol_type: Option<String>,
    generation: i32,
}

pub(super) type Persisted = (RecordKey, Option<Vec<u8>>);

pub(super) fn offset_record(group: &str, topic: &str, partition: i32, value: Option<&CommittedOffset>) -> Persisted {
    let key =
        RecordKey::Offset { version: RECORD_VERSION, group: group.to_string(), topic: topic.to_string(), partition };
    let value = value.map(|v| {
        serde_json::to_vec(&OffsetValue {
            version: RECORD_VERSION,
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp_ms: v.commit_timestamp_ms,
        })
        .unwrap_or_default()
    });
    (key, value)
}

pub(super) fn group_record(group: &Group, live: bool) -> Persisted {
    let key = RecordKey::Group { version: RECORD_VERSION, group: group.id.clone() };
    let value = live.then(|| {
        serde_json::to_vec(&GroupValue {
            version: RECORD_VERSION,
            protocol_type: group.protocol_type.clone(),
            generation: group.generation,
        })
        .unwrap_or_default()
    });
    (key, value)
}

/// Whether a record of `version` is one this broker can read; logs the ones it skips.
fn readable(version: u16, what: &'static str) -> bool {
    if version > RECORD_VERSION {
        tracing::warn!(version, newest = RECORD_VERSION, what, "skipping a group record written by a newer broker");
        return false;
    }
    true
}

impl Coordinator {
    /// Takes over a `__consumer_offsets` partition this broker now leads: replays its records into groups.
    /// The whole log is read, up to its end: what a new leader holds beyond its high watermark was written
    /// by the previous coordinator and commits with the next follower fetch. Meanwhile the partition's groups
    /// answer COORDINATOR_LOAD_IN_PROGRESS.
    pub async fn load_partition(
        &self,
        partition: i32,
        log: Rc<PartitionLog>,
        leader_epoch: LeaderEpoch,
    ) -> Result<usize, sluice_engine::EngineError> {
        self.loading.borrow_mut().insert(partition);
        let result = self.replay(&log).await;
        self.loading.borrow_mut().remove(&partition);
        let applied = result?;
        let resigned = Rc::new(sluice_engine::watch::OffsetWatch::new(0));
        let replaced = self.logs.borrow_mut().insert(partition, CoordinatorLog { log, leader_epoch, resigned });
        if let Some(replaced) = replaced {
            replaced.resigned.advance(1);
        }
        Ok(applied)
    }

    async fn replay(&self, log: &Rc<PartitionLog>) -> Result<usize, sluice_engine::EngineError> {
        let mut position = log.log_start_offset();
        let end = log.log_end_offset();
        let mut applied = 0;
        while position < end {
            let bytes = log.read_bytes(position, 1 << 20, end).await?;
            let batches = batch::split_batches(&bytes);
            if batches.is_empty() {
                break;
            }
            for one in batches {
                let Some(records) = batch::records(one) else { continue };
                for record in records {
                    position = Offset(record.offset + 1);
                    let Some(key) = record.key.and_then(|k| serde_json::from_slice::<RecordKey>(k).ok()) else {
                        continue;
                    };
                    self.apply_record(&key, record.value);
                    applied += 1;
                }
            }
        }
        Ok(applied)
    }

    /// Applies one record to the table. A value that does not parse counts as a tombstone, as it always has; a
    /// key or value from a newer layout is skipped.
    fn apply_record(&self, key: &RecordKey, value: Option<&[u8]>) {
        if !readable(key.version(), "key") {
            return;
        }
        match key {
            RecordKey::Offset { group, topic, partition, .. } => {
                let parsed = value.and_then(|v| serde_json::from_slice::<OffsetValue>(v).ok());
                if parsed.as_ref().is_some_and(|v| !readable(v.version, "offset value")) {
                    return;
                }
                let group = self.group_or_create(group);
                let mut group = group.borrow_mut();
                match parsed {
                    Some(v) => {
                        group.offsets.insert(
                            (topic.clone(), *partition),
                            CommittedOffset {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp_ms: v.commit_timestamp_ms,
                            },
                        );
                    }
                    None => {
                        group.offsets.remove(&(topic.clone(), *partition));
                    }
                }
            }
            RecordKey::Group { group: id, .. } => {
                let parsed = value.and_then(|v| serde_json::from_slice::<GroupValue>(v).ok());
                if parsed.as_ref().is_some_and(|v| !readable(v.version, "group value")) {
                    return;
                }
                match parsed {
                    Some(v) => {
                        let group = self.group_or_create(id);
                        let mut group = group.borrow_mut();
                        group.protocol_type = v.protocol_type;
                        group.generation = v.generation;
                    }
                    None => {
                        self.groups.borrow_mut().remove(id);
                    }
                }
            }
        }
    }

    /// Appends records to the group's partition and waits until they are durable.
    pub(super) async fn persist(&self, group_id: &str, records: Vec<Persisted>) -> GroupResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let CoordinatorLog { log, leader_epoch, resigned } = self.log_for(group_id)?;
        let now = now_ms();
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            records.iter().map(|(key, value)| (serde_json::to_vec(key).unwrap_or_default(), value.clone())).collect();
        let mut builder = BatchBuilder::with_capacity(
            encoded.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>() + 256,
        );
        for (key, value) in &encoded {
            builder.push(&RecordSpec { key: Some(key), value: value.as_deref(), headers: &[], timestamp_ms: now });
        }
        let info = log.append(builder.finish(), AppendMode::Coordinator { leader_epoch }).await.map_err(|error| {
            tracing::error!(group = group_id, %error, "writing to __consumer_offsets failed");
            ResponseError::KafkaStorageError
        })?;
        let committed = log.high_watermark_watch().wait_for(info.last_offset.next().0);
        let deposed = resigned.wait_for(1);
        futures::pin_mut!(committed);
        futures::pin_mut!(deposed);
        if let futures::future::Either::Left((reached, _)) = futures::future::select(committed, deposed).await {
            reached.map_err(|_| ResponseError::KafkaStorageError)?;
        }
        // Checked even when the offset was reached: see `CoordinatorLog::resigned`.
        if resigned.get() > 0 {
            return Err(ResponseError::NotCoordinator);
        }
        Ok(())
    }

    /// Rewrites the live state of partitions that have grown past [`SNAPSHOT_AFTER_RECORDS`] and deletes
    /// everything before the rewrite.
    pub async fn trim(&self) {
        let logs: Vec<(i32, Rc<PartitionLog>)> = self.logs.borrow().iter().map(|(p, l)| (*p, l.log.clone())).collect();
        let partitions = self.offsets_partitions.get();
        for (partition, log) in logs {
            if log.log_end_offset().0 - log.log_start_offset().0 < SNAPSHOT_AFTER_RECORDS {
                continue;
            }
            let records: Vec<Persisted> = self
                .groups
                .borrow()
                .values()
                .filter(|g| partition_for_group(&g.borrow().id, partitions) == partition)
                .flat_map(|g| {
                    let g = g.borrow();
                    let mut records = vec![group_record(&g, true)];
                    records.extend(g.offsets.iter().map(|((t, p), o)| offset_record(&g.id, t, *p, Some(o))));
                    records
                })
                .collect();
            let start = log.log_end_offset();
            let Some(any_group) = self
                .groups
                .borrow()
                .values()
                .map(|g| g.borrow().id.clone())
                .find(|id| partition_for_group(id, partitions) == partition)
            else {
                continue;
            };
            for chunk in records.chunks(1000) {
                if self.persist(&any_group, chunk.to_vec()).await.is_err() {
                    return;
                }
            }
            match log.delete_records_before(start).await {
                Ok(low) => tracing::info!(partition, low_watermark = low.0, "trimmed __consumer_offsets"),
                Err(error) => tracing::warn!(partition, %error, "could not trim __consumer_offsets"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::groups::table::GroupConfig;

    fn coordinator() -> Rc<Coordinator> {
        Coordinator::new(GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            min_session_timeout_ms: 1,
            max_session_timeout_ms: 1000,
            max_size: 10,
            offset_metadata_max_bytes: 100,
            offsets_retention_ms: 1000,
        })
    }

    fn committed(coordinator: &Coordinator, group: &str) -> Option<i64> {
        coordinator.fetch_offsets(group, Some(vec![("t".into(), 0)]))[0].2.as_ref().map(|c| c.offset)
    }

    #[test]
    fn records_carry_their_version_and_read_back() {
        let offset = CommittedOffset { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 7 };
        let (key, value) = offset_record("g", "t", 0, Some(&offset));
        let key_json = serde_json::to_string(&key).unwrap();
        assert_eq!(key_json, r#"{"type":"Offset","version":1,"group":"g","topic":"t","partition":0}"#);
        let value = value.unwrap();
        assert!(String::from_utf8(value.clone()).unwrap().starts_with(r#"{"version":1,"offset":42,"#));
        assert_eq!(
            String::from_utf8(value.clone()).unwrap(),
            r#"{"version":1,"offset":42,"leader_epoch":3,"metadata":"m","commit_timestamp_ms":7}"#
        );
        let coordinator = coordinator();
        coordinator.apply_record(&serde_json::from_str(&key_json).unwrap(), Some(&value));
        assert_eq!(committed(&coordinator, "g"), Some(42));
        // The group record, as docs/format.md draws it.
        let group = coordinator.group("g").unwrap();
        group.borrow_mut().protocol_type = Some("consumer".into());
        group.borrow_mut().generation = 4;
        let (key, value) = group_record(&group.borrow(), true);
        assert_eq!(serde_json::to_string(&key).unwrap(), r#"{"type":"Group","version":1,"group":"g"}"#);
        assert_eq!(value.unwrap(), br#"{"version":1,"protocol_type":"consumer","generation":4}"#);
        assert_eq!(group_record(&group.borrow(), false).1, None);
    }

    #[test]
    fn records_from_before_the_version_field_read_as_version_one() {
        let key: RecordKey =
            serde_json::from_str(r#"{"type":"Offset","group":"g","topic":"t","partition":0}"#).unwrap();
        assert_eq!(key.version(), 1);
        let coordinator = coordinator();
        let value = br#"{"offset":5,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1}"#;
        coordinator.apply_record(&key, Some(value));
        assert_eq!(committed(&coordinator, "g"), Some(5));
        let group: RecordKey = serde_json::from_str(r#"{"type":"Group","group":"g"}"#).unwrap();
        coordinator.apply_record(&group, Some(br#"{"protocol_type":"consumer","generation":4}"#));
        assert_eq!(coordinator.describe("g").map(|g| g.generation), Some(4));
    }

    #[test]
    fn records_from_a_newer_broker_are_skipped_not_misread() {
        let coordinator = coordinator();
        let key: RecordKey =
            serde_json::from_str(r#"{"type":"Offset","version":1,"group":"g","topic":"t","partition":0}"#).unwrap();
        coordinator.apply_record(
            &key,
            Some(br#"{"version":1,"offset":5,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1}"#),
        );
        // A newer value is not applied, and neither is it taken for a tombstone.
        let newer = br#"{"version":2,"offset":9,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1,"more":true}"#;
        coordinator.apply_record(&key, Some(newer));
        assert_eq!(committed(&coordinator, "g"), Some(5));
        let newer_key: RecordKey =
            serde_json::from_str(r#"{"type":"Offset","version":2,"group":"g","topic":"t","partition":0}"#).unwrap();
        coordinator.apply_record(&newer_key, None);
        assert_eq!(committed(&coordinator, "g"), Some(5));
    }
}
