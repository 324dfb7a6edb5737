//! One shard's counters: a thread local of plain `Cell`s on each shard thread, so the hot paths pay a
//! thread-local lookup and an add, no atomic, no lock and, once an API or topic has been seen, no allocation.
//! Requests are counted and timed by API key in a fixed array indexed by the key (`server.rs`); errors, which
//! are rare, go to a small map. Bytes and records are counted per topic where they are known: produced on the
//! partition's owner after the append, fetched on the connection's shard when the answer is final.
//! [`local`] copies them for a scrape (`snapshot.rs`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use sluice_replication::metadata::{ClusterImage, NodeId};

use crate::budget::RequestBudget;

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

pub const BUCKETS: usize = LATENCY_BUCKETS_NANOS.len() + 1;

#[derive(Default)]
struct ApiStats {
    requests: Cell<u64>,
    /// Requests over `log.slow.request.ms` (logged at WARN by `server.rs`).
    slow: Cell<u64>,
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
    /// `log.slow.request.ms` in nanoseconds, 0 when off; set from each image the shard applies.
    slow_request_nanos: Cell<u64>,
    /// ISR shrinks and expands of partitions this shard leads, seen in the images it applied.
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
    /// Time the shard's executor has run tasks and polled I/O, accumulated from glommio's stats (which
    /// reset each time they are read).
    busy_nanos: Cell<u64>,
}

impl ShardMetrics {
    fn new() -> ShardMetrics {
        ShardMetrics {
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            errors: RefCell::new(HashMap::new()),
            topics: RefCell::new(HashMap::new()),
            budget: RefCell::new(None),
            in_flight: Cell::new(0),
            slow_request_nanos: Cell::new(0),
            isr_shrinks: Cell::new(0),
            isr_expands: Cell::new(0),
            busy_nanos: Cell::new(0),
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
    pub requests: u64,
    pub slow: u64,
    pub latency_sum_seconds: f64,
    pub latency_buckets: [u64; BUCKETS],
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
}

/// This thread's counters, now.
pub fn local() -> LocalCounters {
    LOCAL.with(|metrics| {
        let apis = metrics
            .apis
            .iter()
            .enumerate()
            .filter(|(_, stats)| stats.requests.get() > 0)
            .map(|(key, stats)| ApiSnapshot {
                api_key: if key == API_SLOTS - 1 { -1 } else { key as i16 },
                requests: stats.requests.get(),
                slow: stats.slow.get(),
                latency_sum_seconds: stats.latency_sum_nanos.get() as f64 / 1e9,
                latency_buckets: std::array::from_fn(|index| stats.latency_buckets[index].get()),
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
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(100_000), 0);
        assert_eq!(bucket(100_001), 1);
        assert_eq!(bucket(10_000_000_000), BUCKETS - 2);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

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
        let other = std::thread::spawn(|| LOCAL.with(|m| (m.apis[3].requests.get(), m.topics.borrow().len())));
        assert_eq!(other.join().unwrap(), (0, 0));
        LOCAL.with(|m| {
            assert_eq!(m.apis[3].requests.get(), 1);
            assert_eq!(m.apis[3].latency_buckets[0].get(), 1);
            assert_eq!(m.topics.borrow()["t"], TopicCounters { bytes_in: 10, records_in: 2, bytes_out: 0 });
        });
    }
}
