//! Fuzz target bodies, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz) and the regression tests in `net/tests/`
//! (`request_decoding_corpus.rs`, `coordinator_replay_corpus.rs`), so the corpora are re-checked on every test
//! run. Each function must never panic on any input.

use bytes::Bytes;
use sluice_engine::batch::{self, CRC_START, HEADER_BYTES};
use sluice_engine::Offset;

use crate::framing::FrameBuffer;
use crate::groups::Replayed;
use crate::handlers::decode_frame;

/// Frame-size limit used by the target: small, so oversized declarations are exercised.
const LIMIT_BYTES: usize = 1 << 20;

/// Request decoding: the input is both a frame body (header and request) and a byte stream cut into frames.
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

/// The group coordinator's replay of a `__consumer_offsets` partition (`groups/store.rs`) on arbitrary bytes.
/// The input is replayed as it is (so CRC and framing failures are exercised), then with every batch's CRC made
/// right (so records and their JSON are). A replay either fails, or moves past where it started; and what a
/// successful replay holds, written back as the coordinator writes it, reads back the same.
pub fn coordinator_replay(data: &[u8]) {
    let _ = Replayed::default().replay_batches(data, Offset(0));
    let fixed = with_valid_crcs(data);
    let mut replayed = Replayed::default();
    let Ok(next) = replayed.replay_batches(&fixed, Offset(0)) else { return };
    assert!(next > Offset(0), "a successful replay moved from offset 0 to {next}");
    let Some(live) = replayed.live_state_batch(0) else { return };
    let mut again = Replayed::default();
    if let Err(error) = again.replay_batches(&live, Offset(0)) {
        panic!("the coordinator cannot read back the live state it writes: {error}");
    }
    assert_eq!(again.groups(), replayed.groups(), "the live state did not read back the same");
}

/// `data` with the CRC of each whole batch at its start recomputed.
fn with_valid_crcs(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut position = 0usize;
    while let Some(header) = out.get(position..).and_then(batch::peek_header) {
        let size = header.size_bytes();
        let Some(end) = position.checked_add(size) else { break };
        if size < HEADER_BYTES || end > out.len() {
            break;
        }
        let crc = crc32c::crc32c(&out[position + CRC_START..end]);
        out[position + CRC_START - 4..position + CRC_START].copy_from_slice(&crc.to_be_bytes());
        position = end;
    }
    out
}
