#![no_main]
//! See `portcullis::fuzzing::config_load` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::config_load(data));
