//! Runs the fuzz target bodies (`sluice_engine::fuzz`) on the stored regression corpus under `fuzz/corpus/`
//! and on seeded random mutations of valid logs, so every test run re-checks what fuzzing once found.
//! Coverage-guided fuzzing itself is `cargo fuzz run <target>` (see README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use sluice_engine::batch::{simple_batch, stamp_offset_and_epoch};
use sluice_engine::fuzz;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "regression corpus for {target} is missing");
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn valid_log(rng: &mut impl Rng) -> Vec<u8> {
    let mut log = Vec::new();
    let mut next = 0;
    for _ in 0..rng.gen_range(1..6) {
        let count = rng.gen_range(1..5);
        let mut batch = simple_batch(count, rng.gen_range(0..80), 1_000);
        stamp_offset_and_epoch(&mut batch, next, 0);
        next += count as i64;
        log.extend_from_slice(&batch);
    }
    log
}

fn mutate(rng: &mut impl Rng, mut data: Vec<u8>) -> Vec<u8> {
    match rng.gen_range(0..4) {
        0 if !data.is_empty() => {
            let i = rng.gen_range(0..data.len());
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => data.truncate(rng.gen_range(0..=data.len())),
        2 => data.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
        _ if data.len() > 12 => {
            let i = rng.gen_range(0..data.len() - 4);
            data[i..i + 4].copy_from_slice(&rng.gen::<i32>().to_be_bytes());
        }
        _ => {}
    }
    data
}

#[test]
fn batch_validation_corpus_and_mutations() {
    for input in corpus("batch_validation") {
        fuzz::batch_validation(&input);
    }
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..20_000 {
        let log = valid_log(&mut rng);
        fuzz::batch_validation(&mutate(&mut rng, log));
    }
}

#[test]
fn segment_recovery_corpus_and_mutations() {
    for input in corpus("segment_recovery") {
        fuzz::segment_recovery(&input);
    }
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..300 {
        let log = valid_log(&mut rng);
        fuzz::segment_recovery(&mutate(&mut rng, log));
    }
}
