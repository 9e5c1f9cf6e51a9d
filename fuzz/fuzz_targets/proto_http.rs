#![no_main]
//! Fuzz target `proto_http`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::proto_http(data));
