//! The unsynced part of one file: the extents written since its last fsync and its pending size, kept in
//! memory until an fsync writes them to the backing file, or a power loss drops them.
//!
//! Invariants: extents never overlap and never reach past `size`; `backing_valid_below <= size` and
//! `backing_valid_below <= backing_size`. The file as the mount shows it is: the backing file's bytes below
//! `backing_valid_below`, zeros from there to `size`, and the extents over both.

use std::collections::BTreeMap;
use std::io;

#[derive(Debug)]
pub struct Overlay {
    /// Written ranges by start offset, not yet in the backing file.
    extents: BTreeMap<u64, Vec<u8>>,
    /// The file's size as the mount shows it.
    size: u64,
    /// The backing file's size when this overlay began (it does not change until the overlay is written).
    backing_size: u64,
    /// A truncate since the last sync cut the file here: backing bytes at or past it are no longer the file's.
    backing_valid_below: u64,
}

/// What an fsync must do to the backing file, in this order.
#[derive(Debug, PartialEq, Eq)]
pub struct FlushPlan<'a> {
    /// Cut the backing file to this size first (a truncate that was never synced).
    pub cut_to: Option<u64>,
    /// Then write these extents.
    pub extents: Vec<(u64, &'a [u8])>,
    /// Then set the backing file to this size.
    pub size: u64,
}

impl Overlay {
    /// An overlay with nothing pending over a backing file of `backing_size` bytes.
    pub fn new(backing_size: u64) -> Overlay {
        Overlay { extents: BTreeMap::new(), size: backing_size, backing_valid_below: backing_size, backing_size }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory.
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// Records a write of `data` at `offset`; the file grows to cover it.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Every extent that overlaps or touches [offset, end], in descending order of start.
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(start, bytes)| **start + bytes.len() as u64 >= offset)
            .map(|(start, _)| *start)
            .collect();
        let merged_start = touching.last().map_or(offset, |first| (*first).min(offset));
        // Reuse the first extent's buffer when it starts the merged range, so appends grow one Vec.
        let mut merged = match touching.last() {
            Some(first) if *first == merged_start => self.extents.remove(first).unwrap_or_default(),
            _ => Vec::new(),
        };
        for start in touching.iter().rev() {
            if let Some(bytes) = self.extents.remove(start) {
                let at = (start - merged_start) as usize;
                if merged.len() < at + bytes.len() {
                    merged.resize(at + bytes.len(), 0);
                }
                merged[at..at + bytes.len()].copy_from_slice(&bytes);
            }
        }
        let at = (offset - merged_start) as usize;
        if merged.len() < at + data.len() {
            merged.resize(at + data.len(), 0);
        }
        merged[at..at + data.len()].copy_from_slice(data);
        self.extents.insert(merged_start, merged);
        self.size = self.size.max(end);
        self.check();
    }

    /// A truncate (or an extending `ftruncate`/`fallocate`) to `size`.
    pub fn set_size(&mut self, size: u64) {
        if size < self.size {
            let cut: Vec<u64> = self.extents.range(size..).map(|(start, _)| *start).collect();
            for start in cut {
                self.extents.remove(&start);
            }
            if let Some((start, bytes)) = self.extents.range_mut(..size).next_back() {
                let keep = (size - start) as usize;
                bytes.truncate(keep);
            }
            self.backing_valid_below = self.backing_valid_below.min(size);
        }
        self.size = size;
        self.check();
    }

    /// Zeros over `[offset, offset + len)`, without growing the file (a hole punched, a range zeroed).
    pub fn zero_range(&mut self, offset: u64, len: u64) {
        let end = (offset + len).min(self.size);
        let mut position = offset;
        // In bounded pieces, so a huge hole does not allocate its size at once.
        while position < end {
            let piece = (end - position).min(1 << 20);
            self.write(position, &vec![0; piece as usize]);
            position += piece;
        }
    }

    /// Reads up to `len` bytes at `offset` as the mount shows them, taking what the backing file holds from
    /// `read_backing(offset, buffer)`, which fills the buffer (or returns how much it read).
    pub fn read(
        &self,
        offset: u64,
        len: u64,
        mut read_backing: impl FnMut(u64, &mut [u8]) -> io::Result<usize>,
    ) -> io::Result<Vec<u8>> {
        let end = (offset.saturating_add(len)).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let backing_end = end.min(self.backing_valid_below);
        let mut position = offset;
        while position < backing_end {
            let at = (position - offset) as usize;
            let want = (backing_end - offset) as usize;
            let read = read_backing(position, &mut out[at..want])?;
            if read == 0 {
                break;
            }
            position += read as u64;
        }
        for (start, bytes) in self.extents.range(..end) {
            let extent_end = start + bytes.len() as u64;
            if extent_end <= offset {
                continue;
            }
            let from = offset.max(*start);
            let to = end.min(extent_end);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(out)
    }

    /// What an fsync writes to the backing file.
    pub fn flush_plan(&self) -> FlushPlan<'_> {
        FlushPlan {
            cut_to: (self.backing_valid_below < self.backing_size).then_some(self.backing_valid_below),
            extents: self.extents.iter().map(|(start, bytes)| (*start, bytes.as_slice())).collect(),
            size: self.size,
        }
    }

    fn check(&self) {
        assert!(self.backing_valid_below <= self.size && self.backing_valid_below <= self.backing_size);
        let mut previous_end = 0;
        for (start, bytes) in &self.extents {
            assert!(*start >= previous_end && !bytes.is_empty(), "extents overlap or are empty");
            previous_end = start + bytes.len() as u64;
        }
        assert!(previous_end <= self.size, "an extent reaches past the file's size");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn view(overlay: &Overlay, backing: &[u8]) -> Vec<u8> {
        overlay
            .read(0, u64::MAX, |position, buffer| {
                let position = position as usize;
                let n = buffer.len().min(backing.len().saturating_sub(position));
                buffer[..n].copy_from_slice(&backing[position..position + n]);
                Ok(n)
            })
            .unwrap()
    }

    /// Applies the overlay to a copy of the backing file, as an fsync does.
    fn flushed(overlay: &Overlay, backing: &[u8]) -> Vec<u8> {
        let plan = overlay.flush_plan();
        let mut file = backing.to_vec();
        if let Some(cut) = plan.cut_to {
            file.truncate(cut as usize);
        }
        for (start, bytes) in plan.extents {
            let start = start as usize;
            if file.len() < start + bytes.len() {
                file.resize(start + bytes.len(), 0);
            }
            file[start..start + bytes.len()].copy_from_slice(bytes);
        }
        file.resize(plan.size as usize, 0);
        file
    }

    #[test]
    fn appends_merge_into_one_extent_and_read_over_the_backing_bytes() {
        let backing = b"0123456789".to_vec();
        let mut overlay = Overlay::new(10);
        overlay.write(10, b"ab");
        overlay.write(12, b"cd");
        overlay.write(4, b"XY");
        assert_eq!(view(&overlay, &backing), b"0123XY6789abcd");
        assert_eq!(overlay.extents.len(), 2);
        overlay.write(5, b"zzzzz");
        assert_eq!(overlay.extents.len(), 1, "the write joined both extents");
        assert_eq!(view(&overlay, &backing), b"0123Xzzzzzabcd");
        assert_eq!(flushed(&overlay, &backing), view(&overlay, &backing));
    }

    #[test]
    fn a_truncate_then_an_extension_reads_zeros_not_the_old_backing_bytes() {
        let backing = b"0123456789".to_vec();
        let mut overlay = Overlay::new(10);
        overlay.write(2, b"ab");
        overlay.set_size(3);
        assert_eq!(view(&overlay, &backing), b"01a");
        overlay.set_size(6);
        assert_eq!(view(&overlay, &backing), b"01a\0\0\0");
        overlay.write(8, b"Q");
        assert_eq!(view(&overlay, &backing), b"01a\0\0\0\0\0Q");
        assert_eq!(flushed(&overlay, &backing), view(&overlay, &backing));
        assert_eq!(overlay.flush_plan().cut_to, Some(3));
    }

    #[test]
    fn zeroing_a_range_keeps_the_size_and_reads_in_the_middle_are_exact() {
        let backing = b"abcdefgh".to_vec();
        let mut overlay = Overlay::new(8);
        overlay.zero_range(2, 100);
        assert_eq!(overlay.size(), 8);
        assert_eq!(view(&overlay, &backing), b"ab\0\0\0\0\0\0");
        let middle = overlay.read(1, 2, |_, _| Ok(0)).unwrap();
        assert_eq!(middle, b"\0\0", "backing reads returning nothing leave zeros");
    }

    #[test]
    fn random_operations_match_a_plain_byte_vector() {
        // A small deterministic generator, so a failure replays.
        let mut seed: u64 = 0x5eed;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..200 {
            let backing: Vec<u8> = (0..next(64)).map(|i| i as u8).collect();
            let mut model = backing.clone();
            let mut overlay = Overlay::new(backing.len() as u64);
            for _ in 0..20 {
                match next(3) {
                    0 => {
                        let offset = next(80) as usize;
                        let data: Vec<u8> = (0..next(20)).map(|_| next(250) as u8 + 1).collect();
                        if !data.is_empty() {
                            if model.len() < offset + data.len() {
                                model.resize(offset + data.len(), 0);
                            }
                            model[offset..offset + data.len()].copy_from_slice(&data);
                        }
                        overlay.write(offset as u64, &data);
                    }
                    1 => {
                        let size = next(90) as usize;
                        model.resize(size, 0);
                        overlay.set_size(size as u64);
                    }
                    _ => {
                        let (offset, len) = (next(80) as usize, next(30) as usize);
                        let end = (offset + len).min(model.len());
                        if offset < end {
                            model[offset..end].fill(0);
                        }
                        overlay.zero_range(offset as u64, len as u64);
                    }
                }
                assert_eq!(view(&overlay, &backing), model, "seed state {seed}");
            }
            assert_eq!(flushed(&overlay, &backing), model, "seed state {seed}");
        }
    }
}
