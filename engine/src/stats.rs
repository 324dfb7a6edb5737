//! One shard's statistics: histograms and counters of plain `Cell`s, read and written on the shard's own
//! thread only, so recording one costs a comparison walk over a dozen bounds and an add (no atomic, no lock, no
//! allocation). A scrape copies them ([`Histogram::snapshot`], [`EngineStats::snapshot`]) and sends the copy
//! over the mesh. The engine keeps its own in the shard's [`crate::context::ShardContext`] (fsyncs, group
//! commit, the cleaner, retention); `sluice-net` uses the same [`Histogram`] for request latencies.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds of latency buckets, in nanoseconds: 100 µs to 10 s (the +Inf bucket is implicit).
pub const LATENCY_BOUNDS_NANOS: [u64; 15] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Upper bounds of count buckets (how many things one event covered): powers of two up to 4096.
pub const COUNT_BOUNDS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram over fixed bounds, for one thread.
pub struct Histogram {
    bounds: &'static [u64],
    sum: Cell<u64>,
    /// Per bucket (not cumulative); one more than the bounds, the last being +Inf.
    buckets: Box<[Cell<u64>]>,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram { bounds, sum: Cell::new(0), buckets: (0..=bounds.len()).map(|_| Cell::new(0)).collect() }
    }

    /// A latency histogram over [`LATENCY_BOUNDS_NANOS`].
    pub fn latency() -> Histogram {
        Histogram::new(&LATENCY_BOUNDS_NANOS)
    }

    /// A count histogram over [`COUNT_BOUNDS`].
    pub fn counts() -> Histogram {
        Histogram::new(&COUNT_BOUNDS)
    }

    /// The bucket `value` falls in: the first whose bound holds it.
    pub fn bucket(&self, value: u64) -> usize {
        self.bounds.iter().position(|&bound| value <= bound).unwrap_or(self.bounds.len())
    }

    pub fn record(&self, value: u64) {
        self.sum.set(self.sum.get().wrapping_add(value));
        let bucket = &self.buckets[self.bucket(value)];
        bucket.set(bucket.get().wrapping_add(1));
    }

    /// Records a duration in nanoseconds (on a latency histogram).
    pub fn record_duration(&self, elapsed: Duration) {
        self.record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(Cell::get).sum()
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            sum: self.sum.get(),
            buckets: self.buckets.iter().map(Cell::get).collect(),
        }
    }
}

/// A copy of a [`Histogram`], to send over the mesh and add up across shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [u64],
    pub sum: u64,
    /// Per bucket (not cumulative), the last being +Inf.
    pub buckets: Vec<u64>,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another shard's copy of the same histogram (an empty default takes the other's bounds).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        debug_assert_eq!(self.bounds, other.bounds, "merging histograms over different bounds");
        self.sum = self.sum.wrapping_add(other.sum);
        for (total, count) in self.buckets.iter_mut().zip(&other.buckets) {
            *total = total.wrapping_add(*count);
        }
    }
}

fn add(cell: &Cell<u64>, value: u64) {
    cell.set(cell.get().wrapping_add(value));
}

/// What one shard's logs did in the background and on their way to disk.
pub(crate) struct EngineStats {
    /// fdatasync of a log's active segment in a group-commit or interval flush.
    fsync: Histogram,
    /// Logs fsynced by one group-commit round.
    group_commit_logs: Histogram,
    /// Appends (produce and replica writes) that one group-commit round made durable.
    group_commit_appends: Histogram,
    appends_since_round: Cell<u64>,
    cleaner_passes: Cell<u64>,
    cleaner_bytes_read: Cell<u64>,
    cleaner_bytes_written: Cell<u64>,
    cleaner_records_removed: Cell<u64>,
    cleaner_pass_duration: Histogram,
    /// The highest dirty ratio among this shard's compacted logs when the cleaner last looked.
    cleaner_max_dirty_ratio: Cell<f64>,
    retention_segments_deleted: Cell<u64>,
}

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            fsync: Histogram::latency(),
            group_commit_logs: Histogram::counts(),
            group_commit_appends: Histogram::counts(),
            appends_since_round: Cell::new(0),
            cleaner_passes: Cell::new(0),
            cleaner_bytes_read: Cell::new(0),
            cleaner_bytes_written: Cell::new(0),
            cleaner_records_removed: Cell::new(0),
            cleaner_pass_duration: Histogram::latency(),
            cleaner_max_dirty_ratio: Cell::new(0.0),
            retention_segments_deleted: Cell::new(0),
        }
    }
}

impl EngineStats {
    pub(crate) fn record_fsync(&self, elapsed: Duration) {
        self.fsync.record_duration(elapsed);
    }

    /// An append that a group-commit round will make durable.
    pub(crate) fn record_append_awaiting_commit(&self) {
        add(&self.appends_since_round, 1);
    }

    /// A group-commit round took `logs` logs, covering the appends since the previous round.
    pub(crate) fn record_group_commit(&self, logs: usize) {
        self.group_commit_logs.record(logs as u64);
        self.group_commit_appends.record(self.appends_since_round.replace(0));
    }

    pub(crate) fn record_clean(&self, stats: &crate::clean::CleanStats, elapsed: Duration) {
        add(&self.cleaner_passes, 1);
        add(&self.cleaner_bytes_read, stats.bytes_read);
        add(&self.cleaner_bytes_written, stats.bytes_written);
        add(&self.cleaner_records_removed, stats.records_removed);
        self.cleaner_pass_duration.record_duration(elapsed);
    }

    pub(crate) fn set_cleaner_max_dirty_ratio(&self, ratio: f64) {
        self.cleaner_max_dirty_ratio.set(ratio);
    }

    pub(crate) fn record_retention(&self, segments_deleted: usize) {
        add(&self.retention_segments_deleted, segments_deleted as u64);
    }

    pub(crate) fn snapshot(&self, uncleanable_logs: u64) -> EngineStatsSnapshot {
        EngineStatsSnapshot {
            fsync: self.fsync.snapshot(),
            group_commit_logs: self.group_commit_logs.snapshot(),
            group_commit_appends: self.group_commit_appends.snapshot(),
            cleaner_passes: self.cleaner_passes.get(),
            cleaner_bytes_read: self.cleaner_bytes_read.get(),
            cleaner_bytes_written: self.cleaner_bytes_written.get(),
            cleaner_records_removed: self.cleaner_records_removed.get(),
            cleaner_pass_duration: self.cleaner_pass_duration.snapshot(),
            cleaner_max_dirty_ratio: self.cleaner_max_dirty_ratio.get(),
            cleaner_uncleanable_logs: uncleanable_logs,
            retention_segments_deleted: self.retention_segments_deleted.get(),
        }
    }
}

/// A copy of one shard's [`EngineStats`] (`LogManager::stats`), to send over the mesh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStatsSnapshot {
    pub fsync: HistogramSnapshot,
    pub group_commit_logs: HistogramSnapshot,
    pub group_commit_appends: HistogramSnapshot,
    pub cleaner_passes: u64,
    pub cleaner_bytes_read: u64,
    pub cleaner_bytes_written: u64,
    pub cleaner_records_removed: u64,
    pub cleaner_pass_duration: HistogramSnapshot,
    pub cleaner_max_dirty_ratio: f64,
    pub cleaner_uncleanable_logs: u64,
    pub retention_segments_deleted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_that_holds_them() {
        let latency = Histogram::latency();
        assert_eq!(latency.bucket(0), 0);
        assert_eq!(latency.bucket(100_000), 0);
        assert_eq!(latency.bucket(100_001), 1);
        assert_eq!(latency.bucket(10_000_000_000), LATENCY_BOUNDS_NANOS.len() - 1);
        assert_eq!(latency.bucket(u64::MAX), LATENCY_BOUNDS_NANOS.len());
        let counts = Histogram::counts();
        counts.record(1);
        counts.record(3);
        counts.record(5000);
        let snapshot = counts.snapshot();
        assert_eq!((snapshot.buckets[0], snapshot.buckets[2], snapshot.buckets[COUNT_BOUNDS.len()]), (1, 1, 1));
        assert_eq!((snapshot.count(), snapshot.sum), (3, 5004));
    }

    #[test]
    fn a_round_takes_the_appends_since_the_last_one() {
        let stats = EngineStats::default();
        for _ in 0..5 {
            stats.record_append_awaiting_commit();
        }
        stats.record_group_commit(2);
        stats.record_group_commit(1);
        let snapshot = stats.snapshot(0);
        assert_eq!(snapshot.group_commit_appends.sum, 5);
        assert_eq!(snapshot.group_commit_appends.buckets[0], 1, "the second round covered no append");
        assert_eq!(snapshot.group_commit_logs.sum, 3);
    }

    #[test]
    fn shards_add_up() {
        let (a, b) = (Histogram::latency(), Histogram::latency());
        a.record(1);
        b.record(2_000_000);
        let mut total = HistogramSnapshot::default();
        total.merge(&a.snapshot());
        total.merge(&b.snapshot());
        assert_eq!((total.count(), total.sum, total.buckets[0], total.buckets[4]), (2, 2_000_001, 1, 1));
    }
}
