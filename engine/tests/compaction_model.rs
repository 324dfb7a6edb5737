//! Log compaction against a model: random keyed writes and tombstones in every codec, over many small
//! segments, with cleaning passes (some with a dedupe buffer too small for one pass) and crashes injected at
//! every step of a swap, each followed by recovery. After every pass and every recovery:
//! - offsets only increase, and every record in the log is the one written at its offset;
//! - the latest value of every key is there, and every record at or past the clean point is intact (a pass
//!   cut short by a crash keeps the old clean point, so records past the range it could reach);
//! - a tombstone is gone only when the pass that first cleaned it is older than `delete.retention.ms`;
//! - after a whole pass, no key appears twice below the clean point.
//!
//! The seed is printed; `COMPACTION_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::{Rng, SeedableRng};
use sluice_engine::batch::{self, BatchBuilder, Compression, RecordSpec};
use sluice_engine::clean::{inject_crash_at, CleanStep};
use sluice_engine::codec;
use sluice_engine::{CleanupPolicy, CompactionConfig, EngineError, LogConfig, Offset, PartitionLog};

const RETENTION_MS: i64 = 10_000;
const KEYS: usize = 12;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_200,
        retention_ms: -1,
        index_interval_bytes: 200,
        cleanup_policy: CleanupPolicy { delete: false, compact: true },
        compaction: CompactionConfig {
            delete_retention_ms: RETENTION_MS,
            min_cleanable_dirty_ratio: 0.0,
            ..CompactionConfig::default()
        },
        ..LogConfig::default()
    }
}

#[derive(Default)]
struct Model {
    /// Every record written: offset → (key, value or tombstone).
    written: BTreeMap<i64, (String, Option<String>)>,
    /// (clean point, time) each time a pass moved the clean point.
    passes: Vec<(i64, i64)>,
}

impl Model {
    fn first_cleaned_at(&self, offset: i64) -> Option<i64> {
        self.passes.iter().find(|(end, _)| *end > offset).map(|(_, at)| *at)
    }

    fn latest_per_key(&self) -> BTreeMap<&str, i64> {
        let mut latest = BTreeMap::new();
        for (offset, (key, _)) in &self.written {
            latest.insert(key.as_str(), *offset);
        }
        latest
    }
}

/// Every record in the log from its start, as (offset, key, value).
async fn open_log(manager: &sluice_engine::LogManager) -> Rc<PartitionLog> {
    let log = common::open(manager, 0, config()).await;
    // One replica: the high watermark (and so the cleanable range) follows the durable offset.
    log.set_high_watermark_follows_durable(true);
    log
}

async fn log_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    while next < end {
        let bytes = log.read_bytes(next, 64 * 1024, end).await.unwrap();
        if bytes.is_empty() {
            // Compaction emptied the rest of the sealed segments; the active one is empty.
            break;
        }
        for stored in batch::split_batches(&bytes) {
            let header = batch::peek_header(stored).unwrap();
            next = Offset(header.last_offset() + 1);
            let mut plain = Vec::new();
            codec::recompress(stored, Compression::None, 1 << 24, &mut plain).unwrap();
            for record in batch::records(&plain).unwrap() {
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                out.push((record.offset, key, value));
            }
        }
    }
    out
}

/// The model's invariants; `intact_from` is where records must all still be, `strict` adds "each key once
/// below the clean point".
async fn check(log: &PartitionLog, model: &Model, now: i64, intact_from: i64, strict: bool, seed: u64) {
    let records = log_records(log).await;
    let context = format!("seed {seed}, now {now}, intact from {intact_from}");
    let mut previous = -1;
    let mut present = BTreeMap::new();
    for (offset, key, value) in &records {
        assert!(*offset > previous, "{context}: offset {offset} after {previous}");
        previous = *offset;
        let (written_key, written_value) =
            model.written.get(offset).unwrap_or_else(|| panic!("{context}: {offset} was never written"));
        assert_eq!((written_key, written_value), (key, value), "{context}: record at {offset} changed");
        present.insert(*offset, key.clone());
    }
    for (offset, (key, value)) in model.written.range(intact_from..) {
        assert!(
            present.contains_key(offset),
            "{context}: {offset} ({key}={value:?}) is past the cleaned range but gone"
        );
    }
    for (key, latest) in model.latest_per_key() {
        if present.contains_key(&latest) {
            continue;
        }
        let (_, value) = &model.written[&latest];
        assert!(value.is_none(), "{context}: the latest value of {key} at {latest} is gone");
        let first_cleaned = model.first_cleaned_at(latest);
        assert!(
            first_cleaned.is_some_and(|at| now - at > RETENTION_MS),
            "{context}: tombstone of {key} at {latest} removed too soon (first cleaned at {first_cleaned:?})"
        );
    }
    if strict {
        let clean_point = log.cleaner_checkpoint().clean_point.0;
        let mut seen = BTreeMap::new();
        for (offset, key) in present.range(..clean_point) {
            if let Some(before) = seen.insert(key.clone(), *offset) {
                panic!("{context}: {key} at {before} and {offset}, both below the clean point {clean_point}");
            }
        }
    }
}

fn keyed_batch(rng: &mut impl Rng, now: i64, counter: &mut u64) -> (Vec<u8>, Vec<(String, Option<String>)>) {
    let count = rng.gen_range(1..=4);
    let mut builder = BatchBuilder::new();
    let mut records = Vec::new();
    for _ in 0..count {
        let key = format!("k{}", rng.gen_range(0..KEYS));
        *counter += 1;
        let value = (!rng.gen_bool(0.25)).then(|| format!("v{counter}-{}", "x".repeat(rng.gen_range(0..60))));
        builder.push(&RecordSpec {
            key: Some(key.as_bytes()),
            value: value.as_deref().map(str::as_bytes),
            headers: &[],
            timestamp_ms: now,
        });
        records.push((key, value));
    }
    let plain = builder.finish();
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    let codec = codecs[rng.gen_range(0..codecs.len())];
    if codec == Compression::None {
        return (plain, records);
    }
    let mut out = Vec::new();
    codec::recompress(&plain, codec, 1 << 20, &mut out).unwrap();
    (out, records)
}

#[test]
fn compaction_matches_the_model_through_crashes() {
    let seed: u64 = std::env::var("COMPACTION_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("compaction model seed {seed} (replay with COMPACTION_SEED={seed})");
    common::run(move || async move {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut manager = common::manager(dir.path(), true);
        let mut log: Rc<PartitionLog> = open_log(&manager).await;
        let mut model = Model::default();
        let mut now = 1_000_000i64;
        let mut counter = 0u64;
        let steps = [
            CleanStep::CleanedWritten,
            CleanStep::SwapCommitted,
            CleanStep::FirstOldRenamed,
            CleanStep::SwapRenamed,
            CleanStep::AllSwapped,
        ];
        let (mut passes, mut crashes) = (0, 0);
        // How far a crashed pass may have cleaned.
        let mut touched = 0i64;
        for round in 0..60 {
            for _ in 0..rng.gen_range(3..12) {
                now += rng.gen_range(0..1_500);
                let (bytes, records) = keyed_batch(&mut rng, now, &mut counter);
                let info = log.append(bytes, common::CLIENT).await.unwrap();
                for (i, record) in records.into_iter().enumerate() {
                    model.written.insert(info.base_offset.0 + i as i64, record);
                }
            }
            log.flush().await.unwrap();
            let buffer = if rng.gen_bool(0.3) { 8 * sluice_engine::clean::OFFSET_MAP_ENTRY_BYTES } else { 1 << 20 };
            let crash = rng.gen_bool(0.3).then(|| steps[rng.gen_range(0..steps.len())]);
            let before = log.cleaner_checkpoint().clean_point.0;
            let Some(range) = log.cleanable(now) else { continue };
            inject_crash_at(crash);
            let result = log.clean(now, buffer, true).await;
            inject_crash_at(None);
            match (crash, result) {
                // Only a group of two or more segments has a second old segment to crash before.
                (None | Some(CleanStep::FirstOldRenamed), Ok(Some(stats))) => {
                    passes += 1;
                    assert!(!stats.aborted, "seed {seed}: nothing else changes the segments here");
                    let after = log.cleaner_checkpoint().clean_point.0;
                    assert!(after >= before, "seed {seed}: the clean point went back");
                    if after > before {
                        model.passes.push((after, now));
                    }
                    check(&log, &model, now, after.max(touched), true, seed).await;
                }
                (None, other) => panic!("seed {seed} round {round}: a due pass did {other:?}"),
                (Some(step), Err(EngineError::InvalidRequest(_))) => {
                    crashes += 1;
                    // Abandon the shard's state as a crash would, then recover from the files.
                    drop(log);
                    drop(manager);
                    manager = common::manager(dir.path(), false);
                    log = open_log(&manager).await;
                    assert_eq!(
                        log.cleaner_checkpoint().clean_point.0,
                        before,
                        "seed {seed}: {step:?} kept the clean point"
                    );
                    // A pass cut short keeps the old clean point but may have swapped groups up to its range's end:
                    // records from there on are intact, and the next passes clean the range again.
                    touched = touched.max(range.first_uncleanable.0);
                    check(&log, &model, now, touched, false, seed).await;
                }
                (Some(step), Ok(stats)) => {
                    // The pass stopped before the step (too small a buffer for the whole range still swaps).
                    panic!("seed {seed}: crash at {step:?} did not happen: {stats:?}")
                }
                (Some(step), Err(error)) => panic!("seed {seed}: crash at {step:?} failed otherwise: {error}"),
            }
        }
        assert!(passes >= 10 && crashes >= 3, "seed {seed}: {passes} passes and {crashes} crashes");
        // Long after the last write, a pass removes every tombstone whose clock ran out, and a clean restart
        // keeps what is left.
        now += 3 * RETENTION_MS;
        for _ in 0..3 {
            now += RETENTION_MS;
            log.roll_active().await.unwrap();
            let before = log.cleaner_checkpoint().clean_point.0;
            if let Some(stats) = log.clean(now, 1 << 20, true).await.unwrap() {
                if stats.clean_point.0 > before {
                    model.passes.push((stats.clean_point.0, now));
                }
            }
        }
        check(&log, &model, now, log.cleaner_checkpoint().clean_point.0, true, seed).await;
        let tombstones = log_records(&log).await.iter().filter(|(_, _, value)| value.is_none()).count();
        assert_eq!(tombstones, 0, "seed {seed}: tombstones older than delete.retention.ms stay");
        manager.shutdown().await.unwrap();
        drop(log);
        let manager = common::manager(dir.path(), true);
        let log = open_log(&manager).await;
        check(&log, &model, now, log.cleaner_checkpoint().clean_point.0, true, seed).await;
    });
}
