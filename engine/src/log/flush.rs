//! What happens after a write: the flush policy (group commit under `always`, counters under `interval`,
//! nothing under `replication-only`), the fsync of a group-commit round, and the waits for durability.

use super::PartitionLog;
use crate::config::FlushPolicy;
use crate::error::{EngineError, Result};
use crate::types::{now_ms, Offset};

impl PartitionLog {
    /// Hands the write to the flush policy: queue a group commit, or count towards an interval flush.
    pub(super) fn after_write(&self, records: u64, now: i64) {
        let policy = self.config.borrow().flush_policy;
        match policy {
            FlushPolicy::Always => {
                self.ctx.stats.record_append_awaiting_commit();
                self.request_flush();
            }
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
        // A closed log was fsynced by its close and opens no file again.
        if self.poisoned.get().is_some() || self.log_end.is_failed() {
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
        let started = std::time::Instant::now();
        self.sync_or_poison(&file).await?;
        self.ctx.stats.record_fsync(started.elapsed());
        self.unflushed_messages.set(0);
        self.last_flush_ms.set(now_ms());
        self.advance_durable(target);
        Ok(())
    }
}
