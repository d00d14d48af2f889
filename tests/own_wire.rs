//! Our own OTLP wire (event-time metrics) against a scripted OTLP/HTTP receiver: partial success counted,
//! `Retry-After` honoured, a refusal for good not resent, an unreachable backend given up on without trying
//! every remaining request; every point accounted for.
#![cfg(all(feature = "http", feature = "grpc"))]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bamboo_otel::config::Settings;
use bamboo_otel::history::otlp::Temporality;
use bamboo_otel::history::ship::{self, Shipped};
use bamboo_otel::history::Windows;
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::{KeyValue, MetricUpdate, MetricValue};
use bamboo_otel::wire::{RetryPolicy, Target, Wire};
use bamboo_otel::Protocol;
use chrono::{TimeZone, Utc};
use common::http_sink::{self, Reply};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
use prost::Message;

/// Ten series of three windows each: 30 windows, 40 points with each series' reset point.
fn windows() -> Windows {
    let mut w = Windows::new(Duration::from_secs(60));
    for tool in 0..10 {
        for minute in 0..3 {
            let at = Utc.timestamp_opt(1_780_000_000 + minute * 60, 0).unwrap();
            let u = MetricUpdate {
                instrument: Instrument::ToolCalls,
                value: MetricValue::U64(1),
                attributes: vec![KeyValue::new("gen_ai.tool.name", format!("tool-{tool}"))],
                span: None,
            };
            w.add(at, &u);
        }
    }
    assert_eq!(w.points(), 30);
    w
}

fn send(url: &str, max_points: usize, retry: RetryPolicy) -> Shipped {
    let s = Settings {
        metrics_protocol: Protocol::HttpProtobuf,
        metrics_endpoint: Some(url.to_owned()),
        export_timeout: Duration::from_secs(5),
        ..Settings::default()
    };
    let target = Target::metrics(&s, &|_| None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let wire = Wire::new(&target, retry).unwrap();
        ship::send(
            &windows(),
            &wire,
            &[("service.name".into(), "wire".into())],
            Temporality::Cumulative,
            max_points,
            &mut Default::default(),
        )
        .await
    })
}

fn fast() -> RetryPolicy {
    RetryPolicy { max_attempts: 3, first_delay: Duration::from_millis(20) }
}

#[test]
fn partial_success_is_counted_as_refused_points_with_the_backends_message() {
    let (url, counts) = http_sink::start_scripted(Arc::new(|n, _, _| {
        let partial = ExportMetricsPartialSuccess { rejected_data_points: 4, error_message: "too old".into() };
        let body = ExportMetricsServiceResponse { partial_success: Some(partial) }.encode_to_vec();
        if n == 0 {
            Reply { status: 200, headers: vec![], body }
        } else {
            Reply::ok()
        }
    }));
    let s = send(&url, 10, fast());
    assert_eq!(counts.requests.load(Ordering::SeqCst), 4);
    assert_eq!((s.requests, s.points, s.delivered, s.rejected, s.failed), (4, 40, 36, 4, 0));
    assert!(s.first_error.as_deref().is_some_and(|e| e.contains("too old")), "{s:?}");
}

#[test]
fn retry_after_is_waited_out_and_a_refusal_for_good_is_not_resent() {
    let (url, counts) = http_sink::start_scripted(Arc::new(|n, _, _| match n {
        0 => Reply { status: 503, headers: vec![("retry-after", "1".into())], body: vec![] },
        2 => Reply::status(400),
        _ => Reply::ok(),
    }));
    let s = send(&url, 10, fast());
    // Request 1: 503 then 200 (two arrivals); request 2: 400, once; requests 3 and 4: 200.
    assert_eq!(counts.requests.load(Ordering::SeqCst), 5);
    assert_eq!((s.delivered, s.rejected, s.failed), (30, 10, 0), "{s:?}");
    let arrivals = counts.arrivals.lock().unwrap();
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(1), "Retry-After: 1 waited out");
    assert!(s.first_error.as_deref().is_some_and(|e| e.contains("HTTP 400")), "{s:?}");
}

#[test]
fn an_unreachable_backend_fails_every_point_and_is_tried_for_one_request_only() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/metrics", unused.local_addr().unwrap());
    drop(unused);
    let s = send(&url, 10, fast());
    assert_eq!((s.requests, s.points, s.delivered, s.rejected, s.failed), (4, 40, 0, 0, 40));
    assert!(s.first_error.as_deref().is_some_and(|e| e.starts_with("unavailable after 3 attempt(s)")), "{s:?}");
}
