//! Sparse offset and time indexes of one segment, in Kafka's on-disk layout. They live in memory while the
//! segment is open and are written out when a segment rolls and at clean shutdown, after the data they cover
//! was fsynced. After a crash the recovery scan rebuilds them from the recovery point on, trusting the entries
//! before it only when the files hold together and the batch at the last trusted entry is the one it names; a
//! missing or inconsistent index file is never trusted.
//!
//! `.index`: entries of (relative offset u32, file position u32), big-endian, one per `index.interval.bytes`.
//! `.timeindex`: entries of (timestamp i64, relative offset u32), added when the segment's max timestamp
//! grows, at most once per index interval.

/// Bytes per offset-index entry on disk.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per time-index entry on disk.
pub const TIME_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

#[derive(Debug, Default, Clone)]
pub struct SegmentIndex {
    pub offsets: Vec<OffsetEntry>,
    pub times: Vec<TimeEntry>,
}

impl SegmentIndex {
    /// The last entry at or below `relative_offset`: where a scan for that offset starts.
    pub fn floor_by_offset(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let after = self.offsets.partition_point(|e| e.relative_offset <= relative_offset);
        after.checked_sub(1).map(|i| self.offsets[i])
    }

    /// The last entry at or below a file position: a batch boundary to scan forward from.
    pub fn floor_by_position(&self, position: u32) -> Option<OffsetEntry> {
        let after = self.offsets.partition_point(|e| e.position <= position);
        after.checked_sub(1).map(|i| self.offsets[i])
    }

    /// The last time entry whose timestamp is below `timestamp_ms`: no earlier batch can hold a match.
    pub fn floor_by_time(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let after = self.times.partition_point(|e| e.timestamp_ms < timestamp_ms);
        after.checked_sub(1).map(|i| self.times[i])
    }

    pub fn push_offset(&mut self, relative_offset: u32, position: u32) {
        if let Some(last) = self.offsets.last() {
            assert!(
                last.relative_offset < relative_offset && last.position < position,
                "offset index entries must increase"
            );
        }
        self.offsets.push(OffsetEntry { relative_offset, position });
    }

    pub fn maybe_push_time(&mut self, timestamp_ms: i64, relative_offset: u32) {
        if self.times.last().is_none_or(|last| timestamp_ms > last.timestamp_ms) {
            self.times.push(TimeEntry { timestamp_ms, relative_offset });
        }
    }

    /// Drops entries at or past `relative_offset` (truncation).
    pub fn truncate_from(&mut self, relative_offset: u32) {
        self.offsets.retain(|e| e.relative_offset < relative_offset);
        self.times.retain(|e| e.relative_offset < relative_offset);
    }

    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for e in &self.times {
            out.extend_from_slice(&e.timestamp_ms.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Decodes both files and checks them against the segment: entries strictly increasing and inside
    /// `log_bytes`. `None` means "rebuild from the log".
    pub fn decode(offset_bytes: &[u8], time_bytes: &[u8], log_bytes: u64) -> Option<SegmentIndex> {
        if !offset_bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) || !time_bytes.len().is_multiple_of(TIME_ENTRY_BYTES)
        {
            return None;
        }
        let mut index = SegmentIndex::default();
        for chunk in offset_bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let relative_offset = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            if u64::from(position) >= log_bytes.max(1) {
                return None;
            }
            if let Some(last) = index.offsets.last() {
                if last.relative_offset >= relative_offset || last.position >= position {
                    return None;
                }
            }
            index.offsets.push(OffsetEntry { relative_offset, position });
        }
        for chunk in time_bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let timestamp_ms = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let relative_offset = u32::from_be_bytes(chunk[8..12].try_into().ok()?);
            if let Some(last) = index.times.last() {
                if last.timestamp_ms >= timestamp_ms {
                    return None;
                }
            }
            index.times.push(TimeEntry { timestamp_ms, relative_offset });
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lookups_find_the_floor() {
        let mut index = SegmentIndex::default();
        index.push_offset(0, 0);
        index.push_offset(10, 4096);
        index.push_offset(20, 8192);
        assert_eq!(index.floor_by_offset(15).unwrap().position, 4096);
        assert_eq!(index.floor_by_offset(20).unwrap().position, 8192);
        assert_eq!(index.floor_by_position(8191).unwrap().relative_offset, 10);
        index.maybe_push_time(100, 0);
        index.maybe_push_time(50, 5);
        index.maybe_push_time(200, 10);
        assert_eq!(index.times.len(), 2);
        assert_eq!(index.floor_by_time(150).unwrap().relative_offset, 0);
        assert!(index.floor_by_time(100).is_none());
    }

    #[test]
    fn decode_rejects_inconsistent_files() {
        let mut index = SegmentIndex::default();
        index.push_offset(0, 0);
        index.push_offset(10, 4096);
        let bytes = index.encode_offsets();
        assert!(SegmentIndex::decode(&bytes, &[], 5000).is_some());
        assert!(SegmentIndex::decode(&bytes, &[], 4000).is_none(), "entry past the log end");
        assert!(SegmentIndex::decode(&bytes[..7], &[], 5000).is_none(), "partial entry");
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(SegmentIndex::decode(&swapped, &[], 5000).is_none(), "not increasing");
    }

    #[test]
    fn docs_format_index_examples() {
        // The examples drawn in docs/format.md.
        let mut index = SegmentIndex::default();
        index.push_offset(0, 0);
        index.push_offset(37, 4158);
        index.maybe_push_time(1_718_000_000_000, 37);
        assert_eq!(index.encode_offsets(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, 0, 0, 0x10, 0x3e]);
        assert_eq!(index.encode_times(), [0, 0, 0x01, 0x90, 0, 0xc7, 0x9c, 0, 0, 0, 0, 0x25]);
    }
}
