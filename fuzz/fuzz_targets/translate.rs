//! The translator on an arbitrary stream of lines (checks in `bamboo_otel::__fuzz`). The seed corpus is real
//! traffic, so mutations keep most lines valid events.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bamboo_otel::__fuzz::translate(data));
