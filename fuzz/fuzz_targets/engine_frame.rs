#![no_main]
//! Fuzz target `engine_frame`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::engine_frame(data));
