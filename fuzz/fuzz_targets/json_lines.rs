//! The JSON-lines reader and the event parser on arbitrary bytes (checks in `bamboo_otel::__fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bamboo_otel::__fuzz::json_lines(data));
