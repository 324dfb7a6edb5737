//! Idempotent producers: a retried batch gets its first offsets back and is not stored twice; a sequence gap
//! is out of order; an old epoch is fenced. All of it holds across a clean restart and after a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::batch::{BatchBuilder, RecordSpec};
use sluice_engine::{EngineError, LogConfig, Offset, SequenceError};

fn producer_batch(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new().producer(producer_id, epoch, sequence);
    for i in 0..records {
        let value = format!("seq-{}", sequence as usize + i);
        builder.push(&RecordSpec { key: None, value: Some(value.as_bytes()), headers: &[], timestamp_ms: 1 });
    }
    builder.finish()
}

fn check_state(clean: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        log.append(sluice_engine::batch::simple_batch(2, 5, 0), CLIENT).await.unwrap();
        let first = log.append(producer_batch(42, 0, 0, 3), CLIENT).await.unwrap();
        assert_eq!((first.base_offset, first.last_offset), (Offset(2), Offset(4)));
        let second = log.append(producer_batch(42, 0, 3, 2), CLIENT).await.unwrap();
        assert_eq!(second.base_offset, Offset(5));
        if clean {
            manager.shutdown().await.unwrap();
            sluice_engine::manager::write_clean_shutdown_marker(&path).unwrap();
        }
    });
    let path = dir.path().to_owned();
    run(move || async move {
        let clean_start = sluice_engine::manager::take_clean_shutdown_marker(&path).unwrap();
        assert_eq!(clean_start, clean);
        let manager = manager(&path, clean_start);
        let log = open(&manager, 0, LogConfig::default()).await;
        // The retry of the first batch: its original offsets, nothing written.
        let retry = log.append(producer_batch(42, 0, 0, 3), CLIENT).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!((retry.base_offset, retry.last_offset), (Offset(2), Offset(4)));
        assert_eq!(log.log_end_offset(), Offset(7));
        // A gap.
        let gap = log.append(producer_batch(42, 0, 9, 1), CLIENT).await.unwrap_err();
        assert!(
            matches!(gap, EngineError::Sequence { source: SequenceError::OutOfOrder { expected: 5, .. }, .. }),
            "{gap}"
        );
        // The next in sequence.
        assert_eq!(log.append(producer_batch(42, 0, 5, 1), CLIENT).await.unwrap().base_offset, Offset(7));
        // A new epoch fences the old one.
        log.append(producer_batch(42, 1, 0, 1), CLIENT).await.unwrap();
        let fenced = log.append(producer_batch(42, 0, 6, 1), CLIENT).await.unwrap_err();
        assert!(matches!(fenced, EngineError::Sequence { source: SequenceError::Fenced { .. }, .. }), "{fenced}");
        // An unknown producer must start at sequence 0.
        assert!(log.append(producer_batch(7, 0, 3, 1), CLIENT).await.is_err());
        assert_eq!(log.log_end_offset(), Offset(9));
    });
}

#[test]
fn duplicates_gaps_and_fencing_survive_a_clean_restart() {
    check_state(true);
}

#[test]
fn duplicates_gaps_and_fencing_survive_a_crash() {
    check_state(false);
}

#[test]
fn producer_state_survives_segment_rolls_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let config = LogConfig { segment_bytes: 1024, ..LogConfig::default() };
    let config2 = config.clone();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config2).await;
        for sequence in 0..40 {
            log.append(producer_batch(9, 0, sequence, 1), CLIENT).await.unwrap();
        }
        assert!(log.segment_count() > 3);
    });
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, config).await;
        assert!(log.append(producer_batch(9, 0, 39, 1), CLIENT).await.unwrap().duplicate);
        assert_eq!(log.append(producer_batch(9, 0, 40, 1), CLIENT).await.unwrap().base_offset, Offset(40));
    });
}
