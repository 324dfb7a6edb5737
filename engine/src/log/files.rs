//! The files of a partition directory and their names: `<20-digit base offset>.log`, `.index`, `.timeindex`
//! and `.snapshot`, the two checkpoint files, and `.tmp` files an interrupted checkpoint write left behind.
//! The byte layouts are in `docs/format.md`.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};
use crate::types::Offset;

pub const PARTITION_CHECKPOINT: &str = "partition.checkpoint";
pub const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
pub(super) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Producer snapshots kept per partition.
pub(super) const SNAPSHOTS_KEPT: usize = 2;

/// `<20-digit offset>.snapshot`: the producer snapshot taken at `at`.
pub(super) fn snapshot_file_name(at: Offset) -> String {
    format!("{:020}{SNAPSHOT_SUFFIX}", at.0)
}

pub(super) struct DirListing {
    pub(super) log_bases: Vec<Offset>,
    pub(super) index_bases: Vec<Offset>,
    pub(super) tmp_files: Vec<PathBuf>,
}

fn parse_base(name: &str, suffix: &str) -> Option<Offset> {
    let digits = name.strip_suffix(suffix)?;
    (digits.len() == 20).then(|| digits.parse().ok().map(Offset)).flatten()
}

pub(super) fn list_dir(dir: &Path) -> Result<DirListing> {
    let mut listing = DirListing { log_bases: Vec::new(), index_bases: Vec::new(), tmp_files: Vec::new() };
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("list partition dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io("list partition dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_base(name, ".log") {
            listing.log_bases.push(base);
        } else if let Some(base) = parse_base(name, ".index").or_else(|| parse_base(name, ".timeindex")) {
            listing.index_bases.push(base);
        } else if name.ends_with(".tmp") {
            listing.tmp_files.push(entry.path());
        }
    }
    listing.log_bases.sort();
    listing.index_bases.sort();
    listing.index_bases.dedup();
    Ok(listing)
}

/// The producer snapshots in `dir`. Listing a directory is a blocking `getdents` that goes to the disk when
/// the directory is not cached (8.6 ms median with a cold cache, `perf/RESULTS.md`), and a roll does it on
/// the append path, so it runs on the shard's blocking thread, not on the reactor.
pub(super) async fn list_snapshots(dir: &Path) -> Result<Vec<Offset>> {
    let dir = dir.to_path_buf();
    off_reactor(move || list_snapshots_now(&dir)).await
}

fn list_snapshots_now(dir: &Path) -> Result<Vec<Offset>> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io("list partition dir", dir, e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| parse_base(n, SNAPSHOT_SUFFIX)))
        .collect())
}

/// Runs a blocking file-system call on the executor's blocking thread (glommio's `spawn_blocking`), so the
/// reactor goes on serving while it waits for the disk.
pub(super) async fn off_reactor<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(call).await
}

pub(super) async fn remove_if_exists(path: &Path) -> Result<()> {
    match glommio::io::remove(path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let io: std::io::Error = e.into();
            if io.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(EngineError::io("remove", path, io))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn snapshots_are_listed_off_the_reactor_thread() {
        let dir = tempfile::tempdir().unwrap();
        for at in [5, 7] {
            std::fs::write(dir.path().join(snapshot_file_name(Offset(at))), b"").unwrap();
        }
        std::fs::write(dir.path().join("00000000000000000005.log"), b"").unwrap();
        let ex = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
        ex.run(async {
            let mut listed = list_snapshots(dir.path()).await.unwrap();
            listed.sort();
            assert_eq!(listed, vec![Offset(5), Offset(7)]);
            let reactor = std::thread::current().id();
            let ran_on = off_reactor(|| std::thread::current().id()).await;
            assert_ne!(ran_on, reactor, "the blocking call ran on the reactor's thread");
        });
    }
}
