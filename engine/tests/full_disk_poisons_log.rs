//! A full disk: a 512 KiB tmpfs mounted for the test fills up under appends. The failed write poisons that log
//! (clear error, no silent retry, durable waiters fail), data already written stays readable, and a log on
//! another disk in the same shard keeps working. Needs root for `mount`, as CI has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use sluice_engine::batch::simple_batch;
use sluice_engine::{EngineError, LogConfig, LogManager, ManagerOptions, Offset};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_poisons_only_that_log() {
    let small = tempfile::tempdir().unwrap();
    let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"]).arg(small.path()).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "this test mounts a tmpfs to fill a disk and must run as root (CI does)"
    );
    let mount = Mount(small.path().to_owned());
    let roomy = tempfile::tempdir().unwrap();
    let (small_path, roomy_path) = (small.path().to_owned(), roomy.path().to_owned());
    run(move || async move {
        let full = LogManager::new(&small_path, ManagerOptions::default(), false);
        full.spawn_background();
        let log = open(&full, 0, LogConfig::default()).await;
        let batch = simple_batch(16, 1000, 0);
        let mut failure = None;
        for _ in 0..100 {
            match log.append(batch.clone(), CLIENT).await {
                Ok(info) => log.wait_durable(info.last_offset.next()).await.unwrap(),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let failure = failure.expect("a 512 KiB disk fills up");
        assert!(matches!(failure, EngineError::Io { operation: "write segment", .. }), "got {failure}");
        assert_eq!(log.poisoned(), Some("write"));
        let written = log.log_end_offset();
        assert!(written > Offset(0));
        // Refused from now on, with a clear error, without touching the disk again.
        let again = log.append(simple_batch(1, 1, 0), CLIENT).await.unwrap_err();
        assert!(again.to_string().contains("poisoned"), "{again}");
        assert!(log.wait_durable(written.next()).await.is_err(), "durable waiters past the failure fail");
        // What was written before the failure is still served, whole.
        let batches = split_batches(&read_all(&log, 0).await);
        assert_eq!(batches.len() as i64 * 16, written.0);
        // The shard keeps serving logs on other disks.
        let other = LogManager::new(&roomy_path, ManagerOptions::default(), false);
        other.spawn_background();
        let healthy = open(&other, 0, LogConfig::default()).await;
        let info = healthy.append(batch, CLIENT).await.unwrap();
        healthy.wait_durable(info.last_offset.next()).await.unwrap();
    });
    drop(mount);
}
