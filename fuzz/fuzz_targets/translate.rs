//! The translator on an arbitrary stream: the input's lines are parsed as events (the seed corpus is real
//! traffic, so mutations keep most lines valid) and fed in order, with ticks and a final `finish`. Checks what
//! must hold whatever the input: no panic, no span ending before it starts, unique span ids, open state within
//! its cap and empty after `finish`.
#![no_main]

use std::collections::HashSet;

use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};
use bamboo_otel::MetricsEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let cfg = TranslateConfig {
        idle_ttl: std::time::Duration::from_secs(u64::from(mode & 0x0f) * 60),
        max_open: 1 + usize::from(mode >> 4),
        dedupe_window: 1 << 16,
        clock: if mode & 1 == 0 { TtlClock::Wall } else { TtlClock::EventTime },
        ..TranslateConfig::default()
    };
    let max_open = cfg.max_open;
    let mut t = Translator::new(cfg);
    let mut out = Output::new();
    let mut now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_790_000_000, 0).unwrap();
    let mut ids = HashSet::new();
    let mut check = |out: &mut Output| {
        for s in out.spans.drain(..) {
            assert!(s.end >= s.start, "span {} ends before it starts", s.name);
            assert!(ids.insert(s.span_id), "span {} emitted twice", s.name);
        }
        out.metrics.clear();
    };
    for line in rest.split(|b| *b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else { continue };
        match MetricsEvent::from_json(text) {
            Ok(event) => t.process(&event, now, &mut out),
            // A line that is not an event moves the wall clock on, so idle eviction is exercised.
            Err(_) => {
                now += chrono::Duration::seconds(line.len() as i64 * 30);
                t.tick(now, &mut out);
            }
        }
        check(&mut out);
        assert!(t.open_entries() <= max_open.max(2), "open state beyond its cap");
    }
    t.finish(now, &mut out);
    check(&mut out);
    assert_eq!(t.open_spans(), 0, "finish leaves nothing open");
});
