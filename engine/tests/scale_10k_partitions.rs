//! 10,000 partitions in one data directory: created, appended to, shut down cleanly and reopened, with the fd
//! cache keeping the open segment files bounded far below the process limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::rc::Rc;

use common::*;
use futures::StreamExt;
use sluice_engine::{LogConfig, LogManager, ManagerOptions, Offset, TopicPartition};

const PARTITIONS: i32 = 10_000;
const FD_CACHE: usize = 1_000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_partitions_open_append_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let options = ManagerOptions { fd_cache_capacity: FD_CACHE, ..Default::default() };
        let manager = LogManager::new(&path, options.clone(), false);
        manager.spawn_background();
        let fds_before = open_fds();
        let opened = futures::stream::iter(0..PARTITIONS)
            .map(|p| {
                let manager = manager.clone();
                async move {
                    let log = manager.open_log(&TopicPartition::new("wide", p), LogConfig::default()).await.unwrap();
                    let batch = sluice_engine::batch::simple_batch(1 + (p % 3) as usize, 20, 1_000);
                    let info = log.append(batch, CLIENT).await.unwrap();
                    log.wait_durable(info.last_offset.next()).await.unwrap();
                    info.last_offset
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<Offset>>()
            .await;
        assert_eq!(opened.len(), PARTITIONS as usize);
        assert!(manager.open_fd_count() <= FD_CACHE, "fd cache holds {}", manager.open_fd_count());
        assert!(open_fds() < fds_before + FD_CACHE + 100, "process has {} fds open", open_fds());
        manager.shutdown().await.unwrap();
        drop(manager);
        sluice_engine::manager::write_clean_shutdown_marker(&path).unwrap();

        let clean = sluice_engine::manager::take_clean_shutdown_marker(&path).unwrap();
        assert!(clean);
        let discovered = sluice_engine::manager::discover_partitions(&path).unwrap();
        assert_eq!(discovered.len(), PARTITIONS as usize);
        let manager: Rc<LogManager> = LogManager::new(&path, options, clean);
        let ends = futures::stream::iter(discovered)
            .map(|tp| {
                let manager = manager.clone();
                async move {
                    let log = manager.open_log(&tp, LogConfig::default()).await.unwrap();
                    assert_eq!(log.recovery_report().scanned_bytes, 0);
                    (tp.partition, log.log_end_offset())
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await;
        for (partition, end) in ends {
            assert_eq!(end, Offset(1 + i64::from(partition % 3)), "partition {partition}");
        }
        assert!(manager.open_fd_count() <= FD_CACHE);
        // Reads reopen evicted files on demand.
        let log = manager.get(&TopicPartition::new("wide", 17)).unwrap();
        assert_eq!(split_batches(&read_all(&log, 0).await).len(), 1);
    });
}
