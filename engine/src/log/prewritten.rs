//! Zeros kept written past a hot log's end (the policy is in `crate::prewrite`): extended right after an
//! append under the append lock, cut before a roll or a clean close, and given back when the log goes idle.

use super::PartitionLog;
use crate::config::FlushPolicy;
use crate::error::Result;
use crate::segment::{Segment, SegmentFile};

impl PartitionLog {
    /// Keeps pre-written zeros ahead of a hot log's end (crate::prewrite). Runs under the append lock right
    /// after the data, with no await since the write, so the zeros never land where data goes and the group
    /// commit this append just queued flushes both. A failed write of zeros loses nothing: it is logged, and
    /// this log stops pre-writing until it proves hot again.
    pub(super) fn extend_prewrite(&self, file: &SegmentFile, size: u64) {
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
    pub(super) async fn cut_prewritten(&self, active: &Segment, file: &SegmentFile) -> Result<()> {
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
}
