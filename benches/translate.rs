//! Translation throughput on one core: the benchmark mix (sessions of 5 rounds, 3 tool calls each, a forwarded
//! request per round) through `Translator::process`, output drained as the worker does.
//!
//! `cargo bench --bench translate`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};

fn translate(c: &mut Criterion) {
    let events = bamboo_otel::demo::load_mix(1_000, chrono::Utc::now());
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("load_mix_37k_events", |b| {
        b.iter_batched_ref(
            || (Translator::new(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() }), Output::new()),
            |(tr, out)| {
                for e in &events {
                    tr.process(e, now, out);
                    // The worker drains after every event; keep the buffers warm the same way.
                    out.spans.clear();
                    out.metrics.clear();
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
