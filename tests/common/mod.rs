//! Builders for hand-written event streams.
#![allow(dead_code)]

#[cfg(feature = "otel")]
pub mod backends;
#[cfg(feature = "bamboo")]
pub mod bamboo_history;
#[cfg(feature = "otel")]
pub mod collector;
#[cfg(feature = "grpc")]
pub mod grpc_sink;
pub mod http_sink;
#[cfg(feature = "otel")]
pub mod jaeger;
#[cfg(feature = "sources")]
pub mod metrics_db;
#[cfg(feature = "otel")]
pub mod prometheus;

use bamboo_otel::events::*;
use bamboo_otel::translate::{Output, SpanRecord, TranslateConfig, Translator, TtlClock};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// `cmd` without this process's `OTEL_*` and `BAMBOO_OTEL_*` variables, so a CLI run sees only the settings the
/// test gives it.
pub fn without_otel_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OTEL_") || k.starts_with("BAMBOO_OTEL_")) {
        cmd.env_remove(k);
    }
    cmd
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

pub fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

/// Metadata with event id `id`, `ms` after t0, and an optional trace id.
pub fn meta(id: &str, ms: i64, trace: Option<&str>) -> EventMeta {
    EventMeta::at(id, at(ms), trace.map(str::to_owned))
}

pub fn usage(p: u64, c: u64) -> TokenUsage {
    TokenUsage { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

pub fn session_started(id: &str, ms: i64, session: &str, model: &str, trace: Option<&str>) -> MetricsEvent {
    ChatEvent::SessionStarted { meta: meta(id, ms, trace), session_id: session.into(), model: model.into() }.into()
}

pub fn session_completed(id: &str, ms: i64, session: &str, status: SessionStatus) -> MetricsEvent {
    ChatEvent::SessionCompleted { meta: meta(id, ms, None), session_id: session.into(), status }.into()
}

pub fn round_started(id: &str, ms: i64, session: &str, round: &str, model: &str) -> MetricsEvent {
    ChatEvent::RoundStarted {
        meta: meta(id, ms, None),
        round_id: round.into(),
        session_id: session.into(),
        model: model.into(),
    }
    .into()
}

pub fn round_completed(id: &str, ms: i64, session: &str, round: &str, latency: u64, u: TokenUsage) -> MetricsEvent {
    ChatEvent::RoundCompleted {
        meta: meta(id, ms, None),
        round_id: round.into(),
        session_id: session.into(),
        status: RoundStatus::Success,
        usage: u,
        latency_ms: latency,
        error: None,
        cached_tool_outputs: None,
    }
    .into()
}

pub fn round_failed(id: &str, ms: i64, session: &str, round: &str, latency: u64, error: &str) -> MetricsEvent {
    ChatEvent::RoundCompleted {
        meta: meta(id, ms, None),
        round_id: round.into(),
        session_id: session.into(),
        status: RoundStatus::Error,
        usage: usage(0, 0),
        latency_ms: latency,
        error: Some(error.into()),
        cached_tool_outputs: None,
    }
    .into()
}

#[allow(clippy::too_many_arguments)]
pub fn tool(
    id: &str,
    ms: i64,
    session: &str,
    round: &str,
    call: &str,
    name: &str,
    latency: u64,
    ok: bool,
) -> MetricsEvent {
    ChatEvent::ToolCalled {
        meta: meta(id, ms, None),
        tool_call_id: call.into(),
        round_id: round.into(),
        session_id: session.into(),
        tool_name: name.into(),
        latency_ms: latency,
        success: ok,
        error: None,
    }
    .into()
}

pub fn request_started(id: &str, ms: i64, req: &str, endpoint: &str, model: &str, trace: Option<&str>) -> MetricsEvent {
    ForwardEvent::RequestStarted {
        meta: meta(id, ms, trace),
        request_id: req.into(),
        endpoint: endpoint.into(),
        model: model.into(),
        is_stream: true,
    }
    .into()
}

#[allow(clippy::too_many_arguments)]
pub fn request_completed(
    id: &str,
    ms: i64,
    req: &str,
    code: u16,
    status: ForwardStatus,
    u: Option<TokenUsage>,
    latency: u64,
    error: Option<&str>,
) -> MetricsEvent {
    ForwardEvent::RequestCompleted {
        meta: meta(id, ms, None),
        request_id: req.into(),
        status_code: code,
        status,
        usage: u,
        latency_ms: latency,
        error: error.map(str::to_owned),
        token_details: None,
    }
    .into()
}

/// Runs events through a fresh translator on the event clock, then `finish`es it.
pub fn run(events: &[MetricsEvent]) -> Output {
    run_with(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() }, events, true)
}

pub fn run_with(cfg: TranslateConfig, events: &[MetricsEvent], finish: bool) -> Output {
    let mut tr = Translator::new(cfg);
    let mut out = Output::new();
    for e in events {
        tr.process(e, at(0), &mut out);
    }
    if finish {
        tr.finish(at(0), &mut out);
    }
    out
}

pub fn span<'a>(out: &'a Output, name: &str) -> &'a SpanRecord {
    let found: Vec<_> = out.spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "expected one span named {name:?}, found {}: {:#?}", found.len(), out.spans);
    found[0]
}

pub fn sample_events() -> Vec<MetricsEvent> {
    let text = include_str!("../data/sample-events.jsonl");
    text.lines().map(|l| MetricsEvent::from_json(l).expect("sample line parses")).collect()
}

/// The event with its `trace_id` removed (Bamboo's metrics.db stores none).
pub fn without_trace_id(e: &MetricsEvent) -> MetricsEvent {
    let mut v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    for inner in v.as_object_mut().unwrap().values_mut() {
        for body in inner.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            body["meta"]["trace_id"] = serde_json::Value::Null;
        }
    }
    MetricsEvent::from_json(&v.to_string()).unwrap()
}

/// A memory figure of this process from `/proc/self/status`, in KiB: `"VmRSS:"` (resident now) or `"VmHWM:"`
/// (peak resident).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line =
        status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
