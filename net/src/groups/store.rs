//! Group persistence: groups and committed offsets are records in the group's `__consumer_offsets`
//! partition (flush policy `always`), written before a change is answered and replayed when the shard takes
//! the partition over. Keys and values are JSON; a null value is a tombstone. When a partition has accumulated [`SNAPSHOT_AFTER_RECORDS`] records since its start, the live
//! state is appended again and everything before it is deleted, so the topic does not grow without bound.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sluice_engine::batch::{self, BatchBuilder, RecordSpec};
use sluice_engine::types::now_ms;
use sluice_engine::{AppendMode, LeaderEpoch, Offset, PartitionLog};

use super::table::{partition_for_group, CommittedOffset, Coordinator, Group, GroupResult};
use crate::error::ResponseError;

/// Records in a coordinator partition after which its live state is rewritten and the rest deleted.
pub const SNAPSHOT_AFTER_RECORDS: i64 = 100_000;

/// Persisted record: key and value as JSON (null value = tombstone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(super) enum RecordKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupValue {
    protocol_type: Option<String>,
    generation: i32,
}

pub(super) type Persisted = (RecordKey, Option<Vec<u8>>);

pub(super) fn offset_record(group: &str, topic: &str, partition: i32, value: Option<&CommittedOffset>) -> Persisted {
    let key = RecordKey::Offset { group: group.to_string(), topic: topic.to_string(), partition };
    let value = value.map(|v| {
        serde_json::to_vec(&OffsetValue {
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
    let key = RecordKey::Group { group: group.id.clone() };
    let value = live.then(|| {
        serde_json::to_vec(&GroupValue { protocol_type: group.protocol_type.clone(), generation: group.generation })
            .unwrap_or_default()
    });
    (key, value)
}

impl Coordinator {
    /// Takes over a `__consumer_offsets` partition: replays its records into groups.
    pub async fn load_partition(
        &self,
        partition: i32,
        log: Rc<PartitionLog>,
    ) -> Result<usize, sluice_engine::EngineError> {
        let mut position = log.log_start_offset();
        let end = log.high_watermark();
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
        self.logs.borrow_mut().insert(partition, log);
        Ok(applied)
    }

    fn apply_record(&self, key: &RecordKey, value: Option<&[u8]>) {
        match key {
            RecordKey::Offset { group, topic, partition } => {
                let group = self.group_or_create(group);
                let mut group = group.borrow_mut();
                match value.and_then(|v| serde_json::from_slice::<OffsetValue>(v).ok()) {
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
            RecordKey::Group { group: id } => match value.and_then(|v| serde_json::from_slice::<GroupValue>(v).ok()) {
                Some(v) => {
                    let group = self.group_or_create(id);
                    let mut group = group.borrow_mut();
                    group.protocol_type = v.protocol_type;
                    group.generation = v.generation;
                }
                None => {
                    self.groups.borrow_mut().remove(id);
                }
            },
        }
    }

    /// Appends records to the group's partition and waits until they are durable.
    pub(super) async fn persist(&self, group_id: &str, records: Vec<Persisted>) -> GroupResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let log = self.log_for(group_id)?;
        let now = now_ms();
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            records.iter().map(|(key, value)| (serde_json::to_vec(key).unwrap_or_default(), value.clone())).collect();
        let mut builder = BatchBuilder::with_capacity(
            encoded.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>() + 256,
        );
        for (key, value) in &encoded {
            builder.push(&RecordSpec { key: Some(key), value: value.as_deref(), headers: &[], timestamp_ms: now });
        }
        let info = log
            .append(builder.finish(), AppendMode::Coordinator { leader_epoch: LeaderEpoch(0) })
            .await
            .map_err(|error| {
                tracing::error!(group = group_id, %error, "writing to __consumer_offsets failed");
                ResponseError::KafkaStorageError
            })?;
        log.high_watermark_watch()
            .wait_for(info.last_offset.next().0)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        Ok(())
    }

    /// Rewrites the live state of partitions that have grown past [`SNAPSHOT_AFTER_RECORDS`] and deletes
    /// everything before the rewrite.
    pub async fn trim(&self) {
        let logs: Vec<(i32, Rc<PartitionLog>)> = self.logs.borrow().iter().map(|(p, l)| (*p, l.clone())).collect();
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
