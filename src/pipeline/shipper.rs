//! The export thread: encodes and sends what the worker hands it, so translation never waits on the network.
//!
//! The worker keeps a few span batches and one metric collection in flight; each job comes back as a [`Done`]
//! with its outcome (and, for a failed span batch, the batch itself, to be retried). Jobs run concurrently on
//! this thread's tokio runtime: a collector hop costs a round trip per request, and one request at a time would
//! leave the link idle while waiting (measured: 3× slower through rotel over gRPC). The wire retries with
//! backoff inside `send`, bounded by the job's timeout.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use opentelemetry_sdk::trace::SpanData;

use super::instruments::{data_points, Metrics};
use super::sinks::Sink;
use crate::console::render_tree;
use crate::translate::SpanRecord;
use crate::wire::{Accepted, FailReason, Failed};

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
}

/// What the wire reports after its own retries (with backoff, `Retry-After`, `RetryInfo`, for what the OTLP
/// spec calls retryable): a backend still down or overloaded (keep the data), a server error (500, gRPC
/// INTERNAL: kept and retried within the bounded buffer, since from a collector it is far more often a restart
/// than a verdict on the data), or a refusal for good (HTTP 4xx other than 408 and 429, a gRPC client-error
/// code): those bytes would be refused again, so the batch is dropped and counted as `rejected` instead of
/// blocking everything behind it.
impl From<Failed> for Failure {
    fn from(f: Failed) -> Failure {
        Failure { reason: f.reason.as_str(), permanent: f.reason == FailReason::Rejected, message: f.to_string() }
    }
}

/// An export the backend took: how many it was sent, and what it said it rejected (OTLP partial success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub items: u64,
    pub rejected: u64,
    pub message: Option<String>,
}

impl Sent {
    fn new(items: u64, a: Accepted) -> Sent {
        Sent { items, rejected: a.rejected.min(items), message: a.message }
    }

    fn all(items: u64) -> Sent {
        Sent { items, rejected: 0, message: None }
    }
}

pub(crate) enum Done {
    /// Spans sent, or the batch back with the failure.
    Spans(Result<Sent, (Vec<Pending>, Failure)>),
    /// Data points sent.
    Metrics(Result<Sent, Failure>),
    /// An attempt failed and the wire will try again: the job is still running, but the outage has begun.
    Retrying { signal: Signal, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

/// What a wire for `signal` calls before each retry: tells the worker through `done`.
pub(crate) fn retry_hook(signal: Signal, done: Sender<Done>) -> crate::wire::RetryHook {
    crate::wire::RetryHook::new(move |message, _wait| {
        let _ = done.send(Done::Retrying { signal, message: message.into() });
    })
}

pub(crate) struct Shipper {
    pub rt: tokio::runtime::Runtime,
    pub spans: Sink,
    pub metric_sink: Sink,
    pub metrics: Arc<Metrics>,
    /// The resource spans are sent under (the SDK encodes it for metrics).
    pub resource: PbResource,
}

impl Shipper {
    /// Runs until the job channel closes and the last job has answered, then shuts the exporters down within
    /// `final_timeout`.
    pub(crate) fn run(self, mut jobs: UnboundedReceiver<Job>, done: Sender<Done>, final_timeout: Duration) {
        let Shipper { rt, spans, metric_sink, metrics, resource } = self;
        let sinks = Arc::new(Sinks { spans, metric_sink, metrics, resource });
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
            // The worker has gone: let what is running finish, each export bounded by its timeout and all of them
            // by the final one.
            let _ = tokio::time::timeout(final_timeout, async {
                while let Some(finished) = running.join_next().await {
                    if let Ok(d) = finished {
                        let _ = done.send(d);
                    }
                }
            })
            .await;
        });
    }
}

/// What the export jobs share.
struct Sinks {
    spans: Sink,
    metric_sink: Sink,
    metrics: Arc<Metrics>,
    resource: PbResource,
}

impl Sinks {
    async fn run(&self, job: Job) -> Done {
        match job {
            Job::Spans(batch, timeout) => Done::Spans(self.export_spans(batch, timeout).await),
            Job::Metrics(timeout) => Done::Metrics(self.export_metrics(timeout).await),
        }
    }

    async fn export_spans(&self, batch: Vec<Pending>, timeout: Duration) -> Result<Sent, (Vec<Pending>, Failure)> {
        let n = batch.len() as u64;
        match &self.spans {
            Sink::None => Ok(Sent::all(n)),
            Sink::Console => {
                print_console(&batch);
                Ok(Sent::all(n))
            }
            Sink::Otlp(wire) => {
                let request = trace_request(&batch, &self.resource);
                match tokio::time::timeout(timeout, wire.send_spans(&request)).await {
                    Ok(Ok(accepted)) => Ok(Sent::new(n, accepted)),
                    Ok(Err(failed)) => Err((batch, failed.into())),
                    Err(_) => Err((batch, Failure::timeout(timeout))),
                }
            }
        }
    }

    async fn export_metrics(&self, timeout: Duration) -> Result<Sent, Failure> {
        let Sink::Otlp(wire) = &self.metric_sink else { return Ok(Sent::all(0)) };
        let rm =
            self.metrics.collect().map_err(|message| Failure { reason: "collect_error", message, permanent: false })?;
        let points = data_points(&rm);
        let request = ExportMetricsServiceRequest::from(&rm);
        match tokio::time::timeout(timeout, wire.send_metrics(&request)).await {
            Ok(Ok(accepted)) => Ok(Sent::new(points, accepted)),
            Ok(Err(failed)) => Err(failed.into()),
            Err(_) => Err(Failure::timeout(timeout)),
        }
    }
}

/// One request for a batch: Bamboo's spans under the bridge's scope, the application's under their own.
fn trace_request(batch: &[Pending], resource: &PbResource) -> ExportTraceServiceRequest {
    let mut bamboo = ScopeSpans {
        scope: Some(crate::otlp::scope()),
        schema_url: crate::semconv::SCHEMA_URL.into(),
        spans: Vec::with_capacity(batch.len()),
    };
    let mut app: Vec<ScopeSpans> = Vec::new();
    for p in batch {
        match p {
            Pending::Bamboo(s) => bamboo.spans.push(crate::otlp::span(s)),
            Pending::App(s) => {
                let scope = &s.instrumentation_scope;
                let at = app.iter().position(|ss| {
                    ss.scope
                        .as_ref()
                        .is_some_and(|sc| sc.name == scope.name() && sc.version == scope.version().unwrap_or(""))
                });
                let at = at.unwrap_or_else(|| {
                    app.push(ScopeSpans {
                        scope: Some((scope, None).into()),
                        schema_url: scope.schema_url().unwrap_or_default().to_owned(),
                        spans: Vec::new(),
                    });
                    app.len() - 1
                });
                app[at].spans.push((**s).clone().into());
            }
        }
    }
    let mut scope_spans = Vec::with_capacity(app.len() + 1);
    if !bamboo.spans.is_empty() {
        scope_spans.push(bamboo);
    }
    scope_spans.extend(app);
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans,
            schema_url: String::new(),
        }],
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
    use super::*;
    use crate::wire::Failed;

    #[test]
    fn only_a_refusal_for_good_drops_the_batch() {
        let failure = |reason| Failure::from(Failed { reason, message: "m".into(), attempts: 1 });
        assert!(failure(FailReason::Rejected).permanent);
        assert_eq!(failure(FailReason::Rejected).reason, crate::semconv::DROP_REJECTED);
        for reason in [FailReason::Unavailable, FailReason::ServerError] {
            assert!(!failure(reason).permanent, "{reason:?}");
            assert_eq!(failure(reason).reason, reason.as_str());
        }
    }

    #[test]
    fn a_batch_is_one_request_with_bamboo_spans_under_the_bridge_scope_and_app_spans_under_theirs() {
        use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
        let app = |scope: &str, id: u64| SpanData {
            span_context: SpanContext::new(
                TraceId::from(1u128),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "app".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: opentelemetry::InstrumentationScope::builder(scope.to_owned()).build(),
        };
        let mut out = crate::translate::Output::new();
        let mut tr = crate::translate::Translator::new(Default::default());
        for e in crate::demo::agent_session(chrono::Utc::now()) {
            tr.process(&e, chrono::Utc::now(), &mut out);
        }
        let bamboo = out.spans;
        assert!(!bamboo.is_empty());
        let mut batch: Vec<Pending> = vec![Pending::App(Box::new(app("my-app", 1)))];
        batch.extend(bamboo.iter().cloned().map(Pending::Bamboo));
        batch.push(Pending::App(Box::new(app("other", 2))));
        batch.push(Pending::App(Box::new(app("my-app", 3))));
        let resource = crate::otlp::resource(&[("service.name".into(), "svc".into())]);
        let req = trace_request(&batch, &resource);
        assert_eq!(req.resource_spans.len(), 1);
        assert_eq!(req.resource_spans[0].resource.as_ref(), Some(&resource));
        let scopes: Vec<(&str, usize)> = req.resource_spans[0]
            .scope_spans
            .iter()
            .map(|ss| (ss.scope.as_ref().unwrap().name.as_str(), ss.spans.len()))
            .collect();
        assert_eq!(scopes, vec![("bamboo-otel", bamboo.len()), ("my-app", 2), ("other", 1)]);
    }
}
