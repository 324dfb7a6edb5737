//! The group coordinator's replay of `__consumer_offsets` records on arbitrary bytes (issue 15).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_net::fuzz::coordinator_replay(data));
