//! What the pipeline did and lost, kept where it happens: the report [`Bridge::shutdown`](crate::Bridge::shutdown)
//! returns, and the counters the callers' handles share with the worker. Compiled without the `otel` feature
//! too, so the no-op bridge returns the same report.

#[cfg(feature = "otel")]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;

/// What the bridge did, returned by [`Bridge::shutdown`]. At shutdown,
/// `events_received = translated + events_rejected` and every span translated is exported, sampled out or dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events the worker translated (duplicates included).
    pub events_received: u64,
    /// Events dropped because the queue was full (never reached the worker).
    pub events_dropped: u64,
    /// Events the translator rejected (duplicates, second completions).
    pub events_rejected: u64,
    pub spans_exported: u64,
    /// Spans not kept by the sampler.
    pub spans_sampled_out: u64,
    /// Spans that could not be exported (buffer full during an outage, refused by the backend for good, or still
    /// unsent at the shutdown deadline).
    pub spans_dropped: u64,
    /// Of `spans_dropped`, those the backend refused for good (an OTLP non-retryable response such as HTTP 400).
    pub spans_rejected: u64,
    /// Spans emitted without their start or completion (open at shutdown, idle, evicted).
    pub spans_incomplete: u64,
    pub span_export_failures: u64,
    pub metric_exports: u64,
    pub metric_export_failures: u64,
    /// Data points in the last successful metric export (cumulative temporality: every series so far), less
    /// those the backend refused in it.
    pub metric_points_exported: u64,
    /// Data points the backend refused in exports it otherwise took (OTLP partial success), over the run.
    pub metric_points_rejected: u64,
    /// The last metric export failed: the backend does not have the final totals.
    pub metrics_unsent: bool,
    /// The shutdown deadline passed before everything was sent.
    pub timed_out: bool,
}

impl ShutdownReport {
    /// Whether something that should have reached the backend did not (spans dropped, final metrics unsent).
    pub fn export_failed(&self) -> bool {
        self.spans_dropped > 0 || self.metrics_unsent || self.timed_out
    }
}

/// Counters shared between the handles and the worker.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub queue_full: AtomicU64,
    #[cfg(feature = "otel")]
    pub burst_logged: AtomicBool,
    /// Application spans (from [`Bridge::tracer_provider`]) lost to a full queue or a shut-down bridge.
    #[cfg(feature = "otel")]
    pub app_spans_dropped: AtomicU64,
}
