//! Recovery of an arbitrary segment file (DESIGN.md §6).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_engine::fuzz::segment_recovery(data));
