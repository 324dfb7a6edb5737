//! `PartitionLog`: one partition's append-only log on its owner shard. It owns the segments, the producer
//! state, the leader-epoch cache and the partition checkpoint.
//!
//! Lifecycle: `LogManager::open_log` recovers it (DESIGN.md §3), the shard appends and reads, the housekeeping
//! task applies retention, and `close` writes indexes, snapshot and checkpoints for a clean start.
//!
//! Invariants:
//! - One append, truncation or roll in flight per partition (`append_lock`); reads run concurrently and only
//!   see offsets below `log_end`, which advances after the write completed.
//! - Offsets are contiguous: every batch's base offset is the previous batch's last offset + 1.
//! - After a failed write or fsync the log is poisoned: appends fail until restart, never retried silently.
//! - Segments wholly below `log_start` are deleted; the checkpoint is written before the files go.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::fifo_lock::{FifoGuard, FifoLock};

use crate::batch::{self, RecordBatchHeader};
use crate::checkpoint::{self, Durability};
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::context::ShardContext;
use crate::epoch::EpochCache;
use crate::error::{BatchError, EngineError, Result};
use crate::prewrite::LogPrewrite;
use crate::producer::{ProducerStateTable, SequenceCheck};
use crate::segment::{self, RecoveredBatch, ScanControl, Segment, SegmentFile, SegmentState};
use crate::types::{now_ms, LeaderEpoch, Offset, TopicPartition};
use crate::watch::OffsetWatch;

pub const PARTITION_CHECKPOINT: &str = "partition.checkpoint";
pub const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Producer snapshots kept per partition.
const SNAPSHOTS_KEPT: usize = 2;

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
    /// Single-replica mode: the high watermark follows the durable offset (no followers to wait for).
    high_watermark_follows_durable: Cell<bool>,
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
    }

    /// With no followers (a single broker, or replication factor 1) the high watermark is the durable offset:
    /// consumers never see a record a crash could take back. The replication layer turns this off and sets
    /// the high watermark itself.
    pub fn set_high_watermark_follows_durable(&self, follows: bool) {
        self.high_watermark_follows_durable.set(follows);
        if follows {
            self.set_high_watermark(self.durable_offset());
        }
    }

    fn advance_durable(&self, offset: i64) {
        self.durable.advance(offset);
        if self.high_watermark_follows_durable.get() {
            self.high_watermark.advance(self.durable.get().min(self.log_end.get()));
        }
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

    pub fn producer_state(&self) -> std::cell::Ref<'_, ProducerStateTable> {
        self.producers.borrow()
    }

    pub fn epoch_cache(&self) -> std::cell::Ref<'_, EpochCache> {
        self.epochs.borrow()
    }

    fn name(&self) -> String {
        self.tp.to_string()
    }

    fn active(&self) -> Rc<Segment> {
        let segments = self.segments.borrow();
        let (_, active) =
            segments.last_key_value().unwrap_or_else(|| panic!("{}: a log always has a segment", self.tp));
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

    /// Takes the partition's append lock: one append, truncation, roll or checkpoint at a time.
    async fn lock_for_write(&self) -> Result<FifoGuard<'_>> {
        self.append_lock
            .lock()
            .await
            .map_err(|_| EngineError::Offline { partition: self.name(), reason: "log closed".into() })
    }

    /// Fsyncs a segment file; a failure poisons the log (never retried).
    async fn sync_or_poison(&self, file: &SegmentFile) -> Result<()> {
        if let Err(error) = file.fdatasync().await {
            self.poison("fsync", &error);
            return Err(error);
        }
        Ok(())
    }

    /// The segment's open file, opening it through the shard's fd cache if needed.
    pub(crate) async fn segment_file(&self, segment: &Rc<Segment>) -> Result<Rc<SegmentFile>> {
        segment.referenced.set(true);
        if let Some(file) = segment.file.borrow().as_ref() {
            return Ok(file.clone());
        }
        let file = Rc::new(SegmentFile::open(&segment.log_path(), false).await?);
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

    // ----- append -------------------------------------------------------------------------------------

    /// Validates and appends one or more concatenated RecordBatch v2 byte ranges. For leader modes, assigns
    /// offsets and stamps the leader epoch in place; for `Replica`, checks that the leader's offsets continue
    /// this log. Returns once the bytes are written (not yet durable: see [`PartitionLog::wait_durable`]).
    pub async fn append(self: &Rc<Self>, mut batches: Vec<u8>, mode: AppendMode) -> Result<AppendInfo> {
        let max_bytes = self.config.borrow().max_message_bytes;
        let mut headers: Vec<(usize, RecordBatchHeader)> = Vec::with_capacity(1);
        let mut position = 0usize;
        while position < batches.len() {
            let header = batch::validate(&batches[position..], max_bytes).map_err(|source| EngineError::Batch {
                partition: self.name(),
                position,
                source,
            })?;
            if header.is_control() && matches!(mode, AppendMode::Client { .. }) {
                return Err(EngineError::Batch {
                    partition: self.name(),
                    position,
                    source: BatchError::Invalid { reason: "clients may not write control batches" },
                });
            }
            headers.push((position, header));
            position += header.size_bytes();
        }
        if headers.is_empty() {
            return Err(EngineError::InvalidRequest(format!("{}: append with no record batch", self.tp)));
        }
        let idempotent = headers.iter().any(|(_, h)| h.has_producer_id());
        if idempotent && headers.len() > 1 && mode != AppendMode::Replica {
            return Err(EngineError::InvalidRequest(format!(
                "{}: an idempotent produce must carry exactly one batch per partition",
                self.tp
            )));
        }

        let _permit = self.lock_for_write().await?;
        self.check_writable()?;

        let next = self.log_end_offset();
        let leader_epoch = match mode {
            AppendMode::Client { leader_epoch } | AppendMode::Coordinator { leader_epoch } => Some(leader_epoch),
            AppendMode::Replica => None,
        };
        if leader_epoch.is_some() {
            let (_, header) = &headers[0];
            match self.producers.borrow().check(header) {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate(meta)) => {
                    return Ok(AppendInfo {
                        base_offset: meta.first_offset,
                        last_offset: meta.last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: self.log_start.get(),
                        duplicate: true,
                    })
                }
                Err(source) => return Err(EngineError::Sequence { partition: self.name(), source }),
            }
        }

        // Assign offsets (leader) or check the leader's (replica).
        let now = now_ms();
        let log_append_time = self.config.borrow().timestamp_type == TimestampType::LogAppendTime;
        let mut expected = next.0;
        for (position, header) in headers.iter_mut() {
            match leader_epoch {
                Some(epoch) => {
                    let bytes = &mut batches[*position..*position + header.size_bytes()];
                    batch::stamp_offset_and_epoch(bytes, expected, epoch.0);
                    if log_append_time {
                        batch::set_log_append_time(bytes, now);
                    }
                    *header = batch::peek_header(bytes).unwrap_or_else(|| panic!("batch shrank while stamping"));
                }
                None => {
                    if header.base_offset() != expected {
                        return Err(EngineError::Batch {
                            partition: self.name(),
                            position: *position,
                            source: BatchError::Invalid { reason: "replicated offsets do not continue the log" },
                        });
                    }
                }
            }
            expected = header.last_offset() + 1;
        }
        let last_offset = Offset(expected - 1);
        let total_bytes = batches.len() as u64;

        self.maybe_roll(total_bytes, last_offset, now).await?;
        let active = self.active();
        let file = self.segment_file(&active).await?;
        let write_position = active.size_bytes();
        if let Err(error) = file.write_all_at(batches, write_position).await {
            self.poison("write", &error);
            return Err(error);
        }

        // The bytes are in the file: publish them.
        self.prewrite.appended(&self.ctx.prewrite, total_bytes, now);
        let interval = self.config.borrow().index_interval_bytes;
        let mut new_epoch = false;
        {
            let mut state = active.state.borrow_mut();
            for (position, header) in &headers {
                let file_position = write_position + *position as u64;
                let relative = (header.base_offset() - active.base.0) as u32;
                let max_timestamp = header.max_timestamp.get();
                state.max_timestamp_ms = state.max_timestamp_ms.max(max_timestamp);
                let segment_max_timestamp = state.max_timestamp_ms;
                if state.bytes_since_index_entry >= interval {
                    let index = state.index.get_or_insert_with(Default::default);
                    index.push_offset(relative, file_position as u32);
                    index.maybe_push_time(segment_max_timestamp, relative);
                    state.bytes_since_index_entry = 0;
                }
                state.bytes_since_index_entry =
                    state.bytes_since_index_entry.saturating_add(header.size_bytes() as u32);
                self.producers.borrow_mut().update(header);
                let epoch = LeaderEpoch(header.partition_leader_epoch.get());
                new_epoch |= self.epochs.borrow_mut().assign(epoch, Offset(header.base_offset()));
            }
            state.size_bytes = write_position + total_bytes;
            state.next_offset = last_offset.next();
            state.first_append_ms.get_or_insert(now);
        }
        self.log_end.advance(last_offset.next().0);
        let records: u64 = headers.iter().map(|(_, h)| h.records_count.get() as u64).sum();
        self.after_write(records, now);
        self.extend_prewrite(&file, write_position + total_bytes);
        if new_epoch {
            self.write_epoch_checkpoint().await?;
        }
        Ok(AppendInfo {
            base_offset: next,
            last_offset,
            log_append_time_ms: if log_append_time { now } else { -1 },
            log_start_offset: self.log_start.get(),
            duplicate: false,
        })
    }

    /// Hands the write to the flush policy: queue a group commit, or count towards an interval flush.
    fn after_write(&self, records: u64, now: i64) {
        let policy = self.config.borrow().flush_policy;
        match policy {
            FlushPolicy::Always => self.request_flush(),
            FlushPolicy::Interval { flush_messages, flush_interval } => {
                self.advance_durable(self.log_end.get());
                let unflushed = self.unflushed_messages.get() + records;
                self.unflushed_messages.set(unflushed);
                let due = now - self.last_flush_ms.get() >= flush_interval.as_millis() as i64;
                if unflushed >= flush_messages || due {
                    self.request_flush();
                }
            }
            FlushPolicy::ReplicationOnly => self.advance_durable(self.log_end.get()),
        }
    }

    /// Queues this log for the shard's next group-commit round, once until the round takes it.
    pub(crate) fn request_flush(&self) {
        if !self.in_flush_queue.replace(true) {
            self.ctx.queue_flush(self.tp.clone());
        }
    }

    /// A group-commit round took this log from the queue: the next flush request queues it again.
    pub(crate) fn flush_request_taken(&self) {
        self.in_flush_queue.set(false);
    }

    /// Keeps pre-written zeros ahead of a hot log's end (crate::prewrite). Runs under the append lock right
    /// after the data, with no await since the write, so the zeros never land where data goes and the group
    /// commit this append just queued flushes both. A failed write of zeros loses nothing: it is logged, and
    /// this log stops pre-writing until it proves hot again.
    fn extend_prewrite(&self, file: &SegmentFile, size: u64) {
        let (policy, segment_bytes) = {
            let config = self.config.borrow();
            (config.flush_policy, config.segment_bytes)
        };
        if policy != FlushPolicy::Always {
            return;
        }
        let Some(extension) = self.prewrite.wanted(&self.ctx.prewrite, size, segment_bytes) else { return };
        match file.write_zeros_at(extension.position, extension.len) {
            Ok(()) => self.prewrite.extended(&self.ctx.prewrite, extension),
            Err(error) => {
                tracing::warn!(partition = %self.tp, %error, "pre-writing zeros failed; appending without them");
                self.prewrite.cool_down();
            }
        }
    }

    /// Cuts the pre-written zeros past the active segment's end from its file (append lock held). A failed
    /// cut poisons the log: a sealed or cleanly closed segment must end on a batch boundary.
    async fn cut_prewritten(&self, active: &Segment, file: &SegmentFile) -> Result<()> {
        if self.prewrite.zeros_ahead() == 0 {
            return Ok(());
        }
        if let Err(error) = file.truncate(active.size_bytes()).await {
            self.poison("cut pre-written zeros", &error);
            return Err(error);
        }
        self.prewrite.zeros_gone(&self.ctx.prewrite);
        Ok(())
    }

    /// Whether this log holds pre-written zeros but had no append for a while (the housekeeping task asks).
    pub(crate) fn prewrite_idle(&self, now: i64) -> bool {
        self.prewrite.idle(now)
    }

    /// Gives an idle log's pre-written zeros back to the shard's budget (crate::prewrite). The cut need not
    /// be durable: recovery cuts zeros past the log end too.
    pub(crate) async fn trim_idle_prewrite(&self, now: i64) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        if self.poisoned.get().is_some() || !self.prewrite.idle(now) {
            return Ok(());
        }
        let active = self.active();
        let file = self.segment_file(&active).await?;
        self.cut_prewritten(&active, &file).await
    }

    /// Whether an interval-policy log has unflushed data older than its `flush.ms`.
    pub(crate) fn interval_flush_due(&self, now: i64) -> bool {
        match self.config.borrow().flush_policy {
            FlushPolicy::Interval { flush_interval, .. } => {
                self.unflushed_messages.get() > 0 && now - self.last_flush_ms.get() >= flush_interval.as_millis() as i64
            }
            _ => false,
        }
    }

    /// Waits until `offset` (exclusive) is durable under the flush policy: fsynced for `always`, written for
    /// the others. Fails if the log is poisoned first.
    pub async fn wait_durable(&self, offset: Offset) -> Result<()> {
        self.durable.wait_for(offset.0).await.map_err(|_| EngineError::Poisoned {
            partition: self.name(),
            operation: self.poisoned.get().unwrap_or("fsync"),
        })
    }

    /// Fsyncs the active segment and advances the durable offset. Called by the shard's group commit; an
    /// error poisons the log.
    pub async fn flush(&self) -> Result<()> {
        if self.poisoned.get().is_some() {
            return Ok(());
        }
        let target = self.log_end.get();
        if target <= self.durable.get() && self.unflushed_messages.get() == 0 {
            return Ok(());
        }
        let active = self.active();
        if self.config.borrow().flush_policy == FlushPolicy::Always {
            self.prewrite.round_started(active.size_bytes());
        }
        let file = match self.segment_file(&active).await {
            Ok(file) => file,
            Err(error) => {
                self.poison("open for fsync", &error);
                return Err(error);
            }
        };
        self.sync_or_poison(&file).await?;
        self.unflushed_messages.set(0);
        self.last_flush_ms.set(now_ms());
        self.advance_durable(target);
        Ok(())
    }

    /// Rolls to a new segment when the incoming bytes would pass `segment.bytes`, the active segment is older
    /// than `segment.ms`, or relative offsets or positions would overflow 32 bits.
    async fn maybe_roll(&self, incoming_bytes: u64, last_offset: Offset, now: i64) -> Result<()> {
        let active = self.active();
        let (size, first_append, empty) = {
            let state = active.state.borrow();
            (state.size_bytes, state.first_append_ms, state.next_offset == active.base)
        };
        if empty {
            return Ok(());
        }
        let config = self.config.borrow().clone();
        let too_big = size + incoming_bytes > config.segment_bytes || size + incoming_bytes > u64::from(u32::MAX);
        let too_old = first_append.is_some_and(|t| now - t >= config.segment_ms);
        let offsets_overflow = last_offset.0 - active.base.0 > i64::from(u32::MAX) - 1;
        if too_big || too_old || offsets_overflow {
            self.roll().await?;
        }
        Ok(())
    }

    /// Seals the active segment (fsync, index files) and starts a new one at the log end. The checkpoint's
    /// recovery point moves to the new segment, and a producer snapshot is taken there.
    async fn roll(&self) -> Result<()> {
        let active = self.active();
        let new_base = self.log_end_offset();
        if active.base == new_base {
            return Ok(());
        }
        let file = self.segment_file(&active).await?;
        self.cut_prewritten(&active, &file).await?;
        self.sync_or_poison(&file).await?;
        self.write_index_files(&active, Durability::Now).await?;
        self.advance_durable(self.log_end.get());
        let segment = Rc::new(Segment::new(&self.dir, new_base, Segment::empty_state(new_base)));
        let new_file = Rc::new(SegmentFile::open(&segment.log_path(), true).await?);
        checkpoint::sync_dir(&self.dir).await?;
        self.prewrite.restart_at(0);
        *segment.file.borrow_mut() = Some(new_file);
        self.ctx.fd_cache.register(&segment);
        self.segments.borrow_mut().insert(new_base, segment);
        tracing::debug!(partition = %self.tp, base = new_base.0, "rolled segment");
        self.recovery_point.set(new_base);
        self.write_producer_snapshot(new_base, Durability::Now).await?;
        self.write_partition_checkpoint().await
    }

    async fn write_index_files(&self, segment: &Segment, durability: Durability) -> Result<()> {
        let (offsets, times) = {
            let state = segment.state.borrow();
            match state.index.as_ref() {
                Some(index) => (index.encode_offsets(), index.encode_times()),
                None => return Ok(()),
            }
        };
        checkpoint::write_with(&self.dir, &segment::index_file_name(segment.base), offsets, durability).await?;
        checkpoint::write_with(&self.dir, &segment::time_index_file_name(segment.base), times, durability).await
    }

    // ----- read ---------------------------------------------------------------------------------------

    /// Returns whole batches starting with the one that holds `start`, up to `max_bytes` (the first batch is
    /// returned whole even if larger, so consumers progress), and only batches wholly below `upper_bound`
    /// (the high watermark or last stable offset). Reads stay within one segment, as Kafka's do.
    pub async fn read(&self, start: Offset, max_bytes: usize, upper_bound: Offset) -> Result<Option<FileSlice>> {
        let log_start = self.log_start.get();
        let log_end = self.log_end_offset();
        if start < log_start || start > log_end {
            return Err(EngineError::OffsetOutOfRange { partition: self.name(), offset: start, log_start, log_end });
        }
        let upper = upper_bound.min(log_end);
        if start >= upper {
            return Ok(None);
        }
        let segment = {
            let segments = self.segments.borrow();
            let floor = segments.range(..=start).next_back().map(|(_, s)| s.clone());
            match floor {
                Some(s) if s.next_offset() > start => s,
                _ => match segments.range(start..).next() {
                    Some((_, s)) => s.clone(),
                    None => return Ok(None),
                },
            }
        };
        let file = self.segment_file(&segment).await?;
        let Some((position, first)) = segment.locate(&file, start).await? else { return Ok(None) };
        if first.last_offset() >= upper.0 {
            return Ok(None);
        }
        let segment_size = segment.size_bytes();
        let upper_position = if upper >= segment.next_offset() {
            segment_size
        } else {
            match segment.locate(&file, upper).await? {
                Some((p, _)) => p,
                None => segment_size,
            }
        };
        let first_end = position + first.size_bytes() as u64;
        let limit = upper_position.min(position.saturating_add(max_bytes as u64).max(first_end));
        let end = if limit == upper_position || limit == first_end {
            limit
        } else {
            segment.last_boundary_before(&file, first_end, limit).await?
        };
        Ok(Some(FileSlice {
            file: file.shared().clone(),
            position,
            len: (end - position) as u32,
            first_offset: Offset(first.base_offset()),
        }))
    }

    /// Reads a slice's bytes into memory. For tests, tools and the recovery of small ranges; the fetch path
    /// sends slices with zero copy instead.
    pub async fn read_bytes(&self, start: Offset, max_bytes: usize, upper_bound: Offset) -> Result<Vec<u8>> {
        let Some(slice) = self.read(start, max_bytes, upper_bound).await? else { return Ok(Vec::new()) };
        let mut out = vec![0u8; slice.len as usize];
        let file = slice.file.clone();
        let position = slice.position;
        let result = glommio::executor()
            .spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut out, position).map(|_| out)
            })
            .await;
        result.map_err(|e| EngineError::io("read slice", self.dir.clone(), e))
    }

    /// The earliest offset whose record timestamp is at least `timestamp_ms`, and that timestamp, among
    /// offsets below `upper_bound`. Kafka's ListOffsets by timestamp. Compressed batches are not decoded, so
    /// inside one the answer is the batch's base offset and max timestamp.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64, upper_bound: Offset) -> Result<Option<(Offset, i64)>> {
        let segments: Vec<Rc<Segment>> = self.segments.borrow().values().cloned().collect();
        for segment in segments {
            if segment.max_timestamp_ms() < timestamp_ms {
                continue;
            }
            let file = self.segment_file(&segment).await?;
            let start_position = {
                let state = segment.state.borrow();
                let index = state.index.as_ref();
                let relative = index.and_then(|i| i.floor_by_time(timestamp_ms)).map(|e| e.relative_offset);
                relative.and_then(|r| index.and_then(|i| i.floor_by_offset(r))).map_or(0, |e| u64::from(e.position))
            };
            let mut found = None;
            segment::scan_headers(&file, start_position, segment.size_bytes(), |position, header| {
                if header.max_timestamp.get() >= timestamp_ms {
                    found = Some((position, *header));
                    ScanControl::Stop
                } else {
                    ScanControl::Continue
                }
            })
            .await?;
            let Some((position, header)) = found else { continue };
            if header.last_offset() >= upper_bound.0 {
                return Ok(None);
            }
            let bytes = file.read_at(position, header.size_bytes()).await?;
            let (offset, timestamp) = batch::first_offset_at_or_after(&bytes, timestamp_ms)
                .unwrap_or((header.base_offset(), header.max_timestamp.get()));
            let offset = Offset(offset).max(self.log_start.get());
            return Ok(Some((offset, timestamp)));
        }
        Ok(None)
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ends in this log.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> (LeaderEpoch, Offset) {
        self.epochs.borrow().end_offset_for(epoch, self.log_end_offset())
    }

    // ----- truncation and retention ---------------------------------------------------------------------

    /// Removes every record at or after `offset` (a follower diverged from its leader). The log end becomes
    /// the start of the batch that holds `offset`.
    pub async fn truncate_to(self: &Rc<Self>, offset: Offset) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        self.check_writable()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < self.log_start.get() {
            return Err(EngineError::OffsetOutOfRange {
                partition: self.name(),
                offset,
                log_start: self.log_start.get(),
                log_end: self.log_end_offset(),
            });
        }
        // The cut below removes any pre-written zeros with the data (or their whole segment).
        self.prewrite.zeros_gone(&self.ctx.prewrite);
        // Drop whole segments past the point; keep at least the first.
        let doomed: Vec<Rc<Segment>> = {
            let mut segments = self.segments.borrow_mut();
            let first = *segments.keys().next().unwrap_or(&Offset::ZERO);
            let doomed_keys: Vec<Offset> = segments.range(offset..).map(|(k, _)| *k).filter(|k| *k > first).collect();
            doomed_keys.iter().filter_map(|k| segments.remove(k)).collect()
        };
        for segment in &doomed {
            self.delete_segment_files(segment).await?;
        }
        let active = self.active();
        let file = self.segment_file(&active).await?;
        let (cut_position, new_end) = match active.locate(&file, offset).await? {
            Some((position, header)) => (position, Offset(header.base_offset())),
            None => (active.size_bytes(), active.next_offset()),
        };
        if let Err(error) = file.truncate(cut_position).await {
            self.poison("truncate", &error);
            return Err(error);
        }
        self.prewrite.restart_at(cut_position);
        self.sync_or_poison(&file).await?;
        let mut max_timestamp = -1;
        segment::scan_headers(&file, 0, cut_position, |_, header| {
            max_timestamp = max_timestamp.max(header.max_timestamp.get());
            ScanControl::Continue
        })
        .await?;
        {
            let mut state = active.state.borrow_mut();
            state.size_bytes = cut_position;
            state.next_offset = new_end;
            state.max_timestamp_ms = max_timestamp;
            let relative = (new_end.0 - active.base.0) as u32;
            if let Some(index) = state.index.as_mut() {
                index.truncate_from(relative);
            }
            state.bytes_since_index_entry = u32::MAX;
        }
        // Index files of a segment that is active again are stale; recovery must not trust them.
        for path in [active.index_path(), active.time_index_path()] {
            remove_if_exists(&path).await?;
        }
        self.log_end.reset(new_end.0);
        self.durable.reset(self.durable.get().min(new_end.0));
        self.high_watermark.reset(self.high_watermark.get().min(new_end.0));
        self.recovery_point.set(self.recovery_point.get().min(active.base));
        self.producers.borrow_mut().truncate_from(new_end);
        // Snapshots past the new end describe batches that no longer exist.
        for at in list_snapshots(&self.dir)? {
            if at > new_end {
                remove_if_exists(&self.dir.join(format!("{:020}{SNAPSHOT_SUFFIX}", at.0))).await?;
            }
        }
        if self.epochs.borrow_mut().truncate_from_end(new_end) {
            self.write_epoch_checkpoint().await?;
        }
        self.write_partition_checkpoint().await?;
        tracing::info!(partition = %self.tp, offset = new_end.0, "truncated log");
        Ok(())
    }

    /// Advances the log start offset (DeleteRecords) and deletes segments wholly below it. Offsets past the
    /// high watermark are refused.
    pub async fn delete_records_before(&self, offset: Offset) -> Result<Offset> {
        if offset > self.high_watermark() || offset < Offset::ZERO {
            return Err(EngineError::OffsetOutOfRange {
                partition: self.name(),
                offset,
                log_start: self.log_start.get(),
                log_end: self.high_watermark(),
            });
        }
        if offset > self.log_start.get() {
            self.log_start.set(offset);
            self.epochs.borrow_mut().truncate_from_start(offset);
            self.write_epoch_checkpoint().await?;
            self.write_partition_checkpoint().await?;
            self.delete_segments_below_start().await?;
        }
        Ok(self.log_start.get())
    }

    /// Deletes segments past `retention.ms` (by their newest timestamp) or beyond `retention.bytes`, oldest
    /// first. An expired active segment is rolled first so that it can go too. Returns segments deleted.
    pub async fn apply_retention(&self, now: i64) -> Result<usize> {
        let config = self.config.borrow().clone();
        let expired = |segment: &Segment| {
            config.retention_ms >= 0
                && segment.max_timestamp_ms() >= 0
                && now - segment.max_timestamp_ms() > config.retention_ms
        };
        if expired(&self.active()) {
            let _permit = self.lock_for_write().await?;
            if self.poisoned.get().is_none() && expired(&self.active()) {
                self.roll().await?;
            }
        }
        let mut new_start = self.log_start.get();
        {
            let segments = self.segments.borrow();
            let mut total: i64 = segments.values().map(|s| s.size_bytes() as i64).sum();
            let count = segments.len();
            for (i, segment) in segments.values().enumerate() {
                if i + 1 == count {
                    break;
                }
                let over_size =
                    config.retention_bytes >= 0 && total - segment.size_bytes() as i64 >= config.retention_bytes;
                if !(expired(segment) || over_size) {
                    break;
                }
                total -= segment.size_bytes() as i64;
                new_start = new_start.max(segment.next_offset());
            }
        }
        if new_start <= self.log_start.get() {
            return Ok(0);
        }
        tracing::info!(partition = %self.tp, log_start = new_start.0, "retention advances log start");
        self.log_start.set(new_start);
        self.epochs.borrow_mut().truncate_from_start(new_start);
        self.write_epoch_checkpoint().await?;
        self.write_partition_checkpoint().await?;
        self.delete_segments_below_start().await
    }

    async fn delete_segments_below_start(&self) -> Result<usize> {
        let start = self.log_start.get();
        let doomed: Vec<Rc<Segment>> = {
            let mut segments = self.segments.borrow_mut();
            let count = segments.len();
            let keys: Vec<Offset> = segments
                .iter()
                .take(count.saturating_sub(1))
                .filter(|(_, s)| s.next_offset() <= start)
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| segments.remove(k)).collect()
        };
        for segment in &doomed {
            self.delete_segment_files(segment).await?;
        }
        Ok(doomed.len())
    }

    async fn delete_segment_files(&self, segment: &Segment) -> Result<()> {
        segment.close_handles(false);
        // Log last: a crash in between leaves a log without indexes, which recovery rebuilds.
        for path in [segment.index_path(), segment.time_index_path(), segment.log_path()] {
            remove_if_exists(&path).await?;
        }
        Ok(())
    }

    // ----- checkpoints --------------------------------------------------------------------------------

    async fn write_partition_checkpoint(&self) -> Result<()> {
        self.write_partition_checkpoint_with(Durability::Now).await
    }

    /// `partition.checkpoint`'s one row: log start offset, recovery point, high watermark.
    fn partition_checkpoint_row(&self) -> Vec<i64> {
        vec![self.log_start.get().0, self.recovery_point.get().0, self.high_watermark.get()]
    }

    async fn write_partition_checkpoint_with(&self, durability: Durability) -> Result<()> {
        let bytes = checkpoint::encode("partition", &[self.partition_checkpoint_row()]);
        checkpoint::write_with(&self.dir, PARTITION_CHECKPOINT, bytes, durability).await
    }

    async fn write_epoch_checkpoint(&self) -> Result<()> {
        self.write_epoch_checkpoint_with(Durability::Now).await
    }

    async fn write_epoch_checkpoint_with(&self, durability: Durability) -> Result<()> {
        let rows = self.epochs.borrow().to_rows();
        let bytes = checkpoint::encode("leader-epochs", &rows);
        checkpoint::write_with(&self.dir, EPOCH_CHECKPOINT, bytes, durability).await
    }

    async fn write_producer_snapshot(&self, at: Offset, durability: Durability) -> Result<()> {
        let bytes = self.producers.borrow().encode();
        let name = format!("{:020}{SNAPSHOT_SUFFIX}", at.0);
        checkpoint::write_with(&self.dir, &name, bytes, durability).await?;
        let mut snapshots = list_snapshots(&self.dir)?;
        snapshots.sort();
        let excess = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
        for old in snapshots.into_iter().take(excess) {
            remove_if_exists(&self.dir.join(format!("{:020}{SNAPSHOT_SUFFIX}", old.0))).await?;
        }
        Ok(())
    }

    /// Writes everything a clean start needs: the active segment fsynced, its indexes, a producer snapshot at
    /// the log end, the epoch cache and the partition checkpoint. The small files are made durable by the
    /// `syncfs` in [`crate::manager::write_clean_shutdown_marker`]. Leaves the log usable.
    pub async fn checkpoint_for_clean_start(&self) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        self.check_writable()?;
        let active = self.active();
        let file = self.segment_file(&active).await?;
        self.cut_prewritten(&active, &file).await?;
        self.sync_or_poison(&file).await?;
        self.advance_durable(self.log_end.get());
        let deferred = Durability::Deferred;
        self.write_index_files(&active, deferred).await?;
        let end = self.log_end_offset();
        self.recovery_point.set(end);
        self.write_producer_snapshot(end, deferred).await?;
        self.write_epoch_checkpoint_with(deferred).await?;
        self.write_partition_checkpoint_with(deferred).await
    }

    /// Closes the log for good: checkpoints for a clean start, then refuses appends and drops descriptors.
    pub async fn close(&self) -> Result<()> {
        let result = self.checkpoint_for_clean_start().await;
        self.append_lock.close();
        // Zeros a failed checkpoint left in the file are recovery's to cut now, not this shard's budget.
        self.prewrite.zeros_gone(&self.ctx.prewrite);
        for segment in self.segments.borrow().values() {
            segment.close_handles(true);
        }
        self.log_end.fail();
        result
    }

    // ----- open and recovery --------------------------------------------------------------------------

    /// Opens (creating if absent) and recovers a partition log. `clean_shutdown` comes from the data dir's
    /// marker: when false, every segment from the recovery point on is scanned and validated.
    pub(crate) async fn open(
        ctx: Rc<ShardContext>,
        dir: PathBuf,
        tp: TopicPartition,
        config: LogConfig,
        clean_shutdown: bool,
    ) -> Result<Rc<PartitionLog>> {
        let name = tp.to_string();
        // What recovery writes is synced now, or by one syncfs at the end of a process start
        // (`ShardContext::sync_recovery_now`).
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("create partition dir", &dir, e))?;
            if let (Some(parent), true) = (dir.parent(), ctx.sync_recovery_now()) {
                checkpoint::sync_dir(parent).await?;
            }
        }
        let listing = list_dir(&dir)?;
        for tmp in &listing.tmp_files {
            remove_if_exists(tmp).await?;
        }
        // The checkpoints as found, so that recovery rewrites only what it changed.
        let partition_row = match checkpoint::read_small(&dir.join(PARTITION_CHECKPOINT)).await? {
            Some(bytes) => match checkpoint::decode("partition", &bytes) {
                Some(mut rows) if rows.len() == 1 && rows[0].len() == 3 => rows.pop(),
                _ => {
                    tracing::warn!(partition = %name, "partition checkpoint unreadable; recovering from the start");
                    None
                }
            },
            None => None,
        };
        let (mut log_start, mut recovery_point, high_watermark) = match partition_row.as_deref() {
            Some(&[log_start, recovery_point, high_watermark]) => {
                (Offset(log_start), Offset(recovery_point), Offset(high_watermark))
            }
            _ => (Offset::ZERO, Offset::ZERO, Offset::ZERO),
        };
        let epoch_rows = match checkpoint::read_small(&dir.join(EPOCH_CHECKPOINT)).await? {
            Some(bytes) => {
                let rows =
                    checkpoint::decode("leader-epochs", &bytes).filter(|rows| EpochCache::from_rows(rows).is_some());
                if rows.is_none() {
                    tracing::warn!(partition = %name, "leader-epoch checkpoint unreadable; rebuilding from the log");
                    recovery_point = Offset::ZERO;
                }
                rows
            }
            None => None,
        };
        let mut epochs = epoch_rows.as_deref().and_then(EpochCache::from_rows).unwrap_or_default();

        let mut report = RecoveryReport { segments: listing.log_bases.len(), ..Default::default() };
        let mut segments: BTreeMap<Offset, Rc<Segment>> = BTreeMap::new();
        for (i, base) in listing.log_bases.iter().enumerate() {
            let path = dir.join(segment::log_file_name(*base));
            let size = std::fs::metadata(&path).map_err(|e| EngineError::io("stat segment", &path, e))?.len();
            let next = listing.log_bases.get(i + 1).copied().unwrap_or(*base);
            let state = SegmentState {
                size_bytes: size,
                next_offset: next,
                max_timestamp_ms: -1,
                index: None,
                bytes_since_index_entry: u32::MAX,
                first_append_ms: None,
            };
            segments.insert(*base, Rc::new(Segment::new(&dir, *base, state)));
        }
        // An index without its log means the log's directory entry was lost.
        for orphan in &listing.index_bases {
            if !segments.contains_key(orphan) && *orphan >= log_start {
                return Err(EngineError::Corrupt {
                    partition: name,
                    path: dir.join(segment::log_file_name(*orphan)),
                    position: 0,
                    reason: "segment file is missing but its index exists (lost directory entry?)".into(),
                });
            }
        }
        if segments.is_empty() {
            let base = log_start.max(Offset::ZERO);
            let segment = Rc::new(Segment::new(&dir, base, Segment::empty_state(base)));
            let file = SegmentFile::open(&segment.log_path(), true).await?;
            drop(file);
            if ctx.sync_recovery_now() {
                checkpoint::sync_dir(&dir).await?;
            }
            segments.insert(base, segment);
            recovery_point = base;
            report.segments = 1;
        }

        // Pick the producer snapshot to start from: for a clean start the one at the log end; otherwise the
        // newest at or below the recovery point.
        let mut snapshots = list_snapshots(&dir)?;
        snapshots.sort();
        let first_base = *segments.keys().next().unwrap_or(&Offset::ZERO);
        let snapshot = snapshots.iter().rev().find(|s| **s <= recovery_point.max(first_base)).copied();
        let producers_loaded = match snapshot {
            Some(at) => checkpoint::read_small(&dir.join(format!("{:020}{SNAPSHOT_SUFFIX}", at.0)))
                .await?
                .and_then(|b| ProducerStateTable::decode(&b))
                .map(|table| (at, table)),
            None => None,
        };
        let (replay_from, mut producers) = match producers_loaded {
            Some((at, table)) => (at, table),
            None => (first_base, ProducerStateTable::default()),
        };

        let log = Rc::new(PartitionLog {
            tp,
            dir: dir.clone(),
            config: RefCell::new(config),
            segments: RefCell::new(segments),
            log_start: Cell::new(log_start),
            log_end: OffsetWatch::new(0),
            durable: OffsetWatch::new(0),
            high_watermark: OffsetWatch::new(0),
            high_watermark_follows_durable: Cell::new(false),
            recovery_point: Cell::new(recovery_point),
            producers: RefCell::new(ProducerStateTable::default()),
            epochs: RefCell::new(EpochCache::default()),
            append_lock: FifoLock::new(),
            poisoned: Cell::new(None),
            unflushed_messages: Cell::new(0),
            last_flush_ms: Cell::new(now_ms()),
            in_flush_queue: Cell::new(false),
            prewrite: LogPrewrite::default(),
            recovery: RefCell::new(RecoveryReport::default()),
            ctx,
        });

        // Segments before the scan start are trusted (they were fsynced when they rolled); from it on, every
        // batch is validated when the shutdown was not clean.
        let scan_from = if clean_shutdown { None } else { Some(recovery_point.min(replay_from)) };
        let all: Vec<Rc<Segment>> = log.segments.borrow().values().cloned().collect();
        let mut expected_next: Option<Offset> = None;
        for (i, segment) in all.iter().enumerate() {
            let is_last = i + 1 == all.len();
            let next_base = all.get(i + 1).map(|s| s.base);
            let validate = scan_from.is_some_and(|from| next_base.is_none_or(|n| n > from));
            let file = Rc::new(SegmentFile::open(&segment.log_path(), false).await?);
            if let Some(expected) = expected_next {
                if segment.base != expected {
                    return Err(EngineError::Corrupt {
                        partition: log.name(),
                        path: segment.log_path(),
                        position: 0,
                        reason: format!(
                            "offset gap: previous segment ends at {}, this one starts at {}",
                            expected.0 - 1,
                            segment.base.0
                        ),
                    });
                }
            }
            if validate {
                let outcome =
                    log.recover_segment(segment, &file, replay_from, &mut producers, &mut epochs, &mut report).await?;
                if let Some(cut_at) = outcome {
                    // A torn tail: everything after it must be empty, or this is corruption.
                    for later in &all[i + 1..] {
                        if later.size_bytes() > 0 {
                            return Err(EngineError::Corrupt {
                                partition: log.name(),
                                path: segment.log_path(),
                                position: cut_at,
                                reason: "invalid batch followed by later non-empty segments".into(),
                            });
                        }
                    }
                    for later in &all[i + 1..] {
                        log.segments.borrow_mut().remove(&later.base);
                        log.delete_segment_files(later).await?;
                    }
                    *segment.file.borrow_mut() = Some(file);
                    log.ctx.fd_cache.register(segment);
                    break;
                }
            } else {
                let index = segment.load_index(&file).await?;
                let tail_from = index.offsets.last().map_or(0, |e| u64::from(e.position));
                let mut next = segment.base;
                let mut max_timestamp = index.times.last().map_or(-1, |e| e.timestamp_ms);
                let mut size = segment.size_bytes();
                let mut scanned_to = tail_from;
                segment::scan_headers(&file, tail_from, size, |position, header| {
                    next = Offset(header.last_offset() + 1);
                    max_timestamp = max_timestamp.max(header.max_timestamp.get());
                    scanned_to = position + header.size_bytes() as u64;
                    ScanControl::Continue
                })
                .await?;
                if scanned_to != size {
                    // Only zeros past the last batch (pre-written space that was not cut) lose nothing.
                    if segment::zero_run_start(&file, scanned_to, size).await? != scanned_to {
                        return Err(EngineError::Corrupt {
                            partition: log.name(),
                            path: segment.log_path(),
                            position: scanned_to,
                            reason: "segment does not end on a batch boundary after a clean shutdown".into(),
                        });
                    }
                    log.cut_segment_tail(segment, &file, scanned_to, (0, size - scanned_to), "", &mut report).await?;
                    size = scanned_to;
                }
                if next_base.is_some_and(|n| next != n) && size > 0 {
                    return Err(EngineError::Corrupt {
                        partition: log.name(),
                        path: segment.log_path(),
                        position: size,
                        reason: format!("segment ends at offset {} but the next starts at {:?}", next.0 - 1, next_base),
                    });
                }
                {
                    let mut state = segment.state.borrow_mut();
                    state.next_offset = if size == 0 { segment.base } else { next };
                    state.max_timestamp_ms = max_timestamp;
                    state.index = Some(index);
                }
                if clean_shutdown && replay_from < segment.next_offset() && replay_from >= segment.base {
                    // The snapshot predates the log end (an older snapshot was picked): replay headers.
                    let from_position = segment.locate(&file, replay_from).await?.map_or(size, |(p, _)| p);
                    segment::scan_headers(&file, from_position, size, |_, header| {
                        producers.update(header);
                        ScanControl::Continue
                    })
                    .await?;
                }
            }
            expected_next = Some(segment.next_offset());
            if is_last {
                *segment.file.borrow_mut() = Some(file);
                log.ctx.fd_cache.register(segment);
            } else {
                segment.close_handles(false);
            }
        }

        let end = log.active().next_offset();
        epochs.truncate_from_end(end);
        producers.truncate_from(end);
        if log_start > end {
            log_start = end;
        }
        let first_base = *log.segments.borrow().keys().next().unwrap_or(&Offset::ZERO);
        log_start = log_start.max(first_base);
        log.log_start.set(log_start);
        log.log_end.reset(end.0);
        log.durable.reset(end.0);
        log.high_watermark.reset(high_watermark.0.clamp(0, end.0));
        *log.producers.borrow_mut() = producers;
        *log.epochs.borrow_mut() = epochs;
        log.prewrite.restart_at(log.active().size_bytes());
        {
            let active = log.active();
            let mut state = active.state.borrow_mut();
            if state.first_append_ms.is_none() && state.size_bytes > 0 {
                state.first_append_ms = Some(now_ms());
            }
        }
        if !clean_shutdown {
            // Make what recovery kept durable before anything new builds on it.
            let active = log.active();
            if log.ctx.sync_recovery_now() {
                log.segment_file(&active).await?.fdatasync().await?;
            }
            // Stale index files of the active segment would be trusted on the next clean start.
            for path in [active.index_path(), active.time_index_path()] {
                remove_if_exists(&path).await?;
            }
        }
        let deleted = log.delete_segments_below_start().await?;
        // The recovery point stays where the last checkpoint put it: what it vouches for (data fsynced by then,
        // and the index files written with it) is unchanged, since recovery cuts only past it. It never goes
        // below the active segment (older ones were fsynced when they rolled) or past the log end.
        log.recovery_point.set(log.recovery_point.get().clamp(log.active().base, end));
        if !clean_shutdown || deleted > 0 {
            // Rewritten only when changed: each write allocates a fresh inode, and after a crash with 10,000
            // partitions, ext4 spent a fifth of the restart's CPU allocating them.
            if partition_row != Some(log.partition_checkpoint_row()) {
                log.write_partition_checkpoint_with(log.ctx.recovery_durability()).await?;
            }
            if epoch_rows != Some(log.epochs.borrow().to_rows()) {
                log.write_epoch_checkpoint_with(log.ctx.recovery_durability()).await?;
            }
        }
        report.segments = log.segment_count();
        *log.recovery.borrow_mut() = report;
        Ok(log)
    }

    /// Where validating `segment` after an unclean stop may start, with the index of what comes before: the
    /// entry of its on-disk index at or below `trusted_below` (the recovery point, and no later than where the
    /// producer snapshot's replay starts). Index files are written only after the data they cover was
    /// fsynced (at a roll, or at a clean close whose files the next clean start trusted) and are removed when an
    /// unclean recovery or a truncation makes them stale, so the bytes before that entry are as trusted as a
    /// sealed segment's (DESIGN.md §6: recovery scans from the recovery point; older data relies on batch CRCs
    /// at the client). `None`, to validate all of it, when there are no files, they do not hold together, or
    /// the batch at the entry's position is not the one it names.
    async fn trusted_prefix(
        &self,
        segment: &Segment,
        file: &SegmentFile,
        size: u64,
        trusted_below: Offset,
    ) -> Result<Option<(crate::index::SegmentIndex, crate::index::OffsetEntry)>> {
        if trusted_below <= segment.base {
            return Ok(None);
        }
        let Some(mut index) = segment.read_index_files(size).await? else { return Ok(None) };
        let relative = u32::try_from(trusted_below.0 - segment.base.0).unwrap_or(u32::MAX);
        let Some(entry) = index.floor_by_offset(relative) else { return Ok(None) };
        let header = file.read_at(u64::from(entry.position), batch::HEADER_BYTES).await?;
        match batch::peek_header(&header) {
            Some(header) if header.base_offset() == segment.base.0 + i64::from(entry.relative_offset) => {}
            _ => return Ok(None),
        }
        // The scan re-adds entries from this one on.
        index.truncate_from(entry.relative_offset.saturating_add(1));
        Ok(Some((index, entry)))
    }

    /// Validates one segment during unclean recovery, from its start or from a prefix its index files vouch
    /// for ([`PartitionLog::trusted_prefix`]), rebuilding its index and the producer state and epoch cache from
    /// its batches. Returns `Some(position)` when the segment was cut at a torn tail there.
    async fn recover_segment(
        &self,
        segment: &Rc<Segment>,
        file: &SegmentFile,
        replay_from: Offset,
        producers: &mut ProducerStateTable,
        epochs: &mut EpochCache,
        report: &mut RecoveryReport,
    ) -> Result<Option<u64>> {
        let size = file.size()?;
        let interval = self.config.borrow().index_interval_bytes;
        // Validate from the start, or from where this segment's index files vouch for what precedes.
        let trusted_below = self.recovery_point.get().min(replay_from);
        let (mut index, start_position, mut next, mut since_entry) =
            match self.trusted_prefix(segment, file, size, trusted_below).await? {
                Some((index, entry)) => {
                    (index, u64::from(entry.position), Offset(segment.base.0 + i64::from(entry.relative_offset)), 0)
                }
                None => (crate::index::SegmentIndex::default(), 0, segment.base, u32::MAX),
            };
        // Epochs never decrease along the log: start from the one in effect where validation starts.
        let mut last_epoch = epochs.entries().iter().rev().find(|e| e.start_offset <= next).map_or(-1, |e| e.epoch.0);
        let mut max_timestamp = index.times.last().map_or(-1, |e| e.timestamp_ms);
        let mut broken_offsets: Option<u64> = None;
        let outcome = segment::scan_validating(file, start_position, size, |position, header, _bytes| {
            let epoch = header.partition_leader_epoch.get();
            if header.base_offset() != next.0 || epoch < last_epoch {
                broken_offsets = Some(position);
                return false;
            }
            let relative = (header.base_offset() - segment.base.0) as u32;
            max_timestamp = max_timestamp.max(header.max_timestamp.get());
            if since_entry >= interval {
                index.push_offset(relative, position as u32);
                index.maybe_push_time(max_timestamp, relative);
                since_entry = 0;
            }
            since_entry = since_entry.saturating_add(header.size_bytes() as u32);
            if Offset(header.base_offset()) >= replay_from {
                producers.update(header);
            }
            epochs.assign(LeaderEpoch(epoch), Offset(header.base_offset()));
            last_epoch = last_epoch.max(epoch);
            next = Offset(header.last_offset() + 1);
            true
        })
        .await?;
        report.scanned_bytes += size - start_position;
        report.rebuilt_indexes += 1;
        let invalid_at = match (outcome, broken_offsets) {
            (_, Some(position)) => Some((position, "offsets or leader epochs do not increase".to_string())),
            (Some(RecoveredBatch::Invalid { position, error }), None) => Some((position, error.to_string())),
            (Some(RecoveredBatch::Valid { position, .. }), None) => Some((position, "scan stopped".into())),
            (None, None) => None,
        };
        {
            let mut state = segment.state.borrow_mut();
            state.index = Some(index);
            state.next_offset = next;
            state.max_timestamp_ms = max_timestamp;
            state.size_bytes = size;
            state.bytes_since_index_entry = since_entry;
        }
        let Some((position, reason)) = invalid_at else { return Ok(None) };
        if segment::any_valid_batch_after(file, position, size).await? {
            return Err(EngineError::Corrupt { partition: self.name(), path: segment.log_path(), position, reason });
        }
        // Zeros at the very end are pre-written space (crate::prewrite) or an append whose data never reached
        // the disk; anything before them is a torn batch.
        let zeros_from = segment::zero_run_start(file, position, size).await?;
        self.cut_segment_tail(segment, file, position, (zeros_from - position, size - zeros_from), &reason, report)
            .await?;
        Ok(Some(position))
    }

    /// Cuts `segment`'s file back to `position` while the log opens: `torn_bytes` of a torn batch (for
    /// `reason`), then `zero_bytes` of zeros past the last batch (pre-written space, crate::prewrite, or an
    /// append whose data never reached the disk). Logs and counts both, and syncs the cut now or with the
    /// start's one `syncfs` ([`ShardContext::sync_recovery_now`]).
    async fn cut_segment_tail(
        &self,
        segment: &Segment,
        file: &SegmentFile,
        position: u64,
        (torn_bytes, zero_bytes): (u64, u64),
        reason: &str,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        let path = segment.log_path();
        if torn_bytes > 0 {
            tracing::warn!(
                partition = %self.tp,
                segment = %path.display(),
                position,
                cut_bytes = torn_bytes,
                zero_bytes,
                %reason,
                "truncating torn tail"
            );
        } else {
            tracing::info!(
                partition = %self.tp,
                segment = %path.display(),
                position,
                zero_bytes,
                "cutting zeros past the last batch"
            );
        }
        file.truncate(position).await?;
        if self.ctx.sync_recovery_now() {
            file.fdatasync().await?;
        }
        segment.state.borrow_mut().size_bytes = position;
        report.truncated_bytes += torn_bytes;
        report.zero_tail_bytes += zero_bytes;
        Ok(())
    }
}

struct DirListing {
    log_bases: Vec<Offset>,
    index_bases: Vec<Offset>,
    tmp_files: Vec<PathBuf>,
}

fn parse_base(name: &str, suffix: &str) -> Option<Offset> {
    let digits = name.strip_suffix(suffix)?;
    (digits.len() == 20).then(|| digits.parse().ok().map(Offset)).flatten()
}

fn list_dir(dir: &Path) -> Result<DirListing> {
    let mut listing = DirListing { log_bases: Vec::new(), index_bases: Vec::new(), tmp_files: Vec::new() };
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("list partition dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io("list partition dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_base(name, ".log") {
            listing.log_bases.push(base);
        } else if let Some(base) = parse_base(name, ".index").or_else(|| parse_base(name, ".timeindex")) {
            listing.index_bases.push(base);
        } else if name.ends_with(".tmp") {
            listing.tmp_files.push(entry.path());
        }
    }
    listing.log_bases.sort();
    listing.index_bases.sort();
    listing.index_bases.dedup();
    Ok(listing)
}

fn list_snapshots(dir: &Path) -> Result<Vec<Offset>> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("list partition dir", dir, e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| parse_base(n, SNAPSHOT_SUFFIX)))
        .collect())
}

pub(crate) async fn remove_if_exists(path: &Path) -> Result<()> {
    match glommio::io::remove(path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let io: std::io::Error = e.into();
            if io.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(EngineError::io("remove", path, io))
            }
        }
    }
}
