//! Replication throttles: Kafka's `leader.replication.throttled.rate` and `follower.replication.throttled.rate`
//! (bytes per second, per broker), applied to the replicas a topic lists in
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`, and only while they are
//! out of sync, as Kafka does: a reassignment's new replicas catch up without starving the partitions' in-sync
//! traffic, and a throttle can never hold back the high watermark.
//!
//! The leader leaves a throttled partition out of a follower's fetch answer while its quota is spent; the
//! follower leaves it out of its fetch request while its own is. Each shard holds its share of the broker's
//! rate.

use std::cell::Cell;
use std::time::Instant;

use crate::metadata::NodeId;

/// A token bucket holding at most one second of its rate, which may go into debt: a fetch answer is sent
/// whole, and the bytes it carried are paid back before the next throttled one.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; `u64::MAX` means unthrottled.
    rate: Cell<u64>,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { rate: Cell::new(u64::MAX), tokens: Cell::new(0.0), refilled: Cell::new(Instant::now()) }
    }
}

impl Throttle {
    pub fn set_rate(&self, bytes_per_second: u64) {
        if self.rate.replace(bytes_per_second) != bytes_per_second {
            self.tokens.set(bytes_per_second as f64);
            self.refilled.set(Instant::now());
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate.get()
    }

    fn refill(&self, now: Instant) {
        let rate = self.rate.get() as f64;
        let elapsed = now.saturating_duration_since(self.refilled.get()).as_secs_f64();
        self.tokens.set((self.tokens.get() + elapsed * rate).min(rate));
        self.refilled.set(now);
    }

    /// Whether throttled traffic must wait: the bucket is empty (or in debt).
    pub fn exceeded(&self) -> bool {
        self.exceeded_at(Instant::now())
    }

    fn exceeded_at(&self, now: Instant) -> bool {
        if self.rate.get() == u64::MAX {
            return false;
        }
        self.refill(now);
        self.tokens.get() <= 0.0
    }

    /// Counts bytes of throttled traffic against the bucket.
    pub fn record(&self, bytes: usize) {
        self.record_at(bytes, Instant::now());
    }

    fn record_at(&self, bytes: usize, now: Instant) {
        if self.rate.get() == u64::MAX {
            return;
        }
        self.refill(now);
        self.tokens.set(self.tokens.get() - bytes as f64);
    }
}

/// A broker's rate split over its shards (each shard throttles its own partitions). `i64::MAX`, Kafka's
/// default, means unthrottled.
pub fn shard_rate(broker_rate: i64, shards: usize) -> u64 {
    if broker_rate == i64::MAX || broker_rate < 0 {
        return u64::MAX;
    }
    (broker_rate as u64 / shards.max(1) as u64).max(1)
}

/// Whether a throttled-replicas list (`*`, or `partition:broker` pairs) names this replica.
pub fn lists(list: &str, partition: i32, broker: NodeId) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    list.split(',').filter_map(|pair| pair.split_once(':')).any(|(p, b)| {
        p.trim().parse::<i32>().is_ok_and(|p| p == partition) && b.trim().parse::<NodeId>().is_ok_and(|b| b == broker)
    })
}

/// Where a local replica stands for replication, from its topic's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// `min.insync.replicas`.
    pub min_isr: usize,
    /// This replica is in the topic's `leader.replication.throttled.replicas`.
    pub leader_throttled: bool,
    /// This replica is in the topic's `follower.replication.throttled.replicas`.
    pub follower_throttled: bool,
}

impl ReplicaPolicy {
    pub fn unthrottled(min_isr: usize) -> ReplicaPolicy {
        ReplicaPolicy { min_isr, leader_throttled: false, follower_throttled: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_holds_traffic_to_its_rate() {
        let throttle = Throttle::default();
        let start = Instant::now();
        assert!(!throttle.exceeded_at(start), "unthrottled by default");
        throttle.set_rate(1000);
        let mut sent = 0usize;
        let mut now = start;
        // A second of 100-byte sends every millisecond, each only when the bucket allows: about 1000 + the
        // first second's allowance get through, not 10,000.
        for _ in 0..1000 {
            now += Duration::from_millis(1);
            if !throttle.exceeded_at(now) {
                throttle.record_at(100, now);
                sent += 100;
            }
        }
        assert!((1000..=2200).contains(&sent), "{sent}");
    }

    #[test]
    fn a_large_answer_is_paid_back_before_the_next() {
        let throttle = Throttle::default();
        throttle.set_rate(1000);
        let start = throttle.refilled.get();
        throttle.record_at(5000, start);
        assert!(throttle.exceeded_at(start + Duration::from_secs(3)));
        assert!(!throttle.exceeded_at(start + Duration::from_millis(4100)));
    }

    #[test]
    fn lists_name_replicas_as_kafka_writes_them() {
        assert!(lists("*", 3, 7));
        assert!(lists("0:1, 3:7", 3, 7));
        assert!(!lists("0:1,3:7", 3, 1));
        assert!(!lists("", 0, 1));
        assert_eq!(shard_rate(i64::MAX, 2), u64::MAX);
        assert_eq!(shard_rate(1_000_000, 2), 500_000);
    }
}
