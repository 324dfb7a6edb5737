//! What the replication layer asks of a log: where the high watermark may go, when a leader epoch starts,
//! and, for a follower that fell behind the leader's log start, an empty log starting there.

use std::rc::Rc;

use super::files::{list_snapshots, remove_if_exists, snapshot_file_name};
use super::PartitionLog;
use crate::checkpoint::{self, Durability};
use crate::epoch::EpochCache;
use crate::error::Result;
use crate::producer::ProducerStateTable;
use crate::segment::{Segment, SegmentFile};
use crate::types::{LeaderEpoch, Offset};

impl PartitionLog {
    /// Lets the high watermark follow the durable offset up to `bound`: a leader's smallest log end over its
    /// ISR, or a follower's leader's high watermark. It never goes back (a lower bound holds it where it is).
    pub fn set_replica_bound(&self, bound: Offset) {
        self.high_watermark_follows_durable.set(true);
        self.replica_bound.set(bound.0);
        self.high_watermark.advance(self.durable.get().min(bound.0));
        self.assert_offsets_ordered();
    }

    /// The epoch of the last batch written (or of the last epoch started here).
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.borrow().latest().map(|entry| entry.epoch)
    }

    /// A new leader's epoch starts at this log's end (KIP-101): OffsetForLeaderEpoch and followers' divergence
    /// checks see it before the first append in it. No effect for an epoch not newer than the latest.
    pub async fn start_leader_epoch(&self, epoch: LeaderEpoch) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        let end = self.log_end_offset();
        if self.epochs.borrow_mut().assign(epoch, end) {
            self.write_epoch_checkpoint().await?;
        }
        Ok(())
    }

    /// Empties the log and starts it again at `offset` (Kafka's `truncateFullyAndStartAt`): a follower whose log
    /// ends below its leader's log start, or a controller installing a snapshot. Everything goes: segments,
    /// producer state, epochs; the checkpoints say where the log starts now.
    pub async fn reset_to(self: &Rc<Self>, offset: Offset) -> Result<()> {
        let _permit = self.lock_for_write().await?;
        self.check_writable()?;
        self.prewrite.zeros_gone(&self.ctx.prewrite);
        // Readers find no segment while the old ones go (they read nothing); appends wait on the lock.
        let doomed: Vec<Rc<Segment>> = std::mem::take(&mut *self.segments.borrow_mut()).into_values().collect();
        for old in &doomed {
            self.delete_segment_files(old).await?;
        }
        let segment = Rc::new(Segment::new(&self.dir, offset, Segment::empty_state(offset)));
        let file = Rc::new(SegmentFile::open(&segment.log_path(), true).await?);
        *segment.file.borrow_mut() = Some(file);
        self.ctx.fd_cache.register(&segment);
        self.segments.borrow_mut().insert(offset, segment);
        checkpoint::sync_dir(&self.dir).await?;
        self.prewrite.restart_at(0);
        self.log_start.set(offset);
        self.log_end.reset(offset.0);
        self.durable.reset(offset.0);
        self.high_watermark.reset(offset.0);
        self.recovery_point.set(offset);
        *self.producers.borrow_mut() = ProducerStateTable::default();
        *self.epochs.borrow_mut() = EpochCache::default();
        for at in list_snapshots(&self.dir).await? {
            remove_if_exists(&self.dir.join(snapshot_file_name(at))).await?;
        }
        self.write_producer_snapshot(offset, Durability::Now).await?;
        self.write_epoch_checkpoint().await?;
        self.write_partition_checkpoint().await?;
        self.assert_offsets_ordered();
        tracing::info!(partition = %self.tp, offset = offset.0, "log restarted empty");
        Ok(())
    }
}
