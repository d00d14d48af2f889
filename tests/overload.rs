//! Overload: a producer far faster than export, for 60 s, into a backend that answers every request after
//! 200 ms (two requests in flight: about 5k spans/s). The bridge must hold memory flat (bounded by its queues), count every event it drops, keep its control
//! path answering, lose no span it translated, and deliver everything once the load drops. Its own test binary,
//! so the RSS figures are this test's. `record` latency is printed, not asserted: timing claims live in
//! `benches/hot_path.rs` (BENCHMARKS.md).
#![cfg(feature = "http")]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bamboo_otel::{Bridge, ExporterKind, MetricsEvent, Protocol};
use common::http_sink::{self, Reply};

fn rss_mib() -> u64 {
    common::proc_status_kib("VmRSS:") / 1024
}

const OVERLOAD: Duration = Duration::from_secs(60);

#[test]
fn sixty_seconds_of_overload_keep_memory_flat_count_every_drop_and_recover() {
    let spans = Arc::new(AtomicU64::new(0));
    let ids: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    let (seen, seen_ids) = (spans.clone(), ids.clone());
    let (url, _) = http_sink::start_scripted(Arc::new(move |_, body, _| {
        std::thread::sleep(Duration::from_millis(200));
        let mut ids = seen_ids.lock().unwrap();
        for s in http_sink::spans(body) {
            seen.fetch_add(1, Ordering::Relaxed);
            ids.insert(s.span_id);
        }
        Reply::ok()
    }));
    let bridge = Bridge::builder()
        .traces_endpoint(&url, Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .max_concurrent_exports(2)
        .queue_size(8192)
        .max_queued_spans(32_768)
        .max_open_spans(10_000)
        .build()
        .unwrap();
    // One session's events, reused with fresh ids per copy so nothing is a duplicate.
    let template = bamboo_otel::demo::agent_session(chrono::Utc::now());
    let rss_before = rss_mib();

    let stop = Arc::new(AtomicBool::new(false));
    let offered = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bridge, stop, offered, template) = (bridge.clone(), stop.clone(), offered.clone(), template.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for e in &template {
                    let e = renumbered(e, n);
                    if n % 1024 == 0 {
                        let t = Instant::now();
                        bridge.record(e);
                        samples.push(t.elapsed());
                    } else {
                        bridge.record(e);
                    }
                    n += 1;
                }
            }
            offered.store(n, Ordering::Relaxed);
            samples
        })
    };
    let started = Instant::now();
    let (mut rss_mid, mut rss_peak) = (0, 0);
    let mut flush_answered = Vec::new();
    while started.elapsed() < OVERLOAD {
        std::thread::sleep(Duration::from_secs(1));
        let rss = rss_mib();
        rss_peak = rss_peak.max(rss);
        if started.elapsed() >= OVERLOAD / 2 && rss_mid == 0 {
            rss_mid = rss;
            // The control path still answers under load, within its bound.
            let t = Instant::now();
            bridge.force_flush(Duration::from_secs(15));
            flush_answered.push(t.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut samples = producer.join().unwrap();
    let rss_end = rss_mib();
    let offered = offered.load(Ordering::Relaxed);
    let dropped = bridge.dropped_events();

    // Load drops: the backlog drains, then a few sessions at a gentle pace must all get through.
    let calm_from = Instant::now();
    while !bridge.force_flush(Duration::from_secs(10)) {
        assert!(calm_from.elapsed() < Duration::from_secs(120), "the backlog never drained");
    }
    let recovered_in = calm_from.elapsed();
    let dropped_before = bridge.dropped_events();
    let calm: Vec<MetricsEvent> =
        (0..20).flat_map(|i| template.iter().map(move |e| renumbered(e, u64::MAX - i))).collect();
    for e in &calm {
        bridge.record(e.clone());
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = bridge.shutdown(Duration::from_secs(120));

    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "offered {offered} events in {OVERLOAD:?}, dropped at the queue {dropped}; spans exported {}, received {}; \
         RSS before {rss_before} MiB, at 30 s {rss_mid} MiB, at 60 s {rss_end} MiB, peak {rss_peak} MiB; \
         record p50 {:?} p99 {:?} ({} samples); force_flush answered in {flush_answered:?}; \
         backlog drained {recovered_in:?} after the load stopped",
        report.spans_exported,
        spans.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99),
        samples.len()
    );
    assert!(dropped > 0, "the producer was meant to outrun export");
    // Every event is accounted for: translated, or dropped at the queue and counted.
    assert_eq!(report.events_received + report.events_dropped, offered + calm.len() as u64, "{report:?}");
    assert_eq!(bridge.dropped_events(), dropped_before, "the calm phase dropped events");
    // A healthy (slow) backend: the bridge pushes back at the queue instead of dropping spans it made.
    assert_eq!(report.spans_dropped, 0, "{report:?}");
    assert_eq!(spans.load(Ordering::Relaxed), report.spans_exported, "the sink got what the report says");
    assert!(!report.timed_out, "{report:?}");
    assert!(flush_answered.iter().all(|t| *t < Duration::from_secs(16)), "{flush_answered:?}");
    // Memory: flat over the second half, and bounded by the queues (8,192 events, 32,768 spans) and the open
    // state (10,000 entries).
    assert!(rss_end <= rss_mid + 32, "RSS grew under steady overload: {rss_mid} -> {rss_end} MiB");
    assert!(rss_peak <= rss_before + 256, "RSS beyond the queues' bound: {rss_before} -> {rss_peak} MiB");
    // Recovery: every span of the calm phase arrived.
    let ids = ids.lock().unwrap();
    let want = common::run(&calm).spans;
    let missing = want.iter().filter(|s| !ids.contains(&s.span_id.0.to_vec())).count();
    assert_eq!(missing, 0, "{missing} of {} spans from after the overload never arrived", want.len());
}

/// `e` with every id made unique to copy `n`.
fn renumbered(e: &MetricsEvent, n: u64) -> MetricsEvent {
    let json = e.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut ids = HashSet::new();
    common::backends::collect_ids(&v, &mut ids);
    let mut text = json;
    for id in ids {
        text = text.replace(&format!("\"{id}\""), &format!("\"{id}-{n}\""));
    }
    MetricsEvent::from_json(&text).unwrap()
}
