//! The exposition: every shard's snapshot (`snapshot.rs`) summed or labelled, and written in the text format
//! with `prometheus-client` (OpenMetrics, which Prometheus asks for; [`classic_text`] turns it into the classic
//! 0.0.4 format for curl and `promtool check metrics`). Scrape cost is paid here, by the scrape, not by
//! requests.
//!
//! Consumer lag is computed here: a group's committed offset (from its coordinator's shard) against the
//! partition's high watermark (from the partition's owner shard on this broker: its leader's, or a follower's
//! last known one). A partition with no replica on this broker has its committed offset shown and no lag.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use sluice_engine::stats::HistogramSnapshot;

use super::counters::TopicCounters;
use super::encode::{counter, gauge, seconds_histogram, signed, single_counter, single_gauge, Labels};
use super::snapshot::{ClusterView, PartitionSnapshot, ProcessStats, ShardSnapshot};
use crate::groups::GroupOffsets;

/// An API's name as Kafka's request metrics spell it (`Produce`, `Fetch`, ...).
fn api_name(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(key) => format!("{key:?}"),
        Err(()) => "unknown".to_string(),
    }
}

/// An error code as Kafka names it (`NOT_LEADER_OR_FOLLOWER`).
fn error_name(code: i16) -> String {
    let error = match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => return format!("CODE_{code}"),
        Some(error) => error,
    };
    let camel = format!("{error:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (index, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// Everything a scrape shows, summed over shards where a per-shard split would not help.
#[derive(Debug, Default)]
struct Exposition {
    requests: BTreeMap<String, u64>,
    slow_requests: BTreeMap<String, u64>,
    latency: BTreeMap<String, HistogramSnapshot>,
    errors: BTreeMap<(String, String), u64>,
    topics: BTreeMap<String, TopicCounters>,
    per_shard: Vec<ShardSnapshot>,
    partitions_led: u64,
    partitions_followed: u64,
    under_replicated: u64,
    under_min_isr: u64,
    offline_logs: u64,
    isr_shrinks: u64,
    isr_expands: u64,
    cluster: Option<ClusterView>,
    partitions: Vec<PartitionSnapshot>,
    /// (topic, partition) to the high watermark and whether it is the leader's.
    high_watermarks: BTreeMap<(String, i32), (i64, bool)>,
    groups: Vec<GroupOffsets>,
    process: ProcessStats,
    /// Produce stages, fsyncs, group commit, the cleaner and retention, summed over shards (`storage.rs`).
    pub(super) storage: super::storage::StorageTotals,
}

impl Exposition {
    fn new(snapshots: Vec<ShardSnapshot>, process: ProcessStats) -> Exposition {
        let mut exposition = Exposition { process, ..Exposition::default() };
        for mut shard in snapshots {
            for api in &shard.apis {
                let name = api_name(api.api_key);
                *exposition.requests.entry(name.clone()).or_default() += api.latency.count();
                *exposition.slow_requests.entry(name.clone()).or_default() += api.slow;
                exposition.latency.entry(name).or_default().merge(&api.latency);
            }
            exposition.storage.add(&shard);
            for &(api, code, count) in &shard.errors {
                *exposition.errors.entry((api_name(api), error_name(code))).or_default() += count;
            }
            for (topic, counters) in &shard.topics {
                let total = exposition.topics.entry(topic.clone()).or_default();
                total.bytes_in += counters.bytes_in;
                total.records_in += counters.records_in;
                total.bytes_out += counters.bytes_out;
            }
            exposition.partitions_led += shard.partitions_led;
            exposition.partitions_followed += shard.partitions_followed;
            exposition.under_replicated += shard.under_replicated;
            exposition.under_min_isr += shard.under_min_isr;
            exposition.offline_logs += shard.offline_logs;
            exposition.isr_shrinks += shard.isr_shrinks;
            exposition.isr_expands += shard.isr_expands;
            if let Some(cluster) = shard.cluster.take() {
                exposition.cluster = Some(cluster);
            }
            exposition.partitions.append(&mut shard.partitions);
            for hw in shard.high_watermarks.drain(..) {
                let known =
                    exposition.high_watermarks.entry((hw.topic, hw.partition)).or_insert((hw.offset, hw.leader));
                if hw.leader && !known.1 {
                    *known = (hw.offset, true);
                }
            }
            exposition.groups.append(&mut shard.groups);
            exposition.per_shard.push(shard);
        }
        exposition.groups.sort_by(|a, b| a.group.cmp(&b.group));
        exposition
    }

    /// (group, topic, partition, committed offset, lag) of every committed offset, lag `None` when no replica
    /// of the partition is on this broker.
    fn group_offsets(&self) -> Vec<GroupOffsetRow<'_>> {
        let mut rows = Vec::new();
        for group in &self.groups {
            for (topic, partition, committed) in &group.offsets {
                let end = self.high_watermarks.get(&(topic.clone(), *partition)).map(|&(offset, _)| offset);
                let lag = end.map(|end| end.saturating_sub(*committed).max(0));
                rows.push((group.group.as_str(), topic.as_str(), partition.to_string(), *committed, lag));
            }
        }
        rows.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        rows
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        counter(
            e,
            "requests",
            "Kafka requests answered, by API.",
            self.requests.iter().map(|(api, &count)| ([("api", api.as_str())], count)),
        )?;
        counter(
            e,
            "slow_requests",
            "Requests answered later than log.slow.request.ms after their decoding, by API (each logged at WARN).",
            self.slow_requests.iter().map(|(api, &count)| ([("api", api.as_str())], count)),
        )?;
        counter(
            e,
            "request_errors",
            "Error codes in Kafka answers, by API and error (one per partition, topic, group or resource that got \
             it, and the answer's own code).",
            self.errors
                .iter()
                .map(|((api, error), &count)| ([("api", api.as_str()), ("error", error.as_str())], count)),
        )?;
        seconds_histogram(
            e,
            "request_latency",
            "Time from a request's decoding to its response, by API.",
            self.latency.iter().map(|(api, latency)| ([("api", api.as_str())], latency)),
        )?;
        let topics = || self.topics.iter();
        counter(
            e,
            "bytes_in",
            "Record bytes appended by producers, by topic.",
            topics().map(|(t, c)| ([("topic", t.as_str())], c.bytes_in)),
        )?;
        counter(
            e,
            "records_in",
            "Records appended by producers, by topic.",
            topics().map(|(t, c)| ([("topic", t.as_str())], c.records_in)),
        )?;
        counter(
            e,
            "bytes_out",
            "Record bytes sent to consumers, by topic (follower fetches not counted).",
            topics().map(|(t, c)| ([("topic", t.as_str())], c.bytes_out)),
        )?;
        let shard_names: Vec<String> = self.per_shard.iter().map(|s| s.shard.to_string()).collect();
        let per_shard = |value: fn(&ShardSnapshot) -> u64| {
            self.per_shard.iter().zip(&shard_names).map(move |(s, name)| ([("shard", name.as_str())], signed(value(s))))
        };
        gauge(e, "connections", "Open client connections, by shard.", per_shard(|s| s.connections))?;
        gauge(
            e,
            "requests_in_flight",
            "Kafka requests decoded and not yet answered, by shard.",
            per_shard(|s| s.requests_in_flight),
        )?;
        gauge(
            e,
            "request_memory_bytes",
            "Request bytes held in memory against the shard's budget (queued.max.request.bytes).",
            per_shard(|s| s.request_bytes_reserved),
        )?;
        gauge(
            e,
            "request_memory_peak_bytes",
            "The most request bytes the shard has held at once.",
            per_shard(|s| s.request_bytes_peak),
        )?;
        gauge(
            e,
            "request_memory_limit_bytes",
            "The shard's request budget (absent when unbounded).",
            self.per_shard
                .iter()
                .zip(&shard_names)
                .filter_map(|(s, name)| s.request_bytes_limit.map(|limit| ([("shard", name.as_str())], signed(limit)))),
        )?;
        single_gauge(e, "partitions_led", "Partitions this broker leads.", self.partitions_led)?;
        single_gauge(e, "partitions_followed", "Partitions this broker follows.", self.partitions_followed)?;
        single_gauge(
            e,
            "under_replicated_partitions",
            "Partitions this broker leads whose ISR is smaller than their replica set.",
            self.under_replicated,
        )?;
        single_gauge(
            e,
            "under_min_isr_partitions",
            "Partitions this broker leads whose ISR is smaller than min.insync.replicas (acks=all produce fails).",
            self.under_min_isr,
        )?;
        single_gauge(
            e,
            "offline_log_partitions",
            "Partitions this broker should hold whose log is offline (corrupt, or stopped by a failed write or fsync).",
            self.offline_logs,
        )?;
        single_counter(e, "isr_shrinks", "ISR shrinks of partitions this broker leads.", self.isr_shrinks)?;
        single_counter(e, "isr_expands", "ISR expands of partitions this broker leads.", self.isr_expands)?;
        {
            let mut metric = e.encode_descriptor(
                "shard_busy",
                "Time each shard's executor spent running tasks and polling I/O; its rate is the shard's busy ratio.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            for (shard, name) in self.per_shard.iter().zip(&shard_names) {
                ConstCounter::new(shard.busy_seconds).encode(metric.encode_family(&[("shard", name.as_str())])?)?;
            }
        }
        if let Some(cluster) = &self.cluster {
            let flag = |on: bool| u64::from(on);
            single_gauge(e, "controller_active", "1 on the active controller.", flag(cluster.active_controller))?;
            single_gauge(
                e,
                "controller_known",
                "1 while this node knows an active controller (0: no quorum, as far as it can tell).",
                flag(cluster.controller_known),
            )?;
            let voters: Vec<(String, i64)> =
                cluster.voter_lags.iter().map(|(id, lag)| (id.to_string(), *lag)).collect();
            gauge(
                e,
                "controller_voter_lag_records",
                "On the active controller: metadata log entries each voter is behind the leader's log end (-1: not \
                 heard from).",
                voters.iter().map(|(voter, lag)| ([("voter", voter.as_str())], *lag)),
            )?;
            if let Some(applied) = cluster.metadata_applied {
                single_gauge(
                    e,
                    "metadata_applied_offset",
                    "The last metadata log entry this node has applied to its image.",
                    applied.max(0) as u64,
                )?;
            }
            single_gauge(e, "brokers", "Brokers registered in this node's metadata image.", cluster.brokers)?;
            single_gauge(e, "fenced_brokers", "Registered brokers that are fenced.", cluster.fenced_brokers)?;
            single_gauge(
                e,
                "offline_partitions",
                "Partitions with no leader, cluster-wide, in this node's metadata image.",
                cluster.partitions_without_leader,
            )?;
        }
        if !self.partitions.is_empty() {
            let names: Vec<String> = self.partitions.iter().map(|p| p.partition.to_string()).collect();
            let series = |value: fn(&PartitionSnapshot) -> i64| {
                self.partitions
                    .iter()
                    .zip(&names)
                    .map(move |(p, name)| ([("topic", p.topic.as_str()), ("partition", name.as_str())], value(p)))
            };
            gauge(e, "log_end_offset", "The log end offset of each partition.", series(|p| p.log_end_offset))?;
            gauge(e, "log_size_bytes", "Bytes on disk of each partition's log.", series(|p| signed(p.size_bytes)))?;
            let hw: Vec<(String, String, i64)> = self
                .high_watermarks
                .iter()
                .map(|((topic, partition), &(offset, _))| (topic.clone(), partition.to_string(), offset))
                .collect();
            gauge(
                e,
                "log_high_watermark",
                "The high watermark of each partition, as this broker's replica knows it.",
                hw.iter().map(|(t, p, offset)| ([("topic", t.as_str()), ("partition", p.as_str())], *offset)),
            )?;
        }
        self.encode_groups(e)?;
        self.storage.encode(e)?;
        if let Some(bytes) = self.process.resident_bytes {
            single_gauge(e, "process_resident_memory_bytes", "Resident memory of the process.", bytes)?;
        }
        if let Some(fds) = self.process.open_fds {
            single_gauge(e, "process_open_fds", "Open file descriptors of the process.", fds)?;
        }
        Ok(())
    }
}

/// The exposition of `snapshots` and `process`, in the OpenMetrics text format (which Prometheus reads).
pub fn encode(snapshots: Vec<ShardSnapshot>, process: ProcessStats) -> String {
    let mut registry = Registry::with_prefix("sluice");
    registry.register_collector(Box::new(Exposition::new(snapshots, process)));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a metric's labels.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(%error, "encoding the metrics failed");
    }
    text
}

/// The OpenMetrics exposition [`encode`] writes, in Prometheus' classic text format (0.0.4): a counter's
/// HELP and TYPE lines name it with its `_total` suffix, as its samples do, and the `# UNIT` and `# EOF` lines,
/// which that format does not have, go.
pub fn classic_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(previous) = help.replace(rest) {
                out.push_str("# HELP ");
                out.push_str(previous);
                out.push('\n');
            }
            continue;
        }
        let counter = line.strip_prefix("# TYPE ").and_then(|rest| rest.strip_suffix(" counter"));
        if let Some(previous) = help.take() {
            out.push_str("# HELP ");
            match (counter, previous.split_once(' ')) {
                (Some(name), Some((help_name, text))) if help_name == name => {
                    out.push_str(name);
                    out.push_str("_total ");
                    out.push_str(text);
                }
                _ => out.push_str(previous),
            }
            out.push('\n');
        }
        match counter {
            Some(name) => {
                out.push_str("# TYPE ");
                out.push_str(name);
                out.push_str("_total counter\n");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// (group, topic, partition, committed offset, lag) of one committed offset.
type GroupOffsetRow<'a> = (&'a str, &'a str, String, i64, Option<i64>);

fn group_labels<'a>(row: &'a GroupOffsetRow<'_>) -> Labels<'a, 3> {
    [("group", row.0), ("topic", row.1), ("partition", row.2.as_str())]
}

impl Exposition {
    fn encode_groups(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let states: Vec<(&str, &str, i64)> = self
            .groups
            .iter()
            .flat_map(|g| {
                g.protocol.states().iter().map(move |&state| (g.group.as_str(), state, i64::from(state == g.state)))
            })
            .collect();
        gauge(
            e,
            "consumer_group_state",
            "1 for the state each group this broker coordinates is in, 0 for the other states of its protocol.",
            states.iter().map(|&(group, state, value)| ([("group", group), ("state", state)], value)),
        )?;
        gauge(
            e,
            "consumer_group_members",
            "Members of each group this broker coordinates.",
            self.groups.iter().map(|g| ([("group", g.group.as_str())], signed(g.members as u64))),
        )?;
        let rows = self.group_offsets();
        gauge(
            e,
            "consumer_group_committed_offset",
            "The offset each group this broker coordinates has committed, by topic and partition.",
            rows.iter().map(|row| (group_labels(row), row.3)),
        )?;
        gauge(
            e,
            "consumer_group_lag_records",
            "Records between a group's committed offset and the partition's high watermark (for partitions with a \
             replica on this broker).",
            rows.iter().filter_map(|row| row.4.map(|lag| (group_labels(row), lag))),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::counters::ApiSnapshot;
    use super::super::snapshot::HighWatermark;
    use super::*;
    use crate::groups::GroupProtocol;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(ResponseError::NotLeaderOrFollower.code()), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(ResponseError::UnsupportedVersion.code()), "UNSUPPORTED_VERSION");
        assert_eq!(error_name(-2000), "CODE_-2000");
    }

    #[test]
    fn shards_are_summed_and_encoded_as_prometheus_text() {
        let shard = |id: usize, bytes_in: u64, produce: u64| ShardSnapshot {
            shard: id,
            apis: vec![ApiSnapshot {
                api_key: 0,
                slow: 1,
                latency: {
                    let latency = sluice_engine::stats::Histogram::latency();
                    for _ in 0..produce {
                        latency.record(1_000_000);
                    }
                    latency.snapshot()
                },
            }],
            errors: vec![(1, ResponseError::OffsetOutOfRange.code(), 2)],
            topics: vec![("orders".into(), TopicCounters { bytes_in, records_in: 10, bytes_out: 0 })],
            connections: 3,
            partitions_led: 1,
            partitions: vec![PartitionSnapshot {
                topic: "orders".into(),
                partition: id as i32,
                log_end_offset: 10,
                size_bytes: 500,
            }],
            ..ShardSnapshot::default()
        };
        let text = encode(vec![shard(0, 100, 4), shard(1, 23, 1)], ProcessStats::default());
        assert!(text.contains("sluice_requests_total{api=\"Produce\"} 5\n"), "{text}");
        assert!(text.contains("sluice_slow_requests_total{api=\"Produce\"} 2\n"), "{text}");
        assert!(text.contains("sluice_bytes_in_total{topic=\"orders\"} 123\n"), "{text}");
        assert!(text.contains("sluice_records_in_total{topic=\"orders\"} 20\n"), "{text}");
        assert!(
            text.contains("sluice_request_errors_total{api=\"Fetch\",error=\"OFFSET_OUT_OF_RANGE\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("sluice_request_latency_seconds_bucket{le=\"0.0005\",api=\"Produce\"} 0\n"), "{text}");
        assert!(text.contains("sluice_request_latency_seconds_bucket{le=\"0.001\",api=\"Produce\"} 5\n"), "{text}");
        assert!(text.contains("sluice_request_latency_seconds_bucket{le=\"+Inf\",api=\"Produce\"} 5\n"), "{text}");
        assert!(text.contains("sluice_request_latency_seconds_count{api=\"Produce\"} 5\n"), "{text}");
        assert!(text.contains("sluice_connections{shard=\"1\"} 3\n"), "{text}");
        assert!(text.contains("sluice_partitions_led 2\n"), "{text}");
        assert!(text.contains("sluice_isr_shrinks_total 0\n"), "{text}");
        assert!(text.contains("sluice_log_end_offset{topic=\"orders\",partition=\"1\"} 10\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");

        let classic = classic_text(&text);
        assert!(classic.contains("# HELP sluice_requests_total Kafka requests answered, by API.\n"), "{classic}");
        assert!(classic.contains("# TYPE sluice_requests_total counter\nsluice_requests_total{"), "{classic}");
        assert!(classic.contains("# TYPE sluice_connections gauge\n"), "{classic}");
        assert!(classic.contains("# TYPE sluice_request_latency_seconds histogram\nsluice_request_latency"));
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"), "{classic}");
        let samples = |text: &str| text.lines().filter(|line| !line.starts_with('#')).collect::<Vec<_>>().join("\n");
        assert_eq!(samples(&classic), samples(&text));
    }

    #[test]
    fn lag_is_the_high_watermark_past_the_committed_offset_across_shards() {
        let hw = |partition, offset, leader| HighWatermark { topic: "orders".into(), partition, offset, leader };
        let coordinator = ShardSnapshot {
            shard: 0,
            high_watermarks: vec![hw(0, 100, true), hw(2, 7, false)],
            groups: vec![GroupOffsets {
                group: "billing".into(),
                protocol: GroupProtocol::Classic,
                state: "Stable",
                members: 2,
                offsets: vec![
                    ("orders".into(), 0, 40),
                    ("orders".into(), 1, 5),
                    ("orders".into(), 2, 3),
                    ("elsewhere".into(), 0, 9),
                ],
            }],
            ..ShardSnapshot::default()
        };
        // Partition 1 lives on the other shard; partition 2's leader there beats this shard's follower view.
        let other =
            ShardSnapshot { shard: 1, high_watermarks: vec![hw(1, 5, true), hw(2, 8, true)], ..coordinator.clone() };
        let other = ShardSnapshot { groups: Vec::new(), ..other };
        let text = encode(vec![coordinator, other], ProcessStats::default());
        let has = |line: &str| assert!(text.contains(&format!("{line}\n")), "{line} not in\n{text}");
        has("sluice_consumer_group_lag_records{group=\"billing\",topic=\"orders\",partition=\"0\"} 60");
        has("sluice_consumer_group_lag_records{group=\"billing\",topic=\"orders\",partition=\"1\"} 0");
        has("sluice_consumer_group_lag_records{group=\"billing\",topic=\"orders\",partition=\"2\"} 5");
        has("sluice_consumer_group_committed_offset{group=\"billing\",topic=\"elsewhere\",partition=\"0\"} 9");
        assert!(!text.contains("sluice_consumer_group_lag_records{group=\"billing\",topic=\"elsewhere\""), "{text}");
        has("sluice_consumer_group_state{group=\"billing\",state=\"Stable\"} 1");
        has("sluice_consumer_group_state{group=\"billing\",state=\"Empty\"} 0");
        has("sluice_consumer_group_members{group=\"billing\"} 2");
    }

    #[test]
    fn shards_add_up_and_stages_are_labelled() {
        use super::super::counters::PRODUCE_STAGES;
        use sluice_engine::stats::{EngineStatsSnapshot, Histogram};

        let shard = |id: usize, ratio: f64, fsync_nanos: u64| {
            let fsync = Histogram::latency();
            fsync.record(fsync_nanos);
            let stages = PRODUCE_STAGES.map(|_| Histogram::latency());
            stages[2].record(3_000_000);
            ShardSnapshot {
                shard: id,
                produce_stages: stages.iter().map(Histogram::snapshot).collect(),
                engine: EngineStatsSnapshot {
                    fsync: fsync.snapshot(),
                    cleaner_passes: 2,
                    cleaner_max_dirty_ratio: ratio,
                    ..EngineStatsSnapshot::default()
                },
                ..ShardSnapshot::default()
            }
        };
        let text = encode(vec![shard(0, 0.25, 1_000_000), shard(1, 0.75, 20_000_000)], ProcessStats::default());
        assert!(text.contains("sluice_log_fsync_seconds_count 2\n"), "{text}");
        assert!(text.contains("sluice_log_fsync_seconds_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("sluice_log_fsync_seconds_bucket{le=\"0.025\"} 2\n"), "{text}");
        assert!(text.contains("sluice_produce_stage_seconds_count{stage=\"fsync\"} 2\n"), "{text}");
        assert!(text.contains("sluice_produce_stage_seconds_count{stage=\"queue\"} 0\n"), "{text}");
        assert!(text.contains("sluice_cleaner_passes_total 4\n"), "{text}");
        assert!(text.contains("sluice_cleaner_max_dirty_ratio 0.75\n"), "{text}");
    }
}
