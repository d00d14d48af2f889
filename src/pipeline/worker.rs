//! The worker thread: owns the translator, fed by the bridge's bounded queue, and hands finished spans and
//! metric collections to the export thread ([`super::shipper`]).
//!
//! The caller's side never waits on it: `record` is a `try_send`. Translation and export run on two threads,
//! so a slow backend never slows translation; at most `max_concurrent_exports` span batches are out at once.
//! When the pending buffer is full while the backend is healthy, the worker stops taking events (the queue then
//! fills and `record` drops at the edge, counted, while `record_wait` waits); during an outage it keeps
//! translating and the oldest pending spans are dropped, counted as `export_failed`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::SpanData;

use super::accounting::{Shared, ShutdownReport};
use super::cardinality::CardinalityGuard;
use super::incidents::{
    EventDropReason, EventsDropped, ExportFailed, ExportRetrying, ExportSucceeded, Ledger, MetricPointsRefused,
    SpanDropReason, SpansDropped, SpansRefused,
};
use super::instruments::{resource, CounterBatch, Metrics};
use super::shipper::{Done, Job, Pending, Sent, Shipper, Signal};
use super::sinks::{sink, Sink};
use crate::config::{BuildError, Settings, TemporalityPreference};
use crate::console::MetricTotals;
use crate::events::MetricsEvent;
use crate::semconv::{self as sc, Instrument};
use crate::translate::{Output, Translator};

pub(crate) enum Control {
    /// Replies whether everything handed over so far was exported (nothing pending, nothing in flight).
    Flush(Sender<bool>),
    Shutdown(Duration, Sender<ShutdownReport>),
}

pub(crate) struct WorkerHandle {
    pub events: SyncSender<MetricsEvent>,
    /// Finished application spans (from the bridge's tracer provider).
    pub app_spans: SyncSender<SpanData>,
    pub resource: opentelemetry_sdk::Resource,
    pub control: Sender<Control>,
    pub thread: JoinHandle<()>,
}

/// Starts the worker and the export thread; returns once the exporters are built (or failed to build).
pub(crate) fn spawn(settings: Settings, shared: Arc<Shared>) -> Result<WorkerHandle, BuildError> {
    let (events, rx) = mpsc::sync_channel(settings.queue_size);
    let (app_spans, arx) = mpsc::sync_channel(settings.queue_size);
    let (control, crx) = mpsc::channel();
    let resource = resource(&settings);
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("bamboo-otel".into())
        .spawn({
            let resource = resource.clone();
            move || match Worker::new(settings, shared, resource) {
                Ok(worker) => {
                    let _ = ready_tx.send(Ok(()));
                    worker.run(rx, arx, crx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| BuildError::Pipeline(format!("could not spawn the worker thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(WorkerHandle { events, app_spans, resource, control, thread }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BuildError::Pipeline("the worker thread exited while starting".into())),
    }
}

struct Worker {
    settings: Settings,
    translator: Translator,
    out: Output,
    metrics: Arc<Metrics>,
    counters: CounterBatch,
    cardinality: CardinalityGuard,
    /// Models already logged as unpriced or without a provider (bounded: logging stops at 64, counting does not).
    logged_models: std::collections::HashSet<(Instrument, String)>,
    /// The SDK forgets series at each collection (delta temporality): so does the cardinality guard.
    delta_metrics: bool,
    console_metrics: bool,
    otlp_metrics: bool,
    console_totals: MetricTotals,
    pending: VecDeque<Pending>,
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    done: Receiver<Done>,
    /// Span batches out, and the spans in them (answers may come back in any order).
    batches_in_flight: usize,
    spans_in_flight: u64,
    metrics_in_flight: bool,
    app_spans_dropped_seen: u64,
    shared: Arc<Shared>,
    ledger: Ledger,
    queue_full_seen: u64,
    /// Set at shutdown: export jobs must answer before it.
    deadline: Option<Instant>,
}

impl Worker {
    fn new(
        settings: Settings,
        shared: Arc<Shared>,
        resource: opentelemetry_sdk::Resource,
    ) -> Result<Worker, BuildError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BuildError::Pipeline(format!("tokio runtime: {e}")))?;
        let (done_tx, done) = mpsc::channel();
        let (spans, metric_sink) = {
            let _guard = rt.enter();
            (sink(Signal::Traces, &settings, done_tx.clone())?, sink(Signal::Metrics, &settings, done_tx.clone())?)
        };
        let temporality = match settings.metrics_temporality {
            TemporalityPreference::Cumulative => Temporality::Cumulative,
            TemporalityPreference::Delta => Temporality::Delta,
            TemporalityPreference::LowMemory => Temporality::LowMemory,
        };
        let delta_metrics = temporality == Temporality::Delta;
        let pb_resource = crate::otlp::resource(&settings.resource_attributes());
        let metrics = Arc::new(Metrics::new(resource, temporality, settings.metric_cardinality_limit));
        let console_metrics = matches!(metric_sink, Sink::Console);
        let otlp_metrics = matches!(metric_sink, Sink::Otlp(_));
        let (jobs, job_rx) = tokio::sync::mpsc::unbounded_channel();
        let shipper = Shipper { rt, spans, metric_sink, metrics: metrics.clone(), resource: pb_resource };
        let final_timeout = settings.export_timeout;
        std::thread::Builder::new()
            .name("bamboo-otel-export".into())
            .spawn(move || shipper.run(job_rx, done_tx, final_timeout))
            .map_err(|e| BuildError::Pipeline(format!("could not spawn the export thread: {e}")))?;
        let cardinality = CardinalityGuard::new(settings.metric_cardinality_limit);
        Ok(Worker {
            translator: Translator::new(settings.translate.clone()),
            settings,
            out: Output::new(),
            ledger: Ledger::new(metrics.clone()),
            metrics,
            counters: CounterBatch::default(),
            cardinality,
            logged_models: Default::default(),
            delta_metrics,
            console_metrics,
            otlp_metrics,
            console_totals: MetricTotals::new(),
            pending: VecDeque::new(),
            jobs: Some(jobs),
            done,
            batches_in_flight: 0,
            spans_in_flight: 0,
            metrics_in_flight: false,
            app_spans_dropped_seen: 0,
            shared,
            queue_full_seen: 0,
            deadline: None,
        })
    }

    fn run(mut self, rx: Receiver<MetricsEvent>, arx: Receiver<SpanData>, crx: Receiver<Control>) {
        let tick_every =
            (self.settings.translate.span_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut next_spans = Instant::now() + self.settings.schedule_delay;
        let mut next_metrics = Instant::now() + self.settings.metric_interval;
        let mut next_tick = Instant::now() + tick_every;
        loop {
            self.take_results(None);
            let deadline = next_spans.min(next_metrics).min(next_tick);
            let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(25));
            if self.backpressured() {
                // Healthy backend, full buffer: wait for an export to finish instead of taking more events.
                self.take_results(Some(wait));
            } else {
                match rx.recv_timeout(wait) {
                    Ok(event) => {
                        self.handle(&event);
                        // Drain what is already queued before looking at timers: one wakeup, many events.
                        for event in rx.try_iter().take(4096) {
                            self.handle(&event);
                            if self.pending.len() >= self.settings.batch_size {
                                self.dispatch(false);
                                if self.backpressured() {
                                    break;
                                }
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        // Every handle is gone without an explicit shutdown: shut down with a default bound.
                        self.shutdown(&rx, &arx, Duration::from_secs(5));
                        return;
                    }
                }
            }
            self.take_app_spans(&arx);
            self.note_queue_drops();
            self.dispatch(false);
            while let Ok(c) = crx.try_recv() {
                match c {
                    Control::Flush(reply) => {
                        self.drain_queue(&rx, None);
                        self.take_app_spans(&arx);
                        self.dispatch(true);
                        self.export_metrics();
                        // One attempt per batch: a flush during an outage reports back instead of retrying forever.
                        let deadline = Instant::now() + self.settings.export_timeout + Duration::from_secs(1);
                        self.wait_idle(deadline, false);
                        let _ = reply.send(self.pending.is_empty() && self.batches_in_flight == 0);
                    }
                    Control::Shutdown(timeout, reply) => {
                        let report = self.shutdown(&rx, &arx, timeout);
                        let _ = reply.send(report);
                        return;
                    }
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.translator.tick(chrono::Utc::now(), &mut self.out);
                self.drain_out();
                next_tick = now + tick_every;
            }
            if now >= next_spans {
                self.dispatch(true);
                next_spans = Instant::now() + self.settings.schedule_delay;
            }
            if now >= next_metrics {
                self.export_metrics();
                next_metrics = Instant::now() + self.settings.metric_interval;
            }
        }
    }

    /// The buffer is full and the backend is taking batches: translating more would only drop spans.
    fn backpressured(&self) -> bool {
        self.pending.len() >= self.settings.max_queued_spans && !self.ledger.in_outage(Signal::Traces)
    }

    fn handle(&mut self, event: &MetricsEvent) {
        self.translator.process(event, chrono::Utc::now(), &mut self.out);
        self.drain_out();
    }

    /// Moves translator output into the pending span buffer (sampled, bounded) and the meter.
    fn drain_out(&mut self) {
        self.drain_out_by(None);
    }

    /// Like [`drain_out`](Self::drain_out); with a deadline, waits for the export thread whenever the buffer is
    /// full instead of dropping: at shutdown `finish` emits every open span at once, possibly more than the
    /// buffer holds (found by the overload test: 625 spans dropped with a healthy backend).
    fn drain_out_by(&mut self, deadline: Option<Instant>) {
        let mut spans = std::mem::take(&mut self.out.spans);
        let redact = !self.settings.redact.is_noop();
        for mut span in spans.drain(..) {
            if redact {
                self.settings.redact.span(&mut span);
            }
            if span.is_incomplete() {
                self.ledger.report.spans_incomplete += 1;
            }
            if !self.settings.sampler.should_sample(span.trace_id) {
                self.ledger.report.spans_sampled_out += 1;
                continue;
            }
            if let Some(deadline) = deadline {
                while self.backpressured() && Instant::now() < deadline {
                    self.take_results(Some(remaining(Some(deadline), Duration::from_millis(25))));
                    self.dispatch(false);
                }
            }
            self.push_pending(Pending::Bamboo(span));
        }
        // Hand the (empty) vector back so its capacity is reused.
        self.out.spans = spans;
        for mut m in self.out.metrics.drain(..) {
            if matches!(m.instrument, Instrument::BridgeCostUnpriced | Instrument::BridgeProviderUnknown) {
                log_model_once(&mut self.logged_models, &m);
            }
            if redact {
                self.settings.redact.metric(&mut m);
            }
            if let Some(full) = self.cardinality.admit(&mut m) {
                self.metrics.count(Instrument::BridgeMetricOverflow, 1, &[(sc::METRIC, full.name())]);
            }
            if self.console_metrics {
                self.console_totals.record(&m);
            }
            self.metrics.record(m, &mut self.counters);
        }
        if self.counters.is_full() {
            self.metrics.apply(&mut self.counters);
        }
    }

    /// Adds a finished span to the export buffer. Only during an outage does a full buffer drop its oldest span
    /// (counted as `export_failed`). With a healthy backend it may briefly hold more than its bound (what one
    /// translator call emits, itself bounded by the open-state cap) while intake pauses (`backpressured`): a
    /// span is never dropped because export is merely slower than the producer (found by the overload test).
    fn push_pending(&mut self, span: Pending) {
        self.pending.push_back(span);
        if self.ledger.in_outage(Signal::Traces) && self.pending.len() > self.settings.max_queued_spans {
            self.pending.pop_front();
            SpansDropped { count: 1, reason: SpanDropReason::ExportFailed }.emit(&mut self.ledger);
        }
    }

    /// Moves finished application spans into the pending buffer (already sampled by the tracer provider).
    fn take_app_spans(&mut self, arx: &Receiver<SpanData>) {
        // A full buffer with a healthy backend: leave them in their bounded channel (a full one drops, counted).
        while !self.backpressured() {
            let Ok(span) = arx.try_recv() else { break };
            self.push_pending(Pending::App(Box::new(span)));
        }
        let dropped = self.shared.app_spans_dropped.load(Ordering::Relaxed);
        if dropped > self.app_spans_dropped_seen {
            let count = dropped - self.app_spans_dropped_seen;
            SpansDropped { count, reason: SpanDropReason::QueueFull }.emit(&mut self.ledger);
            self.app_spans_dropped_seen = dropped;
        }
    }

    fn note_queue_drops(&mut self) {
        let total = self.shared.queue_full.load(Ordering::Relaxed);
        if total > self.queue_full_seen {
            let count = total - self.queue_full_seen;
            EventsDropped { count, reason: EventDropReason::QueueFull }.emit(&mut self.ledger);
            self.queue_full_seen = total;
        } else {
            // No new drops since the last look: the burst is over, the next one is logged again.
            self.shared.burst_logged.store(false, Ordering::Relaxed);
        }
    }

    /// Translates what is queued, dispatching full batches as they fill and waiting for the export thread when
    /// it is busy: the queue can hold more events than the pending buffer holds spans.
    ///
    /// Takes at most a queue's worth, what it held when asked: a producer that keeps the queue full must not keep
    /// a flush or a shutdown from ever answering (found by the overload test).
    fn drain_queue(&mut self, rx: &Receiver<MetricsEvent>, deadline: Option<Instant>) {
        let mut taken = 0;
        while deadline.map_or(true, |d| Instant::now() < d) && taken < self.settings.queue_size {
            if self.backpressured() {
                self.take_results(Some(remaining(deadline, Duration::from_millis(25))));
                self.dispatch(false);
                continue;
            }
            match rx.try_recv() {
                Ok(event) => self.handle(&event),
                Err(_) => break,
            }
            taken += 1;
            if self.pending.len() >= self.settings.batch_size {
                self.take_results(None);
                self.dispatch(false);
            }
        }
    }

    /// Sends pending spans to the export thread: full batches, or everything when `all`, while fewer than
    /// `max_concurrent_exports` batches are out (one during an outage, so a dead backend is not hammered).
    fn dispatch(&mut self, all: bool) {
        let limit = if self.ledger.in_outage(Signal::Traces) { 1 } else { self.settings.max_concurrent_exports };
        while self.batches_in_flight < limit
            && !self.pending.is_empty()
            && (all || self.pending.len() >= self.settings.batch_size)
        {
            let Some(jobs) = &self.jobs else { return };
            let n = self.pending.len().min(self.settings.batch_size);
            let batch: Vec<Pending> = self.pending.drain(..n).collect();
            if jobs.send(Job::Spans(batch, self.job_timeout())).is_err() {
                return;
            }
            self.batches_in_flight += 1;
            self.spans_in_flight += n as u64;
        }
    }

    /// How long an export job may take: the export timeout, or at shutdown what is left before the deadline, less
    /// the time its answer needs to come back, so a failure is seen and reported rather than lost to the deadline
    /// (the wire's retries can outlast a short one).
    fn job_timeout(&self) -> Duration {
        match self.deadline {
            None => self.settings.export_timeout,
            Some(d) => remaining(Some(d), self.settings.export_timeout + ANSWER_MARGIN).saturating_sub(ANSWER_MARGIN),
        }
        .max(Duration::from_millis(1))
    }

    fn export_metrics(&mut self) {
        if self.console_metrics {
            print!("== metrics\n{}", self.console_totals.render());
        }
        if !self.otlp_metrics || self.metrics_in_flight {
            return;
        }
        // The export thread collects after it gets the job, so everything summed so far is in.
        self.metrics.apply(&mut self.counters);
        if self.delta_metrics {
            self.cardinality.reset();
        }
        if let Some(jobs) = &self.jobs {
            if jobs.send(Job::Metrics(self.job_timeout())).is_ok() {
                self.metrics_in_flight = true;
            }
        }
    }

    /// Applies finished export jobs: without waiting (`None`), or waiting up to `wait` for the first one.
    fn take_results(&mut self, wait: Option<Duration>) {
        if let Some(wait) = wait {
            if self.batches_in_flight == 0 && !self.metrics_in_flight {
                return;
            }
            match self.done.recv_timeout(wait) {
                Ok(d) => self.apply(d),
                Err(_) => return,
            }
        }
        while let Ok(d) = self.done.try_recv() {
            self.apply(d);
        }
    }

    /// Waits until nothing is in flight (or the deadline passes), dispatching what is pending as room frees up;
    /// with `retry`, batches that failed are sent again while time remains.
    fn wait_idle(&mut self, deadline: Instant, retry: bool) {
        while self.batches_in_flight > 0 || self.metrics_in_flight {
            if Instant::now() >= deadline {
                return;
            }
            self.take_results(Some(remaining(Some(deadline), self.settings.export_timeout + Duration::from_secs(1))));
            // After a failure the batch is back in `pending`: try it again while time remains.
            if retry || !self.ledger.in_outage(Signal::Traces) {
                self.dispatch(true);
            }
        }
    }

    fn apply(&mut self, done: Done) {
        match done {
            Done::Retrying { signal, message } => ExportRetrying { signal, message }.emit(&mut self.ledger),
            Done::Spans(Ok(Sent { items, rejected, message })) => {
                self.batches_in_flight -= 1;
                self.spans_in_flight -= items;
                self.ledger.report.spans_exported += items - rejected;
                ExportSucceeded { signal: Signal::Traces, whole: rejected == 0 }.emit(&mut self.ledger);
                if rejected > 0 {
                    let message = message.unwrap_or_default();
                    SpansRefused { count: rejected, message, partial: true }.emit(&mut self.ledger);
                }
            }
            Done::Spans(Err((batch, failure))) => {
                self.batches_in_flight -= 1;
                self.spans_in_flight -= batch.len() as u64;
                ExportFailed { signal: Signal::Traces, failure: &failure }.emit(&mut self.ledger);
                if failure.permanent {
                    // Refused for good: sending it again would be refused again and block what comes after.
                    let count = batch.len() as u64;
                    SpansRefused { count, message: failure.message, partial: false }.emit(&mut self.ledger);
                    return;
                }
                // The batch goes back in front (the wire already retried it with backoff); beyond the buffer's
                // bound the oldest spans are dropped.
                for span in batch.into_iter().rev() {
                    self.pending.push_front(span);
                }
                let over = self.pending.len().saturating_sub(self.settings.max_queued_spans);
                self.pending.drain(..over);
                SpansDropped { count: over as u64, reason: SpanDropReason::ExportFailed }.emit(&mut self.ledger);
            }
            Done::Metrics(Ok(Sent { items, rejected, message })) => {
                self.metrics_in_flight = false;
                let report = &mut self.ledger.report;
                report.metric_exports += 1;
                report.metric_points_exported = items - rejected;
                report.metrics_unsent = false;
                ExportSucceeded { signal: Signal::Metrics, whole: rejected == 0 }.emit(&mut self.ledger);
                if rejected > 0 {
                    let message = message.unwrap_or_default();
                    MetricPointsRefused { count: rejected, message }.emit(&mut self.ledger);
                }
            }
            Done::Metrics(Err(failure)) => {
                self.metrics_in_flight = false;
                ExportFailed { signal: Signal::Metrics, failure: &failure }.emit(&mut self.ledger);
            }
        }
    }

    fn shutdown(&mut self, rx: &Receiver<MetricsEvent>, arx: &Receiver<SpanData>, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        self.deadline = Some(deadline);
        self.take_app_spans(arx);
        self.drain_queue(rx, Some(deadline));
        // Recorded while shutting down, or left at the deadline: never translated, so counted as dropped.
        let left = rx.try_iter().count() as u64;
        EventsDropped { count: left, reason: EventDropReason::Shutdown }.emit(&mut self.ledger);
        if self.settings.flush_open_on_shutdown {
            self.translator.finish(chrono::Utc::now(), &mut self.out);
        }
        self.drain_out_by(Some(deadline));
        self.note_queue_drops();
        self.dispatch(true);
        self.wait_idle(deadline, true);
        // Metrics last, so they include every count made above.
        self.export_metrics();
        self.wait_idle(deadline, true);
        let unsent = self.pending.len() as u64 + arx.try_iter().count() as u64;
        // Batches still out at the deadline: their fate is unknown, so they are reported as not exported.
        let unconfirmed = self.spans_in_flight;
        if unsent + unconfirmed > 0 {
            self.ledger.report.spans_dropped += unsent + unconfirmed;
            tracing::warn!(target: "bamboo_otel", unsent, unconfirmed, "shutdown: spans could not be exported in time and are counted as dropped");
        }
        if self.metrics_in_flight {
            self.ledger.report.metrics_unsent = true;
        }
        self.ledger.report.timed_out =
            (unsent > 0 || unconfirmed > 0 || self.metrics_in_flight) && Instant::now() >= deadline;
        let stats = self.translator.stats();
        self.ledger.report.events_received = stats.events;
        self.ledger.report.events_rejected = stats.duplicates + stats.already_ended;
        // The events left at shutdown were added when they were counted.
        self.ledger.report.events_dropped += self.shared.queue_full.load(Ordering::Relaxed);
        self.metrics.shutdown();
        // Closing the job channel lets the export thread shut its exporters down and exit on its own; it is not
        // joined, so a backend stalled past the deadline cannot hold the caller.
        self.jobs = None;
        self.ledger.report.clone()
    }
}

/// What a job's answer is given, at shutdown, to reach the worker before the deadline.
const ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// Time left before `deadline`, capped at `cap`; at least 1 ms so a late call still fails fast instead of hanging.
fn remaining(deadline: Option<Instant>, cap: Duration) -> Duration {
    deadline.map_or(cap, |d| d.saturating_duration_since(Instant::now()).min(cap)).max(Duration::from_millis(1))
}

/// The first time a model has no price (or no provider), says so once, naming the model and what to do.
fn log_model_once(logged: &mut std::collections::HashSet<(Instrument, String)>, m: &crate::translate::MetricUpdate) {
    let model = m.attr(sc::GEN_AI_REQUEST_MODEL).map(|v| v.to_string()).unwrap_or_default();
    if logged.len() >= 64 || !logged.insert((m.instrument, model.clone())) {
        return;
    }
    if m.instrument == Instrument::BridgeCostUnpriced {
        tracing::warn!(target: "bamboo_otel", %model, "no price for this model: its spans carry no cost (counted in bamboo_otel.cost.unpriced; add a row with BAMBOO_OTEL_PRICES; logged once per model)");
    } else {
        tracing::warn!(target: "bamboo_otel", %model, "no provider rule matches this model: gen_ai.provider.name is left out (counted in bamboo_otel.provider.unknown; add one with BAMBOO_OTEL_MODEL_PROVIDERS; logged once per model)");
    }
}
