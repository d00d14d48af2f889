//! Where each signal goes: our OTLP wire, the console, or nowhere.

// With the `otel` feature alone no transport exists: an OTLP sink cannot be built.
#![cfg_attr(not(any(feature = "http", feature = "grpc")), allow(unreachable_code))]

use crate::config::{BuildError, ExporterKind, Settings};
use crate::wire::{RetryHook, RetryPolicy, Target, Wire};

/// Where spans go.
pub(crate) enum SpanSink {
    Otlp(Wire),
    Console,
    None,
}

/// Where metrics go.
pub(crate) enum MetricSink {
    Otlp(Wire),
    Console,
    None,
}

/// Builds the span sink. Must run inside a tokio runtime (tonic connects lazily on it).
pub(crate) fn span_sink(s: &Settings, on_retry: RetryHook) -> Result<SpanSink, BuildError> {
    Ok(match s.traces {
        ExporterKind::None => SpanSink::None,
        ExporterKind::Console => SpanSink::Console,
        ExporterKind::Otlp => SpanSink::Otlp(
            Wire::new(&Target::traces(s, &|k| std::env::var(k).ok())?, RetryPolicy::default())?.on_retry(on_retry),
        ),
    })
}

/// Builds the metric sink. Must run inside a tokio runtime.
pub(crate) fn metric_sink(s: &Settings, on_retry: RetryHook) -> Result<MetricSink, BuildError> {
    Ok(match s.metrics {
        ExporterKind::None => MetricSink::None,
        ExporterKind::Console => MetricSink::Console,
        ExporterKind::Otlp => MetricSink::Otlp(
            Wire::new(&Target::metrics(s, &|k| std::env::var(k).ok())?, RetryPolicy::default())?.on_retry(on_retry),
        ),
    })
}
