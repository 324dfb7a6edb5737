//! The invariants a log keeps about epochs and its high watermark: leader epochs never decrease along the log
//! (an append that would lower them is refused: it is input, from a stale leader or a follower), the high
//! watermark never passes the durable offset it follows, and truncation never cuts below the high watermark
//! (that would be a bug in the caller, so it stops the process).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{manager, open, run};
use sluice_engine::batch::{simple_batch, stamp_offset_and_epoch};
use sluice_engine::{AppendMode, EngineError, LeaderEpoch, LogConfig, Offset};

fn leader(epoch: i32) -> AppendMode {
    AppendMode::Client { leader_epoch: LeaderEpoch(epoch) }
}

#[test]
fn a_leader_append_in_an_older_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        log.append(simple_batch(2, 10, 0), leader(3)).await.unwrap();
        let stale = log.append(simple_batch(2, 10, 0), leader(2)).await;
        assert!(matches!(
            stale,
            Err(EngineError::StaleLeaderEpoch { epoch: LeaderEpoch(2), latest: LeaderEpoch(3), .. })
        ));
        assert_eq!(log.log_end_offset(), Offset(2), "nothing of the stale append was written");
        log.append(simple_batch(2, 10, 0), leader(3)).await.unwrap();
        log.append(simple_batch(2, 10, 0), leader(4)).await.unwrap();
        assert_eq!(log.epoch_cache().latest().map(|e| (e.epoch, e.start_offset)), Some((LeaderEpoch(4), Offset(4))));
    });
}

#[test]
fn replicated_batches_may_not_lower_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        let mut first = simple_batch(2, 10, 0);
        stamp_offset_and_epoch(&mut first, 0, 5);
        log.append(first, AppendMode::Replica).await.unwrap();
        let mut older = simple_batch(2, 10, 0);
        stamp_offset_and_epoch(&mut older, 2, 4);
        let refused = log.append(older, AppendMode::Replica).await;
        assert!(matches!(refused, Err(EngineError::Batch { .. })), "{refused:?}");
        // Within one request too: epochs 6 then 5.
        let mut two = simple_batch(1, 10, 0);
        stamp_offset_and_epoch(&mut two, 2, 6);
        let mut next = simple_batch(1, 10, 0);
        stamp_offset_and_epoch(&mut next, 3, 5);
        two.extend_from_slice(&next);
        assert!(log.append(two, AppendMode::Replica).await.is_err());
        assert_eq!(log.log_end_offset(), Offset(2));
    });
}

#[test]
fn the_high_watermark_follows_the_durable_offset_and_never_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        manager.spawn_background();
        let log = open(&manager, 0, LogConfig::default()).await;
        log.set_high_watermark_follows_durable(true);
        for _ in 0..5 {
            let info = log.append(simple_batch(3, 10, 0), leader(0)).await.unwrap();
            assert!(log.high_watermark() <= log.durable_offset());
            assert!(log.durable_offset() <= log.log_end_offset());
            log.wait_durable(info.last_offset.next()).await.unwrap();
            log.high_watermark_watch().wait_for(info.last_offset.next().0).await.unwrap();
            assert_eq!(log.high_watermark(), log.durable_offset());
        }
        assert_eq!(log.high_watermark(), Offset(15));
    });
}

#[test]
#[should_panic(expected = "would cut committed records below the high watermark 6")]
fn truncation_below_the_high_watermark_stops_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    // On this thread, so that the assertion's own message reaches `should_panic`.
    let executor = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    executor.run(async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        for _ in 0..4 {
            log.append(simple_batch(2, 10, 0), leader(0)).await.unwrap();
        }
        log.set_high_watermark(Offset(6));
        // Above the high watermark is a follower's business; below it, committed records would be lost.
        log.truncate_to(Offset(6)).await.unwrap();
        assert_eq!(log.log_end_offset(), Offset(6));
        let _ = log.truncate_to(Offset(4)).await;
    });
}

#[test]
fn truncating_to_the_log_end_forgets_an_epoch_started_there() {
    // A replica led in epoch 7 and wrote nothing in it; following the next leader, it is told its log diverges
    // at its own end. Truncation cuts no record, but the empty epoch must go, or the follower would send it
    // as its last fetched epoch and hear "diverging" again on every fetch.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let log = open(&manager, 0, LogConfig::default()).await;
        log.append(simple_batch(2, 10, 0), leader(3)).await.unwrap();
        log.start_leader_epoch(LeaderEpoch(7)).await.unwrap();
        assert_eq!(log.latest_epoch(), Some(LeaderEpoch(7)));
        log.truncate_to(Offset(2)).await.unwrap();
        assert_eq!(log.log_end_offset(), Offset(2));
        assert_eq!(log.latest_epoch(), Some(LeaderEpoch(3)));
        // An empty log loses every epoch.
        let empty = open(&manager, 1, LogConfig::default()).await;
        empty.start_leader_epoch(LeaderEpoch(4)).await.unwrap();
        empty.truncate_to(Offset(0)).await.unwrap();
        assert_eq!(empty.latest_epoch(), None);
    });
}
