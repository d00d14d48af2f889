//! [`Windows`] as OTLP metric requests whose points carry the events' own times, encoded with the official
//! generated types (`opentelemetry-proto`): the SDK's metric types stamp points with its own clock and cannot.
//!
//! Cumulative (the default, what Prometheus and Mimir want): each window in which a series changed is a point
//! from the series' first event to the window's end, holding the total so far, after a true reset point (zero,
//! start = time = the first event) that says where the series began: without it a series that changed in one
//! window is one sample, and Prometheus' `rate` and `increase` see no change at all. Delta: a point per window, from its
//! start to its end, holding the window's change. Histogram points carry the window's exemplars (at most one per
//! bucket: trace id, span id, value, time), so a latency or token spike leads to its trace.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue as PbKv;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar as PbExemplar, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{SeriesView, Windows};
use crate::semconv::InstrumentKind;

/// Points per request unless told otherwise: a few hundred kilobytes, well under receivers' limits (4 MiB for gRPC
/// by default, VictoriaMetrics' and Prometheus' far more).
pub const DEFAULT_MAX_POINTS: usize = 2_000;

/// How points are stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// From the series' first event to the window's end, the total so far.
    #[default]
    Cumulative,
    /// From the window's start to its end, the window's change.
    Delta,
}

/// One request's worth of points, with how many it holds (a histogram point counts once).
pub struct Request {
    pub body: ExportMetricsServiceRequest,
    pub points: usize,
}

/// Encodes every series of `w` into requests of at most `max_points` points. A series' points stay in time
/// order, within and across requests (backends that keep exemplars, such as Prometheus, refuse them out of
/// order), so send the requests in the order given.
pub fn requests(
    w: &Windows,
    resource: &[(String, String)],
    temporality: Temporality,
    max_points: usize,
) -> Vec<Request> {
    encode(w, resource, temporality, max_points, &mut Running::default()).collect()
}

/// Where each cumulative series stands after the points encoded so far: its start and its totals. A follower
/// keeps one across shipments (and in its checkpoint), so the windows it ships poll after poll make one
/// cumulative series per attribute set, with one reset point.
#[derive(Debug, Default, Clone)]
pub struct Running {
    pub(super) series: HashMap<SeriesKey, Totals>,
}

impl Running {
    /// How many series it follows.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// How many points [`encode`] makes of `w` from this state: one per window, plus a reset point for each
    /// cumulative series not held yet.
    pub fn points_of(&self, w: &Windows, temporality: Temporality) -> usize {
        let resets = match temporality {
            Temporality::Cumulative => w.series.keys().filter(|k| !self.series.contains_key(*k)).count(),
            Temporality::Delta => 0,
        };
        w.points() + resets
    }
}

/// [`requests`] one at a time (only the request being sent is in memory), continuing the series `running`
/// already holds (no second reset point, totals carried on) and adding those it does not.
pub fn encode<'a>(
    w: &'a Windows,
    resource: &[(String, String)],
    temporality: Temporality,
    max_points: usize,
    running: &'a mut Running,
) -> Requests<'a> {
    Requests {
        series: w.series().into_iter(),
        current: None,
        resource: crate::otlp::resource(resource),
        temporality,
        max_points: max_points.max(1),
        running,
    }
}

/// The requests of [`encode`], made as they are asked for.
pub struct Requests<'a> {
    series: std::vec::IntoIter<SeriesView<'a>>,
    /// The series being encoded, its points (reset point first, if new) and how many are done.
    current: Option<(SeriesView<'a>, SeriesKey, Vec<Window<'a>>, usize)>,
    resource: Resource,
    temporality: Temporality,
    max_points: usize,
    running: &'a mut Running,
}

impl Iterator for Requests<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        let mut metrics: Vec<Metric> = Vec::new();
        let mut points = 0;
        while points < self.max_points {
            if self.current.is_none() {
                let Some(series) = self.series.next() else { break };
                let key = (series.instrument, series.attributes.to_vec());
                let mut all = Vec::with_capacity(series.windows.len() + 1);
                if !self.running.series.contains_key(&key) {
                    if self.temporality == Temporality::Cumulative {
                        all.push((series.first, series.first, &super::NO_CHANGE));
                    }
                    let bounds = series.instrument.def().buckets.len();
                    self.running.series.insert(key.clone(), Totals::new(bounds, series.first));
                }
                all.extend(series.windows.iter().copied());
                self.current = Some((series, key, all, 0));
            }
            let (series, key, all, done) = self.current.as_mut().expect("set above");
            let take = (all.len() - *done).min(self.max_points - points);
            let totals = self.running.series.get_mut(key).expect("inserted when the series began");
            metrics.push(metric(series, &all[*done..*done + take], self.temporality, totals));
            points += take;
            *done += take;
            if *done == all.len() {
                self.current = None;
            }
        }
        (points > 0).then(|| request(&self.resource, metrics, points))
    }
}

fn request(resource: &Resource, metrics: Vec<Metric>, points: usize) -> Request {
    let scope = crate::otlp::scope();
    let body = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope),
                metrics,
                schema_url: crate::semconv::SCHEMA_URL.into(),
            }],
            schema_url: String::new(),
        }],
    };
    Request { body, points }
}

pub(super) type SeriesKey = (crate::semconv::Instrument, Vec<crate::translate::KeyValue>);

/// A series' start and running totals, carried across the requests (and shipments) it is split over.
#[derive(Debug, Clone)]
pub(super) struct Totals {
    pub(super) start: chrono::DateTime<chrono::Utc>,
    pub(super) sum: f64,
    pub(super) count: u64,
    pub(super) buckets: Vec<u64>,
}

impl Totals {
    fn new(bounds: usize, start: chrono::DateTime<chrono::Utc>) -> Totals {
        Totals { start, sum: 0.0, count: 0, buckets: vec![0; bounds + 1] }
    }
}

type Window<'a> = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, &'a super::Delta);

fn metric(series: &SeriesView<'_>, windows: &[Window<'_>], temporality: Temporality, t: &mut Totals) -> Metric {
    let def = series.instrument.def();
    let attributes: Vec<PbKv> = series.attributes.iter().map(|kv| crate::otlp::key_value(kv.key, &kv.value)).collect();
    let nanos = crate::otlp::unix_nanos;
    let series_start = nanos(t.start);
    let start = |window_start| match temporality {
        Temporality::Cumulative => series_start,
        Temporality::Delta => nanos(window_start),
    };
    let aggregation_temporality = match temporality {
        Temporality::Cumulative => AggregationTemporality::Cumulative,
        Temporality::Delta => AggregationTemporality::Delta,
    } as i32;
    let data = match def.kind {
        InstrumentKind::Histogram => metric::Data::Histogram(Histogram {
            aggregation_temporality,
            data_points: windows
                .iter()
                .map(|(from, to, d)| {
                    let (sum, count, buckets) = match temporality {
                        Temporality::Cumulative => {
                            t.sum += d.sum;
                            t.count += d.count;
                            t.buckets.iter_mut().zip(&d.buckets).for_each(|(a, b)| *a += b);
                            (t.sum, t.count, t.buckets.clone())
                        }
                        Temporality::Delta => (d.sum, d.count, d.buckets.clone()),
                    };
                    HistogramDataPoint {
                        attributes: attributes.clone(),
                        start_time_unix_nano: start(*from),
                        time_unix_nano: nanos(*to),
                        count,
                        sum: Some(sum),
                        bucket_counts: buckets,
                        explicit_bounds: def.buckets.to_vec(),
                        exemplars: d.exemplars.iter().map(|(_, e)| pb_exemplar(e, nanos(e.at))).collect(),
                        ..HistogramDataPoint::default()
                    }
                })
                .collect(),
        }),
        kind => {
            let float = kind == InstrumentKind::FloatCounter;
            metric::Data::Sum(Sum {
                aggregation_temporality,
                is_monotonic: kind != InstrumentKind::UpDownCounter,
                data_points: windows
                    .iter()
                    .map(|(from, to, d)| {
                        t.sum += d.sum;
                        let v = if temporality == Temporality::Cumulative { t.sum } else { d.sum };
                        NumberDataPoint {
                            attributes: attributes.clone(),
                            start_time_unix_nano: start(*from),
                            time_unix_nano: nanos(*to),
                            value: Some(if float {
                                number_data_point::Value::AsDouble(v)
                            } else {
                                number_data_point::Value::AsInt(v as i64)
                            }),
                            ..NumberDataPoint::default()
                        }
                    })
                    .collect(),
            })
        }
    };
    Metric {
        name: def.name.into(),
        description: def.description.into(),
        unit: def.unit.into(),
        data: Some(data),
        ..Metric::default()
    }
}

fn pb_exemplar(e: &super::Exemplar, time_unix_nano: u64) -> PbExemplar {
    PbExemplar {
        time_unix_nano,
        span_id: e.span.span_id.0.to_vec(),
        trace_id: e.span.trace_id.0.to_vec(),
        value: Some(exemplar::Value::AsDouble(e.value)),
        ..PbExemplar::default()
    }
}
