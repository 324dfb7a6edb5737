//! Scenario: checkpoint writes of one partition overlap, and a partition is deleted and created again while a
//! write of its old incarnation is in flight.
//!
//! Every checkpoint is written as `<name>.tmp`, fsynced and renamed over `<name>`. Two writers of one file at
//! once share that tmp path: one renames the other's half-written file into place and the other's rename
//! finds nothing (`rename checkpoint failed: No such file or directory`, librdkafka's test 0042 on two
//! shards). A writer of a deleted log that runs on after the deletion writes by path into a directory that is
//! gone (`create checkpoint failed ... No such file or directory`) or that now belongs to the topic created
//! again, whose checkpoint it then overwrites with the old incarnation's offsets. So every write to a
//! partition's directory takes the log's write lock, and a closed log writes nothing; nor does it read, since
//! it would reopen its segments by path and find its successor's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::{LogConfig, Offset};

#[test]
fn overlapping_delete_records_and_retention_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        // Retention by size, so that it too moves the log start while DeleteRecords does.
        let config =
            LogConfig { segment_bytes: 4096, retention_ms: -1, retention_bytes: 20_000, ..LogConfig::default() };
        let log = open(&manager, 0, config.clone()).await;
        append_batches(&log, 200, 2, 100).await;
        log.set_high_watermark(log.log_end_offset());
        let mut writers = Vec::new();
        for round in 1..=40i64 {
            let log = log.clone();
            writers.push(glommio::spawn_local(async move {
                if round % 4 == 0 {
                    log.apply_retention(sluice_engine::types::now_ms()).await.map(|_| ())
                } else {
                    log.delete_records_before(Offset(round * 9)).await.map(|_| ())
                }
            }));
        }
        for (i, writer) in writers.into_iter().enumerate() {
            if let Err(error) = writer.await {
                panic!("checkpoint writer {i} failed: {error}");
            }
        }
        let start = log.log_start_offset();
        assert!(start >= Offset(39 * 9), "every DeleteRecords took effect: log start {start:?}");
        drop(log);
        manager.shutdown().await.unwrap();
        let manager = common::manager(&path, true);
        let log = open(&manager, 0, config).await;
        assert_eq!(log.log_start_offset(), start, "the last write's checkpoint is the one on disk");
    });
}

#[test]
fn a_deleted_log_writes_nothing_into_the_directory_of_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        for partition in 0..8 {
            let old = open(&manager, partition, LogConfig::default()).await;
            append_batches(&old, 20, 2, 100).await;
            old.set_high_watermark(old.log_end_offset());
            // DeleteRecords on the old incarnation, still running when the topic is deleted and created again.
            let stale = old.clone();
            let write = glommio::spawn_local(async move { stale.delete_records_before(Offset(30)).await });
            glommio::executor().yield_now().await;
            manager.delete_log(&tp(partition)).await.unwrap();
            let new = open(&manager, partition, LogConfig::default()).await;
            assert_eq!(new.log_start_offset(), Offset(0));
            // It either finished before the deletion or was refused; it never lands in the new directory.
            let _ = write.await;
            assert!(old.delete_records_before(Offset(35)).await.is_err(), "a deleted log accepts no writes");
            append_batches(&new, 1, 1, 10).await;
        }
        manager.shutdown().await.unwrap();
        let manager = common::manager(&path, true);
        for partition in 0..8 {
            let log = open(&manager, partition, LogConfig::default()).await;
            assert_eq!(
                (log.log_start_offset(), log.log_end_offset()),
                (Offset(0), Offset(1)),
                "partition {partition}: the new incarnation's checkpoint was overwritten by the old one's"
            );
        }
    });
}

#[test]
fn a_deleted_log_never_reads_its_successor_s_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let old = open(&manager, 0, LogConfig::default()).await;
        append_batches(&old, 10, 2, 100).await;
        let end = old.log_end_offset();
        // A fetch that found the old log just before the topic was deleted and created again.
        manager.delete_log(&tp(0)).await.unwrap();
        let new = open(&manager, 0, LogConfig::default()).await;
        append_batches(&new, 10, 2, 300).await;
        let read = old.read(Offset(0), 1 << 20, end).await;
        assert!(read.is_err(), "a deleted log read {:?} from its successor's segment", read.map(|s| s.map(|s| s.len)));
        assert!(new.read(Offset(0), 1 << 20, new.log_end_offset()).await.unwrap().is_some());
    });
}
