#![no_main]
//! See `portcullis::fuzzing::approvals` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::approvals(data));
