#![no_main]
//! See `portcullis::fuzzing::bearer_token` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::bearer_token(data));
