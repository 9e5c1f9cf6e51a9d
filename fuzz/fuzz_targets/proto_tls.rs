#![no_main]
//! Fuzz target `proto_tls`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::proto_tls(data));
