//! Retention by time and by size, DeleteRecords, follower truncation, offset-for-timestamp and
//! OffsetForLeaderEpoch, each against real segment files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::batch::simple_batch;
use sluice_engine::{AppendMode, LeaderEpoch, LogConfig, Offset};

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("events-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count()
}

#[test]
fn retention_by_time_deletes_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 2048, retention_ms: 60_000, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        // One replica: what is durable is committed, and retention may delete up to it.
        log.set_high_watermark_follows_durable(true);
        let now = sluice_engine::types::now_ms();
        // Old records (two hours ago), then fresh ones.
        for i in 0..20 {
            log.append(simple_batch(3, 100, now - 7_200_000 + i), CLIENT).await.unwrap();
        }
        let old_end = log.log_end_offset();
        for i in 0..10 {
            log.append(simple_batch(3, 100, now + i), CLIENT).await.unwrap();
        }
        let segments_before = log.segment_count();
        let deleted = log.apply_retention(now).await.unwrap();
        assert!(deleted > 0 && log.segment_count() < segments_before);
        assert_eq!(segment_files(&path), log.segment_count(), "files are gone too");
        assert!(log.log_start_offset() <= old_end, "fresh data kept");
        assert!(log.log_start_offset() > Offset(0));
        // Reads below the new start are out of range; from it they work.
        assert!(log.read(Offset(0), 100, log.log_end_offset()).await.is_err());
        let start = log.log_start_offset();
        assert!(log.read(start, 100, log.log_end_offset()).await.unwrap().is_some());
        // Everything expired: the active segment rolls and goes too; the log stays usable.
        let later = now + 10 * 60_000;
        log.apply_retention(later).await.unwrap();
        assert_eq!(log.log_start_offset(), log.log_end_offset());
        let info = log.append(simple_batch(1, 10, later), CLIENT).await.unwrap();
        assert_eq!(info.base_offset, log.log_start_offset());
    });
}

#[test]
fn retention_by_size_keeps_the_newest_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config =
            LogConfig { segment_bytes: 4096, retention_bytes: 10_000, retention_ms: -1, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        log.set_high_watermark_follows_durable(true);
        append_batches(&log, 100, 2, 100).await;
        let size_before = log.size_bytes();
        log.apply_retention(sluice_engine::types::now_ms()).await.unwrap();
        assert!(log.size_bytes() < size_before);
        assert!(log.size_bytes() >= 10_000 - 4096, "at most one segment below the limit");
        assert!(log.size_bytes() <= 10_000 + 4096, "at most one segment above the limit");
        // A config change applies live.
        log.set_config(LogConfig {
            segment_bytes: 4096,
            retention_bytes: -1,
            retention_ms: -1,
            ..LogConfig::default()
        });
        assert_eq!(log.apply_retention(sluice_engine::types::now_ms()).await.unwrap(), 0);
    });
}

#[test]
fn delete_records_advances_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 2048, ..LogConfig::default() };
        let log = open(&manager, 0, config.clone()).await;
        append_batches(&log, 30, 2, 100).await;
        log.set_high_watermark(log.log_end_offset());
        assert!(log.delete_records_before(Offset(1000)).await.is_err(), "past the high watermark");
        assert_eq!(log.delete_records_before(Offset(25)).await.unwrap(), Offset(25));
        assert!(log.read(Offset(24), 100, Offset(60)).await.is_err());
        let slice = log.read(Offset(25), 100, Offset(60)).await.unwrap().unwrap();
        assert_eq!(slice.first_offset, Offset(24), "the batch holding offset 25 starts at 24");
        drop(log);
        manager.shutdown().await.unwrap();
        let manager = common::manager(&path, true);
        let log = open(&manager, 0, config).await;
        assert_eq!(log.log_start_offset(), Offset(25), "the log start offset is checkpointed");
    });
}

#[test]
fn truncate_to_cuts_at_a_batch_boundary_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 2048, ..LogConfig::default() };
        let log = open(&manager, 0, config.clone()).await;
        for epoch in 0..3 {
            for _ in 0..10 {
                log.append(simple_batch(2, 100, 0), AppendMode::Client { leader_epoch: LeaderEpoch(epoch) })
                    .await
                    .unwrap();
            }
        }
        assert_eq!(log.log_end_offset(), Offset(60));
        let stored = split_batches(&read_all(&log, 0).await);
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(1)), (LeaderEpoch(1), Offset(40)));
        log.truncate_to(Offset(30)).await.unwrap();
        assert_eq!(log.log_end_offset(), Offset(30));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(1)), (LeaderEpoch(1), Offset(30)));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(2)), (LeaderEpoch::NONE, Offset::NONE));
        assert!(split_batches(&read_all(&log, 0).await) == stored[..15]);
        // A follower copies the leader's batches with their offsets.
        let mut replicated = simple_batch(2, 100, 0);
        sluice_engine::batch::stamp_offset_and_epoch(&mut replicated, 30, 4);
        log.append(replicated.clone(), AppendMode::Replica).await.unwrap();
        let mut wrong = replicated.clone();
        sluice_engine::batch::stamp_offset_and_epoch(&mut wrong, 31, 4);
        // Gaps are allowed (a compacted leader's log has them); going back is not.
        assert!(log.append(wrong, AppendMode::Replica).await.is_err(), "offsets must not go back");
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(4)), (LeaderEpoch(4), Offset(32)));
        // Survives a crash.
        drop(log);
        drop(manager);
        let manager = common::manager(&path, false);
        let log = open(&manager, 0, config).await;
        assert_eq!(log.log_end_offset(), Offset(32));
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(1)), (LeaderEpoch(1), Offset(30)));
    });
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        // 100 batches of 5 records, timestamps 10_000 + offset * 10.
        for b in 0..100 {
            log.append(simple_batch_spaced(5, 10_000 + b * 50), CLIENT).await.unwrap();
        }
        let end = log.log_end_offset();
        assert!(log.segment_count() > 2);
        for offset in [0i64, 1, 7, 249, 250, 499] {
            let target = 10_000 + offset * 10;
            assert_eq!(log.offset_for_timestamp(target, end).await.unwrap(), Some((Offset(offset), target)));
            // Between two records: the later one.
            assert_eq!(
                log.offset_for_timestamp(target - 5, end).await.unwrap(),
                Some((Offset(offset), target)),
                "target {}",
                target - 5
            );
        }
        assert_eq!(log.offset_for_timestamp(0, end).await.unwrap(), Some((Offset(0), 10_000)));
        assert_eq!(log.offset_for_timestamp(999_999, end).await.unwrap(), None);
        // Nothing at or past the upper bound is returned.
        assert_eq!(log.offset_for_timestamp(10_000 + 300 * 10, Offset(250)).await.unwrap(), None);
    });
}

fn simple_batch_spaced(count: usize, first_timestamp_ms: i64) -> Vec<u8> {
    let mut builder = sluice_engine::batch::BatchBuilder::new();
    for i in 0..count {
        builder.push(&sluice_engine::batch::RecordSpec {
            key: None,
            value: Some(b"value"),
            headers: &[],
            timestamp_ms: first_timestamp_ms + i as i64 * 10,
        });
    }
    builder.finish()
}

fn batch_with_timestamps(timestamps_ms: &[i64]) -> Vec<u8> {
    let mut builder = sluice_engine::batch::BatchBuilder::new();
    for &timestamp_ms in timestamps_ms {
        builder.push(&sluice_engine::batch::RecordSpec {
            key: None,
            value: Some(b"value"),
            headers: &[],
            timestamp_ms,
        });
    }
    builder.finish()
}

#[test]
fn offset_of_max_timestamp_finds_the_first_record_with_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let config = LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() };
        let log = open(&manager, 0, config).await;
        assert_eq!(log.offset_of_max_timestamp(log.log_end_offset()).await.unwrap(), None, "an empty log");
        // Offsets 0-4 at 1000-1040; 5-8 with the largest timestamp twice, not last; then 9-308 older again,
        // over several segments.
        log.append(simple_batch_spaced(5, 1_000), CLIENT).await.unwrap();
        log.append(batch_with_timestamps(&[2_000, 9_000, 4_000, 9_000]), CLIENT).await.unwrap();
        for b in 0..60 {
            log.append(simple_batch_spaced(5, 3_000 + b * 50), CLIENT).await.unwrap();
        }
        assert!(log.segment_count() > 1);
        let end = log.log_end_offset();
        assert_eq!(log.offset_of_max_timestamp(end).await.unwrap(), Some((Offset(6), 9_000)));
        // Kafka answers only below the high watermark (or the last stable offset).
        assert_eq!(log.offset_of_max_timestamp(Offset(6)).await.unwrap(), None);
        // A later, larger timestamp takes over.
        log.append(batch_with_timestamps(&[9_500]), CLIENT).await.unwrap();
        assert_eq!(log.offset_of_max_timestamp(log.log_end_offset()).await.unwrap(), Some((end, 9_500)));
    });
}
