//! Metrics on the events' own timeline, as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`:
//! history backfilled into a Prometheus whose configuration must not change (no out-of-order window).
//!
//! Each metric update is stamped with the time of the event that caused it and summed per series into windows
//! of event time (default [`DEFAULT_WINDOW`]). Every window in which a series changed becomes one sample of it,
//! stamped at the window's end, holding the series' cumulative value (counters, histogram buckets, sums and
//! counts, from the series' first event). So `rate` and `increase` over the data's own days are what the events
//! say, window by window. Names and labels are those Prometheus' OTLP receiver gives the same metrics (`_total`,
//! `_seconds`, dots as underscores, `service_name` and `job`), so the dashboard's queries work on either.
//!
//! ```
//! use bamboo_otel::history::Windows;
//! use bamboo_otel::semconv::Instrument;
//! use bamboo_otel::translate::{KeyValue, MetricUpdate, MetricValue};
//! use chrono::{TimeZone, Utc};
//!
//! let mut w = Windows::new(std::time::Duration::from_secs(60));
//! let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
//! let rounds = |n| MetricUpdate { instrument: Instrument::Rounds, value: MetricValue::U64(n), attributes: vec![KeyValue::fixed("bamboo.round.status", "success")] };
//! w.add(at(10), &rounds(2));
//! w.add(at(200), &rounds(1));
//! let mut text = Vec::new();
//! w.write_openmetrics(&mut text, "agent").unwrap();
//! let text = String::from_utf8(text).unwrap();
//! assert!(text.contains("bamboo_rounds_total{bamboo_round_status=\"success\",job=\"agent\",service_name=\"agent\"} 2 1700000040\n"));
//! assert!(text.contains("} 3 1700000220\n"));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::semconv::{Instrument, InstrumentKind};
use crate::translate::{KeyValue, MetricUpdate, MetricValue};

/// The default window of event time.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// One series' changes within one window.
#[derive(Debug, Clone, Default)]
struct Delta {
    sum: f64,
    count: u64,
    /// Histograms: observations per bucket (the last one is +Inf).
    buckets: Vec<u64>,
}

type SeriesRef<'a> = (&'a Vec<KeyValue>, &'a BTreeMap<i64, Delta>);

/// Per-series deltas by window, in event time. Memory: one entry per series and window with a change.
#[derive(Debug)]
pub struct Windows {
    window_ms: i64,
    series: HashMap<(Instrument, Vec<KeyValue>), BTreeMap<i64, Delta>>,
}

impl Windows {
    pub fn new(window: Duration) -> Windows {
        Windows { window_ms: (window.as_millis() as i64).max(1), series: HashMap::new() }
    }

    /// Adds one update that happened at `at`.
    pub fn add(&mut self, at: DateTime<Utc>, u: &MetricUpdate) {
        let def = u.instrument.def();
        let window = at.timestamp_millis().div_euclid(self.window_ms);
        let d = self
            .series
            .entry((u.instrument, u.attributes.clone()))
            .or_default()
            .entry(window)
            .or_insert_with(|| Delta { buckets: vec![0; def.buckets.len() + 1], ..Delta::default() });
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
        }
    }

    /// How many points [`write_openmetrics`](Self::write_openmetrics) writes: one per series and window with a
    /// change (for a histogram, its buckets, sum and count together).
    pub fn points(&self) -> usize {
        self.series.values().map(BTreeMap::len).sum()
    }

    /// Writes every series as OpenMetrics text (ending in `# EOF`), families in instrument order.
    pub fn write_openmetrics(&self, out: &mut impl Write, service: &str) -> io::Result<()> {
        let mut by_family: BTreeMap<usize, Vec<SeriesRef<'_>>> = BTreeMap::new();
        for ((inst, attrs), windows) in &self.series {
            let index = Instrument::ALL.iter().position(|i| i == inst).expect("every instrument is listed");
            by_family.entry(index).or_default().push((attrs, windows));
        }
        for (index, mut series) in by_family {
            let inst = Instrument::ALL[index];
            let def = inst.def();
            let name = prometheus_name(inst);
            series.sort_by_key(|(attrs, _)| labels(attrs, service));
            let kind = match def.kind {
                InstrumentKind::Counter | InstrumentKind::FloatCounter => "counter",
                InstrumentKind::UpDownCounter => "gauge",
                InstrumentKind::Histogram => "histogram",
            };
            writeln!(out, "# TYPE {name} {kind}")?;
            writeln!(out, "# HELP {name} {}", escape_help(def.description))?;
            for (attrs, windows) in series {
                let labels = labels(attrs, service);
                let (mut sum, mut count, mut buckets) = (0.0, 0u64, vec![0u64; def.buckets.len() + 1]);
                for (window, d) in windows {
                    // The end of the window, in seconds: every change of the window is in by then.
                    let ts = ((window + 1) * self.window_ms) as f64 / 1000.0;
                    sum += d.sum;
                    count += d.count;
                    match def.kind {
                        InstrumentKind::Counter | InstrumentKind::FloatCounter => {
                            writeln!(out, "{name}_total{{{labels}}} {} {ts}", num(sum))?
                        }
                        InstrumentKind::UpDownCounter => writeln!(out, "{name}{{{labels}}} {} {ts}", num(sum))?,
                        InstrumentKind::Histogram => {
                            let mut cumulative = 0;
                            for (i, b) in buckets.iter_mut().enumerate() {
                                *b += d.buckets[i];
                                cumulative += *b;
                                let le = def.buckets.get(i).map_or("+Inf".to_owned(), |v| num(*v));
                                let sep = if labels.is_empty() { "" } else { "," };
                                writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative} {ts}")?;
                            }
                            writeln!(out, "{name}_sum{{{labels}}} {} {ts}", num(sum))?;
                            writeln!(out, "{name}_count{{{labels}}} {count} {ts}")?;
                        }
                    }
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

/// The name Prometheus' OTLP receiver gives a metric, without the `_total` a counter's samples add.
pub fn prometheus_name(inst: Instrument) -> String {
    let def = inst.def();
    let mut name = def.name.replace('.', "_");
    if def.unit == "s" {
        name.push_str("_seconds");
    }
    name
}

fn labels(attrs: &[KeyValue], service: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        attrs.iter().map(|kv| (kv.key.replace('.', "_"), kv.value.to_string())).collect();
    pairs.push(("service_name".into(), service.to_owned()));
    pairs.push(("job".into(), service.to_owned()));
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect::<Vec<_>>().join(",")
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
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
        }
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
        for mut m in self.out.metrics.drain(..) {
            if let Some(r) = &self.redact {
                r.metric(&mut m);
            }
            match at {
                Some(t) => self.windows.add(t, &m),
                None => self.untimed.push(m),
            }
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
        self.windows.add(at, &update);
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
