//! The controller quorum's Raft log, kept in the engine partition `__cluster_metadata-0`.
//!
//! raft-rs reads its log synchronously ([`raft::Storage`]), so the entries since the last snapshot are kept in
//! memory ([`MemoryLog`]) and every one of them is also in the engine partition, written and fsynced before
//! raft-rs is told it is persisted. The engine gives the Raft log the same recovery as any partition: CRCs,
//! torn-tail truncation, offline on mid-log corruption.
//!
//! Layout (drawn in `docs/format.md`):
//! - Entry `i` is the one record of the batch at engine offset `i - 1`; the batch's `partitionLeaderEpoch` is
//!   the entry's term, the record's key is the entry type byte followed by the entry's context, and its value
//!   the entry's data (a JSON array of versioned metadata records, empty for a leader's no-op).
//! - `quorum-state`: the Raft hard state (term, vote, commit), a checkpoint file written atomically.
//! - `metadata-snapshot`: the latest snapshot: its index, term, voters and the cluster image at that index.
//!   The engine log starts right after it (log start offset = snapshot index).
//!
//! Terms only grow along the log, as the engine's leader epochs must; a conflicting suffix is cut with the
//! engine's `truncate_to`, which never goes below the commit index (the partition's high watermark).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use serde::{Deserialize, Serialize};
use sluice_engine::batch::{self, BatchBuilder, RecordSpec};
use sluice_engine::checkpoint::{self, Durability};
use sluice_engine::{AppendMode, EngineError, Offset, PartitionLog};

use crate::metadata::{ClusterImage, NodeId};

pub const HARD_STATE_FILE: &str = "quorum-state";
pub const SNAPSHOT_FILE: &str = "metadata-snapshot";
const SNAPSHOT_KIND: &str = "metadata-snapshot v1";
/// Bytes read per step when loading the log at start.
const LOAD_CHUNK_BYTES: usize = 1 << 20;

/// The raft id of a Kafka node id: raft-rs reserves 0 for "nobody", and Kafka node ids start at 0.
pub fn raft_id(node: NodeId) -> u64 {
    u64::try_from(node).unwrap_or(0) + 1
}

pub fn node_id(raft_id: u64) -> NodeId {
    NodeId::try_from(raft_id).unwrap_or(0) - 1
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata log: {0}")]
    Engine(#[from] EngineError),
    #[error("metadata log at {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// A snapshot as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub index: u64,
    pub term: u64,
    pub voters: Vec<u64>,
    pub image: ClusterImage,
}

impl StoredSnapshot {
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut out = format!("{SNAPSHOT_KIND}\n").into_bytes();
        out.extend_from_slice(&body);
        out.push(b'\n');
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(format!("crc32c {crc:08x}\n").as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let body_end = text.trim_end_matches('\n').rfind('\n').ok_or("no CRC line")? + 1;
        let (body, crc_line) = text.split_at(body_end);
        let stored = crc_line
            .trim()
            .strip_prefix("crc32c ")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or("bad CRC line")?;
        if crc32c::crc32c(body.as_bytes()) != stored {
            return Err("CRC mismatch".into());
        }
        let (kind, json) = body.split_once('\n').ok_or("not a metadata snapshot")?;
        if kind != SNAPSHOT_KIND {
            return Err(format!("not a metadata snapshot of this version ('{kind}')"));
        }
        serde_json::from_str(json.trim()).map_err(|e| e.to_string())
    }

    pub fn to_raft(&self) -> Snapshot {
        let mut snapshot = Snapshot { data: self.encode().into(), ..Default::default() };
        let meta = snapshot.mut_metadata();
        meta.index = self.index;
        meta.term = self.term;
        meta.mut_conf_state().voters = self.voters.clone();
        snapshot
    }
}

/// The in-memory side of the Raft log: what raft-rs reads.
#[derive(Debug, Default)]
pub struct MemoryLog {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// Index and term of the latest snapshot (0, 0 before any).
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    /// The latest snapshot's bytes, sent to followers that are too far behind.
    pub snapshot: Option<Snapshot>,
    /// Entries `snapshot_index + 1 ..`.
    pub entries: Vec<Entry>,
}

impl MemoryLog {
    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// Appends entries that raft-rs handed over, cutting any conflicting suffix first.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.snapshot_index && first.index <= self.last_index() + 1,
            "appending entry {} to a log holding {}..={}",
            first.index,
            self.first_index(),
            self.last_index()
        );
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    /// Drops entries up to `index`, which a snapshot now covers.
    pub fn compact(&mut self, index: u64, term: u64) {
        let drop = index.saturating_sub(self.snapshot_index).min(self.entries.len() as u64) as usize;
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Replaces everything with an installed snapshot.
    pub fn install(&mut self, snapshot: &Snapshot) {
        let meta = snapshot.get_metadata();
        self.entries.clear();
        self.snapshot_index = meta.index;
        self.snapshot_term = meta.term;
        self.conf_state = meta.get_conf_state().clone();
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.snapshot = Some(snapshot.clone());
    }

    fn entry(&self, index: u64) -> Option<&Entry> {
        let position = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(position).ok()?)
    }
}

impl Storage for MemoryLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState { hard_state: self.hard_state.clone(), conf_state: self.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.snapshot_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(high <= self.last_index() + 1, "entries [{low}, {high}) past the last index {}", self.last_index());
        let from = (low - self.first_index()) as usize;
        let to = (high - self.first_index()) as usize;
        let mut out = self.entries[from..to].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.snapshot_index {
            return Ok(self.snapshot_term);
        }
        if index < self.snapshot_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.entry(index) {
            Some(entry) => Ok(entry.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(MemoryLog::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(MemoryLog::last_index(self))
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match &self.snapshot {
            Some(snapshot) => Ok(snapshot.clone()),
            None => Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)),
        }
    }
}

/// Encodes one entry as the batch stored at engine offset `index - 1`.
pub fn entry_to_batch(entry: &Entry, now_ms: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + entry.context.len());
    key.push(entry.get_entry_type() as u8);
    key.extend_from_slice(&entry.context);
    let mut builder = BatchBuilder::with_capacity(entry.data.len() + key.len() + 96);
    builder.push(&RecordSpec { key: Some(&key), value: Some(&entry.data), headers: &[], timestamp_ms: now_ms });
    let mut bytes = builder.finish();
    let epoch = i32::try_from(entry.term).unwrap_or(i32::MAX);
    batch::stamp_offset_and_epoch(&mut bytes, entry.index as i64 - 1, epoch);
    bytes
}

/// Decodes a stored batch back into its entry.
pub fn batch_to_entry(bytes: &[u8]) -> Result<Entry, String> {
    let header = batch::peek_header(bytes).ok_or("no batch header")?;
    let records = batch::records(bytes).ok_or("records do not parse")?;
    let [record] = records.as_slice() else { return Err(format!("{} records in one entry", records.len())) };
    let key = record.key.ok_or("no entry type")?;
    let (&kind, context) = key.split_first().ok_or("empty entry key")?;
    let entry_type = match kind {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        other => return Err(format!("unknown entry type {other}")),
    };
    let mut entry = Entry::default();
    entry.set_entry_type(entry_type);
    entry.index = u64::try_from(header.base_offset() + 1).map_err(|_| "negative offset")?;
    entry.term = u64::try_from(header.partition_leader_epoch.get()).map_err(|_| "negative term")?;
    entry.context = context.to_vec().into();
    entry.data = record.value.unwrap_or_default().to_vec().into();
    Ok(entry)
}

/// Durable side of the Raft log: the engine partition and the two small files beside it.
pub struct DiskLog {
    log: Rc<PartitionLog>,
    dir: PathBuf,
}

impl DiskLog {
    pub fn new(log: Rc<PartitionLog>) -> DiskLog {
        let dir = log.dir().to_path_buf();
        // The high watermark is the commit index, which `load` sets from the hard state; until then it stays
        // at what the partition's checkpoint recovered (never above a commit index this node saw).
        log.set_replica_bound(Offset::ZERO);
        DiskLog { log, dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this node has ever held quorum state (a fresh data directory has not).
    pub async fn has_state(&self) -> Result<bool, StoreError> {
        Ok(checkpoint::read_small(&self.dir.join(HARD_STATE_FILE)).await?.is_some()
            || self.log.log_end_offset() > Offset::ZERO)
    }

    /// Loads the hard state, the snapshot and the entries after it.
    pub async fn load(&self) -> Result<(MemoryLog, Option<StoredSnapshot>), StoreError> {
        let mut memory = MemoryLog::default();
        let hard_state = checkpoint::read_small(&self.dir.join(HARD_STATE_FILE)).await?;
        let snapshot_bytes = checkpoint::read_small(&self.dir.join(SNAPSHOT_FILE)).await?;
        if hard_state.is_none() && (snapshot_bytes.is_some() || self.log.log_end_offset() > Offset::ZERO) {
            // The hard state is written before any entry or snapshot (see the driver), so entries without it
            // mean it was lost, and with it the vote this node cast: voting again could elect two leaders.
            return Err(StoreError::Corrupt {
                path: self.dir.join(HARD_STATE_FILE),
                reason: "missing while the metadata log holds entries: the vote this node cast is lost. Remove \
                         the __cluster_metadata-0 directory and start with --rejoin-with-empty-log to copy the \
                         log back from the other voters"
                    .into(),
            });
        }
        if let Some(bytes) = hard_state {
            let rows = checkpoint::decode("quorum-state", &bytes).ok_or_else(|| StoreError::Corrupt {
                path: self.dir.join(HARD_STATE_FILE),
                reason: "unreadable hard state (a vote may be lost: refusing to guess)".into(),
            })?;
            match rows.as_slice() {
                [row] if row.len() == 3 => {
                    memory.hard_state.term = row[0] as u64;
                    memory.hard_state.vote = row[1] as u64;
                    memory.hard_state.commit = row[2] as u64;
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        path: self.dir.join(HARD_STATE_FILE),
                        reason: "hard state has the wrong shape".into(),
                    })
                }
            }
        }
        let snapshot = match snapshot_bytes {
            Some(bytes) => Some(
                StoredSnapshot::decode(&bytes)
                    .map_err(|reason| StoreError::Corrupt { path: self.dir.join(SNAPSHOT_FILE), reason })?,
            ),
            None => None,
        };
        if let Some(stored) = &snapshot {
            memory.install(&stored.to_raft());
        }
        let mut position = Offset(i64::try_from(memory.snapshot_index).unwrap_or(i64::MAX));
        if self.log.log_end_offset() < position {
            // A snapshot from the leader was written but the log was not yet restarted after it (a crash
            // between the two steps of `install_snapshot`): finish the install.
            tracing::warn!(
                snapshot_index = position.0,
                log_end = self.log.log_end_offset().0,
                "the metadata log ends before its snapshot: restarting it after the snapshot"
            );
            self.log.reset_to(position).await?;
        }
        let end = self.log.log_end_offset();
        if position < self.log.log_start_offset() {
            return Err(StoreError::Corrupt {
                path: self.dir.clone(),
                reason: format!(
                    "the log starts at {} but the snapshot ends at {}",
                    self.log.log_start_offset(),
                    position
                ),
            });
        }
        while position < end {
            let bytes = self.log.read_bytes(position, LOAD_CHUNK_BYTES, end).await?;
            let batches = batch::split_batches(&bytes);
            if batches.is_empty() {
                return Err(StoreError::Corrupt {
                    path: self.dir.clone(),
                    reason: format!("no whole entry at {position}"),
                });
            }
            for one in batches {
                let entry = batch_to_entry(one).map_err(|reason| StoreError::Corrupt {
                    path: self.dir.clone(),
                    reason: format!("entry at offset {position}: {reason}"),
                })?;
                position = Offset(entry.index as i64);
                memory.append(std::slice::from_ref(&entry));
            }
        }
        // The commit index may lag the snapshot (a crash between the two writes) but never the log's end.
        memory.hard_state.commit = memory.hard_state.commit.clamp(memory.snapshot_index, memory.last_index());
        self.log.set_replica_bound(Offset(memory.hard_state.commit as i64));
        Ok((memory, snapshot))
    }

    /// Writes `entries` (cutting a conflicting suffix first) and waits until they are durable.
    pub async fn append(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = entries.first() else { return Ok(()) };
        let first_offset = Offset(first.index as i64 - 1);
        if first_offset < self.log.log_end_offset() {
            self.log.truncate_to(first_offset).await?;
        }
        let now = sluice_engine::types::now_ms();
        let mut bytes = Vec::new();
        for entry in entries {
            bytes.extend_from_slice(&entry_to_batch(entry, now));
        }
        let info = self.log.append(bytes, AppendMode::Replica).await?;
        self.log.wait_durable(info.last_offset.next()).await?;
        Ok(())
    }

    pub async fn save_hard_state(&self, hard_state: &HardState) -> Result<(), StoreError> {
        let row = vec![hard_state.term as i64, hard_state.vote as i64, hard_state.commit as i64];
        let bytes = checkpoint::encode("quorum-state", &[row]);
        checkpoint::write_with(&self.dir, HARD_STATE_FILE, bytes, Durability::Now).await?;
        Ok(())
    }

    /// The commit index moved: committed entries may no longer be cut.
    pub fn set_committed(&self, commit: u64) {
        self.log.set_replica_bound(Offset(commit as i64));
    }

    /// Writes a snapshot and drops the log entries it covers, keeping `keep_entries` behind it for followers
    /// that lag a little.
    pub async fn save_snapshot(&self, snapshot: &StoredSnapshot, keep_entries: u64) -> Result<(), StoreError> {
        checkpoint::write_with(&self.dir, SNAPSHOT_FILE, snapshot.encode(), Durability::Now).await?;
        let start = snapshot.index.saturating_sub(keep_entries);
        if start > 0 {
            self.log.delete_records_before(Offset(start as i64)).await?;
        }
        Ok(())
    }

    /// Installs a snapshot from the leader: the snapshot file, then an empty log starting after it.
    pub async fn install_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        checkpoint::write_with(&self.dir, SNAPSHOT_FILE, snapshot.encode(), Durability::Now).await?;
        self.log.reset_to(Offset(snapshot.index as i64)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry { index, term, data: data.to_vec().into(), context: b"ctx".to_vec().into(), ..Default::default() }
    }

    #[test]
    fn entries_round_trip_through_batches() {
        let original = entry(42, 7, b"[]");
        let bytes = entry_to_batch(&original, 1);
        assert!(batch::validate(&bytes, 1 << 20).is_ok());
        let header = batch::peek_header(&bytes).unwrap();
        assert_eq!((header.base_offset(), header.partition_leader_epoch.get()), (41, 7));
        assert_eq!(batch_to_entry(&bytes).unwrap(), original);
    }

    #[test]
    fn the_memory_log_cuts_conflicts_and_compacts() {
        let mut log = MemoryLog::default();
        log.append(&[entry(1, 1, b""), entry(2, 1, b""), entry(3, 1, b"")]);
        log.append(&[entry(2, 2, b"x")]);
        assert_eq!(log.last_index(), 2);
        assert_eq!(Storage::term(&log, 2).unwrap(), 2);
        log.compact(1, 1);
        assert_eq!(log.first_index(), 2);
        assert_eq!(Storage::term(&log, 1).unwrap(), 1);
        assert!(log.entries(1, 2, None, GetEntriesContext::empty(false)).is_err());
        assert_eq!(log.entries(2, 3, None, GetEntriesContext::empty(false)).unwrap().len(), 1);
    }

    #[test]
    fn snapshots_are_sealed_by_a_crc() {
        let stored = StoredSnapshot { index: 9, term: 2, voters: vec![1, 2, 3], image: ClusterImage::default() };
        let bytes = stored.encode();
        let back = StoredSnapshot::decode(&bytes).unwrap();
        assert_eq!((back.index, back.term, back.voters), (9, 2, vec![1, 2, 3]));
        let mut torn = bytes.clone();
        torn[30] ^= 1;
        assert!(StoredSnapshot::decode(&torn).is_err());
    }

    /// Opens `__cluster_metadata-0` under `root` as the node does, and runs `body` on its disk log.
    fn with_disk_log(
        body: impl FnOnce(DiskLog) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + 'static,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async move {
            let manager = sluice_engine::LogManager::new(&root, sluice_engine::ManagerOptions::default(), false);
            manager.spawn_background();
            let tp = sluice_engine::TopicPartition::new(crate::metadata::METADATA_TOPIC, 0);
            let config = sluice_engine::LogConfig { retention_ms: -1, ..Default::default() };
            let log = manager.open_log(&tp, config).await.unwrap();
            body(DiskLog::new(log)).await;
        });
    }

    #[test]
    fn entries_without_a_hard_state_are_refused_not_voted_on() {
        with_disk_log(|disk| {
            Box::pin(async move {
                disk.save_hard_state(&HardState { term: 1, vote: 1, commit: 0, ..Default::default() }).await.unwrap();
                disk.append(&[entry(1, 1, b"[]"), entry(2, 1, b"[]")]).await.unwrap();
                assert_eq!(disk.load().await.unwrap().0.last_index(), 2);
                std::fs::remove_file(disk.dir().join(HARD_STATE_FILE)).unwrap();
                let error = disk.load().await.err().unwrap().to_string();
                assert!(error.contains("vote") && error.contains("--rejoin-with-empty-log"), "{error}");
            })
        });
    }

    #[test]
    fn a_snapshot_install_cut_short_by_a_crash_is_finished_at_load() {
        with_disk_log(|disk| {
            Box::pin(async move {
                disk.save_hard_state(&HardState { term: 2, vote: 1, commit: 10, ..Default::default() }).await.unwrap();
                disk.append(&[entry(1, 1, b"[]"), entry(2, 1, b"[]")]).await.unwrap();
                // The snapshot file is written, and the process dies before the log restarts after it.
                let stored = StoredSnapshot { index: 10, term: 2, voters: vec![1], image: ClusterImage::default() };
                checkpoint::write_with(disk.dir(), SNAPSHOT_FILE, stored.encode(), Durability::Now).await.unwrap();
                let (memory, snapshot) = disk.load().await.unwrap();
                assert_eq!(snapshot.unwrap().index, 10);
                assert_eq!((memory.snapshot_index, memory.last_index()), (10, 10));
                // The next entry from the leader continues the log.
                disk.append(&[entry(11, 2, b"[]")]).await.unwrap();
                assert_eq!(disk.load().await.unwrap().0.last_index(), 11);
            })
        });
    }
}
