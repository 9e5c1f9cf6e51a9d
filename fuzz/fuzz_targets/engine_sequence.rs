#![no_main]
//! Fuzz target `engine_sequence`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::engine_sequence(data));
