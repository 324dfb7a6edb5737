//! `PartitionLog`: one partition's append-only log on its owner shard. It owns the segments, the producer
//! state, the leader-epoch cache and the partition checkpoint.
//!
//! Lifecycle: `LogManager::open_log` recovers it (DESIGN.md §3; `recovery.rs`), the shard appends and reads,
//! the housekeeping task applies retention, and `close` writes indexes, snapshot and checkpoints for a clean
//! start.
//!
//! This file holds the log's state, its accessors and the helpers every concern shares; each concern is a file
//! of its own that adds methods to [`PartitionLog`]: `append.rs` (validate, stamp, write, roll), `flush.rs`
//! (flush policies, group commit, durable waits), `prewritten.rs` (zeros kept past a hot log's end), `read.rs`
//! (file slices, offsets by time and by epoch), `truncate.rs` (a follower's divergence), `retention.rs`
//! (retention, DeleteRecords, segment deletion), `checkpoint.rs` (checkpoint files, producer snapshots, the
//! clean close), `recovery.rs` (open and recovery) and `files.rs` (the directory's file names).
//!
//! Invariants:
//! - One append, truncation or roll in flight per partition (`append_lock`); reads run concurrently and only
//!   see offsets below `log_end`, which advances after the write completed.
//! - Offsets are contiguous: every batch's base offset is the previous batch's last offset + 1.
//! - Leader epochs never decrease along the log. An append that would lower them is input (a leader's stale
//!   view, a follower's bad data) and refused; the publish step asserts it.
//! - High watermark <= log end and durable offset <= log end, always; high watermark <= durable offset too
//!   while the high watermark follows the durable offset (one replica). With followers a replica may learn a
//!   high watermark before its own fsync, so only the first two hold there. Asserted after every change.
//! - Truncation never cuts below the high watermark (asserted before anything is cut).
//! - After a failed write or fsync the log is poisoned: appends fail until restart, never retried silently.
//! - Segments wholly below `log_start` are deleted; the checkpoint is written before the files go.

mod append;
mod checkpoint;
mod clean;
mod files;
mod flush;
mod prewritten;
mod read;
mod recovery;
mod replica;
mod retention;
mod truncate;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::context::ShardContext;
use crate::epoch::EpochCache;
use crate::error::{EngineError, Result};
use crate::fifo_lock::{FifoGuard, FifoLock};
use crate::prewrite::LogPrewrite;
use crate::producer::ProducerStateTable;
use crate::segment::{Segment, SegmentFile};
use crate::types::{LeaderEpoch, Offset, TopicPartition};
use crate::watch::OffsetWatch;

pub use files::{EPOCH_CHECKPOINT, PARTITION_CHECKPOINT};

/// Who is appending, which decides what the append may contain and who assigns offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// A client produce on the leader: offsets assigned here, control batches refused.
    Client { leader_epoch: LeaderEpoch },
    /// The group or transaction coordinator on the leader: may write control batches.
    Coordinator { leader_epoch: LeaderEpoch },
    /// A follower copying the leader: offsets and epochs are the leader's and must continue this log.
    Replica,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// `LogAppendTime` stamped on the batches, or -1 for `CreateTime` topics (Kafka's ProduceResponse).
    pub log_append_time_ms: i64,
    pub log_start_offset: Offset,
    /// The batch was a retry of one already in the log; nothing was written.
    pub duplicate: bool,
}

/// A byte range of a segment file holding whole batches, ready for `sendfile`/`splice`. The `Arc<File>` keeps
/// the file readable even if retention unlinks the segment before the send completes.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u32,
    /// Base offset of the first batch in the slice (at or below the requested offset).
    pub first_offset: Offset,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub scanned_bytes: u64,
    /// Bytes of torn batches cut from segment tails.
    pub truncated_bytes: u64,
    /// Zero bytes cut from segment tails: pre-written space (crate::prewrite), or appends that never reached
    /// the disk.
    pub zero_tail_bytes: u64,
    pub rebuilt_indexes: usize,
}

pub struct PartitionLog {
    tp: TopicPartition,
    dir: PathBuf,
    config: RefCell<LogConfig>,
    segments: RefCell<BTreeMap<Offset, Rc<Segment>>>,
    log_start: Cell<Offset>,
    log_end: OffsetWatch,
    durable: OffsetWatch,
    high_watermark: OffsetWatch,
    /// The high watermark follows the durable offset, up to `replica_bound` (`i64::MAX` with no followers to
    /// wait for; the replication layer sets it from the followers' progress or the leader's answer).
    high_watermark_follows_durable: Cell<bool>,
    replica_bound: Cell<i64>,
    recovery_point: Cell<Offset>,
    producers: RefCell<ProducerStateTable>,
    epochs: RefCell<EpochCache>,
    append_lock: FifoLock,
    poisoned: Cell<Option<&'static str>>,
    unflushed_messages: Cell<u64>,
    last_flush_ms: Cell<i64>,
    /// Queued for the shard's next group-commit round (`ShardContext::queue_flush`).
    in_flush_queue: Cell<bool>,
    /// Zeros written past the active segment's end (crate::prewrite).
    prewrite: LogPrewrite,
    recovery: RefCell<RecoveryReport>,
    /// How far compaction has cleaned this log, and its recent passes (`clean.rs`).
    cleaner: RefCell<crate::clean::CleanerCheckpoint>,
    ctx: Rc<ShardContext>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("partition", &self.tp)
            .field("log_start", &self.log_start.get())
            .field("log_end", &self.log_end.get())
            .finish()
    }
}

impl PartitionLog {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Applies changed topic configs at run time; they take effect on the next append or retention pass.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.borrow_mut() = config;
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start.get()
    }

    /// One past the last offset written (Kafka's log end offset).
    pub fn log_end_offset(&self) -> Offset {
        Offset(self.log_end.get())
    }

    /// Fires on every append: fetch long polls wait on it.
    pub fn log_end_watch(&self) -> &OffsetWatch {
        &self.log_end
    }

    /// One past the last offset that is durable under the log's flush policy.
    pub fn durable_offset(&self) -> Offset {
        Offset(self.durable.get())
    }

    pub fn high_watermark(&self) -> Offset {
        Offset(self.high_watermark.get())
    }

    pub fn high_watermark_watch(&self) -> &OffsetWatch {
        &self.high_watermark
    }

    /// Set by the replication layer (or, on a single broker, from the durable offset). Clamped to the log end.
    pub fn set_high_watermark(&self, offset: Offset) {
        self.high_watermark.advance(offset.0.min(self.log_end.get()));
        self.assert_offsets_ordered();
    }

    /// With no followers (a single broker, or replication factor 1) the high watermark is the durable offset:
    /// consumers never see a record a crash could take back. The replication layer turns this off and sets
    /// the high watermark itself.
    pub fn set_high_watermark_follows_durable(&self, follows: bool) {
        self.high_watermark_follows_durable.set(follows);
        if follows {
            self.replica_bound.set(i64::MAX);
            self.set_high_watermark(self.durable_offset());
        }
    }

    /// Moves the durable offset up to `offset`, never past the log end: a flush round that read the log end
    /// before a truncation made it durable only up to where the truncation cut (and fsynced).
    fn advance_durable(&self, offset: i64) {
        self.durable.advance(offset.min(self.log_end.get()));
        if self.high_watermark_follows_durable.get() {
            self.high_watermark.advance(self.durable.get().min(self.replica_bound.get()));
        }
        self.assert_offsets_ordered();
    }

    /// The order of the log's offsets, checked after every change to one of them (and on in release):
    /// high watermark <= log end and durable offset <= log end always, and high watermark <= durable offset
    /// while the high watermark follows the durable offset (a single replica). With followers, a replica may
    /// learn a high watermark from its leader before its own fsync, so that third one does not hold there.
    fn assert_offsets_ordered(&self) {
        let (high_watermark, durable, log_end) = (self.high_watermark.get(), self.durable.get(), self.log_end.get());
        assert!(
            high_watermark <= log_end,
            "{}: high watermark {high_watermark} is past the log end {log_end}",
            self.tp
        );
        assert!(durable <= log_end, "{}: durable offset {durable} is past the log end {log_end}", self.tp);
        assert!(
            !self.high_watermark_follows_durable.get() || high_watermark <= durable,
            "{}: high watermark {high_watermark} is past the durable offset {durable}, which it follows (one replica)",
            self.tp
        );
    }

    /// The last stable offset: below any open transaction's first offset, and never above the high watermark.
    pub fn last_stable_offset(&self) -> Offset {
        let hw = self.high_watermark();
        match self.producers.borrow().first_unstable_offset() {
            Some(first) => first.min(hw),
            None => hw,
        }
    }

    pub fn segment_count(&self) -> usize {
        self.segments.borrow().len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.borrow().values().map(|s| s.size_bytes()).sum()
    }

    pub fn recovery_report(&self) -> RecoveryReport {
        self.recovery.borrow().clone()
    }

    pub fn poisoned(&self) -> Option<&'static str> {
        self.poisoned.get()
    }

    /// Forgets producer ids whose last batch is `producer.id.expiration.ms` old at `now_ms` (see
    /// [`ProducerStateTable::remove_expired`]). Returns how many. The housekeeping task calls this every
    /// `producer.id.expiration.check.interval.ms`.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let expiration_ms = self.config.borrow().producer_id_expiration_ms;
        self.producers.borrow_mut().remove_expired(now_ms, expiration_ms)
    }

    pub fn producer_state(&self) -> std::cell::Ref<'_, ProducerStateTable> {
        self.producers.borrow()
    }

    pub fn epoch_cache(&self) -> std::cell::Ref<'_, EpochCache> {
        self.epochs.borrow()
    }

    fn name(&self) -> String {
        self.tp.to_string()
    }

    /// The segment appends go to: the last one.
    fn active(&self) -> Rc<Segment> {
        let segments = self.segments.borrow();
        let Some((_, active)) = segments.last_key_value() else {
            panic!("{}: a log always has a segment: open creates one, and nothing removes the last", self.tp)
        };
        active.clone()
    }

    fn poison(&self, operation: &'static str, error: &EngineError) {
        tracing::error!(partition = %self.tp, operation, %error, "log poisoned: refusing further appends");
        self.poisoned.set(Some(operation));
        self.durable.fail();
    }

    fn check_writable(&self) -> Result<()> {
        match self.poisoned.get() {
            Some(operation) => Err(EngineError::Poisoned { partition: self.name(), operation }),
            None => Ok(()),
        }
    }

    /// Takes the partition's write lock: one append, truncation, roll, DeleteRecords, retention or checkpoint
    /// at a time. Every write to the partition's directory holds it, so two writes of one checkpoint file never
    /// overlap (they share its tmp path), and once [`PartitionLog::close`] has closed it nothing more is
    /// written there: a deleted partition's directory name may already belong to its successor.
    async fn lock_for_write(&self) -> Result<FifoGuard<'_>> {
        self.append_lock.lock().await.map_err(|_| EngineError::Closed { partition: self.name() })
    }

    /// Fsyncs a segment file; a failure poisons the log (never retried).
    async fn sync_or_poison(&self, file: &SegmentFile) -> Result<()> {
        if let Err(error) = file.fdatasync().await {
            self.poison("fsync", &error);
            return Err(error);
        }
        Ok(())
    }

    /// The segment's open file, opening it through the shard's fd cache if needed. A closed log opens nothing:
    /// its files are opened by path, and a deleted partition's path may already hold its successor's segments.
    pub(crate) async fn segment_file(&self, segment: &Rc<Segment>) -> Result<Rc<SegmentFile>> {
        if self.log_end.is_failed() {
            return Err(EngineError::Closed { partition: self.name() });
        }
        segment.referenced.set(true);
        if let Some(file) = segment.file.borrow().as_ref() {
            return Ok(file.clone());
        }
        let retired = || EngineError::Closed { partition: format!("{} (segment {} retired)", self.tp, segment.base.0) };
        if segment.retired.get() {
            return Err(retired());
        }
        let file = Rc::new(SegmentFile::open(&segment.log_path(), false).await?);
        if segment.retired.get() {
            // Replaced while the open was in flight: what was opened may be its successor's file.
            return Err(retired());
        }
        if segment.state.borrow().index.is_none() {
            let index = segment.load_index(&file).await?;
            segment.state.borrow_mut().index.get_or_insert(index);
        }
        if let Some(existing) = segment.file.borrow().as_ref() {
            return Ok(existing.clone());
        }
        *segment.file.borrow_mut() = Some(file.clone());
        self.ctx.fd_cache.register(segment);
        Ok(file)
    }
}
