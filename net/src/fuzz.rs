//! Fuzz target body for request decoding, shared by `fuzz/fuzz_targets/request_decoding.rs` (cargo-fuzz)
//! and the regression test `net/tests/request_decoding_corpus.rs`, so the corpus is re-checked on every test
//! run. The input is both a frame body (header and request) and a byte stream cut into frames.

use bytes::Bytes;

use crate::framing::FrameBuffer;
use crate::handlers::decode_frame;

/// Frame-size limit used by the target: small, so oversized declarations are exercised.
const LIMIT_BYTES: usize = 1 << 20;

pub fn request_decoding(data: &[u8]) {
    let _ = decode_frame(Bytes::copy_from_slice(data));
    let mut frames = FrameBuffer::new(LIMIT_BYTES);
    let mut rest = data;
    while !rest.is_empty() {
        let space = frames.read_space();
        let n = space.len().min(rest.len()).min(4096);
        space[..n].copy_from_slice(&rest[..n]);
        frames.commit_read(n);
        rest = &rest[n..];
        loop {
            if let Some(frame) = frames.take_frame() {
                let _ = decode_frame(frame);
                continue;
            }
            match frames.next_size() {
                // The server reserves the size from the shard's budget here, then starts the frame.
                Ok(Some(size)) => frames.start_frame(size),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(frames.buffered() <= data.len(), "buffered more than was received");
    }
}
