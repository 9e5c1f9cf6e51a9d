#![no_main]
//! Fuzz target `feed_stix`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::feed_stix(data));
