//! The small files beside the segments: index files of a sealed segment, `partition.checkpoint`,
//! `leader-epoch-checkpoint` and producer snapshots (formats in `docs/format.md`), and the clean close that
//! writes them all for a clean start.

use super::files::{
    list_snapshots, remove_if_exists, snapshot_file_name, EPOCH_CHECKPOINT, PARTITION_CHECKPOINT, SNAPSHOTS_KEPT,
};
use super::PartitionLog;
use crate::checkpoint::{self, Durability};
use crate::error::Result;
use crate::segment::{self, Segment};
use crate::types::Offset;

impl PartitionLog {
    pub(super) async fn write_index_files(&self, segment: &Segment, durability: Durability) -> Result<()> {
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

    pub(super) async fn write_partition_checkpoint(&self) -> Result<()> {
        self.write_partition_checkpoint_with(Durability::Now).await
    }

    /// `partition.checkpoint`'s one row: log start offset, recovery point, high watermark.
    pub(super) fn partition_checkpoint_row(&self) -> Vec<i64> {
        vec![self.log_start.get().0, self.recovery_point.get().0, self.high_watermark.get()]
    }

    pub(super) async fn write_partition_checkpoint_with(&self, durability: Durability) -> Result<()> {
        let bytes = checkpoint::encode("partition", &[self.partition_checkpoint_row()]);
        checkpoint::write_with(&self.dir, PARTITION_CHECKPOINT, bytes, durability).await
    }

    pub(super) async fn write_epoch_checkpoint(&self) -> Result<()> {
        self.write_epoch_checkpoint_with(Durability::Now).await
    }

    pub(super) async fn write_epoch_checkpoint_with(&self, durability: Durability) -> Result<()> {
        let rows = self.epochs.borrow().to_rows();
        let bytes = checkpoint::encode("leader-epochs", &rows);
        checkpoint::write_with(&self.dir, EPOCH_CHECKPOINT, bytes, durability).await
    }

    pub(super) async fn write_producer_snapshot(&self, at: Offset, durability: Durability) -> Result<()> {
        let bytes = self.producers.borrow().encode();
        let name = snapshot_file_name(at);
        checkpoint::write_with(&self.dir, &name, bytes, durability).await?;
        let mut snapshots = list_snapshots(&self.dir).await?;
        snapshots.sort();
        let excess = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
        for old in snapshots.into_iter().take(excess) {
            remove_if_exists(&self.dir.join(snapshot_file_name(old))).await?;
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
}
