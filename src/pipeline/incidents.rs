//! One type per incident the live pipeline meets, after Vector's internal events: `emit` updates the shutdown
//! report, the internal counter and the log-once state together, so a new drop path cannot count without
//! logging or log without counting. Reasons are enums, each with one low-cardinality label.

use std::sync::Arc;

use super::accounting::ShutdownReport;
use super::instruments::Metrics;
use super::shipper::{Failure, Signal};
use crate::semconv::{self as sc, Instrument};

/// What the worker knows of what it lost: the report it will return, the counters, and what it has logged.
pub(crate) struct Ledger {
    pub report: ShutdownReport,
    pub metrics: Arc<Metrics>,
    /// Per signal (traces, metrics): an export is failing (logged once per outage; traces also limit themselves to
    /// one batch in flight meanwhile).
    outage: [bool; 2],
    /// Per signal: the backend is refusing data (logged once until an export goes through whole).
    refusing: [bool; 2],
    app_queue_full_logged: bool,
}

impl Ledger {
    pub fn new(metrics: Arc<Metrics>) -> Ledger {
        Ledger {
            report: ShutdownReport::default(),
            metrics,
            outage: [false; 2],
            refusing: [false; 2],
            app_queue_full_logged: false,
        }
    }

    /// Whether `signal`'s exports are failing now.
    pub fn in_outage(&self, signal: Signal) -> bool {
        self.outage[signal as usize]
    }
}

/// Why spans did not reach the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanDropReason {
    /// The outage buffer was full: the oldest spans made room.
    ExportFailed,
    /// The application span queue was full.
    QueueFull,
}

impl SpanDropReason {
    fn label(self) -> &'static str {
        match self {
            SpanDropReason::ExportFailed => sc::DROP_EXPORT_FAILED,
            SpanDropReason::QueueFull => sc::REJECT_QUEUE_FULL,
        }
    }
}

/// Spans dropped before they could be sent.
pub(crate) struct SpansDropped {
    pub count: u64,
    pub reason: SpanDropReason,
}

impl SpansDropped {
    pub fn emit(self, ledger: &mut Ledger) {
        let SpansDropped { count, reason } = self;
        if count == 0 {
            return;
        }
        ledger.report.spans_dropped += count;
        ledger.metrics.count(Instrument::BridgeSpansDropped, count, &[(sc::REASON, reason.label())]);
        match reason {
            // The outage that fills the buffer has been logged already (ExportFailed).
            SpanDropReason::ExportFailed => {}
            SpanDropReason::QueueFull => {
                if !std::mem::replace(&mut ledger.app_queue_full_logged, true) {
                    tracing::warn!(target: "bamboo_otel", reason = reason.label(), "application span queue full: dropping spans (counted in bamboo_otel.spans.dropped; logged once)");
                }
            }
        }
    }
}

/// Spans the backend refused: a whole batch for good, or part of one it otherwise took (OTLP partial success).
pub(crate) struct SpansRefused {
    pub count: u64,
    /// What the backend said.
    pub message: String,
    pub partial: bool,
}

impl SpansRefused {
    pub fn emit(self, ledger: &mut Ledger) {
        let SpansRefused { count, message, partial } = self;
        ledger.report.spans_dropped += count;
        ledger.report.spans_rejected += count;
        ledger.metrics.count(Instrument::BridgeSpansDropped, count, &[(sc::REASON, sc::DROP_REJECTED)]);
        if !std::mem::replace(&mut ledger.refusing[Signal::Traces as usize], true) {
            let what = if partial {
                "took a span batch but refused some of its spans (OTLP partial success)"
            } else {
                "refused a span batch for good"
            };
            tracing::warn!(target: "bamboo_otel", reason = sc::DROP_REJECTED, %message, spans = count, "the backend {what}; dropping them (counted in bamboo_otel.spans.dropped with reason rejected; logged once until a batch goes through whole)");
        }
    }
}

/// Data points the backend refused in an export it otherwise took (OTLP partial success).
pub(crate) struct MetricPointsRefused {
    pub count: u64,
    pub message: String,
}

impl MetricPointsRefused {
    pub fn emit(self, ledger: &mut Ledger) {
        let MetricPointsRefused { count, message } = self;
        ledger.report.metric_points_rejected += count;
        ledger.metrics.count(
            Instrument::BridgeExportFailures,
            1,
            &[(sc::SIGNAL, Signal::Metrics.label()), (sc::REASON, sc::PARTIAL_SUCCESS)],
        );
        if !std::mem::replace(&mut ledger.refusing[Signal::Metrics as usize], true) {
            tracing::warn!(target: "bamboo_otel", reason = sc::PARTIAL_SUCCESS, %message, points = count, "the backend took a metric export but refused some of its points (OTLP partial success; counted in bamboo_otel.export.failures; logged once until an export goes through whole)");
        }
    }
}

/// The backend took an export: any outage is over. Taken whole (no partial refusal), the next refusal is logged
/// again too.
pub(crate) struct ExportSucceeded {
    pub signal: Signal,
    pub whole: bool,
}

impl ExportSucceeded {
    pub fn emit(self, ledger: &mut Ledger) {
        let i = self.signal as usize;
        if self.whole {
            ledger.refusing[i] = false;
        }
        if std::mem::replace(&mut ledger.outage[i], false) {
            tracing::info!(target: "bamboo_otel", signal = self.signal.label(), "export recovered");
        }
    }
}

/// An attempt failed and the wire will try again: the outage begins now, not when the request gives up.
pub(crate) struct ExportRetrying {
    pub signal: Signal,
    pub message: String,
}

impl ExportRetrying {
    pub fn emit(self, ledger: &mut Ledger) {
        let ExportRetrying { signal, message } = self;
        if !std::mem::replace(&mut ledger.outage[signal as usize], true) {
            tracing::warn!(target: "bamboo_otel", signal = signal.label(), %message, "{}; retrying with backoff (logged once per outage)", signal.failed());
        }
    }
}

/// An export job failed after the wire's retries (or timed out). Refusals for good are also [`SpansRefused`].
pub(crate) struct ExportFailed<'a> {
    pub signal: Signal,
    pub failure: &'a Failure,
}

impl ExportFailed<'_> {
    pub fn emit(self, ledger: &mut Ledger) {
        let ExportFailed { signal, failure } = self;
        match signal {
            Signal::Traces => ledger.report.span_export_failures += 1,
            Signal::Metrics => {
                ledger.report.metric_export_failures += 1;
                ledger.report.metrics_unsent = true;
            }
        }
        ledger.metrics.count(
            Instrument::BridgeExportFailures,
            1,
            &[(sc::SIGNAL, signal.label()), (sc::REASON, failure.reason)],
        );
        if failure.permanent {
            return;
        }
        if !std::mem::replace(&mut ledger.outage[signal as usize], true) {
            let reason = failure.reason;
            let message = &failure.message;
            tracing::warn!(target: "bamboo_otel", signal = signal.label(), reason, %message, "{}; keeping what it held for the next attempt (logged once per outage)", signal.failed());
        }
    }
}

/// Events that never reached the translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventDropReason {
    /// The queue was full when `record` was called (logged by the caller's handle, once per burst).
    QueueFull,
    /// Still queued when shutdown began translating its last, or left at its deadline.
    Shutdown,
}

/// Events dropped before translation.
pub(crate) struct EventsDropped {
    pub count: u64,
    pub reason: EventDropReason,
}

impl EventsDropped {
    pub fn emit(self, ledger: &mut Ledger) {
        let EventsDropped { count, reason } = self;
        if count == 0 {
            return;
        }
        let label = match reason {
            EventDropReason::QueueFull => sc::REJECT_QUEUE_FULL,
            EventDropReason::Shutdown => sc::EVICT_SHUTDOWN,
        };
        ledger.metrics.count(Instrument::BridgeRejected, count, &[(sc::REASON, label)]);
        if reason == EventDropReason::Shutdown {
            ledger.report.events_dropped += count;
            tracing::warn!(target: "bamboo_otel", events = count, "shutdown: events still queued were not translated (counted as dropped)");
        }
    }
}

impl Signal {
    fn label(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    fn failed(self) -> &'static str {
        match self {
            Signal::Traces => "span export failed",
            Signal::Metrics => "metric export failed (cumulative totals are sent again next time)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    fn ledger() -> Ledger {
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        Ledger::new(Arc::new(Metrics::new(resource, opentelemetry_sdk::metrics::Temporality::Cumulative, 100)))
    }

    /// The value of counter `name` in the series whose `reason` is `reason`.
    fn counted(ledger: &Ledger, name: &str, reason: &str) -> u64 {
        let rm = ledger.metrics.collect().unwrap();
        let mut total = 0;
        for m in rm.scope_metrics().flat_map(|s| s.metrics()).filter(|m| m.name() == name) {
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() {
                for p in sum.data_points() {
                    if p.attributes().any(|kv| kv.key.as_str() == sc::REASON && kv.value.as_str() == reason) {
                        total += p.value();
                    }
                }
            }
        }
        total
    }

    #[test]
    fn each_incident_reports_and_counts_together() {
        let mut l = ledger();
        SpansDropped { count: 2, reason: SpanDropReason::ExportFailed }.emit(&mut l);
        SpansDropped { count: 3, reason: SpanDropReason::QueueFull }.emit(&mut l);
        SpansRefused { count: 4, message: "no".into(), partial: true }.emit(&mut l);
        assert_eq!((l.report.spans_dropped, l.report.spans_rejected), (9, 4));
        let dropped = Instrument::BridgeSpansDropped.def().name;
        assert_eq!(counted(&l, dropped, sc::DROP_EXPORT_FAILED), 2);
        assert_eq!(counted(&l, dropped, sc::REJECT_QUEUE_FULL), 3);
        assert_eq!(counted(&l, dropped, sc::DROP_REJECTED), 4);

        let failure = Failure { reason: "unavailable", message: "down".into(), permanent: false };
        assert!(!l.in_outage(Signal::Traces));
        ExportFailed { signal: Signal::Traces, failure: &failure }.emit(&mut l);
        ExportFailed { signal: Signal::Metrics, failure: &failure }.emit(&mut l);
        assert!(l.in_outage(Signal::Traces) && l.in_outage(Signal::Metrics));
        assert_eq!((l.report.span_export_failures, l.report.metric_export_failures), (1, 1));
        assert!(l.report.metrics_unsent);
        assert_eq!(counted(&l, Instrument::BridgeExportFailures.def().name, "unavailable"), 2);
        ExportSucceeded { signal: Signal::Traces, whole: false }.emit(&mut l);
        assert!(!l.in_outage(Signal::Traces) && l.in_outage(Signal::Metrics), "a partial success ends an outage too");

        MetricPointsRefused { count: 7, message: "bad".into() }.emit(&mut l);
        assert_eq!(l.report.metric_points_rejected, 7);
        assert_eq!(counted(&l, Instrument::BridgeExportFailures.def().name, sc::PARTIAL_SUCCESS), 1);

        EventsDropped { count: 5, reason: EventDropReason::Shutdown }.emit(&mut l);
        EventsDropped { count: 6, reason: EventDropReason::QueueFull }.emit(&mut l);
        // Queue-full drops reach the report from the handles' shared counter, at shutdown.
        assert_eq!(l.report.events_dropped, 5);
        assert_eq!(counted(&l, Instrument::BridgeRejected.def().name, sc::EVICT_SHUTDOWN), 5);
        assert_eq!(counted(&l, Instrument::BridgeRejected.def().name, sc::REJECT_QUEUE_FULL), 6);
    }

    #[test]
    fn a_retry_begins_an_outage_that_a_whole_export_ends() {
        let mut l = ledger();
        ExportRetrying { signal: Signal::Traces, message: "refused".into() }.emit(&mut l);
        assert!(l.in_outage(Signal::Traces));
        assert_eq!(l.report, ShutdownReport::default(), "a retry is not a failure");
        ExportSucceeded { signal: Signal::Traces, whole: true }.emit(&mut l);
        assert!(!l.in_outage(Signal::Traces));
    }
}
