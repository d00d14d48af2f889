//! The bodies of the fuzz targets (`fuzz_targets/`), included by path into each target and into the regression
//! test that replays every crash they found (`tests/fuzz_regressions.rs`), so both run exactly the same checks
//! through the crate's public API. Each panics on a broken invariant.
#![allow(dead_code)]

use std::collections::HashSet;

use bamboo_otel::events::MetricsEvent;
use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};

/// The JSON-lines reader and the parser on arbitrary bytes: never a panic, line numbers only go up, every
/// accepted event survives a round trip through its own JSON. A tiny line limit exercises the long-line skip.
#[cfg(feature = "sources")]
pub fn json_lines(data: &[u8]) {
    use bamboo_otel::sources::jsonl::JsonLines;
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
}

/// The translator on an arbitrary stream. The first byte picks the settings (time-to-live, capacity, clock);
/// the rest is split into lines, each fed as an event when it parses, or else moving the wall clock on (so
/// idle eviction runs). Checks: no span ends before it starts, no span id is emitted twice, open state stays
/// within its cap, and `finish` leaves nothing open.
pub fn translate(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = TranslateConfig {
        span_ttl: std::time::Duration::from_secs(u64::from(mode & 0x0f) * 60),
        max_open_spans: 1 + usize::from(mode >> 4),
        dedupe_window: 1 << 16,
        clock: if mode & 1 == 0 { TtlClock::Wall } else { TtlClock::EventTime },
        ..TranslateConfig::default()
    };
    let cap = cfg.max_open_spans.max(2);
    let mut t = Translator::new(cfg);
    let mut out = Output::new();
    let mut now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_790_000_000, 0).expect("valid");
    let mut ids = HashSet::new();
    let mut check = |out: &mut Output| {
        for s in out.spans.drain(..) {
            assert!(s.end >= s.start, "span {} ends before it starts", s.name);
            assert!(ids.insert(s.span_id), "span {} {:?} emitted twice", s.name, s.span_id);
        }
        out.metrics.clear();
    };
    for line in rest.split(|b| *b == b'\n') {
        match std::str::from_utf8(line).ok().and_then(|text| MetricsEvent::from_json(text).ok()) {
            Some(event) => t.process(&event, now, &mut out),
            None => {
                now += chrono::Duration::seconds(line.len() as i64 * 30);
                t.tick(now, &mut out);
            }
        }
        check(&mut out);
        assert!(t.open_entries() <= cap, "open state beyond its cap");
    }
    t.finish(now, &mut out);
    check(&mut out);
    assert_eq!(t.open_spans(), 0, "finish leaves nothing open");
}
