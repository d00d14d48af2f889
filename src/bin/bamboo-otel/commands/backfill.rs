//! `--openmetrics FILE --window SECS` on `replay` and `import-db`: the metrics go to an OpenMetrics file in
//! windows of event time (for `promtool tsdb create-blocks-from openmetrics`) instead of being exported now.

use std::path::PathBuf;
use std::time::Duration;

use bamboo_otel::history::Recorder;
use bamboo_otel::{BridgeBuilder, ExporterKind, MetricsEvent};

use crate::report::EXIT_EXPORT_FAILED;
use crate::Global;

pub struct Backfill {
    pub file: PathBuf,
    pub window: Duration,
}

/// The events' metrics on their own timeline, bound for `file`.
pub struct History {
    recorder: Recorder,
    service: String,
    file: PathBuf,
    window: Duration,
}

/// Sets the bridge up for a backfill (metrics off: they go to the file) and returns the history to feed.
pub fn start(b: BridgeBuilder, backfill: Option<Backfill>) -> Result<(BridgeBuilder, Option<History>), u8> {
    let Some(bf) = backfill else { return Ok((b, None)) };
    let settings = match b.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bamboo-otel: {e}");
            return Err(EXIT_EXPORT_FAILED);
        }
    };
    let history = History {
        recorder: Recorder::new(settings.translate.clone(), bf.window).with_redactor(settings.redact.clone()),
        service: settings.service_name.clone().unwrap_or_else(|| "bamboo-agent".to_owned()),
        file: bf.file,
        window: bf.window,
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
            };
            self.recorder.add(m.at, update);
        }
    }

    /// Writes the file; false (after saying why) if it could not be written.
    pub fn write(self, g: &Global) -> bool {
        let windows = self.recorder.finish();
        let written = std::fs::File::create(&self.file).map(std::io::BufWriter::new).and_then(|mut f| {
            windows.write_openmetrics(&mut f, &self.service)?;
            std::io::Write::flush(&mut f)
        });
        match written {
            Ok(()) => {
                if !g.quiet {
                    eprintln!(
                        "bamboo-otel: {} metric samples in {} s windows of event time written to {} (load with: \
                         promtool tsdb create-blocks-from openmetrics {} DATA_DIR)",
                        windows.points(),
                        self.window.as_secs(),
                        self.file.display(),
                        self.file.display()
                    );
                }
                true
            }
            Err(e) => {
                eprintln!("bamboo-otel: {}: cannot write: {e}", self.file.display());
                false
            }
        }
    }
}
