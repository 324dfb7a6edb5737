//! Bodies of the fuzz targets under `fuzz/`, kept here so that the libFuzzer targets and the stable-toolchain
//! regression test over `fuzz/corpus/` run the same checks. Each function must never panic on any input.

use std::cell::RefCell;
use std::rc::Rc;

use crate::batch;
use crate::config::LogConfig;
use crate::error::EngineError;
use crate::manager::{LogManager, ManagerOptions};
use crate::types::{Offset, TopicPartition};

/// Batch validation on arbitrary bytes: no panic, and whatever validates is self-consistent.
pub fn batch_validation(data: &[u8]) {
    if let Ok(header) = batch::validate(data, 1 << 20) {
        assert!(header.size_bytes() <= data.len());
        assert!(header.records_count.get() >= 1);
        let mut copy = data[..header.size_bytes()].to_vec();
        batch::stamp_offset_and_epoch(&mut copy, 12345, 6);
        let again = batch::validate(&copy, 1 << 20);
        assert!(again.is_ok(), "stamping must not break the CRC");
        batch::set_log_append_time(&mut copy, 42);
        assert!(batch::validate(&copy, 1 << 20).is_ok(), "the CRC is recomputed after a timestamp rewrite");
    }
    let _ = batch::first_offset_at_or_after(data, 0);
    let _ = batch::first_offset_at_or_after(data, i64::MAX);
}

thread_local! {
    static EXECUTOR: RefCell<Option<glommio::LocalExecutor>> = const { RefCell::new(None) };
}

/// Recovery of an arbitrary segment file: opening it either succeeds and then serves only valid batches
/// with contiguous offsets, or reports corruption. Never a panic.
pub fn segment_recovery(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("sluice-fuzz-{}-{}", std::process::id(), rand_suffix()));
    let partition_dir = dir.join("fuzz-0");
    if std::fs::create_dir_all(&partition_dir).is_err() {
        return;
    }
    let _ = std::fs::write(partition_dir.join("00000000000000000000.log"), data);
    EXECUTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().ok();
        }
        let Some(executor) = slot.as_ref() else { return };
        let dir = dir.clone();
        executor.run(async move {
            let manager: Rc<LogManager> = LogManager::new(&dir, ManagerOptions::default(), false);
            let tp = TopicPartition::new("fuzz", 0);
            match manager.open_log(&tp, LogConfig::default()).await {
                Ok(log) => {
                    let end = log.log_end_offset();
                    let mut next = Offset::ZERO;
                    while next < end {
                        let bytes = match log.read_bytes(next, 1 << 20, end).await {
                            Ok(bytes) => bytes,
                            Err(error) => panic!("recovered log failed a read at {next}: {error}"),
                        };
                        assert!(!bytes.is_empty(), "no progress at {next}");
                        let mut position = 0;
                        while position < bytes.len() {
                            let header = match batch::validate_stored(&bytes[position..], usize::MAX) {
                                Ok(header) => header,
                                Err(error) => panic!("recovered log served an invalid batch: {error}"),
                            };
                            // Batches go forward: the first holds `next` or starts after it (a gap, as compaction leaves).
                            assert!(header.last_offset() >= next.0, "a read went back");
                            next = Offset(header.last_offset() + 1);
                            position += header.size_bytes();
                        }
                    }
                    let appended = log.append(batch::simple_batch(1, 1, 0), crate::AppendMode::Replica).await;
                    // A replica append with offset 0 only fits an empty log; either way no panic.
                    let _ = appended;
                }
                Err(EngineError::Corrupt { .. }) => {}
                Err(other) => panic!("recovery failed with a non-corruption error: {other}"),
            }
        });
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
