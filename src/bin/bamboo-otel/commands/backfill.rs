//! Metrics on the events' own timeline for `replay` and one-shot `import-db`: each update is put in a window of
//! event time (`--window SECS`) and the windows go, at the end, either over OTLP with the points stamped with
//! those times (the default when metrics are exported over OTLP; `--metrics-clock wall` for the SDK's own
//! clock) or to an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics` (`--openmetrics FILE`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use bamboo_otel::config::{Settings, TemporalityPreference};
use bamboo_otel::history::otlp::{Running, Temporality, DEFAULT_MAX_POINTS};
use bamboo_otel::history::saved::Saved;
use bamboo_otel::history::ship::{self, Shipped};
use bamboo_otel::history::{Recorder, Windows};
use bamboo_otel::wire::{RetryPolicy, Target, Wire};
use bamboo_otel::{BridgeBuilder, ExporterKind, MetricsEvent};

use crate::report::EXIT_EXPORT_FAILED;
use crate::Global;

/// What the command line asked of the metrics' timeline.
pub struct Backfill {
    /// Write OpenMetrics here instead of exporting.
    pub openmetrics: Option<PathBuf>,
    /// Stamp exported metrics with the SDK's clock instead of the events' (`--metrics-clock wall`).
    pub wall_clock: bool,
    pub window: Duration,
}

enum Sink {
    OpenMetrics(PathBuf),
    Otlp { target: Target, resource: Vec<(String, String)>, temporality: Temporality },
}

/// The events' metrics on their own timeline, bound for a file or an OTLP backend.
pub struct History {
    recorder: Recorder,
    service: String,
    sink: Sink,
    window: Duration,
    /// Where each series shipped so far stands (following: across polls and, through the checkpoint, restarts).
    running: Running,
    shipper: Option<Shipper>,
    /// Every shipment's points, for the summary.
    shipped: Shipped,
    /// The most series shipped at once (the summary's count).
    series: usize,
    /// The last shipment failed (its error was logged).
    failing: bool,
    /// Following: windows ending at or before this are shipped.
    closed_until: Option<DateTime<Utc>>,
}

/// Sets the bridge up (metrics off when they go by event time) and returns the history to feed, if any.
pub fn start(b: BridgeBuilder, asked: Backfill) -> Result<(BridgeBuilder, Option<History>), u8> {
    let settings: Settings = match b.settings() {
        Ok(s) => s.clone(),
        Err(e) => {
            eprintln!("bamboo-otel: {e}");
            return Err(EXIT_EXPORT_FAILED);
        }
    };
    let sink = if let Some(file) = asked.openmetrics {
        Sink::OpenMetrics(file)
    } else if settings.metrics == ExporterKind::Otlp && !asked.wall_clock && !settings.disabled {
        let target = match Target::metrics(&settings, &|k| std::env::var(k).ok()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("bamboo-otel: {e}");
                return Err(EXIT_EXPORT_FAILED);
            }
        };
        let temporality = match settings.metrics_temporality {
            TemporalityPreference::Cumulative => Temporality::Cumulative,
            TemporalityPreference::Delta | TemporalityPreference::LowMemory => Temporality::Delta,
        };
        Sink::Otlp { target, resource: settings.resource_attributes(), temporality }
    } else {
        return Ok((b, None));
    };
    let history = History {
        recorder: Recorder::new(settings.translate.clone(), asked.window)
            .with_redactor(settings.redact.clone())
            .with_cardinality_limit(settings.metric_cardinality_limit),
        service: settings.service_name.clone().unwrap_or_else(|| "bamboo-agent".to_owned()),
        sink,
        window: asked.window,
        running: Running::default(),
        shipper: None,
        shipped: Shipped::default(),
        series: 0,
        failing: false,
        closed_until: None,
    };
    Ok((b.metrics_exporter(ExporterKind::None), Some(history)))
}

impl History {
    pub fn record(&mut self, event: &MetricsEvent) {
        self.recorder.record(event);
    }

    /// Bamboo's execute-sync mismatch counts (a table of their own, one row per reason and day), at their time.
    pub fn add_sync_mismatches(&mut self, rows: Vec<bamboo_otel::sources::db::SyncMismatch>) {
        use bamboo_otel::semconv::{self as sc, Instrument};
        use bamboo_otel::translate::{KeyValue, MetricUpdate, MetricValue};
        for m in rows {
            let attributes = vec![KeyValue::new(sc::REASON, m.reason)];
            let update = MetricUpdate {
                instrument: Instrument::ExecuteSyncMismatches,
                value: MetricValue::U64(m.count),
                attributes,
                span: None,
            };
            self.recorder.add(m.at, update);
        }
    }

    /// Writes the file or sends the windows; false (after saying why) if not everything arrived.
    pub fn finish(mut self, g: &Global) -> bool {
        let windows = self.finish_recorder();
        match &self.sink {
            Sink::OpenMetrics(file) => write_file(&windows, file, &self.service, self.window, g),
            Sink::Otlp { .. } => {
                self.ship(&windows);
                self.report(g)
            }
        }
    }

    /// Following: the windows of event time that end at or before `end` are complete (rows read later cannot
    /// fall in them), so they are shipped, continuing each series from what earlier polls sent. If the backend
    /// cannot be reached they are put back and go with the next poll's. True if any were delivered (the
    /// checkpoint has changed).
    pub fn ship_closed(&mut self, end: DateTime<Utc>) -> bool {
        self.closed_until = self.closed_until.max(Some(end));
        let closed = self.recorder.take_closed(end);
        if closed.series_count() == 0 {
            return false;
        }
        if self.ship(&closed) {
            return true;
        }
        self.recorder.put_back(closed);
        false
    }

    /// Bamboo's execute-sync mismatch table while following: its rows are counts per reason and day that grow;
    /// each poll adds what grew since the last (at the row's time, or in the first open window when that time's
    /// window has been shipped). `seen` is kept in the checkpoint.
    pub fn follow_sync_mismatches(
        &mut self,
        rows: Vec<bamboo_otel::sources::db::SyncMismatch>,
        seen: &mut BTreeMap<String, u64>,
    ) {
        let grown: Vec<_> = rows
            .into_iter()
            .filter_map(|mut m| {
                let was = seen.insert(format!("{}/{}", m.day, m.reason), m.count).unwrap_or(0);
                m.count = m.count.saturating_sub(was);
                if let Some(closed) = self.closed_until {
                    m.at = m.at.max(closed + chrono::Duration::milliseconds(1));
                }
                (m.count > 0).then_some(m)
            })
            .collect();
        self.add_sync_mismatches(grown);
    }

    /// Stopping with a checkpoint: the open windows are shipped as they stand, stamped at the latest event they
    /// hold (see [`Windows::stamp_by`]: no value stands before the events it counts, and the rest of each window
    /// goes at its end, later, after a restart); the checkpoint carries their totals on. If the backend cannot
    /// be reached they stay in the checkpoint.
    pub fn ship_open(&mut self, now: DateTime<Utc>) {
        let stamp = self.recorder.last_event().unwrap_or(now);
        let mut open = self.recorder.take_closed(DateTime::<Utc>::MAX_UTC);
        open.stamp_by(stamp);
        if !self.ship(&open) {
            self.recorder.put_back(open);
        }
    }

    /// What a follower's checkpoint keeps: the windows not shipped and where each shipped series stands.
    pub fn saved(&self) -> Saved {
        let mut s = Saved::of(self.recorder.pending(), &self.running);
        if let Sink::Otlp { resource, .. } = &self.sink {
            s.service_instance_id = resource.iter().find(|(k, _)| k == "service.instance.id").map(|(_, v)| v.clone());
        }
        s
    }

    /// Takes a follower's checkpoint back, before the first row.
    pub fn restore(&mut self, saved: Saved) -> Result<(), String> {
        if let (Sink::Otlp { resource, .. }, Some(id)) = (&mut self.sink, &saved.service_instance_id) {
            for (_, v) in resource.iter_mut().filter(|(k, _)| k == "service.instance.id") {
                v.clone_from(id);
            }
        }
        let (pending, running) = saved.restore(self.window.as_millis() as i64)?;
        self.recorder.put_back(pending);
        self.running = running;
        Ok(())
    }

    /// Stops following. With a checkpoint the open windows were shipped as they stood ([`Self::ship_open`]);
    /// without, what is open is ended and everything is shipped as a one-shot run does.
    pub fn stop_following(mut self, checkpointed: bool, g: &Global) -> bool {
        if !checkpointed {
            let all = self.finish_recorder();
            self.ship(&all);
        }
        self.report(g)
    }

    /// Ends what the recorder holds open and hands back every window it has.
    fn finish_recorder(&mut self) -> Windows {
        std::mem::replace(&mut self.recorder, Recorder::new(Default::default(), self.window)).finish()
    }

    /// Sends `windows` over OTLP; false if any could not be delivered for now (the series' totals are then left
    /// as they were, so the same windows can go again).
    fn ship(&mut self, windows: &Windows) -> bool {
        let Sink::Otlp { target, resource, temporality } = &self.sink else { return true };
        let shipper = match &self.shipper {
            Some(s) => s,
            None => match Shipper::new(target) {
                Ok(s) => self.shipper.insert(s),
                Err(e) => {
                    eprintln!("bamboo-otel: metrics: {e}");
                    self.shipped.failed += self.running.points_of(windows, *temporality) as u64;
                    return false;
                }
            },
        };
        let mut running = self.running.clone();
        let s = shipper.rt.block_on(ship::send(
            windows,
            &shipper.wire,
            resource,
            *temporality,
            DEFAULT_MAX_POINTS,
            &mut running,
        ));
        if let Some(e) = &s.first_error {
            // Logged once per run of failing shipments; the summary counts every point.
            if !std::mem::replace(&mut self.failing, true) {
                eprintln!(
                    "bamboo-otel: metrics: {} of {} points refused and {} not delivered; first: {e}",
                    s.rejected, s.points, s.failed
                );
            }
        } else {
            self.failing = false;
        }
        self.shipped += &s;
        self.series = self.series.max(running.len());
        if s.failed > 0 {
            return false;
        }
        self.running = running;
        true
    }

    /// The summary line; false if anything was refused or not delivered.
    fn report(&self, g: &Global) -> bool {
        let s = &self.shipped;
        let Sink::Otlp { target, .. } = &self.sink else { return true };
        if !g.quiet {
            eprintln!(
                "bamboo-otel: {} metric points in {} s windows of event time ({} series) sent to {} in {} requests: \
                 {} delivered, {} refused, {} failed",
                s.points,
                self.window.as_secs(),
                self.series,
                target.url,
                s.requests,
                s.delivered,
                s.rejected,
                s.failed
            );
        }
        s.rejected == 0 && s.failed == 0
    }
}

/// The runtime and wire a run's metric shipments share.
struct Shipper {
    rt: tokio::runtime::Runtime,
    wire: Wire,
}

impl Shipper {
    fn new(target: &Target) -> Result<Shipper, bamboo_otel::BuildError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let wire = rt.block_on(async { Wire::new(target, RetryPolicy::default()) })?;
        Ok(Shipper { rt, wire })
    }
}

fn write_file(windows: &Windows, file: &PathBuf, service: &str, window: Duration, g: &Global) -> bool {
    let written = std::fs::File::create(file).map(std::io::BufWriter::new).and_then(|mut f| {
        windows.write_openmetrics(&mut f, service)?;
        std::io::Write::flush(&mut f)
    });
    match written {
        Ok(()) => {
            if !g.quiet {
                eprintln!(
                    "bamboo-otel: {} metric points in {} s windows of event time ({} series) written to {} (load \
                     with: promtool tsdb create-blocks-from openmetrics {} DATA_DIR)",
                    windows.points() + windows.series_count(),
                    window.as_secs(),
                    windows.series_count(),
                    file.display(),
                    file.display()
                );
            }
            true
        }
        Err(e) => {
            eprintln!("bamboo-otel: {}: cannot write: {e}", file.display());
            false
        }
    }
}
