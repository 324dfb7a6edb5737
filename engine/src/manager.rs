//! `LogManager`: the partition logs of one shard, and the shard-wide machinery they share (the state itself is
//! in `crate::context`, which the logs hold too).
//!
//! - **Group commit.** Appends under flush policy `always` queue their partition; one flusher task drains the
//!   queue and fsyncs every queued log concurrently through io_uring, then wakes the `wait_durable` callers.
//!   Appends that arrive during a round ride the next one, so one fsync covers many appends.
//! - **fd cache.** Segment files open lazily and a clock (second-chance) sweep closes the least recently used
//!   past `fd_cache_capacity`, so 10,000 partitions stay far below the process fd limit.
//! - **Housekeeping.** A periodic task triggers interval flushes, applies retention, and cuts the pre-written
//!   zeros of logs gone idle.
//! - **Pre-write budget.** The zeros hot logs keep past their ends (crate::prewrite) are bounded per shard.
//! - **Recovery sync at start.** Between [`LogManager::defer_recovery_sync`] and
//!   [`LogManager::sync_recovered`], what opening logs write during recovery is synced by one `syncfs`
//!   instead of file by file.
//!
//! Runs on exactly one shard; nothing here is shared across shards. The data directory holds a
//! `.clean-shutdown` marker that the process removes at start (`take_clean_shutdown_marker`) and writes after
//! every shard closed its logs (`write_clean_shutdown_marker`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures::StreamExt;
use tracing::Instrument as _;

use crate::config::LogConfig;
use crate::context::ShardContext;
use crate::error::{EngineError, Result};
use crate::fifo_lock::FifoLock;
use crate::log::PartitionLog;
use crate::prewrite::PrewriteBudget;
use crate::syncfs::{sync_filesystem, SyncMethod};
use crate::types::{now_ms, TopicPartition};

pub const CLEAN_SHUTDOWN_MARKER: &str = ".clean-shutdown";
/// `log.segment.prewrite.bytes` by default: 1 MiB past each hot log's end.
pub const DEFAULT_PREWRITE_WINDOW_BYTES: u64 = 1 << 20;
/// A shard's pre-write budget, in windows: this many logs at once keep zeros past their ends.
pub const PREWRITE_WINDOWS_PER_SHARD: u64 = 64;
/// Logs closed concurrently at shutdown.
const CLOSE_CONCURRENCY: usize = 64;

#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Segment files kept open by this shard (active ones included; they reopen on demand).
    pub fd_cache_capacity: usize,
    /// How often retention runs (`log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    /// How often interval-policy logs are checked for a due flush.
    pub housekeeping_tick: Duration,
    /// How often expired producer ids are removed (`producer.id.expiration.check.interval.ms`).
    pub producer_expiration_check_interval: Duration,
    /// Zeros kept written past the end of a log whose group-commit rounds are small
    /// (`log.segment.prewrite.bytes`; 0 turns pre-writing off). See [`crate::prewrite`].
    pub prewrite_window_bytes: u64,
    /// At most this many pre-written bytes for all of this shard's logs together.
    pub prewrite_budget_bytes: u64,
    /// Shards in the process: each shard's cleaner takes this share of `log.cleaner.dedupe.buffer.size`.
    pub shards: usize,
    /// How long the cleaner sleeps when no log is compacted (`log.cleaner.backoff.ms` at start; once logs
    /// exist, their live value).
    pub cleaner_backoff: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            fd_cache_capacity: 4096,
            retention_check_interval: Duration::from_secs(300),
            housekeeping_tick: Duration::from_millis(100),
            producer_expiration_check_interval: Duration::from_secs(600),
            prewrite_window_bytes: 0,
            prewrite_budget_bytes: 0,
            shards: 1,
            cleaner_backoff: Duration::from_secs(15),
        }
        .with_prewrite_window(DEFAULT_PREWRITE_WINDOW_BYTES)
    }
}

impl ManagerOptions {
    /// Pre-writes `window_bytes` past hot logs' ends (0: off), with the shard's budget of
    /// [`PREWRITE_WINDOWS_PER_SHARD`] such windows.
    pub fn with_prewrite_window(self, window_bytes: u64) -> ManagerOptions {
        ManagerOptions {
            prewrite_window_bytes: window_bytes,
            prewrite_budget_bytes: PREWRITE_WINDOWS_PER_SHARD * window_bytes,
            ..self
        }
    }
}

pub struct LogManager {
    data_dir: PathBuf,
    options: ManagerOptions,
    clean_shutdown: bool,
    ctx: Rc<ShardContext>,
    logs: RefCell<HashMap<TopicPartition, Rc<PartitionLog>>>,
    offline: RefCell<HashMap<TopicPartition, String>>,
    /// One turn at a time per partition for opening and deleting its log. Two opens of one partition racing
    /// (topic creation and a leadership change arriving together) would both write its checkpoint files
    /// through the same tmp paths, and the loser's failure took the partition offline.
    gates: RefCell<HashMap<TopicPartition, Rc<FifoLock>>>,
    /// Logs a cleaning pass failed on (corrupt data, a full disk): not cleaned again until the next start, as
    /// Kafka marks them uncleanable. They keep serving.
    uncleanable: RefCell<HashMap<TopicPartition, String>>,
    stopping: Cell<bool>,
}

impl LogManager {
    /// A manager for this shard's partitions in `data_dir`. `clean_shutdown` is what
    /// [`take_clean_shutdown_marker`] returned at process start.
    pub fn new(data_dir: impl Into<PathBuf>, options: ManagerOptions, clean_shutdown: bool) -> Rc<LogManager> {
        let prewrite = PrewriteBudget::new(options.prewrite_window_bytes, options.prewrite_budget_bytes);
        let ctx = Rc::new(ShardContext::new(options.fd_cache_capacity, prewrite));
        Rc::new(LogManager {
            data_dir: data_dir.into(),
            options,
            clean_shutdown,
            ctx,
            logs: RefCell::new(HashMap::new()),
            offline: RefCell::new(HashMap::new()),
            gates: RefCell::new(HashMap::new()),
            uncleanable: RefCell::new(HashMap::new()),
            stopping: Cell::new(false),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir.join(tp.dir_name())
    }

    /// Opens the log of `tp`, creating it if its directory does not exist, and recovers it. A log found
    /// corrupt is recorded as offline and its error returned; its files are left untouched. Opens of one
    /// partition take turns (the first opens, the others find its log); once shutdown has begun, a log that is
    /// not open yet is not opened ([`EngineError::Closed`]).
    pub async fn open_log(&self, tp: &TopicPartition, config: LogConfig) -> Result<Rc<PartitionLog>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let gate = self.gate(tp);
        let _turn = gate.lock().await.map_err(|_| EngineError::Closed { partition: tp.to_string() })?;
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        if self.stopping.get() {
            return Err(EngineError::Closed { partition: tp.to_string() });
        }
        if let Some(reason) = self.offline.borrow().get(tp) {
            return Err(EngineError::Offline { partition: tp.to_string(), reason: reason.clone() });
        }
        let dir = self.partition_dir(tp);
        match PartitionLog::open(self.ctx.clone(), dir, tp.clone(), config, self.clean_shutdown).await {
            Ok(log) => {
                self.logs.borrow_mut().insert(tp.clone(), log.clone());
                Ok(log)
            }
            Err(error) => {
                tracing::error!(partition = %tp, %error, "partition offline");
                self.offline.borrow_mut().insert(tp.clone(), error.to_string());
                Err(error)
            }
        }
    }

    /// The turn-taking lock for opening and deleting `tp`'s log.
    fn gate(&self, tp: &TopicPartition) -> Rc<FifoLock> {
        self.gates.borrow_mut().entry(tp.clone()).or_default().clone()
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(tp).cloned()
    }

    pub fn offline_reason(&self, tp: &TopicPartition) -> Option<String> {
        self.offline.borrow().get(tp).cloned()
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<_> = self.logs.borrow().keys().cloned().collect();
        tps.sort();
        tps
    }

    pub fn open_fd_count(&self) -> usize {
        self.ctx.fd_cache.open_count()
    }

    /// Group-commit rounds run so far: with many appends per round, far fewer than appends.
    pub fn flush_rounds(&self) -> u64 {
        self.ctx.flush_rounds.get()
    }

    /// A copy of this shard's engine statistics: fsyncs, group commit, the cleaner and retention.
    pub fn stats(&self) -> crate::stats::EngineStatsSnapshot {
        self.ctx.stats.snapshot(self.uncleanable.borrow().len() as u64)
    }

    /// From now until [`LogManager::sync_recovered`], opening a log defers the syncs of what its recovery
    /// writes (truncated tails, checkpoints, new files and directories) to one `syncfs`. For a process start
    /// that opens thousands of partitions before it serves anything: one at a time, that was five fsyncs a
    /// partition, and 10,000 partitions took longer to sync than to validate.
    pub fn defer_recovery_sync(&self) {
        self.ctx.defer_recovery_sync.set(true);
    }

    /// Ends [`LogManager::defer_recovery_sync`] once every open it covered has returned: one `syncfs` of the data
    /// directory's filesystem if any open deferred a sync (an fsync of every file under the data directory
    /// where `syncfs` is not trusted: [`crate::syncfs`]). Call it before serving: nothing may build on a
    /// recovered log until it returns. Returns how it synced, if it had to.
    pub async fn sync_recovered(&self) -> Result<Option<SyncMethod>> {
        self.ctx.defer_recovery_sync.set(false);
        if !self.ctx.recovery_sync_owed.replace(false) {
            return Ok(None);
        }
        let dir = self.data_dir.clone();
        let method = glommio::executor()
            .spawn_blocking(move || sync_filesystem(&dir))
            .await
            .map_err(|e| EngineError::io("syncfs after recovery", &self.data_dir, e))?;
        Ok(Some(method))
    }

    /// Zero bytes pre-written past this shard's log ends (see [`crate::prewrite`]).
    pub fn prewritten_bytes(&self) -> u64 {
        self.ctx.prewrite.outstanding_bytes()
    }

    /// Closes the log and deletes its directory (topic deletion). The directory is renamed first so that a
    /// crash mid-way does not resurrect the partition.
    pub async fn delete_log(&self, tp: &TopicPartition) -> Result<()> {
        let gate = self.gate(tp);
        let turn = gate.lock().await.map_err(|_| EngineError::Closed { partition: tp.to_string() })?;
        let result = self.delete_log_files(tp).await;
        drop(turn);
        // Nobody waits for this partition's turn (the map and `gate` hold the only references): forget it.
        if Rc::strong_count(&gate) == 2 {
            self.gates.borrow_mut().remove(tp);
        }
        result
    }

    async fn delete_log_files(&self, tp: &TopicPartition) -> Result<()> {
        let log = self.logs.borrow_mut().remove(tp);
        self.offline.borrow_mut().remove(tp);
        if let Some(log) = log {
            // Best effort: the data is going away, a failed checkpoint does not matter.
            let _ = log.close().await;
        }
        let dir = self.partition_dir(tp);
        if !dir.exists() {
            return Ok(());
        }
        let doomed = self.data_dir.join(format!("{}.{}-delete", tp.dir_name(), now_ms()));
        glommio::io::rename(&dir, &doomed).await.map_err(|e| EngineError::glommio("rename for delete", &dir, e))?;
        crate::checkpoint::sync_dir(&self.data_dir).await?;
        let path = doomed.clone();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(&path))
            .await
            .map_err(|e| EngineError::io("remove partition dir", doomed, e))
    }

    /// Starts the group-commit flusher and the housekeeping task on the current shard.
    pub fn spawn_background(self: &Rc<Self>) {
        let manager = Rc::downgrade(self);
        glommio::spawn_local(async move { flusher(manager).await }).detach();
        let manager = Rc::downgrade(self);
        glommio::spawn_local(async move { housekeeping(manager).await }).detach();
        let manager = Rc::downgrade(self);
        glommio::spawn_local(async move { cleaner(manager).await }).detach();
    }

    /// One round of the shard's cleaner: the dirtiest compacted logs that are due (overdue ones first), as
    /// many at once as `log.cleaner.threads` says, each with its share of the dedupe buffer. Returns how many
    /// logs were cleaned; a log whose pass fails is logged and left alone until the next start.
    pub async fn clean_due(&self, now: i64) -> usize {
        let mut max_dirty_ratio = 0f64;
        let mut due: Vec<(f64, Rc<PartitionLog>)> = {
            let uncleanable = self.uncleanable.borrow();
            self.logs
                .borrow()
                .values()
                .filter(|log| !uncleanable.contains_key(log.topic_partition()))
                .filter_map(|log| {
                    let config = log.config();
                    if !config.compaction.cleaner_enabled {
                        return None;
                    }
                    let range = log.cleanable(now)?;
                    max_dirty_ratio = max_dirty_ratio.max(range.dirty_ratio);
                    let score = if range.overdue { f64::INFINITY } else { range.dirty_ratio };
                    range.due(config.compaction.min_cleanable_dirty_ratio).then(|| (score, log.clone()))
                })
                .collect()
        };
        self.ctx.stats.set_cleaner_max_dirty_ratio(max_dirty_ratio);
        if due.is_empty() {
            return 0;
        }
        due.sort_by(|a, b| b.0.total_cmp(&a.0));
        let compaction = due[0].1.config().compaction;
        let threads = compaction.cleaner_threads.max(1);
        due.truncate(threads);
        let buffer = compaction.dedupe_buffer_bytes / self.options.shards.max(1) / threads;
        let passes = due.iter().map(|(_, log)| {
            let span = tracing::info_span!("clean", partition = %log.topic_partition());
            async move {
                let started = std::time::Instant::now();
                (log, log.clean(now, buffer, false).await, started.elapsed())
            }
            .instrument(span)
        });
        let mut cleaned = 0;
        for (log, result, elapsed) in futures::future::join_all(passes).await {
            match result {
                Ok(Some(stats)) => {
                    self.ctx.stats.record_clean(&stats, elapsed);
                    tracing::debug!(
                        partition = %log.topic_partition(),
                        bytes_read = stats.bytes_read,
                        bytes_written = stats.bytes_written,
                        records_removed = stats.records_removed,
                        seconds = elapsed.as_secs_f64(),
                        "cleaned"
                    );
                    cleaned += 1;
                }
                Ok(None) | Err(EngineError::Closed { .. }) => {}
                Err(error) => {
                    tracing::error!(partition = %log.topic_partition(), %error, "cleaning failed; the log is not cleaned again until restart");
                    self.uncleanable.borrow_mut().insert(log.topic_partition().clone(), error.to_string());
                }
            }
        }
        cleaned
    }

    /// Logs the cleaner gave up on, and why.
    pub fn uncleanable(&self) -> Vec<(TopicPartition, String)> {
        self.uncleanable.borrow().iter().map(|(tp, why)| (tp.clone(), why.clone())).collect()
    }

    /// One group-commit round: fsync every queued log, up to [`MAX_CONCURRENT_FSYNCS`] at a time. Returns the
    /// number of logs flushed.
    pub async fn flush_queued(&self) -> usize {
        // A partition deleted since it queued has nothing left to flush: closing it fsynced what it had.
        let queued: Vec<Rc<PartitionLog>> = {
            let logs = self.logs.borrow();
            self.ctx.take_flush_queue().iter().filter_map(|tp| logs.get(tp).cloned()).collect()
        };
        for log in &queued {
            log.flush_request_taken();
        }
        if queued.is_empty() {
            return 0;
        }
        self.ctx.flush_rounds.set(self.ctx.flush_rounds.get() + 1);
        self.ctx.stats.record_group_commit(queued.len());
        // Errors poison their own log inside `flush`; the others are unaffected.
        use futures::StreamExt as _;
        futures::stream::iter(queued.iter())
            .for_each_concurrent(MAX_CONCURRENT_FSYNCS, |log| async move {
                let _ = log.flush().await;
            })
            .instrument(tracing::debug_span!("group_commit", logs = queued.len()))
            .await;
        queued.len()
    }

    /// Cuts the pre-written zeros of logs that had no append for [`crate::prewrite::IDLE_TRIM_MS`] before
    /// `now_ms`, so that hot logs can have the shard's budget. The housekeeping task calls this every tick.
    /// Returns how many logs gave zeros back.
    pub async fn trim_idle_prewrites(&self, now_ms: i64) -> usize {
        let idle: Vec<Rc<PartitionLog>> =
            self.logs.borrow().values().filter(|log| log.prewrite_idle(now_ms)).cloned().collect();
        for log in &idle {
            if let Err(error) = log.trim_idle_prewrite(now_ms).await {
                tracing::error!(partition = %log.topic_partition(), %error, "cutting pre-written zeros failed");
            }
        }
        idle.len()
    }

    /// Applies retention to every log now. Returns segments deleted.
    pub async fn apply_retention(&self) -> usize {
        let logs: Vec<Rc<PartitionLog>> = self.logs.borrow().values().cloned().collect();
        let now = now_ms();
        let mut deleted = 0;
        let span = tracing::debug_span!("retention", logs = logs.len());
        async {
            for log in logs {
                match log.apply_retention(now).await {
                    Ok(n) => deleted += n,
                    Err(error) => tracing::error!(partition = %log.topic_partition(), %error, "retention failed"),
                }
            }
        }
        .instrument(span)
        .await;
        self.ctx.stats.record_retention(deleted);
        deleted
    }

    /// Forgets expired producer ids in every log now. Returns how many.
    pub fn expire_producers(&self) -> usize {
        let now = now_ms();
        let logs: Vec<Rc<PartitionLog>> = self.logs.borrow().values().cloned().collect();
        logs.iter().map(|log| log.expire_producers(now)).sum()
    }

    /// Closes every log for a clean start. The caller writes the clean-shutdown marker only if this succeeds
    /// on every shard.
    pub async fn shutdown(&self) -> Result<()> {
        self.stopping.set(true);
        self.ctx.wake_flusher();
        // Opens and deletions already under way finish first: their logs are closed below, and nothing writes
        // in a partition's directory once shutdown is done. Later opens see `stopping` and open nothing.
        let gates: Vec<Rc<FifoLock>> = self.gates.borrow().values().cloned().collect();
        for gate in gates {
            // Gates are never closed, so this only waits.
            let _ = gate.lock().await;
        }
        let logs: Vec<Rc<PartitionLog>> = self.logs.borrow_mut().drain().map(|(_, log)| log).collect();
        let mut first_error = None;
        // Close many logs at once so their I/O overlaps in the ring.
        let mut closing = futures::stream::iter(logs.iter().map(|log| async move { (log, log.close().await) }))
            .buffer_unordered(CLOSE_CONCURRENCY);
        while let Some((log, result)) = closing.next().await {
            if let Err(error) = result {
                tracing::error!(partition = %log.topic_partition(), %error, "close failed");
                first_error.get_or_insert(error);
            }
        }
        drop(closing);
        match first_error {
            Some(error) => Err(error),
            None if self.offline.borrow().is_empty() => Ok(()),
            None => Err(EngineError::Offline {
                partition: format!("{} partitions", self.offline.borrow().len()),
                reason: "offline partitions need recovery at the next start".into(),
            }),
        }
    }
}

/// Fsyncs in flight per shard. io_uring runs fsyncs and buffered file writes on the same few bounded
/// workers (4 per CPU), so a round that queued an fsync for each of thousands of dirty partitions at once
/// made every write wait behind all of them: 10,000 partitions under `always` stalled appends for 15 s.
/// Sixteen keep the journal's commits shared while a write waits behind at most a few.
pub const MAX_CONCURRENT_FSYNCS: usize = 16;

async fn flusher(manager: Weak<LogManager>) {
    let mut seen = 0i64;
    loop {
        let requests = match manager.upgrade() {
            Some(m) if !m.stopping.get() => m.ctx.clone(),
            _ => return,
        };
        if requests.flush_requests.wait_for(seen + 1).await.is_err() {
            return;
        }
        seen = requests.flush_requests.get();
        drop(requests);
        let Some(manager) = manager.upgrade() else { return };
        manager.flush_queued().await;
    }
}

async fn housekeeping(manager: Weak<LogManager>) {
    let mut last_retention = std::time::Instant::now();
    let mut last_producer_expiry = std::time::Instant::now();
    loop {
        let tick = match manager.upgrade() {
            Some(m) if !m.stopping.get() => m.options.housekeeping_tick,
            _ => return,
        };
        glommio::timer::sleep(tick).await;
        let Some(manager) = manager.upgrade() else { return };
        if manager.stopping.get() {
            return;
        }
        let now = now_ms();
        let due: Vec<Rc<PartitionLog>> =
            manager.logs.borrow().values().filter(|log| log.interval_flush_due(now)).cloned().collect();
        for log in &due {
            log.request_flush();
        }
        manager.trim_idle_prewrites(now).await;
        if last_retention.elapsed() >= manager.options.retention_check_interval {
            last_retention = std::time::Instant::now();
            manager.apply_retention().await;
        }
        if last_producer_expiry.elapsed() >= manager.options.producer_expiration_check_interval {
            last_producer_expiry = std::time::Instant::now();
            let expired = manager.expire_producers();
            if expired > 0 {
                tracing::debug!(expired, "removed expired producer ids");
            }
        }
    }
}

/// The shard's log cleaner: cleans what is due, and sleeps `log.cleaner.backoff.ms` when nothing was.
async fn cleaner(manager: Weak<LogManager>) {
    loop {
        let backoff = {
            let Some(manager) = manager.upgrade() else { return };
            if manager.stopping.get() {
                return;
            }
            if manager.clean_due(now_ms()).await > 0 {
                glommio::yield_if_needed().await;
                continue;
            }
            let logs = manager.logs.borrow();
            let live = logs.values().map(|log| log.config().compaction.backoff_ms).min();
            live.map_or(manager.options.cleaner_backoff, |ms| Duration::from_millis(ms.max(1) as u64))
        };
        glommio::timer::sleep(backoff).await;
    }
}

/// Lists the partitions that have a directory under `data_dir`.
pub fn discover_partitions(data_dir: &Path) -> std::io::Result<Vec<TopicPartition>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if let Some(tp) = entry.file_name().to_str().and_then(TopicPartition::from_dir_name) {
            found.push(tp);
        }
    }
    found.sort();
    Ok(found)
}

/// At process start: whether the last shutdown was clean, removing the marker (durably) so that a crash from
/// now on is seen as unclean. Blocking; call before the shards start.
pub fn take_clean_shutdown_marker(data_dir: &Path) -> std::io::Result<bool> {
    std::fs::create_dir_all(data_dir)?;
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {
            std::fs::File::open(data_dir)?.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// After every shard closed its logs cleanly: one `syncfs` (or, where it is not trusted, an fsync of every
/// file: [`crate::syncfs`]) makes the checkpoints they wrote durable, then the marker says they can be
/// trusted. Blocking; call after the shards stopped.
pub fn write_clean_shutdown_marker(data_dir: &Path) -> std::io::Result<()> {
    sync_filesystem(data_dir)?;
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    let file = std::fs::File::create(&marker)?;
    file.sync_all()?;
    std::fs::File::open(data_dir)?.sync_all()
}
