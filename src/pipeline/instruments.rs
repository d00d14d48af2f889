//! The SDK's metric instruments, one per `semconv` instrument, and the reader that collects them when the
//! worker asks; the resource and scope they are reported under.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _, UpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue as OtelKv, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind as SdkInstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::Resource;

use crate::config::Settings;
use crate::semconv::{Instrument, InstrumentKind};
use crate::translate::{AttrValue, KeyValue, MetricUpdate, MetricValue};

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
