//! The translator: span shapes, trace-id rules, span assembly on hard streams, and metrics.

mod common;

use std::time::Duration as StdDuration;

use bamboo_otel::console::MetricTotals;
use bamboo_otel::events::*;
use bamboo_otel::ids::{domain, SpanId, TraceId};
use bamboo_otel::semconv::{self as sc, Instrument};
use bamboo_otel::translate::{AttrValue, Output, SpanKind, SpanStatus, TranslateConfig, Translator, TtlClock};
use common::*;

const W3C: &str = "404f9f791ad21786b89a5ca62f15e01d";

fn s(v: &str) -> Option<AttrValue> {
    Some(AttrValue::Str(v.to_owned().into()))
}
fn i(v: i64) -> Option<AttrValue> {
    Some(AttrValue::I64(v))
}

fn totals(out: &Output) -> MetricTotals {
    let mut t = MetricTotals::new();
    t.extend(&out.metrics);
    t
}

/// A session with two rounds (the second fails), two tool calls and a message count.
fn basic_session() -> Vec<MetricsEvent> {
    vec![
        session_started("e1", 0, "s1", "claude-sonnet-4-5", Some(W3C)),
        round_started("e2", 10, "s1", "r1", "claude-sonnet-4-5"),
        tool("e3", 2_000, "s1", "r1", "call-1", "Read", 500, true),
        tool("e4", 2_500, "s1", "r1", "call-2", "Bash", 300, false),
        round_completed("e5", 3_010, "s1", "r1", 3_000, usage(100, 20)),
        round_started("e6", 3_100, "s1", "r2", "openai/gpt-4o"),
        round_failed("e7", 4_100, "s1", "r2", 1_000, "Provider error: 500"),
        ChatEvent::MessageCountUpdated { meta: meta("e8", 4_101, None), session_id: "s1".into(), message_count: 4 }
            .into(),
        session_completed("e9", 4_200, "s1", SessionStatus::Error),
    ]
}

#[test]
fn session_round_and_tool_spans_have_the_semconv_shape() {
    let out = run(&basic_session());
    assert_eq!(out.spans.len(), 5);
    let trace = TraceId::parse_w3c(W3C).unwrap();
    assert!(out.spans.iter().all(|sp| sp.trace_id == trace), "all in the carried W3C trace");
    assert!(out.spans.iter().all(|sp| !sp.is_incomplete()));

    let session = span(&out, "invoke_agent bamboo");
    assert_eq!(session.kind, SpanKind::Internal);
    assert_eq!(session.span_id, SpanId::derive(domain::SESSION, "s1"));
    assert_eq!(session.parent_span_id, None);
    assert_eq!((session.start, session.end), (at(0), at(4_200)));
    assert_eq!(session.attr(sc::GEN_AI_OPERATION_NAME).cloned(), s("invoke_agent"));
    assert_eq!(session.attr(sc::GEN_AI_CONVERSATION_ID).cloned(), s("s1"));
    assert_eq!(session.attr(sc::GEN_AI_REQUEST_MODEL).cloned(), s("claude-sonnet-4-5"));
    assert_eq!(session.attr(sc::BAMBOO_SESSION_STATUS).cloned(), s("error"));
    assert_eq!(session.attr(sc::BAMBOO_SESSION_MESSAGE_COUNT).cloned(), i(4));
    assert_eq!(session.attr(sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS).cloned(), i(100));
    assert_eq!(session.attr(sc::GEN_AI_USAGE_INPUT_TOKENS), None, "a trace-wide sum must count each round once");
    assert_eq!(session.attr(sc::BAMBOO_TRACE_ID).cloned(), None, "W3C ids are not repeated as an attribute");
    assert!(matches!(session.status, SpanStatus::Error(_)));

    let r1 = span(&out, "chat claude-sonnet-4-5");
    assert_eq!(r1.kind, SpanKind::Client);
    assert_eq!(r1.parent_span_id, Some(session.span_id));
    assert_eq!(r1.span_id, SpanId::derive(domain::ROUND, "r1"));
    assert_eq!((r1.start, r1.end), (at(10), at(3_010)));
    assert_eq!(r1.attr(sc::GEN_AI_OPERATION_NAME).cloned(), s("chat"));
    assert_eq!(r1.attr(sc::GEN_AI_PROVIDER_NAME).cloned(), s("anthropic"), "the model family names the provider");
    assert_eq!(r1.attr(sc::GEN_AI_USAGE_INPUT_TOKENS).cloned(), i(100));
    assert_eq!(r1.attr(sc::GEN_AI_USAGE_OUTPUT_TOKENS).cloned(), i(20));
    assert_eq!(r1.attr(sc::GEN_AI_CONVERSATION_ID).cloned(), s("s1"));
    assert_eq!(r1.attr(sc::BAMBOO_ROUND_ID).cloned(), s("r1"));
    assert_eq!(r1.attr(sc::BAMBOO_ROUND_STATUS).cloned(), s("success"));
    assert_eq!(r1.status, SpanStatus::Unset);

    let r2 = span(&out, "chat openai/gpt-4o");
    assert_eq!(r2.attr(sc::GEN_AI_PROVIDER_NAME).cloned(), s("openai"), "provider from a provider/model name");
    assert_eq!(r2.attr(sc::ERROR_TYPE).cloned(), s("_OTHER"));
    assert_eq!(r2.status, SpanStatus::Error("Provider error: 500".into()));

    let read = span(&out, "execute_tool Read");
    assert_eq!(read.parent_span_id, Some(r1.span_id));
    assert_eq!(read.span_id, SpanId::derive(domain::TOOL, "call-1"));
    assert_eq!((read.start, read.end), (at(1_500), at(2_000)), "start = occurred_at - latency");
    assert_eq!(read.attr(sc::GEN_AI_TOOL_NAME).cloned(), s("Read"));
    assert_eq!(read.attr(sc::GEN_AI_TOOL_CALL_ID).cloned(), s("call-1"));
    assert_eq!(read.attr(sc::GEN_AI_OPERATION_NAME).cloned(), s("execute_tool"));
    assert_eq!(read.attr(sc::GEN_AI_CONVERSATION_ID).cloned(), s("s1"));
    let bash = span(&out, "execute_tool Bash");
    assert_eq!(bash.attr(sc::BAMBOO_TOOL_SUCCESS).cloned(), Some(AttrValue::Bool(false)));
    assert!(matches!(bash.status, SpanStatus::Error(_)));
}

#[test]
fn children_are_emitted_before_their_parent_ends() {
    let events = basic_session();
    let mut tr = Translator::new(TranslateConfig::default());
    let mut out = Output::new();
    for e in &events[..5] {
        tr.process(e, at(0), &mut out);
    }
    assert_eq!(out.spans.len(), 3, "two tools and the first round, while the session is still open");
    assert!(out.spans.iter().all(|sp| sp.parent_span_id.is_some()));
}

#[test]
fn forwarded_requests_become_client_spans() {
    let out = run(&[
        request_started("f1a", 0, "req-1", "anthropic.messages", "claude-opus-4-1", None),
        request_completed("f1b", 250, "req-1", 200, ForwardStatus::Success, Some(usage(30, 7)), 250, None),
        request_started("f2a", 0, "req-2", "gemini.stream_generate_content", "gemini-2.5-pro", Some("req-abc-123")),
        request_completed("f2b", 90, "req-2", 429, ForwardStatus::Error, None, 90, Some("rate limited")),
    ]);
    let ok = span(&out, "chat claude-opus-4-1");
    assert_eq!(ok.kind, SpanKind::Client);
    assert_eq!(ok.parent_span_id, None);
    assert_eq!(ok.trace_id, TraceId::derive(domain::FORWARD, "req-1"), "no trace id: derived from request_id");
    assert_eq!(ok.span_id, SpanId::derive(domain::FORWARD, "req-1"));
    assert_eq!(ok.attr(sc::GEN_AI_PROVIDER_NAME).cloned(), s("anthropic"));
    assert_eq!(ok.attr(sc::GEN_AI_OPERATION_NAME).cloned(), s("chat"));
    assert_eq!(ok.attr(sc::BAMBOO_FORWARD_ENDPOINT).cloned(), s("anthropic.messages"));
    assert_eq!(ok.attr(sc::GEN_AI_REQUEST_STREAM).cloned(), Some(AttrValue::Bool(true)));
    assert_eq!(ok.attr(sc::HTTP_RESPONSE_STATUS_CODE).cloned(), i(200));
    assert_eq!(ok.attr(sc::GEN_AI_USAGE_INPUT_TOKENS).cloned(), i(30));
    assert_eq!((ok.start, ok.end), (at(0), at(250)));

    let failed = span(&out, "generate_content gemini-2.5-pro");
    assert_eq!(failed.attr(sc::GEN_AI_PROVIDER_NAME).cloned(), s("gcp.gemini"));
    assert_eq!(failed.attr(sc::ERROR_TYPE).cloned(), s("429"));
    assert_eq!(failed.status, SpanStatus::Error("rate limited".into()));
    assert_eq!(failed.trace_id, TraceId::derive("trace", "req-abc-123"), "opaque ids are hashed");
    assert_eq!(failed.attr(sc::BAMBOO_TRACE_ID).cloned(), s("req-abc-123"), "and kept as an attribute");
    assert_eq!(failed.attr(sc::GEN_AI_USAGE_INPUT_TOKENS).cloned(), None, "absent usage is not zero");

    let t = totals(&out);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum, 30.0);
    assert_eq!(t.total(Instrument::TokenUsage, &[]).count, 2, "the request without usage records no point");
    assert_eq!(t.total(Instrument::OperationDuration, &[]).count, 2);
    assert_eq!(t.total(Instrument::OperationDuration, &[("error.type", "429")]).sum, 0.09);
    assert_eq!(
        t.total(
            Instrument::ForwardRequests,
            &[("bamboo.forward.status", "error"), ("http.response.status_code", "429")]
        )
        .sum,
        1.0
    );
}

#[test]
fn trace_id_rules() {
    // A 32-hex id is used as is, in either case; all-zero and other lengths are hashed.
    assert_eq!(TraceId::parse_w3c(W3C).unwrap().to_string(), W3C);
    assert_eq!(TraceId::parse_w3c(&W3C.to_uppercase()).unwrap().to_string(), W3C);
    assert_eq!(TraceId::parse_w3c("00000000000000000000000000000000"), None);
    assert_eq!(TraceId::parse_w3c(&W3C[1..]), None);
    assert_eq!(TraceId::parse_w3c("zz4f9f791ad21786b89a5ca62f15e01d"), None);

    // No trace id anywhere: derived from the session id. Rounds and tools join the session's trace even when
    // their own events carry another id.
    let mut events = basic_session();
    events[0] = session_started("e1", 0, "s1", "claude-sonnet-4-5", None);
    events[1] = ChatEvent::RoundStarted {
        meta: meta("e2", 10, Some("something-else")),
        round_id: "r1".into(),
        session_id: "s1".into(),
        model: "m".into(),
    }
    .into();
    let out = run(&events);
    let expected = TraceId::derive(domain::SESSION, "s1");
    // The round's carried id is adopted by the session only if the session had none; here the session had none
    // when the round arrived, so that id becomes the session's trace.
    let adopted = TraceId::derive("trace", "something-else");
    assert!(out.spans.iter().all(|sp| sp.trace_id == adopted), "one trace for the whole session");
    assert_ne!(adopted, expected);

    events[1] = round_started("e2", 10, "s1", "r1", "m");
    let out = run(&events);
    assert!(out.spans.iter().all(|sp| sp.trace_id == expected));
    assert!(out.spans.iter().all(|sp| sp.attr(sc::BAMBOO_TRACE_ID).cloned().is_none()));

    // Opaque session trace: hashed and kept on every span of the session.
    events[0] = session_started("e1", 0, "s1", "m", Some("req-I2AnhSLDwIM4"));
    let out = run(&events);
    assert!(out.spans.iter().all(|sp| sp.trace_id == TraceId::derive("trace", "req-I2AnhSLDwIM4")));
    assert!(out.spans.iter().all(|sp| sp.attr(sc::BAMBOO_TRACE_ID).cloned() == s("req-I2AnhSLDwIM4")));
}

#[test]
fn ids_are_stable_across_versions() {
    // Pinned: changing the derivation would split traces between bridge versions. The values were computed by a
    // separate Python implementation of the algorithm as documented in `ids.rs`, not by this crate.
    assert_eq!(SpanId::derive("session", "s1").to_string(), "9483df2f092da528");
    assert_eq!(TraceId::derive("trace", "req-abc-123").to_string(), "1ef378c683901949bed37098116619ff");
    assert_ne!(SpanId::derive("round", "x"), SpanId::derive("tool", "x"), "domains separate equal ids");
}

#[test]
fn completion_before_start_is_paired() {
    let out = run(&[
        session_started("e1", 0, "s1", "m", None),
        round_completed("e3", 3_000, "s1", "r1", 2_900, usage(5, 6)),
        round_started("e2", 100, "s1", "r1", "gpt-5"),
        request_completed("f2", 900, "q1", 200, ForwardStatus::Success, Some(usage(1, 2)), 800, None),
        request_started("f1", 100, "q1", "openai.responses", "gpt-4.1", None),
        session_completed("e4", 3_100, "s1", SessionStatus::Completed),
    ]);
    assert!(out.spans.iter().all(|sp| !sp.is_incomplete()), "{:#?}", out.spans);
    let round = span(&out, "chat gpt-5");
    assert_eq!((round.start, round.end), (at(100), at(3_000)));
    let req = span(&out, "chat gpt-4.1");
    assert_eq!((req.start, req.end), (at(100), at(900)));
    let t = totals(&out);
    assert_eq!(t.total(Instrument::Rounds, &[]).sum, 1.0);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "output")]).sum, 8.0);
}

#[test]
fn duplicates_are_counted_once() {
    let mut events = basic_session();
    let dup_round = events[4].clone();
    let dup_tool = events[2].clone();
    events.insert(5, dup_round.clone());
    events.push(dup_tool);
    events.push(dup_round);
    // The same completion under a new event id (a re-delivery by another path) is also not emitted twice.
    events.push(round_completed("e5-again", 3_010, "s1", "r1", 3_000, usage(100, 20)));
    let out = run(&events);
    assert_eq!(out.spans.len(), 5);
    let t = totals(&out);
    assert_eq!(t.total(Instrument::Rounds, &[]).sum, 2.0);
    assert_eq!(t.total(Instrument::ToolCalls, &[]).sum, 2.0);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum, 100.0);
    assert_eq!(t.total(Instrument::BridgeRejected, &[("reason", "duplicate")]).sum, 3.0);
    assert_eq!(t.total(Instrument::BridgeRejected, &[("reason", "already_ended")]).sum, 1.0);
    assert_eq!(t.total(Instrument::BridgeEvents, &[]).sum, events.len() as f64, "every event is counted received");
}

#[test]
fn a_completion_whose_start_never_came_is_emitted_incomplete() {
    // Round: flushed when its session run ends, start estimated from the latency.
    let out = run(&[
        session_started("e1", 0, "s1", "gemini-2.5-flash", None),
        round_completed("e2", 40_000, "s1", "r-orphan", 39_000, usage(10, 1)),
        session_completed("e3", 41_000, "s1", SessionStatus::Completed),
    ]);
    let round = span(&out, "chat gemini-2.5-flash");
    assert!(round.is_incomplete());
    assert_eq!((round.start, round.end), (at(1_000), at(40_000)));
    assert_eq!(round.status, SpanStatus::Unset, "it did complete, successfully");
    assert_eq!(round.attr(sc::GEN_AI_REQUEST_MODEL).cloned(), s("gemini-2.5-flash"), "takes the session's model");
    assert_eq!(round.parent_span_id, Some(SpanId::derive(domain::SESSION, "s1")));
    assert_eq!(totals(&out).total(Instrument::BridgeIncomplete, &[]).sum, 1.0);

    // Request: emitted at shutdown, with the operation unknown.
    let out = run(&[request_completed("f", 5_000, "q", 200, ForwardStatus::Success, None, 4_000, None)]);
    let req = span(&out, "forward");
    assert!(req.is_incomplete());
    assert_eq!((req.start, req.end), (at(1_000), at(5_000)));
}

fn ttl_config(minutes: u64) -> TranslateConfig {
    TranslateConfig { span_ttl: StdDuration::from_secs(minutes * 60), clock: TtlClock::EventTime, ..Default::default() }
}

#[test]
fn a_start_that_never_completes_is_evicted_after_the_idle_ttl() {
    let min = 60_000;
    let out = run_with(
        ttl_config(30),
        &[
            session_started("e1", 0, "stuck", "m", None),
            round_started("e2", 1_000, "stuck", "r", "m"),
            request_started("f1", 0, "q", "openai.chat_completions", "gpt-5", None),
            // Another session's event 31 minutes later moves the event clock past the TTL.
            session_started("e9", 31 * min + 1_000, "other", "m", None),
        ],
        false,
    );
    assert_eq!(out.spans.len(), 3, "{:#?}", out.spans);
    let session = span(&out, "invoke_agent bamboo");
    assert!(session.is_incomplete());
    assert_eq!(session.status, SpanStatus::Error("incomplete".into()));
    assert_eq!(session.end, at(1_000 + 30 * min), "ended when it became idle-expired");
    let round = span(&out, "chat m");
    assert_eq!(round.end, at(1_000 + 30 * min));
    assert_eq!(round.attr(sc::ERROR_TYPE).cloned(), s("incomplete"));
    // On the event clock a touch happens at the high-water mark (1 s, from the round), not at the event's own time.
    assert_eq!(span(&out, "chat gpt-5").end, at(1_000 + 30 * min));
    let t = totals(&out);
    assert_eq!(t.total(Instrument::BridgeEvicted, &[("reason", "idle")]).sum, 3.0);
    assert_eq!(t.total(Instrument::Rounds, &[]).sum, 0.0, "never completed: no round counted");
}

#[test]
fn a_busy_session_is_never_evicted() {
    // Three hours, one round every 10 minutes, TTL 30 minutes.
    let min = 60_000;
    let mut events = vec![session_started("e0", 0, "long", "m", None)];
    for n in 0..18 {
        let t = n * 10 * min;
        let r = format!("r{n}");
        events.push(round_started(&format!("a{n}"), t + 1, "long", &r, "m"));
        events.push(round_completed(&format!("b{n}"), t + 9 * min, "long", &r, 9 * min as u64, usage(1, 1)));
    }
    events.push(session_completed("end", 180 * min, "long", SessionStatus::Completed));
    let out = run_with(ttl_config(30), &events, false);
    assert_eq!(out.spans.len(), 19);
    assert!(out.spans.iter().all(|sp| !sp.is_incomplete()));
    let session = span(&out, "invoke_agent bamboo");
    assert_eq!(session.end - session.start, chrono::Duration::minutes(180));
}

#[test]
fn wall_clock_ttl_uses_now() {
    let cfg = TranslateConfig { span_ttl: StdDuration::from_secs(60), ..Default::default() };
    let mut tr = Translator::new(cfg);
    let mut out = Output::new();
    tr.process(&round_started("e1", 0, "s", "r", "m"), at(0), &mut out);
    tr.tick(at(59_000), &mut out);
    assert!(out.spans.is_empty());
    tr.tick(at(61_000), &mut out);
    assert_eq!(out.spans.len(), 1);
    assert_eq!(out.spans[0].end, at(60_000));
    assert_eq!(tr.open_spans(), 0);
}

#[test]
fn open_state_is_capped_and_overflow_is_counted() {
    let cfg = TranslateConfig { max_open_spans: 10, ..Default::default() };
    let mut tr = Translator::new(cfg);
    let mut out = Output::new();
    for n in 0..100 {
        let q = format!("q{n}");
        tr.process(&request_started(&format!("e{n}"), n, &q, "openai.chat_completions", "m", None), at(n), &mut out);
        assert!(tr.open_entries() <= 10);
    }
    let t = totals(&out);
    assert_eq!(t.total(Instrument::BridgeEvicted, &[("reason", "capacity")]).sum, 90.0);
    assert_eq!(out.spans.len(), 90, "evicted spans are emitted (incomplete), not lost");
    assert!(out.spans.iter().all(|sp| sp.is_incomplete()));
    // The oldest were evicted first.
    assert_eq!(out.spans[0].attr(sc::BAMBOO_FORWARD_REQUEST_ID).cloned(), s("q0"));
}

#[test]
fn a_resumed_session_shows_every_run_and_counts_nothing_twice() {
    let out = run(&[
        session_started("e1", 0, "s", "gpt-5", Some(W3C)),
        round_started("e2", 10, "s", "r1", "gpt-5"),
        round_completed("e3", 1_000, "s", "r1", 990, usage(100, 10)),
        session_completed("e4", 1_010, "s", SessionStatus::AwaitingResponse),
        session_started("e5", 60_000, "s", "gpt-5", None),
        round_started("e6", 60_010, "s", "r2", "claude-opus-4-1"),
        round_completed("e7", 61_000, "s", "r2", 990, usage(200, 20)),
        session_completed("e8", 61_010, "s", SessionStatus::Completed),
    ]);
    let runs: Vec<_> = out.spans.iter().filter(|sp| sp.name == "invoke_agent bamboo").collect();
    assert_eq!(runs.len(), 2);
    let (first, second) = (runs[0], runs[1]);
    assert_eq!(first.span_id, SpanId::derive(domain::SESSION, "s"));
    assert_eq!(first.attr(sc::BAMBOO_SESSION_STATUS).cloned(), s("awaiting_response"));
    assert_eq!(first.status, SpanStatus::Unset);
    assert_eq!((first.start, first.end), (at(0), at(1_010)));
    assert_eq!(second.parent_span_id, Some(first.span_id));
    assert_eq!(second.span_id, SpanId::derive(domain::SESSION_RUN, "s/e5"));
    assert_eq!(second.attr(sc::BAMBOO_SESSION_RUN).cloned(), i(2));
    assert_eq!((second.start, second.end), (at(60_000), at(61_010)));
    assert!(out.spans.iter().all(|sp| sp.trace_id == first.trace_id), "every run in the session's trace");
    assert_eq!(span(&out, "chat gpt-5").parent_span_id, Some(first.span_id));
    assert_eq!(span(&out, "chat claude-opus-4-1").parent_span_id, Some(second.span_id), "a round's model can differ");
    assert_eq!(first.attr(sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS).cloned(), i(100));
    assert_eq!(second.attr(sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS).cloned(), i(200));
    let t = totals(&out);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum, 300.0);
    assert_eq!(t.total(Instrument::Sessions, &[("bamboo.session.status", "awaiting_response")]).sum, 1.0);
    assert_eq!(t.total(Instrument::Sessions, &[("bamboo.session.status", "completed")]).sum, 1.0);
    assert_eq!(t.total(Instrument::Rounds, &[]).sum, 2.0);
}

#[test]
fn unknown_statuses_are_carried_to_the_span() {
    let out = run(&[
        session_started("e1", 0, "s", "m", None),
        session_completed("e2", 10, "s", SessionStatus::Other("handed_off".into())),
    ]);
    assert_eq!(span(&out, "invoke_agent bamboo").attr(sc::BAMBOO_SESSION_STATUS).cloned(), s("handed_off"));
    assert_eq!(totals(&out).total(Instrument::Sessions, &[("bamboo.session.status", "handed_off")]).sum, 1.0);
}

#[test]
fn error_texts_are_truncated_on_a_char_boundary() {
    let long = "€".repeat(2_000); // 6000 bytes of 3-byte characters
    let events = [
        round_started("a", 0, "s", "r", "m"),
        round_failed("b", 10, "s", "r", 10, &long),
        round_started("c", 0, "s", "r2", "m2"),
        round_failed("d", 10, "s", "r2", 10, "short"),
    ];
    let out = run(&events);
    let SpanStatus::Error(msg) = &span(&out, "chat m").status else { panic!() };
    assert_eq!(msg.len(), 4_095, "4 KiB cut back to the last whole 3-byte char");
    assert_eq!(span(&out, "chat m").attr(sc::BAMBOO_ERROR_TRUNCATED).cloned(), Some(AttrValue::Bool(true)));
    assert_eq!(span(&out, "chat m2").attr(sc::BAMBOO_ERROR_TRUNCATED).cloned(), None);
    let cfg = TranslateConfig { max_error_len: 5, clock: TtlClock::EventTime, ..Default::default() };
    let out = run_with(cfg, &events, true);
    assert_eq!(span(&out, "chat m").status, SpanStatus::Error("€".into()));
}

#[test]
fn system_events_become_internal_metrics() {
    let out = run(&[
        SystemEvent::WorkerStarted.into(),
        SystemEvent::WorkerStarted.into(),
        SystemEvent::WorkerStopped.into(),
        SystemEvent::MetricsDropped { count: 3, reason: "channel full".into() }.into(),
        SystemEvent::MetricsDropped { count: 5, reason: "channel full".into() }.into(),
        SystemEvent::StorageError { error: "disk".into(), event_type: "Chat::SessionStarted".into() }.into(),
    ]);
    assert!(out.spans.is_empty());
    let t = totals(&out);
    assert_eq!(t.total(Instrument::UpstreamWorkers, &[]).sum, 1.0);
    assert_eq!(t.total(Instrument::UpstreamDropped, &[("reason", "channel full")]).sum, 8.0);
    assert_eq!(t.total(Instrument::UpstreamStorageErrors, &[("event_type", "Chat::SessionStarted")]).sum, 1.0);
    assert_eq!(t.total(Instrument::BridgeEvents, &[("kind", "system")]).sum, 6.0);
}

#[test]
fn histograms_use_semconv_units_and_buckets() {
    let tokens = Instrument::TokenUsage.def();
    assert_eq!(
        (tokens.unit, tokens.buckets.first(), tokens.buckets.last()),
        ("{token}", Some(&1.0), Some(&67108864.0))
    );
    assert!(tokens.buckets.windows(2).all(|w| w[1] == w[0] * 4.0));
    let dur = Instrument::OperationDuration.def();
    assert_eq!((dur.unit, dur.buckets.first(), dur.buckets.last()), ("s", Some(&0.01), Some(&81.92)));
    assert!(dur.buckets.windows(2).all(|w| (w[1] - w[0] * 2.0).abs() < 1e-9));
}

/// Independent expectations computed from the raw sample file, not from the translator.
#[test]
fn the_real_sample_stream_translates_completely() {
    let events = sample_events();
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&MetricsEvent> =
        events.iter().filter(|e| e.meta().map_or(true, |m| seen.insert(m.event_id.clone()))).collect();
    let mut ids = std::collections::HashSet::new();
    let (mut input, mut output) = (0u64, 0u64);
    let mut completed_rounds = std::collections::HashSet::new();
    for e in &unique {
        match e {
            MetricsEvent::Chat(ChatEvent::SessionStarted { session_id, .. }) => {
                ids.insert(format!("s/{session_id}"));
            }
            MetricsEvent::Chat(ChatEvent::RoundStarted { round_id, .. }) => {
                ids.insert(format!("r/{round_id}"));
            }
            MetricsEvent::Chat(ChatEvent::RoundCompleted { round_id, usage, .. }) => {
                ids.insert(format!("r/{round_id}"));
                if completed_rounds.insert(round_id.clone()) {
                    input += usage.prompt_tokens;
                    output += usage.completion_tokens;
                }
            }
            MetricsEvent::Chat(ChatEvent::ToolCalled { tool_call_id, .. }) => {
                ids.insert(format!("t/{tool_call_id}"));
            }
            MetricsEvent::Forward(f) => {
                ids.insert(format!("f/{}", f.request_id()));
                if let ForwardEvent::RequestCompleted { usage: Some(u), .. } = f {
                    input += u.prompt_tokens;
                    output += u.completion_tokens;
                }
            }
            _ => {}
        }
    }
    let out = run(&events);
    assert_eq!(out.spans.len(), ids.len(), "one span per distinct session, round, tool call and request");
    let span_ids: std::collections::HashSet<_> = out.spans.iter().map(|sp| sp.span_id).collect();
    assert_eq!(span_ids.len(), out.spans.len(), "no span emitted twice");
    for sp in &out.spans {
        assert!(sp.start <= sp.end, "{} ends before it starts", sp.name);
        if let Some(p) = sp.parent_span_id {
            assert!(span_ids.contains(&p), "{}: parent {p} missing", sp.name);
            let parent = out.spans.iter().find(|x| x.span_id == p).unwrap();
            assert_eq!(parent.trace_id, sp.trace_id, "{} is not in its parent's trace", sp.name);
        }
    }
    let t = totals(&out);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum, input as f64);
    assert_eq!(t.total(Instrument::TokenUsage, &[("gen_ai.token.type", "output")]).sum, output as f64);
    assert_eq!(
        t.total(Instrument::BridgeRejected, &[("reason", "duplicate")]).sum,
        (events.len() - unique.len()) as f64
    );
    // Hard cases of the sample: the never-finished session and request, and the round without a start.
    let incomplete: Vec<_> = out.spans.iter().filter(|sp| sp.is_incomplete()).map(|sp| sp.name.as_str()).collect();
    assert_eq!(incomplete.len(), 4, "{incomplete:?}");
    // No id ever lands in a metric attribute.
    for m in &out.metrics {
        for kv in &m.attributes {
            if let AttrValue::Str(v) = &kv.value {
                assert!(
                    !ids.iter().any(|id| id.ends_with(&format!("/{v}"))),
                    "{} carries an id: {v}",
                    m.instrument.name()
                );
            }
        }
    }
}

#[test]
fn two_processes_seeing_parts_of_a_session_produce_spans_that_join() {
    let events = basic_session();
    let (mut a, mut b) = (Translator::new(TranslateConfig::default()), Translator::new(TranslateConfig::default()));
    let (mut out_a, mut out_b) = (Output::new(), Output::new());
    // Process A sees the session's start and end; process B sees the rounds and tools.
    for (n, e) in events.iter().enumerate() {
        if matches!(n, 0 | 8) {
            a.process(e, at(0), &mut out_a);
        } else {
            b.process(e, at(0), &mut out_b);
        }
    }
    let session = span(&out_a, "invoke_agent bamboo");
    let round = span(&out_b, "chat claude-sonnet-4-5");
    assert_eq!(round.parent_span_id, Some(session.span_id));
    // B's events carry no trace id, so B derives from the session id; A has the W3C id. Only sessions whose
    // events all carry (or all lack) the trace id join across processes: see the README's trace-id rules.
    assert_ne!(round.trace_id, session.trace_id);
    let mut events = basic_session();
    events[0] = session_started("e1", 0, "s1", "claude-sonnet-4-5", None);
    let (mut a, mut b) = (Translator::new(TranslateConfig::default()), Translator::new(TranslateConfig::default()));
    let (mut out_a, mut out_b) = (Output::new(), Output::new());
    for (n, e) in events.iter().enumerate() {
        if n % 2 == 0 {
            a.process(e, at(0), &mut out_a);
        } else {
            b.process(e, at(0), &mut out_b);
        }
    }
    a.finish(at(5_000), &mut out_a);
    b.finish(at(5_000), &mut out_b);
    let all: Vec<_> = out_a.spans.iter().chain(&out_b.spans).collect();
    assert!(all.iter().all(|sp| sp.trace_id == all[0].trace_id));
    let tool = all.iter().find(|sp| sp.name == "execute_tool Read").unwrap();
    assert_eq!(tool.parent_span_id, Some(SpanId::derive(domain::ROUND, "r1")));
}

#[test]
fn every_rejection_is_in_the_stats_that_shutdown_reports_use() {
    let mut tr = Translator::new(TranslateConfig::default());
    let mut out = Output::new();
    let events = [
        request_started("a", 0, "q", "openai.responses", "m", None),
        request_started("a", 0, "q", "openai.responses", "m", None), // same event id
        request_started("b", 0, "q", "openai.responses", "m", None), // same request, new event id
        request_completed("c", 10, "q", 200, ForwardStatus::Success, None, 10, None),
        request_completed("d", 10, "q", 200, ForwardStatus::Success, None, 10, None), // after the span ended
    ];
    for e in &events {
        tr.process(e, at(0), &mut out);
    }
    let stats = tr.stats();
    assert_eq!((stats.duplicates, stats.already_ended), (2, 1));
    let t = totals(&out);
    let metric = t.total(Instrument::BridgeRejected, &[]).sum;
    assert_eq!(metric, (stats.duplicates + stats.already_ended) as f64, "the report and the metric agree");
}

#[test]
fn metric_totals_match_attribute_values_containing_commas() {
    let out = run(&[
        tool("e1", 100, "s", "r", "c1", "search,web", 10, true),
        tool("e2", 200, "s", "r", "c2", "web", 10, true),
    ]);
    let t = totals(&out);
    assert_eq!(t.total(Instrument::ToolCalls, &[("gen_ai.tool.name", "search,web")]).sum, 1.0);
    assert_eq!(t.total(Instrument::ToolCalls, &[("gen_ai.tool.name", "web")]).sum, 1.0);
}

/// Found by the `translate` fuzz target on its seed: the real sample traffic with room for 5 open entries, a
/// 60 s time-to-live and the event clock. A session evicted after its first run was emitted, then seen again,
/// emitted a second span with the first run's id.
#[test]
fn no_span_id_is_emitted_twice_when_evicted_sessions_come_back() {
    let cfg = TranslateConfig {
        max_open_spans: 5,
        span_ttl: StdDuration::from_secs(60),
        clock: TtlClock::EventTime,
        ..TranslateConfig::default()
    };
    let out = run_with(cfg, &sample_events(), true);
    let mut ids = std::collections::HashSet::new();
    for s in &out.spans {
        assert!(ids.insert(s.span_id), "{} {:?} emitted twice", s.name, s.span_id);
    }
    assert!(out.spans.len() > 100, "{}", out.spans.len());
}

#[test]
fn a_session_completed_after_its_eviction_is_a_later_run_under_the_first() {
    let cfg = TranslateConfig { max_open_spans: 2, ..TranslateConfig::default() };
    let mut events = vec![session_started("e1", 0, "s1", "m", None)];
    // Two other sessions push s1 out (capacity 2): its run is emitted as incomplete.
    events.push(session_started("e2", 10, "s2", "m", None));
    events.push(session_started("e3", 20, "s3", "m", None));
    events.push(session_completed("e4", 30, "s1", SessionStatus::Completed));
    let out = run_with(cfg, &events, true);
    let first = SpanId::derive(domain::SESSION, "s1");
    let s1: Vec<_> = out
        .spans
        .iter()
        .filter(|sp| sp.attr(sc::BAMBOO_SESSION_ID).and_then(AttrValue::as_str) == Some("s1"))
        .collect();
    assert_eq!(s1.len(), 2, "{s1:#?}");
    assert_eq!(s1[0].span_id, first);
    assert!(s1[0].is_incomplete());
    assert_ne!(s1[1].span_id, first, "the late completion must not reuse the emitted span's id");
    assert_eq!(s1[1].parent_span_id, Some(first));
}

#[test]
fn a_model_no_rule_knows_gets_no_provider_and_no_cost_and_is_counted() {
    let events = vec![
        common::session_started("e1", 0, "s1", "llama3", None),
        common::round_started("e2", 10, "s1", "r1", "llama3"),
        common::round_completed("e3", 1_010, "s1", "r1", 1_000, usage(100, 20)),
        common::session_completed("e4", 1_100, "s1", SessionStatus::Completed),
    ];
    let out = common::run(&events);
    let round = span(&out, "chat llama3");
    assert_eq!(round.attr(sc::GEN_AI_PROVIDER_NAME), None, "never a guessed provider");
    assert_eq!(round.attr(sc::BAMBOO_USAGE_COST), None, "never a guessed price");
    assert_eq!(span(&out, "invoke_agent bamboo").attr(sc::BAMBOO_SESSION_USAGE_COST), None);
    let t = totals(&out);
    assert_eq!(
        t.total(Instrument::BridgeProviderUnknown, &[("gen_ai.request.model", "llama3")]).sum,
        2.0,
        "round and session"
    );
    assert_eq!(
        t.total(Instrument::BridgeCostUnpriced, &[("gen_ai.request.model", "llama3")]).sum,
        1.0,
        "the round had usage and no price"
    );
    assert_eq!(t.total(Instrument::Cost, &[]).sum, 0.0);
}

#[test]
fn a_priced_model_costs_what_the_table_says_on_spans_and_counters() {
    let events = vec![
        common::session_started("e1", 0, "s1", "claude-sonnet-4-5", None),
        common::round_started("e2", 10, "s1", "r1", "claude-sonnet-4-5"),
        common::round_completed("e3", 1_010, "s1", "r1", 1_000, usage(1_000_000, 100_000)),
        common::round_started("e4", 1_100, "s1", "r2", "gpt-4o-mini"),
        common::round_completed("e5", 2_100, "s1", "r2", 1_000, usage(2_000_000, 0)),
        common::session_completed("e6", 2_200, "s1", SessionStatus::Completed),
    ];
    let out = common::run(&events);
    // $3/M in, $15/M out; then gpt-4o-mini at $0.15/M in.
    assert_eq!(span(&out, "chat claude-sonnet-4-5").attr(sc::BAMBOO_USAGE_COST).and_then(AttrValue::as_f64), Some(4.5));
    assert_eq!(span(&out, "chat gpt-4o-mini").attr(sc::BAMBOO_USAGE_COST).and_then(AttrValue::as_f64), Some(0.3));
    let session = span(&out, "invoke_agent bamboo");
    assert_eq!(session.attr(sc::BAMBOO_SESSION_USAGE_COST).and_then(AttrValue::as_f64), Some(4.8));
    let t = totals(&out);
    let cost =
        |model, kind| t.total(Instrument::Cost, &[("gen_ai.request.model", model), ("gen_ai.token.type", kind)]).sum;
    assert_eq!((cost("claude-sonnet-4-5", "input"), cost("claude-sonnet-4-5", "output")), (3.0, 1.5));
    assert_eq!(cost("gpt-4o-mini", "input"), 0.3);
    assert_eq!(t.total(Instrument::SessionCost, &[]).sum, 4.8);
    assert_eq!(t.total(Instrument::InvokeAgentDuration, &[("gen_ai.agent.name", "bamboo")]).sum, 2.2);
    assert_eq!(t.total(Instrument::UsageTokens, &[("gen_ai.token.type", "input")]).sum, 3_000_000.0);
}
