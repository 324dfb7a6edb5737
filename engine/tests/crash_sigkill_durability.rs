//! Process-level crash test: a writer appends with flush policy `always` and prints every offset once it is
//! durable; we SIGKILL it at random points, 24 times, restarting it on the same data. After each kill, every
//! offset it reported is present with the record it reported, and the log is contiguous from 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use sluice_engine::batch::{self, read_varlong, HEADER_BYTES};
use sluice_engine::{LogConfig, Offset, TopicPartition};

const KILLS: usize = 24;

/// The value of the first record of the batch at the start of `bytes`.
fn first_value(bytes: &[u8]) -> Vec<u8> {
    let mut pos = HEADER_BYTES;
    let (_length, n) = read_varlong(&bytes[pos..]).unwrap();
    pos += n + 1; // attributes
    let (_, n) = read_varlong(&bytes[pos..]).unwrap(); // timestamp delta
    pos += n;
    let (_, n) = read_varlong(&bytes[pos..]).unwrap(); // offset delta
    pos += n;
    let (key_len, n) = read_varlong(&bytes[pos..]).unwrap();
    pos += n + key_len.max(0) as usize;
    let (value_len, n) = read_varlong(&bytes[pos..]).unwrap();
    pos += n;
    bytes[pos..pos + value_len as usize].to_vec()
}

#[test]
fn every_offset_reported_durable_survives_sigkill() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: HashMap<(i32, i64), String> = HashMap::new();
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_engine-crash-writer"))
            .arg(dir.path())
            .arg((round as u64 * 10_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.0.send(line).is_err() {
                    break;
                }
            }
        });
        let run_for = Duration::from_millis(rng.gen_range(50..400));
        let started = Instant::now();
        let mut reported = 0;
        while started.elapsed() < run_for || reported == 0 {
            if let Ok(line) = lines.1.recv_timeout(Duration::from_millis(5)) {
                let mut parts = line.split(' ');
                let partition: i32 = parts.next().unwrap().parse().unwrap();
                let offset: i64 = parts.next().unwrap().parse().unwrap();
                let id = parts.next().unwrap().to_string();
                acknowledged.insert((partition, offset), format!("id-{id}"));
                reported += 1;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "writer made no progress (seed {seed})");
        }
        // SIGKILL: no chance to flush or clean up.
        child.kill().unwrap();
        child.wait().unwrap();
        while let Ok(line) = lines.1.recv_timeout(Duration::from_millis(50)) {
            // Lines already printed before the kill were durable when printed.
            let mut parts = line.split(' ');
            let partition: i32 = parts.next().unwrap().parse().unwrap();
            let offset: i64 = parts.next().unwrap().parse().unwrap();
            acknowledged.insert((partition, offset), format!("id-{}", parts.next().unwrap()));
        }
        reader.join().unwrap();

        let path = dir.path().to_owned();
        let expected = acknowledged.clone();
        run(move || async move {
            let manager = manager(&path, false);
            for partition in 0..2 {
                let log =
                    manager.open_log(&TopicPartition::new("crash", partition), LogConfig::default()).await.unwrap();
                let end = log.log_end_offset();
                let bytes = read_all(&log, 0).await;
                let batches = split_batches(&bytes);
                assert_eq!(
                    batches.len() as i64,
                    end.0,
                    "one record per batch, contiguous (round {round}, seed {seed})"
                );
                for ((p, offset), id) in expected.iter().filter(|((p, _), _)| *p == partition) {
                    assert!(Offset(*offset) < end, "acknowledged {p}/{offset} lost in round {round} (seed {seed})");
                    let stored = &batches[*offset as usize];
                    assert_eq!(batch::peek_header(stored).unwrap().base_offset(), *offset);
                    assert_eq!(first_value(stored), id.as_bytes(), "{p}/{offset} holds another record (seed {seed})");
                }
            }
        });
    }
    assert!(acknowledged.len() > KILLS, "the writer acknowledged {} records", acknowledged.len());
}
