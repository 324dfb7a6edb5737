//! Opening a partition log: list its directory, read the checkpoints, and recover. After a clean shutdown the
//! index files and snapshots are trusted and only each segment's tail is scanned; otherwise every batch from
//! the recovery point on is validated, rebuilding indexes, producer state and the epoch cache, a torn tail is
//! cut, and anything else invalid takes the partition offline. ARCHITECTURE.md ("Recovery") has the rules.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use super::files::{
    list_dir, list_snapshots, remove_if_exists, snapshot_file_name, EPOCH_CHECKPOINT, PARTITION_CHECKPOINT,
};
use super::{clean, PartitionLog, RecoveryReport};
use crate::batch::{self};
use crate::checkpoint::{self};
use crate::config::LogConfig;
use crate::context::ShardContext;
use crate::epoch::EpochCache;
use crate::error::{EngineError, Result};
use crate::fifo_lock::FifoLock;
use crate::index::{OffsetEntry, SegmentIndex};
use crate::prewrite::LogPrewrite;
use crate::producer::ProducerStateTable;
use crate::segment::{self, RecoveredBatch, ScanControl, Segment, SegmentFile, SegmentState};
use crate::types::{now_ms, LeaderEpoch, Offset, TopicPartition};
use crate::watch::OffsetWatch;

impl PartitionLog {
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
        clean::finish_interrupted_swaps(&dir)?;
        let cleaner = clean::read_cleaner_checkpoint(&dir).await?;
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
        let mut snapshots = list_snapshots(&dir).await?;
        snapshots.sort();
        let first_base = *segments.keys().next().unwrap_or(&Offset::ZERO);
        let snapshot = snapshots.iter().rev().find(|s| **s <= recovery_point.max(first_base)).copied();
        let producers_loaded = match snapshot {
            Some(at) => checkpoint::read_small(&dir.join(snapshot_file_name(at)))
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
            replica_bound: Cell::new(i64::MAX),
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
            cleaner: RefCell::new(cleaner),
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
                log.span_to_next_segment(segment, next_base)?;
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
                // Compaction and followers of compacted leaders leave gaps between batches, never overlaps.
                if next_base.is_some_and(|n| next > n) && size > 0 {
                    return Err(EngineError::Corrupt {
                        partition: log.name(),
                        path: segment.log_path(),
                        position: size,
                        reason: format!("segment ends at offset {} but the next starts at {:?}", next.0 - 1, next_base),
                    });
                }
                {
                    let mut state = segment.state.borrow_mut();
                    state.next_offset = next_base.unwrap_or(if size == 0 { segment.base } else { next });
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
        log.assert_offsets_ordered();
        // Producers that expired while the log was closed (or before the snapshot it started from was written
        // back) are dropped now, not served again until the next housekeeping pass.
        let expiration_ms = log.config.borrow().producer_id_expiration_ms;
        producers.remove_expired(now_ms(), expiration_ms);
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

    /// A sealed segment covers the offsets up to the next one's base, whatever its last batch: compaction
    /// removes batches, and offsets never move. Its batches must not reach past that base.
    fn span_to_next_segment(&self, segment: &Segment, next_base: Option<Offset>) -> Result<()> {
        let Some(next_base) = next_base else { return Ok(()) };
        let mut state = segment.state.borrow_mut();
        if state.next_offset > next_base {
            return Err(EngineError::Corrupt {
                partition: self.name(),
                path: segment.log_path(),
                position: state.size_bytes,
                reason: format!(
                    "segment ends at offset {} but the next starts at {}",
                    state.next_offset.0 - 1,
                    next_base.0
                ),
            });
        }
        state.next_offset = next_base;
        Ok(())
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
    ) -> Result<Option<(SegmentIndex, OffsetEntry)>> {
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
                None => (SegmentIndex::default(), 0, segment.base, u32::MAX),
            };
        // Epochs never decrease along the log: start from the one in effect where validation starts.
        let mut last_epoch = epochs.entries().iter().rev().find(|e| e.start_offset <= next).map_or(-1, |e| e.epoch.0);
        let mut max_timestamp = index.times.last().map_or(-1, |e| e.timestamp_ms);
        let mut broken_offsets: Option<u64> = None;
        let outcome = segment::scan_validating(file, start_position, size, |position, header, _bytes| {
            let epoch = header.partition_leader_epoch.get();
            // Offsets increase; gaps are what compaction leaves (Kafka's recovery allows them too).
            if header.base_offset() < next.0 || epoch < last_epoch {
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
            (_, Some(position)) => Some((position, "offsets or leader epochs go back".to_string())),
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
