//! The `lossyfs` binary against a real FUSE mount: what was fsynced survives a power loss, and what was
//! only written does not. Needs `/dev/fuse` and root (or `fusermount3`); without `/dev/fuse` each test says so
//! and returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

struct Mount {
    child: Child,
    root: tempfile::TempDir,
}

impl Mount {
    /// Mounts a fresh backing directory, or `None` (with the reason printed) where FUSE is not available.
    fn start() -> Option<Mount> {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: no /dev/fuse on this machine");
            return None;
        }
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("backing")).unwrap();
        fs::create_dir(root.path().join("mnt")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lossyfs"))
            .arg(root.path().join("backing"))
            .arg(root.path().join("mnt"))
            .arg("--control")
            .arg(root.path().join("ctl"))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mount = Mount { child, root };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mount.is_mounted() {
            assert!(Instant::now() < deadline, "lossyfs did not mount within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(mount)
    }

    fn is_mounted(&self) -> bool {
        let path = std::ffi::CString::new(self.mnt().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: zeroed is a valid statfs, which the call fills; `path` is a valid C string.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        unsafe { libc::statfs(path.as_ptr(), &mut stat) == 0 && stat.f_type == FUSE_SUPER_MAGIC }
    }

    fn mnt(&self) -> PathBuf {
        self.root.path().join("mnt")
    }

    fn backing(&self) -> PathBuf {
        self.root.path().join("backing")
    }

    fn control(&self, command: &str) -> String {
        let mut stream = UnixStream::connect(self.root.path().join("ctl")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        writeln!(stream, "{command}").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        assert!(line.starts_with("ok"), "control answered {line:?}");
        line.trim().to_string()
    }

    fn power_loss(&self) -> String {
        self.control("power-loss")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // SAFETY: kill only signals the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = Command::new("umount").arg("-l").arg(self.mnt()).status();
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!self.is_mounted(), "lossyfs left {} mounted", self.mnt().display());
    }
}

fn read(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(path).unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn fsynced_data_survives_a_power_loss_and_unsynced_data_vanishes() {
    let Some(mount) = Mount::start() else { return };
    let path = mount.mnt().join("log");
    let mut file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).unwrap();
    file.write_all(b"first,").unwrap();
    file.sync_data().unwrap();
    file.write_all(b"second,").unwrap();
    file.write_at(b"F", 0).unwrap();
    assert_eq!(read(&path), b"First,second,", "reads merge unsynced writes over the backing file");
    assert_eq!(read(&mount.backing().join("log")), b"first,", "unsynced data stays out of the backing file");
    assert_eq!(mount.control("status"), "ok unsynced_bytes=8");

    let report = mount.power_loss();
    assert_eq!(report, "ok files=1 bytes=8");
    assert_eq!(read(&path), b"first,");
    assert_eq!(fs::metadata(&path).unwrap().len(), 6);
    // The handle opened before the power loss sees the same (its cached pages were invalidated).
    let mut buffer = [0u8; 32];
    let n = file.read_at(&mut buffer, 0).unwrap();
    assert_eq!(&buffer[..n], b"first,");

    file.write_all_at(b"third", 6).unwrap();
    file.sync_all().unwrap();
    assert_eq!(mount.power_loss(), "ok files=0 bytes=0");
    assert_eq!(read(&path), b"first,third");
}

#[test]
fn a_rename_before_fsync_leaves_an_empty_file_after_a_power_loss() {
    let Some(mount) = Mount::start() else { return };
    let dir = mount.mnt().join("partition");
    fs::create_dir(&dir).unwrap();
    // The unsafe pattern: write a temporary file, rename it into place, fsync the directory; no file fsync.
    fs::write(dir.join("checkpoint.tmp"), b"offset=42").unwrap();
    fs::rename(dir.join("checkpoint.tmp"), dir.join("checkpoint")).unwrap();
    File::open(&dir).unwrap().sync_all().unwrap();
    // The safe one: fsync the file before the rename.
    let mut safe = File::create(dir.join("safe.tmp")).unwrap();
    safe.write_all(b"offset=43").unwrap();
    safe.sync_all().unwrap();
    drop(safe);
    fs::rename(dir.join("safe.tmp"), dir.join("safe")).unwrap();
    File::open(&dir).unwrap().sync_all().unwrap();
    assert_eq!(read(&dir.join("checkpoint")), b"offset=42");

    mount.power_loss();
    let names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.contains(&"checkpoint".to_string()) && !names.contains(&"checkpoint.tmp".to_string()));
    assert_eq!(read(&dir.join("checkpoint")), b"", "the rename survived, the data did not");
    assert_eq!(read(&dir.join("safe")), b"offset=43");
}

#[test]
fn an_unsynced_truncate_is_undone_by_a_power_loss_and_a_synced_one_is_kept() {
    let Some(mount) = Mount::start() else { return };
    let path = mount.mnt().join("segment");
    let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).unwrap();
    file.write_all_at(&[7u8; 10_000], 0).unwrap();
    file.sync_all().unwrap();
    file.set_len(100).unwrap();
    file.write_all_at(b"tail", 200).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 204);
    let mut view = read(&path);
    assert!(view[..100].iter().all(|b| *b == 7) && view[100..200].iter().all(|b| *b == 0), "zeros after a cut");
    mount.power_loss();
    view = read(&path);
    assert_eq!(view, vec![7u8; 10_000]);

    file.set_len(100).unwrap();
    file.sync_data().unwrap();
    mount.power_loss();
    assert_eq!(read(&path), vec![7u8; 100]);
    assert_eq!(fs::metadata(mount.backing().join("segment")).unwrap().len(), 100);
}

#[test]
fn closed_files_keep_unsynced_data_until_the_power_loss() {
    let Some(mount) = Mount::start() else { return };
    for i in 0..50 {
        fs::write(mount.mnt().join(format!("f{i}")), format!("data {i}")).unwrap();
    }
    // close(2) made nothing durable: the data is read back from memory, and is gone after the power loss.
    for i in 0..50 {
        assert_eq!(read(&mount.mnt().join(format!("f{i}"))), format!("data {i}").as_bytes());
    }
    let report = mount.power_loss();
    assert!(report.starts_with("ok files=50 "), "{report}");
    for i in 0..50 {
        assert_eq!(read(&mount.mnt().join(format!("f{i}"))), b"");
    }
}
