//! Sessions, rounds and tool calls.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::open::{BoundedSet, Class, CompactId};
use super::*;
use crate::events::{CachedToolOutputs, ChatEvent, EventMeta, RoundStatus, SessionStatus, TokenUsage};
use crate::ids::{domain, SpanId, TraceRef};

/// What the translator remembers of a session: its trace, its open run if any, and enough of its past runs for
/// late children and resumptions to find their parent. Kept until idle for the time-to-live.
#[derive(Debug)]
pub(super) struct Session {
    session_id: CompactId,
    pub(super) seq: u64,
    pub(super) last_seen: DateTime<Utc>,
    /// Boxed: most sessions carry no trace id, and an open entry should stay small.
    trace: Option<Box<TraceRef>>,
    /// Set once a span in this session's trace has been emitted: the trace can no longer change.
    trace_locked: bool,
    /// Interned: a handful of models serve thousands of sessions.
    model: Option<Arc<str>>,
    message_count: Option<u32>,
    runs_ended: u32,
    last_end: Option<Box<(DateTime<Utc>, SessionStatus)>>,
    /// The span of the latest run: the parent of rounds arriving when no run is open.
    last_run_span: SpanId,
    pub(super) run: Option<Box<Run>>,
    /// Rounds whose completion arrived without their start; emitted as incomplete when the run ends.
    // 8 bytes in every session instead of 24: held rounds are rare, sessions are many.
    #[allow(clippy::box_collection)]
    held_rounds: Option<Box<Vec<u64>>>,
    /// Totals of rounds emitted before the session's first start arrived (metrics.db rows, out-of-order
    /// streams): the first run takes them when it opens. Boxed: rare.
    early: Option<Box<(u64, u64, f64)>>,
}

/// One run of a session: `SessionStarted` … `SessionCompleted`.
#[derive(Debug)]
pub(super) struct Run {
    span_id: SpanId,
    parent: Option<SpanId>,
    number: u32,
    /// `None` while only the completion has been seen.
    start: Option<DateTime<Utc>>,
    first_seen: DateTime<Utc>,
    model: Option<Arc<str>>,
    input_tokens: u64,
    output_tokens: u64,
    /// USD of the run's priced rounds; NaN until one is priced (so "no price" and "$0" stay apart).
    cost: f64,
    events: Vec<SpanEventRecord>,
    /// Boxed: set only while a completion waits for its start.
    completion: Option<Box<(DateTime<Utc>, SessionStatus)>>,
}

#[derive(Debug)]
pub(super) struct Round {
    round_id: CompactId,
    session_id: CompactId,
    pub(super) seq: u64,
    pub(super) last_seen: DateTime<Utc>,
    parent: SpanId,
    start: Option<DateTime<Utc>>,
    model: Option<Arc<str>>,
    /// Boxed: absent while the round is open, which is when memory matters.
    completion: Option<Box<RoundDone>>,
}

#[derive(Debug)]
struct RoundDone {
    at: DateTime<Utc>,
    status: RoundStatus,
    usage: TokenUsage,
    latency_ms: u64,
    error: Option<String>,
    cached: Option<CachedToolOutputs>,
}

/// A finished tool call as the event gives it.
struct ToolCall<'a> {
    tool_call_id: &'a str,
    round_id: &'a str,
    tool_name: &'a str,
    latency_ms: u64,
    success: bool,
}

fn session_key(session_id: &str) -> u64 {
    SpanId::derive(domain::SESSION, session_id).to_u64()
}

fn round_span(round_id: &str) -> SpanId {
    SpanId::derive(domain::ROUND, round_id)
}

impl Session {
    fn new(session_id: &str, clock: DateTime<Utc>) -> Self {
        Session {
            session_id: CompactId::new(session_id),
            seq: 0,
            last_seen: clock,
            trace: None,
            trace_locked: false,
            model: None,
            message_count: None,
            runs_ended: 0,
            last_end: None,
            last_run_span: SpanId::derive(domain::SESSION, session_id),
            run: None,
            held_rounds: None,
            early: None,
        }
    }

    /// Adopts the trace id an event carries, unless the session's trace is already fixed.
    fn adopt_trace(&mut self, meta: &EventMeta) {
        if self.trace.is_none() && !self.trace_locked {
            if let Some(t) = meta.trace_id.as_deref() {
                self.trace = Some(Box::new(TraceRef::from_carried(t)));
            }
        }
    }

    /// The trace every span of this session goes into; fixes it from now on.
    fn trace_for_emit(&mut self) -> TraceRef {
        self.trace_locked = true;
        (**self.trace.get_or_insert_with(|| Box::new(TraceRef::derived(domain::SESSION, &self.session_id.as_str()))))
            .clone()
    }

    fn current_parent(&self) -> SpanId {
        self.run.as_ref().map_or(self.last_run_span, |r| r.span_id)
    }

    /// Opens a run. The first run's span id is the session's own. A later (resumed) run's id derives from the
    /// event that opened it here: its `SessionStarted`, or its `SessionCompleted` when that came first.
    fn open_run(&mut self, start: Option<&EventMeta>, seen: &EventMeta) -> &mut Run {
        let first = SpanId::derive(domain::SESSION, &self.session_id.as_str());
        let (span_id, parent) = if self.runs_ended == 0 {
            (first, None)
        } else {
            let id = format!("{}/{}", &*self.session_id.as_str(), seen.event_id);
            (SpanId::derive(domain::SESSION_RUN, &id), Some(first))
        };
        self.last_run_span = span_id;
        let early = if self.runs_ended == 0 { self.early.take().map(|b| *b) } else { None };
        let (input_tokens, output_tokens, cost) = early.unwrap_or((0, 0, f64::NAN));
        self.run.insert(Box::new(Run {
            span_id,
            parent,
            number: self.runs_ended + 1,
            start: start.map(|m| m.occurred_at),
            first_seen: seen.occurred_at,
            model: self.model.clone(),
            input_tokens,
            output_tokens,
            cost,
            events: Vec::new(),
            completion: None,
        }))
    }
}

impl Translator {
    pub(super) fn chat(&mut self, event: &ChatEvent, clock: DateTime<Utc>, out: &mut Output) {
        let meta = event.meta();
        let skey = self.touch_session(event.session_id(), meta, clock, out);
        match event {
            ChatEvent::SessionStarted { model, .. } => self.session_started(skey, meta, model, out),
            ChatEvent::SessionCompleted { status, .. } => self.session_completed(skey, meta, status, out),
            ChatEvent::RoundStarted { round_id, model, .. } => {
                self.round_started(skey, round_id, meta, model, clock, out)
            }
            ChatEvent::RoundCompleted { round_id, status, usage, latency_ms, error, cached_tool_outputs, .. } => {
                let done = RoundDone {
                    at: meta.occurred_at,
                    status: status.clone(),
                    usage: *usage,
                    latency_ms: *latency_ms,
                    error: error.clone(),
                    cached: *cached_tool_outputs,
                };
                self.round_completed(skey, round_id, done, clock, out)
            }
            ChatEvent::ToolCalled { tool_call_id, round_id, tool_name, latency_ms, success, error, .. } => {
                let call = ToolCall { tool_call_id, round_id, tool_name, latency_ms: *latency_ms, success: *success };
                self.tool_called(skey, meta, call, error.as_deref(), clock, out)
            }
            ChatEvent::MessageCountUpdated { message_count, .. } => {
                if let Some(s) = self.sessions.get_mut(&skey) {
                    s.message_count = Some(*message_count);
                }
            }
        }
    }

    /// Finds or creates the session entry, adopts the event's trace id and marks the session active.
    fn touch_session(&mut self, session_id: &str, meta: &EventMeta, clock: DateTime<Utc>, out: &mut Output) -> u64 {
        let key = session_key(session_id);
        if !self.sessions.contains_key(&key) {
            self.make_room(None, clock, out);
            let session = Self::session_entry(&self.ended, key, session_id, clock);
            self.sessions.insert(key, session);
        }
        let seq = self.lru.touch(Class::Session, key);
        let s = self.sessions.get_mut(&key).expect("inserted above");
        s.seq = seq;
        s.last_seen = clock;
        s.adopt_trace(meta);
        key
    }

    fn session_started(&mut self, key: u64, meta: &EventMeta, model: &str, out: &mut Output) {
        let interned = self.strings.intern(model);
        let s = self.sessions.get_mut(&key).expect("touched");
        s.model = Some(interned.clone());
        match &mut s.run {
            Some(run) if run.start.is_none() => {
                // The completion came first: pair it now.
                run.start = Some(meta.occurred_at);
                run.first_seen = run.first_seen.min(meta.occurred_at);
                run.model = Some(interned);
                if let Some((end, status)) = run.completion.take().map(|b| *b) {
                    self.end_run(key, end, Some(status), false, out);
                }
            }
            Some(run) => {
                // Started again while a run is open: Bamboo resumed without closing the run first.
                run.events.push(SpanEventRecord {
                    name: sc::EVENT_SESSION_RESUMED,
                    time: meta.occurred_at,
                    attributes: vec![KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model)],
                });
            }
            None => {
                s.open_run(Some(meta), meta);
            }
        }
    }

    fn session_completed(&mut self, key: u64, meta: &EventMeta, status: &SessionStatus, out: &mut Output) {
        let s = self.sessions.get_mut(&key).expect("touched");
        match &mut s.run {
            Some(run) if run.start.is_some() => self.end_run(key, meta.occurred_at, Some(status.clone()), false, out),
            Some(_) => self.reject(sc::REJECT_DUPLICATE, out),
            None if s.last_end.as_deref() == Some(&(meta.occurred_at, status.clone())) => {
                self.reject(sc::REJECT_ALREADY_ENDED, out)
            }
            None => {
                // Completion before start: hold it until the start arrives or the entry goes idle.
                let run = s.open_run(None, meta);
                run.completion = Some(Box::new((meta.occurred_at, status.clone())));
            }
        }
    }

    /// Ends the open run of session `key` at `end` and emits its span. `status` is `None` when it never completed.
    fn end_run(
        &mut self,
        key: u64,
        end: DateTime<Utc>,
        status: Option<SessionStatus>,
        incomplete: bool,
        out: &mut Output,
    ) {
        // Rounds still waiting for their start will not get one now: emit them under this run first, so the
        // run's totals include them.
        let held = self.sessions.get_mut(&key).expect("session").held_rounds.take().map_or_else(Vec::new, |b| *b);
        for rkey in held {
            if self.rounds.get(&rkey).is_some_and(|r| r.completion.is_some() && r.start.is_none()) {
                self.evict_round(rkey, end, out);
            }
        }
        let cfg_max = self.cfg.max_error_len;
        let model = {
            let s = self.sessions.get(&key).expect("session");
            s.run.as_ref().and_then(|r| r.model.clone()).or_else(|| s.model.clone())
        };
        let provider = self.provider_of(model.as_deref(), out);
        let agent = self.cfg.agent_name.clone();
        let s = self.sessions.get_mut(&key).expect("session");
        let Some(run) = s.run.take() else { return };
        self.ended.insert(run.span_id.to_u64());
        let trace = s.trace_for_emit();
        let incomplete = incomplete || run.start.is_none();
        let start = run.start.unwrap_or(run.first_seen).min(end);
        s.runs_ended += 1;
        if let Some(status) = &status {
            s.last_end = Some(Box::new((end, status.clone())));
        }

        let model = model.as_deref();
        let mut attrs = Vec::with_capacity(16);
        attrs.push(KeyValue::fixed(sc::GEN_AI_OPERATION_NAME, sc::OP_INVOKE_AGENT));
        attrs.push(KeyValue::new(sc::GEN_AI_AGENT_NAME, agent.clone()));
        attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, &*s.session_id.as_str()));
        if let Some(model) = model {
            attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model));
        }
        if let Some(p) = &provider {
            attrs.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, p.clone()));
        }
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_ID, &*s.session_id.as_str()));
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_RUN, run.number));
        // The run's totals under names of their own, so a trace-wide sum of gen_ai.usage.* counts each round once.
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS, run.input_tokens));
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_USAGE_OUTPUT_TOKENS, run.output_tokens));
        if !run.cost.is_nan() {
            attrs.push(KeyValue::new(sc::BAMBOO_SESSION_USAGE_COST, run.cost));
        }
        if let Some(n) = s.message_count {
            attrs.push(KeyValue::new(sc::BAMBOO_SESSION_MESSAGE_COUNT, n));
        }
        let mut error_type = None;
        let span_status = match &status {
            Some(st) => {
                attrs.push(KeyValue::new(sc::BAMBOO_SESSION_STATUS, st.as_str()));
                if *st == SessionStatus::Error {
                    error_type = Some(sc::ERROR_TYPE_OTHER);
                    attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_TYPE_OTHER));
                    error_status("session ended with status error", cfg_max, &mut attrs)
                } else {
                    SpanStatus::Unset
                }
            }
            None => {
                error_type = Some(sc::ERROR_INCOMPLETE);
                attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_INCOMPLETE));
                SpanStatus::Error(sc::ERROR_INCOMPLETE.to_owned())
            }
        };
        common_attrs(&trace, incomplete, &mut attrs);
        let span = SpanRecord {
            trace_id: trace.id,
            span_id: run.span_id,
            parent_span_id: run.parent,
            name: format!("{} {}", sc::OP_INVOKE_AGENT, sc::AGENT_NAME),
            kind: SpanKind::Internal,
            start,
            end,
            attributes: attrs,
            events: run.events,
            status: span_status,
        };
        if let Some(st) = &status {
            out.count(Instrument::Sessions, 1, vec![KeyValue::new(sc::BAMBOO_SESSION_STATUS, st.as_str())]);
            let mut agent_attrs = vec![KeyValue::new(sc::GEN_AI_AGENT_NAME, agent)];
            if let Some(m) = model {
                agent_attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, m));
            }
            let this = SpanRef { trace_id: span.trace_id, span_id: span.span_id };
            if !run.cost.is_nan() {
                out.measure(this, Instrument::SessionCost, run.cost, agent_attrs.clone());
            }
            if let Some(e) = error_type {
                agent_attrs.push(KeyValue::fixed(sc::ERROR_TYPE, e));
            }
            let seconds = (span.end - span.start).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            out.measure(this, Instrument::InvokeAgentDuration, seconds, agent_attrs);
        }
        self.emitted(span, out);
    }

    fn round_started(
        &mut self,
        skey: u64,
        round_id: &str,
        meta: &EventMeta,
        model: &str,
        clock: DateTime<Utc>,
        out: &mut Output,
    ) {
        let rkey = round_span(round_id).to_u64();
        if self.ended.contains(rkey) {
            return self.reject(sc::REJECT_ALREADY_ENDED, out);
        }
        let model = self.strings.intern(model);
        match self.rounds.get_mut(&rkey) {
            Some(r) if r.start.is_some() => return self.reject(sc::REJECT_DUPLICATE, out),
            Some(r) => {
                r.start = Some(meta.occurred_at);
                r.model = Some(model);
            }
            None => {
                self.make_room(Some(skey), clock, out);
                let s = self.sessions.get(&skey).expect("touched, and kept by make_room");
                let (parent, session_id) = (s.current_parent(), s.session_id.clone());
                self.rounds.insert(
                    rkey,
                    Round {
                        round_id: CompactId::new(round_id),
                        session_id,
                        seq: 0,
                        last_seen: clock,
                        parent,
                        start: Some(meta.occurred_at),
                        model: Some(model),
                        completion: None,
                    },
                );
            }
        }
        self.touch_round(rkey, clock);
        if self.rounds.get(&rkey).is_some_and(|r| r.completion.is_some()) {
            self.finish_round(rkey, false, None, out);
        }
    }

    fn round_completed(&mut self, skey: u64, round_id: &str, done: RoundDone, clock: DateTime<Utc>, out: &mut Output) {
        let rkey = round_span(round_id).to_u64();
        if self.ended.contains(rkey) {
            return self.reject(sc::REJECT_ALREADY_ENDED, out);
        }
        match self.rounds.get_mut(&rkey) {
            Some(r) if r.completion.is_some() => return self.reject(sc::REJECT_DUPLICATE, out),
            Some(r) => r.completion = Some(Box::new(done)),
            None => {
                // Completion before start: hold it; the run's end (or idleness) emits it if no start comes.
                self.make_room(Some(skey), clock, out);
                let s = self.sessions.get_mut(&skey).expect("touched, and kept by make_room");
                s.held_rounds.get_or_insert_with(Default::default).push(rkey);
                let round = Round {
                    round_id: CompactId::new(round_id),
                    session_id: s.session_id.clone(),
                    seq: 0,
                    last_seen: clock,
                    parent: s.current_parent(),
                    start: None,
                    model: None,
                    completion: Some(Box::new(done)),
                };
                self.rounds.insert(rkey, round);
            }
        }
        self.touch_round(rkey, clock);
        if self.rounds.get(&rkey).is_some_and(|r| r.start.is_some()) {
            self.finish_round(rkey, false, None, out);
        }
    }

    /// A new entry for session `key`. If its first run was emitted before the entry was forgotten (idle,
    /// capacity), what comes now is a later run, with an id of its own under the first: never a second span with
    /// the first run's id.
    fn session_entry(ended: &BoundedSet, key: u64, session_id: &str, clock: DateTime<Utc>) -> Session {
        let mut session = Session::new(session_id, clock);
        if ended.contains(key) {
            session.runs_ended = 1;
        }
        session
    }

    fn touch_round(&mut self, rkey: u64, clock: DateTime<Utc>) {
        let seq = self.lru.touch(Class::Round, rkey);
        if let Some(r) = self.rounds.get_mut(&rkey) {
            r.seq = seq;
            r.last_seen = clock;
        }
    }

    /// Removes a round and emits its span. `end` is used when the round never completed.
    fn finish_round(&mut self, rkey: u64, incomplete: bool, end: Option<DateTime<Utc>>, out: &mut Output) {
        let Some(round) = self.rounds.remove(&rkey) else { return };
        self.ended.insert(rkey);
        let skey = session_key(&round.session_id.as_str());
        if let std::collections::hash_map::Entry::Vacant(slot) = self.sessions.entry(skey) {
            // The session was forgotten (idle or capacity); the round still joins its trace by derivation.
            let mut s = Self::session_entry(&self.ended, skey, &round.session_id.as_str(), round.last_seen);
            s.trace_locked = true;
            s.seq = self.lru.touch(Class::Session, skey);
            slot.insert(s);
        }
        let max_err = self.cfg.max_error_len;
        let s = self.sessions.get(&skey).expect("present");
        let model =
            round.model.clone().or_else(|| s.run.as_ref().and_then(|r| r.model.clone())).or_else(|| s.model.clone());
        let provider = self.provider_of(model.as_deref(), out);
        let cost = match &round.completion {
            Some(done) => self.price(provider.as_ref(), model.as_deref(), &done.usage, None, out),
            None => None,
        };
        let s = self.sessions.get_mut(&skey).expect("present");
        let trace = s.trace_for_emit();
        let incomplete = incomplete || round.start.is_none() || round.completion.is_none();

        let mut attrs = Vec::with_capacity(16);
        attrs.push(KeyValue::fixed(sc::GEN_AI_OPERATION_NAME, sc::OP_CHAT));
        if let Some(p) = &provider {
            attrs.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, p.clone()));
        }
        if let Some(m) = &model {
            attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, &**m));
        }
        attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, &*round.session_id.as_str()));
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_ID, &*round.session_id.as_str()));
        attrs.push(KeyValue::new(sc::BAMBOO_ROUND_ID, &*round.round_id.as_str()));

        let (start, end, status) = match &round.completion {
            Some(done) => {
                let start = round.start.unwrap_or_else(|| before(done.at, done.latency_ms));
                attrs.push(KeyValue::new(sc::BAMBOO_ROUND_STATUS, done.status.as_str()));
                attrs.push(KeyValue::new(sc::GEN_AI_USAGE_INPUT_TOKENS, done.usage.prompt_tokens));
                attrs.push(KeyValue::new(sc::GEN_AI_USAGE_OUTPUT_TOKENS, done.usage.completion_tokens));
                attrs.push(KeyValue::new(sc::BAMBOO_USAGE_TOTAL_TOKENS, done.usage.total_tokens));
                if let Some(c) = done.cached {
                    attrs.push(KeyValue::new(sc::BAMBOO_ROUND_CACHED_TOOL_OUTPUTS, c.outputs));
                    attrs.push(KeyValue::new(sc::BAMBOO_ROUND_CACHED_TOOL_TOKENS_SAVED, c.tokens_saved));
                }
                if let Some(usd) = cost {
                    attrs.push(KeyValue::new(sc::BAMBOO_USAGE_COST, usd));
                }
                let status = if done.status == RoundStatus::Error {
                    attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_TYPE_OTHER));
                    error_status(done.error.as_deref().unwrap_or("round failed"), max_err, &mut attrs)
                } else {
                    SpanStatus::Unset
                };
                let add = |input: &mut u64, output: &mut u64, total: &mut f64| {
                    *input += done.usage.prompt_tokens;
                    *output += done.usage.completion_tokens;
                    if let Some(usd) = cost {
                        *total = if total.is_nan() { usd } else { super::cost::round_usd(*total + usd) };
                    }
                };
                match s.run.as_mut() {
                    Some(run) if run.span_id == round.parent => {
                        add(&mut run.input_tokens, &mut run.output_tokens, &mut run.cost)
                    }
                    None if s.runs_ended == 0 && round.parent == s.last_run_span => {
                        let e = s.early.get_or_insert_with(|| Box::new((0, 0, f64::NAN)));
                        add(&mut e.0, &mut e.1, &mut e.2)
                    }
                    _ => {}
                }
                (start.min(done.at), done.at, status)
            }
            None => {
                attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_INCOMPLETE));
                let start = round.start.expect("a round entry has a start or a completion");
                let end = end.unwrap_or(round.last_seen).max(start);
                (start, end, SpanStatus::Error(sc::ERROR_INCOMPLETE.to_owned()))
            }
        };
        common_attrs(&trace, incomplete, &mut attrs);

        let span_id = SpanId(rkey.to_be_bytes());
        if let Some(done) = &round.completion {
            let this = SpanRef { trace_id: trace.id, span_id };
            let mut base = genai_metric_attrs(sc::OP_CHAT, model.as_deref(), provider.as_ref());
            token_metrics(this, &base, done.usage.prompt_tokens, done.usage.completion_tokens, out);
            usage_token_counts(&base, &done.usage, None, out);
            if done.status == RoundStatus::Error {
                base.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_TYPE_OTHER));
            }
            out.measure(this, Instrument::OperationDuration, seconds(done.latency_ms), base);
            let mut counter = vec![KeyValue::new(sc::BAMBOO_ROUND_STATUS, done.status.as_str())];
            if let Some(m) = &model {
                counter.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, &**m));
            }
            out.count(Instrument::Rounds, 1, counter);
        }

        let span = SpanRecord {
            trace_id: trace.id,
            span_id,
            parent_span_id: Some(round.parent),
            name: genai::span_name(sc::OP_CHAT, model.as_deref()),
            kind: SpanKind::Client,
            start,
            end,
            attributes: attrs,
            events: Vec::new(),
            status,
        };
        self.emitted(span, out);
    }

    fn tool_called(
        &mut self,
        skey: u64,
        meta: &EventMeta,
        call: ToolCall<'_>,
        error: Option<&str>,
        clock: DateTime<Utc>,
        out: &mut Output,
    ) {
        let ToolCall { tool_call_id, round_id, tool_name, latency_ms, success } = call;
        let max_err = self.cfg.max_error_len;
        let agent = self.cfg.agent_name.clone();
        let span_id = SpanId::derive(domain::TOOL, tool_call_id);
        if !self.ended.insert(span_id.to_u64()) {
            return self.reject(sc::REJECT_ALREADY_ENDED, out);
        }
        let rspan = round_span(round_id);
        if self.rounds.contains_key(&rspan.to_u64()) {
            self.touch_round(rspan.to_u64(), clock);
        }
        let s = self.sessions.get_mut(&skey).expect("touched");
        let trace = s.trace_for_emit();
        let mut attrs = Vec::with_capacity(10);
        attrs.push(KeyValue::fixed(sc::GEN_AI_OPERATION_NAME, sc::OP_EXECUTE_TOOL));
        attrs.push(KeyValue::new(sc::GEN_AI_AGENT_NAME, agent.clone()));
        attrs.push(KeyValue::new(sc::GEN_AI_TOOL_NAME, tool_name));
        attrs.push(KeyValue::new(sc::GEN_AI_TOOL_CALL_ID, tool_call_id));
        attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, &*s.session_id.as_str()));
        attrs.push(KeyValue::new(sc::BAMBOO_SESSION_ID, &*s.session_id.as_str()));
        attrs.push(KeyValue::new(sc::BAMBOO_ROUND_ID, round_id));
        attrs.push(KeyValue::new(sc::BAMBOO_TOOL_SUCCESS, success));
        let status = if success {
            SpanStatus::Unset
        } else {
            attrs.push(KeyValue::fixed(sc::ERROR_TYPE, sc::ERROR_TYPE_OTHER));
            // The storage path keeps what failed; the event path does not.
            error_status(error.filter(|e| !e.is_empty()).unwrap_or("tool call failed"), max_err, &mut attrs)
        };
        common_attrs(&trace, false, &mut attrs);

        let metric_attrs =
            vec![KeyValue::new(sc::GEN_AI_TOOL_NAME, tool_name), KeyValue::new(sc::BAMBOO_TOOL_SUCCESS, success)];
        let mut duration_attrs = metric_attrs.clone();
        duration_attrs.push(KeyValue::new(sc::GEN_AI_AGENT_NAME, agent));
        let this = SpanRef { trace_id: trace.id, span_id };
        out.measure(this, Instrument::ToolDuration, seconds(latency_ms), duration_attrs);
        out.count(Instrument::ToolCalls, 1, metric_attrs);

        let span = SpanRecord {
            trace_id: trace.id,
            span_id,
            parent_span_id: Some(rspan),
            name: format!("{} {}", sc::OP_EXECUTE_TOOL, tool_name),
            kind: SpanKind::Internal,
            start: before(meta.occurred_at, latency_ms),
            end: meta.occurred_at,
            attributes: attrs,
            events: Vec::new(),
            status,
        };
        self.emitted(span, out);
    }

    /// Evicts a session entry; returns whether a span was emitted.
    pub(super) fn evict_session(&mut self, key: u64, end: DateTime<Utc>, out: &mut Output) -> bool {
        let Some(s) = self.sessions.get_mut(&key) else { return false };
        let emitted = match s.run.as_mut() {
            Some(run) => {
                if let Some((at, status)) = run.completion.take().map(|b| *b) {
                    // Completed, but its start never came.
                    self.end_run(key, at, Some(status), true, out);
                } else {
                    self.end_run(key, end, None, true, out);
                }
                true
            }
            None => false,
        };
        self.sessions.remove(&key);
        emitted
    }

    /// Evicts a round entry; returns whether a span was emitted (always, if the entry existed).
    pub(super) fn evict_round(&mut self, key: u64, end: DateTime<Utc>, out: &mut Output) -> bool {
        if !self.rounds.contains_key(&key) {
            return false;
        }
        self.finish_round(key, true, Some(end), out);
        true
    }
}
