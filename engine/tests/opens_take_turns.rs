//! Scenario: one partition's log is opened by several tasks at once (a topic's creation and its leadership
//! arriving together), and the broker shuts down while a log is still opening.
//!
//! Opening a new partition writes its checkpoint files through `<name>.tmp` and a rename. Two opens at once
//! shared those tmp paths: one renamed the other's file away, whose next step then failed
//! (`create checkpoint failed ... leader-epoch-checkpoint.tmp: No such file or directory`), and that open's
//! error took the partition offline. An open still running when shutdown closed the logs went on writing
//! after it and left a log nobody closed, so the stop was unclean. Opens of one partition now take turns, and
//! shutdown waits for those under way and lets no new one start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::rc::Rc;

use common::*;
use sluice_engine::{EngineError, LogConfig};

#[test]
fn concurrent_opens_of_one_partition_share_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        for partition in 0..20 {
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let manager = manager.clone();
                    glommio::spawn_local(async move { manager.open_log(&tp(partition), LogConfig::default()).await })
                })
                .collect();
            let mut logs = Vec::new();
            for open in opens {
                logs.push(open.await.unwrap_or_else(|error| panic!("partition {partition}: an open failed: {error}")));
            }
            assert!(logs.iter().all(|log| Rc::ptr_eq(log, &logs[0])), "partition {partition}: one log for all");
            assert!(manager.offline_reason(&tp(partition)).is_none());
            append_batches(&logs[0], 2, 1, 10).await;
        }
        manager.shutdown().await.unwrap();
        let manager = common::manager(&path, true);
        for partition in 0..20 {
            assert_eq!(open(&manager, partition, LogConfig::default()).await.log_end_offset().0, 2);
        }
    });
}

#[test]
fn shutdown_waits_for_an_open_under_way_and_opens_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        let opening = {
            let manager = manager.clone();
            glommio::spawn_local(async move { manager.open_log(&tp(0), LogConfig::default()).await })
        };
        glommio::executor().yield_now().await;
        manager.shutdown().await.unwrap();
        match opening.await {
            // Opened before shutdown closed the logs: then shutdown closed it too, so it accepts no writes.
            Ok(log) => assert!(log.start_leader_epoch(sluice_engine::LeaderEpoch(1)).await.is_err()),
            Err(error) => assert!(matches!(error, EngineError::Closed { .. }), "{error}"),
        }
        let late = manager.open_log(&tp(1), LogConfig::default()).await;
        assert!(matches!(late, Err(EngineError::Closed { .. })), "no log opens once shutdown has begun");
        assert!(!path.join(tp(1).dir_name()).exists(), "nothing written for a log opened too late");
    });
}
