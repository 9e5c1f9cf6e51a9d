#![no_main]
//! Fuzz target `config_sensor`: body in `gatewatch::testkit::fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewatch::testkit::fuzz::config_sensor(data));
