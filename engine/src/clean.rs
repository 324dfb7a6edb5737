//! The pure half of log compaction (`cleanup.policy=compact`): the offset map the cleaner builds from a log's
//! dirty records, the rule that decides which records stay, and the rewriting of one batch with only those
//! records. The I/O half, which walks segments, writes cleaned segments and swaps them in, is
//! `log/clean.rs`.
//!
//! Batches keep their base offset, last offset delta, timestamps and producer fields; only records go, so
//! offsets never change and consumers skip the gaps. A compressed batch is decompressed (capped), filtered and
//! compressed again with its own codec. A batch whose records all stay is copied byte for byte.

use std::collections::HashMap;

use zerocopy::IntoBytes;

use crate::batch::{self, Compression, RecordBatchHeader, CRC_START, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::checkpoint;
use crate::codec;
use crate::error::BatchError;
use crate::types::Offset;

/// Bytes one offset-map entry costs: a 128-bit key hash, an offset, and the hash table's own overhead
/// (control byte and spare capacity), rounded up.
pub const OFFSET_MAP_ENTRY_BYTES: usize = 32;

/// A 128-bit hash of a record key. Two keys colliding would let one key's record replace the other's, so the
/// hash is as wide as Kafka's (MD5); xxh3 is much faster.
pub fn key_hash(key: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key)
}

/// The latest offset of every key in the dirty part of a log, bounded in entries by the dedupe buffer
/// (`log.cleaner.dedupe.buffer.size`). Kafka's `SkimpyOffsetMap`, as a hash map of key hashes.
#[derive(Debug)]
pub struct OffsetMap {
    latest: HashMap<u128, i64>,
    capacity: usize,
}

impl OffsetMap {
    /// A map for at most `buffer_bytes` of entries (at least one).
    pub fn with_buffer_bytes(buffer_bytes: usize) -> OffsetMap {
        OffsetMap { latest: HashMap::new(), capacity: (buffer_bytes / OFFSET_MAP_ENTRY_BYTES).max(1) }
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Whether `new_keys` more keys fit.
    pub fn has_room_for(&self, new_keys: usize) -> bool {
        self.latest.len() + new_keys <= self.capacity
    }

    /// Records `offset` as the latest for `hash`. The caller checks room first ([`OffsetMap::has_room_for`]).
    pub fn put(&mut self, hash: u128, offset: i64) {
        let entry = self.latest.entry(hash).or_insert(offset);
        *entry = (*entry).max(offset);
    }

    pub fn contains(&self, hash: u128) -> bool {
        self.latest.contains_key(&hash)
    }

    pub fn get(&self, hash: u128) -> Option<i64> {
        self.latest.get(&hash).copied()
    }
}

/// One record of a batch's records section, with its encoded bytes (length prefix included) so that a kept
/// record is copied exactly as it was.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    /// A null value: a tombstone.
    pub is_tombstone: bool,
    pub encoded: &'a [u8],
}

/// Splits an (uncompressed) records section into its records; `None` when they do not parse or do not fill
/// it exactly.
pub fn raw_records(records: &[u8]) -> Option<Vec<RawRecord<'_>>> {
    let mut out = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let (length, prefix) = batch::read_varlong(&records[position..])?;
        let body_start = position + prefix;
        let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
        let body = records.get(body_start..body_end)?;
        let mut at = 1; // attributes
        let (_timestamp_delta, n) = batch::read_varlong(body.get(at..)?)?;
        at += n;
        let (offset_delta, n) = batch::read_varlong(body.get(at..)?)?;
        at += n;
        let (key_length, n) = batch::read_varlong(body.get(at..)?)?;
        at += n;
        let key = if key_length < 0 {
            None
        } else {
            let end = at.checked_add(usize::try_from(key_length).ok()?)?;
            let key = body.get(at..end)?;
            at = end;
            Some(key)
        };
        let (value_length, _) = batch::read_varlong(body.get(at..)?)?;
        out.push(RawRecord {
            offset_delta,
            key,
            is_tombstone: value_length < 0,
            encoded: &records[position..body_end],
        });
        position = body_end;
    }
    Some(out)
}

/// The records section of `batch` (a validated batch), decompressed to at most `max_bytes`.
pub fn records_section(batch: &[u8], header: &RecordBatchHeader, max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let body = batch
        .get(HEADER_BYTES..header.size_bytes())
        .ok_or(BatchError::Truncated { needed: header.size_bytes(), available: batch.len() })?;
    let codec = header.compression().ok_or(BatchError::Invalid { reason: "unknown compression codec" })?;
    codec::decompress(codec, body, max_bytes)
}

/// Calls `visit(offset, key)` for every record of a data batch (control batches have no user records).
pub fn for_each_record(
    batch: &[u8],
    max_bytes: usize,
    mut visit: impl FnMut(i64, Option<&[u8]>, bool),
) -> Result<(), BatchError> {
    let header = batch::peek_header(batch).ok_or(BatchError::Truncated { needed: HEADER_BYTES, available: 0 })?;
    if header.is_control() {
        return Ok(());
    }
    let section = records_section(batch, &header, max_bytes)?;
    let records = raw_records(&section).ok_or(BatchError::Invalid { reason: "records do not parse" })?;
    for record in records {
        visit(header.base_offset() + record.offset_delta, record.key, record.is_tombstone);
    }
    Ok(())
}

/// The records of a data batch that have no key, which a compacted topic refuses, as Kafka does: how many there
/// are, and the indexes in the batch (from 0) of the first `limit` of them. Compressed batches are decompressed
/// (to at most `max_bytes`) to see.
pub fn keyless_records(batch: &[u8], max_bytes: usize, limit: usize) -> Result<(usize, Vec<u32>), BatchError> {
    let mut count = 0usize;
    let mut indexes = Vec::new();
    let mut index = 0u32;
    for_each_record(batch, max_bytes, |_, key, _| {
        if key.is_none() {
            count += 1;
            if indexes.len() < limit {
                indexes.push(index);
            }
        }
        index = index.saturating_add(1);
    })?;
    Ok((count, indexes))
}

/// What filtering did to one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays: copy the batch as it is.
    Unchanged,
    /// Some records stay: the rebuilt batch.
    Rebuilt(Vec<u8>),
    /// No record stays, but the batch's producer metadata must (the producer's last batch): the batch with an
    /// empty records section, as Kafka keeps it.
    EmptyKept(Vec<u8>),
    /// No record stays: the batch goes.
    Removed,
}

/// Filters a validated data batch, keeping the records for which `keep(offset, key, is_tombstone)` says so.
/// `keep_empty` says whether an emptied batch keeps its header (idempotent producer state). Decompression is
/// capped at `max_bytes`.
pub fn filter_batch(
    batch: &[u8],
    max_bytes: usize,
    keep_empty: bool,
    mut keep: impl FnMut(i64, Option<&[u8]>, bool) -> bool,
) -> Result<Filtered, BatchError> {
    let header = batch::peek_header(batch).ok_or(BatchError::Truncated { needed: HEADER_BYTES, available: 0 })?;
    if header.is_control() {
        return Ok(Filtered::Unchanged);
    }
    let section = records_section(batch, &header, max_bytes)?;
    let records = raw_records(&section).ok_or(BatchError::Invalid { reason: "records do not parse" })?;
    let kept: Vec<&RawRecord<'_>> = records
        .iter()
        .filter(|record| keep(header.base_offset() + record.offset_delta, record.key, record.is_tombstone))
        .collect();
    if kept.len() == records.len() {
        return Ok(Filtered::Unchanged);
    }
    if kept.is_empty() && !keep_empty {
        return Ok(Filtered::Removed);
    }
    let mut plain = Vec::with_capacity(kept.iter().map(|r| r.encoded.len()).sum());
    for record in &kept {
        plain.extend_from_slice(record.encoded);
    }
    let codec = header.compression().unwrap_or(Compression::None);
    let mut out = Vec::with_capacity(HEADER_BYTES + plain.len());
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    if !plain.is_empty() {
        codec::compress(codec, &plain, &mut out);
    }
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| BatchError::TooLarge { size_bytes: out.len(), max_bytes: i32::MAX as usize })?;
    let mut rebuilt = header;
    if kept.is_empty() {
        // An empty records section is not a valid stream of any codec: an empty batch is uncompressed, as
        // Kafka writes it.
        rebuilt.attributes.set(header.attributes.get() & !batch::ATTR_COMPRESSION_MASK);
    }
    rebuilt.batch_length.set(batch_length);
    rebuilt.records_count.set(kept.len() as i32);
    out[..HEADER_BYTES].copy_from_slice(rebuilt.as_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(if kept.is_empty() { Filtered::EmptyKept(out) } else { Filtered::Rebuilt(out) })
}

/// `cleaner-checkpoint`: the clean point, then one row per pass (where it ended, when it ran).
pub const CLEANER_CHECKPOINT: &str = "cleaner-checkpoint";
/// Passes remembered for tombstone ages; older ones merge into their successors (which only keeps
/// tombstones longer).
const PASSES_KEPT: usize = 64;
/// The steps of a group's swap, where a test stops a pass as a crash would ([`inject_crash_at`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanStep {
    /// The `.cleaned` file is written and synced; nothing is committed.
    CleanedWritten,
    /// `.cleaned` became `.swap`: the commit point.
    SwapCommitted,
    /// The group's first old segment is renamed to `.deleted`, the others not yet.
    FirstOldRenamed,
    /// Every old segment is `.deleted` and the `.swap` is the `.log`.
    SwapRenamed,
    /// Every group is swapped in; the cleaner checkpoint still has the old clean point.
    AllSwapped,
}

thread_local! {
    static CRASH_AT: std::cell::Cell<Option<CleanStep>> = const { std::cell::Cell::new(None) };
}

/// Makes passes on this thread stop at `step` with an error, leaving the files as a crash there would (tests
/// only; `None` turns it off).
#[doc(hidden)]
pub fn inject_crash_at(step: Option<CleanStep>) {
    CRASH_AT.with(|at| at.set(step));
}

pub(crate) fn crash_point(step: CleanStep) -> crate::error::Result<()> {
    match CRASH_AT.with(std::cell::Cell::get) {
        Some(at) if at == step => Err(crate::error::EngineError::InvalidRequest(format!("injected crash at {step:?}"))),
        _ => Ok(()),
    }
}

/// Where a log stands for cleaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleanable {
    /// The clean point: everything below it has been cleaned at least once.
    pub first_dirty: Offset,
    /// The first offset no pass may clean yet.
    pub first_uncleanable: Offset,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
    /// dirty ÷ (clean + dirty).
    pub dirty_ratio: f64,
    /// `max.compaction.lag.ms` says the log must be cleaned whatever its dirty ratio.
    pub overdue: bool,
    /// A tombstone in the clean part has outlived `delete.retention.ms`: a pass removes it even with nothing
    /// dirty (as Kafka does since KIP-534).
    pub tombstones_due: bool,
}

impl Cleanable {
    /// Whether a pass is due under `min.cleanable.dirty.ratio`.
    pub fn due(&self, min_ratio: f64) -> bool {
        self.overdue || self.tombstones_due || (self.dirty_bytes > 0 && self.dirty_ratio >= min_ratio)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub map_entries: usize,
    /// The clean point after the pass.
    pub clean_point: Offset,
    /// The pass stopped before the whole group was swapped (retention or a truncation changed the segments);
    /// the next pass starts again.
    pub aborted: bool,
}

/// The state the cleaner keeps per log: the clean point and the recent passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerCheckpoint {
    pub clean_point: Offset,
    /// When the oldest tombstone kept in the clean part may go (`i64::MAX`: none kept).
    pub tombstone_expiry: i64,
    /// (end offset, time) of recent passes, oldest first.
    pub passes: Vec<(Offset, i64)>,
}

impl Default for CleanerCheckpoint {
    fn default() -> Self {
        CleanerCheckpoint { clean_point: Offset::ZERO, tombstone_expiry: i64::MAX, passes: Vec::new() }
    }
}

impl CleanerCheckpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut rows = vec![vec![self.clean_point.0, self.tombstone_expiry]];
        rows.extend(self.passes.iter().map(|(end, at)| vec![end.0, *at]));
        checkpoint::encode("cleaner", &rows)
    }

    pub fn decode(bytes: &[u8]) -> Option<CleanerCheckpoint> {
        let rows = checkpoint::decode("cleaner", bytes)?;
        let (first, rest) = rows.split_first()?;
        let (clean_point, tombstone_expiry) = match first.as_slice() {
            [offset, expiry] => (Offset(*offset), *expiry),
            _ => return None,
        };
        let mut passes = Vec::with_capacity(rest.len());
        for row in rest {
            match row.as_slice() {
                [end, at] => passes.push((Offset(*end), *at)),
                _ => return None,
            }
        }
        Some(CleanerCheckpoint { clean_point, tombstone_expiry, passes })
    }

    /// When the cleaner first reached `offset` (the first pass that ended past it), if one did.
    pub fn first_cleaned_at(&self, offset: i64) -> Option<i64> {
        self.passes.iter().find(|(end, _)| end.0 > offset).map(|(_, at)| *at)
    }

    /// Adds a pass ending at `end` at time `now`, forgetting passes whose successor is already older than
    /// `delete_retention_ms` (nothing they decide changes) and merging the oldest past [`PASSES_KEPT`].
    pub(crate) fn record_pass(&mut self, end: Offset, now: i64, delete_retention_ms: i64) {
        self.clean_point = end;
        self.passes.push((end, now));
        let expired = |at: i64| now.saturating_sub(at) > delete_retention_ms;
        while self.passes.len() >= 2 && expired(self.passes[1].1) {
            self.passes.remove(0);
        }
        while self.passes.len() > PASSES_KEPT {
            self.passes.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::batch::{BatchBuilder, RecordSpec};

    fn batch_of(records: &[(Option<&str>, Option<&str>)], codec: Compression) -> Vec<u8> {
        let mut builder = BatchBuilder::new().producer(7, 0, 0);
        for (i, (key, value)) in records.iter().enumerate() {
            builder.push(&RecordSpec {
                key: key.map(str::as_bytes),
                value: value.map(str::as_bytes),
                headers: &[],
                timestamp_ms: 1000 + i as i64,
            });
        }
        let mut plain = builder.finish();
        batch::stamp_offset_and_epoch(&mut plain, 100, 3);
        if codec == Compression::None {
            return plain;
        }
        let mut out = Vec::new();
        codec::recompress(&plain, codec, 1 << 20, &mut out).unwrap();
        out
    }

    fn keys_and_offsets(batch: &[u8]) -> Vec<(i64, Option<Vec<u8>>, bool)> {
        let mut seen = Vec::new();
        for_each_record(batch, 1 << 20, |offset, key, tombstone| {
            seen.push((offset, key.map(<[u8]>::to_vec), tombstone))
        })
        .unwrap();
        seen
    }

    #[test]
    fn filtering_keeps_offsets_headers_and_codec() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let batch = batch_of(&[(Some("a"), Some("1")), (Some("b"), Some("2")), (Some("a"), None)], codec);
            let Filtered::Rebuilt(out) = filter_batch(&batch, 1 << 20, false, |offset, _, _| offset != 100).unwrap()
            else {
                panic!("expected a rebuilt batch")
            };
            let header = batch::validate_stored(&out, usize::MAX).unwrap();
            assert_eq!(header.base_offset(), 100);
            assert_eq!(header.last_offset(), 102, "the last offset delta stays");
            assert_eq!(header.records_count.get(), 2);
            assert_eq!(header.compression(), Some(codec));
            assert_eq!(header.producer_id.get(), 7);
            assert_eq!(header.partition_leader_epoch.get(), 3);
            assert_eq!(
                keys_and_offsets(&out),
                vec![(101, Some(b"b".to_vec()), false), (102, Some(b"a".to_vec()), true)]
            );
        }
    }

    #[test]
    fn unchanged_removed_and_empty_kept() {
        let batch = batch_of(&[(Some("a"), Some("1"))], Compression::None);
        assert_eq!(filter_batch(&batch, 1 << 20, false, |_, _, _| true).unwrap(), Filtered::Unchanged);
        assert_eq!(filter_batch(&batch, 1 << 20, false, |_, _, _| false).unwrap(), Filtered::Removed);
        let Filtered::EmptyKept(empty) = filter_batch(&batch, 1 << 20, true, |_, _, _| false).unwrap() else {
            panic!("expected an empty batch")
        };
        let header = batch::validate_stored(&empty, usize::MAX).unwrap();
        assert_eq!((header.records_count.get(), header.last_offset(), empty.len()), (0, 100, HEADER_BYTES));
        let zstd = batch_of(&[(Some("a"), Some("1"))], Compression::Zstd);
        let Filtered::EmptyKept(empty) = filter_batch(&zstd, 1 << 20, true, |_, _, _| false).unwrap() else {
            panic!("expected an empty batch")
        };
        assert_eq!(batch::validate_stored(&empty, usize::MAX).unwrap().compression(), Some(Compression::None));
    }

    #[test]
    fn keyless_records_are_seen() {
        assert_eq!(
            keyless_records(&batch_of(&[(Some("a"), Some("1"))], Compression::Lz4), 1 << 20, 10).unwrap(),
            (0, vec![])
        );
        let mixed =
            batch_of(&[(Some("a"), None), (None, Some("v")), (Some("b"), Some("w")), (None, None)], Compression::Zstd);
        assert_eq!(keyless_records(&mixed, 1 << 20, 10).unwrap(), (2, vec![1, 3]));
        // Past the limit they are counted, not listed.
        assert_eq!(keyless_records(&mixed, 1 << 20, 1).unwrap(), (2, vec![1]));
    }

    #[test]
    fn the_offset_map_keeps_the_latest_offset_and_its_bound() {
        let mut map = OffsetMap::with_buffer_bytes(2 * OFFSET_MAP_ENTRY_BYTES);
        map.put(key_hash(b"a"), 5);
        map.put(key_hash(b"a"), 3);
        assert_eq!(map.get(key_hash(b"a")), Some(5));
        assert!(map.has_room_for(1));
        map.put(key_hash(b"b"), 1);
        assert!(!map.has_room_for(1));
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
    }
}
