//! Framing: cutting whole request frames out of the bytes a connection receives.
//!
//! Runs on the shard that owns the connection. A frame is a 4-byte size and that many bytes; the size is
//! checked against `socket.request.max.bytes` before any byte of the body is buffered. Bytes arrive in a fixed
//! receive buffer of [`READ_CHUNK_BYTES`], allocated once per connection and reused. A frame's body gets an
//! allocation of exactly its declared size, made only when the caller starts the frame
//! ([`FrameBuffer::start_frame`]), which the server does once the shard's request budget has room for it
//! (`budget.rs`). Bytes of a body not yet received are read straight into that allocation, and its pages are
//! touched only as bytes arrive. So a frame's memory is its declared size, counted in the budget before it is
//! allocated, and no body keeps the receive buffer (or another frame) alive. What a frame holds is decoded by
//! the registry (`handlers::decode_frame`).

use bytes::{Bytes, BytesMut};

use crate::error::ConnectionError;

/// Bytes read per receive when no frame body is in progress: the size of the connection's receive buffer.
pub const READ_CHUNK_BYTES: usize = 64 << 10;

const SIZE_BYTES: usize = 4;

/// What a receive takes into the receive buffer right after a frame larger than it.
const AFTER_LARGE_FRAME_READ_BYTES: usize = 4 << 10;

/// The connection's receive buffer and the body of the frame in progress.
pub struct FrameBuffer {
    chunk: Box<[u8]>,
    /// Received bytes not yet taken are `chunk[start..end]`.
    start: usize,
    end: usize,
    /// The frame in progress: its body (capacity exactly its size) and its size.
    body: Option<(BytesMut, usize)>,
    /// Length of the space the last [`FrameBuffer::read_space`] handed out.
    handed_out: usize,
    /// The last frame was larger than the receive buffer.
    after_large_frame: bool,
    limit: usize,
}

impl FrameBuffer {
    pub fn new(limit: usize) -> Self {
        FrameBuffer {
            chunk: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            body: None,
            handed_out: 0,
            after_large_frame: false,
            limit,
        }
    }

    /// The declared size of the next frame, once its 4 size bytes have arrived and no frame is in progress.
    /// A declared size beyond the limit or below zero is an error before anything is buffered for it.
    pub fn next_size(&self) -> Result<Option<usize>, ConnectionError> {
        if self.body.is_some() || self.end - self.start < SIZE_BYTES {
            return Ok(None);
        }
        let at = self.start;
        let declared = i32::from_be_bytes([self.chunk[at], self.chunk[at + 1], self.chunk[at + 2], self.chunk[at + 3]]);
        if declared < 0 || declared as usize > self.limit {
            return Err(ConnectionError::FrameTooLarge { declared: i64::from(declared), limit: self.limit });
        }
        Ok(Some(declared as usize))
    }

    /// Starts the frame whose size [`FrameBuffer::next_size`] returned: allocates its body (exactly `size`
    /// bytes) and moves into it what has already arrived. Call it only once that much memory is accounted for.
    pub fn start_frame(&mut self, size: usize) {
        assert!(self.body.is_none(), "a frame started while another is in progress");
        assert!(self.end - self.start >= SIZE_BYTES, "a frame started before its size arrived");
        self.start += SIZE_BYTES;
        let buffered = (self.end - self.start).min(size);
        let mut body = BytesMut::with_capacity(size);
        body.extend_from_slice(&self.chunk[self.start..self.start + buffered]);
        self.start += buffered;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        self.body = Some((body, size));
    }

    /// The frame in progress (its body), once all of it has arrived.
    pub fn take_frame(&mut self) -> Option<Bytes> {
        match &self.body {
            Some((body, size)) if body.len() == *size => {
                self.after_large_frame = *size > READ_CHUNK_BYTES;
                self.body.take().map(|(body, _)| body.freeze())
            }
            _ => None,
        }
    }

    /// Where the next receive goes: the rest of the frame in progress (never past its end, so a receive never
    /// takes bytes of the next frame into this one's allocation), or else the receive buffer's free space.
    pub fn read_space(&mut self) -> &mut [u8] {
        if let Some((body, size)) = &mut self.body {
            let filled = body.len();
            let next = (*size - filled).min(READ_CHUNK_BYTES);
            // Within the capacity reserved for the frame: no reallocation; zeroes only the pages read next.
            body.resize(filled + next, 0);
            self.handed_out = next;
            return &mut body[filled..];
        }
        if self.start > 0 {
            self.chunk.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        // After a large frame, the next is likely large too: a short read finds its size, and its body is then
        // read straight into its own allocation instead of being copied out of the receive buffer.
        let limit = if self.after_large_frame { AFTER_LARGE_FRAME_READ_BYTES } else { self.chunk.len() };
        let end = (self.end + limit).min(self.chunk.len());
        self.handed_out = end - self.end;
        &mut self.chunk[self.end..end]
    }

    /// Keeps `received` bytes of the space handed out by [`FrameBuffer::read_space`].
    pub fn commit_read(&mut self, received: usize) {
        match &mut self.body {
            Some((body, _)) => {
                assert!(received <= self.handed_out, "a receive longer than the space it was given");
                let before = body.len() - self.handed_out;
                body.truncate(before + received);
            }
            None => {
                assert!(received <= self.handed_out, "a receive longer than the space it was given");
                self.end += received;
            }
        }
        self.handed_out = 0;
    }

    /// The size of the frame in progress (started, not yet whole), if any.
    pub fn frame_in_progress(&self) -> Option<usize> {
        self.body.as_ref().filter(|(body, size)| body.len() < *size).map(|(_, size)| *size)
    }

    /// Bytes received and held: the receive buffer's unread bytes and the body in progress so far.
    pub fn buffered(&self) -> usize {
        self.end - self.start + self.body.as_ref().map_or(0, |(body, _)| body.len())
    }

    /// Memory allocated for the frame in progress (its declared size).
    pub fn body_capacity(&self) -> usize {
        self.body.as_ref().map_or(0, |(body, _)| body.capacity())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn receive(frames: &mut FrameBuffer, bytes: &[u8]) {
        let space = frames.read_space();
        space[..bytes.len()].copy_from_slice(bytes);
        frames.commit_read(bytes.len());
    }

    /// Takes every whole frame that has arrived, starting each as soon as its size is known.
    fn drain(frames: &mut FrameBuffer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            if let Some(frame) = frames.take_frame() {
                out.push(frame.to_vec());
                continue;
            }
            match frames.next_size().unwrap() {
                Some(size) => frames.start_frame(size),
                None => return out,
            }
        }
    }

    #[test]
    fn frames_split_and_oversize_is_refused_before_buffering() {
        let mut frames = FrameBuffer::new(1024);
        receive(&mut frames, &[0, 0, 0, 2, 1, 2, 0, 0, 0, 1]);
        assert_eq!(drain(&mut frames), vec![vec![1, 2]]);
        receive(&mut frames, &[9]);
        assert_eq!(drain(&mut frames), vec![vec![9]]);
        receive(&mut frames, &0x7fff_ffffi32.to_be_bytes());
        assert!(matches!(frames.next_size(), Err(ConnectionError::FrameTooLarge { .. })));
        assert_eq!(frames.body_capacity(), 0);
        let mut frames = FrameBuffer::new(1024);
        receive(&mut frames, &(-1i32).to_be_bytes());
        assert!(matches!(frames.next_size(), Err(ConnectionError::FrameTooLarge { .. })));
    }

    #[test]
    fn nothing_is_allocated_for_a_body_until_the_frame_is_started() {
        let mut frames = FrameBuffer::new(1 << 30);
        receive(&mut frames, &(100_000_000i32).to_be_bytes());
        assert_eq!(frames.next_size().unwrap(), Some(100_000_000));
        assert_eq!(frames.body_capacity(), 0, "a declared size alone allocated a body");
    }

    #[test]
    fn a_large_body_gets_exactly_its_size_and_receives_never_pass_its_end() {
        let size = 3 * READ_CHUNK_BYTES + 17;
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut stream = (size as i32).to_be_bytes().to_vec();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(&[0, 0, 0, 1, 42]);
        let mut frames = FrameBuffer::new(1 << 20);
        // The size and 100 body bytes arrive first; the body is then allocated once, at its declared size.
        receive(&mut frames, &stream[..104]);
        assert!(drain(&mut frames).is_empty());
        assert_eq!(frames.body_capacity(), size);
        let mut sent = 104;
        let mut got = Vec::new();
        while sent < stream.len() {
            let space = frames.read_space();
            assert!(!space.is_empty());
            let n = space.len().min(stream.len() - sent).min(50_000);
            space[..n].copy_from_slice(&stream[sent..sent + n]);
            frames.commit_read(n);
            sent += n;
            if frames.body_capacity() > 0 {
                assert_eq!(frames.body_capacity(), size, "the body was reallocated");
            }
            got.extend(drain(&mut frames));
        }
        assert_eq!(got, vec![body, vec![42]]);
        assert_eq!(frames.buffered(), 0);
    }

    #[test]
    fn a_small_frame_is_copied_out_so_the_receive_buffer_is_reused() {
        let mut frames = FrameBuffer::new(1024);
        let chunk = frames.chunk.as_ptr_range();
        let mut held = Vec::new();
        for round in 0..1000u32 {
            let mut stream = vec![0, 0, 0, 4];
            stream.extend_from_slice(&round.to_be_bytes());
            receive(&mut frames, &stream);
            let frame =
                frames.next_size().unwrap().map(|size| frames.start_frame(size)).and_then(|()| frames.take_frame());
            let frame = frame.unwrap();
            assert_eq!(frame.as_ref(), round.to_be_bytes());
            // Its own allocation of 4 bytes, not a slice that would pin the 64 KiB receive buffer.
            assert!(!chunk.contains(&frame.as_ptr()));
            held.push(frame);
            assert_eq!(frames.chunk.as_ptr_range(), chunk);
        }
    }

    #[test]
    fn after_a_large_frame_a_short_read_finds_the_next_size() {
        let size = READ_CHUNK_BYTES + 1;
        let mut frames = FrameBuffer::new(1 << 20);
        receive(&mut frames, &(size as i32).to_be_bytes());
        assert!(drain(&mut frames).is_empty());
        while frames.take_frame().is_none() {
            let space = frames.read_space();
            let n = space.len();
            frames.commit_read(n);
        }
        // The next large frame's body is not taken into the receive buffer, to be copied out of it.
        assert!(frames.read_space().len() <= AFTER_LARGE_FRAME_READ_BYTES);
        frames.commit_read(0);
        // A small frame brings the full receive buffer back.
        receive(&mut frames, &[0, 0, 0, 1, 5]);
        assert_eq!(drain(&mut frames), vec![vec![5]]);
        assert_eq!(frames.read_space().len(), READ_CHUNK_BYTES);
    }
}
