//! Kafka request framing and decoding on arbitrary bytes (DESIGN.md §6).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_net::fuzz::request_decoding(data));
