//! The storage side of a scrape, summed over shards: where a produce's time goes (queue, append, fsync,
//! replication wait), fsync latency and group-commit sizes, and the cleaner's and retention's progress.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use sluice_engine::stats::HistogramSnapshot;

use super::counters::PRODUCE_STAGES;
use super::encode::{histogram, seconds_histogram, single_counter, single_gauge};
use super::snapshot::ShardSnapshot;

#[derive(Debug, Default)]
pub(super) struct StorageTotals {
    /// Indexed like [`PRODUCE_STAGES`].
    produce_stages: Vec<HistogramSnapshot>,
    fsync: HistogramSnapshot,
    group_commit_logs: HistogramSnapshot,
    group_commit_appends: HistogramSnapshot,
    cleaner_passes: u64,
    cleaner_read_bytes: u64,
    cleaner_written_bytes: u64,
    cleaner_records_removed: u64,
    cleaner_pass: HistogramSnapshot,
    cleaner_max_dirty_ratio: f64,
    cleaner_uncleanable_logs: u64,
    retention_deleted_segments: u64,
}

impl StorageTotals {
    pub(super) fn add(&mut self, shard: &ShardSnapshot) {
        self.produce_stages.resize_with(PRODUCE_STAGES.len(), HistogramSnapshot::default);
        for (total, stage) in self.produce_stages.iter_mut().zip(&shard.produce_stages) {
            total.merge(stage);
        }
        let engine = &shard.engine;
        self.fsync.merge(&engine.fsync);
        self.group_commit_logs.merge(&engine.group_commit_logs);
        self.group_commit_appends.merge(&engine.group_commit_appends);
        self.cleaner_passes += engine.cleaner_passes;
        self.cleaner_read_bytes += engine.cleaner_bytes_read;
        self.cleaner_written_bytes += engine.cleaner_bytes_written;
        self.cleaner_records_removed += engine.cleaner_records_removed;
        self.cleaner_pass.merge(&engine.cleaner_pass_duration);
        self.cleaner_max_dirty_ratio = self.cleaner_max_dirty_ratio.max(engine.cleaner_max_dirty_ratio);
        self.cleaner_uncleanable_logs += engine.cleaner_uncleanable_logs;
        self.retention_deleted_segments += engine.retention_segments_deleted;
    }

    pub(super) fn encode(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        seconds_histogram(
            e,
            "produce_stage",
            "Where a produce's time goes, per partition: queue (decoding to the append starting on the \
             partition's shard), append, and for acks=all fsync (to the leader's copy being durable) and \
             replication (to the high watermark covering the records).",
            PRODUCE_STAGES.iter().zip(&self.produce_stages).map(|(stage, h)| ([("stage", stage.name())], h)),
        )?;
        seconds_histogram(
            e,
            "log_fsync",
            "fdatasync of a partition's active segment by a group-commit round or an interval flush.",
            [([], &self.fsync)],
        )?;
        histogram(
            e,
            "group_commit_logs",
            "Partition logs fsynced by one group-commit round.",
            None,
            1.0,
            [([], &self.group_commit_logs)],
        )?;
        histogram(
            e,
            "group_commit_appends",
            "Appends (produce and replica writes under log.flush.policy=always) made durable by one group-commit \
             round.",
            None,
            1.0,
            [([], &self.group_commit_appends)],
        )?;
        single_counter(e, "cleaner_passes", "Log cleaner passes completed.", self.cleaner_passes)?;
        single_counter(e, "cleaner_read_bytes", "Bytes the log cleaner read.", self.cleaner_read_bytes)?;
        single_counter(e, "cleaner_written_bytes", "Bytes the log cleaner wrote.", self.cleaner_written_bytes)?;
        single_counter(
            e,
            "cleaner_records_removed",
            "Records the log cleaner removed (older versions of a key, and expired tombstones).",
            self.cleaner_records_removed,
        )?;
        seconds_histogram(
            e,
            "cleaner_pass",
            "Duration of a log cleaner pass over one log.",
            [([], &self.cleaner_pass)],
        )?;
        {
            let metric = e.encode_descriptor(
                "cleaner_max_dirty_ratio",
                "The highest dirty ratio among compacted logs when the cleaner last looked (the share of the \
                 cleanable part not yet cleaned).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(self.cleaner_max_dirty_ratio).encode(metric)?;
        }
        single_gauge(
            e,
            "cleaner_uncleanable_logs",
            "Logs the cleaner gave up on after a failed pass (logged at ERROR; cleaned again after a restart).",
            self.cleaner_uncleanable_logs,
        )?;
        single_counter(
            e,
            "retention_deleted_segments",
            "Segments deleted by retention (retention.ms and retention.bytes).",
            self.retention_deleted_segments,
        )
    }
}
