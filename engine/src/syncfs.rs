//! Making everything written under the data directory durable at once, for the two places that need it
//! (the end of a process start's recovery, and the clean-shutdown marker): one `syncfs` where the filesystem
//! keeps that promise, and an fsync of every file and directory under the data directory where it does not.
//!
//! Where `syncfs` is not trusted: FUSE (`FUSE_SUPER_MAGIC`). The kernel does not forward `syncfs` to a FUSE
//! daemon (only virtiofs asks for it), so it returns success while the daemon may still hold data that an
//! fsync would have made durable; per-file fsyncs do reach the daemon. That is the power-loss test mount
//! (`tools/lossyfs`), and any FUSE filesystem an operator puts the data directory on.
//!
//! Blocking: callers run it off the reactor (`spawn_blocking`) or before the shards start.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `statfs` `f_type` of a FUSE mount (`linux/magic.h`).
pub const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// How [`sync_filesystem`] made the data directory durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMethod {
    /// One `syncfs` of the filesystem holding the data directory.
    Syncfs,
    /// An fsync of each file and directory under it, this many in all.
    EveryFile(u64),
}

/// Makes everything written under `data_dir`, data and metadata, durable.
pub fn sync_filesystem(data_dir: &Path) -> io::Result<SyncMethod> {
    if syncfs_is_trusted(data_dir)? {
        let dir = File::open(data_dir)?;
        // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(SyncMethod::Syncfs);
    }
    let mut synced = 0;
    fsync_tree(data_dir, &mut synced)?;
    Ok(SyncMethod::EveryFile(synced))
}

/// Whether one `syncfs` on `path`'s filesystem reaches everything an fsync would: false on FUSE.
pub fn syncfs_is_trusted(path: &Path) -> io::Result<bool> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: zeroed is a valid `statfs`, which the call fills; `c_path` is a valid C string.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // `f_type`'s width differs between targets
    let filesystem_type = i64::from(stat.f_type);
    Ok(filesystem_type != FUSE_SUPER_MAGIC)
}

/// Fsyncs every regular file under `dir`, then each directory after its entries (so a directory's fsync
/// comes after the files it names are durable). Entries deleted meanwhile (another shard's retention or a
/// topic deletion) are skipped: what no longer exists needs no sync.
fn fsync_tree(dir: &Path, synced: &mut u64) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            fsync_tree(&path, synced)?;
        } else if kind.is_file() {
            match File::open(&path) {
                Ok(file) => {
                    file.sync_all()?;
                    *synced += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    match File::open(dir) {
        Ok(handle) => {
            handle.sync_all()?;
            *synced += 1;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_local_filesystem_is_synced_with_one_syncfs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(syncfs_is_trusted(dir.path()).unwrap());
        assert_eq!(sync_filesystem(dir.path()).unwrap(), SyncMethod::Syncfs);
    }

    #[test]
    fn the_fallback_fsyncs_every_file_and_directory_and_skips_what_vanished() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("topic-0")).unwrap();
        std::fs::write(dir.path().join("topic-0/00000000000000000000.log"), b"batch").unwrap();
        std::fs::write(dir.path().join("topic-0/partition.checkpoint"), b"1").unwrap();
        std::fs::write(dir.path().join(".clean-shutdown"), b"").unwrap();
        let mut synced = 0;
        fsync_tree(dir.path(), &mut synced).unwrap();
        assert_eq!(synced, 5, "three files and two directories");
        let mut none = 0;
        fsync_tree(&dir.path().join("deleted-0"), &mut none).unwrap();
        assert_eq!(none, 0);
    }
}
