//! Producer state for idempotent and transactional producers: per producer id, the current epoch, the
//! sequence and offset ranges of the last five batches (Kafka's in-flight window), and the first offset of an
//! open transaction. Lives on the partition's owner shard; snapshotted to `<offset>.snapshot` files and
//! rebuilt from the log after the snapshot on recovery.
//!
//! Bounded as Kafka bounds it: a producer id whose last batch is older than `producer.id.expiration.ms` is
//! forgotten ([`ProducerStateTable::remove_expired`], run by the shard's housekeeping and right after recovery,
//! so an expired id is not brought back by an older snapshot or by replaying the log). A producer the table
//! does not know may then write with any sequence, as in Kafka since KIP-360: its state may have gone with
//! expiry, retention or DeleteRecords, and refusing it would fail a producer that was only idle.

use std::collections::{HashMap, VecDeque};

use crate::batch::RecordBatchHeader;
use crate::checkpoint;
use crate::error::SequenceError;
use crate::types::{Offset, ProducerEpoch, ProducerId};

/// Kafka keeps the metadata of this many batches per producer to detect duplicates.
pub const RETAINED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: ProducerEpoch,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp_ms: i64,
    /// First offset of the producer's open transaction on this partition.
    pub open_txn_first_offset: Option<Offset>,
}

/// What the checks say about an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log: answer with the offsets it got the first time.
    Duplicate(BatchMeta),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<ProducerId, ProducerEntry>,
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Checks an incoming leader append against the producer's state. Kafka's order: fencing, then duplicate
    /// detection, then the sequence gap check.
    pub fn check(&self, header: &RecordBatchHeader) -> Result<SequenceCheck, SequenceError> {
        if !header.has_producer_id() || header.is_control() {
            return Ok(SequenceCheck::Append);
        }
        let producer_id = ProducerId(header.producer_id.get());
        let epoch = ProducerEpoch(header.producer_epoch.get());
        let first_sequence = header.base_sequence.get();
        // Unknown (new, or forgotten): any sequence starts its state (Kafka's `ProducerAppendInfo`).
        let Some(entry) = self.producers.get(&producer_id) else { return Ok(SequenceCheck::Append) };
        if epoch < entry.epoch {
            return Err(SequenceError::Fenced { producer_id, epoch, current: entry.epoch });
        }
        if epoch > entry.epoch {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, first_sequence, expected: 0 })
            };
        }
        let last_sequence = header.last_sequence();
        if let Some(meta) =
            entry.batches.iter().find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*meta));
        }
        let expected = entry.batches.back().map_or(0, |b| next_sequence(b.last_sequence));
        if first_sequence != expected {
            return Err(SequenceError::OutOfOrder { producer_id, first_sequence, expected });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is now in the log (after offsets were assigned, or while replaying the log).
    pub fn update(&mut self, header: &RecordBatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let producer_id = ProducerId(header.producer_id.get());
        let epoch = ProducerEpoch(header.producer_epoch.get());
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(RETAINED_BATCHES),
            last_timestamp_ms: -1,
            open_txn_first_offset: None,
        });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(header.max_timestamp.get());
        if header.is_control() {
            // A commit or abort marker ends the producer's transaction.
            entry.open_txn_first_offset = None;
            return;
        }
        if header.is_transactional() && entry.open_txn_first_offset.is_none() {
            entry.open_txn_first_offset = Some(Offset(header.base_offset()));
        }
        if entry.batches.len() == RETAINED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_sequence: header.base_sequence.get(),
            last_sequence: header.last_sequence(),
            first_offset: Offset(header.base_offset()),
            last_offset: Offset(header.last_offset()),
        });
    }

    /// Forgets batches at or past `end` after a truncation. Producers left with no batch are dropped.
    pub fn truncate_from(&mut self, end: Offset) {
        self.producers.retain(|_, entry| {
            entry.batches.retain(|b| b.last_offset < end);
            if entry.open_txn_first_offset.is_some_and(|o| o >= end) {
                entry.open_txn_first_offset = None;
            }
            !entry.batches.is_empty()
        });
    }

    /// Forgets producers whose last batch's timestamp is `expiration_ms` or more before `now_ms`, except those
    /// with an open transaction (Kafka's rule: the transaction's end needs them). A timestamp past `now_ms` (a
    /// client's clock, for CreateTime) counts as `now_ms`, so no client can keep its id forever. Returns how many
    /// were removed.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.last_timestamp_ms = entry.last_timestamp_ms.min(now_ms);
            entry.open_txn_first_offset.is_some() || now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    /// The smallest first offset of any open transaction: the last stable offset is bounded by it.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.producers.values().filter_map(|e| e.open_txn_first_offset).min()
    }

    /// Snapshot bytes: one row per producer (id, epoch, last timestamp, open txn offset or -1, then four
    /// numbers per retained batch).
    pub fn encode(&self) -> Vec<u8> {
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort();
        let rows: Vec<Vec<i64>> = ids
            .iter()
            .map(|id| {
                let e = &self.producers[id];
                let mut row =
                    vec![id.0, i64::from(e.epoch.0), e.last_timestamp_ms, e.open_txn_first_offset.map_or(-1, |o| o.0)];
                for b in &e.batches {
                    row.extend([
                        i64::from(b.first_sequence),
                        i64::from(b.last_sequence),
                        b.first_offset.0,
                        b.last_offset.0,
                    ]);
                }
                row
            })
            .collect();
        checkpoint::encode("producer-snapshot", &rows)
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let rows = checkpoint::decode("producer-snapshot", bytes)?;
        let mut producers = HashMap::with_capacity(rows.len());
        for row in rows {
            if row.len() < 4 || (row.len() - 4) % 4 != 0 || (row.len() - 4) / 4 > RETAINED_BATCHES {
                return None;
            }
            let batches = row[4..]
                .chunks_exact(4)
                .map(|c| {
                    Some(BatchMeta {
                        first_sequence: i32::try_from(c[0]).ok()?,
                        last_sequence: i32::try_from(c[1]).ok()?,
                        first_offset: Offset(c[2]),
                        last_offset: Offset(c[3]),
                    })
                })
                .collect::<Option<VecDeque<_>>>()?;
            producers.insert(
                ProducerId(row[0]),
                ProducerEntry {
                    epoch: ProducerEpoch(i16::try_from(row[1]).ok()?),
                    batches,
                    last_timestamp_ms: row[2],
                    open_txn_first_offset: (row[3] >= 0).then_some(Offset(row[3])),
                },
            );
        }
        Some(ProducerStateTable { producers })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::batch::{self, BatchBuilder, RecordSpec};

    fn header(producer_id: i64, epoch: i16, sequence: i32, records: usize, base_offset: i64) -> RecordBatchHeader {
        let mut b = BatchBuilder::new().producer(producer_id, epoch, sequence);
        for _ in 0..records {
            b.push(&RecordSpec { key: None, value: Some(b"v"), headers: &[], timestamp_ms: 1 });
        }
        let mut bytes = b.finish();
        batch::stamp_offset_and_epoch(&mut bytes, base_offset, 0);
        batch::validate(&bytes, usize::MAX).unwrap()
    }

    #[test]
    fn sequences_duplicates_and_fencing() {
        let mut table = ProducerStateTable::default();
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(table.check(&first), Ok(SequenceCheck::Append));
        table.update(&first);
        // The retry of the same batch is a duplicate with its original offsets.
        let retry = header(7, 0, 0, 3, 99);
        match table.check(&retry).unwrap() {
            SequenceCheck::Duplicate(meta) => assert_eq!((meta.first_offset, meta.last_offset), (Offset(0), Offset(2))),
            other => panic!("expected duplicate, got {other:?}"),
        }
        // A gap is out of order.
        assert!(matches!(table.check(&header(7, 0, 5, 1, 3)), Err(SequenceError::OutOfOrder { expected: 3, .. })));
        // The next one in sequence is fine.
        let next = header(7, 0, 3, 1, 3);
        assert_eq!(table.check(&next), Ok(SequenceCheck::Append));
        table.update(&next);
        // A new epoch must restart at 0 and fences the old one.
        assert!(table.check(&header(7, 1, 4, 1, 4)).is_err());
        let bumped = header(7, 1, 0, 1, 4);
        assert_eq!(table.check(&bumped), Ok(SequenceCheck::Append));
        table.update(&bumped);
        assert!(matches!(table.check(&header(7, 0, 4, 1, 5)), Err(SequenceError::Fenced { .. })));
        // An unknown producer may start at any sequence (its state may have expired).
        assert_eq!(table.check(&header(8, 0, 1, 1, 5)), Ok(SequenceCheck::Append));
    }

    fn header_at(producer_id: i64, sequence: i32, timestamp_ms: i64, transactional: bool) -> RecordBatchHeader {
        let mut b = BatchBuilder::new().producer(producer_id, 0, sequence);
        if transactional {
            b = b.transactional();
        }
        b.push(&RecordSpec { key: None, value: Some(b"v"), headers: &[], timestamp_ms });
        batch::validate(&b.finish(), usize::MAX).unwrap()
    }

    #[test]
    fn producers_expire_after_their_last_batch_but_not_with_an_open_transaction() {
        let day = 86_400_000;
        let now = 10 * day;
        let mut table = ProducerStateTable::default();
        table.update(&header_at(1, 0, now - day, false)); // exactly the expiration ago: expires
        table.update(&header_at(2, 0, now - day + 1, false)); // just inside it: stays
        table.update(&header_at(3, 0, now - 5 * day, true)); // an open transaction: stays
        table.update(&header_at(4, 0, now + 100 * day, false)); // a clock in the future: counts as now
        assert_eq!(table.remove_expired(now, day), 1);
        assert!(table.get(ProducerId(1)).is_none());
        assert!(table.get(ProducerId(2)).is_some() && table.get(ProducerId(3)).is_some());
        assert_eq!(table.get(ProducerId(4)).unwrap().last_timestamp_ms, now);
        // A day later the future-stamped one is gone too; a shorter expiration (changed live) applies at once.
        assert_eq!(table.remove_expired(now + day, day), 2);
        assert_eq!(table.remove_expired(now + day, 1), 0, "an open transaction keeps its producer");
        assert_eq!(table.len(), 1);
        // A forgotten producer continues with any sequence, as in Kafka.
        assert_eq!(table.check(&header_at(1, 57, now, false)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_five_batches_are_remembered_and_snapshots_round_trip() {
        let mut table = ProducerStateTable::default();
        for i in 0..7 {
            table.update(&header(1, 0, i, 1, i64::from(i)));
        }
        assert_eq!(table.get(ProducerId(1)).unwrap().batches.len(), RETAINED_BATCHES);
        assert_eq!(table.check(&header(1, 0, 0, 1, 9)).ok(), None, "seq 0 fell out of the window");
        let decoded = ProducerStateTable::decode(&table.encode()).unwrap();
        assert_eq!(decoded, table);
        table.truncate_from(Offset(4));
        assert_eq!(table.get(ProducerId(1)).unwrap().batches.back().unwrap().last_offset, Offset(3));
        table.truncate_from(Offset(0));
        assert!(table.is_empty());
    }

    #[test]
    fn docs_format_snapshot_example() {
        // The example drawn in docs/format.md: it decodes, and encodes back to the same bytes.
        let bytes = b"producer-snapshot v1\n1000 0 1718000000000 -1 0 4 1100 1104 5 9 1105 1109\ncrc32c b1866ef4\n";
        let table = ProducerStateTable::decode(bytes).unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(table.encode(), bytes);
    }
}
