//! Hostile and broken input: a 100 MB line, JSON nested a million deep, invalid UTF-8, timestamps at the ends of
//! what the wire format allows, latencies that overflow. Each is reported with its line and skipped, or
//! translated without a panic; the strange times go through the real export path to an OTLP/HTTP receiver.
//! Its own test binary, so the memory figure of the long line is this test's.
#![cfg(all(feature = "sources", feature = "http"))]

mod common;

use std::io::{BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bamboo_otel::sources::jsonl::JsonLines;
use bamboo_otel::{Bridge, ExporterKind, MetricsEvent, Protocol};
use common::http_sink::{self, Reply};

/// A reader that yields `head`, then `n` filler bytes, then `tail`, without ever holding the filler.
struct Huge {
    head: Vec<u8>,
    n: usize,
    tail: Vec<u8>,
    pos: usize,
}

impl Read for Huge {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let total = self.head.len() + self.n + self.tail.len();
        let mut k = 0;
        while k < buf.len() && self.pos < total {
            buf[k] = if self.pos < self.head.len() {
                self.head[self.pos]
            } else if self.pos < self.head.len() + self.n {
                b'a'
            } else {
                self.tail[self.pos - self.head.len() - self.n]
            };
            k += 1;
            self.pos += 1;
        }
        Ok(k)
    }
}

/// The tests here run one at a time, so the long line's memory figure is its own.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

fn valid_line() -> String {
    bamboo_otel::demo::agent_session(chrono::Utc::now())[1].to_json()
}

#[test]
fn a_100_mb_line_is_reported_and_skipped_without_being_held() {
    let _one = serial();
    let before = common::proc_status_kib("VmHWM:");
    let reader = Huge {
        head: br#"{"Chat":{"SessionStarted":{"model":""#.to_vec(),
        n: 100 << 20,
        tail: format!("\"}}}}\n{}\n", valid_line()).into_bytes(),
        pos: 0,
    };
    let items: Vec<_> = JsonLines::new(BufReader::new(reader)).collect();
    let grew = common::proc_status_kib("VmHWM:").saturating_sub(before);
    assert_eq!(items.len(), 2);
    let problem = items[0].as_ref().unwrap_err();
    assert_eq!((problem.line, problem.code), (1, "line_too_long"), "{problem:?}");
    assert_eq!(items[1].as_ref().unwrap().0, 2, "the next line is read");
    println!("peak memory grew {grew} KiB reading a 100 MiB line");
    assert!(grew < 16 * 1024, "the long line was held in memory: +{grew} KiB");
}

#[test]
fn json_nested_a_million_deep_never_overflows_the_stack() {
    let _one = serial();
    let deep = |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    let meta = |extra: &str| {
        format!(
            r#"{{"Chat":{{"SessionStarted":{{"meta":{{"event_id":"x","occurred_at":"2026-11-02T09:00:00Z","trace_id":null,"extra":{extra}}},"session_id":"s","model":"m"}}}}}}"#
        )
    };
    let lines = [
        deep("[", "]", 1_000_000),
        // Inside a known struct, as an unknown field's value: serde has to descend into it to skip it.
        meta(&deep("[", "]", 1_000_000)),
        meta(&deep("{\"a\":", "}", 400_000)),
        valid_line(),
    ];
    let items: Vec<_> = JsonLines::new(lines.join("\n").as_bytes()).collect();
    assert_eq!(items.len(), 4, "one result per line");
    let p = items[0].as_ref().unwrap_err();
    assert_eq!((p.line, p.code), (1, "invalid_json"), "{p:?}");
    // serde_json skips an unknown value without recursing: the event is accepted, its unknown field ignored.
    for (i, item) in items.iter().enumerate().skip(1) {
        let (line, event) = item.as_ref().unwrap_or_else(|p| panic!("line {}: {p:?}", i + 1));
        assert_eq!(*line, i as u64 + 1);
        assert!(matches!(event, MetricsEvent::Chat(_)));
    }
}

#[test]
fn invalid_utf8_names_its_line_and_the_rest_goes_on() {
    let _one = serial();
    let mut bytes = b"{\"System\":\"Worker\xff\xfeStarted\"}\n".to_vec();
    bytes.extend_from_slice(valid_line().as_bytes());
    let items: Vec<_> = JsonLines::new(&bytes[..]).collect();
    let p = items[0].as_ref().unwrap_err();
    assert_eq!((p.line, p.code), (1, "invalid_utf8"), "{p:?}");
    assert_eq!(items[1].as_ref().unwrap().0, 2);
}

/// Events at the ends of what the wire format allows, through the real bridge to an OTLP/HTTP receiver.
#[test]
fn extreme_timestamps_and_overflowing_latencies_export_sane_spans() {
    let _one = serial();
    let ends =
        ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2262-04-11T23:47:16.854Z", "9999-12-31T23:59:59.999Z"];
    let mut lines = Vec::new();
    for (i, at) in ends.iter().enumerate() {
        for (j, latency) in [0u64, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX].iter().enumerate() {
            let id = format!("{i}-{j}");
            lines.push(format!(
                r#"{{"Chat":{{"ToolCalled":{{"meta":{{"event_id":"t{id}","occurred_at":"{at}","trace_id":null}},"tool_call_id":"c{id}","round_id":"r{id}","session_id":"s{id}","tool_name":"Read","latency_ms":{latency},"success":true}}}}}}"#
            ));
            lines.push(format!(
                r#"{{"Forward":{{"RequestCompleted":{{"meta":{{"event_id":"f{id}","occurred_at":"{at}","trace_id":null}},"request_id":"q{id}","status_code":200,"status":"success","usage":null,"latency_ms":{latency},"error":null}}}}}}"#
            ));
        }
    }
    let events: Vec<MetricsEvent> = lines.iter().map(|l| MetricsEvent::from_json(l).expect(l)).collect();
    let times: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let seen = times.clone();
    let (url, _) = http_sink::start_scripted(Arc::new(move |_, body, _| {
        seen.lock()
            .unwrap()
            .extend(http_sink::spans(body).iter().map(|s| (s.start_time_unix_nano, s.end_time_unix_nano)));
        Reply::ok()
    }));
    let bridge = Bridge::builder()
        .traces_endpoint(&url, Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    for e in events {
        bridge.record(e);
    }
    let report = bridge.shutdown(Duration::from_secs(30));
    assert_eq!((report.spans_exported, report.spans_dropped), (40, 0), "{report:?}");
    let times = times.lock().unwrap();
    assert_eq!(times.len(), 40);
    let year_2262 = 9_223_372_036_854_775_807u64;
    for &(start, end) in times.iter() {
        assert!(start <= end, "a span ends before it starts: {start} > {end}");
        assert!(end <= year_2262, "a time beyond what was sent wrapped around: {end}");
    }
}
