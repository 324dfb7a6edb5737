//! Retention and DeleteRecords: the log start offset moves forward and segments wholly below it are deleted,
//! checkpoint first, files after.

use std::rc::Rc;

use super::files::remove_if_exists;
use super::PartitionLog;
use crate::error::{EngineError, Result};
use crate::segment::Segment;
use crate::types::Offset;

impl PartitionLog {
    /// Advances the log start offset (DeleteRecords) and deletes segments wholly below it. Offsets past the
    /// high watermark are refused. Under the write lock, like every write to the partition's directory: two
    /// checkpoint writes of one file must not overlap, and a closed (deleted) log writes nothing.
    pub async fn delete_records_before(&self, offset: Offset) -> Result<Offset> {
        let _permit = self.lock_for_write().await?;
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
    /// first, when `cleanup.policy` includes `delete`. An expired active segment is rolled first so that it can go too. Returns segments deleted. Under
    /// the write lock, as [`PartitionLog::delete_records_before`] is.
    pub async fn apply_retention(&self, now: i64) -> Result<usize> {
        let config = self.config.borrow().clone();
        let expired = |segment: &Segment| {
            config.retention_ms >= 0
                && segment.max_timestamp_ms() >= 0
                && now - segment.max_timestamp_ms() > config.retention_ms
        };
        if !config.cleanup_policy.delete {
            // `cleanup.policy=compact` alone: the cleaner bounds the log, not retention (Kafka's meaning). An
            // empty policy keeps every record (only DeleteRecords moves the log start).
            return Ok(0);
        }
        let _permit = self.lock_for_write().await?;
        if self.poisoned.get().is_none() && expired(&self.active()) {
            self.roll().await?;
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
        // Never past what every in-sync replica has: a follower still catching up would lose it.
        let new_start = new_start.min(self.high_watermark());
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

    pub(super) async fn delete_segments_below_start(&self) -> Result<usize> {
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

    pub(super) async fn delete_segment_files(&self, segment: &Segment) -> Result<()> {
        segment.retired.set(true);
        segment.close_handles(false);
        // Log last: a crash in between leaves a log without indexes, which recovery rebuilds.
        for path in [segment.index_path(), segment.time_index_path(), segment.log_path()] {
            remove_if_exists(&path).await?;
        }
        Ok(())
    }
}
