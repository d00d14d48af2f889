//! End to end: events per second from `record` to OTLP bytes on the wire, into an in-process OTLP/HTTP sink that
//! only counts bytes; side by side with two floors: the time to protobuf-encode the same spans alone, as the
//! bridge encodes them (`bamboo_otel::otlp::span` + `prost`), and as it did through the SDK's `SpanData` and
//! `opentelemetry-proto`'s conversion before it had its own wire. Then, when a rotel with a blackhole exporter is up on `BENCH_ROTEL`
//! (default 127.0.0.1:24317; `scripts/bench.sh` starts one), the
//! sustained rate into a real collector over gRPC: the highest offered rate with zero drops, and CPU per 100k
//! events.
//!
//! `cargo bench --bench export`

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "../tests/common/http_sink.rs"]
mod http_sink;

use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};
use bamboo_otel::{Bridge, ExporterKind, MetricsEvent, Protocol};
use prost::Message;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn end_to_end(events: &[MetricsEvent]) -> (f64, u64) {
    let (url, counts) = http_sink::start();
    let bridge = Bridge::builder()
        .traces_endpoint(url, Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .queue_size(65_536)
        .replay_clock()
        .build()
        .unwrap();
    // The agent builds its events anyway: the copies are made before the clock starts.
    let owned = events.to_vec();
    let started = Instant::now();
    for e in owned {
        bridge.record_wait(e).unwrap();
    }
    let report = bridge.shutdown(Duration::from_secs(60));
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(report.spans_dropped, 0, "{report:?}");
    (events.len() as f64 / secs, counts.bytes.load(Ordering::Relaxed))
}

/// The translator's output for `events` (its spans are what the bridge exports), translated before any clock
/// starts. The translator and the whole output come back, to be dropped after the floors are measured: freeing
/// their millions of small allocations first fragments glibc's heap, and the floors' allocations then ran 3×
/// slower (seen with `perf`: `unlink_chunk`, `malloc_consolidate`).
fn translated(events: &[MetricsEvent]) -> (Translator, Output) {
    let mut tr = Translator::new(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() });
    let mut out = Output::new();
    for e in events {
        tr.process(e, chrono::Utc::now(), &mut out);
    }
    tr.finish(chrono::Utc::now(), &mut out);
    (tr, out)
}

/// The floor: encode the same spans as OTLP protobuf requests of 512 spans, as the bridge's wire does.
fn encode_floor(events: &[MetricsEvent], spans: &[bamboo_otel::translate::SpanRecord]) -> (f64, u64) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    let resource = bamboo_otel::otlp::resource(&[("service.name".into(), "bench".into())]);
    let started = Instant::now();
    let mut bytes = 0u64;
    for chunk in spans.chunks(512) {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(bamboo_otel::otlp::scope()),
                    spans: chunk.iter().map(bamboo_otel::otlp::span).collect(),
                    schema_url: bamboo_otel::semconv::SCHEMA_URL.into(),
                }],
                schema_url: String::new(),
            }],
        };
        bytes += req.encode_to_vec().len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    (events.len() as f64 / secs, bytes)
}

/// The earlier floor: the same spans through the SDK's `SpanData` and `opentelemetry-proto`'s conversion, as
/// the bridge sent them through the SDK's exporter.
fn sdk_encode_floor(events: &[MetricsEvent], spans: &[bamboo_otel::translate::SpanRecord]) -> (f64, u64) {
    let resource = opentelemetry_sdk::Resource::builder_empty().with_service_name("bench").build();
    let resource = (&resource).into();
    let scope = opentelemetry::InstrumentationScope::builder("bamboo-otel").build();
    let started = Instant::now();
    let mut bytes = 0u64;
    for chunk in spans.chunks(512) {
        let data: Vec<_> = chunk.iter().map(|s| sdk::span_data(s, &scope)).collect();
        let req = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope(
                data, &resource,
            ),
        };
        bytes += req.encode_to_vec().len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    (events.len() as f64 / secs, bytes)
}

/// The conversion to the SDK's `SpanData` the bridge used before its own wire (kept here as the baseline).
mod sdk {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use bamboo_otel::translate::{AttrValue, KeyValue, SpanKind, SpanRecord, SpanStatus};
    use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry::{KeyValue as OtelKv, Value};
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

    fn time(t: chrono::DateTime<chrono::Utc>) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(bamboo_otel::otlp::unix_nanos(t))
    }

    fn attrs(attrs: &[KeyValue]) -> Vec<OtelKv> {
        let value = |v: &AttrValue| match v {
            AttrValue::Str(Cow::Borrowed(s)) => Value::from(*s),
            AttrValue::Str(Cow::Owned(s)) => Value::from(s.clone()),
            AttrValue::I64(i) => Value::I64(*i),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::F64(v) => Value::F64(*v),
        };
        attrs.iter().map(|kv| OtelKv::new(kv.key, value(&kv.value))).collect()
    }

    pub fn span_data(s: &SpanRecord, scope: &opentelemetry::InstrumentationScope) -> SpanData {
        let mut events = SpanEvents::default();
        for e in &s.events {
            events.events.push(opentelemetry::trace::Event::new(e.name, time(e.time), attrs(&e.attributes), 0));
        }
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(s.trace_id.0),
                SpanId::from_bytes(s.span_id.0),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: s.parent_span_id.map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.0)),
            parent_span_is_remote: false,
            span_kind: match s.kind {
                SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
                SpanKind::Client => opentelemetry::trace::SpanKind::Client,
            },
            name: Cow::Owned(s.name.clone()),
            start_time: time(s.start),
            end_time: time(s.end),
            attributes: attrs(&s.attributes),
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: match &s.status {
                SpanStatus::Unset => Status::Unset,
                SpanStatus::Error(msg) => Status::error(msg.clone()),
            },
            instrumentation_scope: scope.clone(),
        }
    }
}

/// Offers `rate` events/s to rotel for `secs`; returns (events dropped, spans dropped, CPU s per 100k events).
fn into_rotel(endpoint: &str, rate: u64, secs: u64) -> (u64, u64, f64) {
    let bridge = Bridge::builder()
        .traces_endpoint(format!("http://{endpoint}"), Protocol::Grpc)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    let events = bamboo_otel::demo::load_mix((rate * secs) as usize / 37 + 1, chrono::Utc::now());
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let per_ms = (rate / 1000).max(1) as usize;
    for (i, chunk) in events.chunks(per_ms).enumerate() {
        // Pace the producer at `rate`: one chunk per millisecond of schedule.
        let due = started + Duration::from_millis(i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for e in chunk {
            bridge.record(e.clone());
        }
    }
    let report = bridge.shutdown(Duration::from_secs(60));
    let cpu = cpu_seconds() - cpu0;
    (report.events_dropped, report.spans_dropped, cpu / (events.len() as f64 / 100_000.0))
}

fn main() {
    let events = bamboo_otel::demo::load_mix(20_000, chrono::Utc::now() - chrono::Duration::hours(12));
    println!("end to end: {} events (load mix), OTLP/HTTP protobuf, batches of 512", events.len());
    // End to end first, on a heap no floor has churned (glibc's malloc dominates every part of this bench).
    let (e2e, wire_bytes) = end_to_end(&events);
    let (translator, out) = translated(&events);
    let (floor, floor_bytes) = encode_floor(&events, &out.spans);
    let (sdk_floor, sdk_bytes) = sdk_encode_floor(&events, &out.spans);
    drop((translator, out));
    println!("  floor: encode only      {floor:>10.0} events/s  ({floor_bytes} bytes)");
    println!("  earlier floor: via SDK  {sdk_floor:>10.0} events/s  ({sdk_bytes} bytes)");
    println!(
        "  record -> bytes on wire {e2e:>10.0} events/s  ({wire_bytes} bytes)  = {:.2}x the floor's time, \
         {:.2}x the earlier floor's",
        floor / e2e,
        sdk_floor / e2e
    );

    // A rotel whose exporter is `blackhole` (scripts/bench.sh starts one): the hop is measured, not a backend
    // behind it (the test rotel forwards to Phoenix, which ingests only a few hundred spans per second).
    let endpoint = std::env::var("BENCH_ROTEL").unwrap_or_else(|_| "127.0.0.1:24317".into());
    if std::net::TcpStream::connect(&endpoint).is_err() {
        println!("no rotel on {endpoint}: skipping the real-collector part (scripts/bench.sh starts one)");
        return;
    }
    let secs = std::env::var("BENCH_ROTEL_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    if secs == 0 {
        return;
    }
    println!("into rotel ({endpoint}, blackhole exporter) over gRPC, {secs} s per rate:");
    for rate in [50_000u64, 100_000, 200_000, 400_000, 800_000] {
        let (dropped, spans_dropped, cpu) = into_rotel(&endpoint, rate, secs);
        println!(
            "  offered {rate:>7} events/s: events dropped {dropped:>8}, spans dropped {spans_dropped:>6}, \
             CPU {cpu:.3} s per 100k events"
        );
    }
}
