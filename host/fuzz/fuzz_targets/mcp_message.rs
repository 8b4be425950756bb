#![no_main]
//! See `portcullis::fuzzing::mcp_message` for what this target drives and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis::fuzzing::mcp_message(data));
