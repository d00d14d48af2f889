//! A realistic agent session as Bamboo would emit it, for the quickstart, the CLI's `demo` and tests.
//!
//! Every call uses fresh UUIDs, so sending it twice to a backend that de-duplicates by span id (Phoenix does)
//! shows two sessions.

use chrono::{DateTime, Duration, Utc};

use crate::events::*;

struct Clock {
    t: DateTime<Utc>,
    trace_id: Option<String>,
}

impl Clock {
    fn at(&mut self, advance_ms: i64) -> EventMeta {
        self.t += Duration::milliseconds(advance_ms);
        EventMeta::at(uuid::Uuid::new_v4().to_string(), self.t, self.trace_id.clone())
    }
}

fn usage(prompt: u64, completion: u64) -> TokenUsage {
    TokenUsage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

/// One planned round: its tool calls (name, latency ms, success), latency ms, tokens and error.
type RoundPlan = (&'static [(&'static str, u64, bool)], i64, TokenUsage, Option<&'static str>);

/// A coding-agent session starting at `start`: four rounds (the third fails with a provider error), seven tool
/// calls (one fails), message count updates, the forwarded upstream requests behind two rounds (one rate
/// limited), and the metrics worker's own lifecycle.
pub fn agent_session(start: DateTime<Utc>) -> Vec<MetricsEvent> {
    // Bamboo writes millisecond timestamps.
    let start = DateTime::<Utc>::from_timestamp_millis(start.timestamp_millis()).unwrap_or(start);
    let session = uuid::Uuid::new_v4().to_string();
    let run = uuid::Uuid::new_v4();
    let model = "claude-sonnet-4-5";
    // A W3C trace id with all 128 bits random-looking: a raw UUID v4 would fix the variant bits in the low half,
    // which ratio samplers read.
    let trace = crate::ids::TraceId::derive("demo", &uuid::Uuid::new_v4().to_string());
    let mut c = Clock { t: start, trace_id: Some(trace.to_string()) };
    let round_id = |n: u32| format!("{session}-run-{run}-round-{n}");
    let mut ev: Vec<MetricsEvent> = vec![SystemEvent::WorkerStarted.into()];
    ev.push(ChatEvent::SessionStarted { meta: c.at(0), session_id: session.clone(), model: model.into() }.into());
    ev.push(ChatEvent::MessageCountUpdated { meta: c.at(2), session_id: session.clone(), message_count: 1 }.into());

    // (tools: name, latency ms, success), round latency ms, tokens, error
    let rounds: [RoundPlan; 4] = [
        (&[("Glob", 61, true), ("Read", 18, true)], 7_054, usage(3_490, 225), None),
        (&[("Grep", 240, true), ("Bash", 1_225, false), ("Read", 9, true)], 12_400, usage(16_166, 436), None),
        (&[], 2_208, usage(18_020, 0), Some("Provider error: 529 Overloaded: upstream is temporarily overloaded")),
        (&[("Edit", 47, true), ("Bash", 3_310, true)], 9_076, usage(19_483, 912), None),
    ];
    let mut messages = 1;
    for (n, (tools, latency, tokens, error)) in rounds.iter().enumerate() {
        let rid = round_id(n as u32 + 1);
        let started = c.at(60);
        let round_start = started.occurred_at;
        ev.push(
            ChatEvent::RoundStarted {
                meta: started,
                round_id: rid.clone(),
                session_id: session.clone(),
                model: model.into(),
            }
            .into(),
        );
        // Each round asks the model through Bamboo's proxy; the first two are visible as forwarded requests.
        if n < 2 {
            let req = uuid::Uuid::new_v4().to_string();
            ev.push(
                ForwardEvent::RequestStarted {
                    meta: c.at(5),
                    request_id: req.clone(),
                    endpoint: "anthropic.messages".into(),
                    model: model.into(),
                    is_stream: true,
                }
                .into(),
            );
            let (code, status, err, u) = if n == 1 {
                (429, ForwardStatus::Error, Some("upstream returned 429 Too Many Requests".to_string()), None)
            } else {
                (200, ForwardStatus::Success, None, Some(*tokens))
            };
            ev.push(
                ForwardEvent::RequestCompleted {
                    meta: c.at(1_800),
                    request_id: req,
                    status_code: code,
                    status,
                    usage: u,
                    latency_ms: 1_800,
                    error: err,
                    token_details: None,
                }
                .into(),
            );
        }
        for (tool, tool_ms, ok) in tools.iter() {
            c.at(200 + *tool_ms as i64);
            ev.push(
                ChatEvent::ToolCalled {
                    meta: c.at(0),
                    tool_call_id: format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]),
                    round_id: rid.clone(),
                    session_id: session.clone(),
                    tool_name: (*tool).into(),
                    latency_ms: *tool_ms,
                    success: *ok,
                    error: None,
                }
                .into(),
            );
        }
        c.t = round_start + Duration::milliseconds(*latency);
        ev.push(
            ChatEvent::RoundCompleted {
                meta: c.at(0),
                round_id: rid,
                session_id: session.clone(),
                status: if error.is_some() { RoundStatus::Error } else { RoundStatus::Success },
                usage: *tokens,
                latency_ms: *latency as u64,
                error: error.map(str::to_owned),
                cached_tool_outputs: None,
            }
            .into(),
        );
        messages += 1 + tools.len() as u32;
        ev.push(
            ChatEvent::MessageCountUpdated { meta: c.at(1), session_id: session.clone(), message_count: messages }
                .into(),
        );
    }
    ev.push(
        ChatEvent::SessionCompleted { meta: c.at(15), session_id: session, status: SessionStatus::Completed }.into(),
    );
    ev.push(SystemEvent::WorkerStopped.into());
    ev
}

/// The benchmark mix: `sessions` sessions of 5 rounds with 3 tool calls each and one forwarded request per
/// round (37 events per session), sessions 2 s apart from `start`. Ids are fresh UUIDs; no trace ids.
pub fn load_mix(sessions: usize, start: DateTime<Utc>) -> Vec<MetricsEvent> {
    const TOOLS: [&str; 3] = ["Read", "Grep", "Bash"];
    let meta = |t: DateTime<Utc>| EventMeta::at(uuid::Uuid::new_v4().to_string(), t, None);
    let mut ev = Vec::with_capacity(sessions * 37);
    for s in 0..sessions {
        let t0 = start + Duration::seconds(2 * s as i64);
        let session = uuid::Uuid::new_v4().to_string();
        let model = "claude-sonnet-4-5";
        ev.push(ChatEvent::SessionStarted { meta: meta(t0), session_id: session.clone(), model: model.into() }.into());
        for r in 0..5i64 {
            let rt = t0 + Duration::milliseconds(100 + r * 1_000);
            let round = uuid::Uuid::new_v4().to_string();
            ev.push(
                ChatEvent::RoundStarted {
                    meta: meta(rt),
                    round_id: round.clone(),
                    session_id: session.clone(),
                    model: model.into(),
                }
                .into(),
            );
            let request = uuid::Uuid::new_v4().to_string();
            ev.push(
                ForwardEvent::RequestStarted {
                    meta: meta(rt + Duration::milliseconds(5)),
                    request_id: request.clone(),
                    endpoint: "anthropic.messages".into(),
                    model: model.into(),
                    is_stream: true,
                }
                .into(),
            );
            ev.push(
                ForwardEvent::RequestCompleted {
                    meta: meta(rt + Duration::milliseconds(400)),
                    request_id: request,
                    status_code: 200,
                    status: ForwardStatus::Success,
                    usage: Some(usage(2_000 + r as u64 * 500, 120)),
                    latency_ms: 395,
                    error: None,
                    token_details: None,
                }
                .into(),
            );
            for (k, tool) in TOOLS.iter().enumerate() {
                ev.push(
                    ChatEvent::ToolCalled {
                        meta: meta(rt + Duration::milliseconds(500 + 100 * k as i64)),
                        tool_call_id: uuid::Uuid::new_v4().to_string(),
                        round_id: round.clone(),
                        session_id: session.clone(),
                        tool_name: (*tool).into(),
                        latency_ms: 80,
                        success: k != 2 || r != 3,
                        error: None,
                    }
                    .into(),
                );
            }
            ev.push(
                ChatEvent::RoundCompleted {
                    meta: meta(rt + Duration::milliseconds(900)),
                    round_id: round,
                    session_id: session.clone(),
                    status: RoundStatus::Success,
                    usage: usage(2_000 + r as u64 * 500, 120),
                    latency_ms: 900,
                    error: None,
                    cached_tool_outputs: None,
                }
                .into(),
            );
        }
        ev.push(
            ChatEvent::SessionCompleted {
                meta: meta(t0 + Duration::milliseconds(5_200)),
                session_id: session,
                status: SessionStatus::Completed,
            }
            .into(),
        );
    }
    ev
}
