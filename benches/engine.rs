//! Criterion benches for the engine's hot paths (DESIGN.md §5): batch validation and CRC, validate+append
//! with and without group commit, index lookup, and the recovery scan rate. The data dir is `$SLUICE_BENCH_DIR`
//! (default: a temp dir under the working directory, so it sits on the same disk as a broker's data).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_engine::batch::{self, simple_batch};
use sluice_engine::index::SegmentIndex;
use sluice_engine::{AppendMode, FlushPolicy, LeaderEpoch, LogConfig, LogManager, ManagerOptions, TopicPartition};

const CLIENT: AppendMode = AppendMode::Client { leader_epoch: LeaderEpoch(0) };

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var("SLUICE_BENCH_DIR").unwrap_or_else(|_| "target".into());
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

fn executor() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0)).io_memory(512 << 10).make().expect("executor")
}

/// A batch of about `batch_bytes` made of `record_bytes` records.
fn batch_of(record_bytes: usize, batch_bytes: usize) -> Vec<u8> {
    let count = (batch_bytes / (record_bytes + 20)).max(1);
    simple_batch(count, record_bytes, 1_700_000_000_000)
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    for (record, size) in [(100, 16 << 10), (1024, 1 << 20)] {
        let bytes = batch_of(record, size);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new(format!("{record}B-records"), bytes.len()), &bytes, |b, bytes| {
            b.iter(|| batch::validate(bytes, usize::MAX).expect("valid"))
        });
    }
    group.finish();
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for (policy_name, policy) in [("always", FlushPolicy::Always), ("no-fsync", FlushPolicy::ReplicationOnly)] {
        for (record, size) in [(100, 16 << 10), (1024, 16 << 10), (1024, 1 << 20)] {
            let bytes = batch_of(record, size);
            group.throughput(Throughput::Bytes(bytes.len() as u64));
            let id = BenchmarkId::new(format!("{policy_name}/{record}B-records"), bytes.len());
            group.bench_with_input(id, &bytes, |b, bytes| {
                let ex = executor();
                let dir = bench_dir();
                let config = LogConfig { flush_policy: policy, segment_bytes: 256 << 20, ..LogConfig::default() };
                let (manager, logs) = ex.run(async {
                    let manager = LogManager::new(dir.path(), ManagerOptions::default(), false);
                    manager.spawn_background();
                    let mut logs = Vec::new();
                    for p in 0..2 {
                        logs.push(
                            manager.open_log(&TopicPartition::new("bench", p), config.clone()).await.expect("open"),
                        );
                    }
                    (manager, logs)
                });
                b.iter_custom(|iters| {
                    ex.run(async {
                        // Two partitions, four appends in flight each: what a pipelined producer does.
                        let started = Instant::now();
                        let lanes = 8u64;
                        let tasks: Vec<_> = (0..lanes)
                            .map(|lane| {
                                let log = logs[(lane % 2) as usize].clone();
                                let bytes = bytes.clone();
                                let count = iters / lanes + u64::from(lane < iters % lanes);
                                glommio::spawn_local(async move {
                                    for _ in 0..count {
                                        let info = log.append(bytes.clone(), CLIENT).await.expect("append");
                                        log.wait_durable(info.last_offset.next()).await.expect("durable");
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await;
                        }
                        started.elapsed()
                    })
                });
                drop(logs);
                ex.run(async move {
                    let manager: Rc<LogManager> = manager;
                    manager.shutdown().await.expect("shutdown");
                });
            });
        }
    }
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut index = SegmentIndex::default();
    // A full 1 GiB segment at one entry per 4 KiB.
    for i in 0..262_144u32 {
        index.push_offset(i * 40, i * 4096);
    }
    let mut group = c.benchmark_group("index");
    let mut probe = 0u32;
    group.bench_function("floor_by_offset/262144-entries", |b| {
        b.iter(|| {
            probe = probe.wrapping_mul(1_103_515_245).wrapping_add(12_345) % (262_144 * 40);
            index.floor_by_offset(probe)
        })
    });
    group.finish();
}

fn recovery_scan(c: &mut Criterion) {
    let ex = executor();
    let dir = bench_dir();
    let total_bytes: u64 = 256 << 20;
    let bytes = batch_of(1024, 1 << 20);
    ex.run(async {
        let manager = LogManager::new(dir.path(), ManagerOptions::default(), false);
        let config = LogConfig { flush_policy: FlushPolicy::ReplicationOnly, ..LogConfig::default() };
        let log = manager.open_log(&TopicPartition::new("scan", 0), config).await.expect("open");
        while log.size_bytes() < total_bytes {
            log.append(bytes.clone(), CLIENT).await.expect("append");
        }
    });
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10).throughput(Throughput::Bytes(total_bytes));
    group.bench_function("unclean-open-scan/256MiB-page-cache", |b| {
        b.iter(|| {
            ex.run(async {
                // Unclean: the whole segment is validated (CRC of every batch) and its index rebuilt.
                let manager = LogManager::new(dir.path(), ManagerOptions::default(), false);
                let config = LogConfig::default();
                let log = manager.open_log(&TopicPartition::new("scan", 0), config).await.expect("open");
                assert!(log.recovery_report().scanned_bytes >= total_bytes);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, validation, append, index_lookup, recovery_scan);
criterion_main!(benches);
