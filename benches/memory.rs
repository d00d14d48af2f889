//! Memory: bytes of translator state per open (not yet completed) session, round and request, measured with a
//! counting allocator; resident memory with 1 million open sessions; and RSS sampled through a long replay of the
//! benchmark mix through the translator (must stay flat).
//!
//! `cargo bench --bench memory` (`BENCH_REPLAY_SECS`, default 60, sets the replay's length).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bamboo_otel::events::*;
use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}
#[global_allocator]
static A: Counting = Counting;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn translator(max_open_spans: usize) -> Translator {
    Translator::new(TranslateConfig { clock: TtlClock::EventTime, max_open_spans, ..Default::default() })
}

/// A cheap index for spreading rounds over sessions (quality does not matter here).
fn fastrand(n: usize) -> usize {
    static STATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x2545_f491_4f6c_dd1d);
    let x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    ((x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 33) as usize % n
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Live heap bytes per open span of one kind; ids are UUIDs, as upstream. Rounds belong to 1,000 sessions opened
/// before the measurement (100 rounds each), as rounds do.
fn per_open(kind: &str, n: usize) -> f64 {
    let t = chrono::Utc::now();
    let sessions: Vec<String> = (0..1_000).map(|_| uuid()).collect();
    let events: Vec<MetricsEvent> = (0..n)
        .map(|_| match kind {
            "session" => ChatEvent::SessionStarted {
                meta: EventMeta::at(uuid(), t, None),
                session_id: uuid(),
                model: "claude-sonnet-4-5".into(),
            }
            .into(),
            "round" => ChatEvent::RoundStarted {
                meta: EventMeta::at(uuid(), t, None),
                round_id: uuid(),
                session_id: sessions[fastrand(sessions.len())].clone(),
                model: "claude-sonnet-4-5".into(),
            }
            .into(),
            _ => ForwardEvent::RequestStarted {
                meta: EventMeta::at(uuid(), t, None),
                request_id: uuid(),
                endpoint: "anthropic.messages".into(),
                model: "claude-sonnet-4-5".into(),
                is_stream: true,
            }
            .into(),
        })
        .collect();
    let mut tr = translator(n * 2);
    let mut out = Output::new();
    if kind == "round" {
        for s in &sessions {
            let e: MetricsEvent = ChatEvent::SessionStarted {
                meta: EventMeta::at(uuid(), t, None),
                session_id: s.clone(),
                model: "claude-sonnet-4-5".into(),
            }
            .into();
            tr.process(&e, t, &mut out);
        }
    }
    let before = LIVE.load(Ordering::Relaxed);
    for e in &events {
        tr.process(e, t, &mut out);
    }
    out.spans.clear();
    out.metrics.clear();
    out.spans.shrink_to_fit();
    out.metrics.shrink_to_fit();
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    std::hint::black_box(&tr);
    bytes as f64 / n as f64
}

fn main() {
    for kind in ["session", "round", "request"] {
        // Large enough that hash-table growth steps average out.
        println!("open {kind:<8} {:>6.0} bytes of state each (100k open)", per_open(kind, 100_000));
    }

    let rss0 = rss_kib();
    let n = 1_000_000;
    let mut tr = translator(n + 1);
    let mut out = Output::new();
    let t = chrono::Utc::now();
    for i in 0..n {
        let e: MetricsEvent = ChatEvent::SessionStarted {
            meta: EventMeta::at(format!("{i:036}"), t, None),
            session_id: uuid(),
            model: "claude-sonnet-4-5".into(),
        }
        .into();
        tr.process(&e, t, &mut out);
    }
    println!("1M open sessions: RSS {} MiB above the baseline of {} MiB", (rss_kib() - rss0) / 1024, rss0 / 1024);
    drop(tr);

    let secs: u64 = std::env::var("BENCH_REPLAY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let mut tr = translator(100_000);
    let mut out = Output::new();
    let started = Instant::now();
    let mut clock = chrono::Utc::now() - chrono::Duration::days(30);
    let (mut events, mut samples) = (0u64, Vec::new());
    let mut next_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let batch = bamboo_otel::demo::load_mix(1_000, clock);
        clock += chrono::Duration::seconds(2_000);
        for e in &batch {
            tr.process(e, clock, &mut out);
            out.spans.clear();
            out.metrics.clear();
        }
        events += batch.len() as u64;
        if Instant::now() >= next_sample {
            samples.push(rss_kib());
            next_sample += Duration::from_secs(1);
        }
    }
    let warm = &samples[samples.len().min(3)..];
    let (lo, hi) = (warm.iter().min().copied().unwrap_or(0), warm.iter().max().copied().unwrap_or(0));
    println!(
        "replay for {secs} s: {events} events, RSS after warm-up between {} and {} MiB ({} samples)",
        lo / 1024,
        hi / 1024,
        warm.len()
    );
}
