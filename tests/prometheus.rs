//! Metrics over OTLP into Prometheus 3, configured as the README tells users (deploy/prometheus.yml and the flags
//! in `scripts/backends.sh`): the names and labels users will see (`_total`, `_seconds`, `target_info`, promoted
//! resource attributes), and exact sums, counts and buckets after a known stream, read back with PromQL.
#![cfg(all(feature = "otel", feature = "http"))]

mod common;

use std::collections::BTreeMap;

use bamboo_otel::console::MetricTotals;
use bamboo_otel::semconv::{Instrument, DURATION_BUCKETS, TOKEN_BUCKETS};
use bamboo_otel::{Bridge, ExporterKind, Protocol};

use common::backends::{assert_exact_sums, expected, poll, salt, send, stream};
use common::prometheus::*;

/// Expected cumulative bucket counts (`le` → observations ≤ le, plus +Inf) of one instrument's observations.
fn buckets(values: &[f64], bounds: &[f64]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for b in bounds {
        out.insert(format!("{b}"), values.iter().filter(|v| **v <= *b).count() as f64);
    }
    out.insert("+Inf".into(), values.len() as f64);
    out
}

fn got_buckets(expr: &str) -> BTreeMap<String, f64> {
    query(expr)
        .into_iter()
        .map(|(labels, v)| {
            let le = labels.iter().find_map(|l| l.strip_prefix("le=")).unwrap().to_owned();
            // Prometheus may print a bound as 16 or 16.0: key by the number.
            let key = if le == "+Inf" { le } else { format!("{}", le.parse::<f64>().unwrap()) };
            (key, v)
        })
        .collect()
}

#[test]
fn metrics_read_back_exactly_from_prometheus_under_the_names_users_see() {
    let salt = salt();
    let service = format!("prom-e2e-{salt}");
    let instance = format!("instance-{salt}");
    let events = stream(&salt);
    let want = expected(&events);
    let mut totals = MetricTotals::new();
    totals.extend(&want.metrics);
    let bridge = Bridge::builder()
        .service_name(&service)
        .resource_attribute("service.instance.id", &instance)
        .resource_attribute("deployment.environment", "test")
        .traces_exporter(ExporterKind::None)
        .metrics_endpoint(otlp_metrics_url(), Protocol::HttpProtobuf)
        .replay_clock()
        .build()
        .unwrap();
    let report = send(&bridge, &events);
    assert_eq!((report.metric_exports, report.metric_export_failures), (1, 0), "{report:?}");

    let svc = format!("service_name=\"{service}\"");
    // Resource: job and instance from service.name and service.instance.id, the rest on target_info, and the
    // attributes deploy/prometheus.yml promotes as labels on every series.
    let info = poll(30, "target_info", || {
        let r = query(&format!("target_info{{job=\"{service}\"}}"));
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(info.len(), 1, "{info:?}");
    let labels = &info[0].0;
    for l in [format!("instance={instance}"), "telemetry_sdk_language=rust".into()] {
        assert!(labels.contains(&l), "target_info lacks {l}: {labels:?}");
    }
    let promoted = query(&format!("bamboo_otel_events_total{{{svc}}}"));
    assert!(!promoted.is_empty());
    for (labels, _) in &promoted {
        for l in [format!("job={service}"), format!("instance={instance}"), "deployment_environment=test".into()] {
            assert!(labels.contains(&l), "series lacks {l}: {labels:?}");
        }
    }

    assert_exact_sums(&svc, &totals, events.len(), value);

    // Every bucket of the two GenAI histograms, summed over series.
    let observed = |inst: Instrument| -> Vec<f64> {
        want.metrics.iter().filter(|m| m.instrument == inst).map(|m| m.value.as_f64()).collect()
    };
    let tokens = observed(Instrument::TokenUsage);
    assert_eq!(
        got_buckets(&format!("sum by (le) (gen_ai_client_token_usage_bucket{{{svc}}})")),
        buckets(&tokens, TOKEN_BUCKETS),
        "token usage buckets"
    );
    let durations = observed(Instrument::OperationDuration);
    assert_eq!(
        got_buckets(&format!("sum by (le) (gen_ai_client_operation_duration_seconds_bucket{{{svc}}})")),
        buckets(&durations, DURATION_BUCKETS),
        "operation duration buckets"
    );
}
