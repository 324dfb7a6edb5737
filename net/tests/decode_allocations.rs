//! Byte-level checks that a count read from the wire never sizes an allocation beyond what the received bytes
//! could decode to: arrays in the vendored codec, the Produce parser, record batches (codec and engine).
//!
//! A counting global allocator records the largest single allocation made on the current thread while a
//! frame is decoded. A declared count of `i32::MAX` must be refused cleanly, and the largest allocation must stay
//! within (bytes received / the element's minimum encoded size) elements: before the caps, the codec reserved one
//! element per byte left (48 to 112 bytes of memory per byte received), and a record batch reserved the count
//! its header declared.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_net::handlers::decode_frame;
use sluice_net::handlers::produce::{ProduceRequestView, TopicRecords};
use sluice_net::wire::Reader;

struct Counting;

thread_local! {
    static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    let _ = LARGEST_BYTES.try_with(|largest| largest.set(largest.get().max(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; only sizes are noted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation `work` makes on this thread.
fn largest_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_BYTES.with(|largest| largest.set(0));
    let out = work();
    (out, LARGEST_BYTES.with(Cell::get))
}

const FRAME_BYTES: usize = 1 << 20;
const SLACK_BYTES: usize = 64 << 10;

/// A request frame body: header v1 (or v2 when `flexible`), then `body`, padded with `fill` to `total` bytes.
fn request(api_key: i16, version: i16, flexible: bool, body: &[u8], fill: u8, total: usize) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(api_key);
    out.put_i16(version);
    out.put_i32(7);
    out.put_i16(4);
    out.put_slice(b"test");
    if flexible {
        out.put_u8(0);
    }
    out.put_slice(body);
    while out.len() < total {
        out.put_u8(fill);
    }
    out.freeze()
}

/// `i32::MAX + 1` as an unsigned varint: a compact array of `i32::MAX` elements.
const COMPACT_I32_MAX: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x08];

#[test]
fn a_small_frame_declaring_i32_max_elements_is_refused_cleanly() {
    // CreateTopics v2 (i32 array length) and v5 (compact), each in a 64-byte frame.
    for (version, flexible, count) in [(2, false, i32::MAX.to_be_bytes().to_vec()), (5, true, COMPACT_I32_MAX.to_vec())]
    {
        let frame = request(19, version, flexible, &count, 0xff, 64);
        let (decoded, largest) = largest_allocation(|| decode_frame(frame));
        let error = decoded.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("malformed request"), "v{version}: {error}");
        assert!(largest < SLACK_BYTES, "v{version}: a 64-byte frame allocated {largest} bytes at once");
    }
}

/// CreateTopics' array of `CreatableTopic`: a large struct (~100 bytes) whose smallest encoding is 16 bytes
/// in v2 (name, partitions, replication factor, two empty arrays) and 7 in v5 (compact, tagged fields).
#[test]
fn codec_arrays_reserve_no_more_elements_than_the_bytes_left_can_hold() {
    let element = std::mem::size_of::<kafka_protocol::messages::create_topics_request::CreatableTopic>();
    for (version, flexible, count, min_bytes) in
        [(2, false, i32::MAX.to_be_bytes().to_vec(), 16), (5, true, COMPACT_I32_MAX.to_vec(), 7)]
    {
        let frame = request(19, version, flexible, &count, 0xff, FRAME_BYTES);
        let (decoded, largest) = largest_allocation(|| decode_frame(frame));
        assert!(decoded.is_err(), "v{version}: garbage decoded");
        let bound = FRAME_BYTES / min_bytes * element + SLACK_BYTES;
        assert!(
            largest <= bound,
            "v{version}: {largest} bytes allocated at once for a {FRAME_BYTES}-byte frame (bound {bound}: \
             {min_bytes} bytes per {element}-byte element)"
        );
    }
}

#[test]
fn the_produce_parser_reserves_no_more_topics_or_partitions_than_the_bytes_can_hold() {
    let topic = std::mem::size_of::<TopicRecords>();
    let partition = std::mem::size_of::<(i32, Option<Bytes>)>();
    // v3: transactional id null, acks, timeout, then i32::MAX topics of at least 6 bytes each.
    let mut v3 = vec![0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30];
    v3.extend_from_slice(&i32::MAX.to_be_bytes());
    // v9: the same, compact, topics of at least 3 bytes.
    let mut v9 = vec![0, 0, 1, 0, 0, 0x75, 0x30];
    v9.extend_from_slice(&COMPACT_I32_MAX);
    // v3 again, with one topic "t" declaring i32::MAX partitions of at least 8 bytes each.
    let mut partitions = vec![0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 1, 0, 1, b't'];
    partitions.extend_from_slice(&i32::MAX.to_be_bytes());
    for (name, version, body, bound) in [
        ("topics v3", 3, v3, FRAME_BYTES / 6 * topic),
        ("topics v9", 9, v9, FRAME_BYTES / 3 * topic),
        ("partitions v3", 3, partitions, FRAME_BYTES / 8 * partition),
    ] {
        let mut padded = body;
        padded.resize(FRAME_BYTES, 0xff);
        let (parsed, largest) =
            largest_allocation(|| ProduceRequestView::parse(Reader::new(Bytes::from(padded)), version));
        assert!(parsed.is_err(), "{name}: garbage parsed");
        assert!(largest <= bound + SLACK_BYTES, "{name}: {largest} bytes allocated at once (bound {bound})");
    }
}

/// A v2 record batch with `count` records declared and `records` as its records, CRC-32C correct.
fn batch(count: i32, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i64(0); // base offset
    out.put_i32((49 + records.len()) as i32); // batch length
    out.put_i32(0); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, below
    out.put_i16(0); // attributes: no compression
    out.put_i32(count.saturating_sub(1)); // last offset delta
    out.put_i64(0); // first timestamp
    out.put_i64(0); // max timestamp
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(count);
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn a_record_batch_declaring_i32_max_records_reserves_by_its_bytes() {
    let records = vec![0u8; 64 << 10];
    let batch = batch(i32::MAX, &records);
    // The codec (the CLI's consumer decodes fetched batches with it): before the cap this reserved
    // i32::MAX records, hundreds of gigabytes, and the allocation failure aborted the process.
    let record = std::mem::size_of::<kafka_protocol::records::Record>();
    let (decoded, largest) = largest_allocation(|| {
        kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(batch.clone()))
            .map(|set| set.records.len())
    });
    assert!(decoded.is_err(), "a batch short of its declared records decoded: {decoded:?}");
    let bound = records.len() / 7 * record + SLACK_BYTES;
    assert!(largest <= bound, "codec: {largest} bytes allocated at once (bound {bound})");
    // The engine's record view (the group coordinator's replay reads batches with it).
    let view = std::mem::size_of::<sluice_engine::batch::RecordView<'static>>();
    let (parsed, largest) = largest_allocation(|| sluice_engine::batch::records(&batch).map(|r| r.len()));
    assert!(parsed.is_none(), "a batch short of its declared records parsed: {parsed:?}");
    let bound = batch.len() / sluice_engine::batch::MIN_RECORD_BYTES * view + SLACK_BYTES;
    assert!(largest <= bound, "engine: {largest} bytes allocated at once (bound {bound})");
}
