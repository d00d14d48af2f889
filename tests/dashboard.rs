//! Every query of `dashboards/bamboo-agents.json`, run against VictoriaMetrics after a known stream, must return
//! what the stream implies.
//!
//! The stream is sent twice with fresh ids and a metric export in between, so every series has at least two
//! samples for `rate`. VictoriaMetrics counts a series that starts inside the window from zero, so `increase`
//! over the whole run is everything both passes recorded: that is what the expectations are computed from.
#![cfg(feature = "otel")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bamboo_otel::console::MetricTotals;
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::Output;
use bamboo_otel::{Bridge, ExporterKind, MetricsEvent, Protocol};
use common::backends::*;
use serde_json::Value;

const WINDOW: &str = "1h";

/// Where the metrics go and how PromQL is asked: VictoriaMetrics, or Prometheus as deploy/ configures it.
#[derive(Clone, Copy, Debug)]
enum Engine {
    VictoriaMetrics,
    Prometheus,
}

impl Engine {
    fn otlp_url(self) -> String {
        match self {
            Engine::VictoriaMetrics => format!("{VM}/opentelemetry/v1/metrics"),
            Engine::Prometheus => common::prometheus::otlp_metrics_url(),
        }
    }

    fn query(self, expr: &str, at: Option<f64>) -> Vec<(Vec<String>, f64)> {
        match self {
            Engine::VictoriaMetrics => vm_query(expr),
            Engine::Prometheus => common::prometheus::query_at(expr, at),
        }
    }
}

/// (labels as `key=value` sorted, value) of an instant query, after a VictoriaMetrics flush.
fn vm_query(expr: &str) -> Vec<(Vec<String>, f64)> {
    ureq::post(&format!("{VM}/internal/force_flush")).call().unwrap();
    let v = get(&format!("{VM}/api/v1/query?query={}", urlencode(expr))).expect("query answered");
    assert_eq!(v["status"], "success", "{expr}: {v}");
    instant_vector(&v)
}

fn prom(key: &str) -> String {
    key.replace('.', "_")
}

/// Expected `sum by (keys)` of an instrument's series (counter sums, histogram sums), with a filter.
fn by(totals: &MetricTotals, inst: Instrument, keys: &[&str], filter: &[(&str, &str)]) -> HashMap<Vec<String>, f64> {
    let mut out: HashMap<Vec<String>, f64> = HashMap::new();
    for (name, attrs, s) in totals.series() {
        if name != inst.name() || !filter.iter().all(|(k, v)| attrs.iter().any(|(ak, av)| ak == k && av == v)) {
            continue;
        }
        let mut labels: Vec<String> = keys
            .iter()
            .filter_map(|k| attrs.iter().find(|(ak, _)| ak == k).map(|(_, v)| format!("{}={v}", prom(k))))
            .collect();
        labels.sort();
        *out.entry(labels).or_default() += s.sum;
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(panel: &str, got: &[(Vec<String>, f64)], want: &HashMap<Vec<String>, f64>) {
    let got: HashMap<Vec<String>, f64> = got.iter().cloned().collect();
    assert_eq!(got.len(), want.len(), "{panel}: series differ\n got {got:?}\nwant {want:?}");
    for (labels, w) in want {
        let g = got.get(labels).unwrap_or_else(|| panic!("{panel}: no series {labels:?} in {got:?}"));
        assert!(close(*g, *w), "{panel} {labels:?}: got {g}, want {w}");
    }
}

/// For `rate` panels: VictoriaMetrics divides by the time between the samples, not by the window, when a series
/// starts inside it, so the check is on the shares of each series (all are exported together, one divisor).
fn assert_proportional(panel: &str, got: &[(Vec<String>, f64)], want: &HashMap<Vec<String>, f64>) {
    let (gs, ws): (f64, f64) = (got.iter().map(|(_, v)| v).sum(), want.values().sum());
    assert!(gs > 0.0 && ws > 0.0, "{panel}: {got:?}");
    let got: Vec<(Vec<String>, f64)> = got.iter().map(|(k, v)| (k.clone(), v / gs)).collect();
    let want: HashMap<Vec<String>, f64> = want.iter().map(|(k, v)| (k.clone(), v / ws)).collect();
    let got_map: HashMap<Vec<String>, f64> = got.iter().cloned().collect();
    assert_eq!(got_map.len(), want.len(), "{panel}: series differ\n got {got_map:?}\nwant {want:?}");
    for (labels, w) in &want {
        let g = got_map.get(labels).unwrap_or_else(|| panic!("{panel}: no series {labels:?}"));
        assert!((g - w).abs() < 1e-6, "{panel} {labels:?}: share {g}, want {w}");
    }
}

fn stream() -> Vec<MetricsEvent> {
    let mut events = common::sample_events();
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    events.extend(bamboo_otel::demo::agent_session(base));
    events.extend(with_token_details(base));
    events
}

fn translate(events: &[MetricsEvent]) -> Output {
    common::run(events)
}

#[test]
fn every_dashboard_query_returns_what_the_stream_implies_on_victoria_metrics() {
    every_dashboard_query_returns_what_the_stream_implies(Engine::VictoriaMetrics);
}

#[test]
fn every_dashboard_query_returns_what_the_stream_implies_on_prometheus() {
    every_dashboard_query_returns_what_the_stream_implies(Engine::Prometheus);
}

fn every_dashboard_query_returns_what_the_stream_implies(engine: Engine) {
    let dashboard: Value = serde_json::from_str(include_str!("../dashboards/bamboo-agents.json")).unwrap();
    let salt = salt();
    let service = format!("dash-{salt}");
    let bridge = Bridge::builder()
        .service_name(&service)
        .traces_exporter(ExporterKind::None)
        .metrics_endpoint(engine.otlp_url(), Protocol::HttpProtobuf)
        .replay_clock()
        .build()
        .unwrap();
    let (warm_up, main) = (fresh(&stream(), &format!("{salt}w")), fresh(&stream(), &format!("{salt}m")));
    for e in &warm_up {
        bridge.record(e.clone());
    }
    assert!(bridge.force_flush(Duration::from_secs(30)));
    // VictoriaMetrics keeps one sample per millisecond per series: make sure the second lands later.
    std::thread::sleep(Duration::from_millis(5));
    for e in &main {
        bridge.record(e.clone());
    }
    let report = bridge.shutdown(Duration::from_secs(30));
    assert!(report.metric_exports >= 2 && !report.metrics_unsent, "{report:?}");

    // Both passes through one translator, as the bridge ran them (open spans finished at shutdown).
    let mut totals = MetricTotals::new();
    totals.extend(&translate(&[warm_up.clone(), main.clone()].concat()).metrics);

    // Prometheus extrapolates `increase` and `rate` from a series' last sample to the end of the range. Evaluated
    // at the last sample of the metrics a query reads (the SDK stamps each instrument on its own, a millisecond
    // apart), the range ends there and, with the zero sample `created-timestamp-zero-ingestion` puts at each
    // series' start, `increase` is exactly what was counted. VictoriaMetrics needs neither.
    let at = |expr: &str| -> Option<f64> {
        let Engine::Prometheus = engine else { return None };
        let names: std::collections::BTreeSet<&str> = expr
            .match_indices('{')
            .filter_map(|(i, _)| {
                let head = &expr[..i];
                let start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |j| j + 1);
                Some(&head[start..]).filter(|n| n.starts_with("gen_ai_") || n.starts_with("bamboo_"))
            })
            .collect();
        assert!(!names.is_empty(), "{expr}: no metric selector found");
        // Metrics the stream never recorded (no spans dropped, say) have no samples: they set no time.
        names
            .iter()
            .filter_map(|n| {
                let q = format!("max(timestamp({n}{{service_name=\"{service}\"}}))");
                engine.query(&q, None).first().map(|r| r.1)
            })
            .reduce(f64::max)
    };
    if let Engine::Prometheus = engine {
        let q = format!("bamboo_otel_events_total{{service_name=\"{service}\"}}");
        poll(30, "the export to reach Prometheus", || Some(()).filter(|_| !engine.query(&q, None).is_empty()));
    }
    let mut checked = 0;
    for p in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$service", &service)
                .replace("$__rate_interval", WINDOW)
                .replace("$__range", WINDOW);
            // A brand-new series can take a moment to become visible to queries.
            let got = poll(30, &format!("{title}: data for {expr}"), || {
                Some(engine.query(&expr, at(&expr))).filter(|r| !r.is_empty())
            });
            assert!(got.iter().all(|(_, v)| v.is_finite() && *v >= 0.0), "{title}: {got:?}");
            let what = format!("{engine:?}: {title} / {}", t["refId"]);
            match (title, t["refId"].as_str().unwrap()) {
                ("Tokens in range by model and type", _) => assert_same(
                    &what,
                    &got,
                    &by(&totals, Instrument::TokenUsage, &["gen_ai.request.model", "gen_ai.token.type"], &[]),
                ),
                ("Tokens per second by model and type", _) => assert_proportional(
                    &what,
                    &got,
                    &by(&totals, Instrument::TokenUsage, &["gen_ai.request.model", "gen_ai.token.type"], &[]),
                ),
                ("Sessions by status", _) => {
                    assert_same(&what, &got, &by(&totals, Instrument::Sessions, &["bamboo.session.status"], &[]))
                }
                ("Tool calls by tool", _) => {
                    assert_same(&what, &got, &by(&totals, Instrument::ToolCalls, &["gen_ai.tool.name"], &[]))
                }
                ("Tool failure rate by tool", _) => {
                    let all = by(&totals, Instrument::ToolCalls, &["gen_ai.tool.name"], &[]);
                    let failed =
                        by(&totals, Instrument::ToolCalls, &["gen_ai.tool.name"], &[("bamboo.tool.success", "false")]);
                    let want =
                        all.iter().map(|(k, n)| (k.clone(), failed.get(k).copied().unwrap_or(0.0) / n)).collect();
                    assert_same(&what, &got, &want);
                }
                ("Round error and cancellation rate", refid) => {
                    let all: f64 = by(&totals, Instrument::Rounds, &[], &[]).values().sum();
                    let status = if refid == "A" { "error" } else { "cancelled" };
                    let n: f64 =
                        by(&totals, Instrument::Rounds, &[], &[("bamboo.round.status", status)]).values().sum();
                    assert!(all > 0.0 && (refid != "A" || n > 0.0), "the stream has failed rounds");
                    assert_same(&what, &got, &HashMap::from([(vec![], n / all)]));
                }
                ("Forwarded requests by endpoint and status code", _) => {
                    let want = by(
                        &totals,
                        Instrument::ForwardRequests,
                        &["bamboo.forward.endpoint", "http.response.status_code"],
                        &[],
                    );
                    assert_proportional(&what, &got, &want);
                }
                ("Cost in range by model", _) => {
                    assert_same(&what, &got, &by(&totals, Instrument::Cost, &["gen_ai.request.model"], &[]))
                }
                ("Cost per second by model", _) => {
                    assert_proportional(&what, &got, &by(&totals, Instrument::Cost, &["gen_ai.request.model"], &[]))
                }
                ("Cache savings in range by model", _) => {
                    assert_same(&what, &got, &by(&totals, Instrument::CacheSavings, &["gen_ai.request.model"], &[]))
                }
                ("Cache share of input tokens by model", _) => {
                    let tokens = |t| {
                        by(&totals, Instrument::UsageTokens, &["gen_ai.request.model"], &[("gen_ai.token.type", t)])
                    };
                    let (read, input) = (tokens("cache_read"), tokens("input"));
                    let want = read.iter().map(|(k, r)| (k.clone(), r / input[k])).collect();
                    assert_same(&what, &got, &want);
                }
                ("Reasoning tokens in range by model", _) => {
                    let want = by(
                        &totals,
                        Instrument::UsageTokens,
                        &["gen_ai.request.model"],
                        &[("gen_ai.token.type", "reasoning")],
                    );
                    assert_same(&what, &got, &want);
                }
                ("Cost per session (p50, p95)", _) => {
                    // Quantiles of USD per session: inside the buckets' bounds.
                    assert!(got.iter().all(|(_, v)| *v > 0.0 && *v <= 100.0), "{what}: {got:?}");
                }
                ("Events received by kind", _) => {
                    assert_proportional(&what, &got, &by(&totals, Instrument::BridgeEvents, &["kind"], &[]));
                }
                (t, _) if t.contains("latency") || t.contains("Latency") => {
                    // Quantiles: inside the range of the buckets' bounds, one series per group.
                    assert!(got.iter().all(|(_, v)| *v > 0.0 && *v <= 600.0), "{what}: {got:?}");
                }
                ("Rejected, dropped, incomplete", _) | ("Export failures and upstream drops", _) => {
                    // Health series exist (0 when nothing went wrong); exact values are the reliability tests' job.
                }
                (t, r) => panic!("panel {t:?} target {r} has no expectation here: add one"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 22, "{checked} queries checked");
}
