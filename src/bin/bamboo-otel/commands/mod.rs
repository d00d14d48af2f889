//! One function per subcommand; each returns the process exit code.

mod backfill;
mod check;
mod follow;
mod import;
mod replay;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bamboo_otel::{Bridge, BridgeBuilder, ExporterKind, Protocol};

pub use backfill::Backfill;
pub use check::check;
pub use follow::follow;
pub use import::import_db;
pub use replay::{demo, replay};

use crate::{Global, ProtocolArg};

/// How the run's events relate to time: a replay of the past, or live input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Old events: idle spans are judged on the events' clock; open spans are emitted as incomplete at the end.
    Replay,
    /// Live input: wall clock; open spans are left for the next run (their starts are in the checkpoint).
    Live,
}

/// The bridge per the environment, with the flags on top.
pub fn bridge(g: &Global, mode: Mode) -> Result<Bridge, u8> {
    build(builder(g, mode))
}

pub fn build(b: BridgeBuilder) -> Result<Bridge, u8> {
    b.build().map_err(|e| {
        eprintln!("bamboo-otel: {e}");
        crate::report::EXIT_EXPORT_FAILED
    })
}

/// The builder [`bridge`] builds, for commands that change a setting first.
pub fn builder(g: &Global, mode: Mode) -> BridgeBuilder {
    let mut b: BridgeBuilder = Bridge::builder();
    if let Some(p) = g.protocol {
        b = b.protocol(protocol(p));
    }
    if let Some(url) = &g.endpoint {
        // Moves the endpoint only: `OTEL_{TRACES,METRICS}_EXPORTER=none|console` still decide what is sent.
        b = b.endpoint(url.clone());
    }
    if let Some(name) = &g.service_name {
        b = b.service_name(name.clone());
    }
    if g.console || g.dry_run {
        b = b.traces_exporter(ExporterKind::Console).metrics_exporter(ExporterKind::Console);
    }
    match mode {
        Mode::Replay => b.replay_clock(),
        Mode::Live => b.flush_open_spans_on_shutdown(false),
    }
}

fn protocol(p: ProtocolArg) -> Protocol {
    match p {
        ProtocolArg::Grpc => Protocol::Grpc,
        ProtocolArg::HttpProtobuf => Protocol::HttpProtobuf,
        ProtocolArg::HttpJson => Protocol::HttpJson,
    }
}

/// Set by SIGINT or SIGTERM: loops stop, flush what is finished, write their checkpoint and exit.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping kills the process the usual way.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone());
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

pub fn stopped(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

pub fn flush_timeout(g: &Global) -> Duration {
    Duration::from_secs(g.flush_timeout)
}

/// Hands an event to the bridge, waiting for queue space (a batch source must not drop). A disabled bridge
/// (OTEL_SDK_DISABLED) takes nothing, by design.
pub fn send(bridge: &Bridge, event: bamboo_otel::MetricsEvent) {
    if bridge.is_enabled() {
        let _ = bridge.record_wait(event);
    }
}

/// `--since`: an RFC 3339 time, or an age (`90m`, `24h`, `7d`, `30s`) before now.
pub fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("--since {s:?}: expected an RFC 3339 time or an age like 24h"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--since {s:?}: the unit must be s, m, h or d")),
    };
    Ok(chrono::Utc::now() - chrono::Duration::seconds(n * secs))
}
