//! The FUSE filesystem: a pass-through of a backing directory whose unsynced file data lives in memory.
//!
//! - **File data** written through the mount goes to the inode's [`Overlay`], not to the backing file, and
//!   so do size changes (truncate, an extending `fallocate`). Reads merge the overlay over the backing file.
//!   `fsync`/`fdatasync` of the file writes its overlay to the backing file and fsyncs that.
//! - **Namespace operations** (create, mkdir, mknod, symlink, link, rename, unlink, rmdir) and metadata
//!   (mode, owner, times) go straight to the backing directory: they survive a power loss even when the data
//!   of the files they name does not. That is the ext4 (`data=ordered`, delayed allocation) case the tool is
//!   for: a rename of a file whose data was never fsynced can reach the disk first, leaving a file that
//!   is shorter than what was written or empty after the crash.
//! - **Power loss** ([`LossyFs::power_loss`]) drops every overlay: each file is again what its backing file
//!   holds, which is exactly what was fsynced. The caller then invalidates the kernel's caches of those inodes.
//!
//! Every inode is an `O_PATH` descriptor of the backing inode, known by its (device, inode) pair. A node
//! stays while the kernel holds a lookup of it or while it has unsynced data (a closed file's data is not
//! lost just because the kernel forgot the inode). Locks: the node table first, then one node's data; never
//! the table while holding a node's data. The kernel's page cache is write-through here (no writeback
//! cache), so every write reaches this process before `write(2)` returns.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::overlay::Overlay;
use crate::sys;

/// How long the kernel may cache an entry or attributes. Power loss invalidates the inodes it changes.
const TTL: Duration = Duration::from_secs(1);

struct Node {
    path_fd: OwnedFd,
    key: (u64, u64),
    data: Mutex<NodeData>,
}

#[derive(Default)]
struct NodeData {
    overlay: Option<Overlay>,
}

struct Entry {
    node: Arc<Node>,
    /// Lookups the kernel holds (each ENTRY or CREATE reply adds one, FORGET takes them back).
    lookups: u64,
}

#[derive(Default)]
struct Table {
    by_ino: HashMap<u64, Entry>,
    by_key: HashMap<(u64, u64), u64>,
    next_ino: u64,
}

enum Handle {
    File(Arc<File>),
    Dir(Arc<Vec<(u64, FileType, Vec<u8>)>>),
}

/// What a power loss dropped.
#[derive(Debug, Default)]
pub struct PowerLossReport {
    pub files: u64,
    pub bytes: u64,
    /// The inodes whose kernel caches must be invalidated.
    pub inodes: Vec<u64>,
}

/// Cloning shares the state: one clone serves the FUSE session, another the control loop.
#[derive(Clone)]
pub struct LossyFs {
    table: Arc<Mutex<Table>>,
    handles: Arc<Mutex<HashMap<u64, Handle>>>,
    next_handle: Arc<AtomicU64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another request must not wedge the mount; the data it guards stays consistent per call.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn kind_of(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn time(seconds: i64, nanoseconds: i64) -> SystemTime {
    let since = Duration::new(seconds.unsigned_abs(), nanoseconds.clamp(0, 999_999_999) as u32);
    if seconds >= 0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    }
}

fn timespec(value: TimeOrNow) -> libc::timespec {
    match value {
        TimeOrNow::Now => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        TimeOrNow::SpecificTime(at) => {
            let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec { tv_sec: since.as_secs() as libc::time_t, tv_nsec: i64::from(since.subsec_nanos()) }
        }
    }
}

fn attr(ino: u64, stat: &libc::stat, size_override: Option<u64>) -> FileAttr {
    let size = size_override.unwrap_or(stat.st_size as u64);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: (stat.st_blocks as u64).max(size.div_ceil(512)),
        atime: time(stat.st_atime, stat.st_atime_nsec),
        mtime: time(stat.st_mtime, stat.st_mtime_nsec),
        ctime: time(stat.st_ctime, stat.st_ctime_nsec),
        crtime: time(stat.st_ctime, stat.st_ctime_nsec),
        kind: kind_of(stat.st_mode),
        perm: (stat.st_mode & 0o7777) as u16,
        nlink: stat.st_nlink as u32,
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: stat.st_rdev as u32,
        blksize: stat.st_blksize as u32,
        flags: 0,
    }
}

/// Flags for opening the backing file: read-write when possible (fsync writes through any handle's inode),
/// and never `O_APPEND` (the kernel computes append offsets), `O_DIRECT` (the overlay is not aligned) or
/// `O_TRUNC` (a truncate is data, kept in the overlay).
fn backing_open_flags(flags: i32) -> i32 {
    let keep =
        flags & !(libc::O_ACCMODE | libc::O_APPEND | libc::O_DIRECT | libc::O_TRUNC | libc::O_CREAT | libc::O_EXCL);
    keep | libc::O_RDWR
}

impl LossyFs {
    /// A filesystem over the backing directory `root`.
    pub fn new(root: &std::path::Path) -> io::Result<LossyFs> {
        let root_fd = sys::open_path(libc::AT_FDCWD, &sys::c_name(root.as_os_str())?)?;
        let stat = sys::stat_fd(root_fd.as_raw_fd())?;
        if kind_of(stat.st_mode) != FileType::Directory {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the backing path is not a directory"));
        }
        let key = (stat.st_dev, stat.st_ino);
        let mut table = Table { next_ino: INodeNo::ROOT.0 + 1, ..Table::default() };
        let node = Arc::new(Node { path_fd: root_fd, key, data: Mutex::default() });
        // The root is never forgotten: one lookup that nothing takes back.
        table.by_ino.insert(INodeNo::ROOT.0, Entry { node, lookups: 1 });
        table.by_key.insert(key, INodeNo::ROOT.0);
        Ok(LossyFs {
            table: Arc::new(Mutex::new(table)),
            handles: Arc::default(),
            next_handle: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Unsynced bytes held in memory, over all files.
    pub fn unsynced_bytes(&self) -> u64 {
        let nodes: Vec<Arc<Node>> = lock(&self.table).by_ino.values().map(|entry| entry.node.clone()).collect();
        nodes.iter().filter_map(|node| lock(&node.data).overlay.as_ref().map(Overlay::dirty_bytes)).sum()
    }

    /// Drops every file's unsynced data. Returns what was dropped.
    pub fn power_loss(&self) -> PowerLossReport {
        let nodes: Vec<(u64, Arc<Node>)> =
            lock(&self.table).by_ino.iter().map(|(ino, entry)| (*ino, entry.node.clone())).collect();
        let mut report = PowerLossReport::default();
        for (ino, node) in nodes {
            if let Some(overlay) = lock(&node.data).overlay.take() {
                report.files += 1;
                report.bytes += overlay.dirty_bytes();
                report.inodes.push(ino);
            }
        }
        // Nodes the kernel had already forgotten were kept only for their data, which is gone now.
        let mut table = lock(&self.table);
        let unused: Vec<u64> = table
            .by_ino
            .iter()
            .filter(|(_, entry)| entry.lookups == 0 && lock(&entry.node.data).overlay.is_none())
            .map(|(ino, _)| *ino)
            .collect();
        for ino in unused {
            Self::remove(&mut table, ino);
        }
        report
    }

    fn remove(table: &mut Table, ino: u64) {
        if let Some(entry) = table.by_ino.remove(&ino) {
            if table.by_key.get(&entry.node.key) == Some(&ino) {
                table.by_key.remove(&entry.node.key);
            }
        }
    }

    fn node(&self, ino: INodeNo) -> Result<Arc<Node>, Errno> {
        lock(&self.table).by_ino.get(&ino.0).map(|entry| entry.node.clone()).ok_or(Errno::ENOENT)
    }

    /// The attributes the mount shows: the backing inode's, with the overlay's size.
    fn attr_of(&self, ino: u64, node: &Node) -> io::Result<FileAttr> {
        let stat = sys::stat_fd(node.path_fd.as_raw_fd())?;
        let size = lock(&node.data).overlay.as_ref().map(Overlay::size);
        Ok(attr(ino, &stat, size))
    }

    /// Finds or makes the node of `name` in `parent` and counts one kernel lookup of it.
    fn lookup_node(&self, parent: &Node, name: &CString) -> io::Result<(u64, FileAttr)> {
        let stat = sys::stat_at(parent.path_fd.as_raw_fd(), name)?;
        let key = (stat.st_dev, stat.st_ino);
        let (ino, node) = {
            let mut table = lock(&self.table);
            match table.by_key.get(&key).copied() {
                Some(ino) => {
                    let entry = table.by_ino.get_mut(&ino).ok_or_else(|| io::Error::other("node table out of step"))?;
                    entry.lookups += 1;
                    (ino, entry.node.clone())
                }
                None => {
                    let path_fd = sys::open_path(parent.path_fd.as_raw_fd(), name)?;
                    let opened = sys::stat_fd(path_fd.as_raw_fd())?;
                    if (opened.st_dev, opened.st_ino) != key {
                        // Replaced between the stat and the open: report it gone, the kernel will look again.
                        return Err(io::Error::from_raw_os_error(libc::ENOENT));
                    }
                    let ino = table.next_ino;
                    table.next_ino += 1;
                    let node = Arc::new(Node { path_fd, key, data: Mutex::default() });
                    table.by_ino.insert(ino, Entry { node: node.clone(), lookups: 1 });
                    table.by_key.insert(key, ino);
                    (ino, node)
                }
            }
        };
        Ok((ino, self.attr_of(ino, &node)?))
    }

    /// After `name` in `parent` stopped naming an inode (unlink, rmdir, rename over it): a new inode that
    /// reuses its number must not inherit the node or its unsynced data.
    fn forget_key_if_gone(&self, key: Option<(u64, u64)>) {
        let Some(key) = key else { return };
        let mut table = lock(&self.table);
        let Some(ino) = table.by_key.get(&key).copied() else { return };
        let gone = table.by_ino.get(&ino).is_none_or(|entry| {
            sys::stat_fd(entry.node.path_fd.as_raw_fd()).map(|stat| stat.st_nlink == 0).unwrap_or(true)
        });
        if gone {
            table.by_key.remove(&key);
            let unused = table.by_ino.get(&ino).is_some_and(|entry| entry.lookups == 0);
            if unused {
                table.by_ino.remove(&ino);
            }
        }
    }

    fn key_at(parent: &Node, name: &CString) -> Option<(u64, u64)> {
        sys::stat_at(parent.path_fd.as_raw_fd(), name).ok().map(|stat| (stat.st_dev, stat.st_ino))
    }

    fn add_handle(&self, handle: Handle) -> FileHandle {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, handle);
        FileHandle(fh)
    }

    fn file_handle(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        match lock(&self.handles).get(&fh.0) {
            Some(Handle::File(file)) => Ok(file.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// Opens the backing file for a handle, keeping a truncate the open asked for in the overlay.
    fn open_file(&self, node: &Node, flags: i32) -> io::Result<FileHandle> {
        let file = sys::reopen(&node.path_fd, backing_open_flags(flags))
            .or_else(|_| sys::reopen(&node.path_fd, flags & !(libc::O_APPEND | libc::O_DIRECT | libc::O_TRUNC)))?;
        if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
            let mut data = lock(&node.data);
            Self::overlay_of(&mut data, &file)?.set_size(0);
        }
        Ok(self.add_handle(Handle::File(Arc::new(file))))
    }

    fn overlay_of<'a>(data: &'a mut NodeData, backing: &File) -> io::Result<&'a mut Overlay> {
        if data.overlay.is_none() {
            let size = backing.metadata()?.len();
            data.overlay = Some(Overlay::new(size));
        }
        data.overlay.as_mut().ok_or_else(|| io::Error::other("overlay just made"))
    }

    /// Writes the node's overlay to the backing file and syncs it; the overlay goes only once it is durable.
    fn sync_node(node: &Node, datasync: bool) -> io::Result<()> {
        let mut data = lock(&node.data);
        let backing = sys::reopen(&node.path_fd, libc::O_RDWR)?;
        if let Some(overlay) = data.overlay.as_ref() {
            let plan = overlay.flush_plan();
            if let Some(cut) = plan.cut_to {
                backing.set_len(cut)?;
            }
            for (offset, bytes) in plan.extents {
                sys::pwrite_all(&backing, offset, bytes)?;
            }
            if backing.metadata()?.len() != plan.size {
                backing.set_len(plan.size)?;
            }
        }
        if datasync {
            backing.sync_data()?;
        } else {
            backing.sync_all()?;
        }
        data.overlay = None;
        Ok(())
    }

    fn with_new_entry(
        &self,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEntry,
        make: impl FnOnce(&Node, &CString) -> io::Result<()>,
    ) {
        let result = (|| {
            let parent = self.node(parent).map_err(|e| io::Error::from_raw_os_error(e.code()))?;
            let name = sys::c_name(name)?;
            make(&parent, &name)?;
            self.lookup_node(&parent, &name)
        })();
        match result {
            Ok((_, attr)) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e.into()),
        }
    }
}

fn io_errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.code())
}

impl Filesystem for LossyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.with_new_entry(parent, name, reply, |_, _| Ok(()));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if ino == INodeNo::ROOT {
            return;
        }
        let mut table = lock(&self.table);
        let table = &mut *table;
        let Some(entry) = table.by_ino.get_mut(&ino.0) else { return };
        entry.lookups = entry.lookups.saturating_sub(nlookup);
        let known = table.by_key.get(&entry.node.key) == Some(&ino.0);
        if entry.lookups == 0 && (lock(&entry.node.data).overlay.is_none() || !known) {
            Self::remove(table, ino.0);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino).map_err(io_errno).and_then(|node| self.attr_of(ino.0, &node)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e.into()),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = (|| {
            let node = self.node(ino).map_err(io_errno)?;
            let fd = node.path_fd.as_raw_fd();
            if let Some(mode) = mode {
                sys::chmod(fd, mode)?;
            }
            if uid.is_some() || gid.is_some() {
                sys::chown(fd, uid, gid)?;
            }
            if atime.is_some() || mtime.is_some() {
                sys::set_times(fd, [atime.map(timespec), mtime.map(timespec)])?;
            }
            if let Some(size) = size {
                let backing = sys::reopen(&node.path_fd, libc::O_RDONLY)?;
                let mut data = lock(&node.data);
                Self::overlay_of(&mut data, &backing)?.set_size(size);
            }
            self.attr_of(ino.0, &node)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e.into()),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino).map_err(io_errno).and_then(|node| sys::readlink_at(node.path_fd.as_raw_fd())) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e.into()),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.with_new_entry(parent, name, reply, |dir, name| sys::mknod_at(dir.path_fd.as_raw_fd(), name, mode, rdev));
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        self.with_new_entry(parent, name, reply, |dir, name| sys::mkdir_at(dir.path_fd.as_raw_fd(), name, mode));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_name(parent, name, 0, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_name(parent, name, libc::AT_REMOVEDIR, reply);
    }

    fn symlink(&self, _req: &Request, parent: INodeNo, link_name: &OsStr, target: &std::path::Path, reply: ReplyEntry) {
        self.with_new_entry(parent, link_name, reply, |dir, name| {
            sys::symlink_at(&sys::c_name(target.as_os_str())?, dir.path_fd.as_raw_fd(), name)
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = (|| {
            let (from, to) = (self.node(parent).map_err(io_errno)?, self.node(newparent).map_err(io_errno)?);
            let (name, newname) = (sys::c_name(name)?, sys::c_name(newname)?);
            let replaced = Self::key_at(&to, &newname);
            sys::rename_at(from.path_fd.as_raw_fd(), &name, to.path_fd.as_raw_fd(), &newname, flags.bits())?;
            if !flags.contains(RenameFlags::RENAME_EXCHANGE) {
                self.forget_key_if_gone(replaced);
            }
            Ok::<_, io::Error>(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let node = match self.node(ino) {
            Ok(node) => node,
            Err(e) => return reply.error(e),
        };
        self.with_new_entry(newparent, newname, reply, |dir, name| {
            sys::link_at(node.path_fd.as_raw_fd(), dir.path_fd.as_raw_fd(), name)
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.node(ino).map_err(io_errno).and_then(|node| self.open_file(&node, flags.0)) {
            // No FOPEN_KEEP_CACHE: each open drops the kernel's cached pages of the file, so a process that
            // opens after a power loss reads what survived.
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e.into()),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = (|| {
            let (node, file) = (self.node(ino).map_err(io_errno)?, self.file_handle(fh).map_err(io_errno)?);
            let data = lock(&node.data);
            match data.overlay.as_ref() {
                Some(overlay) => overlay.read(offset, u64::from(size), |at, buffer| sys::pread(&file, at, buffer)),
                None => {
                    let mut buffer = vec![0u8; size as usize];
                    let mut filled = 0;
                    while filled < buffer.len() {
                        let read = sys::pread(&file, offset + filled as u64, &mut buffer[filled..])?;
                        if read == 0 {
                            break;
                        }
                        filled += read;
                    }
                    buffer.truncate(filled);
                    Ok(buffer)
                }
            }
        })();
        match result {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(e.into()),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = (|| {
            let (node, file) = (self.node(ino).map_err(io_errno)?, self.file_handle(fh).map_err(io_errno)?);
            let mut node_data = lock(&node.data);
            Self::overlay_of(&mut node_data, &file)?.write(offset, data);
            Ok::<_, io::Error>(())
        })();
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.into()),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close(2) does not make data durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        match self.node(ino).map_err(io_errno).and_then(|node| Self::sync_node(&node, datasync)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let node = self.node(ino).map_err(io_errno)?;
            let path = sys::proc_path(node.path_fd.as_raw_fd());
            let mut entries =
                vec![(ino.0, FileType::Directory, b".".to_vec()), (ino.0, FileType::Directory, b"..".to_vec())];
            for entry in std::fs::read_dir(OsStr::from_bytes(path.as_bytes()))? {
                let entry = entry?;
                let kind = entry.file_type().ok().and_then(FileType::from_std).unwrap_or(FileType::RegularFile);
                let hint = std::os::unix::fs::DirEntryExt::ino(&entry).max(1);
                entries.push((hint, kind, entry.file_name().as_bytes().to_vec()));
            }
            Ok::<_, io::Error>(self.add_handle(Handle::Dir(Arc::new(entries))))
        })();
        match result {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e.into()),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match lock(&self.handles).get(&fh.0) {
            Some(Handle::Dir(entries)) => entries.clone(),
            _ => return reply.error(Errno::EBADF),
        };
        for (index, (hint, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*hint), index as u64 + 1, *kind, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // Directory entries are already in the backing directory; make them durable there too.
        let result = self
            .node(ino)
            .map_err(io_errno)
            .and_then(|node| sys::reopen(&node.path_fd, libc::O_RDONLY | libc::O_DIRECTORY))
            .and_then(|dir| dir.sync_all());
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        match self.node(ino).map_err(io_errno).and_then(|node| sys::statvfs(node.path_fd.as_raw_fd())) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e.into()),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.node(ino).map_err(io_errno).and_then(|node| sys::access(node.path_fd.as_raw_fd(), mask.bits())) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = (|| {
            let dir = self.node(parent).map_err(io_errno)?;
            let name = sys::c_name(name)?;
            // The new, empty file is a namespace change: it goes straight to the backing directory.
            let create = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | (flags & libc::O_EXCL);
            // SAFETY: `name` is a valid C string; the descriptor is closed right away.
            let fd = unsafe { libc::openat(dir.path_fd.as_raw_fd(), name.as_ptr(), create, mode) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: openat returned a fresh descriptor that nothing else owns.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            let (ino, attr) = self.lookup_node(&dir, &name)?;
            let node = self.node(INodeNo(ino)).map_err(io_errno)?;
            let fh = self.open_file(&node, flags)?;
            Ok((self.attr_of(ino, &node).unwrap_or(attr), fh))
        })();
        match result {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty()),
            Err(e) => reply.error(e.into()),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = (|| {
            let (node, file) = (self.node(ino).map_err(io_errno)?, self.file_handle(fh).map_err(io_errno)?);
            let mut data = lock(&node.data);
            let overlay = Self::overlay_of(&mut data, &file)?;
            let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
            let end = offset + length;
            match mode & !libc::FALLOC_FL_KEEP_SIZE {
                // Allocation: only the size is data here (space is not modelled).
                0 => {}
                libc::FALLOC_FL_PUNCH_HOLE if keep_size => overlay.zero_range(offset, length),
                libc::FALLOC_FL_ZERO_RANGE => {
                    if !keep_size && end > overlay.size() {
                        overlay.set_size(end);
                    }
                    overlay.zero_range(offset, length);
                }
                _ => return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            }
            if !keep_size && end > overlay.size() {
                overlay.set_size(end);
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }
}

impl LossyFs {
    fn remove_name(&self, parent: INodeNo, name: &OsStr, flags: i32, reply: ReplyEmpty) {
        let result = (|| {
            let dir = self.node(parent).map_err(io_errno)?;
            let name = sys::c_name(name)?;
            let key = Self::key_at(&dir, &name);
            sys::unlink_at(dir.path_fd.as_raw_fd(), &name, flags)?;
            self.forget_key_if_gone(key);
            Ok::<_, io::Error>(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.into()),
        }
    }
}
