//! Appending: validate every batch, check producer sequences and leader epochs, stamp offsets and the epoch in
//! place, write at the segment's end, publish the new log end, and roll to a new segment when `segment.bytes`
//! or `segment.ms` say so. Runs under the append lock, one append per partition at a time.

use std::rc::Rc;

use super::{AppendInfo, AppendMode, PartitionLog};
use crate::batch::{self, Compression, RecordBatchHeader};
use crate::checkpoint::{self, Durability};
use crate::codec;
use crate::config::{TimestampType, TopicCompression};
use crate::error::{BatchError, EngineError, Result, RECORD_ERRORS_MAX};
use crate::producer::SequenceCheck;
use crate::segment::{Segment, SegmentFile};
use crate::types::{now_ms, LeaderEpoch, Offset};

/// Validated batches: each one's position in the append's bytes, and its header.
type Batches = Vec<(usize, RecordBatchHeader)>;

impl PartitionLog {
    /// Validates and appends one or more concatenated RecordBatch v2 byte ranges. For leader modes, assigns
    /// offsets and stamps the leader epoch in place; for `Replica`, checks that the leader's offsets continue
    /// this log. Returns once the bytes are written (not yet durable: see [`PartitionLog::wait_durable`]).
    pub async fn append(self: &Rc<Self>, mut batches: Vec<u8>, mode: AppendMode) -> Result<AppendInfo> {
        let max_bytes = self.config.borrow().max_message_bytes;
        // A compacted topic keeps the latest record per key, so a record must have one (Kafka refuses it too).
        let compacted = self.config.borrow().cleanup_policy.compact;
        let mut headers: Batches = Vec::with_capacity(1);
        let mut position = 0usize;
        let mut records_before = 0u32;
        while position < batches.len() {
            // A follower copies the leader's batches as they are, compacted ones included.
            let validated = match mode {
                AppendMode::Replica => batch::validate_stored(&batches[position..], max_bytes),
                _ => batch::validate(&batches[position..], max_bytes),
            };
            let header = validated.map_err(|source| EngineError::Batch { partition: self.name(), position, source })?;
            if header.is_control() && matches!(mode, AppendMode::Client { .. }) {
                return Err(EngineError::Batch {
                    partition: self.name(),
                    position,
                    source: BatchError::Invalid { reason: "clients may not write control batches" },
                });
            }
            // There is no transaction coordinator: a client's transactional batch would open a transaction that
            // no marker ever closes, holding the last stable offset back for good. `net` refuses such requests
            // with Kafka's codes first; this keeps any other path from opening one.
            if header.is_transactional() && matches!(mode, AppendMode::Client { .. }) {
                return Err(EngineError::Batch {
                    partition: self.name(),
                    position,
                    source: BatchError::Invalid { reason: "transactional batches need a transaction coordinator" },
                });
            }
            if compacted && !matches!(mode, AppendMode::Replica) && !header.is_control() {
                let (count, indexes) = crate::clean::keyless_records(
                    &batches[position..position + header.size_bytes()],
                    codec::DECOMPRESSED_BYTES_MAX,
                    RECORD_ERRORS_MAX,
                )
                .map_err(|source| EngineError::Batch { partition: self.name(), position, source })?;
                if count > 0 {
                    // Indexes count the append's records from its first batch on, as a client numbers them.
                    let record_indexes =
                        indexes.into_iter().map(|index| index.saturating_add(records_before)).collect();
                    return Err(EngineError::Batch {
                        partition: self.name(),
                        position,
                        source: BatchError::MissingKey { count, record_indexes },
                    });
                }
            }
            records_before = records_before.saturating_add(header.record_count());
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

        // A topic with a codec of its own stores client batches in it (Kafka recompresses on the broker too);
        // batches already in it are appended as sent, as with `compression.type=producer`.
        let compression = self.config.borrow().compression;
        if let (TopicCompression::Codec(target), AppendMode::Client { .. }) = (compression, mode) {
            if headers.iter().any(|(_, header)| header.compression() != Some(target)) {
                (batches, headers) = self.recompressed(&batches, &headers, target, max_bytes)?;
            }
        }

        let _permit = self.lock_for_write().await?;
        self.check_writable()?;

        let next = self.log_end_offset();
        let leader_epoch = match mode {
            AppendMode::Client { leader_epoch } | AppendMode::Coordinator { leader_epoch } => Some(leader_epoch),
            AppendMode::Replica => None,
        };
        // Leader epochs never decrease along the log (recovery takes a log where they do for a broken one). A
        // leader append in an epoch older than the log's comes from a stale view of the partition; a follower's
        // batches must not go back either.
        let latest_epoch = self.epochs.borrow().latest().map_or(LeaderEpoch::NONE, |entry| entry.epoch);
        match leader_epoch {
            Some(epoch) if epoch < latest_epoch => {
                return Err(EngineError::StaleLeaderEpoch { partition: self.name(), epoch, latest: latest_epoch });
            }
            Some(_) => {}
            None => {
                let mut floor = latest_epoch.0;
                for (position, header) in &headers {
                    let epoch = header.partition_leader_epoch.get();
                    if epoch < floor {
                        return Err(EngineError::Batch {
                            partition: self.name(),
                            position: *position,
                            source: BatchError::Invalid { reason: "replicated leader epochs go back" },
                        });
                    }
                    floor = epoch;
                }
            }
        }
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
                    // `bytes` is the batch validated above, so it holds a whole header to read back.
                    if let Some(stamped) = batch::peek_header(bytes) {
                        *header = stamped;
                    }
                    assert_eq!(
                        header.base_offset(),
                        expected,
                        "{}: the batch at byte {position} was not stamped",
                        self.tp
                    );
                }
                None => {
                    // A compacted leader's log has gaps, which its followers copy; offsets never go back.
                    if header.base_offset() < expected {
                        return Err(EngineError::Batch {
                            partition: self.name(),
                            position: *position,
                            source: BatchError::Invalid { reason: "replicated offsets go back" },
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
                let latest = self.epochs.borrow().latest().map_or(LeaderEpoch::NONE, |entry| entry.epoch);
                assert!(
                    epoch >= latest,
                    "{}: leader epoch {} at offset {} is below the log's latest epoch {}; epochs never decrease",
                    self.tp,
                    epoch.0,
                    header.base_offset(),
                    latest.0
                );
                new_epoch |= self.epochs.borrow_mut().assign(epoch, Offset(header.base_offset()));
            }
            state.size_bytes = write_position + total_bytes;
            state.next_offset = last_offset.next();
            state.first_append_ms.get_or_insert(now);
        }
        self.log_end.advance(last_offset.next().0);
        self.assert_offsets_ordered();
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

    /// The validated `batches` with each one not in `target` recompressed to it (`codec.rs`), and their new
    /// headers; a batch already in `target` is copied as it is. Each result is validated again, its size against
    /// `max.message.bytes` included, as Kafka checks a recompressed batch.
    fn recompressed(
        &self,
        batches: &[u8],
        headers: &[(usize, RecordBatchHeader)],
        target: Compression,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Batches)> {
        let mut out = Vec::with_capacity(batches.len());
        let mut out_headers = Vec::with_capacity(headers.len());
        for &(position, header) in headers {
            let refused = |source| EngineError::Batch { partition: self.name(), position, source };
            let bytes = &batches[position..position + header.size_bytes()];
            let start = out.len();
            if header.compression() == Some(target) {
                out.extend_from_slice(bytes);
                out_headers.push((start, header));
                continue;
            }
            if let Err(source) = codec::recompress(bytes, target, codec::DECOMPRESSED_BYTES_MAX, &mut out) {
                if matches!(source, BatchError::DecompressedTooLarge { .. }) {
                    tracing::warn!(partition = %self.tp, position, %source, "batch refused: a compression bomb?");
                }
                return Err(refused(source));
            }
            let rebuilt = batch::validate(&out[start..], max_bytes).map_err(refused)?;
            out_headers.push((start, rebuilt));
        }
        Ok((out, out_headers))
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

    /// Seals the active segment now, whatever `segment.bytes` and `segment.ms` say, so that all of the log
    /// can be cleaned or deleted (an operator's tool, and tests). Nothing happens to an empty active segment.
    pub async fn roll_active(&self) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        self.check_writable()?;
        self.roll().await
    }

    /// Seals the active segment (fsync, index files) and starts a new one at the log end. The checkpoint's
    /// recovery point moves to the new segment, and a producer snapshot is taken there.
    pub(super) async fn roll(&self) -> Result<()> {
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
}
