//! Reads: whole batches as file slices for zero-copy sends, the offset for a timestamp (ListOffsets) and the
//! end of a leader epoch (OffsetForLeaderEpoch). Reads take no lock and never see past the log end.

use std::rc::Rc;
use std::sync::Arc;

use super::{FileSlice, PartitionLog};
use crate::batch::{self};
use crate::error::{EngineError, Result};
use crate::segment::{self, ScanControl, Segment};
use crate::types::{LeaderEpoch, Offset};

impl PartitionLog {
    /// Returns whole batches starting with the one that holds `start`, up to `max_bytes` (the first batch is
    /// returned whole even if larger, so consumers progress), and only batches wholly below `upper_bound`
    /// (the high watermark or last stable offset). Reads stay within one segment, as Kafka's do.
    pub async fn read(&self, start: Offset, max_bytes: usize, upper_bound: Offset) -> Result<Option<FileSlice>> {
        let log_start = self.log_start.get();
        let log_end = self.log_end_offset();
        if start < log_start || start > log_end {
            return Err(EngineError::OffsetOutOfRange { partition: self.name(), offset: start, log_start, log_end });
        }
        let upper = upper_bound.min(log_end);
        if start >= upper {
            return Ok(None);
        }
        // The segment holding `start`, or the first after it with a batch at or past it: compaction can leave
        // a segment with no batch past some offset below its end, or with no batch at all.
        let mut found = None;
        let mut retries = 0;
        let mut next = {
            let segments = self.segments.borrow();
            segments.range(..=start).next_back().or_else(|| segments.range(start..).next()).map(|(_, s)| s.clone())
        };
        while let Some(segment) = next.take() {
            if segment.base >= upper {
                break;
            }
            let after = |segment: &Segment| {
                let segments = self.segments.borrow();
                segments.range(Offset(segment.base.0 + 1)..).next().map(|(_, s)| s.clone())
            };
            if segment.next_offset() <= start {
                next = after(&segment);
                continue;
            }
            let file = match self.segment_file(&segment).await {
                Ok(file) => file,
                // A cleaner swap or retention replaced it while this read waited: look again.
                Err(_) if segment.retired.get() && retries < 3 => {
                    retries += 1;
                    let segments = self.segments.borrow();
                    next = segments.range(..=start).next_back().map(|(_, s)| s.clone());
                    continue;
                }
                Err(error) => return Err(error),
            };
            if let Some((position, first)) = segment.locate(&file, start).await? {
                found = Some((segment, file, position, first));
                break;
            }
            next = after(&segment);
        }
        let Some((segment, file, position, first)) = found else { return Ok(None) };
        if first.last_offset() >= upper.0 {
            return Ok(None);
        }
        let segment_size = segment.size_bytes();
        let upper_position = if upper >= segment.next_offset() {
            segment_size
        } else {
            match segment.locate(&file, upper).await? {
                Some((p, _)) => p,
                None => segment_size,
            }
        };
        let first_end = position + first.size_bytes() as u64;
        let limit = upper_position.min(position.saturating_add(max_bytes as u64).max(first_end));
        let end = if limit == upper_position || limit == first_end {
            limit
        } else {
            segment.last_boundary_before(&file, first_end, limit).await?
        };
        Ok(Some(FileSlice {
            file: file.shared().clone(),
            position,
            len: (end - position) as u32,
            first_offset: Offset(first.base_offset()),
        }))
    }

    /// The longest prefix of `slice` (an answer of [`PartitionLog::read`] on this log) that holds whole batches
    /// and at most `max_bytes`: how a fetch fits a partition into what is left of its request-wide limit
    /// (KIP-74). `None` when the slice's first batch alone is longer, or when the slice's segment is no
    /// longer the one open here (retention or truncation replaced it); the fetcher then asks again.
    pub async fn slice_prefix(&self, slice: &FileSlice, max_bytes: usize) -> Result<Option<FileSlice>> {
        if slice.len as usize <= max_bytes {
            return Ok(Some(slice.clone()));
        }
        let segment = {
            let segments = self.segments.borrow();
            segments.range(..=slice.first_offset).next_back().map(|(_, s)| s.clone())
        };
        let Some(segment) = segment else { return Ok(None) };
        let file = self.segment_file(&segment).await?;
        if !Arc::ptr_eq(file.shared(), &slice.file) {
            return Ok(None);
        }
        let limit = slice.position + max_bytes as u64;
        let end = segment.last_boundary_before(&file, slice.position, limit).await?;
        assert!(end <= slice.position + u64::from(slice.len), "a prefix of a slice ends inside it");
        if end == slice.position {
            return Ok(None);
        }
        Ok(Some(FileSlice { len: (end - slice.position) as u32, ..slice.clone() }))
    }

    /// Reads a slice's bytes into memory. For tests, tools and the recovery of small ranges; the fetch path
    /// sends slices with zero copy instead.
    pub async fn read_bytes(&self, start: Offset, max_bytes: usize, upper_bound: Offset) -> Result<Vec<u8>> {
        let Some(slice) = self.read(start, max_bytes, upper_bound).await? else { return Ok(Vec::new()) };
        let mut out = vec![0u8; slice.len as usize];
        let file = slice.file.clone();
        let position = slice.position;
        let result = glommio::executor()
            .spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut out, position).map(|_| out)
            })
            .await;
        result.map_err(|e| EngineError::io("read slice", self.dir.clone(), e))
    }

    /// The earliest offset whose record timestamp is at least `timestamp_ms`, and that timestamp, among
    /// offsets below `upper_bound`. Kafka's ListOffsets by timestamp. Compressed batches are not decoded, so
    /// inside one the answer is the batch's base offset and max timestamp.
    pub async fn offset_for_timestamp(&self, timestamp_ms: i64, upper_bound: Offset) -> Result<Option<(Offset, i64)>> {
        let segments: Vec<Rc<Segment>> = self.segments.borrow().values().cloned().collect();
        for segment in segments {
            if segment.max_timestamp_ms() < timestamp_ms {
                continue;
            }
            let file = self.segment_file(&segment).await?;
            let start_position = {
                let state = segment.state.borrow();
                let index = state.index.as_ref();
                let relative = index.and_then(|i| i.floor_by_time(timestamp_ms)).map(|e| e.relative_offset);
                relative.and_then(|r| index.and_then(|i| i.floor_by_offset(r))).map_or(0, |e| u64::from(e.position))
            };
            let mut found = None;
            segment::scan_headers(&file, start_position, segment.size_bytes(), |position, header| {
                if header.max_timestamp.get() >= timestamp_ms {
                    found = Some((position, *header));
                    ScanControl::Stop
                } else {
                    ScanControl::Continue
                }
            })
            .await?;
            let Some((position, header)) = found else { continue };
            if header.last_offset() >= upper_bound.0 {
                return Ok(None);
            }
            let bytes = file.read_at(position, header.size_bytes()).await?;
            let (offset, timestamp) = batch::first_offset_at_or_after(&bytes, timestamp_ms)
                .unwrap_or((header.base_offset(), header.max_timestamp.get()));
            let offset = Offset(offset).max(self.log_start.get());
            return Ok(Some((offset, timestamp)));
        }
        Ok(None)
    }

    /// The first offset holding the largest record timestamp of the log, and that timestamp, if it is below
    /// `upper_bound`: Kafka's ListOffsets with MAX_TIMESTAMP (-3, KIP-734). No record has a larger timestamp,
    /// so the first record at or after it is the first one with it; inside a compressed batch (not decoded,
    /// see [`Log::offset_for_timestamp`]) the answer is the batch's base offset.
    pub async fn offset_of_max_timestamp(&self, upper_bound: Offset) -> Result<Option<(Offset, i64)>> {
        let max_timestamp_ms = self.segments.borrow().values().map(|s| s.max_timestamp_ms()).max().unwrap_or(-1);
        if max_timestamp_ms < 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(max_timestamp_ms, upper_bound).await
    }

    /// Kafka's OffsetForLeaderEpoch: the largest epoch at or below `epoch` and where it ends in this log.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> (LeaderEpoch, Offset) {
        self.epochs.borrow().end_offset_for(epoch, self.log_end_offset())
    }
}
