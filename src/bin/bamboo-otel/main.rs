//! `bamboo-otel`: ships Bamboo's metrics events (JSON lines or `metrics.db`) to any OTLP backend.
//! A thin shell over `bamboo_otel::sources` and `bamboo_otel::Bridge`.

mod commands;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ships Bamboo agent metrics events to OpenTelemetry backends (OTLP over gRPC or HTTP).
///
/// Configuration comes from the standard OTEL_* environment variables; the flags below override them.
///
/// Exit codes: 0 everything valid was exported; 1 the export failed (backend unreachable after retries) or the
/// input could not be opened; 2 some input was rejected (bad lines or rows), the rest was exported.
#[derive(Parser, Debug)]
#[command(name = "bamboo-otel", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  bamboo-otel demo
  bamboo-otel replay events.jsonl events-2.jsonl.gz
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 bamboo-otel replay - < events.jsonl
  bamboo-otel follow /var/log/bamboo/events.jsonl --state /var/lib/bamboo-otel/follow.json
  bamboo-otel import-db ~/.bamboo/metrics.db --since 24h
  bamboo-otel import-db ~/.bamboo/metrics.db --follow --state /var/lib/bamboo-otel/db.json
  bamboo-otel check events.jsonl";

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// OTLP endpoint for both signals (overrides OTEL_EXPORTER_OTLP_ENDPOINT); for HTTP, /v1/traces and
    /// /v1/metrics are appended.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// OTLP transport (overrides OTEL_EXPORTER_OTLP_PROTOCOL).
    #[arg(long, global = true, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// service.name of the exported resource (overrides OTEL_SERVICE_NAME).
    #[arg(long, global = true, value_name = "NAME")]
    pub service_name: Option<String>,
    /// Print spans and metrics on stdout instead of exporting.
    #[arg(long, global = true)]
    pub console: bool,
    /// Read and translate everything, print what would be sent, send nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Stop at the first rejected line or row (exit code 2).
    #[arg(long, global = true)]
    pub strict: bool,
    /// Problems printed in full; beyond this only counted.
    #[arg(long, global = true, default_value_t = 20, value_name = "N")]
    pub max_errors: u64,
    /// Seconds to wait for the final export at the end.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub flush_timeout: u64,
    /// No progress line and no summary.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ProtocolArg {
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    #[value(name = "http/json")]
    HttpJson,
}

/// The metrics' timeline, for `replay` and `import-db`.
#[derive(Args, Debug, Clone)]
pub struct Timeline {
    /// Write the metrics to FILE as OpenMetrics, in windows of the events' own time, for `promtool tsdb
    /// create-blocks-from openmetrics` (instead of exporting them). Spans are exported as usual.
    #[arg(long, value_name = "FILE")]
    openmetrics: Option<PathBuf>,
    /// Whose clock stamps exported metric points: `event` (windows of the events' own time, so history shows
    /// when it happened) or `wall` (the export's time, as a live bridge does). With `import-db --follow`, each
    /// window is shipped once complete and the checkpoint (`--state`) keeps the open ones.
    #[arg(long, value_enum, default_value = "event", value_name = "CLOCK")]
    metrics_clock: MetricsClock,
    /// The window of event time, in seconds: one point per series and window with a change.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    window: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsClock {
    Event,
    Wall,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Export JSON lines (one MetricsEvent each; gzip detected) and exit. Spans keep the events' own times.
    #[command(after_help = "Examples:\n  bamboo-otel replay events.jsonl\n  zcat old.jsonl.gz | bamboo-otel replay -")]
    Replay {
        /// Files to read, `-` for stdin (the default).
        #[arg(value_name = "FILE|-")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        timeline: Timeline,
    },
    /// Keep exporting lines as they are appended, like `tail -F` (rotation and truncation survived).
    #[command(
        after_help = "Examples:\n  bamboo-otel follow events.jsonl --state follow.json\n\nWith --state, a restart resumes \
                      where the last run stopped: nothing is sent twice after a clean stop (SIGINT/SIGTERM)."
    )]
    Follow {
        file: PathBuf,
        /// Checkpoint file: position in the file and starts still waiting for their completion.
        #[arg(long, value_name = "PATH")]
        state: Option<PathBuf>,
        /// How often to look for new lines, in milliseconds.
        #[arg(long, default_value_t = 200, value_name = "MS")]
        poll_ms: u64,
        /// How often to flush and write the checkpoint, in milliseconds.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        checkpoint_ms: u64,
    },
    /// Export Bamboo's SQLite metrics.db (read-only, safe while Bamboo writes it).
    #[command(
        name = "import-db",
        after_help = "Examples:\n  bamboo-otel import-db metrics.db\n  bamboo-otel import-db metrics.db --since \
                      2026-11-01T00:00:00Z\n  bamboo-otel import-db metrics.db --since 24h\n  bamboo-otel import-db \
                      metrics.db --follow --state db.json"
    )]
    ImportDb {
        path: PathBuf,
        /// Only rows started or changed at or after this time: RFC 3339, or an age such as 90m, 24h, 7d.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Keep polling for new and updated rows; export each finished span once.
        #[arg(long)]
        follow: bool,
        /// Checkpoint file for --follow.
        #[arg(long, value_name = "PATH")]
        state: Option<PathBuf>,
        /// Poll interval for --follow, in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        poll_ms: u64,
        #[command(flatten)]
        timeline: Timeline,
    },
    /// A realistic agent session, printed as a span tree and metrics (no collector needed).
    Demo {
        /// How many sessions.
        #[arg(long, default_value_t = 1)]
        sessions: u32,
    },
    /// Validate input without exporting: counts by kind and every problem with its line.
    Check {
        /// A JSON-lines file (`-` for stdin) or a metrics.db.
        #[arg(value_name = "FILE|PATH")]
        input: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The bridge's own warnings (export failures, drops; once per outage or burst) go to stderr. The SDK's
    // internal logs are left out: they can repeat per batch.
    {
        use tracing_subscriber::prelude::*;
        let only_ours = tracing_subscriber::filter::Targets::new().with_target("bamboo_otel", tracing::Level::INFO);
        let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
        tracing_subscriber::registry().with(stderr.with_filter(only_ours)).init();
    }
    let code = match &cli.command {
        Command::Replay { files, timeline } => commands::replay(&cli.global, files, backfill(timeline)),
        Command::Follow { file, state, poll_ms, checkpoint_ms } => {
            commands::follow(&cli.global, file, state.as_deref(), *poll_ms, *checkpoint_ms)
        }
        Command::ImportDb { path, since, follow, state, poll_ms, timeline } => {
            let backfill = backfill(timeline);
            commands::import_db(&cli.global, path, since.as_deref(), *follow, state.as_deref(), *poll_ms, backfill)
        }
        Command::Demo { sessions } => commands::demo(&cli.global, *sessions),
        Command::Check { input } => commands::check(&cli.global, input),
    };
    ExitCode::from(code)
}

fn backfill(t: &Timeline) -> commands::Backfill {
    commands::Backfill {
        openmetrics: t.openmetrics.clone(),
        wall_clock: t.metrics_clock == MetricsClock::Wall,
        window: std::time::Duration::from_secs(t.window.max(1)),
    }
}
