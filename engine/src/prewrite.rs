//! Pre-written segment space: zeros written and made durable past a log's end, so that the fsync after a
//! small append does not also have to write the file's size and block allocation.
//!
//! **Why.** An fdatasync after an append that grew a file must persist the data, then the inode (its size
//! changed, blocks were allocated), then flush the device cache: on ext4 three device round trips, one after
//! the other. After a write that lands *inside* blocks already allocated, written and durable, the same
//! fdatasync is the data and the flush. On this project's disk, group commit at 50 k records/s of 1 KiB went
//! from p50 0.45 / p99 1.7 / p99.9 9 ms (appending) to 0.27 / 1.25 / 2.2 ms (this scheme), and 0.26 / 0.99 /
//! 2.1 ms for a file written in full beforehand (`perf/gcfloor.c`, perf/RESULTS.md).
//!
//! **What.** A log under flush policy `always` whose group-commit rounds stay small (each flushes less than
//! [`SMALL_ROUND_BYTES`] of it, [`HOT_AFTER_ROUNDS`] rounds in a row) keeps up to `window` bytes of zeros
//! written past its end in the active segment file. Appends overwrite them. When less than `window - chunk`
//! is left, the append writes the next chunk of zeros right after its own data, under the same append lock,
//! so zeros never land on data; the next group commit makes them durable with the data, and the rounds after
//! it only write data. A round of [`SMALL_ROUND_BYTES`] or more stops the extensions: large rounds barely
//! notice the metadata write and would pay for every byte twice.
//!
//! **On disk.** A segment file may be longer than its log, with zeros past the last batch. Nothing reads
//! there: reads stop at the in-memory segment size. The zeros are cut when the segment rolls, when the log is
//! closed (a clean start finds every file ending on a batch boundary), after [`IDLE_TRIM_MS`] without
//! appends, and by recovery after a crash, which tells a run of zeros from a torn batch.
//!
//! **Bounded.** At most `budget` bytes of zeros per shard past all its logs' ends ([`PrewriteBudget`]); the
//! rest of the logs append as before. Runs on the log's shard; the state is plain `Cell`s.

use std::cell::Cell;

/// A group-commit round that flushed less than this much of a log counts as small.
pub const SMALL_ROUND_BYTES: u64 = 32 * 1024;
/// Small rounds in a row before a log starts pre-writing.
pub const HOT_AFTER_ROUNDS: u32 = 4;
/// Zeros written per extension (at most; less near the segment's size limit).
pub const CHUNK_BYTES: u64 = 128 * 1024;
/// A log with no append for this long gives its zeros back (the housekeeping task trims them).
pub const IDLE_TRIM_MS: i64 = 30_000;
/// Zeros for pre-writes come from here: no allocation per extension.
pub(crate) static ZEROS: [u8; CHUNK_BYTES as usize] = [0; CHUNK_BYTES as usize];

/// The shard's limit on pre-written bytes and what its logs hold now.
#[derive(Debug)]
pub(crate) struct PrewriteBudget {
    /// Zeros kept past a hot log's end (`log.segment.prewrite.bytes`); 0 turns pre-writing off.
    window_bytes: u64,
    budget_bytes: u64,
    outstanding_bytes: Cell<u64>,
}

impl PrewriteBudget {
    pub(crate) fn new(window_bytes: u64, budget_bytes: u64) -> PrewriteBudget {
        // A window smaller than two chunks would extend on every append.
        let window_bytes = if window_bytes == 0 { 0 } else { window_bytes.max(2 * CHUNK_BYTES) };
        PrewriteBudget { window_bytes, budget_bytes, outstanding_bytes: Cell::new(0) }
    }

    /// Zero bytes past the ends of this shard's logs.
    pub(crate) fn outstanding_bytes(&self) -> u64 {
        self.outstanding_bytes.get()
    }

    fn add(&self, bytes: u64) {
        self.outstanding_bytes.set(self.outstanding_bytes.get() + bytes);
    }

    fn remove(&self, bytes: u64) {
        let outstanding = self.outstanding_bytes.get();
        assert!(bytes <= outstanding, "pre-write accounting went negative: {bytes} of {outstanding}");
        self.outstanding_bytes.set(outstanding - bytes);
    }
}

/// One log's pre-write state, about its active segment file.
#[derive(Debug, Default)]
pub(crate) struct LogPrewrite {
    /// Zero bytes written past the active segment's end: the file is this much longer than the log.
    zeros_ahead: Cell<u64>,
    /// Consecutive group-commit rounds that each flushed less than [`SMALL_ROUND_BYTES`] of this log.
    small_rounds: Cell<u32>,
    /// The active segment's size when the previous round started.
    flushed_size: Cell<u64>,
    last_append_ms: Cell<i64>,
}

/// Zeros to write: `len` bytes at file position `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extension {
    pub position: u64,
    pub len: u64,
}

impl LogPrewrite {
    /// Zero bytes past the active segment's end.
    pub(crate) fn zeros_ahead(&self) -> u64 {
        self.zeros_ahead.get()
    }

    /// Called at the start of each group-commit round that flushes this log under policy `always`, with the
    /// active segment's size.
    pub(crate) fn round_started(&self, size: u64) {
        let flushed = self.flushed_size.replace(size);
        if size < flushed {
            // The segment rolled since: nothing to judge this round by.
            return;
        }
        if size - flushed < SMALL_ROUND_BYTES {
            self.small_rounds.set(self.small_rounds.get().saturating_add(1));
        } else {
            self.small_rounds.set(0);
        }
    }

    /// An append of `bytes` at the active segment's end overwrote that many zeros, where there were any.
    pub(crate) fn appended(&self, budget: &PrewriteBudget, bytes: u64, now_ms: i64) {
        let used = bytes.min(self.zeros_ahead.get());
        self.zeros_ahead.set(self.zeros_ahead.get() - used);
        budget.remove(used);
        self.last_append_ms.set(now_ms);
    }

    /// The zeros to write after an append that left the active segment at `size`, if this log is hot, the
    /// window runs low and the shard's budget allows. `segment_bytes` caps the file (the segment rolls there).
    pub(crate) fn wanted(&self, budget: &PrewriteBudget, size: u64, segment_bytes: u64) -> Option<Extension> {
        let window = budget.window_bytes;
        let ahead = self.zeros_ahead.get();
        if window == 0 || self.small_rounds.get() < HOT_AFTER_ROUNDS || ahead >= window - CHUNK_BYTES {
            return None;
        }
        let position = size + ahead;
        let end = (size + window).min(segment_bytes).min(position + CHUNK_BYTES);
        let len = end.checked_sub(position).filter(|len| *len > 0)?;
        (budget.outstanding_bytes() + len <= budget.budget_bytes).then_some(Extension { position, len })
    }

    /// `extension`'s zeros (from [`LogPrewrite::wanted`]) are in the file.
    pub(crate) fn extended(&self, budget: &PrewriteBudget, extension: Extension) {
        self.zeros_ahead.set(self.zeros_ahead.get() + extension.len);
        budget.add(extension.len);
    }

    /// The zeros no longer count: they were cut from the file, or the log closed (recovery cuts them then).
    pub(crate) fn zeros_gone(&self, budget: &PrewriteBudget) {
        budget.remove(self.zeros_ahead.replace(0));
    }

    /// The active segment file now ends at `file_size`, with no zeros past it: a new segment, an opened log,
    /// or a log cut back by truncation (after [`LogPrewrite::zeros_gone`]).
    pub(crate) fn restart_at(&self, file_size: u64) {
        assert_eq!(self.zeros_ahead.get(), 0, "zeros past a file that was cut or replaced");
        self.flushed_size.set(file_size);
    }

    /// Pre-writing stops until the log proves hot again (a write of zeros failed, for one).
    pub(crate) fn cool_down(&self) {
        self.small_rounds.set(0);
    }

    /// Whether this log holds zeros and has had no append for [`IDLE_TRIM_MS`].
    pub(crate) fn idle(&self, now_ms: i64) -> bool {
        self.zeros_ahead.get() > 0 && now_ms - self.last_append_ms.get() >= IDLE_TRIM_MS
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const MIB: u64 = 1 << 20;

    fn hot(prewrite: &LogPrewrite) {
        for round in 1..=u64::from(HOT_AFTER_ROUNDS) {
            prewrite.round_started(round * 1000);
        }
    }

    #[test]
    fn only_a_log_with_small_rounds_in_a_row_prewrites() {
        let budget = PrewriteBudget::new(MIB, 64 * MIB);
        let prewrite = LogPrewrite::default();
        assert_eq!(prewrite.wanted(&budget, 0, 1 << 30), None);
        for round in 1..u64::from(HOT_AFTER_ROUNDS) {
            prewrite.round_started(round * 1000);
        }
        assert_eq!(prewrite.wanted(&budget, 3000, 1 << 30), None, "one small round short");
        prewrite.round_started(4000);
        assert_eq!(prewrite.wanted(&budget, 4000, 1 << 30), Some(Extension { position: 4000, len: CHUNK_BYTES }));
        prewrite.round_started(4000 + SMALL_ROUND_BYTES);
        assert_eq!(prewrite.wanted(&budget, 40_000, 1 << 30), None, "a large round stops it");
    }

    #[test]
    fn extensions_continue_the_file_up_to_the_window_and_appends_use_them_up() {
        let budget = PrewriteBudget::new(MIB, 64 * MIB);
        let prewrite = LogPrewrite::default();
        hot(&prewrite);
        prewrite.appended(&budget, 100, 1);
        let mut size = 100;
        let mut written = 0;
        while let Some(extension) = prewrite.wanted(&budget, size, 1 << 30) {
            assert_eq!(extension.position, size + written, "zeros continue the file");
            prewrite.extended(&budget, extension);
            written += extension.len;
        }
        assert_eq!(prewrite.zeros_ahead(), written);
        assert!((MIB - CHUNK_BYTES..=MIB).contains(&written), "window filled: {written}");
        assert_eq!(budget.outstanding_bytes(), written);
        prewrite.appended(&budget, 5000, 2);
        size += 5000;
        assert_eq!(budget.outstanding_bytes(), written - 5000);
        let next = prewrite.wanted(&budget, size, 1 << 30).expect("below window - chunk again: one more chunk");
        assert_eq!(next, Extension { position: size + written - 5000, len: CHUNK_BYTES });
        // An append larger than what is left runs past the zeros.
        prewrite.appended(&budget, 2 * MIB, 3);
        assert_eq!(budget.outstanding_bytes(), 0);
        assert_eq!(prewrite.zeros_ahead(), 0);
    }

    #[test]
    fn the_segment_limit_and_the_shard_budget_cap_extensions() {
        let budget = PrewriteBudget::new(MIB, 3 * CHUNK_BYTES);
        let near_limit = LogPrewrite::default();
        hot(&near_limit);
        let extension = near_limit.wanted(&budget, 1000, 1000 + 10).unwrap();
        assert_eq!(extension, Extension { position: 1000, len: 10 });
        near_limit.extended(&budget, extension);
        assert_eq!(near_limit.wanted(&budget, 1000, 1010), None);
        let other = LogPrewrite::default();
        hot(&other);
        other.extended(&budget, other.wanted(&budget, 0, 1 << 30).unwrap());
        other.extended(&budget, other.wanted(&budget, 0, 1 << 30).unwrap());
        assert_eq!(other.wanted(&budget, 0, 1 << 30), None, "budget spent: {}", budget.outstanding_bytes());
        other.zeros_gone(&budget);
        assert_eq!(budget.outstanding_bytes(), 10);
        other.restart_at(0);
        assert!(other.wanted(&budget, 0, 1 << 30).is_some());
    }

    #[test]
    fn a_window_of_zero_turns_it_off_and_idle_logs_are_found() {
        let off = PrewriteBudget::new(0, 64 * MIB);
        let prewrite = LogPrewrite::default();
        hot(&prewrite);
        assert_eq!(prewrite.wanted(&off, 0, 1 << 30), None);
        let budget = PrewriteBudget::new(MIB, 64 * MIB);
        prewrite.appended(&budget, 10, 1_000);
        assert!(!prewrite.idle(1_000 + IDLE_TRIM_MS), "no zeros, nothing to give back");
        prewrite.extended(&budget, prewrite.wanted(&budget, 10, 1 << 30).unwrap());
        assert!(!prewrite.idle(1_000 + IDLE_TRIM_MS - 1));
        assert!(prewrite.idle(1_000 + IDLE_TRIM_MS));
        prewrite.cool_down();
        assert_eq!(prewrite.wanted(&budget, 10, 1 << 30), None);
    }
}
