//! What a follower keeps of its metric windows in its checkpoint: the windows not yet shipped and where each
//! shipped series stands. Restored after a restart, a window is neither shipped twice nor lost, and each series
//! carries on from its totals (no second reset point).
//!
//! Plain data (names and strings, not the crate's own types) so a checkpoint reads as what it holds and an
//! unknown name (a checkpoint from another version) is an error naming it, not a panic.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::otlp::{Running, Totals};
use super::{Delta, Exemplar, Series, Windows};
use crate::ids::{SpanId, TraceId};
use crate::semconv::Instrument;
use crate::translate::{AttrValue, KeyValue, SpanRef};

/// The windows a follower has not shipped, and its running totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The `service.instance.id` the series were shipped under: they continue under it after a restart (a new
    /// one would start new series, and their carried totals would count twice in a sum).
    #[serde(default)]
    pub service_instance_id: Option<String>,
    pub window_ms: i64,
    pub pending: Vec<SavedSeries>,
    pub running: Vec<SavedTotals>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSeries {
    pub instrument: String,
    pub attributes: Vec<(String, SavedValue)>,
    pub first_ms: i64,
    /// (window index, its changes).
    pub windows: Vec<(i64, SavedDelta)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedDelta {
    pub sum: f64,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<u64>,
    /// (bucket, value, time in ms, trace id, span id), hex ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemplars: Vec<(u16, f64, i64, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTotals {
    pub instrument: String,
    pub attributes: Vec<(String, SavedValue)>,
    pub start_ms: i64,
    pub sum: f64,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SavedValue {
    Str(String),
    Bool(bool),
    I64(i64),
    F64(f64),
}

impl Saved {
    /// The state of `pending` and `running`.
    pub fn of(pending: &Windows, running: &Running) -> Saved {
        let mut out =
            Saved { service_instance_id: None, window_ms: pending.window_ms, pending: Vec::new(), running: Vec::new() };
        for ((instrument, attributes), s) in &pending.series {
            out.pending.push(SavedSeries {
                instrument: instrument.name().to_owned(),
                attributes: attrs_out(attributes),
                first_ms: s.first_ms,
                windows: s.windows.iter().map(|(w, d)| (*w, delta_out(d))).collect(),
            });
        }
        for ((instrument, attributes), t) in &running.series {
            out.running.push(SavedTotals {
                instrument: instrument.name().to_owned(),
                attributes: attrs_out(attributes),
                start_ms: t.start.timestamp_millis(),
                sum: t.sum,
                count: t.count,
                buckets: t.buckets.clone(),
            });
        }
        // A stable order, so an unchanged state writes the same file.
        let order =
            |instrument: &str, attributes: &[(String, SavedValue)]| (instrument.to_owned(), format!("{attributes:?}"));
        out.pending.sort_by_cached_key(|s| order(&s.instrument, &s.attributes));
        out.running.sort_by_cached_key(|t| order(&t.instrument, &t.attributes));
        out
    }

    /// The windows and running totals back, for a follower with windows of `window_ms`. An error names what
    /// cannot be read (another window length, an instrument this version does not have, a bad id).
    pub fn restore(self, window_ms: i64) -> Result<(Windows, Running), String> {
        if self.window_ms != window_ms && !(self.pending.is_empty() && self.running.is_empty()) {
            return Err(format!(
                "the checkpoint's metric windows are {} ms, this run's {window_ms} ms: keep --window as it was",
                self.window_ms
            ));
        }
        let mut windows = Windows { window_ms, series: Default::default(), stamp_by_ms: None };
        for s in self.pending {
            let key = (instrument(&s.instrument)?, attrs_in(s.attributes));
            let mut w = BTreeMap::new();
            for (i, d) in s.windows {
                w.insert(i, delta_in(d)?);
            }
            windows.series.insert(key, Series { first_ms: s.first_ms, windows: w });
        }
        let mut running = Running::default();
        for t in self.running {
            let key = (instrument(&t.instrument)?, attrs_in(t.attributes));
            let start = chrono::DateTime::from_timestamp_millis(t.start_ms).ok_or("a start time out of range")?;
            running.series.insert(key, Totals { start, sum: t.sum, count: t.count, buckets: t.buckets });
        }
        Ok((windows, running))
    }
}

fn instrument(name: &str) -> Result<Instrument, String> {
    Instrument::ALL
        .iter()
        .copied()
        .find(|i| i.name() == name)
        .ok_or_else(|| format!("the checkpoint names metric {name:?}, which this version does not have"))
}

fn attrs_out(attributes: &[KeyValue]) -> Vec<(String, SavedValue)> {
    attributes
        .iter()
        .map(|kv| {
            let v = match &kv.value {
                AttrValue::Str(s) => SavedValue::Str(s.to_string()),
                AttrValue::Bool(b) => SavedValue::Bool(*b),
                AttrValue::I64(i) => SavedValue::I64(*i),
                AttrValue::F64(f) => SavedValue::F64(*f),
            };
            (kv.key.to_owned(), v)
        })
        .collect()
}

fn attrs_in(attributes: Vec<(String, SavedValue)>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                SavedValue::Str(s) => AttrValue::from(s),
                SavedValue::Bool(b) => AttrValue::Bool(b),
                SavedValue::I64(i) => AttrValue::I64(i),
                SavedValue::F64(f) => AttrValue::F64(f),
            };
            KeyValue { key: interned(&k), value }
        })
        .collect()
}

/// Attribute keys are `&'static str` (the crate's fixed vocabulary); a key read back is leaked once per distinct
/// key and process, a few dozen at most.
fn interned(key: &str) -> &'static str {
    static KEYS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = keys.get(key) {
        return k;
    }
    let k: &'static str = Box::leak(key.to_owned().into_boxed_str());
    keys.insert(k);
    k
}

fn delta_out(d: &Delta) -> SavedDelta {
    SavedDelta {
        sum: d.sum,
        count: d.count,
        buckets: d.buckets.clone(),
        exemplars: d
            .exemplars
            .iter()
            .map(|(i, e)| {
                (*i, e.value, e.at.timestamp_millis(), e.span.trace_id.to_string(), e.span.span_id.to_string())
            })
            .collect(),
    }
}

fn delta_in(d: SavedDelta) -> Result<Delta, String> {
    let mut exemplars = Vec::with_capacity(d.exemplars.len());
    for (i, value, at_ms, trace, span) in d.exemplars {
        let trace_id = TraceId::parse_w3c(&trace).ok_or_else(|| format!("exemplar trace id {trace:?}"))?;
        let span_id = u64::from_str_radix(&span, 16)
            .ok()
            .filter(|_| span.len() == 16)
            .map(|v| SpanId(v.to_be_bytes()))
            .ok_or_else(|| format!("exemplar span id {span:?}"))?;
        let at = chrono::DateTime::from_timestamp_millis(at_ms).ok_or("an exemplar time out of range")?;
        exemplars.push((i, Exemplar { value, at, span: SpanRef { trace_id, span_id } }));
    }
    Ok(Delta { sum: d.sum, count: d.count, buckets: d.buckets, exemplars })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{MetricUpdate, MetricValue};
    use chrono::TimeZone;

    #[test]
    fn pending_windows_and_running_totals_come_back_as_they_were() {
        let mut w = Windows::new(std::time::Duration::from_secs(60));
        let at = |s: i64| chrono::Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
        let span = SpanRef { trace_id: TraceId::derive("t", "x"), span_id: SpanId::derive("s", "x") };
        let latency = |v: f64| MetricUpdate {
            instrument: Instrument::OperationDuration,
            value: MetricValue::F64(v),
            attributes: vec![KeyValue::fixed("gen_ai.operation.name", "chat"), KeyValue::new("x.n", 3i64)],
            span: Some(span),
        };
        w.add(at(0), &latency(1.5));
        w.add(at(70), &latency(0.2));
        w.add(at(130), &latency(3.0));
        let shipped = w.take_until(at(120));
        let mut running = Running::default();
        super::super::otlp::encode(&shipped, &[], super::super::otlp::Temporality::Cumulative, 100, &mut running)
            .for_each(drop);
        // What a failed shipment counts is what encoding makes: the open window, no second reset point.
        let encoded = |w: &Windows, r: &Running| -> usize {
            super::super::otlp::encode(w, &[], super::super::otlp::Temporality::Cumulative, 100, &mut r.clone())
                .map(|q| q.points)
                .sum()
        };
        assert_eq!(running.points_of(&w, super::super::otlp::Temporality::Cumulative), encoded(&w, &running));
        assert_eq!(Running::default().points_of(&w, super::super::otlp::Temporality::Cumulative), 2);
        let saved = Saved::of(&w, &running);
        let json = serde_json::to_string(&saved).unwrap();
        let back: Saved = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
        let (w2, r2) = back.restore(60_000).unwrap();
        assert_eq!(Saved::of(&w2, &r2), saved);
        assert_eq!(w2.points(), 1);
        assert_eq!(r2.len(), 1);
        assert!(Saved::of(&w2, &r2).clone().restore(30_000).is_err(), "another window length is refused");
    }
}
