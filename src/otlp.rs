//! Our records as the official generated OTLP types: attributes, the resource, the scope, spans. Shared by the
//! live pipeline (spans) and by [`crate::history`] (metrics in event time), sent by [`crate::wire`].

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue as PbKv};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, SpanFlags, Status};

use crate::translate::{AttrValue, KeyValue, SpanKind, SpanRecord, SpanStatus};

/// One attribute.
pub fn key_value(key: &str, value: &AttrValue) -> PbKv {
    let value = match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s.to_string()),
        AttrValue::I64(v) => any_value::Value::IntValue(*v),
        AttrValue::Bool(v) => any_value::Value::BoolValue(*v),
        AttrValue::F64(v) => any_value::Value::DoubleValue(*v),
    };
    PbKv { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..PbKv::default() }
}

fn key_values(attrs: &[KeyValue]) -> Vec<PbKv> {
    attrs.iter().map(|kv| key_value(kv.key, &kv.value)).collect()
}

/// The resource our data is sent under (`service.name`, `service.instance.id`, …).
pub fn resource(attributes: &[(String, String)]) -> Resource {
    Resource {
        attributes: attributes.iter().map(|(k, v)| key_value(k, &AttrValue::from(v.as_str()))).collect(),
        ..Resource::default()
    }
}

/// The scope Bamboo's spans and metrics are sent under.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "bamboo-otel".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..InstrumentationScope::default()
    }
}

/// `t` within what OTLP carries (unsigned nanoseconds since 1970). Events from a broken clock (year 9999, or a
/// start pushed to the year -262144 by a `latency_ms` near `u64::MAX`) are clamped, keeping start ≤ end.
pub fn unix_nanos(t: DateTime<Utc>) -> u64 {
    let nanos = t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX });
    // i64 nanoseconds end in 2262, well inside u64's range: the clamp at 0 is the one that matters.
    nanos.max(0) as u64
}

/// A translator span, its ids and times kept; sampled and local, as the SDK's exporter marks a span.
pub fn span(s: &SpanRecord) -> Span {
    Span {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        parent_span_id: s.parent_span_id.map_or_else(Vec::new, |p| p.0.to_vec()),
        flags: 0x01 | SpanFlags::ContextHasIsRemoteMask as u32,
        name: s.name.clone(),
        kind: match s.kind {
            SpanKind::Internal => span::SpanKind::Internal,
            SpanKind::Client => span::SpanKind::Client,
        } as i32,
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: key_values(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: unix_nanos(e.time),
                name: e.name.into(),
                attributes: key_values(&e.attributes),
                dropped_attributes_count: 0,
            })
            .collect(),
        status: Some(match &s.status {
            SpanStatus::Unset => Status::default(),
            SpanStatus::Error(message) => Status { code: status::StatusCode::Error as i32, message: message.clone() },
        }),
        ..Span::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};

    fn record() -> SpanRecord {
        let t = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_123).unwrap();
        SpanRecord {
            trace_id: TraceId::derive("t", "x"),
            span_id: SpanId::derive("s", "x"),
            parent_span_id: Some(SpanId::derive("p", "x")),
            name: "chat gpt-5".into(),
            kind: SpanKind::Client,
            start: t,
            end: t + chrono::Duration::milliseconds(1500),
            attributes: vec![KeyValue::new("a", 1i64), KeyValue::new("b", "x"), KeyValue::new("c", true)],
            events: vec![crate::translate::SpanEventRecord {
                name: "gen_ai.choice",
                time: t,
                attributes: vec![KeyValue::new("d", 2.5)],
            }],
            status: SpanStatus::Error("boom".into()),
        }
    }

    #[test]
    fn a_span_keeps_ids_kind_times_status_attributes_and_events() {
        let rec = record();
        let s = span(&rec);
        assert_eq!((s.trace_id.as_slice(), s.span_id.as_slice()), (&rec.trace_id.0[..], &rec.span_id.0[..]));
        assert_eq!(s.parent_span_id, rec.parent_span_id.unwrap().0.to_vec());
        assert_eq!(s.kind, span::SpanKind::Client as i32);
        assert_eq!(s.flags & 0xff, 0x01, "sampled");
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 1_500_000_000);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_123_000_000);
        let status = s.status.unwrap();
        assert_eq!((status.code, status.message.as_str()), (status::StatusCode::Error as i32, "boom"));
        assert_eq!(s.attributes[0], key_value("a", &AttrValue::I64(1)));
        assert_eq!(s.attributes[2].value.as_ref().unwrap().value, Some(any_value::Value::BoolValue(true)));
        assert_eq!(s.events[0].name, "gen_ai.choice");
        assert_eq!(s.events[0].attributes[0].value.as_ref().unwrap().value, Some(any_value::Value::DoubleValue(2.5)));
        let root =
            span(&SpanRecord { parent_span_id: None, kind: SpanKind::Internal, status: SpanStatus::Unset, ..rec });
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.kind, span::SpanKind::Internal as i32);
        assert_eq!(root.status.unwrap().code, status::StatusCode::Unset as i32);
    }

    #[test]
    fn times_outside_what_otlp_carries_are_clamped() {
        assert_eq!(unix_nanos(DateTime::<Utc>::MIN_UTC), 0);
        assert_eq!(unix_nanos(DateTime::<Utc>::MAX_UTC), i64::MAX as u64);
        assert_eq!(unix_nanos(DateTime::from_timestamp(1, 5).unwrap()), 1_000_000_005);
    }
}
