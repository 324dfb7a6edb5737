//! Idempotent producers: a retried batch gets its first offsets back and is not stored twice; a sequence gap
//! is out of order; an old epoch is fenced. All of it holds across a clean restart and after a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::batch::{BatchBuilder, RecordSpec};
use sluice_engine::types::now_ms;
use sluice_engine::{EngineError, LogConfig, Offset, ProducerId, SequenceError};

/// Stamped with the current time: producer ids expire a day (`producer.id.expiration.ms`) after their last batch's
/// timestamp, as in Kafka.
fn producer_batch(producer_id: i64, epoch: i16, sequence: i32, records: usize) -> Vec<u8> {
    producer_batch_at(producer_id, epoch, sequence, records, now_ms())
}

fn producer_batch_at(producer_id: i64, epoch: i16, sequence: i32, records: usize, timestamp_ms: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new().producer(producer_id, epoch, sequence);
    for i in 0..records {
        let value = format!("seq-{}", sequence as usize + i);
        builder.push(&RecordSpec { key: None, value: Some(value.as_bytes()), headers: &[], timestamp_ms });
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
        // An unknown producer may start at any sequence (its state may have expired), as in Kafka.
        assert_eq!(log.append(producer_batch(7, 0, 3, 1), CLIENT).await.unwrap().base_offset, Offset(9));
        assert_eq!(log.log_end_offset(), Offset(10));
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

/// Producer ids expire `producer.id.expiration.ms` after their last batch, and recovery does not bring an expired
/// one back, whether it starts from a snapshot written before the expiry (clean) or replays the log (crash).
fn expired_producers_stay_forgotten(clean: bool) {
    const DAY_MS: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        log.append(producer_batch_at(1, 0, 0, 2, now_ms() - 2 * DAY_MS), CLIENT).await.unwrap();
        log.append(producer_batch(2, 0, 0, 2), CLIENT).await.unwrap();
        assert_eq!(log.producer_state().len(), 2, "housekeeping has not run yet");
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
        assert!(log.producer_state().get(ProducerId(1)).is_none(), "an expired producer came back (clean: {clean})");
        assert!(log.producer_state().get(ProducerId(2)).is_some());
        // The live one still deduplicates; the forgotten one continues where it was, as in Kafka.
        assert!(log.append(producer_batch(2, 0, 0, 2), CLIENT).await.unwrap().duplicate);
        assert_eq!(log.append(producer_batch(1, 0, 2, 1), CLIENT).await.unwrap().base_offset, Offset(4));
        // A shorter expiration, changed at run time, applies at the next housekeeping pass.
        assert_eq!(log.expire_producers(now_ms() + 1000), 0);
        log.set_config(LogConfig { producer_id_expiration_ms: 1, ..LogConfig::default() });
        assert_eq!(log.expire_producers(now_ms() + 1000), 2);
        assert!(log.producer_state().is_empty());
    });
}

#[test]
fn expired_producers_stay_forgotten_after_a_clean_restart() {
    expired_producers_stay_forgotten(true);
}

#[test]
fn expired_producers_stay_forgotten_after_a_crash() {
    expired_producers_stay_forgotten(false);
}
