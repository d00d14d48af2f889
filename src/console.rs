//! Human-readable output with no collector: span trees and metric totals.
//!
//! [`MetricTotals`] aggregates metric updates the way a backend would (sums for counters, count/sum for
//! histograms, per attribute set); tests use it to check exact totals and the quickstart prints it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::ids::{SpanId, TraceId};
use crate::semconv::{self as sc, Instrument, InstrumentKind};
use crate::translate::{AttrValue, MetricUpdate, SpanRecord, SpanStatus};

/// Renders spans as one indented tree per trace, children ordered by start time.
pub fn render_tree(spans: &[SpanRecord]) -> String {
    let mut by_trace: BTreeMap<(chrono::DateTime<chrono::Utc>, TraceId), Vec<&SpanRecord>> = BTreeMap::new();
    let mut first_start: HashMap<TraceId, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for s in spans {
        let e = first_start.entry(s.trace_id).or_insert(s.start);
        *e = (*e).min(s.start);
    }
    for s in spans {
        by_trace.entry((first_start[&s.trace_id], s.trace_id)).or_default().push(s);
    }
    let mut out = String::new();
    for ((_, trace_id), mut members) in by_trace {
        members.sort_by_key(|s| (s.start, s.span_id));
        let ids: HashSet<SpanId> = members.iter().map(|s| s.span_id).collect();
        let mut children: HashMap<SpanId, Vec<&SpanRecord>> = HashMap::new();
        let mut roots = Vec::new();
        for s in &members {
            match s.parent_span_id {
                Some(p) if ids.contains(&p) && p != s.span_id => children.entry(p).or_default().push(s),
                _ => roots.push(*s),
            }
        }
        let _ = write!(out, "trace {trace_id}");
        if let Some(AttrValue::Str(t)) = members[0].attr(sc::BAMBOO_TRACE_ID) {
            let _ = write!(out, "  (bamboo trace id {t:?})");
        }
        out.push('\n');
        for (i, root) in roots.iter().enumerate() {
            let detached = root.parent_span_id.is_some();
            render_node(&mut out, root, &children, "", i + 1 == roots.len(), detached);
        }
        out.push('\n');
    }
    out
}

fn render_node(
    out: &mut String,
    span: &SpanRecord,
    children: &HashMap<SpanId, Vec<&SpanRecord>>,
    prefix: &str,
    last: bool,
    detached: bool,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = write!(out, "{prefix}{branch}{}  {}", span.name, format_duration(span.duration()));
    match &span.status {
        SpanStatus::Unset => {}
        SpanStatus::Error(msg) => {
            let first_line = msg.lines().next().unwrap_or("");
            let (short, cut) = crate::translate::genai::truncate_utf8(first_line, 60);
            let _ = write!(out, "  ERROR {short:?}{}", if cut || msg.len() > first_line.len() { "…" } else { "" });
        }
    }
    for (key, label) in [
        (sc::BAMBOO_SESSION_STATUS, "status"),
        (sc::BAMBOO_ROUND_STATUS, "status"),
        (sc::BAMBOO_FORWARD_STATUS, "status"),
        (sc::HTTP_RESPONSE_STATUS_CODE, "http"),
    ] {
        if let Some(v) = span.attr(key) {
            let _ = write!(out, "  {label}={v}");
        }
    }
    if let (Some(i), Some(o)) = (span.attr(sc::GEN_AI_USAGE_INPUT_TOKENS), span.attr(sc::GEN_AI_USAGE_OUTPUT_TOKENS)) {
        let _ = write!(out, "  tokens in={i} out={o}");
    }
    if span.is_incomplete() {
        out.push_str("  [incomplete]");
    }
    if detached {
        out.push_str("  (parent not in this output)");
    }
    out.push('\n');
    for ev in &span.events {
        let _ = writeln!(out, "{prefix}{}   • {} at {}", if last { " " } else { "│" }, ev.name, ev.time.to_rfc3339());
    }
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    if let Some(kids) = children.get(&span.span_id) {
        for (i, kid) in kids.iter().enumerate() {
            render_node(out, kid, children, &child_prefix, i + 1 == kids.len(), false);
        }
    }
}

/// `1.234s`, `3m05.2s`, `45ms`.
pub fn format_duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.3}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:04.1}s", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
    }
}

/// One aggregated series: counters and up-down counters keep `sum`; histograms keep `count` and `sum`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Series {
    pub count: u64,
    pub sum: f64,
}

/// A series' attributes, sorted `(key, value)` pairs.
pub type SeriesAttrs = Vec<(&'static str, String)>;

/// Metric updates aggregated per instrument and attribute set, as a backend would store them.
#[derive(Debug, Default, Clone)]
pub struct MetricTotals {
    /// Keyed by instrument name and the sorted `(key, value)` attributes.
    series: BTreeMap<(&'static str, SeriesAttrs), Series>,
    instruments: HashMap<&'static str, Instrument>,
}

impl MetricTotals {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, update: &MetricUpdate) {
        let name = update.instrument.name();
        self.instruments.insert(name, update.instrument);
        let mut attrs: SeriesAttrs = update.attributes.iter().map(|kv| (kv.key, kv.value.to_string())).collect();
        attrs.sort();
        let s = self.series.entry((name, attrs)).or_default();
        s.count += 1;
        s.sum += update.value.as_f64();
    }

    pub fn extend<'a>(&mut self, updates: impl IntoIterator<Item = &'a MetricUpdate>) {
        for u in updates {
            self.record(u);
        }
    }

    /// Totals over every series of `instrument` whose attributes include all of `filter` (`key=value` pairs).
    pub fn total(&self, instrument: Instrument, filter: &[(&str, &str)]) -> Series {
        let mut total = Series::default();
        for ((name, attrs), s) in &self.series {
            if *name != instrument.name() {
                continue;
            }
            if filter.iter().all(|(k, v)| attrs.iter().any(|(ak, av)| ak == k && av == v)) {
                total.count += s.count;
                total.sum += s.sum;
            }
        }
        total
    }

    /// Every series, as `(instrument name, [(key, value)…], series)`, sorted.
    pub fn series(&self) -> impl Iterator<Item = (&'static str, &[(&'static str, String)], Series)> + '_ {
        self.series.iter().map(|((n, a), s)| (*n, a.as_slice(), *s))
    }

    /// A table of every series: sums for counters, count/sum/mean for histograms.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut last = "";
        for ((name, attrs), s) in &self.series {
            if *name != last {
                let inst = self.instruments[name];
                let def = inst.def();
                let _ = writeln!(out, "{name} ({}, {})", kind_label(def.kind), def.unit);
                last = name;
            }
            let attrs = if attrs.is_empty() {
                "(no attributes)".to_owned()
            } else {
                attrs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            };
            match self.instruments[name].def().kind {
                InstrumentKind::Histogram => {
                    let _ = writeln!(
                        out,
                        "    {attrs}: count={} sum={} mean={}",
                        s.count,
                        trim(s.sum),
                        trim(s.sum / s.count.max(1) as f64)
                    );
                }
                _ => {
                    let _ = writeln!(out, "    {attrs}: {}", trim(s.sum));
                }
            }
        }
        out
    }
}

fn kind_label(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Counter => "counter",
        InstrumentKind::FloatCounter => "counter",
        InstrumentKind::UpDownCounter => "up-down counter",
        InstrumentKind::Histogram => "histogram",
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}
