//! Metrics on the events' own timeline for `replay` and one-shot `import-db`: each update is put in a window of
//! event time (`--window SECS`) and the windows go, at the end, either over OTLP with the points stamped with
//! those times (the default when metrics are exported over OTLP; `--metrics-clock wall` for the SDK's own
//! clock) or to an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics` (`--openmetrics FILE`).

use std::path::PathBuf;
use std::time::Duration;

use bamboo_otel::config::Settings;
use bamboo_otel::history::otlp::{Temporality, DEFAULT_MAX_POINTS};
use bamboo_otel::history::{ship, Recorder, Windows};
use bamboo_otel::wire::{MetricsWire, RetryPolicy, Target};
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
        let delta = std::env::var("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "delta" | "lowmemory"));
        let temporality = if delta { Temporality::Delta } else { Temporality::Cumulative };
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
    pub fn finish(self, g: &Global) -> bool {
        let windows = self.recorder.finish();
        match self.sink {
            Sink::OpenMetrics(file) => write_file(&windows, &file, &self.service, self.window, g),
            Sink::Otlp { target, resource, temporality } => send(&windows, &target, &resource, temporality, g),
        }
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

fn send(windows: &Windows, target: &Target, resource: &[(String, String)], t: Temporality, g: &Global) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let shipped = rt.block_on(async {
        let wire = MetricsWire::new(target, RetryPolicy::default())?;
        Ok::<_, bamboo_otel::BuildError>(ship::send(windows, &wire, resource, t, DEFAULT_MAX_POINTS).await)
    });
    let s = match shipped {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bamboo-otel: metrics: {e}");
            return false;
        }
    };
    if let Some(e) = &s.first_error {
        eprintln!(
            "bamboo-otel: metrics: {} of {} points refused and {} not delivered; first: {e}",
            s.rejected, s.points, s.failed
        );
    }
    if !g.quiet {
        eprintln!(
            "bamboo-otel: {} metric points in {} s windows of event time ({} series) sent to {} in {} requests: {} \
             delivered, {} refused, {} failed",
            s.points,
            windows.window().as_secs(),
            windows.series_count(),
            target.url,
            s.requests,
            s.delivered,
            s.rejected,
            s.failed
        );
    }
    s.rejected == 0 && s.failed == 0
}
