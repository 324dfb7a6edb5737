//! Leader-epoch cache: for each leader epoch, the first offset written in it. Answers OffsetForLeaderEpoch
//! and tells a follower where its log diverges from the leader's. Persisted as `leader-epoch-checkpoint`.

use crate::types::{LeaderEpoch, Offset};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    pub fn from_entries(mut entries: Vec<EpochEntry>) -> Self {
        entries.sort_by_key(|e| e.epoch);
        entries.dedup_by_key(|e| e.epoch);
        EpochCache { entries }
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The epoch in which `offset` was written: the last entry starting at or before it.
    pub fn epoch_for_offset(&self, offset: Offset) -> Option<LeaderEpoch> {
        self.entries.iter().rev().find(|entry| entry.start_offset <= offset).map(|entry| entry.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest epoch. Returns whether
    /// the cache changed (and so needs a checkpoint).
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch.0 < 0 {
            return false;
        }
        match self.entries.last() {
            Some(last) if last.epoch >= epoch => false,
            _ => {
                self.entries.push(EpochEntry { epoch, start_offset });
                true
            }
        }
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and the offset where it ended (the
    /// start of the next epoch, or `log_end` for the latest). `(NONE, NONE)` when unknown.
    pub fn end_offset_for(&self, requested: LeaderEpoch, log_end: Offset) -> (LeaderEpoch, Offset) {
        let undefined = (LeaderEpoch::NONE, Offset::NONE);
        if requested.0 < 0 {
            return undefined;
        }
        let Some(latest) = self.entries.last() else { return undefined };
        if latest.epoch == requested {
            return (requested, log_end);
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested);
        let Some(higher) = higher else { return undefined };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// Forgets epochs that start at or after `end` (the log was truncated to `end`).
    pub fn truncate_from_end(&mut self, end: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end);
        before != self.entries.len()
    }

    /// Moves the first epoch's start up to the new log start offset, dropping epochs wholly below it.
    pub fn truncate_from_start(&mut self, log_start: Offset) -> bool {
        let keep_from = self.entries.iter().rposition(|e| e.start_offset <= log_start);
        let mut changed = false;
        if let Some(i) = keep_from {
            if i > 0 {
                self.entries.drain(..i);
                changed = true;
            }
            if self.entries[0].start_offset < log_start {
                self.entries[0].start_offset = log_start;
                changed = true;
            }
        }
        changed
    }

    pub fn to_rows(&self) -> Vec<Vec<i64>> {
        self.entries.iter().map(|e| vec![i64::from(e.epoch.0), e.start_offset.0]).collect()
    }

    pub fn from_rows(rows: &[Vec<i64>]) -> Option<Self> {
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let [epoch, start] = row.as_slice() else { return None };
            entries.push(EpochEntry { epoch: LeaderEpoch(i32::try_from(*epoch).ok()?), start_offset: Offset(*start) });
        }
        Some(EpochCache::from_entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> EpochCache {
        let mut c = EpochCache::default();
        assert!(c.assign(LeaderEpoch(1), Offset(0)));
        assert!(c.assign(LeaderEpoch(3), Offset(10)));
        assert!(!c.assign(LeaderEpoch(2), Offset(12)));
        assert!(c.assign(LeaderEpoch(5), Offset(20)));
        c
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache();
        let end = Offset(30);
        assert_eq!(c.end_offset_for(LeaderEpoch(5), end), (LeaderEpoch(5), end));
        assert_eq!(c.end_offset_for(LeaderEpoch(3), end), (LeaderEpoch(3), Offset(20)));
        assert_eq!(c.end_offset_for(LeaderEpoch(4), end), (LeaderEpoch(3), Offset(20)));
        assert_eq!(c.end_offset_for(LeaderEpoch(0), end), (LeaderEpoch(0), Offset(0)));
        assert_eq!(c.end_offset_for(LeaderEpoch(6), end), (LeaderEpoch::NONE, Offset::NONE));
    }

    #[test]
    fn truncation_both_ends() {
        let mut c = cache();
        assert!(c.truncate_from_end(Offset(20)));
        assert_eq!(c.latest().map(|e| e.epoch), Some(LeaderEpoch(3)));
        assert!(c.truncate_from_start(Offset(15)));
        assert_eq!(c.entries(), &[EpochEntry { epoch: LeaderEpoch(3), start_offset: Offset(15) }]);
        let rows = c.to_rows();
        assert_eq!(EpochCache::from_rows(&rows), Some(c));
    }
}
