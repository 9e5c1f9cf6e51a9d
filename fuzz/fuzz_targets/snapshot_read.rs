#![no_main]
//! Fuzz target `snapshot_read`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::snapshot_read(data));
