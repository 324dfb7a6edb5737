//! After a clean stop, a restart and a crash, recovery validates the active segment only from the last index
//! entry the clean stop wrote at or below the recovery point, not from its first byte: what the clean stop
//! fsynced and indexed is as trusted as a sealed segment. Damage past that point is still found, and index
//! files that do not match the log are not trusted at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use sluice_engine::manager::{take_clean_shutdown_marker, write_clean_shutdown_marker};
use sluice_engine::{EngineError, LogConfig, Offset, RecoveryReport};

const BEFORE: usize = 200;
const AFTER: usize = 50;

/// Writes BEFORE batches and stops cleanly, restarts, writes AFTER more and crashes. Returns every batch.
fn clean_stop_then_crash(dir: &Path) -> Vec<Vec<u8>> {
    let path = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        tx.send(append_batches(&log, BEFORE, 3, 60).await).unwrap();
        manager.shutdown().await.unwrap();
        write_clean_shutdown_marker(&path).unwrap();
    });
    let mut stored = rx.recv().unwrap();
    let path = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let clean = take_clean_shutdown_marker(&path).unwrap();
        assert!(clean);
        let manager = manager(&path, clean);
        let log = open(&manager, 0, LogConfig::default()).await;
        tx.send(append_batches(&log, AFTER, 3, 60).await).unwrap();
        // Dropped without shutdown, and the marker is gone: the next open is unclean, as after kill -9.
    });
    stored.extend(rx.recv().unwrap());
    stored
}

fn recover(dir: &Path) -> (RecoveryReport, Offset, Vec<Vec<u8>>) {
    let path = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        assert!(!take_clean_shutdown_marker(&path).unwrap());
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        let served = split_batches(&read_all(&log, 0).await);
        tx.send((log.recovery_report(), log.log_end_offset(), served)).unwrap();
    });
    rx.recv().unwrap()
}

fn segment(dir: &Path, suffix: &str) -> std::path::PathBuf {
    dir.join("events-0").join(format!("00000000000000000000.{suffix}"))
}

#[test]
fn a_crash_after_a_clean_restart_revalidates_only_what_came_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let stored = clean_stop_then_crash(dir.path());
    let after_bytes: u64 = stored[BEFORE..].iter().map(|b| b.len() as u64).sum();
    let (report, end, served) = recover(dir.path());
    assert_eq!(end, Offset(3 * (BEFORE + AFTER) as i64));
    assert_eq!(served, stored);
    // From the last index entry at or below the clean stop's end: at most one index interval (4 KiB) and
    // one batch before it.
    assert!(report.scanned_bytes >= after_bytes, "{report:?}");
    assert!(report.scanned_bytes <= after_bytes + 4096 + stored[0].len() as u64, "{report:?}");
    // That recovery removed the index files it could no longer vouch for, so a second crash before any clean
    // stop validates the whole segment again; and the log still takes appends.
    let total: u64 = stored.iter().map(|b| b.len() as u64).sum();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        assert_eq!(log.recovery_report().scanned_bytes, total);
        append_batches(&log, 1, 1, 10).await;
    });
}

#[test]
fn a_flipped_bit_after_the_trusted_point_is_still_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let stored = clean_stop_then_crash(dir.path());
    let mut bytes = std::fs::read(segment(dir.path(), "log")).unwrap();
    let position = stored[..BEFORE + 10].iter().map(Vec::len).sum::<usize>() + 30;
    bytes[position] ^= 0x10;
    std::fs::write(segment(dir.path(), "log"), &bytes).unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let error = manager.open_log(&tp(0), LogConfig::default()).await.unwrap_err();
        assert!(matches!(error, EngineError::Corrupt { .. }), "got {error}");
    });
    assert_eq!(std::fs::read(segment(dir.path(), "log")).unwrap(), bytes, "nothing was cut");
}

#[test]
fn index_files_that_name_the_wrong_batch_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let stored = clean_stop_then_crash(dir.path());
    // Shift every entry's relative offset by one: the files still decode, but name batches that are not there.
    let mut index = std::fs::read(segment(dir.path(), "index")).unwrap();
    assert!(index.len() >= 16, "the clean stop wrote index entries");
    for entry in index.chunks_exact_mut(8) {
        let relative = u32::from_be_bytes(entry[0..4].try_into().unwrap()) + 1;
        entry[0..4].copy_from_slice(&relative.to_be_bytes());
    }
    std::fs::write(segment(dir.path(), "index"), &index).unwrap();
    let (report, end, served) = recover(dir.path());
    let total: u64 = stored.iter().map(|b| b.len() as u64).sum();
    assert_eq!(report.scanned_bytes, total, "validated from the first byte: {report:?}");
    assert_eq!(end, Offset(3 * (BEFORE + AFTER) as i64));
    assert_eq!(served, stored);
}
