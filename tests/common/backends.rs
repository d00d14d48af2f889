//! Helpers for tests against the real backends started by `scripts/backends.sh`.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bamboo_otel::events::MetricsEvent;
use serde_json::Value;

pub const PHOENIX: &str = "http://127.0.0.1:6006";
pub const VM: &str = "http://127.0.0.1:8428";
/// Phoenix's OTLP gRPC receiver. Not 4317: Phoenix binds it on every address, and Jaeger owns 127.0.0.2:4317.
pub const PHOENIX_OTLP_GRPC: &str = "http://127.0.0.1:4319";

pub fn get(url: &str) -> Option<Value> {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => r.into_json().ok(),
        Err(ureq::Error::Status(404, _)) => None,
        Err(e) => panic!("{url}: {e}{}", backends_down()),
    }
}

/// The servers `scripts/backends.sh` starts, by the address each listens on.
const BACKENDS: &[(&str, &str)] = &[
    ("Phoenix", "127.0.0.1:6006"),
    ("VictoriaMetrics", "127.0.0.1:8428"),
    ("rotel", "127.0.0.1:14318"),
    ("Jaeger", "127.0.0.2:16686"),
    ("Prometheus", "127.0.0.1:9090"),
];

/// For a failure message: which backends do not answer, and what to run (empty when all answer), so a test run
/// on a machine without them says what to start instead of timing out obscurely.
pub fn backends_down() -> String {
    let down: Vec<String> = BACKENDS
        .iter()
        .filter(|(_, addr)| {
            let addr = addr.parse().expect("a socket address");
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err()
        })
        .map(|(name, addr)| format!("{name} on {addr}"))
        .collect();
    if down.is_empty() {
        String::new()
    } else {
        format!(
            "\n\nnot running: {} (the tests that need real servers expect them on loopback: run `scripts/backends.sh \
             start`, or `scripts/test.sh`, which starts and stops them)",
            down.join(", ")
        )
    }
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub fn poll<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_explained(secs, f, || format!("waiting for {what}"))
}

/// [`poll`], with the failure message made when the time runs out, so it can say what was seen last.
pub fn poll_explained<T>(secs: u64, mut f: impl FnMut() -> Option<T>, explain: impl FnOnce() -> String) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {secs}s {}{}", explain(), backends_down());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `value(expr)` (VictoriaMetrics or Prometheus) until it is exactly `want`, for at most 60 s, failing with
/// the last value seen.
pub fn wait_for_value(expr: &str, want: f64, value: impl Fn(&str) -> Option<f64>) {
    let last = std::cell::Cell::new(None);
    poll_explained(
        60,
        || {
            last.set(value(expr));
            (last.get() == Some(want)).then_some(())
        },
        || format!("{expr}: want {want}, last seen {:?}", last.get()),
    );
}

/// Every span Phoenix holds for `project`, keyed by span id.
pub fn phoenix_spans(project: &str) -> HashMap<String, Value> {
    let mut spans = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{PHOENIX}/v1/projects/{project}/spans/otlpv1?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let Some(page) = get(&url) else { return spans };
        for s in page["data"].as_array().unwrap() {
            spans.insert(s["span_id"].as_str().unwrap().to_owned(), s.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return spans,
        }
    }
}

pub fn wait_for_spans(project: &str, n: usize) -> HashMap<String, Value> {
    wait_for_spans_within(project, n, 90)
}

/// Like [`wait_for_spans`], for volumes Phoenix needs longer to ingest (a few hundred spans a second).
pub fn wait_for_spans_within(project: &str, n: usize, secs: u64) -> HashMap<String, Value> {
    poll(secs, &format!("{n} spans in Phoenix project {project}"), || {
        let spans = phoenix_spans(project);
        (spans.len() >= n).then_some(spans)
    })
}

pub fn phoenix_attrs(span: &Value) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for kv in span["attributes"].as_array().into_iter().flatten() {
        let v = &kv["value"];
        let value = ["string_value", "int_value", "bool_value", "double_value"]
            .iter()
            .map(|k| &v[*k])
            .find(|x| !x.is_null())
            .cloned()
            .unwrap_or(Value::Null);
        out.insert(kv["key"].as_str().unwrap().to_owned(), value);
    }
    out
}

/// Events with every Bamboo id made unique to this run (Phoenix keeps one copy of each span id forever).
pub fn fresh(events: &[MetricsEvent], salt: &str) -> Vec<MetricsEvent> {
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_json());
        text.push('\n');
    }
    let mut ids: HashSet<String> = HashSet::new();
    for e in events {
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        collect_ids(&v, &mut ids);
    }
    let mut ids: Vec<String> = ids.into_iter().collect();
    ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for id in ids {
        let replacement = if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bamboo_otel::ids::TraceId::derive(salt, &id).to_string()
        } else {
            format!("{id}-{salt}")
        };
        text = text.replace(&format!("\"{id}\""), &format!("\"{replacement}\""));
    }
    text.lines().map(|l| MetricsEvent::from_json(l).unwrap()).collect()
}

pub fn collect_ids(v: &Value, ids: &mut HashSet<String>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            match (k.as_str(), x) {
                (
                    "event_id" | "trace_id" | "session_id" | "round_id" | "tool_call_id" | "request_id",
                    Value::String(s),
                ) => {
                    ids.insert(s.clone());
                }
                _ => collect_ids(x, ids),
            }
        }
    }
}

/// Records every event, then shuts the bridge down (60 s bound) and returns its report.
pub fn send(bridge: &bamboo_otel::Bridge, events: &[MetricsEvent]) -> bamboo_otel::ShutdownReport {
    for e in events {
        bridge.record(e.clone());
    }
    bridge.shutdown(Duration::from_secs(60))
}

/// What the translator alone makes of `events` (the bridge shuts down with the same clock rules).
pub fn expected(events: &[MetricsEvent]) -> bamboo_otel::translate::Output {
    use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};
    let mut tr = Translator::new(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() });
    let mut out = Output::new();
    let now = chrono::Utc::now();
    for e in events {
        tr.process(e, now, &mut out);
    }
    tr.finish(now, &mut out);
    out
}

/// The sample traffic plus two demo sessions, made unique to this run.
pub fn stream(salt: &str) -> Vec<MetricsEvent> {
    let mut events = super::sample_events();
    let base = chrono::Utc::now() - chrono::Duration::minutes(5);
    events.extend(bamboo_otel::demo::agent_session(base));
    events.extend(bamboo_otel::demo::agent_session(base + chrono::Duration::seconds(40)));
    fresh(&events, salt)
}

pub fn salt() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Sums a PromQL expression over this run's series.
pub fn vm_value(query: &str) -> Option<f64> {
    ureq::post(&format!("{VM}/internal/force_flush")).call().ok()?;
    let url = format!("{VM}/api/v1/query?query={}", urlencode(query));
    let v = get(&url)?;
    let r = v["data"]["result"].as_array()?.first()?.clone();
    r["value"][1].as_str()?.parse().ok()
}

/// Sums a PromQL expression over this run's series, evaluated at `t`.
pub fn vm_value_at(query: &str, t: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    ureq::post(&format!("{VM}/internal/force_flush")).call().ok()?;
    let t = t.timestamp_millis() as f64 / 1000.0;
    let v = get(&format!("{VM}/api/v1/query?query={}&time={t:.3}", urlencode(query)))?;
    let r = v["data"]["result"].as_array()?.first()?.clone();
    r["value"][1].as_str()?.parse().ok()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls VictoriaMetrics until `query` returns exactly `want` (within 60 s), failing with the last value seen.
pub fn vm_wait_for(query: &str, want: f64) {
    wait_for_value(query, want, vm_value);
}

/// The span ids Phoenix holds for `project` are exactly `want`'s (after waiting for as many).
pub fn assert_phoenix_has_exactly(project: &str, want: &[bamboo_otel::translate::SpanRecord]) {
    assert_phoenix_has_exactly_within(project, want, 90);
}

/// [`assert_phoenix_has_exactly`], waiting up to `secs` for Phoenix to ingest them.
pub fn assert_phoenix_has_exactly_within(project: &str, want: &[bamboo_otel::translate::SpanRecord], secs: u64) {
    let got = wait_for_spans_within(project, want.len(), secs);
    let want_ids: HashSet<String> = want.iter().map(|s| s.span_id.to_string()).collect();
    assert_eq!(got.keys().cloned().collect::<HashSet<_>>(), want_ids);
}

/// An instant query's result as (labels `key=value`, sorted; value), from any Prometheus-compatible API.
pub fn instant_vector(v: &Value) -> Vec<(Vec<String>, f64)> {
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut labels: Vec<String> =
                r["metric"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
            labels.sort();
            (labels, r["value"][1].as_str().unwrap().parse::<f64>().unwrap())
        })
        .collect()
}

/// Checks every [`exact_sums`] query through `value` (VictoriaMetrics or Prometheus), each within 30 s. Sums of
/// seconds are floating point and each engine adds in its own order, so values agree to 1e-9 relative.
pub fn assert_exact_sums(
    svc: &str,
    totals: &bamboo_otel::console::MetricTotals,
    events: usize,
    value: impl Fn(&str) -> Option<f64>,
) {
    for (expr, want) in exact_sums(svc, totals, events) {
        assert!(want > 0.0, "{expr}: the expectation itself must be non-trivial");
        let got = poll(30, &expr, || value(&expr));
        assert!((got - want).abs() <= 1e-9 * want.max(1.0), "{expr}: got {got}, want {want}");
    }
}

/// PromQL sums over one service's series (`svc` is its label matcher) that a known stream fixes exactly, on
/// every engine: (query, what the translator's metric totals say). `events` is how many events were recorded.
pub fn exact_sums(svc: &str, totals: &bamboo_otel::console::MetricTotals, events: usize) -> Vec<(String, f64)> {
    use bamboo_otel::semconv::Instrument;
    vec![
        (
            format!("sum(gen_ai_client_token_usage_sum{{{svc},gen_ai_token_type=\"input\"}})"),
            totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum,
        ),
        (
            format!("sum(gen_ai_client_token_usage_sum{{{svc},gen_ai_token_type=\"output\"}})"),
            totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "output")]).sum,
        ),
        (
            format!("sum(gen_ai_client_token_usage_count{{{svc}}})"),
            totals.total(Instrument::TokenUsage, &[]).count as f64,
        ),
        (
            format!("sum(gen_ai_client_operation_duration_seconds_count{{{svc}}})"),
            totals.total(Instrument::OperationDuration, &[]).count as f64,
        ),
        (
            format!("sum(gen_ai_client_operation_duration_seconds_sum{{{svc}}})"),
            totals.total(Instrument::OperationDuration, &[]).sum,
        ),
        (
            format!("sum(gen_ai_execute_tool_duration_seconds_count{{{svc}}})"),
            totals.total(Instrument::ToolDuration, &[]).count as f64,
        ),
        (format!("sum(bamboo_sessions_total{{{svc}}})"), totals.total(Instrument::Sessions, &[]).sum),
        (format!("sum(bamboo_rounds_total{{{svc}}})"), totals.total(Instrument::Rounds, &[]).sum),
        (
            format!("sum(bamboo_rounds_total{{{svc},bamboo_round_status=\"error\"}})"),
            totals.total(Instrument::Rounds, &[("bamboo.round.status", "error")]).sum,
        ),
        (format!("sum(bamboo_tool_calls_total{{{svc}}})"), totals.total(Instrument::ToolCalls, &[]).sum),
        (
            format!("sum(bamboo_tool_calls_total{{{svc},bamboo_tool_success=\"false\"}})"),
            totals.total(Instrument::ToolCalls, &[("bamboo.tool.success", "false")]).sum,
        ),
        (format!("sum(bamboo_forward_requests_total{{{svc}}})"), totals.total(Instrument::ForwardRequests, &[]).sum),
        (format!("sum(bamboo_metrics_dropped_total{{{svc}}})"), totals.total(Instrument::UpstreamDropped, &[]).sum),
        (format!("sum(bamboo_otel_events_total{{{svc}}})"), events as f64),
        (
            format!("sum(bamboo_otel_events_rejected_total{{{svc},reason=\"duplicate\"}})"),
            totals.total(Instrument::BridgeRejected, &[("reason", "duplicate")]).sum,
        ),
    ]
}

/// Forwarded requests with the cache and reasoning counts Bamboo's storage path carries (the sample stream,
/// from the event path, has none), so the cost row's cache and reasoning panels have data.
pub fn with_token_details(base: chrono::DateTime<chrono::Utc>) -> Vec<MetricsEvent> {
    let mut out = Vec::new();
    let details = [
        (
            "openai.chat_completions",
            "gpt-5",
            bamboo_otel::events::TokenDetails {
                cache_read_input_tokens: Some(3000),
                reasoning_output_tokens: Some(400),
                ..Default::default()
            },
        ),
        (
            "anthropic.messages",
            "claude-sonnet-4-5",
            bamboo_otel::events::TokenDetails {
                cache_read_input_tokens: Some(6000),
                cache_creation_input_tokens: Some(1000),
                ..Default::default()
            },
        ),
    ];
    for (n, (endpoint, model, d)) in details.into_iter().enumerate() {
        let at = base + chrono::Duration::seconds(30 + n as i64);
        let id = format!("details-{n}");
        out.push(
            bamboo_otel::events::ForwardEvent::RequestStarted {
                meta: bamboo_otel::events::EventMeta::at(format!("{id}-s"), at, None),
                request_id: id.clone(),
                endpoint: endpoint.into(),
                model: model.into(),
                is_stream: false,
            }
            .into(),
        );
        out.push(
            bamboo_otel::events::ForwardEvent::RequestCompleted {
                meta: bamboo_otel::events::EventMeta::at(format!("{id}-c"), at + chrono::Duration::seconds(2), None),
                request_id: id,
                status_code: 200,
                status: bamboo_otel::events::ForwardStatus::Success,
                usage: Some(bamboo_otel::events::TokenUsage {
                    prompt_tokens: 10_000,
                    completion_tokens: 900,
                    total_tokens: 10_900,
                }),
                latency_ms: 2000,
                error: None,
                token_details: Some(d),
            }
            .into(),
        );
    }
    out
}

/// The same events moved in time so the latest happens at `last`: the sample traffic is from November 2026, and a
/// Prometheus takes old samples only within its out-of-order window.
pub fn shifted(events: &[MetricsEvent], last: chrono::DateTime<chrono::Utc>) -> Vec<MetricsEvent> {
    let latest = events.iter().filter_map(|e| e.meta()).map(|m| m.occurred_at).max().expect("events with times");
    let by = last - latest;
    events
        .iter()
        .map(|e| {
            let mut v: Value = serde_json::from_str(&e.to_json()).unwrap();
            shift_times(&mut v, by);
            MetricsEvent::from_json(&v.to_string()).unwrap()
        })
        .collect()
}

fn shift_times(v: &mut Value, by: chrono::Duration) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x.as_str().filter(|_| k == "occurred_at") {
                    Some(s) => {
                        let t = chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc) + by;
                        *x = Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
                    }
                    None => shift_times(x, by),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift_times(x, by)),
        _ => {}
    }
}
