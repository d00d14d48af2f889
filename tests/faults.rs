//! Faults injected for real: a collector that is down at start, killed mid-stream and started again, and a
//! backend that accepts connections but never answers; and scripted receivers on both transports that throttle
//! (`Retry-After`, `RetryInfo`), refuse, or take a request in part. Each is bounded in time and checks what the
//! shutdown report and the backend say.
#![cfg(all(feature = "grpc", feature = "http"))]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bamboo_otel::{Bridge, ExporterKind, MetricsEvent, Protocol};
use common::backends::*;
use common::grpc_sink;
use common::http_sink::{self, Reply};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tonic_types::{ErrorDetails, StatusExt};

fn rotel_bin() -> std::path::PathBuf {
    let cache = std::env::var("BAMBOO_OTEL_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/bamboo-otel"));
    let lib = cache.join("venv/lib");
    std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .map(|d| d.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists())
        .expect("rotel installed by scripts/backends.sh")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A rotel of our own on `port` (gRPC), forwarding traces to Phoenix; killed when dropped.
struct Rotel(Child);

impl Rotel {
    fn start(port: u16) -> Rotel {
        let child = Command::new(rotel_bin())
            .args(["start", "--otlp-grpc-endpoint", &format!("127.0.0.1:{port}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{}", free_port())])
            .args(["--exporter", "otlp", "--otlp-exporter-protocol", "http"])
            .args(["--otlp-exporter-traces-endpoint", &format!("{PHOENIX}/v1/traces")])
            .args(["--otlp-exporter-metrics-endpoint", &format!("{VM}/opentelemetry/v1/metrics")])
            .args(["--otlp-exporter-logs-endpoint", &format!("{VM}/opentelemetry/v1/logs")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        poll(30, "rotel listening", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        Rotel(child)
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sessions(n: usize, salt: &str) -> Vec<MetricsEvent> {
    let base = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut events = Vec::new();
    for i in 0..n {
        events.extend(bamboo_otel::demo::agent_session(base + chrono::Duration::seconds(i as i64 * 60)));
    }
    fresh(&events, salt)
}

fn bridge(project: &str, port: u16) -> Bridge {
    Bridge::builder()
        .resource_attribute("openinference.project.name", project)
        .traces_endpoint(format!("http://127.0.0.1:{port}"), Protocol::Grpc)
        .metrics_exporter(ExporterKind::None)
        .replay_clock()
        .build()
        .unwrap()
}

#[test]
fn a_collector_down_at_start_gets_everything_once_it_is_up() {
    let salt = salt();
    let project = format!("fault-late-{salt}");
    let port = free_port();
    let b = bridge(&project, port);
    let events = sessions(3, &salt);
    let started = Instant::now();
    for e in &events {
        b.record(e.clone());
    }
    assert!(started.elapsed() < Duration::from_millis(500), "record must not wait for the backend");
    // The first export attempt fails (nothing listens); the spans are kept, and the flush says they are not sent.
    assert!(!b.force_flush(Duration::from_secs(30)), "a flush into an outage must not claim delivery");
    let _rotel = Rotel::start(port);
    let report = b.shutdown(Duration::from_secs(60));
    assert_eq!((report.spans_exported, report.spans_dropped), (42, 0), "{report:?}");
    assert!(report.span_export_failures >= 1, "the outage was seen: {report:?}");
    assert_eq!(wait_for_spans(&project, 42).len(), 42);
}

#[test]
fn a_collector_killed_mid_stream_and_restarted_loses_nothing_that_fits_the_buffer() {
    let salt = salt();
    let project = format!("fault-restart-{salt}");
    let port = free_port();
    let rotel = Rotel::start(port);
    let b = bridge(&project, port);
    let events = sessions(4, &salt);
    let (first, second) = events.split_at(events.len() / 2);
    for e in first {
        b.record(e.clone());
    }
    assert!(b.force_flush(Duration::from_secs(30)));
    // What rotel acknowledged must have reached Phoenix before it dies: a collector killed with spans in its own
    // buffer loses them, and that is the collector's loss, not the bridge's.
    wait_for_spans(&project, 28);
    drop(rotel);
    for e in second {
        b.record(e.clone());
    }
    assert!(!b.force_flush(Duration::from_secs(30)), "a flush into an outage must not claim delivery");
    let _rotel = Rotel::start(port);
    let report = b.shutdown(Duration::from_secs(60));
    // received = exported + dropped + rejected (no sampler, nothing open after shutdown).
    assert_eq!(report.events_received as usize, events.len(), "{report:?}");
    assert_eq!((report.spans_exported, report.spans_dropped), (56, 0), "{report:?}");
    assert!(report.span_export_failures >= 1, "{report:?}");
    assert_eq!(wait_for_spans(&project, 56).len(), 56);
}

#[test]
fn shutdown_returns_in_time_against_a_backend_that_never_answers() {
    // Accepts connections and reads nothing: every request hangs until its timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(64).flatten() {
            held.push(s);
        }
    });
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = match protocol {
            Protocol::Grpc => format!("http://127.0.0.1:{port}"),
            _ => format!("http://127.0.0.1:{port}/v1/traces"),
        };
        let b = Bridge::builder().traces_endpoint(url, protocol).metrics_exporter(ExporterKind::None).build().unwrap();
        for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
            b.record(e);
        }
        let started = Instant::now();
        let report = b.shutdown(Duration::from_secs(2));
        let took = started.elapsed();
        assert!(took < Duration::from_millis(3_500), "{protocol:?}: shutdown took {took:?}");
        assert_eq!((report.spans_exported, report.spans_dropped), (0, 14), "{protocol:?}: {report:?}");
        assert!(report.timed_out && report.export_failed(), "{protocol:?}: {report:?}");
    }
    drop(keep);
}

/// Traces over OTLP/HTTP to `url` in batches of `batch`, no metrics; callers add what their fault needs.
fn http_bridge(url: &str, batch: usize) -> bamboo_otel::BridgeBuilder {
    Bridge::builder()
        .traces_endpoint(url, Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .batch_size(batch)
}

#[test]
fn a_batch_the_backend_refuses_for_good_is_dropped_and_counted_not_retried_forever() {
    // HTTP 400 is OTLP's "do not retry". Before the fix the batch went back in front of the buffer and was sent
    // again forever, so nothing behind it could leave.
    let (url, counts) = http_sink::start_scripted(Arc::new(|_, _, _| Reply::status(400)));
    let b = http_bridge(&url, 7).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    assert_eq!((report.spans_exported, report.spans_dropped, report.spans_rejected), (0, 14, 14), "{report:?}");
    assert!(!report.timed_out, "a refusal is final, not a reason to wait out the deadline: {report:?}");
    // Two batches of 7, each sent once: the exporter does not retry a 400 and neither does the bridge.
    assert_eq!(counts.requests.load(Ordering::SeqCst), 2);
    assert_eq!(report.span_export_failures, 2);
}

#[test]
fn a_throttling_backend_is_waited_for_as_retry_after_says() {
    // The first answer is 503 with Retry-After: 1; the exporter must wait at least that long, then succeed.
    let (url, counts) = http_sink::start_scripted(Arc::new(|n, _, _| match n {
        0 => Reply { status: 503, headers: vec![("retry-after", "1".into())], body: vec![] },
        _ => Reply::ok(),
    }));
    let b = http_bridge(&url, 512).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    assert_eq!((report.spans_exported, report.spans_dropped), (14, 0), "{report:?}");
    // Retried inside the exporter: not a failure the bridge reports, and never a drop.
    assert_eq!(report.span_export_failures, 0, "{report:?}");
    let arrivals = counts.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2, "one throttled attempt, one retry");
    let waited = arrivals[1] - arrivals[0];
    assert!(waited >= Duration::from_millis(1000), "Retry-After: 1 was not honoured: retried after {waited:?}");
}

/// Span ids a scripted sink has received (decoded from its OTLP/HTTP bodies).
fn received_ids(body: &[u8], into: &std::sync::Mutex<std::collections::HashSet<Vec<u8>>>) {
    into.lock().unwrap().extend(http_sink::spans(body).into_iter().map(|s| s.span_id));
}

#[test]
fn a_slow_backend_that_stalls_some_requests_gets_everything_and_its_timeouts_are_counted() {
    // Every third request stalls for 3 s, past the 1 s export timeout; the others take 100 ms.
    let ids: Arc<std::sync::Mutex<std::collections::HashSet<Vec<u8>>>> = Arc::default();
    let seen = ids.clone();
    let (url, _) = http_sink::start_scripted(Arc::new(move |n, body, _| {
        std::thread::sleep(Duration::from_millis(if n % 3 == 1 { 3_000 } else { 100 }));
        received_ids(body, &seen);
        Reply::ok()
    }));
    let b = http_bridge(&url, 14).export_timeout(Duration::from_secs(1)).build().unwrap();
    let events = sessions(10, &salt());
    let want = common::run(&events).spans;
    for e in events {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(60));
    assert_eq!((report.spans_exported, report.spans_dropped), (want.len() as u64, 0), "{report:?}");
    assert!(report.span_export_failures >= 1, "the stalls were timeouts, counted: {report:?}");
    assert!(!report.timed_out, "{report:?}");
    let ids = ids.lock().unwrap();
    assert!(want.iter().all(|s| ids.contains(&s.span_id.0.to_vec())), "every span reached the backend");
}

#[test]
fn a_backend_that_stalls_every_request_keeps_the_buffer_bounded_and_accounts_for_every_span() {
    let (url, counts) = http_sink::start_scripted(Arc::new(|_, _, _| {
        std::thread::sleep(Duration::from_secs(20));
        Reply::ok()
    }));
    let b = http_bridge(&url, 14).max_queued_spans(50).export_timeout(Duration::from_millis(500)).build().unwrap();
    let events = sessions(20, &salt());
    let spans = common::run(&events).spans.len() as u64;
    for e in events {
        b.record(e);
    }
    let started = Instant::now();
    let report = b.shutdown(Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_millis(4_500), "shutdown took {:?}", started.elapsed());
    // Nothing confirmed; every span is dropped and counted (beyond the 50-span buffer during the outage, or
    // unsent at the deadline), none unaccounted for.
    assert_eq!((report.spans_exported, report.spans_dropped), (0, spans), "{report:?}");
    assert!(report.timed_out && report.span_export_failures >= 1, "{report:?}");
    assert!(counts.requests.load(Ordering::SeqCst) >= 1);
}

/// An OTLP trace response saying the backend refused `rejected` of the spans it was sent.
fn partial(rejected: i64) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: "span too large".into(),
        }),
    }
}

#[test]
fn partial_success_over_http_counts_the_refused_spans_as_rejected() {
    let (url, counts) = http_sink::start_scripted(Arc::new(|_, _, _| Reply {
        status: 200,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: partial(2).encode_to_vec(),
    }));
    let b = http_bridge(&url, 7).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    // Two batches of 7, each taken with 2 refused: sent once each, never again.
    assert_eq!(counts.requests.load(Ordering::SeqCst), 2);
    assert_eq!((report.spans_exported, report.spans_dropped, report.spans_rejected), (10, 4, 4), "{report:?}");
    assert_eq!(report.span_export_failures, 0, "{report:?}");
}

/// Traces over OTLP/gRPC to `url` in batches of `batch`, no metrics.
fn grpc_bridge(url: &str, batch: usize) -> bamboo_otel::BridgeBuilder {
    Bridge::builder().traces_endpoint(url, Protocol::Grpc).metrics_exporter(ExporterKind::None).batch_size(batch)
}

#[test]
fn partial_success_over_grpc_counts_the_refused_spans_as_rejected() {
    let (url, counts) = grpc_sink::start_scripted(Arc::new(|_, _| Ok(partial(3))));
    let b = grpc_bridge(&url, 7).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    assert_eq!(counts.requests.load(Ordering::SeqCst), 2);
    assert_eq!(counts.spans.load(Ordering::SeqCst), 14);
    assert_eq!((report.spans_exported, report.spans_dropped, report.spans_rejected), (8, 6, 6), "{report:?}");
}

#[test]
fn a_grpc_backend_that_says_when_to_come_back_is_waited_for_as_retry_info_says() {
    // RESOURCE_EXHAUSTED is retried only with RetryInfo, and not before the delay it names.
    let (url, counts) = grpc_sink::start_scripted(Arc::new(|n, _| match n {
        0 => Err(tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1200))),
        )),
        _ => Ok(ExportTraceServiceResponse::default()),
    }));
    let b = grpc_bridge(&url, 512).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    assert_eq!((report.spans_exported, report.spans_dropped), (14, 0), "{report:?}");
    assert_eq!(report.span_export_failures, 0, "retried inside the wire: {report:?}");
    let arrivals = counts.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2, "one throttled attempt, one retry");
    let waited = arrivals[1] - arrivals[0];
    assert!(waited >= Duration::from_millis(1200), "RetryInfo was not honoured: retried after {waited:?}");
}

#[test]
fn a_grpc_refusal_for_good_is_dropped_and_counted_not_resent() {
    let (url, counts) = grpc_sink::start_scripted(Arc::new(|_, _| Err(tonic::Status::invalid_argument("bad span"))));
    let b = grpc_bridge(&url, 7).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        b.record(e);
    }
    let report = b.shutdown(Duration::from_secs(20));
    assert_eq!((report.spans_exported, report.spans_dropped, report.spans_rejected), (0, 14, 14), "{report:?}");
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(counts.requests.load(Ordering::SeqCst), 2);
}
