//! Batch validation on arbitrary bytes (DESIGN.md §6).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_engine::fuzz::batch_validation(data));
