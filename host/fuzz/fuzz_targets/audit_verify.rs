#![no_main]
//! See `portcullis::fuzzing::audit_verify` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::audit_verify(data));
