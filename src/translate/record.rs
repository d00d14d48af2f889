//! What the translator produces: finished span records and metric updates, in plain data types that know nothing
//! of the OpenTelemetry SDK (the `export` module maps them onto it).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::{SpanId, TraceId};
use crate::semconv::Instrument;

/// An attribute value.
#[derive(Debug, Clone)]
pub enum AttrValue {
    /// Borrowed for the fixed vocabulary (operation names, statuses, reasons): no allocation per use.
    Str(Cow<'static, str>),
    I64(i64),
    Bool(bool),
    /// Only for amounts (a cost in USD); never a metric attribute.
    F64(f64),
}

// By bit pattern, so an attribute set can key a map: two costs are the same attribute only if bit-identical.
impl PartialEq for AttrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AttrValue::Str(a), AttrValue::Str(b)) => a == b,
            (AttrValue::I64(a), AttrValue::I64(b)) => a == b,
            (AttrValue::Bool(a), AttrValue::Bool(b)) => a == b,
            (AttrValue::F64(a), AttrValue::F64(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}
impl Eq for AttrValue {}
impl std::hash::Hash for AttrValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            AttrValue::Str(s) => s.hash(state),
            AttrValue::I64(v) => v.hash(state),
            AttrValue::Bool(v) => v.hash(state),
            AttrValue::F64(v) => v.to_bits().hash(state),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::I64(v) => write!(f, "{v}"),
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::F64(v) => write!(f, "{v}"),
        }
    }
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::I64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::F64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(Cow::Owned(s.to_owned()))
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(Cow::Owned(s))
    }
}
impl From<&String> for AttrValue {
    fn from(s: &String) -> Self {
        AttrValue::Str(Cow::Owned(s.clone()))
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::I64(v)
    }
}
impl From<u64> for AttrValue {
    /// Saturates at `i64::MAX`: OpenTelemetry integers are signed.
    fn from(v: u64) -> Self {
        AttrValue::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for AttrValue {
    fn from(v: u32) -> Self {
        AttrValue::I64(i64::from(v))
    }
}
impl From<u16> for AttrValue {
    fn from(v: u16) -> Self {
        AttrValue::I64(i64::from(v))
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::F64(v)
    }
}
impl From<Cow<'static, str>> for AttrValue {
    fn from(s: Cow<'static, str>) -> Self {
        AttrValue::Str(s)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

/// One attribute. Keys are the `semconv` constants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyValue {
    pub key: &'static str,
    pub value: AttrValue,
}

impl KeyValue {
    /// An attribute whose value is part of the fixed vocabulary: borrowed, no allocation.
    pub fn fixed(key: &'static str, value: &'static str) -> Self {
        KeyValue { key, value: AttrValue::Str(Cow::Borrowed(value)) }
    }

    pub fn new(key: &'static str, value: impl Into<AttrValue>) -> Self {
        KeyValue { key, value: value.into() }
    }
}

/// Looks an attribute up by key.
pub fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    /// An error, with its description (error texts truncated to the configured length).
    Error(String),
}

/// A timestamped event on a span (a session paused for the user, resumed, …).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEventRecord {
    pub name: &'static str,
    pub time: DateTime<Utc>,
    pub attributes: Vec<KeyValue>,
}

/// A finished span, ready for export.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<SpanEventRecord>,
    pub status: SpanStatus,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find_attr(&self.attributes, key)
    }

    /// True when the span lacks its start or its completion (`bamboo.span.incomplete`).
    pub fn is_incomplete(&self) -> bool {
        self.attr(crate::semconv::BAMBOO_SPAN_INCOMPLETE).and_then(AttrValue::as_bool).unwrap_or(false)
    }

    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }
}

/// A metric measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// Counter increment.
    U64(u64),
    /// Up-down counter change.
    I64(i64),
    /// Histogram observation.
    F64(f64),
}

impl MetricValue {
    pub fn as_f64(self) -> f64 {
        match self {
            MetricValue::U64(v) => v as f64,
            MetricValue::I64(v) => v as f64,
            MetricValue::F64(v) => v,
        }
    }
}

/// One measurement on one instrument. Attribute values are low-cardinality (never session, round or request ids).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricUpdate {
    pub instrument: Instrument,
    pub value: MetricValue,
    pub attributes: Vec<KeyValue>,
    /// The span this measurement describes (histograms of durations, tokens and cost): what an exemplar points
    /// to. The ids, not attributes: they never split a series.
    pub span: Option<SpanRef>,
}

/// The ids of one span, for an exemplar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl MetricUpdate {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find_attr(&self.attributes, key)
    }
}

/// The translator's output buffer. Callers drain it after each call (or reuse it: `clear()` keeps capacity).
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub spans: Vec<SpanRecord>,
    pub metrics: Vec<MetricUpdate>,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.spans.clear();
        self.metrics.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.metrics.is_empty()
    }

    pub(crate) fn metric(&mut self, instrument: Instrument, value: MetricValue, attributes: Vec<KeyValue>) {
        self.metrics.push(MetricUpdate { instrument, value, attributes, span: None });
    }

    /// A measurement of one span (a histogram point an exemplar can lead back from).
    pub(crate) fn measure(&mut self, span: SpanRef, instrument: Instrument, value: f64, attributes: Vec<KeyValue>) {
        self.metrics.push(MetricUpdate { instrument, value: MetricValue::F64(value), attributes, span: Some(span) });
    }

    pub(crate) fn count(&mut self, instrument: Instrument, n: u64, attributes: Vec<KeyValue>) {
        self.metric(instrument, MetricValue::U64(n), attributes);
    }
}
