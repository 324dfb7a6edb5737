//! Test tool for `tests/crash_sigkill_durability.rs`: appends single-record batches to two partitions with
//! flush policy `always`, four appends in flight per partition, and prints `<partition> <offset> <id>` once
//! each is durable. The test SIGKILLs it at random points and checks that every printed offset survived.
//!
//! Usage: `engine-crash-writer DATA_DIR FIRST_ID`

use std::io::Write;

use sluice_engine::batch::{BatchBuilder, RecordSpec};
use sluice_engine::{AppendMode, LeaderEpoch, LogConfig, LogManager, ManagerOptions, TopicPartition};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(first_id)) = (args.next(), args.next().and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: engine-crash-writer DATA_DIR FIRST_ID");
        std::process::exit(2);
    };
    let clean = match sluice_engine::manager::take_clean_shutdown_marker(dir.as_ref()) {
        Ok(clean) => clean,
        Err(error) => {
            eprintln!("cannot read data dir {dir}: {error}");
            std::process::exit(1);
        }
    };
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(512 << 10).make();
    let Ok(executor) = executor else {
        eprintln!("cannot start executor");
        std::process::exit(1);
    };
    executor.run(async move {
        let manager = LogManager::new(&dir, ManagerOptions::default(), clean);
        manager.spawn_background();
        let mut tasks = Vec::new();
        for partition in 0..2 {
            let log = match manager.open_log(&TopicPartition::new("crash", partition), LogConfig::default()).await {
                Ok(log) => log,
                Err(error) => {
                    eprintln!("open failed: {error}");
                    std::process::exit(1);
                }
            };
            for lane in 0..4u64 {
                let log = log.clone();
                tasks.push(glommio::spawn_local(async move {
                    let mut id = first_id + (partition as u64) * 1_000_000_000 + lane;
                    loop {
                        let value = format!("id-{id}");
                        let mut batch = BatchBuilder::new();
                        let record =
                            RecordSpec { key: None, value: Some(value.as_bytes()), headers: &[], timestamp_ms: 0 };
                        batch.push(&record);
                        let mode = AppendMode::Client { leader_epoch: LeaderEpoch(0) };
                        let info = match log.append(batch.finish(), mode).await {
                            Ok(info) => info,
                            Err(error) => {
                                eprintln!("append failed: {error}");
                                std::process::exit(1);
                            }
                        };
                        if let Err(error) = log.wait_durable(info.last_offset.next()).await {
                            eprintln!("durability failed: {error}");
                            std::process::exit(1);
                        }
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{partition} {} {id}", info.base_offset.0);
                        let _ = out.flush();
                        id += 4;
                    }
                }));
            }
        }
        for task in tasks {
            task.await;
        }
    });
}
