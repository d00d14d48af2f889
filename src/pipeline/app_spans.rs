//! The application's own spans (from `tracing` or the OTel `Tracer` API) sent through the bridge's pipeline.
//!
//! The bridge's tracer provider has one span processor, [`ForwardToWorker`], which hands each finished span to the
//! worker over a bounded queue: the same exporter, resource, batching and outage handling as Bamboo's spans, and
//! the same never-block rule (a full queue drops the span and counts it).

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracerProvider, Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::accounting::Shared;
use crate::config::Sampler;

/// Hands finished application spans to the worker without waiting.
#[derive(Debug)]
pub(crate) struct ForwardToWorker {
    pub tx: SyncSender<SpanData>,
    pub shared: Arc<Shared>,
}

impl SpanProcessor for ForwardToWorker {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            // Full queue, or the bridge has shut down: either way the span is lost, and said so.
            self.shared.app_spans_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A tracer provider feeding the worker, with the bridge's resource. Its sampler is parent-based over the same
/// trace-id ratio as Bamboo's spans (the SDK's `TraceIdRatioBased` uses the same low-63-bit rule), so an
/// application span inside a sampled session's trace is kept with it.
pub(crate) fn tracer_provider(processor: ForwardToWorker, resource: Resource, sampler: Sampler) -> SdkTracerProvider {
    let root = match sampler {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
    };
    SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(SdkSampler::ParentBased(Box::new(root)))
        .with_span_processor(processor)
        .build()
}
