//! Metrics on the events' own timeline: history replayed or imported shows when things happened, not when the
//! import ran.
//!
//! Each metric update is stamped with the time of the event that caused it and summed per series into windows
//! of event time (default [`DEFAULT_WINDOW`]). Every window in which a series changed becomes one point of it,
//! stamped at the window's end. Two ways out:
//! - [`otlp`]: OTLP requests whose points carry those times (cumulative from the series' first event, or delta
//!   per window) and, on histograms, exemplars of the spans measured in the window; [`crate::wire`] sends them.
//!   For backends that take old samples (VictoriaMetrics, Mimir, a Prometheus with an out-of-order window).
//! - [`openmetrics`]: OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`, for a Prometheus
//!   whose configuration must not change.
//!
//! ```
//! use bamboo_otel::history::Windows;
//! use bamboo_otel::semconv::Instrument;
//! use bamboo_otel::translate::{KeyValue, MetricUpdate, MetricValue};
//! use chrono::{TimeZone, Utc};
//!
//! let mut w = Windows::new(std::time::Duration::from_secs(60));
//! let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
//! let rounds = |n| MetricUpdate { instrument: Instrument::Rounds, value: MetricValue::U64(n), attributes: vec![KeyValue::fixed("bamboo.round.status", "success")], span: None };
//! w.add(at(10), &rounds(2));
//! w.add(at(200), &rounds(1));
//! let mut text = Vec::new();
//! w.write_openmetrics(&mut text, "agent").unwrap();
//! let text = String::from_utf8(text).unwrap();
//! assert!(text.contains("bamboo_rounds_total{bamboo_round_status=\"success\",job=\"agent\",service_name=\"agent\"} 2 1700000040\n"));
//! assert!(text.contains("} 3 1700000220\n"));
//! ```

pub mod openmetrics;
#[cfg(feature = "otel")]
pub mod otlp;
#[cfg(feature = "otel")]
pub mod saved;
#[cfg(any(feature = "http", feature = "grpc"))]
pub mod ship;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::semconv::{Instrument, InstrumentKind};
use crate::translate::{KeyValue, MetricUpdate, MetricValue, SpanRef};

/// The default window of event time.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// One series' changes within one window.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub sum: f64,
    pub count: u64,
    /// Histograms: observations per bucket (the last one is +Inf); empty for counters.
    pub buckets: Vec<u64>,
    /// Histograms: at most one exemplar per bucket, the first measurement of a span that fell in it, as (bucket
    /// index, exemplar) in bucket order. Sparse: a window has one or two, a histogram a dozen buckets.
    pub exemplars: Vec<(u16, Exemplar)>,
}

/// The change a reset point carries: none. Shared by the OTLP and OpenMetrics writers.
static NO_CHANGE: Delta = Delta { sum: 0.0, count: 0, buckets: Vec::new(), exemplars: Vec::new() };

impl Delta {
    /// Keeps `e` for bucket `i` unless the bucket has one.
    fn exemplar(&mut self, i: u16, e: Exemplar) {
        if let Err(at) = self.exemplars.binary_search_by_key(&i, |x| x.0) {
            self.exemplars.insert(at, (i, e));
        }
    }

    /// Adds `other`, a change of the same series in the same window.
    fn merge(&mut self, other: Delta) {
        self.sum += other.sum;
        self.count += other.count;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        self.buckets.iter_mut().zip(&other.buckets).for_each(|(a, b)| *a += b);
        for (i, e) in other.exemplars {
            self.exemplar(i, e);
        }
    }
}

/// A measurement that leads back to its span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    pub value: f64,
    pub at: DateTime<Utc>,
    pub span: SpanRef,
}

#[derive(Debug, Default)]
struct Series {
    /// The time of the series' first event, in ms: where a cumulative series starts.
    first_ms: i64,
    windows: BTreeMap<i64, Delta>,
}

/// One series and its windows, in time order, as [`Windows::series`] hands them out.
pub struct SeriesView<'a> {
    pub instrument: Instrument,
    pub attributes: &'a [KeyValue],
    /// The series' first event.
    pub first: DateTime<Utc>,
    /// (window start, window end, the changes within), oldest first.
    pub windows: Vec<(DateTime<Utc>, DateTime<Utc>, &'a Delta)>,
}

/// Per-series deltas by window, in event time. Memory: one entry per series and window with a change.
#[derive(Debug)]
pub struct Windows {
    window_ms: i64,
    series: HashMap<(Instrument, Vec<KeyValue>), Series>,
    /// Points are stamped no later than this (ms): windows shipped before they end (see [`Self::stamp_by`]).
    stamp_by_ms: Option<i64>,
}

impl Windows {
    pub fn new(window: Duration) -> Windows {
        Windows { window_ms: (window.as_millis() as i64).max(1), series: HashMap::new(), stamp_by_ms: None }
    }

    /// Adds one update that happened at `at`.
    pub fn add(&mut self, at: DateTime<Utc>, u: &MetricUpdate) {
        let def = u.instrument.def();
        let ms = at.timestamp_millis();
        let series = self
            .series
            .entry((u.instrument, u.attributes.clone()))
            .or_insert_with(|| Series { first_ms: ms, windows: BTreeMap::new() });
        series.first_ms = series.first_ms.min(ms);
        let d = series.windows.entry(ms.div_euclid(self.window_ms)).or_insert_with(|| Delta {
            buckets: if def.kind == InstrumentKind::Histogram { vec![0; def.buckets.len() + 1] } else { Vec::new() },
            ..Delta::default()
        });
        let v = match u.value {
            MetricValue::U64(v) => v as f64,
            MetricValue::I64(v) => v as f64,
            MetricValue::F64(v) => v,
        };
        d.sum += v;
        d.count += 1;
        if def.kind == InstrumentKind::Histogram {
            let i = def.buckets.iter().position(|b| v <= *b).unwrap_or(def.buckets.len());
            d.buckets[i] += 1;
            if let Some(span) = u.span {
                d.exemplar(i as u16, Exemplar { value: v, at, span });
            }
        }
    }

    /// How many windows with a change there are, over all series (for a histogram, its buckets, sum and count
    /// together). Cumulative output adds one reset point per series ([`otlp`], [`openmetrics`]).
    pub fn points(&self) -> usize {
        self.series.values().map(|s| s.windows.len()).sum()
    }

    /// How many distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms as u64)
    }

    /// Every series with its windows, in instrument order, then by attributes (a stable order for output).
    pub fn series(&self) -> Vec<SeriesView<'_>> {
        let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut all: Vec<SeriesView<'_>> = self
            .series
            .iter()
            .map(|((instrument, attributes), s)| SeriesView {
                instrument: *instrument,
                attributes,
                first: at(s.first_ms),
                windows: s
                    .windows
                    .iter()
                    .map(|(w, d)| {
                        // Never at or before the series' first event, where its reset point is.
                        let by = self.stamp_by_ms.map_or(i64::MAX, |b| b.max(s.first_ms + 1));
                        let end = ((w + 1) * self.window_ms).min(by);
                        (at(w * self.window_ms), at(end), d)
                    })
                    .collect(),
            })
            .collect();
        let order = |i: Instrument| Instrument::ALL.iter().position(|x| *x == i).expect("every instrument is listed");
        all.sort_by_cached_key(|s| {
            (order(s.instrument), s.attributes.iter().map(|kv| (kv.key, kv.value.to_string())).collect::<Vec<_>>())
        });
        all
    }

    /// Moves out every window that ends at or before `end`: a follower ships those and keeps the rest open.
    pub fn take_until(&mut self, end: DateTime<Utc>) -> Windows {
        let limit = end.timestamp_millis().div_euclid(self.window_ms);
        let mut closed = Windows { window_ms: self.window_ms, series: HashMap::new(), stamp_by_ms: None };
        for (key, s) in self.series.iter_mut() {
            // Window w ends at (w + 1) * window_ms <= end exactly when w < limit.
            let open = s.windows.split_off(&limit);
            let done = std::mem::replace(&mut s.windows, open);
            if !done.is_empty() {
                closed.series.insert(key.clone(), Series { first_ms: s.first_ms, windows: done });
            }
        }
        self.series.retain(|_, s| !s.windows.is_empty());
        closed
    }

    /// Stamps the points of windows that end after `t` at `t` instead: a follower stopping with a checkpoint ships
    /// its open windows as they stand at `t`, and the rest of each window, after a restart, goes at the window's
    /// end (a later time), so no time holds two values. A series' windows that end after `t` are merged into its
    /// first such window: stamped at one time, they must be one point.
    pub fn stamp_by(&mut self, t: DateTime<Utc>) {
        let by = t.timestamp_millis();
        self.stamp_by_ms = Some(by);
        // Window w ends at or after `by` exactly when w >= (by - 1).div_euclid(window_ms): one ending at `by`
        // joins them, or its point and theirs would share that time.
        let first_open = (by - 1).div_euclid(self.window_ms);
        for s in self.series.values_mut() {
            let mut open = s.windows.split_off(&first_open).into_iter();
            if let Some((w, mut d)) = open.next() {
                open.for_each(|(_, later)| d.merge(later));
                s.windows.insert(w, d);
            }
        }
    }

    /// Puts windows taken out with [`Self::take_until`] back (their shipment failed; they go again later).
    pub fn put_back(&mut self, taken: Windows) {
        for (key, s) in taken.series {
            let mine =
                self.series.entry(key).or_insert_with(|| Series { first_ms: s.first_ms, windows: BTreeMap::new() });
            mine.first_ms = mine.first_ms.min(s.first_ms);
            for (w, d) in s.windows {
                let slot = mine.windows.entry(w).or_default();
                slot.merge(d);
            }
        }
    }

    /// Writes every series as OpenMetrics text (see [`openmetrics::write`]).
    pub fn write_openmetrics(&self, out: &mut impl std::io::Write, service: &str) -> std::io::Result<()> {
        openmetrics::write(self, out, service)
    }
}

/// Runs events through a translator of its own on the events' clock and puts every metric update into
/// [`Windows`] at the time of the event that caused it (updates of spans emitted at the end, still open, at the
/// last event's time). Redaction rules apply to metric attributes as on export.
pub struct Recorder {
    translator: crate::translate::Translator,
    out: crate::translate::Output,
    windows: Windows,
    redact: Option<crate::redact::Redactor>,
    last: Option<DateTime<Utc>>,
    /// Updates of untimed events (system events) before the first timed one: they take its time.
    untimed: Vec<MetricUpdate>,
    /// The bridge's cap on attribute sets per metric, folded and counted as on a live export.
    #[cfg(feature = "otel")]
    guard: Option<crate::pipeline::CardinalityGuard>,
}

impl Recorder {
    pub fn new(mut cfg: crate::translate::TranslateConfig, window: Duration) -> Recorder {
        cfg.clock = crate::translate::TtlClock::EventTime;
        Recorder {
            translator: crate::translate::Translator::new(cfg),
            out: crate::translate::Output::new(),
            windows: Windows::new(window),
            redact: None,
            last: None,
            untimed: Vec::new(),
            #[cfg(feature = "otel")]
            guard: None,
        }
    }

    /// At most `limit` attribute sets per metric; beyond it measurements fold into `otel.metric.overflow=true`
    /// and are counted in `bamboo_otel.metric.overflow{metric}`, as the bridge does live.
    #[cfg(feature = "otel")]
    pub fn with_cardinality_limit(mut self, limit: usize) -> Recorder {
        self.guard = Some(crate::pipeline::CardinalityGuard::new(limit));
        self
    }

    pub fn with_redactor(mut self, redact: crate::redact::Redactor) -> Recorder {
        self.redact = (!redact.is_noop()).then_some(redact);
        self
    }

    pub fn record(&mut self, event: &crate::events::MetricsEvent) {
        let at = event.meta().map(|m| m.occurred_at).or(self.last);
        if let Some(t) = at.filter(|t| self.last.map_or(true, |l| *t > l)) {
            self.last = Some(t);
        }
        // The translator needs a clock only for idle time, which runs on the events' own (`EventTime`).
        let now = at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        self.translator.process(event, now, &mut self.out);
        self.drain(at);
    }

    fn drain(&mut self, at: Option<DateTime<Utc>>) {
        self.out.spans.clear();
        let mut overflowed = Vec::new();
        for mut m in self.out.metrics.drain(..) {
            if let Some(r) = &self.redact {
                r.metric(&mut m);
            }
            #[cfg(feature = "otel")]
            if let Some(inst) = self.guard.as_mut().and_then(|g| g.admit(&mut m)) {
                overflowed.push(overflow_count(inst));
            }
            match at {
                Some(t) => self.windows.add(t, &m),
                None => self.untimed.push(m),
            }
        }
        match at {
            Some(t) => overflowed.iter().for_each(|m| self.windows.add(t, m)),
            None => self.untimed.append(&mut overflowed),
        }
        if let (Some(t), false) = (at, self.untimed.is_empty()) {
            for m in std::mem::take(&mut self.untimed) {
                self.windows.add(t, &m);
            }
        }
    }

    /// Adds an update that is not the translator's (a count Bamboo keeps in a table of its own) at `at`.
    pub fn add(&mut self, at: DateTime<Utc>, mut update: MetricUpdate) {
        if let Some(r) = &self.redact {
            r.metric(&mut update);
        }
        #[cfg(feature = "otel")]
        if let Some(inst) = self.guard.as_mut().and_then(|g| g.admit(&mut update)) {
            self.windows.add(at, &overflow_count(inst));
        }
        self.windows.add(at, &update);
    }

    /// Moves out the windows that end at or before `end` (see [`Windows::take_until`]).
    pub fn take_closed(&mut self, end: DateTime<Utc>) -> Windows {
        self.windows.take_until(end)
    }

    /// Puts windows back in: a shipment of them failed, or a checkpoint kept them across a restart.
    pub fn put_back(&mut self, taken: Windows) {
        self.windows.put_back(taken)
    }

    /// The time of the latest event recorded.
    pub fn last_event(&self) -> Option<DateTime<Utc>> {
        self.last
    }

    /// The windows not yet taken out, for a checkpoint.
    pub fn pending(&self) -> &Windows {
        &self.windows
    }

    /// Ends what is still open (as the bridge does at shutdown) and hands back the windows. A stream with no
    /// timed event at all has no timeline: its few system-event counts are left out.
    pub fn finish(mut self) -> Windows {
        if let Some(at) = self.last {
            self.translator.finish(at, &mut self.out);
            self.drain(Some(at));
        }
        self.windows
    }
}

/// One measurement folded by the cardinality guard, counted by metric.
#[cfg(feature = "otel")]
fn overflow_count(inst: Instrument) -> MetricUpdate {
    MetricUpdate {
        instrument: Instrument::BridgeMetricOverflow,
        value: MetricValue::U64(1),
        attributes: vec![KeyValue::new(crate::semconv::METRIC, inst.name())],
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A follower stopping ships its open windows stamped at one time: each series must then be one point there,
    /// holding all of them, never several points with one timestamp.
    #[test]
    fn windows_stamped_by_a_time_are_one_point_per_series() {
        let mut w = Windows::new(Duration::from_secs(1));
        let at = |ms: i64| Utc.timestamp_millis_opt(1_780_000_000_000 + ms).unwrap();
        let rounds = MetricUpdate {
            instrument: Instrument::Rounds,
            value: MetricValue::U64(1),
            attributes: vec![KeyValue::fixed("bamboo.round.status", "success")],
            span: None,
        };
        for ms in [100, 1_100, 2_100, 3_100] {
            w.add(at(ms), &rounds);
        }
        w.stamp_by(at(1_500));
        let series = w.series();
        let ends: Vec<_> = series[0].windows.iter().map(|(_, end, d)| (*end, d.count)).collect();
        // Window 0 ends before the stamp and keeps its end; windows 1 to 3 are one point at the stamp.
        assert_eq!(ends, vec![(at(1_000), 1), (at(1_500), 3)]);
    }
}
