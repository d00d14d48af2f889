//! The translator on an arbitrary stream of lines (checks in `fuzz/checks.rs`). The seed corpus is real
//! traffic, so mutations keep most lines valid events.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::translate(data));
