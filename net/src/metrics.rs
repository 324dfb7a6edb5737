//! Per-shard counters and the Prometheus exposition built from them.
//!
//! Thread-per-core: every shard thread keeps its own [`ShardMetrics`] in a thread local, made of plain
//! `Cell`s, so the hot paths pay a thread-local lookup and an add, no atomic, no lock and, once an API or topic
//! has been seen, no allocation. Requests are counted and timed by API key in a fixed array indexed by the key
//! (`server.rs`); errors, which are rare, go to a small map. Bytes and records are counted per topic where they
//! are known: produced on the partition's owner after the append, fetched on the connection's shard when the
//! answer is final.
//!
//! A scrape ([`gather`]) asks every shard for a [`ShardSnapshot`] over the mesh (`Shard::run_on`); each shard
//! copies its counters and reads its gauges (connections, request memory, partitions led and followed, log
//! ends and sizes) from state it owns. [`encode`] then sums or labels the snapshots and writes the text
//! exposition with `prometheus-client`. Scrape cost is paid by the scrape, not by requests.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use sluice_engine::TopicPartition;

use crate::budget::RequestBudget;
use crate::shard::Shard;

/// API keys counted in their own slot; any other key shares the last one.
const API_SLOTS: usize = 96;

/// Upper bounds of the request latency histogram's buckets, in seconds (the last bucket, +Inf, is implicit).
pub const LATENCY_BUCKETS_SECONDS: [f64; 15] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The same bounds in nanoseconds, for the hot path's comparisons.
const LATENCY_BUCKETS_NANOS: [u64; 15] = [
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

const BUCKETS: usize = LATENCY_BUCKETS_NANOS.len() + 1;

#[derive(Default)]
struct ApiStats {
    requests: Cell<u64>,
    latency_sum_nanos: Cell<u64>,
    /// Per bucket, not cumulative; the last one is +Inf.
    latency_buckets: [Cell<u64>; BUCKETS],
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TopicCounters {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
}

/// One shard's counters. Lives in a thread local of the shard's thread; never shared.
pub struct ShardMetrics {
    apis: Box<[ApiStats]>,
    /// (API key, error code) to the partitions or requests that got it.
    errors: RefCell<HashMap<(i16, i16), u64>>,
    topics: RefCell<HashMap<Box<str>, TopicCounters>>,
    budget: RefCell<Option<RequestBudget>>,
    /// Requests decoded and not yet answered.
    in_flight: Cell<u64>,
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        ShardMetrics {
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            errors: RefCell::new(HashMap::new()),
            topics: RefCell::new(HashMap::new()),
            budget: RefCell::new(None),
            in_flight: Cell::new(0),
        }
    }
}

thread_local! {
    static LOCAL: ShardMetrics = ShardMetrics::new();
}

fn slot(api_key: i16) -> usize {
    usize::try_from(api_key).map_or(API_SLOTS - 1, |key| key.min(API_SLOTS - 1))
}

fn bucket(nanos: u64) -> usize {
    LATENCY_BUCKETS_NANOS.iter().position(|&bound| nanos <= bound).unwrap_or(BUCKETS - 1)
}

fn add(cell: &Cell<u64>, value: u64) {
    cell.set(cell.get().wrapping_add(value));
}

/// Counts one request of `api_key` answered after `elapsed` (from decode to response built).
pub fn record_request(api_key: i16, elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    LOCAL.with(|metrics| {
        let stats = &metrics.apis[slot(api_key)];
        add(&stats.requests, 1);
        add(&stats.latency_sum_nanos, nanos);
        add(&stats.latency_buckets[bucket(nanos)], 1);
    });
}

/// A request in flight on this shard, from its decoding until dropped (answered, or its connection gone).
#[must_use = "the request counts as in flight until this is dropped"]
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        LOCAL.with(|metrics| add(&metrics.in_flight, 1));
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        LOCAL.with(|metrics| metrics.in_flight.set(metrics.in_flight.get().saturating_sub(1)));
    }
}

/// Counts one error code in an answer of `api_key` (one per partition that got it). NONE is not counted.
pub fn record_error(api_key: i16, error_code: i16) {
    if error_code == 0 {
        return;
    }
    LOCAL.with(|metrics| *metrics.errors.borrow_mut().entry((api_key, error_code)).or_insert(0) += 1);
}

fn with_topic(topic: &str, f: impl FnOnce(&mut TopicCounters)) {
    LOCAL.with(|metrics| {
        let mut topics = metrics.topics.borrow_mut();
        match topics.get_mut(topic) {
            Some(counters) => f(counters),
            None => f(topics.entry(topic.into()).or_default()),
        }
    });
}

/// Records appended to `topic` by a client's produce (on the partition's owner, once appended).
pub fn record_produced(topic: &str, bytes: u64, records: u64) {
    with_topic(topic, |counters| {
        counters.bytes_in = counters.bytes_in.wrapping_add(bytes);
        counters.records_in = counters.records_in.wrapping_add(records);
    });
}

/// Record bytes of `topic` in a consumer's fetch answer.
pub fn record_fetched(topic: &str, bytes: u64) {
    if bytes > 0 {
        with_topic(topic, |counters| counters.bytes_out = counters.bytes_out.wrapping_add(bytes));
    }
}

/// Makes this shard's request budget visible to scrapes (`server::accept_loop`).
pub fn register_budget(budget: &RequestBudget) {
    LOCAL.with(|metrics| *metrics.budget.borrow_mut() = Some(budget.clone()));
}

/// Requests of one API on one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSnapshot {
    pub api_key: i16,
    pub requests: u64,
    pub latency_sum_seconds: f64,
    pub latency_buckets: [u64; BUCKETS],
}

/// One partition's log on its owner shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub log_end_offset: i64,
    pub size_bytes: u64,
}

/// What one shard reports to a scrape. `Send`: it travels over the mesh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub apis: Vec<ApiSnapshot>,
    pub errors: Vec<(i16, i16, u64)>,
    pub topics: Vec<(String, TopicCounters)>,
    pub connections: u64,
    pub requests_in_flight: u64,
    pub request_bytes_reserved: u64,
    pub request_bytes_peak: u64,
    pub request_bytes_limit: Option<u64>,
    pub partitions_led: u64,
    pub partitions_followed: u64,
    pub under_replicated: u64,
    pub partitions: Vec<PartitionSnapshot>,
}

/// This shard's counters and gauges, now.
pub fn snapshot(shard: &Shard, per_partition: bool) -> ShardSnapshot {
    let mut snapshot = LOCAL.with(|metrics| {
        let apis = metrics
            .apis
            .iter()
            .enumerate()
            .filter(|(_, stats)| stats.requests.get() > 0)
            .map(|(key, stats)| ApiSnapshot {
                api_key: if key == API_SLOTS - 1 { -1 } else { key as i16 },
                requests: stats.requests.get(),
                latency_sum_seconds: stats.latency_sum_nanos.get() as f64 / 1e9,
                latency_buckets: std::array::from_fn(|index| stats.latency_buckets[index].get()),
            })
            .collect();
        let errors = metrics.errors.borrow().iter().map(|(&(api, code), &count)| (api, code, count)).collect();
        let topics = metrics.topics.borrow().iter().map(|(topic, counters)| (topic.to_string(), *counters)).collect();
        let budget = metrics.budget.borrow();
        ShardSnapshot {
            shard: shard.id,
            apis,
            errors,
            topics,
            requests_in_flight: metrics.in_flight.get(),
            request_bytes_reserved: budget.as_ref().map_or(0, RequestBudget::reserved_bytes),
            request_bytes_peak: budget.as_ref().map_or(0, RequestBudget::peak_reserved_bytes),
            request_bytes_limit: budget.as_ref().map(RequestBudget::capacity_bytes).filter(|&c| c != u64::MAX),
            ..ShardSnapshot::default()
        }
    });
    snapshot.connections = shard.connections.get() as u64;
    let image = shard.image();
    let replicas = shard.replicas();
    let mut owned = shard.manager.partitions();
    owned.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    for tp in owned {
        let Some(log) = shard.manager.get(&tp) else { continue };
        if let Some(replica) = replicas.as_ref().and_then(|replicas| replicas.get(&tp)) {
            match replica.leader() {
                Some(leader) => {
                    snapshot.partitions_led += 1;
                    let replica_count = image.partition(&tp.topic, tp.partition).map_or(0, |p| p.replicas.len());
                    if leader.isr_len() < replica_count {
                        snapshot.under_replicated += 1;
                    }
                }
                None => snapshot.partitions_followed += 1,
            }
        }
        if per_partition {
            let TopicPartition { topic, partition } = tp;
            snapshot.partitions.push(PartitionSnapshot {
                topic: topic.to_string(),
                partition,
                log_end_offset: log.log_end_offset().0,
                size_bytes: log.size_bytes(),
            });
        }
    }
    snapshot
}

/// Every shard's snapshot, gathered over the mesh, in shard order.
pub async fn gather(shard: &Rc<Shard>, per_partition: bool) -> Vec<ShardSnapshot> {
    let calls = (0..shard.shards())
        .map(|target| shard.run_on(target, move |shard| async move { snapshot(&shard, per_partition) }));
    futures::future::join_all(calls).await
}

/// What the process as a whole uses, from `/proc/self`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl ProcessStats {
    pub fn read() -> ProcessStats {
        // SAFETY: sysconf only reads a system constant.
        let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let resident_bytes = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
            .map(|pages| pages * page_bytes);
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|entries| entries.count() as u64);
        ProcessStats { resident_bytes, open_fds }
    }
}

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
    latency: BTreeMap<String, (f64, [u64; BUCKETS])>,
    errors: BTreeMap<(String, String), u64>,
    topics: BTreeMap<String, TopicCounters>,
    per_shard: Vec<ShardSnapshot>,
    partitions_led: u64,
    partitions_followed: u64,
    under_replicated: u64,
    partitions: Vec<PartitionSnapshot>,
    process: ProcessStats,
}

impl Exposition {
    fn new(snapshots: Vec<ShardSnapshot>, process: ProcessStats) -> Exposition {
        let mut exposition = Exposition { process, ..Exposition::default() };
        for mut shard in snapshots {
            for api in &shard.apis {
                let name = api_name(api.api_key);
                *exposition.requests.entry(name.clone()).or_default() += api.requests;
                let (sum, buckets) = exposition.latency.entry(name).or_insert((0.0, [0; BUCKETS]));
                *sum += api.latency_sum_seconds;
                for (total, count) in buckets.iter_mut().zip(api.latency_buckets) {
                    *total += count;
                }
            }
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
            exposition.partitions.append(&mut shard.partitions);
            exposition.per_shard.push(shard);
        }
        exposition
    }
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn counter<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<'a, const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'a, N>, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge with one series and no labels.
fn single_gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(signed(value)).encode(metric)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
            "request_errors",
            "Error codes in Kafka answers, by API and error (one per partition that got it; Produce, Fetch and \
             unsupported versions so far).",
            self.errors
                .iter()
                .map(|((api, error), &count)| ([("api", api.as_str()), ("error", error.as_str())], count)),
        )?;
        {
            let unit = Unit::Seconds;
            let mut metric = e.encode_descriptor(
                "request_latency",
                "Time from a request's decoding to its response, by API.",
                Some(&unit),
                MetricType::Histogram,
            )?;
            for (api, (sum, buckets)) in &self.latency {
                // Per bucket, as prometheus-client takes them: it writes the cumulative counts.
                let bounds: Vec<(f64, u64)> = buckets
                    .iter()
                    .enumerate()
                    .map(|(index, &count)| (LATENCY_BUCKETS_SECONDS.get(index).copied().unwrap_or(f64::MAX), count))
                    .collect();
                let count = buckets.iter().sum();
                let labels = [("api", api.as_str())];
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(*sum, count, &bounds, None)?;
            }
        }
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
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(100_000), 0);
        assert_eq!(bucket(100_001), 1);
        assert_eq!(bucket(10_000_000_000), BUCKETS - 2);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

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
                requests: produce,
                latency_sum_seconds: 0.5,
                latency_buckets: std::array::from_fn(|i| if i == 3 { produce } else { 0 }),
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
    fn a_request_is_in_flight_until_its_guard_drops() {
        let in_flight = || LOCAL.with(|m| m.in_flight.get());
        let before = in_flight();
        let first = InFlight::start();
        let second = InFlight::start();
        assert_eq!(in_flight(), before + 2);
        drop(first);
        assert_eq!(in_flight(), before + 1);
        drop(second);
        assert_eq!(in_flight(), before);
    }

    #[test]
    fn counters_are_per_thread() {
        record_request(3, Duration::from_micros(50));
        record_produced("t", 10, 2);
        let other = std::thread::spawn(|| LOCAL.with(|m| (m.apis[3].requests.get(), m.topics.borrow().len())));
        assert_eq!(other.join().unwrap(), (0, 0));
        LOCAL.with(|m| {
            assert_eq!(m.apis[3].requests.get(), 1);
            assert_eq!(m.apis[3].latency_buckets[0].get(), 1);
            assert_eq!(m.topics.borrow()["t"], TopicCounters { bytes_in: 10, records_in: 2, bytes_out: 0 });
        });
    }
}
