//! Translation throughput on one core: the benchmark mix (sessions of 5 rounds, 3 tool calls each, a forwarded
//! request per round) through `Translator::process`, output drained as the worker does.
//!
//! Side by side in one run: the default (cost by the shipped price table) and `prices: None` (cost off), so
//! the price of pricing every round and request is its own figure.
//!
//! `cargo bench --bench translate`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};

fn translate(c: &mut Criterion) {
    let events = bamboo_otel::demo::load_mix(1_000, chrono::Utc::now());
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, priced) in [("load_mix_37k_events", true), ("load_mix_37k_events_cost_off", false)] {
        bench(&mut g, name, &events, now, priced);
    }
    g.finish();
}

fn bench(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    events: &[bamboo_otel::MetricsEvent],
    now: chrono::DateTime<chrono::Utc>,
    priced: bool,
) {
    let cfg = || {
        let mut cfg = TranslateConfig { clock: TtlClock::EventTime, ..Default::default() };
        if !priced {
            cfg.prices = None;
        }
        cfg
    };
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || (Translator::new(cfg()), Output::new()),
            |(tr, out)| {
                for e in events {
                    tr.process(e, now, out);
                    // The worker drains after every event; keep the buffers warm the same way.
                    out.spans.clear();
                    out.metrics.clear();
                }
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, translate);
criterion_main!(benches);
