//! The OpenTelemetry side: mapping translator output onto the SDK's data types and shipping it over OTLP (or to the
//! console). The only module that knows the SDK.
//!
//! Spans: the translator already produces finished spans with deterministic ids, so they are handed to the OTLP
//! `SpanExporter` as `SpanData` directly (no `Tracer`, which would mint its own ids), batched by the worker per
//! `OTEL_BSP_*`. Metrics: recorded on SDK instruments (explicit semconv buckets) and collected through a
//! `ManualReader` every `OTEL_METRIC_EXPORT_INTERVAL`, exported by the OTLP `MetricExporter`. Both exporters retry
//! with backoff per the OTLP spec (retryable codes, `Retry-After`) before reporting a failure.

mod app_spans;
mod cardinality;
mod shipper;
mod worker;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _, UpDownCounter};
use opentelemetry::trace::{SpanContext, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue as OtelKv, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind as SdkInstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use crate::config::{BuildError, CaFile, ExporterKind, Protocol, Settings};
use crate::semconv::{Instrument, InstrumentKind};
use crate::translate::{AttrValue, KeyValue, MetricUpdate, MetricValue, SpanKind, SpanRecord, SpanStatus};

pub(crate) use app_spans::{tracer_provider, ForwardToWorker};
pub(crate) use cardinality::CardinalityGuard;
pub(crate) use worker::{spawn, Control, WorkerHandle};

/// Where spans go.
// One per bridge, never moved in a hot path: the size difference is irrelevant.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SpanSink {
    Otlp(opentelemetry_otlp::SpanExporter),
    Console,
    None,
}

/// Where metrics go.
#[allow(clippy::large_enum_variant)]
pub(crate) enum MetricSink {
    Otlp(opentelemetry_otlp::MetricExporter),
    Console,
    None,
}

fn pipeline_error(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::Pipeline(format!("{what}: {e}"))
}

/// Builds an OTLP exporter of type `$exporter` for `$protocol`, with an explicit endpoint and headers when the
/// builder gave them (otherwise the exporter reads `OTEL_EXPORTER_OTLP_*` itself). The span and metric builders
/// share no trait for choosing a transport, hence a macro.
macro_rules! otlp_exporter {
    ($exporter:ty, $what:literal, $protocol:expr, $endpoint:expr, $headers:expr, $gzip:expr, $ca:expr, $timeout:expr) => {{
        #[allow(unused_imports)]
        use opentelemetry_otlp::WithExportConfig;
        match $protocol {
            #[cfg(feature = "grpc")]
            Protocol::Grpc => {
                let mut b = <$exporter>::builder().with_tonic();
                if $gzip {
                    use opentelemetry_otlp::WithTonicConfig;
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                if let Some(e) = $endpoint {
                    b = b.with_endpoint(e.clone());
                }
                if let Some(ca) = $ca {
                    b = with_grpc_ca(b, ca)?;
                }
                with_grpc_headers(b, $headers)?.build().map_err(|e| pipeline_error(concat!("OTLP/gRPC ", $what), e))?
            }
            #[cfg(feature = "http")]
            p @ (Protocol::HttpProtobuf | Protocol::HttpJson) => {
                use opentelemetry_otlp::WithHttpConfig;
                let mut b = <$exporter>::builder().with_http().with_protocol(otlp_protocol(p));
                if $gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                if let Some(e) = $endpoint {
                    b = b.with_endpoint(e.clone());
                }
                if !$headers.is_empty() {
                    b = b.with_headers($headers.iter().cloned().collect());
                }
                if let Some(ca) = $ca {
                    b = b.with_http_client(http_client_trusting(ca, $timeout)?);
                }
                b.build().map_err(|e| pipeline_error(concat!("OTLP/HTTP ", $what), e))?
            }
            #[allow(unreachable_patterns)]
            other => return Err(not_compiled(other)),
        }
    }};
}

/// Builds the span sink. Must run inside a tokio runtime (tonic connects lazily on it).
pub(crate) fn span_sink(s: &Settings) -> Result<SpanSink, BuildError> {
    Ok(match s.traces {
        ExporterKind::None => SpanSink::None,
        ExporterKind::Console => SpanSink::Console,
        ExporterKind::Otlp => SpanSink::Otlp(otlp_exporter!(
            opentelemetry_otlp::SpanExporter,
            "span exporter",
            s.traces_protocol,
            &s.traces_endpoint,
            &s.headers,
            s.gzip,
            &s.traces_certificate,
            s.export_timeout
        )),
    })
}

/// Builds the metric sink. Must run inside a tokio runtime.
pub(crate) fn metric_sink(s: &Settings) -> Result<MetricSink, BuildError> {
    Ok(match s.metrics {
        ExporterKind::None => MetricSink::None,
        ExporterKind::Console => MetricSink::Console,
        ExporterKind::Otlp => MetricSink::Otlp(otlp_exporter!(
            opentelemetry_otlp::MetricExporter,
            "metric exporter",
            s.metrics_protocol,
            &s.metrics_endpoint,
            &s.headers,
            s.gzip,
            &s.metrics_certificate,
            s.export_timeout
        )),
    })
}

#[allow(dead_code)]
fn not_compiled(p: Protocol) -> BuildError {
    BuildError::Invalid {
        name: "protocol".into(),
        reason: format!("{p:?} is not compiled in: enable its Cargo feature"),
    }
}

#[cfg(feature = "http")]
fn otlp_protocol(p: Protocol) -> opentelemetry_otlp::Protocol {
    match p {
        Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        _ => opentelemetry_otlp::Protocol::HttpBinary,
    }
}

#[cfg(feature = "grpc")]
fn with_grpc_headers<B: opentelemetry_otlp::WithTonicConfig>(
    b: B,
    headers: &[(String, String)],
) -> Result<B, BuildError> {
    if headers.is_empty() {
        return Ok(b);
    }
    let mut map = opentelemetry_otlp::tonic_types::metadata::MetadataMap::new();
    for (k, v) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.as_bytes()).map_err(|_| BuildError::Invalid {
            name: "header".into(),
            reason: format!("{k:?} is not a valid gRPC metadata key"),
        })?;
        let value = v.parse().map_err(|_| BuildError::Invalid {
            name: "header".into(),
            reason: format!("the value of {k:?} is not valid (value hidden)"),
        })?;
        map.insert(key, value);
    }
    Ok(b.with_metadata(map))
}

/// Trusts only `ca` for TLS on a gRPC exporter.
#[cfg(feature = "grpc")]
fn with_grpc_ca<B: opentelemetry_otlp::WithTonicConfig>(b: B, ca: &CaFile) -> Result<B, BuildError> {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
    let pem = ca.read()?;
    Ok(b.with_tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))))
}

/// An HTTP client that trusts only `ca` (the OTLP HTTP exporter's own client trusts the system roots).
#[cfg(feature = "http")]
fn http_client_trusting(ca: &CaFile, timeout: Duration) -> Result<reqwest::Client, BuildError> {
    let pem = ca.read()?;
    let invalid = |e: reqwest::Error| BuildError::Invalid {
        name: ca.setting.clone(),
        reason: format!("{}: not a usable CA certificate: {e}", ca.path.display()),
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(invalid)?;
    reqwest::Client::builder().tls_certs_only(certs).timeout(timeout).build().map_err(invalid)
}

/// The resource every span and metric carries: `service.name` (the builder's, else `OTEL_SERVICE_NAME`, else
/// `bamboo-agent`), `service.instance.id` (configured, else a fresh UUID) and the configured attributes
/// (`OTEL_RESOURCE_ATTRIBUTES` and the builder's).
pub(crate) fn resource(s: &Settings) -> Resource {
    Resource::builder_empty()
        .with_attributes(s.resource_attributes().into_iter().map(|(k, v)| OtelKv::new(k, v)))
        .build()
}

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("bamboo-otel")
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(crate::semconv::SCHEMA_URL)
        .build()
}

fn otel_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(Cow::Borrowed(s)) => Value::from(*s),
        AttrValue::Str(Cow::Owned(s)) => Value::from(s.clone()),
        AttrValue::I64(i) => Value::I64(*i),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::F64(v) => Value::F64(*v),
    }
}

fn otel_attrs(attrs: &[KeyValue]) -> Vec<OtelKv> {
    attrs.iter().map(|kv| OtelKv::new(kv.key, otel_value(&kv.value))).collect()
}

/// `t` within what OTLP carries (unsigned nanoseconds since 1970, up to 2554): the SDK's conversion wraps beyond
/// it, and sends nothing meaningful before it. Events from a broken clock (year 9999, or a start pushed to the
/// year -262144 by a `latency_ms` near `u64::MAX`) are clamped, keeping start ≤ end.
fn otlp_time(t: chrono::DateTime<chrono::Utc>) -> SystemTime {
    let nanos = t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX });
    // i64 nanoseconds end in 2262, well inside u64's range: the clamp at 0 is the one that matters.
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

/// A translator span as the SDK's exportable `SpanData`, with our ids kept.
pub(crate) fn span_data(s: &SpanRecord, scope: &InstrumentationScope) -> SpanData {
    let trace_id = opentelemetry::trace::TraceId::from_bytes(s.trace_id.0);
    let span_id = opentelemetry::trace::SpanId::from_bytes(s.span_id.0);
    let mut events = SpanEvents::default();
    for e in &s.events {
        events.events.push(opentelemetry::trace::Event::new(e.name, otlp_time(e.time), otel_attrs(&e.attributes), 0));
    }
    SpanData {
        span_context: SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default()),
        parent_span_id: s
            .parent_span_id
            .map_or(opentelemetry::trace::SpanId::INVALID, |p| opentelemetry::trace::SpanId::from_bytes(p.0)),
        parent_span_is_remote: false,
        span_kind: match s.kind {
            SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
            SpanKind::Client => opentelemetry::trace::SpanKind::Client,
        },
        name: Cow::Owned(s.name.clone()),
        start_time: otlp_time(s.start),
        end_time: otlp_time(s.end),
        attributes: otel_attrs(&s.attributes),
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: match &s.status {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Error(msg) => Status::error(msg.clone()),
        },
        instrumentation_scope: scope.clone(),
    }
}

/// Data points in a collection (what "metric points exported" counts).
pub(crate) fn data_points(rm: &ResourceMetrics) -> u64 {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics as A, MetricData as D};
    fn n<T>(d: &D<T>) -> usize {
        match d {
            D::Gauge(g) => g.data_points().count(),
            D::Sum(s) => s.data_points().count(),
            D::Histogram(h) => h.data_points().count(),
            D::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    rm.scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            A::F64(d) => n(d),
            A::U64(d) => n(d),
            A::I64(d) => n(d),
        } as u64)
        .sum()
}

/// Attribute sets the OTel SDK keeps per instrument unless a view says otherwise (its overflow series aside).
const SDK_DEFAULT_CARDINALITY_LIMIT: usize = 2000;

/// Counter increments not yet handed to the SDK, summed per instrument and attribute set.
#[derive(Default)]
pub(crate) struct CounterBatch {
    sums: HashMap<(Instrument, Vec<KeyValue>), i64, crate::hash::Seeded>,
}

impl CounterBatch {
    /// Series held before the batch asks to be applied, so memory stays bounded under high cardinality.
    pub(crate) const MAX_SERIES: usize = 4096;

    fn add(&mut self, instrument: Instrument, attrs: Vec<KeyValue>, v: i64) {
        *self.sums.entry((instrument, attrs)).or_default() += v;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.sums.len() >= Self::MAX_SERIES
    }
}

enum Inst {
    Counter(Counter<u64>),
    FloatCounter(Counter<f64>),
    UpDown(UpDownCounter<i64>),
    Histogram(Histogram<f64>),
}

/// SDK instruments for every `semconv` metric, plus the reader that collects them on demand.
pub(crate) struct Metrics {
    provider: SdkMeterProvider,
    reader: Arc<ManualReader>,
    /// Indexed by `Instrument as usize` (the declaration order, which `Instrument::ALL` follows).
    instruments: Vec<Inst>,
}

/// Lets the worker keep a handle on the `ManualReader` the provider owns.
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: SdkInstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

impl Metrics {
    /// `cardinality_limit`: what the bridge's own guard admits per instrument; the SDK is given room for that
    /// many sets plus the overflow series, so it never folds anything silently itself.
    pub(crate) fn new(resource: Resource, temporality: Temporality, cardinality_limit: usize) -> Metrics {
        let reader = Arc::new(ManualReader::builder().with_temporality(temporality).build());
        let mut builder = SdkMeterProvider::builder().with_resource(resource).with_reader(SharedReader(reader.clone()));
        // The SDK's default already fits the default guard; only a larger one needs a view.
        if cardinality_limit + 1 > SDK_DEFAULT_CARDINALITY_LIMIT {
            let limit = cardinality_limit + 1;
            builder = builder.with_view(move |_: &opentelemetry_sdk::metrics::Instrument| {
                opentelemetry_sdk::metrics::Stream::builder().with_cardinality_limit(limit).build().ok()
            });
        }
        let provider = builder.build();
        let meter: Meter = provider.meter_with_scope(scope());
        let instruments = Instrument::ALL
            .iter()
            .map(|&i| {
                let d = i.def();
                let inst = match d.kind {
                    InstrumentKind::Counter => Inst::Counter(
                        meter.u64_counter(d.name).with_unit(d.unit).with_description(d.description).build(),
                    ),
                    InstrumentKind::FloatCounter => Inst::FloatCounter(
                        meter.f64_counter(d.name).with_unit(d.unit).with_description(d.description).build(),
                    ),
                    InstrumentKind::UpDownCounter => Inst::UpDown(
                        meter.i64_up_down_counter(d.name).with_unit(d.unit).with_description(d.description).build(),
                    ),
                    InstrumentKind::Histogram => Inst::Histogram(
                        meter
                            .f64_histogram(d.name)
                            .with_unit(d.unit)
                            .with_description(d.description)
                            .with_boundaries(d.buckets.to_vec())
                            .build(),
                    ),
                };
                debug_assert_eq!(i as usize, Instrument::ALL.iter().position(|x| *x == i).unwrap());
                inst
            })
            .collect();
        Metrics { provider, reader, instruments }
    }

    /// Records an update: histograms at once, counter increments summed in `batch` per attribute set (the SDK
    /// hashes the attributes on every call; a few thousand events usually touch a few dozen series).
    pub(crate) fn record(&self, u: MetricUpdate, batch: &mut CounterBatch) {
        match (&self.instruments[u.instrument as usize], u.value) {
            (Inst::Histogram(h), v) => h.record(v.as_f64(), &otel_attrs(&u.attributes)),
            // Amounts are rare (one per priced operation and token type) and must not be rounded to integers.
            (Inst::FloatCounter(c), v) => c.add(v.as_f64().max(0.0), &otel_attrs(&u.attributes)),
            (_, MetricValue::I64(v)) => batch.add(u.instrument, u.attributes, v),
            (_, v) => batch.add(u.instrument, u.attributes, v.as_f64() as i64),
        }
    }

    /// Hands the summed counter increments to the SDK; call before collecting.
    pub(crate) fn apply(&self, batch: &mut CounterBatch) {
        for ((instrument, attrs), v) in batch.sums.drain() {
            match &self.instruments[instrument as usize] {
                Inst::Counter(c) => c.add(v.max(0) as u64, &otel_attrs(&attrs)),
                Inst::UpDown(c) => c.add(v, &otel_attrs(&attrs)),
                Inst::Histogram(_) | Inst::FloatCounter(_) => {}
            }
        }
    }

    pub(crate) fn count(&self, instrument: Instrument, n: u64, attrs: &[(&'static str, &str)]) {
        if let Inst::Counter(c) = &self.instruments[instrument as usize] {
            let attrs: Vec<OtelKv> = attrs.iter().map(|(k, v)| OtelKv::new(*k, v.to_string())).collect();
            c.add(n, &attrs);
        }
    }

    pub(crate) fn collect(&self) -> Result<ResourceMetrics, String> {
        let mut rm = ResourceMetrics::default();
        self.reader.collect(&mut rm).map_err(|e| e.to_string())?;
        Ok(rm)
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId as Sid, TraceId as Tid};
    use crate::translate::{KeyValue, SpanRecord};

    #[test]
    fn span_data_keeps_ids_kind_times_status_and_attributes() {
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(1_700_000_000_123).unwrap();
        let rec = SpanRecord {
            trace_id: Tid::derive("t", "x"),
            span_id: Sid::derive("s", "x"),
            parent_span_id: Some(Sid::derive("p", "x")),
            name: "chat gpt-5".into(),
            kind: SpanKind::Client,
            start: t,
            end: t + chrono::Duration::milliseconds(1500),
            attributes: vec![KeyValue::new("a", 1i64), KeyValue::new("b", "x"), KeyValue::new("c", true)],
            events: vec![],
            status: SpanStatus::Error("boom".into()),
        };
        let d = span_data(&rec, &scope());
        assert_eq!(d.span_context.trace_id().to_bytes(), rec.trace_id.0);
        assert_eq!(d.span_context.span_id().to_bytes(), rec.span_id.0);
        assert_eq!(d.parent_span_id.to_bytes(), rec.parent_span_id.unwrap().0);
        assert_eq!(d.span_kind, opentelemetry::trace::SpanKind::Client);
        assert!(d.span_context.is_sampled());
        assert_eq!(d.end_time.duration_since(d.start_time).unwrap(), Duration::from_millis(1500));
        assert_eq!(d.status, Status::error("boom"));
        assert_eq!(d.attributes[0], OtelKv::new("a", 1i64));
        assert_eq!(d.attributes[2], OtelKv::new("c", true));
        let root = span_data(&SpanRecord { parent_span_id: None, kind: SpanKind::Internal, ..rec }, &scope());
        assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert_eq!(root.span_kind, opentelemetry::trace::SpanKind::Internal);
    }
}
