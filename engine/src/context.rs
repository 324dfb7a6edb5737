//! What the partition logs of one shard share: the fd cache, the group-commit queue, the pre-write budget,
//! the shard's statistics (`stats.rs`), and whether recovery syncs now or at the end of the process start.
//!
//! - **fd cache.** Segment files open lazily and a clock (second-chance) sweep closes the least recently used
//!   past its capacity, so 10,000 partitions stay far below the process fd limit.
//! - **Group-commit queue.** Logs under flush policy `always` queue their partition after an append; the
//!   manager's flusher takes the queue and fsyncs those logs. The queue holds partitions, not logs: a log
//!   holds this context, and a context that held logs would keep them alive in a reference cycle.
//!
//! One per shard, created by `LogManager::new` and held by the manager and every log it opens; nothing here
//! crosses shards. It depends on no log or manager type, so both can depend on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use crate::checkpoint::Durability;
use crate::prewrite::PrewriteBudget;
use crate::segment::Segment;
use crate::stats::EngineStats;
use crate::types::TopicPartition;
use crate::watch::OffsetWatch;

/// Clock-swept cache of open segment files.
pub(crate) struct FdCache {
    capacity: usize,
    ring: RefCell<VecDeque<Weak<Segment>>>,
}

impl FdCache {
    pub(crate) fn new(capacity: usize) -> Self {
        FdCache { capacity: capacity.max(1), ring: RefCell::new(VecDeque::new()) }
    }

    /// Records a newly opened segment file and closes others if the cache is over capacity.
    pub(crate) fn register(&self, segment: &Rc<Segment>) {
        let mut ring = self.ring.borrow_mut();
        ring.push_back(Rc::downgrade(segment));
        let mut budget = ring.len() * 2;
        while ring.len() > self.capacity && budget > 0 {
            budget -= 1;
            let Some(candidate) = ring.pop_front() else { break };
            let Some(segment) = candidate.upgrade() else { continue };
            if !segment.is_open() {
                continue;
            }
            if segment.referenced.replace(false) {
                ring.push_back(candidate);
                continue;
            }
            // An active segment keeps its in-memory index (it has no index file yet).
            let keep_index = segment.state.borrow().bytes_since_index_entry != u32::MAX || segment.size_bytes() == 0;
            segment.close_handles(keep_index);
        }
    }

    pub(crate) fn open_count(&self) -> usize {
        self.ring.borrow().iter().filter(|w| w.upgrade().is_some_and(|s| s.is_open())).count()
    }
}

/// State shared by the logs of one shard. It names logs only by partition, so the logs that hold it and the
/// manager that reads its flush queue do not hold each other.
pub(crate) struct ShardContext {
    pub(crate) fd_cache: FdCache,
    /// Partitions whose logs asked for a group-commit round, each once until the round takes it.
    flush_queue: RefCell<Vec<TopicPartition>>,
    /// Counts flush requests: the flusher task waits on it.
    pub(crate) flush_requests: OffsetWatch,
    pub(crate) flush_rounds: Cell<u64>,
    pub(crate) stats: EngineStats,
    pub(crate) prewrite: PrewriteBudget,
    /// Set from `LogManager::defer_recovery_sync` until `LogManager::sync_recovered`.
    pub(crate) defer_recovery_sync: Cell<bool>,
    /// An open deferred a sync that `LogManager::sync_recovered` owes.
    pub(crate) recovery_sync_owed: Cell<bool>,
}

impl ShardContext {
    pub(crate) fn new(fd_cache_capacity: usize, prewrite: PrewriteBudget) -> ShardContext {
        ShardContext {
            fd_cache: FdCache::new(fd_cache_capacity),
            flush_queue: RefCell::new(Vec::new()),
            flush_requests: OffsetWatch::new(0),
            flush_rounds: Cell::new(0),
            stats: EngineStats::default(),
            prewrite,
            defer_recovery_sync: Cell::new(false),
            recovery_sync_owed: Cell::new(false),
        }
    }

    /// Whether an opening log syncs what its recovery is about to write now (true), or leaves it to the one
    /// `syncfs` that ends the process start (`LogManager::defer_recovery_sync`), which this call then owes.
    /// Ask right before each write, so that a start that writes nothing owes nothing.
    pub(crate) fn sync_recovery_now(&self) -> bool {
        if self.defer_recovery_sync.get() {
            self.recovery_sync_owed.set(true);
            false
        } else {
            true
        }
    }

    /// [`ShardContext::sync_recovery_now`] for a checkpoint write.
    pub(crate) fn recovery_durability(&self) -> Durability {
        if self.sync_recovery_now() {
            Durability::Now
        } else {
            Durability::Deferred
        }
    }

    /// Queues a partition's log for the next group-commit round and wakes the flusher. The log calls this
    /// once per round (it keeps its own "already queued" flag).
    pub(crate) fn queue_flush(&self, tp: TopicPartition) {
        self.flush_queue.borrow_mut().push(tp);
        self.wake_flusher();
    }

    /// Wakes the flusher task: for a queued log, or to let it see that the manager is stopping.
    pub(crate) fn wake_flusher(&self) {
        self.flush_requests.advance(self.flush_requests.get() + 1);
    }

    /// Takes every queued partition, for one round.
    pub(crate) fn take_flush_queue(&self) -> Vec<TopicPartition> {
        std::mem::take(&mut *self.flush_queue.borrow_mut())
    }
}
