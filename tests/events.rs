//! The wire model: golden lines from WIRE.md, round trips over every variant, both upstream generations,
//! unknown statuses, and the error kinds of unreadable lines.

use bamboo_otel::events::*;
use serde_json::Value;

/// Lines written by hand from WIRE.md (the first generation, bamboo-engine 2026.4.30).
const GOLDEN: &[&str] = &[
    r#"{"Chat":{"SessionStarted":{"meta":{"event_id":"0b9f7c1e-4a51-4c8e-9a0e-2f7d1c3b5a61","occurred_at":"2026-04-30T12:00:00Z","trace_id":null},"session_id":"s1","model":"gpt-4"}}}"#,
    r#"{"Chat":{"SessionCompleted":{"meta":{"event_id":"e2","occurred_at":"2026-04-30T12:10:00Z","trace_id":null},"session_id":"s1","status":"completed"}}}"#,
    r#"{"Chat":{"RoundStarted":{"meta":{"event_id":"e3","occurred_at":"2026-04-30T12:00:01Z","trace_id":"req-1"},"round_id":"r1","session_id":"s1","model":"gpt-4"}}}"#,
    r#"{"Chat":{"RoundCompleted":{"meta":{"event_id":"e4","occurred_at":"2026-04-30T12:00:03.512Z","trace_id":"req-1"},"round_id":"r1","session_id":"s1","status":"success","usage":{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150},"latency_ms":1234,"error":null}}}"#,
    r#"{"Chat":{"ToolCalled":{"meta":{"event_id":"e5","occurred_at":"2026-04-30T12:00:02Z","trace_id":null},"tool_call_id":"t1","round_id":"r1","session_id":"s1","tool_name":"read_file","latency_ms":12,"success":true}}}"#,
    r#"{"Chat":{"MessageCountUpdated":{"meta":{"event_id":"e6","occurred_at":"2026-04-30T12:00:04Z","trace_id":null},"session_id":"s1","message_count":3}}}"#,
    r#"{"Forward":{"RequestStarted":{"meta":{"event_id":"e7","occurred_at":"2026-04-30T12:00:00Z","trace_id":null},"request_id":"f1","endpoint":"openai.chat_completions","model":"gpt-5-mini","is_stream":true}}}"#,
    r#"{"Forward":{"RequestCompleted":{"meta":{"event_id":"e8","occurred_at":"2026-04-30T12:00:00.250Z","trace_id":null},"request_id":"f1","status_code":200,"status":"success","usage":null,"latency_ms":250,"error":null}}}"#,
    r#"{"System":"WorkerStarted"}"#,
    r#"{"System":"WorkerStopped"}"#,
    r#"{"System":{"MetricsDropped":{"count":3,"reason":"channel full"}}}"#,
    r#"{"System":{"StorageError":{"error":"disk full","event_type":"Chat::SessionStarted"}}}"#,
];

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn golden_lines_round_trip_exactly() {
    for line in GOLDEN {
        let event = MetricsEvent::from_json(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let again = event.to_json();
        assert_eq!(json(&again), json(line), "round trip changed {line}");
        assert_eq!(MetricsEvent::from_json(&again).unwrap(), event);
    }
}

#[test]
fn golden_fields_are_read_into_the_right_places() {
    let MetricsEvent::Chat(ChatEvent::RoundCompleted { meta, usage, latency_ms, status, error, .. }) =
        MetricsEvent::from_json(GOLDEN[3]).unwrap()
    else {
        panic!("wrong variant")
    };
    assert_eq!(meta.trace_id.as_deref(), Some("req-1"));
    assert_eq!(meta.occurred_at.timestamp_millis() % 1000, 512);
    assert_eq!(usage, TokenUsage { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150 });
    assert_eq!((latency_ms, status, error), (1234, RoundStatus::Success, None));
    let MetricsEvent::Forward(ForwardEvent::RequestCompleted { usage, .. }) =
        MetricsEvent::from_json(GOLDEN[7]).unwrap()
    else {
        panic!("wrong variant")
    };
    assert_eq!(usage, None, "null usage is absent, not zero");
    assert_eq!(
        MetricsEvent::from_json(GOLDEN[10]).unwrap(),
        MetricsEvent::System(SystemEvent::MetricsDropped { count: 3, reason: "channel full".into() })
    );
}

#[test]
fn absent_fields_are_written_as_null_not_skipped() {
    let line = MetricsEvent::from_json(GOLDEN[0]).unwrap().to_json();
    assert!(line.contains(r#""trace_id":null"#), "{line}");
    let line = MetricsEvent::from_json(GOLDEN[7]).unwrap().to_json();
    assert!(line.contains(r#""usage":null"#) && line.contains(r#""error":null"#), "{line}");
}

#[test]
fn second_generation_statuses_parse() {
    let awaiting = GOLDEN[1].replace("\"completed\"", "\"awaiting_response\"");
    let MetricsEvent::Chat(ChatEvent::SessionCompleted { status, .. }) = MetricsEvent::from_json(&awaiting).unwrap()
    else {
        panic!()
    };
    assert_eq!(status, SessionStatus::AwaitingResponse);
    let pending = GOLDEN[7].replace("\"success\"", "\"pending\"");
    let MetricsEvent::Forward(ForwardEvent::RequestCompleted { status, .. }) =
        MetricsEvent::from_json(&pending).unwrap()
    else {
        panic!()
    };
    assert_eq!(status, ForwardStatus::Pending);
}

#[test]
fn unknown_statuses_are_kept_verbatim_and_written_back() {
    let line = GOLDEN[1].replace("\"completed\"", "\"handed_off\"");
    let event = MetricsEvent::from_json(&line).unwrap();
    let MetricsEvent::Chat(ChatEvent::SessionCompleted { status, .. }) = &event else { panic!() };
    assert_eq!(status, &SessionStatus::Other("handed_off".into()));
    assert_eq!(json(&event.to_json()), json(&line));
    for (s, expect) in [("timeout", RoundStatus::Other("timeout".into())), ("cancelled", RoundStatus::Cancelled)] {
        assert_eq!(RoundStatus::parse(s), expect);
    }
    assert_eq!(ForwardStatus::parse("retrying").as_str(), "retrying");
}

#[test]
fn unknown_fields_are_ignored() {
    let line = GOLDEN[0].replace(r#""model":"gpt-4""#, r#""model":"gpt-4","agent_version":"2027.1""#);
    assert!(MetricsEvent::from_json(&line).is_ok());
}

#[test]
fn every_variant_round_trips() {
    let meta = EventMeta::with_trace_id("req-abc-123");
    let events: Vec<MetricsEvent> = vec![
        ChatEvent::SessionStarted { meta: meta.clone(), session_id: "s".into(), model: "m".into() }.into(),
        ChatEvent::SessionCompleted {
            meta: meta.clone(),
            session_id: "s".into(),
            status: SessionStatus::AwaitingResponse,
        }
        .into(),
        ChatEvent::RoundStarted { meta: meta.clone(), round_id: "r".into(), session_id: "s".into(), model: "m".into() }
            .into(),
        ChatEvent::RoundCompleted {
            meta: meta.clone(),
            round_id: "r".into(),
            session_id: "s".into(),
            status: RoundStatus::Other("new".into()),
            usage: TokenUsage { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
            latency_ms: u64::MAX,
            error: Some("é 🚫 \"q\"\n".into()),
            cached_tool_outputs: None,
        }
        .into(),
        ChatEvent::ToolCalled {
            meta: meta.clone(),
            tool_call_id: "t".into(),
            round_id: "r".into(),
            session_id: "s".into(),
            tool_name: "Bash".into(),
            latency_ms: 0,
            success: false,
            error: None,
        }
        .into(),
        ChatEvent::MessageCountUpdated { meta: meta.clone(), session_id: "s".into(), message_count: u32::MAX }.into(),
        ForwardEvent::RequestStarted {
            meta: meta.clone(),
            request_id: "f".into(),
            endpoint: "gemini.models".into(),
            model: "".into(),
            is_stream: false,
        }
        .into(),
        ForwardEvent::RequestCompleted {
            meta: EventMeta::new(),
            request_id: "f".into(),
            status_code: 599,
            status: ForwardStatus::Pending,
            usage: Some(TokenUsage::default()),
            latency_ms: 1,
            error: None,
            token_details: None,
        }
        .into(),
        SystemEvent::MetricsDropped { count: u64::MAX, reason: "r".into() }.into(),
        SystemEvent::StorageError { error: "e".into(), event_type: "t".into() }.into(),
        SystemEvent::WorkerStarted.into(),
        SystemEvent::WorkerStopped.into(),
    ];
    for e in events {
        let line = e.to_json();
        assert!(!line.contains('\n'), "one event per line: {line}");
        assert_eq!(MetricsEvent::from_json(&line).unwrap(), e, "{line}");
    }
}

#[test]
fn meta_constructors() {
    let a = EventMeta::new();
    let b = EventMeta::default();
    assert_ne!(a.event_id, b.event_id);
    assert!(uuid::Uuid::parse_str(&a.event_id).is_ok());
    assert_eq!(a.trace_id, None);
    assert_eq!(EventMeta::with_trace_id("req-12345").trace_id.as_deref(), Some("req-12345"));
}

#[test]
fn unreadable_lines_say_why() {
    let cases = [
        ("{not json", ParseErrorKind::InvalidJson),
        (r#"{"Chat":{"SessionStarted":"#, ParseErrorKind::InvalidJson),
        (r#"{"Chat":{"SessionForked":{"meta":null}}}"#, ParseErrorKind::UnknownVariant),
        (r#"{"Telemetry":{}}"#, ParseErrorKind::UnknownVariant),
        (&GOLDEN[0].replace(r#","model":"gpt-4""#, ""), ParseErrorKind::MissingField),
        (&GOLDEN[0].replace("2026-04-30T12:00:00Z", "yesterday"), ParseErrorKind::InvalidField),
        (&GOLDEN[3].replace("1234", "-5"), ParseErrorKind::InvalidField),
    ];
    for (line, kind) in cases {
        let err = MetricsEvent::from_json(line).unwrap_err();
        assert_eq!(err.kind, kind, "{line}: {err}");
    }
    let err = MetricsEvent::from_json(&GOLDEN[0].replace(r#","model":"gpt-4""#, "")).unwrap_err();
    assert!(err.to_string().contains("`model`"), "names the field: {err}");
}

#[test]
fn every_sample_line_parses_and_round_trips() {
    let text = include_str!("data/sample-events.jsonl");
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let e = MetricsEvent::from_json(line).unwrap_or_else(|e| panic!("sample line {}: {e}", i + 1));
        assert_eq!(MetricsEvent::from_json(&e.to_json()).unwrap(), e, "line {}", i + 1);
        n += 1;
    }
    assert_eq!(n, text.lines().count());
}
