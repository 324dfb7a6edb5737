//! Runs the coordinator-replay fuzz body (`sluice_net::fuzz::coordinator_replay`) on the stored regression
//! corpus (`fuzz/corpus/coordinator_replay`) and on seeded mutations of valid `__consumer_offsets` logs, so every
//! test run re-checks what fuzzing once found. Coverage-guided fuzzing is `cargo fuzz run coordinator_replay`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use sluice_engine::batch::{stamp_offset_and_epoch, BatchBuilder, RecordSpec};
use sluice_engine::Offset;
use sluice_net::fuzz::coordinator_replay;
use sluice_net::groups::{LoadError, Replayed};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/coordinator_replay");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "regression corpus for coordinator_replay is missing");
    files.iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap())).collect()
}

fn replay(data: &[u8]) -> Result<Replayed, LoadError> {
    let mut replayed = Replayed::default();
    replayed.replay_batches(data, Offset(0)).map(|_| replayed)
}

#[test]
fn corpus_replays_as_expected() {
    for (name, data) in corpus() {
        coordinator_replay(&data);
        let result = replay(&data);
        match name.as_str() {
            "regress-valid-offsets-and-group" => {
                let groups = result.unwrap().groups();
                assert_eq!(groups.len(), 1);
                assert_eq!((groups[0].1.as_deref(), groups[0].2), (Some("consumer"), 4));
                assert!(groups[0].3.is_empty(), "the offset's tombstone was applied");
            }
            "regress-newer-layout" | "regress-group-tombstone-then-offset" => {
                let groups = result.unwrap().groups();
                assert_eq!(groups[0].3[0].1.offset, 5, "{name}");
            }
            _ => assert!(matches!(result, Err(LoadError::Corrupt { .. })), "{name}: {result:?}"),
        }
    }
}

fn record(rng: &mut impl Rng) -> (Vec<u8>, Option<Vec<u8>>) {
    let group = format!("g{}", rng.gen_range(0..3));
    if rng.gen_bool(0.3) {
        let key = format!(r#"{{"type":"Group","version":1,"group":"{group}"}}"#);
        let value = rng
            .gen_bool(0.8)
            .then(|| format!(r#"{{"version":1,"protocol_type":"consumer","generation":{}}}"#, rng.gen_range(0..100)));
        (key.into_bytes(), value.map(String::into_bytes))
    } else {
        let key = format!(
            r#"{{"type":"Offset","version":1,"group":"{group}","topic":"t","partition":{}}}"#,
            rng.gen_range(0..4)
        );
        let value = rng.gen_bool(0.9).then(|| {
            format!(
                r#"{{"version":1,"offset":{},"leader_epoch":-1,"metadata":"m","commit_timestamp_ms":1}}"#,
                rng.gen_range(0..1000)
            )
        });
        (key.into_bytes(), value.map(String::into_bytes))
    }
}

fn valid_log(rng: &mut impl Rng) -> Vec<u8> {
    let mut log = Vec::new();
    let mut next = 0;
    for _ in 0..rng.gen_range(1..5) {
        let count = rng.gen_range(1..6);
        let records: Vec<_> = (0..count).map(|_| record(rng)).collect();
        let mut builder = BatchBuilder::new();
        for (key, value) in &records {
            builder.push(&RecordSpec { key: Some(key), value: value.as_deref(), headers: &[], timestamp_ms: 1 });
        }
        let mut batch = builder.finish();
        stamp_offset_and_epoch(&mut batch, next, 0);
        next += count as i64;
        log.extend_from_slice(&batch);
    }
    log
}

#[test]
fn valid_logs_replay_and_mutations_never_panic() {
    let seed: u64 = std::env::var("SLUICE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed {seed} (rerun with SLUICE_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..3000 {
        let log = valid_log(&mut rng);
        assert!(replay(&log).is_ok(), "a log the coordinator could have written must replay");
        coordinator_replay(&log);
        let mut data = log;
        for _ in 0..rng.gen_range(1..4) {
            match rng.gen_range(0..4) {
                0 if !data.is_empty() => {
                    let i = rng.gen_range(0..data.len());
                    data[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => data.truncate(rng.gen_range(0..=data.len())),
                2 if data.len() > 12 => {
                    let i = rng.gen_range(0..data.len() - 4);
                    let value: i32 = if rng.gen() { i32::MAX } else { rng.gen() };
                    data[i..i + 4].copy_from_slice(&value.to_be_bytes());
                }
                _ => data.extend((0..rng.gen_range(1..32)).map(|_| rng.gen::<u8>())),
            }
        }
        coordinator_replay(&data);
    }
}
