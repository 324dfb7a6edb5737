//! Crash images: the last batch cut at every byte position, zeros or random garbage appended, and an index
//! deleted. Recovery keeps exactly the whole batches, and the log keeps serving appends afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rand::{Rng, SeedableRng};
use sluice_engine::{LogConfig, Offset};

/// Writes `batches` batches with an unclean stop, and returns the stored batches and the segment path.
fn write_log(dir: &Path, batches: usize, config: LogConfig) -> (Vec<Vec<u8>>, PathBuf) {
    let path = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config).await;
        let stored = append_batches(&log, batches, 3, 50).await;
        tx.send(stored).unwrap();
        // Dropped without shutdown: the next open is unclean, as after kill -9.
    });
    let stored = rx.recv().unwrap();
    (stored, dir.join("events-0").join("00000000000000000000.log"))
}

/// Opens the log uncleanly and returns (log end, the batches it serves), then appends once more.
fn recover(dir: &Path, config: LogConfig) -> (Offset, Vec<Vec<u8>>) {
    let path = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config).await;
        let end = log.log_end_offset();
        let served = split_batches(&read_all(&log, 0).await);
        // Still serving: a new append lands right after the recovered data.
        let info = log.append(sluice_engine::batch::simple_batch(1, 5, 0), CLIENT).await.unwrap();
        assert_eq!(info.base_offset, end);
        tx.send((end, served)).unwrap();
    });
    rx.recv().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn last_batch_cut_at_every_byte_recovers_the_whole_batches() {
    let original = tempfile::tempdir().unwrap();
    let (stored, segment) = write_log(original.path(), 6, LogConfig::default());
    let total: usize = stored.iter().map(Vec::len).sum();
    let last_start = total - stored[5].len();
    for cut in last_start..total {
        let image = tempfile::tempdir().unwrap();
        copy_dir(original.path(), image.path());
        let image_segment = image.path().join(segment.strip_prefix(original.path()).unwrap());
        std::fs::OpenOptions::new().write(true).open(&image_segment).unwrap().set_len(cut as u64).unwrap();
        let (end, served) = recover(image.path(), LogConfig::default());
        assert_eq!(end, Offset(15), "cut at byte {cut}: five whole batches of three records remain");
        assert!(served == stored[..5], "cut at byte {cut}: served bytes differ");
    }
}

#[test]
fn zeros_or_garbage_after_the_last_batch_are_truncated() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for tail in ["zeros", "garbage", "garbage-after-cut"] {
        let dir = tempfile::tempdir().unwrap();
        let (stored, segment) = write_log(dir.path(), 4, LogConfig::default());
        let mut bytes = std::fs::read(&segment).unwrap();
        let mut kept = stored.clone();
        match tail {
            "zeros" => bytes.extend(std::iter::repeat_n(0u8, 4096)),
            "garbage" => bytes.extend((0..rng.gen_range(1..10_000)).map(|_| rng.gen::<u8>())),
            _ => {
                let cut = bytes.len() - stored[3].len() / 2;
                bytes.truncate(cut);
                bytes.extend((0..777).map(|_| rng.gen::<u8>()));
                kept.pop();
            }
        }
        std::fs::write(&segment, &bytes).unwrap();
        let (end, served) = recover(dir.path(), LogConfig::default());
        assert_eq!(end, Offset(kept.len() as i64 * 3), "{tail} (seed {seed})");
        assert!(served == kept, "{tail} (seed {seed}): served bytes differ");
    }
}

#[test]
fn a_deleted_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() };
    let (stored, _) = write_log(dir.path(), 60, config.clone());
    let partition_dir = dir.path().join("events-0");
    let indexes: Vec<PathBuf> = std::fs::read_dir(&partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "index" || x == "timeindex"))
        .collect();
    assert!(indexes.len() >= 4, "rolled segments wrote index files: {indexes:?}");
    for path in &indexes[..2] {
        std::fs::remove_file(path).unwrap();
    }
    // Also a garbage index: shorter than one entry.
    std::fs::write(&indexes[2], [1u8, 2, 3]).unwrap();
    let (end, served) = recover(dir.path(), config.clone());
    assert_eq!(end, Offset(180));
    assert!(served == stored, "all batches served after index rebuild");
    // A clean start after that trusts the rebuilt state.
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config.clone()).await;
        manager.shutdown().await.unwrap();
        drop(log);
        sluice_engine::manager::write_clean_shutdown_marker(&path).unwrap();
        assert!(sluice_engine::manager::take_clean_shutdown_marker(&path).unwrap());
        let manager = common::manager(&path, true);
        let log = open(&manager, 0, config).await;
        assert_eq!(log.log_end_offset(), Offset(181));
        assert_eq!(log.recovery_report().scanned_bytes, 0, "a clean start scans nothing");
    });
}
