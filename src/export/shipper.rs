//! The export thread: encodes and sends what the worker hands it, so translation never waits on the network.
//!
//! The worker keeps a few span batches and one metric collection in flight; each job comes back as a [`Done`]
//! with its outcome (and, for a failed span batch, the batch itself, to be retried). Jobs run concurrently on
//! this thread's tokio runtime: a collector hop costs a round trip per request, and one request at a time would
//! leave the link idle while waiting (measured: 3× slower through rotel over gRPC). The OTLP exporters retry
//! with backoff inside `export`, bounded by the job's timeout.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

use super::{data_points, span_data, MetricSink, Metrics, SpanSink};
use crate::console::render_tree;
use crate::translate::SpanRecord;

/// A span waiting for export: one of Bamboo's, or one of the application's own.
pub(crate) enum Pending {
    Bamboo(SpanRecord),
    App(Box<SpanData>),
}

pub(crate) enum Job {
    Spans(Vec<Pending>, Duration),
    Metrics(Duration),
}

/// A failed export: a low-cardinality reason, the message to log, and whether the backend refused it for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub reason: &'static str,
    pub message: String,
    /// Sending the same data again will be refused again (OTLP's non-retryable responses).
    pub permanent: bool,
}

impl Failure {
    fn timeout(timeout: Duration) -> Failure {
        Failure { reason: "timeout", message: format!("no answer within {timeout:?}"), permanent: false }
    }

    /// Classifies the exporter's error. The exporter has already retried, with backoff and `Retry-After` /
    /// `RetryInfo`, what the OTLP spec calls retryable (HTTP 429, 502, 503, 504 and network errors; gRPC
    /// UNAVAILABLE, RESOURCE_EXHAUSTED with RetryInfo, ABORTED, …), so what reaches us either ran out of retries
    /// (the backend is down or overloaded: keep the data) or was refused for good: an HTTP 4xx other than 408
    /// and 429, or a gRPC client-error code. Those bytes would be refused again, so the batch is dropped and
    /// counted as `rejected` instead of blocking everything behind it. A 500 or gRPC INTERNAL, which the spec
    /// also calls non-retryable, is kept and retried within the bounded buffer: from a collector it is far more
    /// often a restart or overload than a verdict on the data.
    pub(crate) fn classify(message: String) -> Failure {
        let http = message
            .split_once("status code: ")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u16>().ok());
        let grpc = message
            .split_once("gRPC code: ")
            .map(|(_, rest)| rest.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or(""));
        let permanent = match (http, grpc) {
            (Some(code), _) => (400..500).contains(&code) && code != 408 && code != 429,
            (None, Some(code)) => matches!(
                code,
                "InvalidArgument"
                    | "NotFound"
                    | "AlreadyExists"
                    | "PermissionDenied"
                    | "Unauthenticated"
                    | "FailedPrecondition"
                    | "Unimplemented"
            ),
            (None, None) => false,
        };
        Failure { reason: if permanent { crate::semconv::DROP_REJECTED } else { "export_error" }, message, permanent }
    }
}

pub(crate) enum Done {
    /// Spans exported, or the batch back with the failure.
    Spans(Result<usize, (Vec<Pending>, Failure)>),
    /// Data points exported.
    Metrics(Result<u64, Failure>),
}

pub(crate) struct Shipper {
    pub rt: tokio::runtime::Runtime,
    pub spans: SpanSink,
    pub metric_sink: MetricSink,
    pub metrics: Arc<Metrics>,
    pub scope: opentelemetry::InstrumentationScope,
}

impl Shipper {
    /// Runs until the job channel closes and the last job has answered, then shuts the exporters down within
    /// `final_timeout`.
    pub(crate) fn run(self, mut jobs: UnboundedReceiver<Job>, done: Sender<Done>, final_timeout: Duration) {
        let Shipper { rt, spans, metric_sink, metrics, scope } = self;
        let sinks = Arc::new(Sinks { spans, metric_sink, metrics, scope });
        rt.block_on(async move {
            let mut running = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    job = jobs.recv() => match job {
                        Some(job) => {
                            let sinks = sinks.clone();
                            running.spawn(async move { sinks.run(job).await });
                        }
                        None => break,
                    },
                    Some(finished) = running.join_next(), if !running.is_empty() => {
                        if let Ok(d) = finished {
                            if done.send(d).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            // The worker has gone: let what is running finish (each export is bounded by its timeout).
            while let Some(finished) = running.join_next().await {
                if let Ok(d) = finished {
                    let _ = done.send(d);
                }
            }
            if let SpanSink::Otlp(e) = &sinks.spans {
                let _ = e.shutdown_with_timeout(final_timeout);
            }
        });
    }
}

/// What the export jobs share.
struct Sinks {
    spans: SpanSink,
    metric_sink: MetricSink,
    metrics: Arc<Metrics>,
    scope: opentelemetry::InstrumentationScope,
}

impl Sinks {
    async fn run(&self, job: Job) -> Done {
        match job {
            Job::Spans(batch, timeout) => Done::Spans(self.export_spans(batch, timeout).await),
            Job::Metrics(timeout) => Done::Metrics(self.export_metrics(timeout).await),
        }
    }

    async fn export_spans(&self, batch: Vec<Pending>, timeout: Duration) -> Result<usize, (Vec<Pending>, Failure)> {
        let n = batch.len();
        match &self.spans {
            SpanSink::None => Ok(n),
            SpanSink::Console => {
                print_console(&batch);
                Ok(n)
            }
            SpanSink::Otlp(exporter) => {
                let data = batch.iter().map(|p| p.to_span_data(&self.scope)).collect();
                match tokio::time::timeout(timeout, exporter.export(data)).await {
                    Ok(Ok(())) => Ok(n),
                    Ok(Err(e)) => Err((batch, Failure::classify(e.to_string()))),
                    Err(_) => Err((batch, Failure::timeout(timeout))),
                }
            }
        }
    }

    async fn export_metrics(&self, timeout: Duration) -> Result<u64, Failure> {
        let MetricSink::Otlp(exporter) = &self.metric_sink else { return Ok(0) };
        let rm =
            self.metrics.collect().map_err(|message| Failure { reason: "collect_error", message, permanent: false })?;
        match tokio::time::timeout(timeout, exporter.export(&rm)).await {
            Ok(Ok(())) => Ok(data_points(&rm)),
            Ok(Err(e)) => Err(Failure::classify(e.to_string())),
            Err(_) => Err(Failure::timeout(timeout)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn only_client_errors_are_permanent() {
        let http = |code: u16| Failure::classify(format!("HTTP export failed with status code: {code}"));
        for code in [400, 401, 403, 404, 413, 415] {
            assert!(http(code).permanent, "{code}");
            assert_eq!(http(code).reason, "rejected");
        }
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(!http(code).permanent, "{code}");
            assert_eq!(http(code).reason, "export_error");
        }
        let grpc = |code: &str| Failure::classify(format!("BatchSpanProcessor export failed with gRPC code: {code}"));
        for code in ["InvalidArgument", "Unauthenticated", "PermissionDenied", "Unimplemented"] {
            assert!(grpc(code).permanent, "{code}");
        }
        for code in ["Unavailable", "ResourceExhausted", "Internal", "Unknown", "DeadlineExceeded"] {
            assert!(!grpc(code).permanent, "{code}");
        }
        assert!(!grpc("Unavailable: transport error: connection refused").permanent);
        assert!(!Failure::classify("HTTP export failed: network error".into()).permanent);
    }
}
