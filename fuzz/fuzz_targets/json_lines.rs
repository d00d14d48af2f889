//! The JSON-lines reader and the event parser on arbitrary bytes (checks in `fuzz/checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::json_lines(data));
