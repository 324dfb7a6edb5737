//! One segment of a partition log: `<base>.log` plus its sparse indexes. The log file is opened lazily and
//! closed by the shard's fd cache; the active segment's indexes live in memory until it rolls.
//!
//! A `SegmentFile` holds exactly one file descriptor. `shared` owns it as an `Arc<File>` so that fetch slices
//! can carry it to another shard and keep it readable after retention unlinks the file; `ring` is a glommio
//! handle over the same descriptor for io_uring writes, reads and fdatasync, and never closes it.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use glommio::io::{BufferedFile, OpenOptions, ReadResult};

use crate::batch::{self, RecordBatchHeader, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::error::{BatchError, EngineError, Result};
use crate::index::SegmentIndex;
use crate::types::Offset;

/// Bytes read per lookup scan: a few index intervals.
const LOOKUP_CHUNK_BYTES: usize = 16 * 1024;
/// Appends up to this size are written with `pwrite` on the shard's thread; larger ones go through
/// io_uring (see [`SegmentFile::write_all_at`]).
pub(crate) const INLINE_WRITE_MAX_BYTES: usize = 64 * 1024;
/// Bytes read per recovery chunk.
pub(crate) const RECOVERY_CHUNK_BYTES: usize = 4 * 1024 * 1024;

pub fn log_file_name(base: Offset) -> String {
    format!("{:020}.log", base.0)
}

pub fn index_file_name(base: Offset) -> String {
    format!("{:020}.index", base.0)
}

pub fn time_index_file_name(base: Offset) -> String {
    format!("{:020}.timeindex", base.0)
}

/// An open segment file: one descriptor, shared for zero-copy sends and driven through io_uring.
pub struct SegmentFile {
    shared: Arc<File>,
    ring: ManuallyDrop<BufferedFile>,
    path: PathBuf,
}

impl SegmentFile {
    pub(crate) async fn open(path: &Path, create: bool) -> Result<SegmentFile> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(create);
        let file = options
            .buffered_open(path)
            .await
            .map_err(|e| EngineError::glommio(if create { "create segment" } else { "open segment" }, path, e))?;
        // Keep a duplicate of the descriptor in `shared` and close glommio's own handle properly (forgetting it
        // would leak its path on every open).
        // SAFETY: dup only reads the open descriptor `file` holds.
        let fd = unsafe { libc::dup(file.as_raw_fd()) };
        let dup_error = (fd < 0).then(std::io::Error::last_os_error);
        file.close().await.map_err(|e| EngineError::glommio("close segment handle", path, e))?;
        if let Some(error) = dup_error {
            return Err(EngineError::io("dup segment fd", path, error));
        }
        // SAFETY: `fd` is a fresh descriptor from dup that nothing else owns; `shared` closes it exactly once,
        // when the last `Arc<File>` drops. `ring` below never closes it.
        let shared = Arc::new(unsafe { File::from_raw_fd(fd) });
        // SAFETY: `ring` borrows the descriptor owned by `shared`, which this struct keeps alive for as long
        // as `ring` is reachable; `ManuallyDrop` keeps `ring` from closing it.
        let ring = ManuallyDrop::new(unsafe { BufferedFile::from_raw_fd(shared.as_raw_fd()) });
        Ok(SegmentFile { shared, ring, path: path.to_owned() })
    }

    /// The shareable handle that fetch slices carry.
    pub fn shared(&self) -> &Arc<File> {
        &self.shared
    }

    pub(crate) async fn write_all_at(&self, buf: Vec<u8>, position: u64) -> Result<()> {
        let expected = buf.len();
        if expected <= INLINE_WRITE_MAX_BYTES {
            // A small buffered write is a short copy into the page cache: done here, it saves handing the
            // write to an io_uring worker thread and waking this shard again, two context switches that
            // cost more than the copy. (ext4 cannot do buffered writes without blocking in io_uring itself.)
            use std::os::unix::fs::FileExt as _;
            return self
                .shared
                .write_all_at(&buf, position)
                .map_err(|e| EngineError::io("write segment", &self.path, e));
        }
        let written = self
            .ring
            .write_at(buf, position)
            .await
            .map_err(|e| EngineError::glommio("write segment", &self.path, e))?;
        if written != expected {
            // A short write means the disk is full or failing; the caller poisons the log.
            return Err(EngineError::io(
                "write segment",
                &self.path,
                std::io::Error::new(std::io::ErrorKind::WriteZero, format!("short write: {written} of {expected}")),
            ));
        }
        Ok(())
    }

    /// Writes `len` zero bytes at `position` with `pwrite` on the shard's thread (pre-written space, see
    /// [`crate::prewrite`]; at most one chunk, copied from a static buffer).
    pub(crate) fn write_zeros_at(&self, position: u64, len: u64) -> Result<()> {
        use std::os::unix::fs::FileExt as _;
        assert!(len <= crate::prewrite::CHUNK_BYTES, "pre-write of {len} bytes, larger than one chunk");
        self.shared
            .write_all_at(&crate::prewrite::ZEROS[..len as usize], position)
            .map_err(|e| EngineError::io("pre-write zeros", &self.path, e))
    }

    pub(crate) async fn read_at(&self, position: u64, len: usize) -> Result<ReadResult> {
        self.ring.read_at(position, len).await.map_err(|e| EngineError::glommio("read segment", &self.path, e))
    }

    pub(crate) async fn fdatasync(&self) -> Result<()> {
        self.ring.fdatasync().await.map_err(|e| EngineError::glommio("fdatasync segment", &self.path, e))
    }

    pub(crate) async fn truncate(&self, size: u64) -> Result<()> {
        self.ring.truncate(size).await.map_err(|e| EngineError::glommio("truncate segment", &self.path, e))
    }

    /// The file's size by `fstat` (glommio's `file_size` needs a path, which a handle over a raw fd lacks).
    pub(crate) fn size(&self) -> Result<u64> {
        self.shared.metadata().map(|m| m.len()).map_err(|e| EngineError::io("stat segment", &self.path, e))
    }
}

impl std::fmt::Debug for SegmentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentFile({}, fd {})", self.path.display(), self.shared.as_raw_fd())
    }
}

#[derive(Debug)]
pub(crate) struct SegmentState {
    pub size_bytes: u64,
    /// One past the last offset in the segment; equals the base when it is empty.
    pub next_offset: Offset,
    /// Newest batch max timestamp, -1 when empty.
    pub max_timestamp_ms: i64,
    /// In memory while the segment is open (always, for the active segment).
    pub index: Option<SegmentIndex>,
    /// Bytes appended since the last offset-index entry.
    pub bytes_since_index_entry: u32,
    /// When the first batch was appended, for `segment.ms`.
    pub first_append_ms: Option<i64>,
}

#[derive(Debug)]
pub struct Segment {
    pub(crate) base: Offset,
    pub(crate) dir: PathBuf,
    pub(crate) state: RefCell<SegmentState>,
    pub(crate) file: RefCell<Option<Rc<SegmentFile>>>,
    /// Clock bit for the fd cache: set on use, cleared by the sweeping hand.
    pub(crate) referenced: Cell<bool>,
    /// Deleted by retention or replaced by a cleaner swap: its path may now name another file (a cleaned
    /// segment takes its first old segment's name), so it is never opened again.
    pub(crate) retired: Cell<bool>,
}

impl Segment {
    pub(crate) fn new(dir: &Path, base: Offset, state: SegmentState) -> Segment {
        Segment {
            base,
            dir: dir.to_owned(),
            state: RefCell::new(state),
            file: RefCell::new(None),
            referenced: Cell::new(true),
            retired: Cell::new(false),
        }
    }

    pub(crate) fn empty_state(base: Offset) -> SegmentState {
        SegmentState {
            size_bytes: 0,
            next_offset: base,
            max_timestamp_ms: -1,
            index: Some(SegmentIndex::default()),
            bytes_since_index_entry: 0,
            first_append_ms: None,
        }
    }

    pub fn base_offset(&self) -> Offset {
        self.base
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(log_file_name(self.base))
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join(index_file_name(self.base))
    }

    pub fn time_index_path(&self) -> PathBuf {
        self.dir.join(time_index_file_name(self.base))
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().size_bytes
    }

    pub fn next_offset(&self) -> Offset {
        self.state.borrow().next_offset
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.state.borrow().max_timestamp_ms
    }

    pub(crate) fn is_open(&self) -> bool {
        self.file.borrow().is_some()
    }

    /// Drops the descriptor (in-flight reads and slices keep theirs) and, for an inactive segment, the
    /// in-memory index.
    pub(crate) fn close_handles(&self, keep_index: bool) {
        self.file.borrow_mut().take();
        if !keep_index {
            self.state.borrow_mut().index = None;
        }
    }

    /// Loads the on-disk indexes of an inactive segment, or rebuilds them by scanning when they are missing
    /// or inconsistent.
    pub(crate) async fn load_index(&self, file: &SegmentFile) -> Result<SegmentIndex> {
        let size = self.size_bytes();
        if let Some(index) = self.read_index_files(size).await? {
            return Ok(index);
        }
        tracing::info!(segment = %self.log_path().display(), "rebuilding segment index");
        let mut index = SegmentIndex::default();
        let interval = 4096;
        let mut since_entry = u32::MAX;
        scan_headers(file, 0, size, |position, header| {
            let relative = (header.base_offset() - self.base.0) as u32;
            if since_entry >= interval {
                index.push_offset(relative, position as u32);
                since_entry = 0;
            }
            since_entry = since_entry.saturating_add(header.size_bytes() as u32);
            index.maybe_push_time(header.max_timestamp.get(), relative);
            ScanControl::Continue
        })
        .await?;
        Ok(index)
    }

    /// The segment's on-disk index files, if both exist and hold together for a log of `size` bytes.
    pub(crate) async fn read_index_files(&self, size: u64) -> Result<Option<SegmentIndex>> {
        let offsets = crate::checkpoint::read_small(&self.index_path()).await?;
        let times = crate::checkpoint::read_small(&self.time_index_path()).await?;
        Ok(match (offsets, times) {
            (Some(offsets), Some(times)) => SegmentIndex::decode(&offsets, &times, size),
            _ => None,
        })
    }

    /// The file position of the batch that holds `offset`, and that batch's header, scanning forward from the
    /// nearest index entry. `None` when the offset is past the segment's last batch.
    pub(crate) async fn locate(&self, file: &SegmentFile, offset: Offset) -> Result<Option<(u64, RecordBatchHeader)>> {
        let (start, size) = {
            let state = self.state.borrow();
            let relative = (offset.0 - self.base.0).clamp(0, i64::from(u32::MAX)) as u32;
            let start = state.index.as_ref().and_then(|i| i.floor_by_offset(relative)).map_or(0, |e| e.position);
            (u64::from(start), state.size_bytes)
        };
        let mut found = None;
        scan_headers(file, start, size, |position, header| {
            if header.last_offset() >= offset.0 {
                found = Some((position, *header));
                ScanControl::Stop
            } else {
                ScanControl::Continue
            }
        })
        .await?;
        Ok(found)
    }

    /// The end of the last whole batch that ends at or before `limit` bytes, scanning from the batch boundary
    /// `from` (which must be a batch start). Returns `from` when even the first batch is larger.
    pub(crate) async fn last_boundary_before(&self, file: &SegmentFile, from: u64, limit: u64) -> Result<u64> {
        let start = {
            let state = self.state.borrow();
            let floor = state.index.as_ref().and_then(|i| i.floor_by_position(limit.min(u64::from(u32::MAX)) as u32));
            floor.map_or(from, |e| u64::from(e.position).max(from))
        };
        let mut boundary = start;
        scan_headers(file, start, limit, |position, header| {
            let end = position + header.size_bytes() as u64;
            if end <= limit {
                boundary = end;
                ScanControl::Continue
            } else {
                ScanControl::Stop
            }
        })
        .await?;
        Ok(boundary)
    }
}

pub(crate) enum ScanControl {
    Continue,
    Stop,
}

/// Walks batch headers in `[from, to)` without reading batch bodies. Stops early at a header that is cut off
/// by `to` or whose length is nonsense; lookups only run over data that recovery or the append path already
/// validated, so that only happens at `to`.
pub(crate) async fn scan_headers(
    file: &SegmentFile,
    from: u64,
    to: u64,
    mut visit: impl FnMut(u64, &RecordBatchHeader) -> ScanControl,
) -> Result<()> {
    let mut position = from;
    while position + HEADER_BYTES as u64 <= to {
        let want = LOOKUP_CHUNK_BYTES.min((to - position) as usize);
        let chunk = file.read_at(position, want).await?;
        let mut cursor = 0usize;
        let mut advanced = false;
        while let Some(header) = chunk.get(cursor..).and_then(batch::peek_header) {
            let size = header.size_bytes();
            if size < HEADER_BYTES || position + cursor as u64 + size as u64 > to {
                return Ok(());
            }
            if let ScanControl::Stop = visit(position + cursor as u64, &header) {
                return Ok(());
            }
            cursor += size;
            advanced = true;
        }
        if !advanced && chunk.len() < HEADER_BYTES {
            return Ok(());
        }
        position += cursor as u64;
        if !advanced {
            // The next header straddles the chunk end: read again from it.
            let header = file.read_at(position, HEADER_BYTES).await?;
            let Some(header) = batch::peek_header(&header) else { return Ok(()) };
            let size = header.size_bytes();
            if size < HEADER_BYTES || position + size as u64 > to {
                return Ok(());
            }
            if let ScanControl::Stop = visit(position, &header) {
                return Ok(());
            }
            position += size as u64;
        }
    }
    Ok(())
}

/// One step of a validating recovery scan.
#[derive(Debug)]
pub(crate) enum RecoveredBatch {
    Valid { position: u64 },
    Invalid { position: u64, error: BatchError },
}

/// Validates every batch in `[from, size)`: bounds, magic, CRC. Calls `visit` for each valid batch and
/// returns the first invalid position and error, if any. Offsets are checked by the caller.
pub(crate) async fn scan_validating(
    file: &SegmentFile,
    from: u64,
    size: u64,
    mut visit: impl FnMut(u64, &RecordBatchHeader, &[u8]) -> bool,
) -> Result<Option<RecoveredBatch>> {
    let mut position = from;
    while position < size {
        let want = RECOVERY_CHUNK_BYTES.min((size - position) as usize);
        let chunk = file.read_at(position, want).await?;
        let mut cursor = 0usize;
        loop {
            let rest = &chunk[cursor..];
            if rest.is_empty() {
                break;
            }
            let at = position + cursor as u64;
            match batch::validate_stored(rest, usize::MAX) {
                Ok(header) => {
                    let bytes = &rest[..header.size_bytes()];
                    if !visit(at, &header, bytes) {
                        return Ok(Some(RecoveredBatch::Valid { position: at }));
                    }
                    cursor += header.size_bytes();
                }
                Err(BatchError::Truncated { needed, .. }) if at + needed as u64 <= size && cursor > 0 => {
                    // Only cut by the chunk: read on from this batch.
                    break;
                }
                Err(BatchError::Truncated { needed, .. }) if at + needed as u64 <= size => {
                    // One batch larger than a chunk: read exactly that batch.
                    let whole = file.read_at(at, needed).await?;
                    match batch::validate_stored(&whole, usize::MAX) {
                        Ok(header) => {
                            if !visit(at, &header, &whole[..header.size_bytes()]) {
                                return Ok(Some(RecoveredBatch::Valid { position: at }));
                            }
                            cursor += header.size_bytes();
                            break;
                        }
                        Err(error) => return Ok(Some(RecoveredBatch::Invalid { position: at, error })),
                    }
                }
                Err(error) => return Ok(Some(RecoveredBatch::Invalid { position: at, error })),
            }
        }
        if cursor == 0 {
            return Ok(Some(RecoveredBatch::Invalid {
                position,
                error: BatchError::Truncated { needed: LOG_OVERHEAD_BYTES, available: 0 },
            }));
        }
        position += cursor as u64;
    }
    Ok(None)
}

/// Where the run of zero bytes that ends the range `[from, to)` starts: `to` when the last byte is not zero,
/// `from` when the whole range is zeros. Tells pre-written space (crate::prewrite) from a torn batch.
pub(crate) async fn zero_run_start(file: &SegmentFile, from: u64, to: u64) -> Result<u64> {
    let mut end = to;
    while end > from {
        let start = end.saturating_sub(RECOVERY_CHUNK_BYTES as u64).max(from);
        let chunk = file.read_at(start, (end - start) as usize).await?;
        // A short read (the file ends before `to`) leaves the rest counted as zeros, like a hole.
        if let Some(last) = chunk.iter().rposition(|byte| *byte != 0) {
            return Ok(start + last as u64 + 1);
        }
        end = start;
    }
    Ok(from)
}

/// Whether any whole, valid batch starts in `(from, size)`: tells mid-log corruption from a torn tail. Cheap
/// filters (magic byte, sane length) run before the CRC.
pub(crate) async fn any_valid_batch_after(file: &SegmentFile, from: u64, size: u64) -> Result<bool> {
    let mut position = from + 1;
    while position + HEADER_BYTES as u64 <= size {
        let want = RECOVERY_CHUNK_BYTES.min((size - position) as usize);
        let chunk = file.read_at(position, want).await?;
        if chunk.len() < HEADER_BYTES {
            return Ok(false);
        }
        for cursor in 0..=chunk.len() - HEADER_BYTES {
            if chunk[cursor + 16] != 2 {
                continue;
            }
            let Some(header) = batch::peek_header(&chunk[cursor..]) else { continue };
            let total = header.size_bytes();
            let at = position + cursor as u64;
            if header.batch_length.get() < (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 || at + total as u64 > size {
                continue;
            }
            let valid = if cursor + total <= chunk.len() {
                batch::validate_stored(&chunk[cursor..cursor + total], usize::MAX).is_ok()
            } else {
                let whole = file.read_at(at, total).await?;
                batch::validate_stored(&whole, usize::MAX).is_ok()
            };
            if valid {
                return Ok(true);
            }
        }
        // Overlap by a header so a batch straddling the chunk end is not missed.
        position += (chunk.len() - HEADER_BYTES + 1) as u64;
    }
    Ok(false)
}
