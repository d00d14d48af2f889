//! OpenMetrics text of [`Windows`] for `promtool tsdb create-blocks-from openmetrics`: history backfilled into a
//! Prometheus whose configuration must not change (no out-of-order window).
//!
//! Each window in which a series changed is one sample, stamped at the window's end, holding the series'
//! cumulative value (counters, histogram buckets, sums and counts, from the series' first event), after a zero at
//! the first event (so `rate` and `increase` see a series that changed in one window). Names and
//! labels are those Prometheus' OTLP receiver gives the same metrics (`_total`, `_seconds`, dots as underscores,
//! `service_name` and `job`), so the dashboard's queries work on either.

use std::io::{self, Write};

use super::Windows;
use crate::semconv::{Instrument, InstrumentKind};
use crate::translate::KeyValue;

/// Writes every series of `w` as OpenMetrics text (ending in `# EOF`), families in instrument order.
pub fn write(w: &Windows, out: &mut impl Write, service: &str) -> io::Result<()> {
    let all = w.series();
    let mut i = 0;
    while i < all.len() {
        let inst = all[i].instrument;
        let def = inst.def();
        let name = prometheus_name(inst);
        let kind = match def.kind {
            InstrumentKind::Counter | InstrumentKind::FloatCounter => "counter",
            InstrumentKind::UpDownCounter => "gauge",
            InstrumentKind::Histogram => "histogram",
        };
        writeln!(out, "# TYPE {name} {kind}")?;
        writeln!(out, "# HELP {name} {}", escape_help(def.description))?;
        while i < all.len() && all[i].instrument == inst {
            let series = &all[i];
            i += 1;
            let labels = labels(series.attributes, service);
            let (mut sum, mut count, mut buckets) = (0.0, 0u64, vec![0u64; def.buckets.len() + 1]);
            for (_, end, d) in
                std::iter::once((series.first, series.first, &super::NO_CHANGE)).chain(series.windows.iter().copied())
            {
                // The end of the window, in seconds: every change of the window is in by then.
                let ts = end.timestamp_millis() as f64 / 1000.0;
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
                            *b += d.buckets.get(i).copied().unwrap_or(0);
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
