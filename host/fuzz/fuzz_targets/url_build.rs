#![no_main]
//! See `portcullis::fuzzing::url_build` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::url_build(data));
