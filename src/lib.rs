//! # bamboo-otel
//!
//! Ships the metrics events of the [Bamboo](https://crates.io/crates/bamboo-engine) agent framework to
//! OpenTelemetry backends: every session, LLM round, tool call and forwarded upstream request becomes a span
//! following the GenAI semantic conventions, plus token and latency metrics.
//!
//! - [`events`]: the wire model (serde only, always compiled).
//! - [`translate`]: the pure translator from events to span records and metric updates.
//! - [`console`]: prints span trees and metric totals, with no collector.
//! - [`semconv`]: every attribute and metric name.
//! - [`ids`]: deterministic trace and span ids.
//! - [`history`]: metrics in windows of event time, sent over OTLP with exemplars or written as OpenMetrics.
//! - `otlp` and `wire` (feature `otel`): our records as OTLP protobuf, and the client that sends them (gRPC,
//!   HTTP/protobuf, HTTP/JSON; retries, `Retry-After`, `RetryInfo`, partial success).
//! - [`Bridge`]: the public handle over the live pipeline (queue, worker, batching, export, accounting).
//! - [`redact`]: attribute rules, allowlist and span hook applied before export.
//! - `bamboo` (feature `bamboo`): `OtelStorage`, a tee inside a Bamboo application's `MetricsStorage`.

#[cfg(feature = "bamboo")]
pub mod bamboo;
pub mod bridge;
pub mod config;
pub mod console;
pub mod demo;
pub mod events;
mod hash;
pub mod history;
pub mod ids;
#[cfg(feature = "otel")]
pub mod otlp;
mod pipeline;
pub mod redact;
pub mod semconv;
#[cfg(feature = "sources")]
pub mod sources;
pub mod translate;
#[cfg(feature = "otel")]
pub mod wire;

/// The OpenTelemetry crates this one is built on, so callers name the same versions.
#[cfg(feature = "otel")]
pub use {opentelemetry, opentelemetry_sdk, tracing_opentelemetry};

pub use bridge::{Bridge, BridgeBuilder, ShutdownReport};
pub use config::{BuildError, ExporterKind, Protocol, Sampler};
pub use events::{ChatEvent, EventMeta, ForwardEvent, MetricsEvent, SystemEvent};
pub use translate::{Output, TranslateConfig, Translator};
