//! Kafka RecordBatch v2: the on-disk and on-wire unit. The header is described by a `zerocopy` struct, never
//! by hand-indexed bytes. Runs on the owner shard of a partition (validation, offset stamping) and in recovery.
//!
//! Layout (big-endian), DESIGN.md §3:
//! ```text
//! 0  baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 | 17 crc u32
//! 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64
//! 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records...
//! ```
//! `batchLength` counts the bytes after itself; the CRC-32C covers `attributes` to the end. `baseOffset` and
//! `partitionLeaderEpoch` lie outside the CRC, so the leader may stamp them without re-checksumming.

use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::BatchError;

/// Bytes of the fixed batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before the part that `batchLength` counts: baseOffset and batchLength.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Byte where the CRC-covered region starts (the attributes field).
pub const CRC_START: usize = 21;
/// The smallest possible encoded record: a one-byte length and six one-byte fields.
pub const MIN_RECORD_BYTES: usize = 7;

pub(crate) const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct RecordBatchHeader {
    pub base_offset: I64,
    pub batch_length: I32,
    pub partition_leader_epoch: I32,
    pub magic: i8,
    pub crc: U32,
    pub attributes: I16,
    pub last_offset_delta: I32,
    pub base_timestamp: I64,
    pub max_timestamp: I64,
    pub producer_id: I64,
    pub producer_epoch: I16,
    pub base_sequence: I32,
    pub records_count: I32,
}

const _: () = assert!(std::mem::size_of::<RecordBatchHeader>() == HEADER_BYTES);

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl RecordBatchHeader {
    /// Bytes the whole batch occupies, header included.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.get().max(0) as usize
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset.get()
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset.get() + i64::from(self.last_offset_delta.get())
    }

    /// The batch's record count field (0 when negative: validation refuses such a batch).
    pub fn record_count(&self) -> u32 {
        u32::try_from(self.records_count.get()).unwrap_or(0)
    }

    pub fn compression(&self) -> Option<Compression> {
        match self.attributes.get() & ATTR_COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes.get() & ATTR_LOG_APPEND_TIME != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes.get() & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes.get() & ATTR_CONTROL != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id.get() >= 0
    }

    /// The sequence number of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence.get();
        let delta = self.last_offset_delta.get();
        if base > i32::MAX - delta {
            delta - (i32::MAX - base) - 1
        } else {
            base + delta
        }
    }
}

/// Reads the header at the start of `buf` without validating anything but its presence.
pub fn peek_header(buf: &[u8]) -> Option<RecordBatchHeader> {
    let bytes = buf.get(..HEADER_BYTES)?;
    RecordBatchHeader::read_from_bytes(bytes).ok()
}

/// Validates the batch at the start of `buf` and returns its header. Checks, in order: the header is present,
/// `batchLength` is sane and the bytes are all there, magic is 2, the size fits `max_bytes`, the CRC-32C
/// matches, the codec is known, and the record count agrees with the offset delta and fits the bytes.
pub fn validate(buf: &[u8], max_bytes: usize) -> Result<RecordBatchHeader, BatchError> {
    validate_as(buf, max_bytes, false)
}

/// [`validate`] for batches already in a log, or copied from a leader's: compaction removes records but keeps
/// a batch's offsets, so a batch may hold fewer records than its offset delta spans, or none (Kafka keeps an
/// emptied batch for its producer state).
pub fn validate_stored(buf: &[u8], max_bytes: usize) -> Result<RecordBatchHeader, BatchError> {
    validate_as(buf, max_bytes, true)
}

fn validate_as(buf: &[u8], max_bytes: usize, compacted: bool) -> Result<RecordBatchHeader, BatchError> {
    let header = peek_header(buf).ok_or(BatchError::Truncated { needed: HEADER_BYTES, available: buf.len() })?;
    let batch_length = header.batch_length.get();
    if batch_length < (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchError::InvalidLength { batch_length });
    }
    let size_bytes = header.size_bytes();
    if size_bytes > buf.len() {
        return Err(BatchError::Truncated { needed: size_bytes, available: buf.len() });
    }
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic { magic: header.magic });
    }
    if size_bytes > max_bytes {
        return Err(BatchError::TooLarge { size_bytes, max_bytes });
    }
    let computed = crc32c::crc32c(&buf[CRC_START..size_bytes]);
    let stored = header.crc.get();
    if computed != stored {
        return Err(BatchError::CrcMismatch { stored, computed });
    }
    let codec = header.compression().ok_or(BatchError::Invalid { reason: "unknown compression codec" })?;
    let count = header.records_count.get();
    let spanned = i64::from(header.last_offset_delta.get()) + 1;
    if compacted {
        if count < 0 || i64::from(count) > spanned || spanned < 1 {
            return Err(BatchError::Invalid { reason: "record count disagrees with lastOffsetDelta" });
        }
    } else {
        if count <= 0 {
            return Err(BatchError::Invalid { reason: "batch has no records" });
        }
        if spanned != i64::from(count) {
            return Err(BatchError::Invalid { reason: "record count disagrees with lastOffsetDelta" });
        }
    }
    let records_bytes = size_bytes - HEADER_BYTES;
    if codec == Compression::None && (count as usize).saturating_mul(MIN_RECORD_BYTES) > records_bytes {
        return Err(BatchError::Invalid { reason: "record count does not fit the batch" });
    }
    if header.has_producer_id() && (header.producer_epoch.get() < 0 || header.base_sequence.get() < 0) {
        return Err(BatchError::Invalid { reason: "idempotent batch without epoch or sequence" });
    }
    if header.is_transactional() && !header.has_producer_id() {
        return Err(BatchError::Invalid { reason: "transactional batch without a producer id" });
    }
    Ok(header)
}

/// Rewrites `baseOffset` and `partitionLeaderEpoch` in place. Both lie outside the CRC. `batch` is a batch
/// that passed [`validate`], so it holds a whole header.
pub fn stamp_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(
        batch.len() >= HEADER_BYTES,
        "stamping {} bytes, fewer than a batch header: only validated batches are stamped",
        batch.len()
    );
    // The header type is unaligned, so with the length asserted the conversion cannot fail.
    if let Ok((header, _)) = RecordBatchHeader::mut_from_prefix(batch) {
        header.base_offset.set(base_offset);
        header.partition_leader_epoch.set(leader_epoch);
    }
}

/// Marks the batch as LogAppendTime with `max_timestamp = now_ms` and recomputes the CRC, as Kafka does for
/// topics with `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(
        batch.len() >= HEADER_BYTES,
        "rewriting {} bytes, fewer than a batch header: only validated batches are",
        batch.len()
    );
    // The header type is unaligned, so with the length asserted the conversion cannot fail.
    let mut size_bytes = 0;
    if let Ok((header, _)) = RecordBatchHeader::mut_from_prefix(batch) {
        header.attributes.set(header.attributes.get() | ATTR_LOG_APPEND_TIME);
        header.max_timestamp.set(now_ms);
        size_bytes = header.size_bytes();
    }
    assert!(size_bytes <= batch.len(), "batch length was validated before the rewrite");
    let crc = crc32c::crc32c(&batch[CRC_START..size_bytes]);
    let header = RecordBatchHeader::mut_from_prefix(batch).map(|(h, _)| h);
    if let Ok(header) = header {
        header.crc.set(crc);
    }
}

/// Reads a zigzag varint (Kafka's record fields); returns the value and the bytes it took.
pub fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in buf.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), i + 1));
        }
    }
    None
}

/// Appends a zigzag varint.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// For an uncompressed batch, the offset and timestamp of the first record whose timestamp is at least
/// `target_ms`. Returns `None` when no record qualifies or the records do not parse. Compressed batches are not
/// decoded here (reads never decompress), so callers fall back to the batch's base offset for them.
pub fn first_offset_at_or_after(batch: &[u8], target_ms: i64) -> Option<(i64, i64)> {
    let header = peek_header(batch)?;
    if header.is_log_append_time() {
        let timestamp = header.max_timestamp.get();
        return (timestamp >= target_ms).then(|| (header.base_offset(), timestamp));
    }
    if header.compression() != Some(Compression::None) {
        return None;
    }
    let end = header.size_bytes().min(batch.len());
    let mut pos = HEADER_BYTES;
    for _ in 0..header.records_count.get() {
        let (length, n) = read_varlong(batch.get(pos..end)?)?;
        let body_start = pos + n;
        let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
        let body = batch.get(body_start..body_end.min(end))?;
        // attributes i8, then timestampDelta varlong, then offsetDelta varint.
        let (timestamp_delta, t) = read_varlong(body.get(1..)?)?;
        let (offset_delta, _) = read_varlong(body.get(1 + t..)?)?;
        let timestamp = header.base_timestamp.get() + timestamp_delta;
        if timestamp >= target_ms {
            return Some((header.base_offset() + offset_delta, timestamp));
        }
        pos = body_end;
    }
    None
}

/// One record of an uncompressed batch, borrowed from the batch bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Parses the records of one uncompressed batch (`batch` starts at its header). Returns `None` for a
/// compressed batch or records that do not parse; every length is checked against the bytes present.
pub fn records(batch: &[u8]) -> Option<Vec<RecordView<'_>>> {
    let header = peek_header(batch)?;
    if header.compression() != Some(Compression::None) {
        return None;
    }
    let end = header.size_bytes().min(batch.len());
    let batch = batch.get(..end)?;
    let mut pos = HEADER_BYTES;
    let count = usize::try_from(header.records_count.get()).ok()?;
    // Reserve no more records than the batch's bytes can hold, whatever the count says.
    let mut out = Vec::with_capacity(count.min(batch.len() / MIN_RECORD_BYTES));
    fn bytes_field<'b>(buf: &'b [u8], pos: &mut usize) -> Option<Option<&'b [u8]>> {
        let (len, n) = read_varlong(buf.get(*pos..)?)?;
        *pos += n;
        if len < 0 {
            return Some(None);
        }
        let field_end = pos.checked_add(usize::try_from(len).ok()?)?;
        let field = buf.get(*pos..field_end)?;
        *pos = field_end;
        Some(Some(field))
    }
    for _ in 0..count {
        let (length, n) = read_varlong(batch.get(pos..)?)?;
        let body_start = pos + n;
        let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
        let body = batch.get(body_start..body_end)?;
        let mut at = 1; // attributes i8
        let (timestamp_delta, t) = read_varlong(body.get(at..)?)?;
        at += t;
        let (offset_delta, o) = read_varlong(body.get(at..)?)?;
        at += o;
        let key = bytes_field(body, &mut at)?;
        let value = bytes_field(body, &mut at)?;
        let (header_count, h) = read_varlong(body.get(at..)?)?;
        at += h;
        let header_count = usize::try_from(header_count).ok()?;
        // A header takes at least 2 bytes (key and value lengths).
        let mut headers = Vec::with_capacity(header_count.min(body.len() / 2));
        for _ in 0..header_count {
            let name = bytes_field(body, &mut at)??;
            let value = bytes_field(body, &mut at)?;
            headers.push((name, value));
        }
        // Deltas are whatever the bytes say: a sum past i64 is a record that does not parse, not a panic.
        let timestamp_ms = if header.is_log_append_time() {
            header.max_timestamp.get()
        } else {
            header.base_timestamp.get().checked_add(timestamp_delta)?
        };
        let offset = header.base_offset().checked_add(offset_delta)?;
        out.push(RecordView { offset, timestamp_ms, key, value, headers });
        pos = body_end;
    }
    Some(out)
}

/// Splits a buffer of whole batches into the batches' byte ranges (stops at the first incomplete one).
pub fn split_batches(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(header) = buf.get(pos..).and_then(peek_header) {
        let size = header.size_bytes();
        match buf.get(pos..pos + size) {
            Some(batch) if size >= HEADER_BYTES => out.push(batch),
            _ => break,
        }
        pos += size;
    }
    out
}

/// One record to encode with [`BatchBuilder`].
pub struct RecordSpec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    pub timestamp_ms: i64,
}

/// Encodes an uncompressed RecordBatch v2, as a producer does. Used by tests, benches and the load generator
/// (which pre-encodes batches so that it costs little per record).
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::with_capacity(4096)
    }

    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_BYTES));
        buf.resize(HEADER_BYTES, 0);
        BatchBuilder {
            buf,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        }
    }

    /// Makes the batch idempotent: producer id, epoch and the first record's sequence number.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self) -> Self {
        self.transactional = true;
        self
    }

    pub fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn count(&self) -> i32 {
        self.count
    }

    pub fn push(&mut self, record: &RecordSpec<'_>) {
        if self.count == 0 {
            self.base_timestamp = record.timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(record.timestamp_ms);
        let mut body = Vec::with_capacity(32 + record.value.map_or(0, <[u8]>::len));
        body.push(0); // record attributes
        write_varlong(&mut body, record.timestamp_ms - self.base_timestamp);
        write_varlong(&mut body, i64::from(self.count));
        for field in [record.key, record.value] {
            match field {
                Some(bytes) => {
                    write_varlong(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => write_varlong(&mut body, -1),
            }
        }
        write_varlong(&mut body, record.headers.len() as i64);
        for (name, value) in record.headers {
            write_varlong(&mut body, name.len() as i64);
            body.extend_from_slice(name.as_bytes());
            match value {
                Some(bytes) => {
                    write_varlong(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => write_varlong(&mut body, -1),
            }
        }
        write_varlong(&mut self.buf, body.len() as i64);
        self.buf.extend_from_slice(&body);
        self.count += 1;
    }

    /// Finishes the header and the CRC. The base offset is 0 and the leader epoch -1, as a producer sends.
    pub fn finish(mut self) -> Vec<u8> {
        assert!(self.count > 0, "a record batch needs at least one record");
        let mut attributes = 0i16;
        if self.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        let header = RecordBatchHeader {
            base_offset: I64::new(0),
            batch_length: I32::new((self.buf.len() - LOG_OVERHEAD_BYTES) as i32),
            partition_leader_epoch: I32::new(-1),
            magic: 2,
            crc: U32::new(0),
            attributes: I16::new(attributes),
            last_offset_delta: I32::new(self.count - 1),
            base_timestamp: I64::new(self.base_timestamp),
            max_timestamp: I64::new(self.max_timestamp),
            producer_id: I64::new(self.producer_id),
            producer_epoch: I16::new(self.producer_epoch),
            base_sequence: I32::new(self.base_sequence),
            records_count: I32::new(self.count),
        };
        self.buf[..HEADER_BYTES].copy_from_slice(header.as_bytes());
        let crc = crc32c::crc32c(&self.buf[CRC_START..]);
        self.buf[17..21].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a batch of `count` records of `value_bytes` each, with keys `key-<i>` and timestamps from
/// `first_timestamp_ms` one millisecond apart. A convenience for tests and benches.
pub fn simple_batch(count: usize, value_bytes: usize, first_timestamp_ms: i64) -> Vec<u8> {
    let value = vec![b'v'; value_bytes];
    let mut builder = BatchBuilder::with_capacity(count * (value_bytes + 16) + HEADER_BYTES);
    for i in 0..count {
        let key = format!("key-{i}");
        builder.push(&RecordSpec {
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
            timestamp_ms: first_timestamp_ms + i as i64,
        });
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_parse_back_what_the_builder_wrote() {
        let mut builder = BatchBuilder::new();
        builder.push(&RecordSpec {
            key: Some(b"k"),
            value: Some(b"v1"),
            headers: &[("h", Some(b"x"))],
            timestamp_ms: 10,
        });
        builder.push(&RecordSpec { key: None, value: None, headers: &[], timestamp_ms: 12 });
        let mut batch = builder.finish();
        stamp_offset_and_epoch(&mut batch, 100, 0);
        let parsed = records(&batch).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].offset, 100);
        assert_eq!(parsed[0].key, Some(&b"k"[..]));
        assert_eq!(parsed[0].headers, vec![(&b"h"[..], Some(&b"x"[..]))]);
        assert_eq!(parsed[1].offset, 101);
        assert_eq!(parsed[1].timestamp_ms, 12);
        assert_eq!(parsed[1].value, None);
        let two = [batch.clone(), batch.clone()].concat();
        assert_eq!(split_batches(&two).len(), 2);
        assert_eq!(split_batches(&two[..two.len() - 1]).len(), 1);
        for cut in 0..batch.len() {
            let _ = records(&batch[..cut]);
        }
    }

    #[test]
    fn built_batch_validates_and_stamps_without_breaking_the_crc() {
        let mut batch = simple_batch(10, 100, 1_000);
        let header = validate(&batch, usize::MAX).unwrap();
        assert_eq!(header.records_count.get(), 10);
        assert_eq!(header.max_timestamp.get(), 1_009);
        stamp_offset_and_epoch(&mut batch, 42, 7);
        let header = validate(&batch, usize::MAX).unwrap();
        assert_eq!(header.base_offset(), 42);
        assert_eq!(header.last_offset(), 51);
        assert_eq!(header.partition_leader_epoch.get(), 7);
    }

    #[test]
    fn every_flipped_bit_in_the_crc_region_is_caught() {
        let batch = simple_batch(3, 20, 5);
        for byte in CRC_START..batch.len() {
            let mut copy = batch.clone();
            copy[byte] ^= 0x10;
            assert!(validate(&copy, usize::MAX).is_err(), "flip at byte {byte} passed");
        }
    }

    #[test]
    fn rejections_are_typed() {
        let batch = simple_batch(2, 10, 0);
        assert!(matches!(validate(&batch[..30], usize::MAX), Err(BatchError::Truncated { .. })));
        assert!(matches!(validate(&batch[..batch.len() - 1], usize::MAX), Err(BatchError::Truncated { .. })));
        assert!(matches!(validate(&batch, 50), Err(BatchError::TooLarge { .. })));
        let mut magic = batch.clone();
        magic[16] = 1;
        assert!(matches!(validate(&magic, usize::MAX), Err(BatchError::UnsupportedMagic { magic: 1 })));
        let mut length = batch.clone();
        length[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(validate(&length, usize::MAX), Err(BatchError::InvalidLength { .. })));
    }

    #[test]
    fn log_append_time_rewrites_max_timestamp_and_crc() {
        let mut batch = simple_batch(2, 10, 100);
        set_log_append_time(&mut batch, 9_999);
        let header = validate(&batch, usize::MAX).unwrap();
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp.get(), 9_999);
    }

    #[test]
    fn timestamp_search_walks_uncompressed_records() {
        let mut batch = simple_batch(10, 10, 1_000);
        stamp_offset_and_epoch(&mut batch, 100, 0);
        assert_eq!(first_offset_at_or_after(&batch, 0), Some((100, 1_000)));
        assert_eq!(first_offset_at_or_after(&batch, 1_004), Some((104, 1_004)));
        assert_eq!(first_offset_at_or_after(&batch, 1_010), None);
    }

    #[test]
    fn varlong_round_trips() {
        for value in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            assert_eq!(read_varlong(&out), Some((value, out.len())));
        }
        assert_eq!(read_varlong(&[0xff; 11]), None);
    }

    #[test]
    fn last_sequence_wraps() {
        let mut batch = BatchBuilder::new().producer(1, 0, i32::MAX - 1);
        for _ in 0..4 {
            batch.push(&RecordSpec { key: None, value: Some(b"x"), headers: &[], timestamp_ms: 0 });
        }
        let header = validate(&batch.finish(), usize::MAX).unwrap();
        assert_eq!(header.last_sequence(), 1);
    }
}
