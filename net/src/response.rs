//! Responses as a list of chunks, and how they reach the socket.
//!
//! A chunk is either bytes built in memory (headers, small responses) or a [`FileSlice`] of a segment, sent
//! with `sendfile(2)` straight from the page cache: stored record bytes never pass through user space.
//! glommio has no sendfile, so it is called on the socket's raw fd, which is non-blocking. When the socket
//! buffer is full, the next byte of the slice is sent through glommio's own write, which waits for the socket
//! to drain; sendfile then resumes. That costs one 1-byte copy per full buffer, not per slice.

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
