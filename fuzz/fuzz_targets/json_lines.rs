//! The JSON-lines reader and the event parser, on arbitrary bytes: never a panic, every problem names its line,
//! every event it accepts survives a round trip through its own JSON.
#![no_main]

use bamboo_otel::sources::jsonl::JsonLines;
use bamboo_otel::MetricsEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A tiny line limit too, so the skip-without-holding path for long lines is exercised.
    for max_line in [64usize, 4 << 20] {
        let mut last_line = 0;
        for item in JsonLines::with_max_line(data, max_line) {
            let line = match item {
                Ok((line, event)) => {
                    let again = MetricsEvent::from_json(&event.to_json()).expect("an accepted event re-parses");
                    assert_eq!(again, event, "round trip changed the event");
                    line
                }
                Err(problem) => {
                    assert!(!problem.code.is_empty());
                    problem.line
                }
            };
            assert!(line > last_line, "line numbers go up: {line} after {last_line}");
            last_line = line;
        }
    }
});
