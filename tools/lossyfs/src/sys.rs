//! Thin, checked wrappers over the `*at` system calls the filesystem passes through to the backing directory.
//! Every inode is held as an `O_PATH` descriptor, so renames of its parents never invalidate it; a regular
//! descriptor to it is reopened through `/proc/self/fd/N`, which also works for unlinked files.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

pub fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `/proc/self/fd/N` for a descriptor: the path that reopens it.
pub fn proc_path(fd: RawFd) -> CString {
    // A formatted integer never holds a NUL byte.
    CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default()
}

/// An `O_PATH` descriptor of `name` in `dir` (or of `path` itself when `dir` is `AT_FDCWD`).
pub fn open_path(dir: RawFd, name: &CString) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string; the returned descriptor is owned by the OwnedFd.
    let fd = check(unsafe { libc::openat(dir, name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) })?;
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the inode behind an `O_PATH` descriptor for I/O.
pub fn reopen(path_fd: &OwnedFd, flags: libc::c_int) -> io::Result<File> {
    let path = proc_path(path_fd.as_raw_fd());
    // SAFETY: `path` is a valid C string; the returned descriptor is owned by the File.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: open returned a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `fstatat` of `name` in `dir`, not following a symlink; an empty `name` means `dir` itself.
pub fn stat_at(dir: RawFd, name: &CString) -> io::Result<libc::stat> {
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.as_bytes().is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: zeroed is a valid `stat`; fstatat writes it and reads only `name`.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut stat, flags) })?;
    Ok(stat)
}

pub fn stat_fd(fd: RawFd) -> io::Result<libc::stat> {
    stat_at(fd, &CString::default())
}

pub fn mkdir_at(dir: RawFd, name: &CString, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is a valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn mknod_at(dir: RawFd, name: &CString, mode: u32, rdev: u32) -> io::Result<()> {
    // SAFETY: `name` is a valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode as libc::mode_t, libc::dev_t::from(rdev)) }).map(drop)
}

pub fn symlink_at(target: &CString, dir: RawFd, name: &CString) -> io::Result<()> {
    // SAFETY: both are valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
}

/// A new name in `dir` for the inode behind `path_fd`.
pub fn link_at(path_fd: RawFd, dir: RawFd, name: &CString) -> io::Result<()> {
    let source = proc_path(path_fd);
    // SAFETY: both are valid C strings.
    check(unsafe { libc::linkat(libc::AT_FDCWD, source.as_ptr(), dir, name.as_ptr(), libc::AT_SYMLINK_FOLLOW) })
        .map(drop)
}

pub fn unlink_at(dir: RawFd, name: &CString, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is a valid C string.
    check(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

pub fn rename_at(dir: RawFd, name: &CString, new_dir: RawFd, new_name: &CString, flags: u32) -> io::Result<()> {
    // SAFETY: both names are valid C strings.
    check(unsafe { libc::renameat2(dir, name.as_ptr(), new_dir, new_name.as_ptr(), flags) }).map(drop)
}

pub fn readlink_at(path_fd: RawFd) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is valid for its length; an empty name reads the link `path_fd` is.
    let len = unsafe { libc::readlinkat(path_fd, c"".as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(len as usize);
    Ok(buffer)
}

pub fn chmod(path_fd: RawFd, mode: u32) -> io::Result<()> {
    let path = proc_path(path_fd);
    // SAFETY: `path` is a valid C string.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn chown(path_fd: RawFd, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let (uid, gid) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
    // SAFETY: an empty path with AT_EMPTY_PATH acts on the descriptor itself.
    check(unsafe { libc::fchownat(path_fd, c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) })
        .map(drop)
}

/// Sets access and modification times; `None` leaves one as it is.
pub fn set_times(path_fd: RawFd, times: [Option<libc::timespec>; 2]) -> io::Result<()> {
    let omit = libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT };
    let spec = [times[0].unwrap_or(omit), times[1].unwrap_or(omit)];
    let path = proc_path(path_fd);
    // SAFETY: `path` is a valid C string and `spec` holds two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), spec.as_ptr(), 0) }).map(drop)
}

pub fn access(path_fd: RawFd, mask: i32) -> io::Result<()> {
    let path = proc_path(path_fd);
    // SAFETY: `path` is a valid C string.
    check(unsafe { libc::access(path.as_ptr(), mask) }).map(drop)
}

pub fn statvfs(path_fd: RawFd) -> io::Result<libc::statvfs> {
    let path = proc_path(path_fd);
    // SAFETY: zeroed is a valid `statvfs`, which the call fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(path.as_ptr(), &mut stat) })?;
    Ok(stat)
}

/// Positioned read that retries on EINTR; returns 0 at the file's end.
pub fn pread(file: &File, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

pub fn pwrite_all(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}
