//! Responses as a list of chunks, and how they reach the socket.
//!
//! A chunk is either bytes built in memory (headers, small responses) or a [`FileSlice`] of a segment, sent
//! with `sendfile(2)` straight from the page cache: stored record bytes never pass through user space.
//! glommio has no sendfile, so it is called on the socket's raw fd, which is non-blocking. When the socket
//! buffer is full, the next byte of the slice is sent through glommio's own write, which waits for the socket
//! to drain; sendfile then resumes. That costs one 1-byte copy per full buffer, not per slice.
//!
//! `sendfile` of data that is not in the page cache reads it from the disk on the calling thread: 12 ms for
//! a cold MiB against 0.5 ms warm (`perf/RESULTS.md`), during which the shard serves nothing. So a slice is
//! first probed with `preadv2(RWF_NOWAIT)`, one byte every [`PROBE_STRIDE_BYTES`] and its last byte (a
//! microsecond each when cached); a slice found cold is read into the page cache on the shard's blocking
//! thread (glommio's `spawn_blocking`) before it is sent, so the reactor never waits for the disk on a fetch.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use bytes::Bytes;
use futures::AsyncWriteExt;
use sluice_engine::FileSlice;

pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Bytes(bytes) => bytes.len(),
            Chunk::File(slice) => slice.len as usize,
        }
    }
}

/// What a request produced.
pub enum Response {
    /// `acks=0` produce: nothing is sent.
    None,
    /// A whole frame, size prefix included.
    Frame(Bytes),
    /// A frame made of chunks; the first chunk starts with a 4-byte size placeholder.
    Chunks(Vec<Chunk>),
}

impl Response {
    /// Fills the size placeholder at the start of the first chunk.
    pub fn with_size_prefix(mut chunks: Vec<Chunk>) -> Response {
        let total: usize = chunks.iter().map(Chunk::len).sum();
        if let Some(Chunk::Bytes(first)) = chunks.first_mut() {
            if first.len() >= 4 {
                let mut owned = first.to_vec();
                owned[..4].copy_from_slice(&((total - 4) as i32).to_be_bytes());
                *first = Bytes::from(owned);
            }
        }
        Response::Chunks(chunks)
    }

    pub fn len(&self) -> usize {
        match self {
            Response::None => 0,
            Response::Frame(bytes) => bytes.len(),
            Response::Chunks(chunks) => chunks.iter().map(Chunk::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes a response to the connection.
pub async fn send<S>(stream: &mut S, response: Response) -> io::Result<()>
where
    S: futures::AsyncWrite + AsRawFd + Unpin,
{
    match response {
        Response::None => Ok(()),
        Response::Frame(bytes) => stream.write_all(&bytes).await,
        Response::Chunks(chunks) => {
            for chunk in chunks {
                match chunk {
                    Chunk::Bytes(bytes) => stream.write_all(&bytes).await?,
                    Chunk::File(slice) => send_file(stream, &slice).await?,
                }
            }
            Ok(())
        }
    }
}

async fn send_file<S>(stream: &mut S, slice: &FileSlice) -> io::Result<()>
where
    S: futures::AsyncWrite + AsRawFd + Unpin,
{
    if !is_cached(&slice.file, slice.position, slice.len) {
        let (file, position, len) = (slice.file.clone(), slice.position, slice.len);
        glommio::executor().spawn_blocking(move || read_into_page_cache(&file, position, len)).await?;
    }
    let socket = stream.as_raw_fd();
    let file = slice.file.as_raw_fd();
    let mut offset = slice.position as i64;
    let end = slice.position as i64 + i64::from(slice.len);
    while offset < end {
        let remaining = (end - offset) as usize;
        match sendfile(socket, file, &mut offset, remaining) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment file is shorter than its slice"))
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Socket full: send one byte through glommio, which waits until the socket is writable.
                let mut byte = [0u8; 1];
                let read = slice.file.as_ref();
                let n = std::os::unix::fs::FileExt::read_at(read, &mut byte, offset as u64)?;
                if n != 1 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment file is shorter than its slice"));
                }
                stream.write_all(&byte).await?;
                offset += 1;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Distance between the bytes [`is_cached`] probes: the kernel's default readahead window, the unit in
/// which a sequentially read file enters (and, mostly, leaves) the page cache.
pub const PROBE_STRIDE_BYTES: u64 = 128 << 10;

/// Whether `len` bytes of `file` from `position` are in the page cache, as far as one byte every
/// [`PROBE_STRIDE_BYTES`] and the last byte tell: `preadv2` with `RWF_NOWAIT` reads only cached data and
/// fails with `EAGAIN` instead of going to the disk. A probe that fails otherwise counts as cached, so
/// `sendfile` meets (and reports) the error itself.
pub fn is_cached(file: &File, position: u64, len: u32) -> bool {
    if len == 0 {
        return true;
    }
    let last = position + u64::from(len) - 1;
    let mut at = position;
    loop {
        let mut byte = 0u8;
        let iov = libc::iovec { iov_base: std::ptr::addr_of_mut!(byte).cast(), iov_len: 1 };
        // SAFETY: the fd is open (borrowed `file`), and `iov` points to one valid byte for the call.
        let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at as libc::off_t, libc::RWF_NOWAIT) };
        if read < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
            return false;
        }
        if at == last {
            return true;
        }
        at = (at + PROBE_STRIDE_BYTES).min(last);
    }
}

/// Reads a slice once so that it is in the page cache; a blocking call, for the blocking thread.
fn read_into_page_cache(file: &File, position: u64, len: u32) -> io::Result<()> {
    let mut buf = vec![0u8; (PROBE_STRIDE_BYTES as usize).min(len as usize)];
    let end = position + u64::from(len);
    let mut at = position;
    while at < end {
        let want = buf.len().min((end - at) as usize);
        match std::os::unix::fs::FileExt::read_at(file, &mut buf[..want], at) {
            Ok(0) => return Ok(()), // shorter than the slice: sendfile reports it
            Ok(n) => at += n as u64,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn sendfile(socket: RawFd, file: RawFd, offset: &mut i64, count: usize) -> io::Result<usize> {
    // SAFETY: both fds are open for the duration of the call (the stream and the slice's Arc<File> are
    // borrowed), and `offset` points to a valid i64.
    let sent = unsafe { libc::sendfile(socket, file, offset, count) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Puts a socket in non-blocking mode, so `sendfile` never blocks the shard.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn drop_from_page_cache(file: &File) {
        file.sync_all().unwrap();
        // SAFETY: fadvise on an open fd, integer arguments only.
        let advised = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(advised, 0);
    }

    /// A 1 MiB file on disk, opened afresh with readahead off (`POSIX_FADV_RANDOM`), so that a probe's own
    /// read of an uncached page brings in that page only and not the rest of the file behind it.
    fn written_file(dir: &tempfile::TempDir, name: &str) -> File {
        let path = dir.path().join(name);
        let mut file = File::create(&path).unwrap();
        file.write_all(&vec![7u8; 1 << 20]).unwrap();
        drop_from_page_cache(&file);
        let file = File::open(&path).unwrap();
        // SAFETY: fadvise on an open fd, integer arguments only.
        let advised = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        assert_eq!(advised, 0);
        file
    }

    /// Drops the file from the page cache and probes the slice, until the probe sees it cold or a second has
    /// passed: the kernel keeps a page that something holds for a moment (writeback finishing, a read still in
    /// flight), so a failed attempt waits a little for that to end before it asks again.
    fn seen_cold(file: &File, position: u64, len: u32) -> bool {
        (0..50).any(|attempt| {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            drop_from_page_cache(file);
            !is_cached(file, position, len)
        })
    }

    #[test]
    fn a_slice_out_of_the_page_cache_is_seen_cold_and_read_back_in() {
        // (On disk: a tmpfs keeps every page in memory, and nothing could be cold there.)
        let dir = tempfile::tempdir().unwrap();
        let whole = written_file(&dir, "whole.log");
        assert!(seen_cold(&whole, 0, 1 << 20), "a file dropped from the page cache counted as cached");
        let inner = written_file(&dir, "inner.log");
        assert!(seen_cold(&inner, 300 << 10, 4096), "a slice inside the dropped range counted as cached");
        read_into_page_cache(&inner, 0, 1 << 20).unwrap();
        assert!(is_cached(&inner, 0, 1 << 20));
        assert!(is_cached(&inner, 0, 0));
    }
}
