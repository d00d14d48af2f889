//! The translator: Bamboo events in, finished OpenTelemetry-shaped span records and metric updates out.
//!
//! It is pure and synchronous: no I/O, no threads, and no clock reads — every call takes `now`, so replays and
//! tests are exact. It owns span assembly:
//!
//! - **Pairing.** A span is emitted once both its start and its completion are known, in whichever order they
//!   arrive. Tool calls are single events and are emitted at once (start = `occurred_at − latency_ms`).
//! - **Deterministic ids** ([`crate::ids`]): a parent's span id is known before it ends, so children are emitted
//!   as soon as they finish, and spans made by different processes join up.
//! - **Duplicates.** An `event_id` seen before is counted once (`bamboo_otel.events.rejected{reason="duplicate"}`);
//!   a second completion of a span already emitted is rejected as `already_ended`.
//! - **Incomplete spans.** A completion whose start never comes, or a start whose completion never comes, is
//!   emitted when it has been idle for [`TranslateConfig::span_ttl`] (or at [`Translator::finish`]), marked
//!   `bamboo.span.incomplete=true`. An open span with no completion ends at the eviction time with status Error
//!   `incomplete`. Any event of a session (its rounds and tools included) keeps the session alive, so a busy
//!   session is never evicted however long it runs.
//! - **Bounded state.** At most [`TranslateConfig::max_open_spans`] entries are kept; beyond that the least recently
//!   active is evicted (emitted as incomplete) and counted in `bamboo_otel.spans.evicted{reason="capacity"}`.
//!
//! ```
//! use bamboo_otel::events::*;
//! use bamboo_otel::translate::{Output, TranslateConfig, Translator};
//! use chrono::{TimeZone, Utc};
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
//! let meta = |id: &str, secs: i64| EventMeta::at(id, t0 + chrono::Duration::seconds(secs), None);
//! let mut tr = Translator::new(TranslateConfig::default());
//! let mut out = Output::new();
//! tr.process(&ChatEvent::RoundStarted { meta: meta("e1", 0), round_id: "r1".into(),
//!     session_id: "s1".into(), model: "gpt-5".into() }.into(), t0, &mut out);
//! tr.process(&ChatEvent::RoundCompleted { meta: meta("e2", 3), round_id: "r1".into(),
//!     session_id: "s1".into(), status: RoundStatus::Success,
//!     usage: TokenUsage { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
//!     latency_ms: 3000, error: None, cached_tool_outputs: None }.into(), t0, &mut out);
//! assert_eq!(out.spans.len(), 1);
//! assert_eq!(out.spans[0].name, "chat gpt-5");
//! ```
//!
//! The session span and resumed sessions: each *run* of a session (from `SessionStarted` to `SessionCompleted`)
//! is its own `invoke_agent bamboo` span. The first run's span id derives from the session id; a run resumed after
//! `awaiting_response` gets a span id derived from the session id and its `SessionStarted` event id, is a child of
//! the first run, and carries `bamboo.session.run` (1, 2, …). Rounds are children of the run they happened in, and
//! every run stays in the session's trace.

mod chat;
pub mod cost;
mod forward;
pub mod genai;
mod open;
mod record;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::events::{MetricsEvent, SystemEvent};
use crate::ids::SpanId;
use crate::semconv::{self as sc, Instrument};
use open::{BoundedSet, Class, LruIndex};
pub use record::*;

/// Which clock measures the idle time-to-live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TtlClock {
    /// The `now` passed to each call: the wall clock of a live bridge.
    #[default]
    Wall,
    /// The latest `occurred_at` seen so far: replaying old data evicts by the data's own timeline, and shutdown
    /// ends open spans at the last event's time rather than today.
    EventTime,
}

/// Translator settings.
#[derive(Debug, Clone)]
pub struct TranslateConfig {
    /// How long an open span may go without any event before it is emitted as incomplete. Default
    /// [`DEFAULT_SPAN_TTL`].
    pub span_ttl: Duration,
    /// The most open entries (sessions, rounds, requests) kept at once. Default [`DEFAULT_MAX_OPEN_SPANS`].
    pub max_open_spans: usize,
    /// Error texts longer than this many bytes are cut on a UTF-8 boundary. Default [`DEFAULT_MAX_ERROR_LEN`].
    pub max_error_len: usize,
    /// How many recent event ids are remembered to drop duplicates. Default [`DEFAULT_DEDUPE_WINDOW`].
    pub dedupe_window: usize,
    /// The clock for `span_ttl`. Default [`TtlClock::Wall`].
    pub clock: TtlClock,
    /// `gen_ai.agent.name` on session and tool spans and agent metrics. Default [`DEFAULT_AGENT_NAME`].
    pub agent_name: Cow<'static, str>,
    /// How a model name becomes `gen_ai.provider.name`. Default: [`genai::MODEL_FAMILIES`] only.
    pub providers: genai::ProviderRules,
    /// Prices for `bamboo.usage.cost` and `bamboo.cost`; `None` turns cost off. Default: the shipped table
    /// ([`cost::BUILTIN_PRICES`]).
    pub prices: Option<Arc<cost::PriceTable>>,
}

/// The default `gen_ai.agent.name`.
pub const DEFAULT_AGENT_NAME: &str = sc::AGENT_NAME;
/// How long an open span may stay idle by default (`BAMBOO_OTEL_SPAN_TTL`).
pub const DEFAULT_SPAN_TTL: Duration = Duration::from_secs(30 * 60);
/// Open entries kept at once by default (`BAMBOO_OTEL_MAX_OPEN_SPANS`).
pub const DEFAULT_MAX_OPEN_SPANS: usize = 100_000;
/// Bytes of an error text kept by default.
pub const DEFAULT_MAX_ERROR_LEN: usize = 4096;
/// Recent event ids remembered by default to drop duplicates.
pub const DEFAULT_DEDUPE_WINDOW: usize = 65_536;

/// The shipped price table, parsed once per process.
pub fn builtin_prices() -> Arc<cost::PriceTable> {
    static TABLE: OnceLock<Arc<cost::PriceTable>> = OnceLock::new();
    TABLE.get_or_init(|| Arc::new(cost::PriceTable::builtin())).clone()
}

impl Default for TranslateConfig {
    fn default() -> Self {
        TranslateConfig {
            span_ttl: DEFAULT_SPAN_TTL,
            max_open_spans: DEFAULT_MAX_OPEN_SPANS,
            max_error_len: DEFAULT_MAX_ERROR_LEN,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            clock: TtlClock::Wall,
            agent_name: Cow::Borrowed(DEFAULT_AGENT_NAME),
            providers: genai::ProviderRules::default(),
            prices: Some(builtin_prices()),
        }
    }
}

/// Running totals, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslatorStats {
    pub events: u64,
    pub duplicates: u64,
    pub already_ended: u64,
    pub spans: u64,
    pub incomplete: u64,
    pub evicted: u64,
}

/// Turns events into spans and metrics. See the module docs.
#[derive(Debug)]
pub struct Translator {
    cfg: TranslateConfig,
    sessions: open::KeyMap<chat::Session>,
    rounds: open::KeyMap<chat::Round>,
    requests: open::KeyMap<forward::Request>,
    strings: open::Interner,
    lru: LruIndex,
    seen_events: BoundedSet,
    /// Span ids of rounds, tool calls and requests already emitted, so late duplicates are not emitted again.
    ended: BoundedSet,
    high_water: Option<DateTime<Utc>>,
    stats: TranslatorStats,
}

impl Translator {
    pub fn new(mut cfg: TranslateConfig) -> Self {
        // Two entries at least: a round and its session must be able to coexist while one is being inserted.
        cfg.max_open_spans = cfg.max_open_spans.max(2);
        Translator {
            seen_events: BoundedSet::new(cfg.dedupe_window),
            ended: BoundedSet::new(cfg.dedupe_window),
            cfg,
            sessions: open::KeyMap::default(),
            rounds: open::KeyMap::default(),
            requests: open::KeyMap::default(),
            strings: open::Interner::default(),
            lru: LruIndex::default(),
            high_water: None,
            stats: TranslatorStats::default(),
        }
    }

    pub fn config(&self) -> &TranslateConfig {
        &self.cfg
    }

    pub fn stats(&self) -> TranslatorStats {
        self.stats
    }

    /// Open entries: sessions (open runs and the memory of ended ones), rounds and requests not yet emitted.
    pub fn open_entries(&self) -> usize {
        self.sessions.len() + self.rounds.len() + self.requests.len()
    }

    /// Spans started but not yet emitted.
    pub fn open_spans(&self) -> usize {
        self.sessions.values().filter(|s| s.run.is_some()).count() + self.rounds.len() + self.requests.len()
    }

    /// Translates one event, appending what it finishes to `out`, then evicts what has been idle too long.
    pub fn process(&mut self, event: &MetricsEvent, now: DateTime<Utc>, out: &mut Output) {
        self.stats.events += 1;
        out.count(Instrument::BridgeEvents, 1, vec![KeyValue::fixed(sc::BAMBOO_OTEL_KIND, event.kind().as_str())]);
        if let Some(meta) = event.meta() {
            let key = SpanId::derive("event", &meta.event_id).to_u64();
            if !self.seen_events.insert(key) {
                self.reject(sc::REJECT_DUPLICATE, out);
                return;
            }
            if self.high_water.map_or(true, |h| meta.occurred_at > h) {
                self.high_water = Some(meta.occurred_at);
            }
        }
        let clock = self.clock(now);
        match event {
            MetricsEvent::Chat(e) => self.chat(e, clock, out),
            MetricsEvent::Forward(e) => self.forward(e, clock, out),
            MetricsEvent::System(e) => system(e, out),
        }
        self.evict_idle(clock, out);
    }

    /// Evicts entries idle for longer than the time-to-live. A live bridge calls this on a timer.
    pub fn tick(&mut self, now: DateTime<Utc>, out: &mut Output) {
        let clock = self.clock(now);
        self.evict_idle(clock, out);
    }

    /// Emits every open span as incomplete, ended at `now` (or at the last event's time under
    /// [`TtlClock::EventTime`]), and forgets all state. Used at shutdown.
    pub fn finish(&mut self, now: DateTime<Utc>, out: &mut Output) {
        let clock = self.clock(now);
        // Children first, so a session run's usage totals include what its open rounds still hold.
        let mut rounds: Vec<u64> = self.rounds.keys().copied().collect();
        rounds.sort_unstable();
        for key in rounds {
            self.evict(Class::Round, key, clock, sc::EVICT_SHUTDOWN, out);
        }
        let mut requests: Vec<u64> = self.requests.keys().copied().collect();
        requests.sort_unstable();
        for key in requests {
            self.evict(Class::Request, key, clock, sc::EVICT_SHUTDOWN, out);
        }
        let mut sessions: Vec<u64> = self.sessions.keys().copied().collect();
        sessions.sort_unstable();
        for key in sessions {
            self.evict(Class::Session, key, clock, sc::EVICT_SHUTDOWN, out);
        }
        self.lru = LruIndex::default();
    }

    fn clock(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.cfg.clock {
            TtlClock::Wall => now,
            TtlClock::EventTime => self.high_water.unwrap_or(now),
        }
    }

    fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cfg.span_ttl).unwrap_or(chrono::Duration::MAX)
    }

    /// Counts a rejected event, in the stats (for shutdown reports) and as a metric, under one reason.
    fn reject(&mut self, reason: &'static str, out: &mut Output) {
        match reason {
            sc::REJECT_DUPLICATE => self.stats.duplicates += 1,
            sc::REJECT_ALREADY_ENDED => self.stats.already_ended += 1,
            _ => {}
        }
        out.count(Instrument::BridgeRejected, 1, vec![KeyValue::fixed(sc::REASON, reason)]);
    }

    /// The last touch and seq of an entry, if it still exists.
    fn entry_touch(&self, class: Class, key: u64) -> Option<(u64, DateTime<Utc>)> {
        match class {
            Class::Session => self.sessions.get(&key).map(|s| (s.seq, s.last_seen)),
            Class::Round => self.rounds.get(&key).map(|r| (r.seq, r.last_seen)),
            Class::Request => self.requests.get(&key).map(|r| (r.seq, r.last_seen)),
        }
    }

    fn evict_idle(&mut self, clock: DateTime<Utc>, out: &mut Output) {
        let ttl = self.ttl();
        while let Some((class, key, seq)) = self.lru.front() {
            match self.entry_touch(class, key) {
                Some((live_seq, last_seen)) if live_seq == seq => {
                    let expires = last_seen.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
                    if expires > clock {
                        break;
                    }
                    self.lru.pop_front();
                    // Ended at the moment it became idle-expired, so the result does not depend on when we look.
                    self.evict(class, key, expires, sc::EVICT_IDLE, out);
                }
                _ => self.lru.pop_front(),
            }
        }
        if self.lru.len() > 2 * self.open_entries() + 1024 {
            let (sessions, rounds, requests) = (&self.sessions, &self.rounds, &self.requests);
            self.lru.compact(|class, key, seq| match class {
                Class::Session => sessions.get(&key).is_some_and(|s| s.seq == seq),
                Class::Round => rounds.get(&key).is_some_and(|r| r.seq == seq),
                Class::Request => requests.get(&key).is_some_and(|r| r.seq == seq),
            });
        }
    }

    /// Makes room for one more entry, evicting the least recently active ones while the cap is reached.
    /// `keep` is the session the caller is working on: never evicted here, even when evicting a round re-creates
    /// that round's forgotten session and the count stays up (found by fuzzing: a panic at capacity 2).
    fn make_room(&mut self, keep: Option<u64>, clock: DateTime<Utc>, out: &mut Output) {
        let mut kept = false;
        while self.open_entries() >= self.cfg.max_open_spans {
            let Some((class, key, seq)) = self.lru.front() else { break };
            self.lru.pop_front();
            if !self.entry_touch(class, key).is_some_and(|(s, _)| s == seq) {
                continue;
            }
            if class == Class::Session && Some(key) == keep {
                kept = true;
                continue;
            }
            self.evict(class, key, clock, sc::EVICT_CAPACITY, out);
        }
        if let (true, Some(key)) = (kept, keep) {
            let seq = self.lru.touch(Class::Session, key);
            if let Some(s) = self.sessions.get_mut(&key) {
                s.seq = seq;
            }
        }
    }

    /// Removes an entry, emitting whatever span it holds as incomplete.
    fn evict(&mut self, class: Class, key: u64, end: DateTime<Utc>, reason: &'static str, out: &mut Output) {
        let emitted = match class {
            Class::Session => self.evict_session(key, end, out),
            Class::Round => self.evict_round(key, end, out),
            Class::Request => self.evict_request(key, end, out),
        };
        if emitted {
            self.stats.evicted += 1;
            out.count(Instrument::BridgeEvicted, 1, vec![KeyValue::fixed(sc::REASON, reason)]);
        }
    }

    /// Bookkeeping shared by every emitted span.
    fn emitted(&mut self, span: SpanRecord, out: &mut Output) {
        self.stats.spans += 1;
        if span.is_incomplete() {
            self.stats.incomplete += 1;
            out.count(Instrument::BridgeIncomplete, 1, Vec::new());
        }
        out.spans.push(span);
    }
}

/// System events become the bridge's view of Bamboo's own metrics pipeline.
fn system(event: &SystemEvent, out: &mut Output) {
    match event {
        SystemEvent::MetricsDropped { count, reason } => {
            let (reason, _) = genai::truncate_utf8(reason, 64);
            out.count(Instrument::UpstreamDropped, *count, vec![KeyValue::new(sc::REASON, reason)]);
        }
        SystemEvent::StorageError { event_type, .. } => {
            let (event_type, _) = genai::truncate_utf8(event_type, 64);
            out.count(Instrument::UpstreamStorageErrors, 1, vec![KeyValue::new(sc::BAMBOO_EVENT_TYPE, event_type)]);
        }
        SystemEvent::WorkerStarted => out.metric(Instrument::UpstreamWorkers, MetricValue::I64(1), Vec::new()),
        SystemEvent::WorkerStopped => out.metric(Instrument::UpstreamWorkers, MetricValue::I64(-1), Vec::new()),
    }
}

/// Adds `bamboo.trace_id` when the trace came from an opaque string, and the incomplete marker.
fn common_attrs(trace: &crate::ids::TraceRef, incomplete: bool, attrs: &mut Vec<KeyValue>) {
    if let crate::ids::TraceSource::Opaque(s) = &trace.source {
        attrs.push(KeyValue::new(sc::BAMBOO_TRACE_ID, s.as_str()));
    }
    if incomplete {
        attrs.push(KeyValue::new(sc::BAMBOO_SPAN_INCOMPLETE, true));
    }
}

/// A span status carrying an (truncated) error text, with `bamboo.error.truncated` when it was cut.
fn error_status(text: &str, max: usize, attrs: &mut Vec<KeyValue>) -> SpanStatus {
    let (cut, truncated) = genai::truncate_utf8(text, max);
    if truncated {
        attrs.push(KeyValue::new(sc::BAMBOO_ERROR_TRUNCATED, true));
    }
    SpanStatus::Error(cut.to_owned())
}

/// Metric attributes common to GenAI client metrics.
fn genai_metric_attrs(operation: &str, model: Option<&str>, provider: Option<&Cow<'static, str>>) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(4);
    attrs.push(match genai::known_operation(operation) {
        Some(op) => KeyValue::fixed(sc::GEN_AI_OPERATION_NAME, op),
        None => KeyValue::new(sc::GEN_AI_OPERATION_NAME, operation),
    });
    if let Some(model) = model {
        attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model));
    }
    if let Some(provider) = provider {
        attrs.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, provider.clone()));
    }
    attrs
}

/// Each token detail a provider may report: its `gen_ai.token.type`, its span attribute, and its count if
/// reported (absent is unknown, not zero).
fn token_details(d: &crate::events::TokenDetails) -> [(&'static str, &'static str, Option<u64>); 4] {
    [
        (sc::TOKEN_TYPE_CACHE_READ, sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, d.cache_read_input_tokens),
        (sc::TOKEN_TYPE_CACHE_CREATION, sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, d.cache_creation_input_tokens),
        (sc::TOKEN_TYPE_REASONING, sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, d.reasoning_output_tokens),
        (sc::TOKEN_TYPE_CACHE_WRITE, sc::BAMBOO_USAGE_CACHE_WRITE_INPUT_TOKENS, d.cache_write_input_tokens),
    ]
}

/// The `bamboo.usage.tokens` points of one operation: every type the provider reported, zero included.
fn usage_token_counts(
    base: &[KeyValue],
    usage: &crate::events::TokenUsage,
    details: Option<&crate::events::TokenDetails>,
    out: &mut Output,
) {
    let plain =
        [(sc::TOKEN_TYPE_INPUT, Some(usage.prompt_tokens)), (sc::TOKEN_TYPE_OUTPUT, Some(usage.completion_tokens))];
    let detailed = details.map(token_details).into_iter().flatten().map(|(kind, _, n)| (kind, n));
    for (kind, n) in plain.into_iter().chain(detailed) {
        if let Some(n) = n {
            let mut attrs = base.to_vec();
            attrs.push(KeyValue::fixed(sc::GEN_AI_TOKEN_TYPE, kind));
            out.count(Instrument::UsageTokens, n, attrs);
        }
    }
}

impl Translator {
    /// The provider of `model` by the configured rules; counts a model no rule knows.
    fn provider_of(&self, model: Option<&str>, out: &mut Output) -> Option<Cow<'static, str>> {
        let model = model.filter(|m| !m.is_empty())?;
        let provider = self.cfg.providers.provider(model);
        if provider.is_none() {
            out.count(Instrument::BridgeProviderUnknown, 1, vec![KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model)]);
        }
        provider
    }

    /// Prices one operation: its `bamboo.usage.cost` (returned, for the span), the `bamboo.cost` points and the
    /// cache savings. A model without a price costs nothing here and is counted as unpriced; never guessed.
    fn price(
        &self,
        provider: Option<&Cow<'static, str>>,
        model: Option<&str>,
        usage: &crate::events::TokenUsage,
        details: Option<&crate::events::TokenDetails>,
        out: &mut Output,
    ) -> Option<f64> {
        let table = self.cfg.prices.as_deref()?;
        let model = model.filter(|m| !m.is_empty())?;
        let Some(price) = provider.and_then(|p| table.find(p, model)) else {
            out.count(Instrument::BridgeCostUnpriced, 1, vec![KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model)]);
            return None;
        };
        let cost = price.cost(*usage, details);
        let mut base = Vec::with_capacity(3);
        if let Some(p) = provider {
            base.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, p.clone()));
        }
        base.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, model));
        for (kind, usd) in &cost.parts {
            let mut attrs = base.clone();
            attrs.push(KeyValue::fixed(sc::GEN_AI_TOKEN_TYPE, kind));
            out.metric(Instrument::Cost, MetricValue::F64(*usd), attrs);
        }
        let saved = price.cache_savings(details);
        if saved > 0.0 {
            out.metric(Instrument::CacheSavings, MetricValue::F64(saved), base);
        }
        Some(cost.total())
    }
}

/// Records token usage of one span (input and output points) with the given base attributes.
fn token_metrics(span: SpanRef, base: &[KeyValue], input: u64, output: u64, out: &mut Output) {
    for (kind, n) in [(sc::TOKEN_TYPE_INPUT, input), (sc::TOKEN_TYPE_OUTPUT, output)] {
        let mut attrs = base.to_vec();
        attrs.push(KeyValue::fixed(sc::GEN_AI_TOKEN_TYPE, kind));
        out.measure(span, Instrument::TokenUsage, n as f64, attrs);
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn before(at: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    at.checked_sub_signed(chrono::Duration::milliseconds(ms)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
#[cfg(test)]
mod size_probe {
    /// Open state is what memory scales with (BENCHMARKS.md): a change that grows these is a deliberate one.
    #[test]
    fn open_entries_stay_small() {
        // 128: a session holds the totals of rounds that came before its first start (8 bytes, boxed).
        assert!(std::mem::size_of::<super::chat::Session>() <= 128);
        // 120: a run carries its cost since the price table (8 bytes, one per open run).
        assert!(std::mem::size_of::<super::chat::Run>() <= 120);
        assert!(std::mem::size_of::<super::chat::Round>() <= 112);
        assert!(std::mem::size_of::<super::forward::Request>() <= 112);
    }
}
