//! The live pipeline: translator output batched and shipped over our own OTLP wire ([`crate::wire`]), or to the
//! console.
//!
//! Spans: the translator already produces finished spans with deterministic ids and their own times, so they are
//! encoded as OTLP straight from its records ([`crate::otlp::span`]), batched by the worker per `OTEL_BSP_*`; the
//! application's own spans (from the SDK tracer provider) join the same batches. Metrics: recorded on SDK
//! instruments (explicit semconv buckets), collected through a `ManualReader` every `OTEL_METRIC_EXPORT_INTERVAL`
//! and sent as OTLP. The wire retries with backoff per the OTLP spec (retryable codes, `Retry-After`,
//! `RetryInfo`) before reporting a failure.

mod accounting;
#[cfg(feature = "otel")]
mod app_spans;
#[cfg(feature = "otel")]
mod cardinality;
#[cfg(feature = "otel")]
mod incidents;
#[cfg(feature = "otel")]
mod instruments;
#[cfg(feature = "otel")]
mod shipper;
#[cfg(feature = "otel")]
mod sinks;
#[cfg(feature = "otel")]
mod worker;

pub(crate) use accounting::Shared;
pub use accounting::ShutdownReport;
#[cfg(feature = "otel")]
pub(crate) use app_spans::{tracer_provider, ForwardToWorker};
#[cfg(feature = "otel")]
pub(crate) use cardinality::CardinalityGuard;
#[cfg(feature = "otel")]
pub(crate) use worker::{spawn, Control, WorkerHandle};
