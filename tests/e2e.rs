//! End to end against the real backends started by `scripts/backends.sh`: Phoenix (traces, gRPC :4319 and HTTP
//! :6006), VictoriaMetrics (metrics, HTTP :8428) and rotel (collector hop, gRPC :14317). Every check reads the
//! result back through the backend's own query API.
#![cfg(feature = "otel")]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bamboo_otel::console::MetricTotals;
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::{AttrValue, SpanRecord, SpanStatus};
use bamboo_otel::{Bridge, ExporterKind, Protocol, Sampler};
use serde_json::Value;

use common::backends::*;

fn bridge(project: &str, protocol: Protocol) -> bamboo_otel::BridgeBuilder {
    let traces = match protocol {
        Protocol::Grpc => PHOENIX_OTLP_GRPC.to_owned(),
        _ => format!("{PHOENIX}/v1/traces"),
    };
    Bridge::builder()
        .service_name("bamboo-otel-e2e")
        .resource_attribute("openinference.project.name", project)
        .traces_endpoint(traces, protocol)
        .metrics_endpoint(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf)
        .replay_clock()
}

fn assert_span_matches(want: &SpanRecord, got: &Value) {
    let ctx = &want.name;
    assert_eq!(got["name"], want.name.as_str());
    assert_eq!(got["trace_id"], want.trace_id.to_string(), "{ctx}: trace id");
    let parent = got["parent_span_id"].as_str().filter(|p| !p.is_empty()).map(str::to_owned);
    assert_eq!(parent, want.parent_span_id.map(|p| p.to_string()), "{ctx}: parent");
    // Phoenix does not keep the OTLP span kind (it reports every span as INTERNAL), so kind is checked by the
    // unit test of the SpanData mapping (`export::tests`), not here.
    // Phoenix returns nanoseconds through a float: compare to the millisecond.
    let ms = |v: &Value| (v.as_f64().unwrap() / 1e6).round() as i64;
    assert_eq!(ms(&got["start_time_unix_nano"]), want.start.timestamp_millis(), "{ctx}: start");
    assert_eq!(ms(&got["end_time_unix_nano"]), want.end.timestamp_millis(), "{ctx}: end");
    let code = got["status"]["code"].as_i64().unwrap_or(0);
    match &want.status {
        SpanStatus::Unset => assert_eq!(code, 0, "{ctx}: status"),
        SpanStatus::Error(msg) => {
            assert_eq!(code, 2, "{ctx}: status");
            assert_eq!(got["status"]["message"], msg.as_str(), "{ctx}: status message");
        }
    }
    let attrs = phoenix_attrs(got);
    for kv in &want.attributes {
        let value = attrs.get(kv.key).unwrap_or_else(|| panic!("{ctx}: attribute {} missing", kv.key));
        match &kv.value {
            AttrValue::Str(s) => assert_eq!(value, s.as_ref(), "{ctx}: {}", kv.key),
            AttrValue::I64(i) => {
                assert_eq!(value.as_i64().or_else(|| value.as_str()?.parse().ok()), Some(*i), "{ctx}: {}", kv.key)
            }
            AttrValue::Bool(b) => assert_eq!(value, b, "{ctx}: {}", kv.key),
            // serde_json parses floats to within an ulp, not always exactly.
            AttrValue::F64(v) => {
                let got = value.as_f64().unwrap_or(f64::NAN);
                assert!((got - v).abs() <= 1e-12 * v.abs().max(1e-300), "{ctx}: {}: {got} != {v}", kv.key)
            }
        }
    }
}

fn span_tree_round_trip(protocol: Protocol) {
    let salt = salt();
    let project = format!("e2e-{salt}");
    let events = stream(&salt);
    let want = expected(&events);
    let report = send(&bridge(&project, protocol).metrics_exporter(ExporterKind::None).build().unwrap(), &events);
    assert_eq!(report.spans_exported as usize, want.spans.len(), "{report:?}");
    assert_eq!((report.spans_dropped, report.span_export_failures), (0, 0), "{report:?}");
    let got = wait_for_spans(&project, want.spans.len());
    assert_eq!(got.len(), want.spans.len());
    for w in &want.spans {
        let g =
            got.get(&w.span_id.to_string()).unwrap_or_else(|| panic!("span {} ({}) not in Phoenix", w.name, w.span_id));
        assert_span_matches(w, g);
    }
}

#[test]
fn span_tree_over_grpc_reads_back_exactly_from_phoenix() {
    span_tree_round_trip(Protocol::Grpc);
}

#[test]
fn span_tree_over_http_protobuf_reads_back_exactly_from_phoenix() {
    span_tree_round_trip(Protocol::HttpProtobuf);
}

fn metrics_round_trip(metrics_url: String, protocol: Protocol) {
    let salt = salt();
    let events = stream(&salt);
    let want = expected(&events);
    let mut totals = MetricTotals::new();
    totals.extend(&want.metrics);
    let bridge = Bridge::builder()
        .service_name(format!("e2e-metrics-{salt}"))
        .traces_exporter(ExporterKind::None)
        .metrics_endpoint(metrics_url, protocol)
        .replay_clock()
        .build()
        .unwrap();
    let report = send(&bridge, &events);
    assert_eq!((report.metric_exports, report.metric_export_failures), (1, 0), "{report:?}");
    let svc = format!("service_name=\"e2e-metrics-{salt}\"");
    assert_exact_sums(&svc, &totals, events.len(), vm_value);
}

#[test]
fn metrics_over_http_read_back_exactly_from_victoria_metrics() {
    metrics_round_trip(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf);
}

#[test]
fn metrics_over_grpc_through_rotel_read_back_exactly() {
    metrics_round_trip("http://127.0.0.1:14317".into(), Protocol::Grpc);
}

#[test]
fn disabled_and_none_exporters_send_nothing() {
    let salt = salt();
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &salt);
    let quiet = format!("e2e-quiet-{salt}");
    let off = Bridge::disabled();
    assert!(!off.is_enabled());
    send(&off, &events);
    let none = bridge(&quiet, Protocol::Grpc)
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    let report = send(&none, &events);
    assert_eq!(report.spans_exported, 14, "spans are produced and handed to the `none` exporter");
    // A control stream sent afterwards proves Phoenix had time to ingest; the quiet project must still be absent.
    let control = format!("e2e-control-{salt}");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &format!("{salt}c"));
    send(&bridge(&control, Protocol::Grpc).metrics_exporter(ExporterKind::None).build().unwrap(), &events);
    wait_for_spans(&control, 14);
    assert!(phoenix_spans(&quiet).is_empty());
}

#[test]
fn ratio_sampling_keeps_or_drops_whole_sessions() {
    let salt = salt();
    let project = format!("e2e-sampled-{salt}");
    let start = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut events = Vec::new();
    for n in 0..24 {
        events.extend(bamboo_otel::demo::agent_session(start + chrono::Duration::seconds(n * 50)));
    }
    let want = expected(&events);
    let sampler = Sampler::TraceIdRatio(0.5);
    let kept: Vec<&SpanRecord> = want.spans.iter().filter(|s| sampler.should_sample(s.trace_id)).collect();
    let kept_traces: HashSet<String> = kept.iter().map(|s| s.trace_id.to_string()).collect();
    assert!((4..=20).contains(&kept_traces.len()), "the ratio should keep some and drop some: {}", kept_traces.len());
    let report = send(
        &bridge(&project, Protocol::Grpc).metrics_exporter(ExporterKind::None).sampler(sampler).build().unwrap(),
        &events,
    );
    assert_eq!(report.spans_exported as usize, kept.len());
    assert_eq!((report.spans_exported + report.spans_sampled_out) as usize, want.spans.len());
    let got = wait_for_spans(&project, kept.len());
    let got_traces: HashSet<String> = got.values().map(|s| s["trace_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got_traces, kept_traces);
    assert_eq!(got.len(), kept.len(), "every span of a kept session, none of a dropped one");
}

#[test]
fn gzip_and_headers_are_accepted_by_a_real_collector() {
    // gzip-compressed OTLP/HTTP through rotel into Phoenix; a header rides along (rotel ignores it, the export must
    // still succeed). That the header reaches the wire is not checked here.
    let salt = salt();
    let project = format!("e2e-gzip-{salt}");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &salt);
    let b = Bridge::builder()
        .resource_attribute("openinference.project.name", &project)
        .header("x-api-key", "sk-test-not-a-secret")
        .gzip(true)
        .traces_endpoint("http://127.0.0.1:14318/v1/traces", Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    let report = send(&b, &events);
    assert_eq!((report.spans_exported, report.span_export_failures), (14, 0), "{report:?}");
    wait_for_spans(&project, 14);
}

#[test]
fn ten_thousand_events_are_all_exported_at_shutdown() {
    let salt = salt();
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let mut events = Vec::new();
    let mut n = 0;
    while events.len() < 10_000 {
        events.extend(bamboo_otel::demo::agent_session(start + chrono::Duration::seconds(n * 45)));
        n += 1;
    }
    let want = expected(&events);
    let mut totals = MetricTotals::new();
    totals.extend(&want.metrics);
    let project = format!("e2e-10k-{salt}");
    let b = Bridge::builder()
        .service_name(format!("e2e-10k-{salt}"))
        .resource_attribute("openinference.project.name", &project)
        .traces_endpoint("http://127.0.0.1:14317", Protocol::Grpc)
        .metrics_endpoint(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf)
        .queue_size(16_384)
        .replay_clock()
        .build()
        .unwrap();
    let report = send(&b, &events);
    assert_eq!(report.events_dropped, 0);
    assert_eq!(report.events_received as usize, events.len());
    assert_eq!(report.spans_exported as usize, want.spans.len(), "{report:?}");
    assert_eq!(report.spans_dropped, 0);
    let query =
        format!("sum(gen_ai_client_token_usage_sum{{service_name=\"e2e-10k-{salt}\",gen_ai_token_type=\"input\"}})");
    vm_wait_for(&query, totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum);
    // Every span, through the rotel hop into Phoenix, read back by id (Phoenix takes a while for 5,000).
    assert_phoenix_has_exactly_within(&project, &want.spans, 300);
}

fn quick_bridge() -> Bridge {
    Bridge::builder()
        .traces_endpoint("http://127.0.0.1:14317", Protocol::Grpc)
        .metrics_endpoint("http://127.0.0.1:14317", Protocol::Grpc)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_current_thread_runtime_and_shuts_down_from_async_code() {
    let b = quick_bridge();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let sink = tokio::spawn(b.clone().drain(rx));
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        tx.send(e).await.unwrap();
    }
    drop(tx);
    sink.await.unwrap();
    let report = b.shutdown(Duration::from_secs(10));
    assert_eq!((report.events_received, report.spans_exported), (28, 14), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_multi_thread_runtime() {
    let b = quick_bridge();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = tokio::task::spawn_blocking(move || b.shutdown(Duration::from_secs(10))).await.unwrap();
    assert_eq!(report.spans_exported, 14, "{report:?}");
}

#[test]
fn works_with_no_runtime_and_drop_shuts_down() {
    let b = quick_bridge();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    assert!(b.force_flush(Duration::from_secs(10)));
    drop(b); // must return: the worker flushes and stops on its own
}

#[test]
fn shutdown_is_bounded_when_the_backend_is_unreachable() {
    // Nothing listens on port 9: exports fail; shutdown must still return within its bound and say what it lost.
    let b = Bridge::builder()
        .traces_endpoint("http://127.0.0.1:9", Protocol::Grpc)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let started = Instant::now();
    let report = b.shutdown(Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    assert_eq!(report.spans_exported, 0);
    assert_eq!(report.spans_dropped, 14, "{report:?}");
    assert!(report.span_export_failures >= 1);
}

#[test]
fn application_tracing_spans_share_the_bridge_pipeline_and_resource() {
    use tracing_subscriber::prelude::*;
    let salt = salt();
    let project = format!("e2e-app-{salt}");
    let bridge = bridge(&project, Protocol::Grpc).metrics_exporter(ExporterKind::None).build().unwrap();
    let subscriber = tracing_subscriber::registry().with(bridge.tracing_layer());
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &salt);
    let request = format!("app.handle_request.{salt}");
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("app", otel.name = request.as_str(), user = "u-1");
        outer.in_scope(|| {
            tracing::info_span!("app.call_agent").in_scope(|| {
                for e in &events {
                    bridge.record(e.clone());
                }
            });
        });
    });
    let report = bridge.shutdown(Duration::from_secs(30));
    assert_eq!(report.spans_exported, 14 + 2, "{report:?}");
    // The project comes from the resource: finding the app spans there shows they carry the bridge's resource.
    let got = wait_for_spans(&project, 16);
    let by_name = |name: &str| got.values().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} missing"));
    let outer = by_name(&request);
    let inner = by_name("app.call_agent");
    assert_eq!(inner["parent_span_id"], outer["span_id"]);
    assert_eq!(inner["trace_id"], outer["trace_id"]);
    assert_eq!(phoenix_attrs(outer)["user"], "u-1");
    assert!(got.values().any(|s| s["name"] == "invoke_agent bamboo"), "the Bamboo session is in the same project");
}
