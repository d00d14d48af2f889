//! Inside a Bamboo application: [`OtelStorage`] wraps the `MetricsStorage` Bamboo's `MetricsCollector` writes
//! to, and hands every successful write to a [`Bridge`] as well (Cargo feature `bamboo`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bamboo_metrics::{MetricsCollector, SqliteMetricsStorage};
//! use bamboo_otel::{bamboo::OtelStorage, Bridge};
//!
//! let bridge = Bridge::from_env()?;
//! let storage = Arc::new(OtelStorage::new(SqliteMetricsStorage::new("metrics.db"), bridge.clone()));
//! let collector = MetricsCollector::spawn(storage, 90);
//! // ... the application runs, recording through `collector` as before ...
//! # drop(collector);
//! bridge.shutdown(std::time::Duration::from_secs(5));
//! # Ok(()) }
//! ```
//!
//! **What Bamboo sees does not change.** Each call goes to the inner storage first and returns exactly what it
//! returned, errors included; the tee adds no `await` and never fails a write. Queries pass straight through.
//!
//! **The spans are `import-db`'s.** A successful write becomes the events [`crate::sources::db`] reads from the
//! row it wrote, so span ids, trace ids, names, attributes and statuses are the ones `bamboo-otel import-db` makes
//! from the same `metrics.db`: a deployment can move from the sidecar to the tee, or run both into one backend,
//! without a seam. Two differences, both in the tee's favour: a resumed session (`upsert_session_start` again)
//! is a run of its own, where the table keeps one row; and rows that storage maintenance rewrites
//! (`reconcile_stale_executions`, `prune_rounds_before`) are not re-read.
//!
//! **Bounded and counted.** Completions name only their id, so the tee remembers open rounds, tool calls and
//! forwarded requests (at most [`MAX_OPEN`] of each, oldest forgotten first). A completion whose start it does
//! not know (forgotten, or written before the tee was installed) cannot be placed: it is dropped, counted in
//! [`TeeStats`] and as `bamboo.metrics.dropped{reason="tee_unknown_start"}`, and logged once. Events are handed to
//! the bridge with [`Bridge::record`], which never blocks and counts what its queue refuses.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bamboo_metrics::storage::{MetricsMutation, MetricsResult, MetricsStorage, ToolCallCompletion};
use bamboo_metrics::types::{
    DailyMetrics, ForwardEndpointMetrics, ForwardMetricsFilter, ForwardMetricsSummary, ForwardRequestMetrics,
    ForwardStatus as BForwardStatus, ForwardTokenDetails, MetricsDateFilter, MetricsSummary, ModelMetrics,
    ModelMetricsDateFilter, PromptMemoryExposureObservation, RoundStatus as BRoundStatus, SessionDetail,
    SessionMetrics, SessionMetricsFilter, SessionStatus as BSessionStatus, TokenUsage as BTokenUsage,
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::events::*;
use crate::Bridge;

/// Open rounds, tool calls and forwarded requests remembered at once, each.
pub const MAX_OPEN: usize = 65_536;

/// What the tee could not hand on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeeStats {
    /// Successful writes handed to the bridge as events.
    pub forwarded: u64,
    /// Completions whose start the tee did not know: no event.
    pub unknown_start: u64,
    /// Writes the inner storage failed: nothing to show, nothing sent.
    pub failed_writes: u64,
}

/// A `MetricsStorage` that is `S`, and also feeds a [`Bridge`]. See the module docs.
pub struct OtelStorage<S> {
    inner: S,
    bridge: Bridge,
    open: Mutex<Open>,
    forwarded: AtomicU64,
    unknown_start: AtomicU64,
    failed_writes: AtomicU64,
    warned: AtomicBool,
}

impl<S> OtelStorage<S> {
    pub fn new(inner: S, bridge: Bridge) -> Self {
        OtelStorage {
            inner,
            bridge,
            open: Mutex::new(Open::default()),
            forwarded: AtomicU64::new(0),
            unknown_start: AtomicU64::new(0),
            failed_writes: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The bridge the tee feeds: flush and shut it down through this (or a clone kept before).
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    pub fn stats(&self) -> TeeStats {
        TeeStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            unknown_start: self.unknown_start.load(Ordering::Relaxed),
            failed_writes: self.failed_writes.load(Ordering::Relaxed),
        }
    }

    /// The events of one write, remembering what later completions will need.
    fn events_of(&self, m: &MetricsMutation) -> Vec<MetricsEvent> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(1);
        if !open.translate(m, &mut out) {
            self.unknown_start.fetch_add(1, Ordering::Relaxed);
            self.bridge.record(SystemEvent::MetricsDropped { count: 1, reason: "tee_unknown_start".to_owned() }.into());
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "bamboo-otel tee: a completion arrived whose start it never saw (written before the tee, or \
                     more than {MAX_OPEN} open); it is not exported. Further cases are counted, not logged."
                );
            }
        }
        out
    }

    /// One write: `write` (the inner storage's) runs first; the events of `m` follow only if it succeeded.
    async fn tee(
        &self,
        m: MetricsMutation,
        write: impl std::future::Future<Output = MetricsResult<()>>,
    ) -> MetricsResult<()> {
        let events = self.events_of(&m);
        let r = write.await;
        self.hand_on(events, &r);
        r
    }

    fn hand_on(&self, events: Vec<MetricsEvent>, result: &MetricsResult<()>) {
        if result.is_err() {
            self.failed_writes.fetch_add(1, Ordering::Relaxed);
            return;
        }
        for e in events {
            self.forwarded.fetch_add(1, Ordering::Relaxed);
            self.bridge.record(e);
        }
    }
}

/// A FIFO-bounded map: the oldest key goes when a new one would exceed [`MAX_OPEN`].
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.map.len() > MAX_OPEN {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
        // Keys removed on completion leave stale entries in `order`; sweep them once they dominate.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k)
    }
}

struct ToolStart {
    round_id: String,
    session_id: String,
    tool_name: String,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct Open {
    /// Starts seen per session, so a resumed run's start gets the id `import-db` gives it.
    sessions: Bounded<String, u32>,
    rounds: Bounded<String, (String, DateTime<Utc>)>,
    tools: Bounded<String, ToolStart>,
    forwards: Bounded<String, DateTime<Utc>>,
}

/// The text `SqliteMetricsStorage` stores a time as (`to_rfc3339`), which `sources::db` puts in event ids.
fn stored(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn meta(id: String, at: DateTime<Utc>) -> EventMeta {
    EventMeta::at(id, at, None)
}

fn latency(start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    (end - start).num_milliseconds().max(0) as u64
}

fn usage(u: &BTokenUsage) -> TokenUsage {
    TokenUsage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens }
}

fn details(d: &ForwardTokenDetails) -> TokenDetails {
    TokenDetails {
        cache_creation_input_tokens: d.cache_creation_input_tokens,
        cache_read_input_tokens: d.cache_read_input_tokens,
        cache_write_input_tokens: d.cache_write_input_tokens,
        reasoning_output_tokens: d.reasoning_output_tokens,
    }
}

// Statuses by the strings `SqliteMetricsStorage` stores, parsed exactly as `sources::db` parses the column.
fn session_status(s: &BSessionStatus) -> SessionStatus {
    SessionStatus::parse(s.as_str())
}
fn round_status(s: &BRoundStatus) -> RoundStatus {
    RoundStatus::parse(s.as_str())
}
fn forward_status(s: &BForwardStatus) -> ForwardStatus {
    ForwardStatus::parse(s.as_str())
}

impl Open {
    /// Appends the events of `m` to `out`; false when `m` completes something whose start is unknown.
    fn translate(&mut self, m: &MetricsMutation, out: &mut Vec<MetricsEvent>) -> bool {
        match m {
            MetricsMutation::SessionStarted { session_id, model, started_at } => {
                let run = self.sessions.remove(session_id).unwrap_or(0) + 1;
                self.sessions.insert(session_id.clone(), run);
                // The ids `sources::db` gives: a resumed run's span id derives from its start's id.
                let id = match run {
                    1 => format!("db:session:{session_id}:start"),
                    n => format!("db:session:{session_id}:run:{n}:start"),
                };
                out.push(
                    ChatEvent::SessionStarted {
                        meta: meta(id, *started_at),
                        session_id: session_id.clone(),
                        model: model.clone(),
                    }
                    .into(),
                )
            }
            MetricsMutation::SessionMessageCount { session_id, message_count, updated_at } => out.push(
                ChatEvent::MessageCountUpdated {
                    meta: meta(format!("db:session:{session_id}:messages:{message_count}"), *updated_at),
                    session_id: session_id.clone(),
                    message_count: *message_count,
                }
                .into(),
            ),
            MetricsMutation::SessionCompleted { session_id, status, completed_at } => out.push(
                ChatEvent::SessionCompleted {
                    meta: meta(format!("db:session:{session_id}:end:{}", stored(*completed_at)), *completed_at),
                    session_id: session_id.clone(),
                    status: session_status(status),
                }
                .into(),
            ),
            MetricsMutation::RoundStarted { round_id, session_id, model, started_at } => {
                self.rounds.insert(round_id.clone(), (session_id.clone(), *started_at));
                out.push(
                    ChatEvent::RoundStarted {
                        meta: meta(format!("db:round:{round_id}:start"), *started_at),
                        round_id: round_id.clone(),
                        session_id: session_id.clone(),
                        model: model.clone(),
                    }
                    .into(),
                );
            }
            MetricsMutation::RoundCompleted {
                round_id,
                completed_at,
                status,
                usage: u,
                prompt_cached_tool_outputs,
                prompt_cached_tool_tokens_saved,
                error,
            } => {
                let Some((session_id, started)) = self.rounds.remove(round_id) else { return false };
                out.push(
                    ChatEvent::RoundCompleted {
                        meta: meta(format!("db:round:{round_id}:end:{}", stored(*completed_at)), *completed_at),
                        round_id: round_id.clone(),
                        session_id,
                        status: round_status(status),
                        usage: usage(u),
                        latency_ms: latency(started, *completed_at),
                        error: error.clone(),
                        cached_tool_outputs: Some(CachedToolOutputs {
                            outputs: *prompt_cached_tool_outputs,
                            tokens_saved: *prompt_cached_tool_tokens_saved,
                        }),
                    }
                    .into(),
                );
            }
            MetricsMutation::ToolStarted { tool_call_id, round_id, session_id, tool_name, started_at } => {
                let start = ToolStart {
                    round_id: round_id.clone(),
                    session_id: session_id.clone(),
                    tool_name: tool_name.clone(),
                    at: *started_at,
                };
                self.tools.insert(tool_call_id.clone(), start);
            }
            MetricsMutation::ToolCompleted { tool_call_id, completion } => {
                let Some(start) = self.tools.remove(tool_call_id) else { return false };
                let ToolCallCompletion { completed_at, success, error } = completion;
                out.push(
                    ChatEvent::ToolCalled {
                        meta: meta(format!("db:tool:{tool_call_id}"), *completed_at),
                        tool_call_id: tool_call_id.clone(),
                        round_id: start.round_id,
                        session_id: start.session_id,
                        tool_name: start.tool_name,
                        latency_ms: latency(start.at, *completed_at),
                        success: *success,
                        error: if *success { None } else { error.clone() },
                    }
                    .into(),
                );
            }
            MetricsMutation::ForwardStarted { forward_id, endpoint, model, is_stream, started_at } => {
                self.forwards.insert(forward_id.clone(), *started_at);
                out.push(
                    ForwardEvent::RequestStarted {
                        meta: meta(format!("db:forward:{forward_id}:start"), *started_at),
                        request_id: forward_id.clone(),
                        endpoint: endpoint.clone(),
                        model: model.clone(),
                        is_stream: *is_stream,
                    }
                    .into(),
                );
            }
            MetricsMutation::ForwardCompleted {
                forward_id,
                completed_at,
                status_code,
                status,
                usage: u,
                token_details,
                error,
            } => {
                let Some(started) = self.forwards.remove(forward_id) else { return false };
                out.push(
                    ForwardEvent::RequestCompleted {
                        meta: meta(format!("db:forward:{forward_id}:end:{}", stored(*completed_at)), *completed_at),
                        request_id: forward_id.clone(),
                        status_code: status_code.unwrap_or(0),
                        status: forward_status(status),
                        usage: u.as_ref().map(usage),
                        latency_ms: latency(started, *completed_at),
                        error: error.clone(),
                        token_details: token_details.as_ref().map(details).filter(|d| !d.is_empty()),
                    }
                    .into(),
                );
            }
            // No span or metric yet (issue: sync mismatches as a counter); written through, nothing lost here.
            MetricsMutation::ExecuteSyncMismatch { .. } => {}
        }
        true
    }
}

/// Writes go to `inner` first; on success their events go to the bridge. Reads pass through untouched.
#[async_trait]
impl<S: MetricsStorage> MetricsStorage for OtelStorage<S> {
    async fn apply_batch(&self, mutations: Vec<MetricsMutation>) -> MetricsResult<Vec<MetricsResult<()>>> {
        let events: Vec<Vec<MetricsEvent>> = mutations.iter().map(|m| self.events_of(m)).collect();
        let results = self.inner.apply_batch(mutations).await;
        match &results {
            Ok(per_item) => {
                for (events, result) in events.into_iter().zip(per_item) {
                    self.hand_on(events, result);
                }
            }
            // A prefix may have committed, and which is unknown: send none rather than guess.
            Err(_) => {
                self.failed_writes.fetch_add(events.len() as u64, Ordering::Relaxed);
            }
        }
        results
    }

    async fn init(&self) -> MetricsResult<()> {
        self.inner.init().await
    }

    async fn upsert_session_start(
        &self,
        session_id: &str,
        model: &str,
        started_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::SessionStarted { session_id: session_id.into(), model: model.into(), started_at };
        self.tee(m, self.inner.upsert_session_start(session_id, model, started_at)).await
    }

    async fn update_session_message_count(
        &self,
        session_id: &str,
        message_count: u32,
        updated_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::SessionMessageCount { session_id: session_id.into(), message_count, updated_at };
        self.tee(m, self.inner.update_session_message_count(session_id, message_count, updated_at)).await
    }

    async fn complete_session(
        &self,
        session_id: &str,
        status: BSessionStatus,
        completed_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::SessionCompleted { session_id: session_id.into(), status, completed_at };
        self.tee(m, self.inner.complete_session(session_id, status, completed_at)).await
    }

    async fn insert_round_start(
        &self,
        round_id: &str,
        session_id: &str,
        model: &str,
        started_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::RoundStarted {
            round_id: round_id.into(),
            session_id: session_id.into(),
            model: model.into(),
            started_at,
        };
        self.tee(m, self.inner.insert_round_start(round_id, session_id, model, started_at)).await
    }

    async fn record_prompt_memory_exposure(&self, observation: &PromptMemoryExposureObservation) -> MetricsResult<()> {
        self.inner.record_prompt_memory_exposure(observation).await
    }

    async fn complete_round(
        &self,
        round_id: &str,
        completed_at: DateTime<Utc>,
        status: BRoundStatus,
        usage: BTokenUsage,
        prompt_cached_tool_outputs: u32,
        prompt_cached_tool_tokens_saved: u32,
        error: Option<String>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::RoundCompleted {
            round_id: round_id.into(),
            completed_at,
            status,
            usage,
            prompt_cached_tool_outputs,
            prompt_cached_tool_tokens_saved,
            error: error.clone(),
        };
        self.tee(
            m,
            self.inner.complete_round(
                round_id,
                completed_at,
                status,
                usage,
                prompt_cached_tool_outputs,
                prompt_cached_tool_tokens_saved,
                error,
            ),
        )
        .await
    }

    async fn record_round_compression(
        &self,
        round_id: &str,
        compressed_at: DateTime<Utc>,
        tokens_saved: u32,
    ) -> MetricsResult<()> {
        self.inner.record_round_compression(round_id, compressed_at, tokens_saved).await
    }

    async fn insert_tool_start(
        &self,
        tool_call_id: &str,
        round_id: &str,
        session_id: &str,
        tool_name: &str,
        started_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::ToolStarted {
            tool_call_id: tool_call_id.into(),
            round_id: round_id.into(),
            session_id: session_id.into(),
            tool_name: tool_name.into(),
            started_at,
        };
        self.tee(m, self.inner.insert_tool_start(tool_call_id, round_id, session_id, tool_name, started_at)).await
    }

    async fn complete_tool_call(&self, tool_call_id: &str, completion: ToolCallCompletion) -> MetricsResult<()> {
        let m = MetricsMutation::ToolCompleted { tool_call_id: tool_call_id.into(), completion: completion.clone() };
        self.tee(m, self.inner.complete_tool_call(tool_call_id, completion)).await
    }

    async fn insert_forward_start(
        &self,
        forward_id: &str,
        endpoint: &str,
        model: &str,
        is_stream: bool,
        started_at: DateTime<Utc>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::ForwardStarted {
            forward_id: forward_id.into(),
            endpoint: endpoint.into(),
            model: model.into(),
            is_stream,
            started_at,
        };
        self.tee(m, self.inner.insert_forward_start(forward_id, endpoint, model, is_stream, started_at)).await
    }

    async fn complete_forward(
        &self,
        forward_id: &str,
        completed_at: DateTime<Utc>,
        status_code: Option<u16>,
        status: BForwardStatus,
        usage: Option<BTokenUsage>,
        token_details: Option<ForwardTokenDetails>,
        error: Option<String>,
    ) -> MetricsResult<()> {
        let m = MetricsMutation::ForwardCompleted {
            forward_id: forward_id.into(),
            completed_at,
            status_code,
            status,
            usage,
            token_details,
            error: error.clone(),
        };
        self.tee(
            m,
            self.inner.complete_forward(forward_id, completed_at, status_code, status, usage, token_details, error),
        )
        .await
    }

    async fn forward_summary(&self, filter: ForwardMetricsFilter) -> MetricsResult<ForwardMetricsSummary> {
        self.inner.forward_summary(filter).await
    }

    async fn forward_by_endpoint(&self, filter: ForwardMetricsFilter) -> MetricsResult<Vec<ForwardEndpointMetrics>> {
        self.inner.forward_by_endpoint(filter).await
    }

    async fn forward_requests(&self, filter: ForwardMetricsFilter) -> MetricsResult<Vec<ForwardRequestMetrics>> {
        self.inner.forward_requests(filter).await
    }

    async fn forward_daily_metrics(&self, days: u32, end_date: Option<NaiveDate>) -> MetricsResult<Vec<DailyMetrics>> {
        self.inner.forward_daily_metrics(days, end_date).await
    }

    async fn forward_daily_metrics_for_model(
        &self,
        days: u32,
        end_date: Option<NaiveDate>,
        model: Option<String>,
    ) -> MetricsResult<Vec<DailyMetrics>> {
        self.inner.forward_daily_metrics_for_model(days, end_date, model).await
    }

    async fn forward_daily_metrics_filtered(
        &self,
        days: u32,
        end_date: Option<NaiveDate>,
        endpoint: Option<String>,
        model: Option<String>,
    ) -> MetricsResult<Vec<DailyMetrics>> {
        self.inner.forward_daily_metrics_filtered(days, end_date, endpoint, model).await
    }

    async fn summary(&self, filter: MetricsDateFilter) -> MetricsResult<MetricsSummary> {
        self.inner.summary(filter).await
    }

    async fn summary_filtered(&self, filter: ModelMetricsDateFilter) -> MetricsResult<MetricsSummary> {
        self.inner.summary_filtered(filter).await
    }

    async fn by_model(&self, filter: MetricsDateFilter) -> MetricsResult<Vec<ModelMetrics>> {
        self.inner.by_model(filter).await
    }

    async fn by_model_filtered(&self, filter: ModelMetricsDateFilter) -> MetricsResult<Vec<ModelMetrics>> {
        self.inner.by_model_filtered(filter).await
    }

    async fn sessions(&self, filter: SessionMetricsFilter) -> MetricsResult<Vec<SessionMetrics>> {
        self.inner.sessions(filter).await
    }

    async fn session_detail(&self, session_id: &str) -> MetricsResult<Option<SessionDetail>> {
        self.inner.session_detail(session_id).await
    }

    async fn increment_execute_sync_mismatch(&self, reason: &str, occurred_at: DateTime<Utc>) -> MetricsResult<()> {
        self.inner.increment_execute_sync_mismatch(reason, occurred_at).await
    }

    async fn daily_metrics(&self, days: u32, end_date: Option<NaiveDate>) -> MetricsResult<Vec<DailyMetrics>> {
        self.inner.daily_metrics(days, end_date).await
    }

    async fn daily_metrics_for_model(
        &self,
        days: u32,
        end_date: Option<NaiveDate>,
        model: Option<String>,
    ) -> MetricsResult<Vec<DailyMetrics>> {
        self.inner.daily_metrics_for_model(days, end_date, model).await
    }

    async fn prune_rounds_before(&self, cutoff: DateTime<Utc>) -> MetricsResult<u64> {
        self.inner.prune_rounds_before(cutoff).await
    }

    async fn reconcile_stale_executions(
        &self,
        active_session_ids: &[String],
        awaiting_response_session_ids: &[String],
    ) -> MetricsResult<()> {
        self.inner.reconcile_stale_executions(active_session_ids, awaiting_response_session_ids).await
    }
}
