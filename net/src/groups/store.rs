//! Group persistence: groups and committed offsets are records in the group's `__consumer_offsets`
//! partition (flush policy `always`), written before a change is answered and replayed when the shard takes
//! the partition over. Keys and values are versioned JSON (layout in `docs/format.md`); a null value is a
//! tombstone. The topic is compacted (`cleanup.policy=compact`, as Kafka's is): the log cleaner keeps the latest
//! record per group and per committed partition, and removes tombstones after `delete.retention.ms`, so the
//! topic stays about as large as the live state.
//!
//! Replay reads into a [`Replayed`] table of its own, merged into the live one only once the whole partition has
//! been read. Only the coordinator writes these partitions (clients' produce gets INVALID_TOPIC_EXCEPTION), so a
//! batch it could not have written (compressed, transactional, control, idempotent, a bad CRC) or a record that
//! does not parse is corruption: the partition is refused with an error log line, its groups answer
//! COORDINATOR_NOT_AVAILABLE, and nothing of it is half loaded. Never a silent skip, never an unreadable value
//! taken for a tombstone. Only a record of a newer layout is skipped, and logged.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sluice_engine::batch::{self, BatchBuilder, Compression, RecordSpec};
use sluice_engine::types::now_ms;
use sluice_engine::{AppendMode, EngineError, LeaderEpoch, Offset, PartitionLog};

use super::table::{CommittedOffset, Coordinator, CoordinatorLog, Group, GroupResult};
use crate::error::ResponseError;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OffsetValue {
    #[serde(default = "version_one")]
    version: u16,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct GroupValue {
    #[serde(default = "version_one")]
    version: u16,
    protocol_type: Option<String>,
    generation: i32,
}

/// Only the layout version of a key or value, read before the rest so that a newer layout, whatever its
/// fields, is recognised and skipped rather than failing to parse.
#[derive(Deserialize)]
struct LayoutVersion {
    #[serde(default = "version_one")]
    version: u16,
}

/// A record's value before it is serialised: serialising happens when it is appended, and a failure there
/// fails the write instead of writing an empty value (which a reader would take for corruption).
#[derive(Debug, Clone)]
pub(super) enum RecordValue {
    Offset(OffsetValue),
    Group(GroupValue),
}

pub(super) type Persisted = (RecordKey, Option<RecordValue>);

pub(super) fn offset_record(group: &str, topic: &str, partition: i32, value: Option<&CommittedOffset>) -> Persisted {
    let key =
        RecordKey::Offset { version: RECORD_VERSION, group: group.to_string(), topic: topic.to_string(), partition };
    let value = value.map(|v| {
        RecordValue::Offset(OffsetValue {
            version: RECORD_VERSION,
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            commit_timestamp_ms: v.commit_timestamp_ms,
        })
    });
    (key, value)
}

pub(super) fn group_record(group: &Group, live: bool) -> Persisted {
    let key = RecordKey::Group { version: RECORD_VERSION, group: group.id.clone() };
    let value = live.then(|| {
        RecordValue::Group(GroupValue {
            version: RECORD_VERSION,
            protocol_type: group.protocol_type.clone(),
            generation: group.generation,
        })
    });
    (key, value)
}

/// The key and value bytes of a record; an error rather than an empty value if serialising fails.
pub(super) fn encode_record((key, value): &Persisted) -> Result<(Vec<u8>, Option<Vec<u8>>), serde_json::Error> {
    let key = serde_json::to_vec(key)?;
    let value = match value {
        None => None,
        Some(RecordValue::Offset(value)) => Some(serde_json::to_vec(value)?),
        Some(RecordValue::Group(value)) => Some(serde_json::to_vec(value)?),
    };
    Ok((key, value))
}

/// Whether a record of `version` is one this broker can read; logs the ones it skips.
fn readable(version: u16, what: &'static str) -> bool {
    if version > RECORD_VERSION {
        tracing::warn!(version, newest = RECORD_VERSION, what, "skipping a group record written by a newer broker");
        return false;
    }
    true
}

fn layout_version(json: &[u8], what: &str) -> Result<u16, String> {
    serde_json::from_slice::<LayoutVersion>(json)
        .map(|v| v.version)
        .map_err(|error| format!("the {what} is not a versioned JSON object: {error}"))
}

/// Why a `__consumer_offsets` partition could not be loaded. Either way the partition is refused until its
/// leadership moves: its groups are not half loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the partition failed: {0}")]
    Read(#[from] EngineError),
    #[error("unreadable group record at offset {offset}: {reason}")]
    Corrupt { offset: i64, reason: String },
}

fn corrupt(offset: i64, reason: impl Into<String>) -> LoadError {
    LoadError::Corrupt { offset, reason: reason.into() }
}

/// Groups and offsets read back from one partition, kept apart from the live table until the whole partition
/// has been read.
#[derive(Debug, Default)]
pub struct Replayed {
    groups: HashMap<String, Group>,
    /// Groups whose last record read is a tombstone: removed from the live table too when merged.
    deleted: HashSet<String>,
    applied: usize,
}

/// One group as a replay left it: (id, protocol type, generation, committed offsets by (topic, partition)).
pub type ReplayedGroup = (String, Option<String>, i32, Vec<((String, i32), CommittedOffset)>);

impl Replayed {
    /// Records applied so far (skipped newer-layout records not counted).
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// Every group read, sorted by id: what the replay produced.
    pub fn groups(&self) -> Vec<ReplayedGroup> {
        let mut out: Vec<ReplayedGroup> = self
            .groups
            .values()
            .map(|g| {
                let offsets = g.offsets.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                (g.id.clone(), g.protocol_type.clone(), g.generation, offsets)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// One batch holding the live state of these groups as the coordinator writes it (a trim writes the same
    /// records), with `base_offset`. `None` if a record failed to serialise or there is no group.
    pub fn live_state_batch(&self, base_offset: i64) -> Option<Vec<u8>> {
        let mut records = Vec::new();
        for group in self.groups.values() {
            records.push(encode_record(&group_record(group, true)).ok()?);
            for ((topic, partition), offset) in &group.offsets {
                records.push(encode_record(&offset_record(&group.id, topic, *partition, Some(offset))).ok()?);
            }
        }
        if records.is_empty() {
            return None;
        }
        let mut builder = BatchBuilder::new();
        for (key, value) in &records {
            builder.push(&RecordSpec { key: Some(key), value: value.as_deref(), headers: &[], timestamp_ms: 0 });
        }
        let mut bytes = builder.finish();
        batch::stamp_offset_and_epoch(&mut bytes, base_offset, 0);
        Some(bytes)
    }

    fn group_or_create(&mut self, id: &str) -> &mut Group {
        self.deleted.remove(id);
        self.groups.entry(id.to_string()).or_insert_with(|| Group::new(id))
    }

    /// Replays whole batches read from a coordinator partition: `bytes` starts with the batch holding `from`
    /// (records before `from`, the log start, are skipped). Returns the offset after the last batch, which is
    /// always past `from`: an input that does not move the replay forward is an error, so a replay cannot
    /// loop.
    pub fn replay_batches(&mut self, bytes: &[u8], from: Offset) -> Result<Offset, LoadError> {
        if bytes.is_empty() {
            return Err(corrupt(from.0, "no batch where the log says there are records"));
        }
        let mut position = from;
        let mut rest = bytes;
        while !rest.is_empty() {
            // Compaction leaves batches with fewer records than their offsets span.
            let header = batch::validate_stored(rest, usize::MAX)
                .map_err(|error| corrupt(position.0, format!("invalid batch: {error}")))?;
            let (one, after) = rest.split_at(header.size_bytes());
            rest = after;
            let base = header.base_offset();
            let next = base
                .checked_add(i64::from(header.last_offset_delta.get()) + 1)
                .ok_or_else(|| corrupt(base, "batch offsets overflow"))?;
            if next <= position.0 {
                return Err(corrupt(
                    base,
                    format!("batch ends at {} and does not move past offset {}", next - 1, position.0),
                ));
            }
            let foreign = if header.is_control() {
                Some("a control batch")
            } else if header.is_transactional() {
                Some("a transactional batch")
            } else if header.has_producer_id() {
                Some("a batch with a producer id")
            } else if header.compression() != Some(Compression::None) {
                Some("a compressed batch")
            } else {
                None
            };
            if let Some(what) = foreign {
                return Err(corrupt(base, format!("{what}, which the group coordinator never writes")));
            }
            let records = batch::records(one).ok_or_else(|| corrupt(base, "the batch's records do not parse"))?;
            for record in records {
                if record.offset < position.0 {
                    continue;
                }
                self.apply_record(record.key, record.value).map_err(|reason| corrupt(record.offset, reason))?;
            }
            position = Offset(next);
        }
        Ok(position)
    }

    /// Applies one record. A key or value of a newer layout is logged and skipped; anything else that does not
    /// parse is an error, never a tombstone.
    fn apply_record(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), String> {
        let key = key.ok_or("a record without a key")?;
        if !readable(layout_version(key, "key")?, "key") {
            return Ok(());
        }
        let key: RecordKey = serde_json::from_slice(key).map_err(|error| format!("the key does not parse: {error}"))?;
        match key {
            RecordKey::Offset { group, topic, partition, .. } => {
                let parsed = match value {
                    None => None,
                    Some(value) => {
                        if !readable(layout_version(value, "offset value")?, "offset value") {
                            return Ok(());
                        }
                        let parsed = serde_json::from_slice::<OffsetValue>(value)
                            .map_err(|error| format!("the offset value does not parse: {error}"))?;
                        Some(parsed)
                    }
                };
                let group = self.group_or_create(&group);
                match parsed {
                    Some(v) => {
                        let committed = CommittedOffset {
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata,
                            commit_timestamp_ms: v.commit_timestamp_ms,
                        };
                        group.offsets.insert((topic, partition), committed);
                    }
                    None => {
                        group.offsets.remove(&(topic, partition));
                    }
                }
            }
            RecordKey::Group { group: id, .. } => match value {
                None => {
                    self.groups.remove(&id);
                    self.deleted.insert(id);
                }
                Some(value) => {
                    if !readable(layout_version(value, "group value")?, "group value") {
                        return Ok(());
                    }
                    let parsed = serde_json::from_slice::<GroupValue>(value)
                        .map_err(|error| format!("the group value does not parse: {error}"))?;
                    let group = self.group_or_create(&id);
                    group.protocol_type = parsed.protocol_type;
                    group.generation = parsed.generation;
                }
            },
        }
        self.applied += 1;
        Ok(())
    }
}

/// Reads a coordinator partition from its log start to its end into a [`Replayed`] table.
async fn replay(log: &PartitionLog) -> Result<Replayed, LoadError> {
    let mut replayed = Replayed::default();
    let mut position = log.log_start_offset();
    let end = log.log_end_offset();
    while position < end {
        let bytes = log.read_bytes(position, 1 << 20, end).await?;
        if bytes.is_empty() {
            // Compaction removed every batch from here to the end of the sealed segments.
            break;
        }
        let next = replayed.replay_batches(&bytes, position)?;
        assert!(next > position, "a replay step that succeeds moves forward");
        position = next;
    }
    Ok(replayed)
}

impl Coordinator {
    /// Marks a partition about to be loaded: its groups answer COORDINATOR_LOAD_IN_PROGRESS from now on.
    pub fn mark_loading(&self, partition: i32) {
        self.refused.borrow_mut().remove(&partition);
        self.loading.borrow_mut().insert(partition);
    }

    /// Whether a partition is marked as loading and not yet loaded or unloaded.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.loading.borrow().contains(&partition)
    }

    /// Takes over a `__consumer_offsets` partition this broker now leads: replays its records into groups.
    /// The whole log is read, up to its end: what a new leader holds beyond its high watermark was written
    /// by the previous coordinator and commits with the next follower fetch. Meanwhile the partition's groups
    /// answer COORDINATOR_LOAD_IN_PROGRESS. A partition that cannot be replayed is refused (COORDINATOR_NOT_
    /// AVAILABLE) until it is unloaded, and none of its groups are installed.
    pub async fn load_partition(
        &self,
        partition: i32,
        log: Rc<PartitionLog>,
        leader_epoch: LeaderEpoch,
    ) -> Result<usize, LoadError> {
        self.mark_loading(partition);
        let result = replay(&log).await;
        let still_wanted = self.loading.borrow_mut().remove(&partition);
        let replayed = match result {
            Ok(replayed) => replayed,
            Err(error) => {
                if still_wanted {
                    self.refused.borrow_mut().insert(partition);
                }
                return Err(error);
            }
        };
        if !still_wanted {
            // Unloaded while it was read (its leadership moved): install nothing.
            return Ok(0);
        }
        let applied = replayed.applied;
        {
            let mut groups = self.groups.borrow_mut();
            for id in replayed.deleted {
                groups.remove(&id);
            }
            for (id, group) in replayed.groups {
                groups.insert(id, Rc::new(RefCell::new(group)));
            }
        }
        let resigned = Rc::new(sluice_engine::watch::OffsetWatch::new(0));
        let replaced = self.logs.borrow_mut().insert(partition, CoordinatorLog { log, leader_epoch, resigned });
        if let Some(replaced) = replaced {
            replaced.resigned.advance(1);
        }
        Ok(applied)
    }

    /// Appends records to the group's partition and waits until they are durable.
    pub(super) async fn persist(&self, group_id: &str, records: Vec<Persisted>) -> GroupResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let CoordinatorLog { log, leader_epoch, resigned } = self.log_for(group_id)?;
        let now = now_ms();
        let encoded = records.iter().map(encode_record).collect::<Result<Vec<_>, _>>().map_err(|error| {
            tracing::error!(group = group_id, %error, "encoding a group record failed: nothing was written");
            ResponseError::UnknownServerError
        })?;
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

    /// A record's key and value, either maybe null.
    type Raw<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    fn batch(records: &[Raw<'_>], base_offset: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        for (key, value) in records {
            builder.push(&RecordSpec { key: *key, value: *value, headers: &[], timestamp_ms: 1 });
        }
        let mut bytes = builder.finish();
        batch::stamp_offset_and_epoch(&mut bytes, base_offset, 0);
        bytes
    }

    fn replay_one(records: &[Raw<'_>]) -> Result<Replayed, LoadError> {
        let mut replayed = Replayed::default();
        let next = replayed.replay_batches(&batch(records, 0), Offset(0))?;
        assert_eq!(next, Offset(records.len() as i64));
        Ok(replayed)
    }

    fn committed(replayed: &Replayed, group: &str) -> Option<i64> {
        replayed.groups.get(group)?.offsets.get(&("t".to_string(), 0)).map(|c| c.offset)
    }

    const OFFSET_KEY: &[u8] = br#"{"type":"Offset","version":1,"group":"g","topic":"t","partition":0}"#;
    const OFFSET_5: &[u8] = br#"{"version":1,"offset":5,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1}"#;

    #[test]
    fn records_carry_their_version_and_read_back() {
        let offset = CommittedOffset { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 7 };
        let (key, value) = encode_record(&offset_record("g", "t", 0, Some(&offset))).unwrap();
        assert_eq!(key, OFFSET_KEY);
        let value = value.unwrap();
        assert_eq!(
            String::from_utf8(value.clone()).unwrap(),
            r#"{"version":1,"offset":42,"leader_epoch":3,"metadata":"m","commit_timestamp_ms":7}"#
        );
        let mut replayed = replay_one(&[(Some(&key), Some(&value))]).unwrap();
        assert_eq!(committed(&replayed, "g"), Some(42));
        // The group record, as docs/format.md draws it.
        let group = replayed.group_or_create("g");
        group.protocol_type = Some("consumer".into());
        group.generation = 4;
        let (key, value) = encode_record(&group_record(group, true)).unwrap();
        assert_eq!(key, br#"{"type":"Group","version":1,"group":"g"}"#);
        assert_eq!(value.unwrap(), br#"{"version":1,"protocol_type":"consumer","generation":4}"#);
        assert!(group_record(group, false).1.is_none());
        // What the coordinator writes for the live state reads back as the same groups.
        let again = {
            let mut again = Replayed::default();
            again.replay_batches(&replayed.live_state_batch(0).unwrap(), Offset(0)).unwrap();
            again
        };
        assert_eq!(again.groups(), replayed.groups());
    }

    #[test]
    fn records_from_before_the_version_field_read_as_version_one() {
        let replayed = replay_one(&[
            (
                Some(br#"{"type":"Offset","group":"g","topic":"t","partition":0}"#),
                Some(br#"{"offset":5,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1}"#),
            ),
            (Some(br#"{"type":"Group","group":"g"}"#), Some(br#"{"protocol_type":"consumer","generation":4}"#)),
        ])
        .unwrap();
        assert_eq!(committed(&replayed, "g"), Some(5));
        assert_eq!(replayed.groups()[0].2, 4);
        assert_eq!(replayed.applied(), 2);
    }

    #[test]
    fn records_from_a_newer_broker_are_skipped_not_misread() {
        let newer_value =
            br#"{"version":2,"offset":9,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":1,"more":true}"#;
        // A newer layout may drop fields or add key types: only its version is read before it is skipped.
        let newer_layout = br#"{"version":2,"position":{"offset":9}}"#;
        let newer_key = br#"{"type":"Transaction","version":2,"id":"x"}"#;
        let replayed = replay_one(&[
            (Some(OFFSET_KEY), Some(OFFSET_5)),
            // A newer value is not applied, and neither is it taken for a tombstone.
            (Some(OFFSET_KEY), Some(newer_value)),
            (Some(OFFSET_KEY), Some(newer_layout)),
            (Some(br#"{"type":"Offset","version":2,"group":"g","topic":"t","partition":0}"#), None),
            (Some(newer_key), Some(b"{}")),
        ])
        .unwrap();
        assert_eq!(committed(&replayed, "g"), Some(5));
        assert_eq!(replayed.applied(), 1);
    }

    #[test]
    fn tombstones_delete_and_later_records_recreate() {
        let group_key: &[u8] = br#"{"type":"Group","version":1,"group":"g"}"#;
        let replayed =
            replay_one(&[(Some(OFFSET_KEY), Some(OFFSET_5)), (Some(OFFSET_KEY), None), (Some(group_key), None)])
                .unwrap();
        assert!(replayed.groups().is_empty());
        assert!(replayed.deleted.contains("g"));
        let replayed = replay_one(&[(Some(group_key), None), (Some(OFFSET_KEY), Some(OFFSET_5))]).unwrap();
        assert_eq!(committed(&replayed, "g"), Some(5));
        assert!(replayed.deleted.is_empty());
    }

    /// What a hostile client once produced into `__consumer_offsets` (kcat: a non-JSON value), and other records
    /// the coordinator never writes: each is an error naming its offset, never a tombstone or a silent skip.
    #[test]
    fn unreadable_records_are_corruption() {
        let cases: Vec<(&str, Vec<Raw<'_>>)> = vec![
            ("a non-JSON value", vec![(Some(OFFSET_KEY), Some(OFFSET_5)), (Some(OFFSET_KEY), Some(b"hello"))]),
            ("a value missing fields", vec![(Some(OFFSET_KEY), Some(br#"{"version":1,"offset":5}"#))]),
            ("a non-JSON group value", vec![(Some(br#"{"type":"Group","group":"g"}"#), Some(b"\x00\x01"))]),
            ("a record without a key", vec![(Some(OFFSET_KEY), Some(OFFSET_5)), (None, Some(OFFSET_5))]),
            ("a non-JSON key", vec![(Some(b"orders"), Some(OFFSET_5))]),
            ("an unknown key type", vec![(Some(br#"{"type":"Nope","version":1}"#), Some(OFFSET_5))]),
            ("a key of an impossible version", vec![(Some(br#"{"type":"Group","version":70000,"group":"g"}"#), None)]),
        ];
        for (what, records) in cases {
            match replay_one(&records) {
                Err(LoadError::Corrupt { offset, reason }) => {
                    assert_eq!(offset, records.len() as i64 - 1, "{what}: {reason}");
                }
                other => panic!("{what}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn batches_the_coordinator_never_writes_are_corruption() {
        let good = batch(&[(Some(OFFSET_KEY), Some(OFFSET_5))], 0);
        let mut replayed = Replayed::default();
        assert_eq!(replayed.replay_batches(&good, Offset(0)).unwrap(), Offset(1));
        let with_producer = |builder: BatchBuilder| {
            let mut builder = builder;
            builder.push(&RecordSpec { key: Some(OFFSET_KEY), value: Some(OFFSET_5), headers: &[], timestamp_ms: 1 });
            builder.finish()
        };
        let idempotent = with_producer(BatchBuilder::new().producer(7, 0, 0));
        let transactional = with_producer(BatchBuilder::new().producer(7, 0, 0).transactional());
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for (what, bytes) in [("idempotent", idempotent), ("transactional", transactional), ("bad CRC", flipped)] {
            let mut replayed = Replayed::default();
            let result = replayed.replay_batches(&bytes, Offset(0));
            assert!(matches!(result, Err(LoadError::Corrupt { .. })), "{what}: {result:?}");
            assert_eq!(replayed.applied(), 0, "{what}");
        }
        // Nothing where the log says there are records, and a batch that does not move the replay on.
        assert!(Replayed::default().replay_batches(&[], Offset(3)).is_err());
        assert!(Replayed::default().replay_batches(&good, Offset(1)).is_err());
        assert!(Replayed::default().replay_batches(&good[..good.len() - 1], Offset(0)).is_err());
    }

    #[test]
    fn records_before_the_log_start_are_not_replayed() {
        let bytes = batch(&[(Some(OFFSET_KEY), Some(OFFSET_5)), (Some(OFFSET_KEY), None)], 10);
        let mut replayed = Replayed::default();
        assert_eq!(replayed.replay_batches(&bytes, Offset(11)).unwrap(), Offset(12));
        assert_eq!(replayed.applied(), 1);
    }

    #[test]
    fn a_partition_that_cannot_be_replayed_is_refused_until_unloaded() {
        let coordinator = coordinator();
        coordinator.set_offsets_partitions(1);
        coordinator.refused.borrow_mut().insert(0);
        assert_eq!(coordinator.log_for("g").unwrap_err(), ResponseError::CoordinatorNotAvailable);
        assert_eq!(coordinator.fetch_offsets("g", None).unwrap_err(), ResponseError::CoordinatorNotAvailable);
        assert!(coordinator.holds_partition(0), "a refused partition is not read again with every image");
        coordinator.unload_partition(0);
        assert!(!coordinator.holds_partition(0));
        assert_eq!(coordinator.log_for("g").unwrap_err(), ResponseError::NotCoordinator);
    }

    #[test]
    fn a_partition_marked_for_loading_answers_load_in_progress_until_loaded_or_unloaded() {
        let coordinator = coordinator();
        coordinator.set_offsets_partitions(1);
        coordinator.mark_loading(0);
        assert_eq!(coordinator.log_for("g").unwrap_err(), ResponseError::CoordinatorLoadInProgress);
        assert!(coordinator.holds_partition(0) && coordinator.is_loading(0));
        coordinator.unload_partition(0);
        assert!(!coordinator.is_loading(0), "a load not started yet is skipped once unloaded");
        assert_eq!(coordinator.log_for("g").unwrap_err(), ResponseError::NotCoordinator);
    }
}
