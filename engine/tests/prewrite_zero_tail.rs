//! Pre-written segment space (engine/src/prewrite.rs): a log whose group commits stay small keeps zeros
//! written past its end. Scenarios: the zeros appear only for such a log and never show in reads; a clean
//! close, a roll and an idle spell cut them; a crash leaves them for recovery, which cuts them apart from a
//! torn batch; the shard's budget bounds them over many logs; truncation takes them with the data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::rc::Rc;

use common::*;
use sluice_engine::prewrite::{CHUNK_BYTES, HOT_AFTER_ROUNDS, IDLE_TRIM_MS};
use sluice_engine::{LogConfig, LogManager, ManagerOptions, Offset, PartitionLog};

const WINDOW_BYTES: u64 = 512 * 1024;

fn prewriting_manager(dir: &Path, clean: bool, budget_bytes: u64) -> Rc<LogManager> {
    let options = ManagerOptions {
        fd_cache_capacity: 64,
        prewrite_window_bytes: WINDOW_BYTES,
        prewrite_budget_bytes: budget_bytes,
        ..Default::default()
    };
    let manager = LogManager::new(dir, options, clean);
    manager.spawn_background();
    manager
}

/// Appends one batch of `records` records of `value_bytes` and waits for its group commit, `count` times:
/// every round flushes one batch. Returns the batches as stored.
async fn append_durably(log: &Rc<PartitionLog>, count: usize, records: usize, value_bytes: usize) -> Vec<Vec<u8>> {
    let mut stored = Vec::new();
    for _ in 0..count {
        let batch = append_batches(log, 1, records, value_bytes).await.remove(0);
        log.wait_durable(log.log_end_offset()).await.unwrap();
        stored.push(batch);
    }
    stored
}

/// Bytes the partition's segment files hold past the log's batches.
fn bytes_past_end(dir: &Path, partition: i32, log: &PartitionLog) -> u64 {
    let on_disk: u64 = std::fs::read_dir(dir.join(format!("events-{partition}")))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().unwrap().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    on_disk - log.size_bytes()
}

#[test]
fn a_log_with_small_group_commits_keeps_zeros_past_its_end_that_reads_never_see() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        let mut stored = append_durably(&log, HOT_AFTER_ROUNDS as usize, 2, 100).await;
        assert_eq!(bytes_past_end(&path, 0, &log), 0, "not hot before {HOT_AFTER_ROUNDS} small rounds");
        stored.extend(append_durably(&log, 40, 2, 100).await);
        let zeros = bytes_past_end(&path, 0, &log);
        assert!((WINDOW_BYTES - CHUNK_BYTES..=WINDOW_BYTES).contains(&zeros), "zeros past the end: {zeros}");
        assert_eq!(manager.prewritten_bytes(), zeros);
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
        manager.shutdown().await.unwrap();
        assert_eq!(bytes_past_end(&path, 0, &log), 0, "a clean close cuts the zeros");
        assert_eq!(manager.prewritten_bytes(), 0);
        sluice_engine::manager::write_clean_shutdown_marker(&path).unwrap();
    });
    let path = dir.path().to_owned();
    run(move || async move {
        let clean = sluice_engine::manager::take_clean_shutdown_marker(&path).unwrap();
        assert!(clean);
        let manager = prewriting_manager(&path, clean, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        assert_eq!(log.recovery_report().scanned_bytes, 0, "a clean start scans nothing");
        assert_eq!(log.log_end_offset(), Offset(2 * (HOT_AFTER_ROUNDS as i64 + 40)));
    });
}

#[test]
fn a_crash_leaves_zeros_that_recovery_cuts_without_calling_them_torn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        let stored = append_durably(&log, 30, 1, 300).await;
        assert!(bytes_past_end(&path, 0, &log) > 0);
        tx.send(stored).unwrap();
        // Dropped without shutdown: the next open is unclean, as after kill -9.
    });
    let stored = rx.recv().unwrap();

    // A second crash image: the last batch half written, zeros after it.
    let torn = tempfile::tempdir().unwrap();
    let segment = |root: &Path| root.join("events-0").join("00000000000000000000.log");
    std::fs::create_dir_all(torn.path().join("events-0")).unwrap();
    for entry in std::fs::read_dir(dir.path().join("events-0")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), torn.path().join("events-0").join(entry.file_name())).unwrap();
    }
    let mut image = std::fs::read(segment(torn.path())).unwrap();
    let data_end: usize = stored.iter().map(Vec::len).sum();
    let last = stored.last().unwrap().len();
    image[data_end - last / 2..data_end].fill(0);
    std::fs::write(segment(torn.path()), &image).unwrap();

    let path = dir.path().to_owned();
    let expected = stored.clone();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        let report = log.recovery_report();
        assert_eq!(report.truncated_bytes, 0, "zeros are not a torn batch: {report:?}");
        assert!(report.zero_tail_bytes > 0);
        assert_eq!(log.log_end_offset(), Offset(30));
        assert_eq!(split_batches(&read_all(&log, 0).await), expected);
        assert_eq!(bytes_past_end(&path, 0, &log), 0);
        // Appends carry on where the data ended, and the log gets hot again.
        let more = append_durably(&log, 10, 1, 300).await;
        assert_eq!(split_batches(&read_all(&log, 30).await), more);
    });
    let path = torn.path().to_owned();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        let report = log.recovery_report();
        let last = stored.last().unwrap().len() as u64;
        assert_eq!(report.truncated_bytes, last - last / 2, "the written half of the last batch is torn: {report:?}");
        assert_eq!(log.log_end_offset(), Offset(29));
        assert_eq!(split_batches(&read_all(&log, 0).await), stored[..29].to_vec());
    });
}

#[test]
fn large_group_commits_do_not_prewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        append_durably(&log, 20, 40, 1000).await;
        assert_eq!(bytes_past_end(&path, 0, &log), 0);
        assert_eq!(manager.prewritten_bytes(), 0);
    });
}

#[test]
fn a_roll_seals_the_segment_without_its_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let config = LogConfig { segment_bytes: 64 * 1024, ..LogConfig::default() };
        let log = open(&manager, 0, config.clone()).await;
        let stored = append_durably(&log, 400, 1, 500).await;
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        // Zeros may only follow the active segment, never beyond segment.bytes.
        assert!(bytes_past_end(&path, 0, &log) <= 64 * 1024);
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
        manager.shutdown().await.unwrap();
        assert_eq!(bytes_past_end(&path, 0, &log), 0);
        sluice_engine::manager::write_clean_shutdown_marker(&path).unwrap();
        let manager = prewriting_manager(&path, true, 64 << 20);
        let log = open(&manager, 0, config).await;
        assert_eq!(split_batches(&read_all(&log, 0).await), stored);
    });
}

#[test]
fn the_shard_budget_bounds_zeros_over_many_hot_logs_and_idle_logs_give_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let budget = 2 * WINDOW_BYTES;
        let manager = prewriting_manager(&path, false, budget);
        let mut logs = Vec::new();
        for partition in 0..4 {
            logs.push(open(&manager, partition, LogConfig::default()).await);
        }
        for log in &logs {
            append_durably(log, 40, 1, 200).await;
        }
        let on_disk: u64 = (0..4).map(|p| bytes_past_end(&path, p, &logs[p as usize])).sum();
        assert_eq!(on_disk, manager.prewritten_bytes());
        assert!(on_disk <= budget && on_disk > WINDOW_BYTES, "zeros over four logs: {on_disk}");
        assert_eq!(bytes_past_end(&path, 3, &logs[3]), 0, "the last log found the budget spent");

        let now = sluice_engine::types::now_ms();
        assert_eq!(manager.trim_idle_prewrites(now).await, 0, "none idle yet");
        assert_eq!(manager.trim_idle_prewrites(now + IDLE_TRIM_MS).await, 2);
        assert_eq!(manager.prewritten_bytes(), 0);
        assert!((0..4).all(|p| bytes_past_end(&path, p, &logs[p as usize]) == 0));
        // With the budget back, the log that had none gets zeros on its next appends.
        append_durably(&logs[3], 5, 1, 200).await;
        assert!(bytes_past_end(&path, 3, &logs[3]) > 0);
    });
}

#[test]
fn truncation_takes_the_zeros_with_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = prewriting_manager(&path, false, 64 << 20);
        let log = open(&manager, 0, LogConfig::default()).await;
        let stored = append_durably(&log, 30, 1, 200).await;
        assert!(manager.prewritten_bytes() > 0);
        log.truncate_to(Offset(20)).await.unwrap();
        assert_eq!(manager.prewritten_bytes(), 0);
        assert_eq!(bytes_past_end(&path, 0, &log), 0);
        assert_eq!(split_batches(&read_all(&log, 0).await), stored[..20].to_vec());
        let more = append_durably(&log, 10, 1, 200).await;
        assert_eq!(split_batches(&read_all(&log, 20).await), more);
    });
}
