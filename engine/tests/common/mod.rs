//! Helpers shared by the engine's integration tests: run a test body on a glommio shard, open logs, build
//! batches.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use sluice_engine::{AppendMode, LeaderEpoch, LogConfig, LogManager, ManagerOptions, PartitionLog, TopicPartition};

/// Runs `body` on a fresh glommio executor (one shard) and waits for it.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(body)
        .expect("start executor")
        .join()
        .expect("executor panicked");
}

pub fn manager(dir: &Path, clean: bool) -> Rc<LogManager> {
    LogManager::new(dir, ManagerOptions { fd_cache_capacity: 64, ..Default::default() }, clean)
}

pub fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("events", partition)
}

pub async fn open(manager: &LogManager, partition: i32, config: LogConfig) -> Rc<PartitionLog> {
    manager.open_log(&tp(partition), config).await.expect("open log")
}

pub const CLIENT: AppendMode = AppendMode::Client { leader_epoch: LeaderEpoch(0) };

/// Appends `batches` batches of `records` records of `value_bytes` each; returns the batches as stored.
pub async fn append_batches(
    log: &Rc<PartitionLog>,
    batches: usize,
    records: usize,
    value_bytes: usize,
) -> Vec<Vec<u8>> {
    let mut stored = Vec::new();
    for i in 0..batches {
        let mut batch = sluice_engine::batch::simple_batch(records, value_bytes, 1_000 + (i * records) as i64);
        let info = log.append(batch.clone(), CLIENT).await.expect("append");
        sluice_engine::batch::stamp_offset_and_epoch(&mut batch, info.base_offset.0, 0);
        stored.push(batch);
    }
    stored
}

/// Reads every batch from `from` to the log end, one read at a time, as a consumer would.
pub async fn read_all(log: &PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = sluice_engine::Offset(from);
    let end = log.log_end_offset();
    while next < end {
        let bytes = log.read_bytes(next, 64 * 1024, end).await.expect("read");
        assert!(!bytes.is_empty(), "no progress reading at {next:?} below {end:?}");
        let mut position = 0;
        while let Some(header) = sluice_engine::batch::peek_header(&bytes[position..]) {
            next = sluice_engine::Offset(header.last_offset() + 1);
            position += header.size_bytes();
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// Splits a byte run into batches, asserting that it holds only whole ones.
pub fn split_batches(bytes: &[u8]) -> Vec<Vec<u8>> {
    let out: Vec<Vec<u8>> = sluice_engine::batch::split_batches(bytes).into_iter().map(<[u8]>::to_vec).collect();
    assert_eq!(out.iter().map(Vec::len).sum::<usize>(), bytes.len(), "reads return whole batches");
    out
}
