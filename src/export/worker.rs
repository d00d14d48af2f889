//! The worker thread: owns the translator and the export pipeline, fed by the bridge's bounded queue.
//!
//! The caller's side never waits on it: `record` is a `try_send`. The worker runs its own current-thread tokio
//! runtime, entered only while an export is in flight, so callers need no runtime and cannot deadlock it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

use super::{metric_sink, resource, scope, span_data, span_sink, MetricSink, Metrics, SpanSink};
use crate::bridge::{Shared, ShutdownReport};
use crate::config::{BuildError, Settings};
use crate::console::{render_tree, MetricTotals};
use crate::events::MetricsEvent;
use crate::semconv::{self as sc, Instrument};
use crate::translate::{Output, SpanRecord, Translator};

pub(crate) enum Control {
    Flush(Sender<()>),
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

/// Starts the worker; returns once its exporters are built (or failed to build).
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
    rt: tokio::runtime::Runtime,
    settings: Settings,
    translator: Translator,
    out: Output,
    spans: SpanSink,
    metric_sink: MetricSink,
    metrics: Metrics,
    console_totals: MetricTotals,
    scope: opentelemetry::InstrumentationScope,
    pending: VecDeque<Pending>,
    app_spans_dropped_seen: u64,
    shared: Arc<Shared>,
    report: ShutdownReport,
    queue_full_seen: u64,
    trace_outage: bool,
    metric_outage: bool,
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
        let (mut spans, metric_sink) = {
            let _guard = rt.enter();
            (span_sink(&settings)?, metric_sink(&settings)?)
        };
        if let SpanSink::Otlp(exporter) = &mut spans {
            // A tracer provider would do this; we hand spans to the exporter ourselves.
            exporter.set_resource(&resource);
        }
        let temporality = match &metric_sink {
            MetricSink::Otlp(e) => e.temporality(),
            _ => Temporality::Cumulative,
        };
        let metrics = Metrics::new(resource, temporality);
        Ok(Worker {
            rt,
            translator: Translator::new(settings.translate.clone()),
            settings,
            out: Output::new(),
            spans,
            metric_sink,
            metrics,
            console_totals: MetricTotals::new(),
            scope: scope(),
            pending: VecDeque::new(),
            shared,
            report: ShutdownReport::default(),
            queue_full_seen: 0,
            app_spans_dropped_seen: 0,
            trace_outage: false,
            metric_outage: false,
        })
    }

    fn run(mut self, rx: Receiver<MetricsEvent>, arx: Receiver<SpanData>, crx: Receiver<Control>) {
        let tick_every =
            (self.settings.translate.idle_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut next_spans = Instant::now() + self.settings.schedule_delay;
        let mut next_metrics = Instant::now() + self.settings.metric_interval;
        let mut next_tick = Instant::now() + tick_every;
        loop {
            let deadline = next_spans.min(next_metrics).min(next_tick);
            let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(25));
            match rx.recv_timeout(wait) {
                Ok(event) => {
                    self.handle(&event);
                    // Drain what is already queued before looking at timers: one wakeup, many events.
                    for event in rx.try_iter().take(4096) {
                        self.handle(&event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone without an explicit shutdown: shut down with a default bound.
                    self.shutdown(&rx, Duration::from_secs(5));
                    return;
                }
            }
            self.take_app_spans(&arx);
            self.note_queue_drops();
            if self.pending.len() >= self.settings.batch_size {
                self.export_spans(false, None);
            }
            while let Ok(c) = crx.try_recv() {
                match c {
                    Control::Flush(reply) => {
                        self.drain_queue(&rx, None);
                        self.take_app_spans(&arx);
                        self.export_spans(true, None);
                        self.export_metrics(None);
                        let _ = reply.send(());
                    }
                    Control::Shutdown(timeout, reply) => {
                        self.take_app_spans(&arx);
                        let report = self.shutdown(&rx, timeout);
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
                self.export_spans(true, None);
                next_spans = Instant::now() + self.settings.schedule_delay;
            }
            if now >= next_metrics {
                self.export_metrics(None);
                next_metrics = Instant::now() + self.settings.metric_interval;
            }
        }
    }

    fn handle(&mut self, event: &MetricsEvent) {
        self.translator.process(event, chrono::Utc::now(), &mut self.out);
        self.drain_out();
    }

    /// Moves translator output into the pending span buffer (sampled, bounded) and the meter.
    fn drain_out(&mut self) {
        let mut spans = std::mem::take(&mut self.out.spans);
        for span in spans.drain(..) {
            if span.is_incomplete() {
                self.report.spans_incomplete += 1;
            }
            if !self.settings.sampler.should_sample(span.trace_id) {
                self.report.spans_sampled_out += 1;
                continue;
            }
            self.push_pending(Pending::Bamboo(span));
        }
        // Hand the (empty) vector back so its capacity is reused.
        self.out.spans = spans;
        for m in self.out.metrics.drain(..) {
            if matches!(self.metric_sink, MetricSink::Console) {
                self.console_totals.record(&m);
            }
            self.metrics.record(&m);
        }
    }

    fn push_pending(&mut self, span: Pending) {
        self.pending.push_back(span);
        if self.pending.len() > self.settings.max_pending_spans {
            self.pending.pop_front();
            self.report.spans_dropped += 1;
            self.metrics.count(Instrument::BridgeSpansDropped, 1, &[(sc::REASON, "buffer_full")]);
        }
    }

    /// Moves finished application spans into the pending buffer (already sampled by the tracer provider).
    fn take_app_spans(&mut self, arx: &Receiver<SpanData>) {
        while let Ok(span) = arx.try_recv() {
            self.push_pending(Pending::App(Box::new(span)));
        }
        let dropped = self.shared.app_spans_dropped.load(Ordering::Relaxed);
        if dropped > self.app_spans_dropped_seen {
            let n = dropped - self.app_spans_dropped_seen;
            self.report.spans_dropped += n;
            self.metrics.count(Instrument::BridgeSpansDropped, n, &[(sc::REASON, sc::REJECT_QUEUE_FULL)]);
            if self.app_spans_dropped_seen == 0 {
                tracing::warn!(target: "bamboo_otel", reason = "queue_full", "application span queue full: dropping spans (counted in bamboo_otel.spans.dropped; logged once)");
            }
            self.app_spans_dropped_seen = dropped;
        }
    }

    fn note_queue_drops(&mut self) {
        let total = self.shared.queue_full.load(Ordering::Relaxed);
        if total > self.queue_full_seen {
            self.metrics.count(
                Instrument::BridgeRejected,
                total - self.queue_full_seen,
                &[(sc::REASON, sc::REJECT_QUEUE_FULL)],
            );
            self.queue_full_seen = total;
        } else {
            // No new drops since the last look: the burst is over, the next one is logged again.
            self.shared.burst_logged.store(false, Ordering::Relaxed);
        }
    }

    fn drain_queue(&mut self, rx: &Receiver<MetricsEvent>, deadline: Option<Instant>) {
        while deadline.map_or(true, |d| Instant::now() < d) {
            match rx.try_recv() {
                Ok(event) => self.handle(&event),
                Err(_) => break,
            }
        }
    }

    /// Exports pending spans: every full batch, or everything when `all`. A failed batch goes back to the front
    /// of the buffer for the next attempt (the exporter has already retried it with backoff).
    fn export_spans(&mut self, all: bool, deadline: Option<Instant>) {
        while !self.pending.is_empty() && (all || self.pending.len() >= self.settings.batch_size) {
            let n = self.pending.len().min(self.settings.batch_size);
            let batch: Vec<Pending> = self.pending.drain(..n).collect();
            let timeout = remaining(deadline, self.settings.export_timeout);
            let result = match &self.spans {
                SpanSink::None => Ok(()),
                SpanSink::Console => {
                    print_console(&batch);
                    Ok(())
                }
                SpanSink::Otlp(exporter) => {
                    let data = batch.iter().map(|s| s.to_span_data(&self.scope)).collect();
                    match self.rt.block_on(async { tokio::time::timeout(timeout, exporter.export(data)).await }) {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(("export_error", e.to_string())),
                        Err(_) => Err(("timeout", format!("no answer within {timeout:?}"))),
                    }
                }
            };
            match result {
                Ok(()) => {
                    self.report.spans_exported += batch.len() as u64;
                    if self.trace_outage {
                        tracing::info!(target: "bamboo_otel", "span export recovered");
                        self.trace_outage = false;
                    }
                }
                Err((reason, message)) => {
                    self.report.span_export_failures += 1;
                    self.metrics.count(
                        Instrument::BridgeExportFailures,
                        1,
                        &[("signal", "traces"), (sc::REASON, reason)],
                    );
                    if !self.trace_outage {
                        tracing::warn!(target: "bamboo_otel", reason, %message, "span export failed; keeping spans for retry (logged once per outage)");
                        self.trace_outage = true;
                    }
                    for span in batch.into_iter().rev() {
                        self.pending.push_front(span);
                    }
                    while self.pending.len() > self.settings.max_pending_spans {
                        self.pending.pop_front();
                        self.report.spans_dropped += 1;
                        self.metrics.count(Instrument::BridgeSpansDropped, 1, &[(sc::REASON, "export_failed")]);
                    }
                    return;
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
        }
    }

    fn export_metrics(&mut self, deadline: Option<Instant>) {
        let timeout = remaining(deadline, self.settings.export_timeout);
        let result = match &self.metric_sink {
            MetricSink::None => return,
            MetricSink::Console => {
                print!("== metrics\n{}", self.console_totals.render());
                return;
            }
            MetricSink::Otlp(exporter) => match self.metrics.collect() {
                Err(e) => Err(("collect_error", e)),
                Ok(rm) => match self.rt.block_on(async { tokio::time::timeout(timeout, exporter.export(&rm)).await }) {
                    Ok(Ok(())) => {
                        self.report.metric_points_exported = super::data_points(&rm);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(("export_error", e.to_string())),
                    Err(_) => Err(("timeout", format!("no answer within {timeout:?}"))),
                },
            },
        };
        match result {
            Ok(()) => {
                self.report.metric_exports += 1;
                self.report.metrics_unsent = false;
                if self.metric_outage {
                    tracing::info!(target: "bamboo_otel", "metric export recovered");
                    self.metric_outage = false;
                }
            }
            Err((reason, message)) => {
                self.report.metric_export_failures += 1;
                self.report.metrics_unsent = true;
                self.metrics.count(Instrument::BridgeExportFailures, 1, &[("signal", "metrics"), (sc::REASON, reason)]);
                if !self.metric_outage {
                    tracing::warn!(target: "bamboo_otel", reason, %message, "metric export failed; cumulative totals are sent again next time (logged once per outage)");
                    self.metric_outage = true;
                }
            }
        }
    }

    fn shutdown(&mut self, rx: &Receiver<MetricsEvent>, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        self.drain_queue(rx, Some(deadline));
        if self.settings.flush_open_on_shutdown {
            self.translator.finish(chrono::Utc::now(), &mut self.out);
        }
        self.drain_out();
        self.note_queue_drops();
        self.export_spans(true, Some(deadline));
        self.export_metrics(Some(deadline));
        let left = self.pending.len() as u64;
        if left > 0 {
            self.report.spans_dropped += left;
            self.report.timed_out = Instant::now() >= deadline;
            tracing::warn!(target: "bamboo_otel", spans = left, "shutdown: spans could not be exported and are dropped");
        }
        let stats = self.translator.stats();
        self.report.events_received = stats.events;
        self.report.events_rejected = stats.duplicates + stats.already_ended;
        self.report.events_dropped = self.shared.queue_full.load(Ordering::Relaxed);
        self.metrics.shutdown();
        if let SpanSink::Otlp(e) = &mut self.spans {
            let _ = e.shutdown_with_timeout(remaining(Some(deadline), Duration::from_millis(100)));
        }
        self.report.clone()
    }
}

/// A span waiting for export: one of Bamboo's, or one of the application's own.
enum Pending {
    Bamboo(SpanRecord),
    App(Box<SpanData>),
}

impl Pending {
    fn to_span_data(&self, scope: &opentelemetry::InstrumentationScope) -> SpanData {
        match self {
            Pending::Bamboo(s) => span_data(s, scope),
            Pending::App(s) => (**s).clone(),
        }
    }
}

/// Bamboo spans as a tree; application spans one line each.
fn print_console(batch: &[Pending]) {
    let bamboo: Vec<SpanRecord> = batch
        .iter()
        .filter_map(|p| match p {
            Pending::Bamboo(s) => Some(s.clone()),
            Pending::App(_) => None,
        })
        .collect();
    if !bamboo.is_empty() {
        print!("{}", render_tree(&bamboo));
    }
    for p in batch {
        if let Pending::App(s) = p {
            println!("app span {} trace={} span={}", s.name, s.span_context.trace_id(), s.span_context.span_id());
        }
    }
}

/// Time left before `deadline`, capped at `cap`; at least 1 ms so a late call still fails fast instead of hanging.
fn remaining(deadline: Option<Instant>, cap: Duration) -> Duration {
    deadline.map_or(cap, |d| d.saturating_duration_since(Instant::now()).min(cap)).max(Duration::from_millis(1))
}
