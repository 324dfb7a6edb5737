//! Truncation: a follower cuts the records its leader does not have. Never below the high watermark.

use std::rc::Rc;

use super::files::{list_snapshots, remove_if_exists, snapshot_file_name};
use super::PartitionLog;
use crate::error::{EngineError, Result};
use crate::segment::{self, ScanControl, Segment};
use crate::types::Offset;

impl PartitionLog {
    /// Removes every record at or after `offset` (a follower diverged from its leader). The log end becomes
    /// the start of the batch that holds `offset`.
    pub async fn truncate_to(self: &Rc<Self>, offset: Offset) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        self.truncate_locked(offset).await
    }

    /// Truncates below the high watermark, which moves down with the cut: only after an unclean leader
    /// election, where the new leader never had what this replica committed.
    pub async fn truncate_unclean(self: &Rc<Self>, offset: Offset) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        if offset < self.high_watermark() {
            tracing::warn!(partition = %self.tp, offset = offset.0, high_watermark = self.high_watermark().0, "truncating below the high watermark after an unclean leader election");
            self.high_watermark.reset(offset.0.max(self.log_start.get().0));
        }
        self.truncate_locked(offset).await
    }

    async fn truncate_locked(self: &Rc<Self>, offset: Offset) -> Result<()> {
        self.check_writable()?;
        if offset >= self.log_end_offset() {
            // Nothing to cut, but an epoch this replica started as leader and wrote nothing in may sit at the
            // log end: a follower that kept it would send it as its last fetched epoch and be told it diverges
            // again on every fetch (Kafka's `truncateTo` drops it too).
            if self.epochs.borrow_mut().truncate_from_end(self.log_end_offset()) {
                self.write_epoch_checkpoint().await?;
            }
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
        // Records below the high watermark are committed: consumers may have read them, and a follower that
        // diverges from its leader does so only above it. The cut point is at or below `offset`.
        let high_watermark = self.high_watermark();
        assert!(
            offset >= high_watermark,
            "{}: truncating to {offset} would cut committed records below the high watermark {high_watermark}",
            self.tp
        );
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
        let high_watermark = self.high_watermark();
        assert!(
            new_end >= high_watermark,
            "{}: truncating to {offset} cuts at {new_end}, the start of its batch, below the high watermark {}",
            self.tp,
            high_watermark
        );
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
        self.assert_offsets_ordered();
        self.recovery_point.set(self.recovery_point.get().min(active.base));
        self.producers.borrow_mut().truncate_from(new_end);
        // Snapshots past the new end describe batches that no longer exist.
        for at in list_snapshots(&self.dir).await? {
            if at > new_end {
                remove_if_exists(&self.dir.join(snapshot_file_name(at))).await?;
            }
        }
        if self.epochs.borrow_mut().truncate_from_end(new_end) {
            self.write_epoch_checkpoint().await?;
        }
        self.write_partition_checkpoint().await?;
        tracing::info!(partition = %self.tp, offset = new_end.0, "truncated log");
        Ok(())
    }
}
