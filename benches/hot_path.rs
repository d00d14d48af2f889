//! The cost on the caller's thread of handing one event to the bridge, per call (median and p99, worker busy),
//! side by side with what a Rust user would otherwise write for the same span: `tracing` + `tracing-opentelemetry`,
//! and the OTel `Tracer` API directly, both on an SDK tracer provider with a batch processor and a no-op exporter.
//! Also counts heap allocations on the caller's thread per `record` (the event itself is built beforehand).
//!
//! `cargo bench --bench hot_path`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bamboo_otel::events::*;
use bamboo_otel::{Bridge, ExporterKind};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

// ---- allocation counting, on the measuring thread only ----
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local!(static COUNT_HERE: Cell<bool> = const { Cell::new(false) });

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNT_HERE.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}
#[global_allocator]
static A: Counting = Counting;

#[derive(Debug)]
struct NoopExporter;
impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder().with_span_processor(BatchSpanProcessor::builder(NoopExporter).build()).build()
}

/// Per-call nanoseconds, measured around each call; the cost of reading the clock is measured and subtracted.
struct Samples(Vec<u64>);
impl Samples {
    fn stats(&mut self, clock: u64) -> (f64, f64, f64) {
        self.0.sort_unstable();
        let q = |p: f64| self.0[((self.0.len() - 1) as f64 * p) as usize].saturating_sub(clock) as f64;
        let mean = self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 - clock as f64;
        (q(0.5), q(0.99), mean)
    }
}

fn clock_cost() -> u64 {
    let mut v: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            let e = t.elapsed();
            e.as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

const BURST: usize = 2_000;
const BURSTS: usize = 100;

/// Round start and completion pairs: two events make one span, as in Bamboo.
fn events(n: usize) -> Vec<MetricsEvent> {
    let mut v = Vec::with_capacity(n);
    let t = chrono::Utc::now();
    for i in 0..n / 2 {
        let round = format!("round-{i}");
        v.push(
            ChatEvent::RoundStarted {
                meta: EventMeta::at(format!("e{i}s"), t, None),
                round_id: round.clone(),
                session_id: "s".into(),
                model: "claude-sonnet-4-5".into(),
            }
            .into(),
        );
        v.push(
            ChatEvent::RoundCompleted {
                meta: EventMeta::at(format!("e{i}c"), t, None),
                round_id: round,
                session_id: "s".into(),
                status: RoundStatus::Success,
                usage: TokenUsage { prompt_tokens: 1200, completion_tokens: 80, total_tokens: 1280 },
                latency_ms: 900,
                error: None,
                cached_tool_outputs: None,
            }
            .into(),
        );
    }
    v
}

fn bench_bridge(clock: u64) -> f64 {
    // Spans are translated and batched by the worker; the exporter is `none` so the figure is the caller's cost.
    let bridge = Bridge::builder()
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .queue_size(BURST * 2)
        .build()
        .unwrap();
    let mut samples = Samples(Vec::with_capacity(BURST * BURSTS));
    let mut allocs = 0;
    for _ in 0..BURSTS {
        let batch = events(BURST);
        COUNT_HERE.with(|c| c.set(true));
        let before = ALLOCS.load(Ordering::Relaxed);
        for e in batch {
            let t = Instant::now();
            bridge.record(e);
            samples.0.push(t.elapsed().as_nanos() as u64);
        }
        allocs += ALLOCS.load(Ordering::Relaxed) - before;
        COUNT_HERE.with(|c| c.set(false));
        // The worker is busy with the burst while the next one is built; wait for it before the next burst.
        bridge.force_flush(Duration::from_secs(10));
    }
    let report = bridge.shutdown(Duration::from_secs(10));
    let (p50, p99, mean) = samples.stats(clock);
    let per_span = 2.0 * mean;
    println!(
        "record (bridge)              median {p50:>6.0} ns  p99 {p99:>6.0} ns  mean {mean:>6.0} ns/event  {per_span:>6.0} ns/span  \
         allocations/event {:.3}  dropped {}",
        allocs as f64 / (BURST * BURSTS) as f64,
        report.events_dropped
    );
    per_span
}

/// `record` while another thread keeps the queue full, so most calls take the drop path (count, maybe log):
/// the caller's cost under overload, next to the unloaded figure above.
fn bench_bridge_overloaded(clock: u64) {
    let bridge = Bridge::builder()
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .queue_size(1024)
        .build()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let filler = {
        let (bridge, stop) = (bridge.clone(), stop.clone());
        let template = events(BURST);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for e in &template {
                    bridge.record(e.clone());
                }
            }
        })
    };
    let mut samples = Samples(Vec::with_capacity(BURST * BURSTS));
    let dropped_before = bridge.dropped_events();
    for _ in 0..BURSTS {
        let batch = events(BURST);
        for e in batch {
            let t = Instant::now();
            bridge.record(e);
            samples.0.push(t.elapsed().as_nanos() as u64);
        }
    }
    let dropped = bridge.dropped_events() - dropped_before;
    stop.store(true, Ordering::Relaxed);
    filler.join().unwrap();
    bridge.shutdown(Duration::from_secs(10));
    let (p50, p99, mean) = samples.stats(clock);
    println!(
        "record (bridge, queue full)  median {p50:>6.0} ns  p99 {p99:>6.0} ns  mean {mean:>6.0} ns/event  \
         (both threads dropped {dropped} events while measured)"
    );
}

fn bench_tracer(clock: u64) -> f64 {
    let provider = provider();
    let tracer = provider.tracer("bench");
    let mut samples = Samples(Vec::with_capacity(BURST * BURSTS / 2));
    for _ in 0..BURSTS {
        for _ in 0..BURST / 2 {
            let t = Instant::now();
            let mut span = tracer.start("chat claude-sonnet-4-5");
            span.set_attribute(KeyValue::new("gen_ai.operation.name", "chat"));
            span.set_attribute(KeyValue::new("gen_ai.request.model", "claude-sonnet-4-5"));
            span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 1200));
            span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 80));
            span.set_attribute(KeyValue::new("bamboo.round.status", "success"));
            span.end();
            samples.0.push(t.elapsed().as_nanos() as u64);
        }
        let _ = provider.force_flush();
    }
    let (p50, p99, mean) = samples.stats(clock);
    println!("OTel Tracer API              median {p50:>6.0} ns  p99 {p99:>6.0} ns  mean {mean:>6.0} ns/span");
    let _ = provider.shutdown();
    mean
}

fn bench_tracing(clock: u64) -> f64 {
    use tracing_subscriber::prelude::*;
    let provider = provider();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    let mut samples = Samples(Vec::with_capacity(BURST * BURSTS / 2));
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..BURSTS {
            for _ in 0..BURST / 2 {
                let t = Instant::now();
                let span = tracing::info_span!(
                    "chat claude-sonnet-4-5",
                    gen_ai.operation.name = "chat",
                    gen_ai.request.model = "claude-sonnet-4-5",
                    gen_ai.usage.input_tokens = 1200,
                    gen_ai.usage.output_tokens = 80,
                    bamboo.round.status = "success",
                );
                drop(span.enter());
                drop(span);
                samples.0.push(t.elapsed().as_nanos() as u64);
            }
            let _ = provider.force_flush();
        }
    });
    let (p50, p99, mean) = samples.stats(clock);
    println!("tracing + tracing-otel       median {p50:>6.0} ns  p99 {p99:>6.0} ns  mean {mean:>6.0} ns/span");
    let _ = provider.shutdown();
    mean
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let clock = clock_cost();
    println!("hot path: {BURSTS} bursts of {BURST} (clock read cost {clock} ns, subtracted)");
    let bridge = bench_bridge(clock);
    bench_bridge_overloaded(clock);
    let tracer = bench_tracer(clock);
    let tracing = bench_tracing(clock);
    println!(
        "per span: bridge {bridge:.0} ns; Tracer API {:.1}x the bridge's cost; tracing {:.1}x",
        tracer / bridge,
        tracing / bridge
    );
}
