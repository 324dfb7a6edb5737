//! A process start that opens many partitions defers what their recoveries would sync one file at a time
//! (truncated tails, checkpoints, new directories) to one `syncfs` before it serves. The deferral covers only
//! the opens between `defer_recovery_sync` and `sync_recovered`; a torn tail recovered under it is cut and the
//! log serves as usual, and opens after it sync on their own again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_engine::syncfs::SyncMethod;
use sluice_engine::{LogConfig, Offset};

#[test]
fn recoveries_during_a_start_owe_one_syncfs_and_later_opens_sync_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let manager = manager(&path, false);
        for partition in 0..3 {
            let log = open(&manager, partition, LogConfig::default()).await;
            tx.send(append_batches(&log, 5, 2, 40).await).unwrap();
        }
        // Dropped without shutdown: the next opens recover.
    });
    let stored: Vec<Vec<Vec<u8>>> = (0..3).map(|_| rx.recv().unwrap()).collect();
    // Partition 1 gets a torn last batch.
    let segment = dir.path().join("events-1/00000000000000000000.log");
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..bytes.len() - 7]).unwrap();

    let path = dir.path().to_owned();
    run(move || async move {
        let manager = manager(&path, false);
        assert!(manager.sync_recovered().await.unwrap().is_none(), "nothing deferred, nothing owed");
        manager.defer_recovery_sync();
        let mut logs = Vec::new();
        for partition in 0..3 {
            logs.push(open(&manager, partition, LogConfig::default()).await);
        }
        assert_eq!(manager.sync_recovered().await.unwrap(), Some(SyncMethod::Syncfs), "the recoveries owed one syncfs");
        assert!(manager.sync_recovered().await.unwrap().is_none(), "and only one");
        assert!(logs[1].recovery_report().truncated_bytes > 0);
        assert_eq!(logs[1].log_end_offset(), Offset(8));
        for (partition, log) in logs.iter().enumerate() {
            let expected = if partition == 1 { &stored[1][..4] } else { &stored[partition][..] };
            assert_eq!(split_batches(&read_all(log, 0).await), expected.to_vec());
        }
        // After the start, an open syncs on its own and owes nothing.
        open(&manager, 7, LogConfig::default()).await;
        assert!(manager.sync_recovered().await.unwrap().is_none());
    });
}
