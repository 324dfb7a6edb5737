//! One shard's counters: a thread local of plain `Cell`s on each shard thread, so the hot paths pay a
//! thread-local lookup and an add, no atomic, no lock and, once an API or topic has been seen, no allocation.
//! Requests are counted and timed by API key in a fixed array indexed by the key (`server.rs`); errors, which
//! are rare, go to a small map. Bytes and records are counted per topic where they are known: produced on the
//! partition's owner after the append, fetched on the connection's shard when the answer is final. A produce's
//! time is split into its stages ([`ProduceStage`]) on the partition's owner. Histograms are the engine's
//! (`sluice_engine::stats`), which keeps its own for fsyncs, group commit and the cleaner.
//! [`local`] copies them for a scrape (`snapshot.rs`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use sluice_engine::stats::{Histogram, HistogramSnapshot};
use sluice_replication::metadata::{ClusterImage, NodeId};

use crate::budget::RequestBudget;

/// API keys counted in their own slot; any other key shares the last one.
const API_SLOTS: usize = 96;

struct ApiStats {
    /// Requests over `log.slow.request.ms` (logged at WARN by `server.rs`).
    slow: Cell<u64>,
    /// Time from decoding to the response; its count is the requests answered.
    latency: Histogram,
}

/// Where a produce's time goes, on the partition's owner shard: [`ProduceStage`].
pub const PRODUCE_STAGES: [ProduceStage; 4] =
    [ProduceStage::Queue, ProduceStage::Append, ProduceStage::Fsync, ProduceStage::Replication];

/// One stage of a produce, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceStage {
    /// From the request's decoding to the append starting on the partition's owner (crossing shards if needed).
    Queue,
    /// Validating and writing the batches, including waiting for the partition's write lock.
    Append,
    /// acks=all: from the append to the leader's own copy being durable (the group commit's fsync under
    /// `log.flush.policy=always`, nothing under the others).
    Fsync,
    /// acks=all: from the leader's copy being durable to the high watermark covering the records (the in-sync
    /// followers fetching and fsyncing them).
    Replication,
}

impl ProduceStage {
    pub fn name(self) -> &'static str {
        match self {
            ProduceStage::Queue => "queue",
            ProduceStage::Append => "append",
            ProduceStage::Fsync => "fsync",
            ProduceStage::Replication => "replication",
        }
    }
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
    /// `log.slow.request.ms` in nanoseconds, 0 when off; set from each image the shard applies.
    slow_request_nanos: Cell<u64>,
    /// ISR shrinks and expands of partitions this shard leads, seen in the images it applied.
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
    /// Time the shard's executor has run tasks and polled I/O, accumulated from glommio's stats (which
    /// reset each time they are read).
    busy_nanos: Cell<u64>,
    /// Indexed like [`PRODUCE_STAGES`].
    produce_stages: [Histogram; 4],
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        ShardMetrics {
            apis: (0..API_SLOTS).map(|_| ApiStats { slow: Cell::new(0), latency: Histogram::latency() }).collect(),
            errors: RefCell::new(HashMap::new()),
            topics: RefCell::new(HashMap::new()),
            budget: RefCell::new(None),
            in_flight: Cell::new(0),
            slow_request_nanos: Cell::new(0),
            isr_shrinks: Cell::new(0),
            isr_expands: Cell::new(0),
            busy_nanos: Cell::new(0),
            produce_stages: std::array::from_fn(|_| Histogram::latency()),
        }
    }
}

thread_local! {
    static LOCAL: ShardMetrics = ShardMetrics::new();
}

fn slot(api_key: i16) -> usize {
    usize::try_from(api_key).map_or(API_SLOTS - 1, |key| key.min(API_SLOTS - 1))
}

fn add(cell: &Cell<u64>, value: u64) {
    cell.set(cell.get().wrapping_add(value));
}

/// Counts one request of `api_key` answered after `elapsed` (from decode to response built).
pub fn record_request(api_key: i16, elapsed: Duration) {
    LOCAL.with(|metrics| metrics.apis[slot(api_key)].latency.record_duration(elapsed));
}

/// Times one stage of a produce to one partition (on the shard that runs the stage).
pub fn record_produce_stage(stage: ProduceStage, elapsed: Duration) {
    LOCAL.with(|metrics| metrics.produce_stages[stage as usize].record_duration(elapsed));
}

/// Sets this shard's slow-request threshold (`log.slow.request.ms`; 0 turns the slow-request log off).
pub fn set_slow_request_threshold_ms(ms: i64) {
    let nanos = u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    LOCAL.with(|metrics| metrics.slow_request_nanos.set(nanos));
}

/// Whether a request of `api_key` that took `elapsed` is slow enough to log, counting it if so. APIs that wait
/// by design (Fetch's long poll, JoinGroup and SyncGroup during a rebalance) are never slow.
pub fn is_slow_request(api_key: i16, elapsed: Duration) -> bool {
    const WAITING_APIS: [i16; 3] = [1, 11, 14];
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    LOCAL.with(|metrics| {
        let threshold = metrics.slow_request_nanos.get();
        let slow = threshold > 0 && nanos > threshold && !WAITING_APIS.contains(&api_key);
        if slow {
            add(&metrics.apis[slot(api_key)].slow, 1);
        }
        slow
    })
}

/// Counts the ISR changes between two images of the partitions `node` leads in the newer one and this shard
/// owns (`owns`): a shrink when the ISR lost a member, an expand when it gained one (both when it did both).
/// Kafka's IsrShrinksPerSec and IsrExpandsPerSec, counted on the leader.
pub fn record_isr_changes(old: &ClusterImage, new: &ClusterImage, node: NodeId, owns: impl Fn(&str, i32) -> bool) {
    let (mut shrinks, mut expands) = (0, 0);
    for (topic, partition, now) in new.partitions() {
        if now.leader != node || !owns(topic, partition) {
            continue;
        }
        let Some(before) = old.partition(topic, partition) else { continue };
        if before.partition_epoch == now.partition_epoch {
            continue;
        }
        shrinks += u64::from(before.isr.iter().any(|member| !now.isr.contains(member)));
        expands += u64::from(now.isr.iter().any(|member| !before.isr.contains(member)));
    }
    if shrinks + expands > 0 {
        LOCAL.with(|metrics| {
            add(&metrics.isr_shrinks, shrinks);
            add(&metrics.isr_expands, expands);
        });
    }
}

/// Adds the executor's run time since the last call to this shard's busy time (on a glommio executor only).
fn accumulate_busy_time() -> u64 {
    let ran = glommio::executor().executor_stats().total_runtime();
    LOCAL.with(|metrics| {
        add(&metrics.busy_nanos, u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX));
        metrics.busy_nanos.get()
    })
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
    pub slow: u64,
    /// Nanoseconds; its count is the requests answered.
    pub latency: HistogramSnapshot,
}

/// A copy of this thread's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalCounters {
    pub apis: Vec<ApiSnapshot>,
    pub errors: Vec<(i16, i16, u64)>,
    pub topics: Vec<(String, TopicCounters)>,
    pub requests_in_flight: u64,
    pub request_bytes_reserved: u64,
    pub request_bytes_peak: u64,
    pub request_bytes_limit: Option<u64>,
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    pub busy_seconds: f64,
    /// Indexed like [`PRODUCE_STAGES`], in nanoseconds.
    pub produce_stages: Vec<HistogramSnapshot>,
}

/// This thread's counters, now.
pub fn local() -> LocalCounters {
    LOCAL.with(|metrics| {
        let apis = metrics
            .apis
            .iter()
            .enumerate()
            .filter(|(_, stats)| stats.latency.count() > 0)
            .map(|(key, stats)| ApiSnapshot {
                api_key: if key == API_SLOTS - 1 { -1 } else { key as i16 },
                slow: stats.slow.get(),
                latency: stats.latency.snapshot(),
            })
            .collect();
        let errors = metrics.errors.borrow().iter().map(|(&(api, code), &count)| (api, code, count)).collect();
        let topics = metrics.topics.borrow().iter().map(|(topic, counters)| (topic.to_string(), *counters)).collect();
        let budget = metrics.budget.borrow();
        LocalCounters {
            apis,
            errors,
            topics,
            requests_in_flight: metrics.in_flight.get(),
            request_bytes_reserved: budget.as_ref().map_or(0, RequestBudget::reserved_bytes),
            request_bytes_peak: budget.as_ref().map_or(0, RequestBudget::peak_reserved_bytes),
            request_bytes_limit: budget.as_ref().map(RequestBudget::capacity_bytes).filter(|&c| c != u64::MAX),
            isr_shrinks: metrics.isr_shrinks.get(),
            isr_expands: metrics.isr_expands.get(),
            busy_seconds: 0.0,
            produce_stages: metrics.produce_stages.iter().map(Histogram::snapshot).collect(),
        }
    })
}

/// [`local`], plus the shard's busy time (on a shard's executor).
pub fn local_on_executor() -> LocalCounters {
    let busy_nanos = accumulate_busy_time();
    LocalCounters { busy_seconds: busy_nanos as f64 / 1e9, ..local() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slow_requests_pass_the_threshold_and_do_not_wait_by_design() {
        set_slow_request_threshold_ms(0);
        assert!(!is_slow_request(0, Duration::from_secs(100)));
        set_slow_request_threshold_ms(50);
        assert!(!is_slow_request(0, Duration::from_millis(50)));
        assert!(is_slow_request(0, Duration::from_millis(51)));
        assert!(!is_slow_request(1, Duration::from_secs(5)), "a Fetch long poll is not slow");
        assert!(is_slow_request(3, Duration::from_secs(5)));
        LOCAL.with(|m| assert_eq!((m.apis[0].slow.get(), m.apis[1].slow.get(), m.apis[3].slow.get()), (1, 0, 1)));
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
        let other = std::thread::spawn(|| LOCAL.with(|m| (m.apis[3].latency.count(), m.topics.borrow().len())));
        assert_eq!(other.join().unwrap(), (0, 0));
        LOCAL.with(|m| {
            assert_eq!(m.apis[3].latency.count(), 1);
            assert_eq!(m.apis[3].latency.snapshot().buckets[0], 1);
            assert_eq!(m.topics.borrow()["t"], TopicCounters { bytes_in: 10, records_in: 2, bytes_out: 0 });
        });
    }
}
