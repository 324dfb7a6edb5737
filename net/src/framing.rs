//! Framing: cutting whole request frames out of the bytes a connection receives.
//!
//! Runs on the shard that owns the connection. A frame is a 4-byte size and that many bytes; the size is
//! checked against `socket.request.max.bytes` before any byte of the body is buffered, and the buffer grows only
//! as bytes arrive, so a declared size never drives an allocation. What a frame holds is decoded by the
//! registry (`handlers::decode_frame`).

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ConnectionError;

/// The connection's receive buffer: whole frames are split off as zero-copy `Bytes`.
pub struct FrameBuffer {
    buf: BytesMut,
    limit: usize,
}

/// Bytes read per receive when no frame size is known yet.
pub const READ_CHUNK_BYTES: usize = 64 << 10;

impl FrameBuffer {
    pub fn new(limit: usize) -> Self {
        FrameBuffer { buf: BytesMut::with_capacity(READ_CHUNK_BYTES), limit }
    }

    /// The next whole frame (body only), if one has arrived. A declared size beyond the limit or below zero
    /// is an error before anything is buffered for it.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let declared = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if declared < 0 || declared as usize > self.limit {
            return Err(ConnectionError::FrameTooLarge { declared: i64::from(declared), limit: self.limit });
        }
        let size = declared as usize;
        if self.buf.len() < 4 + size {
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// Makes room for the next receive and returns the writable tail. It grows by at most
    /// [`READ_CHUNK_BYTES`] beyond what has been received, whatever size a frame declares.
    pub fn read_space(&mut self) -> &mut [u8] {
        let filled = self.buf.len();
        self.buf.resize(filled + READ_CHUNK_BYTES, 0);
        &mut self.buf[filled..]
    }

    /// Keeps `received` bytes of the space handed out by [`FrameBuffer::read_space`].
    pub fn commit_read(&mut self, received: usize) {
        let keep = self.buf.len() - READ_CHUNK_BYTES + received;
        self.buf.truncate(keep);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_split_and_oversize_is_refused_before_buffering() {
        let mut frames = FrameBuffer::new(1024);
        let space = frames.read_space();
        space[..10].copy_from_slice(&[0, 0, 0, 2, 1, 2, 0, 0, 0, 1]);
        frames.commit_read(10);
        assert_eq!(frames.next_frame().unwrap().unwrap().as_ref(), &[1, 2]);
        assert!(frames.next_frame().unwrap().is_none());
        let space = frames.read_space();
        space[0] = 9;
        frames.commit_read(1);
        assert_eq!(frames.next_frame().unwrap().unwrap().as_ref(), &[9]);
        let space = frames.read_space();
        space[..4].copy_from_slice(&0x7fff_ffffi32.to_be_bytes());
        frames.commit_read(4);
        assert!(matches!(frames.next_frame(), Err(ConnectionError::FrameTooLarge { .. })));
        assert!(frames.capacity() < 1 << 20);
    }
}
