//! What the HTTP exporter puts on the wire, captured by a one-shot loopback HTTP server: headers and gzip.
#![cfg(feature = "http")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use bamboo_otel::{Bridge, ExporterKind, Protocol};

struct Captured {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Accepts one request, answers 200 with an empty protobuf body, and hands back what arrived.
fn capture_one() -> (String, std::thread::JoinHandle<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut headers = Vec::new();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let len: usize =
            headers.iter().find(|(k, _)| k == "content-length").expect("content-length").1.parse().unwrap();
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        Captured { headers, body }
    });
    (url, handle)
}

#[test]
fn a_healthy_backend_loses_nothing_when_the_queue_holds_more_than_the_span_buffer() {
    // Found by the export benchmark: shutdown used to translate the whole queue before exporting, overflowing the
    // pending buffer. 6,000 sessions are 156,000 spans, far beyond the 32,768-span buffer.
    let (url, counts) = common::http_sink::start();
    let events = bamboo_otel::demo::load_mix(6_000, chrono::Utc::now() - chrono::Duration::hours(6));
    let bridge = Bridge::builder()
        .traces_endpoint(url, Protocol::HttpProtobuf)
        .metrics_exporter(ExporterKind::None)
        .queue_size(events.len())
        .build()
        .unwrap();
    for e in events {
        bridge.record_wait(e).unwrap();
    }
    let report = bridge.shutdown(Duration::from_secs(60));
    assert_eq!(report.events_dropped, 0, "{report:?}");
    assert_eq!((report.spans_exported, report.spans_dropped), (6_000 * 26, 0), "{report:?}");
    assert!(counts.requests.load(std::sync::atomic::Ordering::Relaxed) >= 6_000 * 26 / 512);
}

fn header<'a>(c: &'a Captured, name: &str) -> Option<&'a str> {
    c.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn send_demo(builder: bamboo_otel::BridgeBuilder) -> bamboo_otel::ShutdownReport {
    let bridge = builder.metrics_exporter(ExporterKind::None).build().unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        bridge.record(e);
    }
    bridge.shutdown(Duration::from_secs(30))
}

#[test]
fn headers_and_gzip_reach_the_wire() {
    let (url, server) = capture_one();
    let report = send_demo(
        Bridge::builder()
            .traces_endpoint(url, Protocol::HttpProtobuf)
            .header("x-api-key", "sk-wire-test")
            .header("x-tenant", "acme")
            .gzip(true),
    );
    let got = server.join().unwrap();
    assert_eq!(report.spans_exported, 14, "{report:?}");
    assert_eq!(header(&got, "x-api-key"), Some("sk-wire-test"));
    assert_eq!(header(&got, "x-tenant"), Some("acme"));
    assert_eq!(header(&got, "content-encoding"), Some("gzip"));
    assert_eq!(header(&got, "content-type"), Some("application/x-protobuf"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&got.body[..]).read_to_end(&mut plain).expect("body is gzip");
    // Protobuf keeps strings verbatim: the session span's name must be inside the decompressed request.
    assert!(plain.windows(19).any(|w| w == b"invoke_agent bamboo"), "span name not in the body");
    assert!(plain.len() > got.body.len(), "gzip should shrink 14 spans");
}

#[test]
fn without_gzip_the_body_is_plain_protobuf() {
    let (url, server) = capture_one();
    let report = send_demo(Bridge::builder().traces_endpoint(url, Protocol::HttpProtobuf).gzip(false));
    let got = server.join().unwrap();
    assert_eq!(report.spans_exported, 14, "{report:?}");
    assert_eq!(header(&got, "content-encoding"), None);
    assert!(got.body.windows(19).any(|w| w == b"invoke_agent bamboo"));
}

#[test]
fn every_span_batch_names_the_semconv_schema_it_follows() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let (url, server) = capture_one();
    let report = send_demo(Bridge::builder().traces_endpoint(url, Protocol::HttpProtobuf).gzip(false));
    let got = server.join().unwrap();
    assert_eq!(report.spans_exported, 14, "{report:?}");
    let req = ExportTraceServiceRequest::decode(got.body.as_slice()).expect("OTLP protobuf");
    let scopes: Vec<_> = req.resource_spans.iter().flat_map(|r| &r.scope_spans).collect();
    assert!(!scopes.is_empty());
    for s in scopes {
        assert_eq!(s.scope.as_ref().map(|s| s.name.as_str()), Some("bamboo-otel"));
        assert_eq!(s.schema_url, bamboo_otel::semconv::SCHEMA_URL);
    }
}
