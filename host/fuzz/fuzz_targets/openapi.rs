#![no_main]
//! See `portcullis::fuzzing::openapi` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::openapi(data));
