//! A flipped bit in the middle of the log, followed by good batches, is corruption: the partition goes
//! offline with a clear error, nothing is served, and not one byte is cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::{EngineError, LogConfig};

#[test]
fn a_flipped_bit_mid_log_takes_the_partition_offline_and_cuts_nothing() {
    let mut positions_checked = 0;
    // Flip one bit in each region: the length field, the CRC-covered header and the record bytes.
    for (batch_index, byte_in_batch) in [(2usize, 10usize), (3, 30), (4, 100), (1, 17)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        run(move || async move {
            let manager = manager(&path, false);
            let log = open(&manager, 0, LogConfig::default()).await;
            tx.send(append_batches(&log, 8, 3, 60).await).unwrap();
        });
        let stored: Vec<Vec<u8>> = rx.recv().unwrap();
        let segment = dir.path().join("events-0/00000000000000000000.log");
        let mut bytes = std::fs::read(&segment).unwrap();
        let position = stored[..batch_index].iter().map(Vec::len).sum::<usize>() + byte_in_batch;
        bytes[position] ^= 0x04;
        std::fs::write(&segment, &bytes).unwrap();

        let path = dir.path().to_owned();
        run(move || async move {
            let manager = manager(&path, false);
            let error = manager.open_log(&tp(0), LogConfig::default()).await.unwrap_err();
            assert!(matches!(error, EngineError::Corrupt { .. }), "bit at {position}: got {error}");
            let message = error.to_string();
            assert!(message.contains("corrupt") && message.contains("events-0"), "clear error: {message}");
            // Offline: later opens and reads are refused too.
            assert!(manager.get(&tp(0)).is_none());
            assert!(matches!(manager.open_log(&tp(0), LogConfig::default()).await, Err(EngineError::Offline { .. })));
            assert!(manager.offline_reason(&tp(0)).is_some());
        });
        assert_eq!(std::fs::read(&segment).unwrap(), bytes, "not one byte was cut or changed");
        positions_checked += 1;
    }
    assert_eq!(positions_checked, 4);
}

#[test]
fn a_missing_middle_segment_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let config = LogConfig { segment_bytes: 2048, ..LogConfig::default() };
    let config2 = config.clone();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config2).await;
        append_batches(&log, 30, 3, 60).await;
        assert!(log.segment_count() >= 3);
    });
    let partition = dir.path().join("events-0");
    let mut logs: Vec<_> = std::fs::read_dir(&partition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    std::fs::remove_file(&logs[1]).unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let error = manager.open_log(&tp(0), config).await.unwrap_err();
        assert!(matches!(error, EngineError::Corrupt { .. }), "got {error}");
    });
}
