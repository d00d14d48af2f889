//! What the CLI tells the user on stderr: problems (first N in full, then a count), a progress line on a
//! terminal, and the final summary with the exit code it implies.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use bamboo_otel::sources::Problem;
use bamboo_otel::ShutdownReport;

pub const EXIT_OK: u8 = 0;
pub const EXIT_EXPORT_FAILED: u8 = 1;
pub const EXIT_REJECTED: u8 = 2;

/// Prints problems as `SOURCE:LINE: message (code)`, the first `max` in full.
pub struct Problems {
    max: u64,
    pub count: u64,
}

impl Problems {
    pub fn new(max: u64) -> Problems {
        Problems { max, count: 0 }
    }

    pub fn report(&mut self, source: &str, p: &Problem) {
        self.count += 1;
        if self.count <= self.max {
            eprintln!("{source}:{p}");
        } else if self.count == self.max + 1 {
            eprintln!("bamboo-otel: more problems follow; only counting them from here (--max-errors)");
        }
    }
}

/// A one-line progress display, redrawn at most twice a second, only when stderr is a terminal.
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    what: &'static str,
}

impl Progress {
    pub fn new(what: &'static str, quiet: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled: !quiet && std::io::stderr().is_terminal(), started: now, last: now, what }
    }

    /// `done` units so far out of `total` (when known).
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let mut line = format!("\r{} {}", human(done), self.what);
        if let Some(t) = total.filter(|t| *t > 0) {
            let eta = if rate > 0.0 { (t.saturating_sub(done)) as f64 / rate } else { 0.0 };
            line.push_str(&format!(" of {} ({:.0}%), ETA {:.0}s", human(t), 100.0 * done as f64 / t as f64, eta));
        }
        line.push_str(&format!(", {}/s   ", human(rate as u64)));
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    pub fn finish(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 10_000_000_000 => format!("{:.1}G", n as f64 / 1e9),
        n if n >= 10_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 100_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// The final line, and the exit code: export failure beats rejected input beats success.
pub fn summary(quiet: bool, events: u64, problems: u64, report: &ShutdownReport, started: Instant) -> u8 {
    let code = if report.export_failed() {
        EXIT_EXPORT_FAILED
    } else if problems > 0 {
        EXIT_REJECTED
    } else {
        EXIT_OK
    };
    if !quiet {
        let verdict = match code {
            EXIT_OK => "ok".to_owned(),
            EXIT_REJECTED => format!("{problems} input problems (exit 2)"),
            _ => format!(
                "EXPORT FAILED: {} spans dropped{}{} (exit 1)",
                report.spans_dropped,
                if report.metrics_unsent { ", final metrics unsent" } else { "" },
                if report.timed_out { ", flush timed out" } else { "" }
            ),
        };
        eprintln!(
            "bamboo-otel: {events} events read, {} spans exported, {} metric points exported, {} rejected \
             ({problems} bad input, {} duplicates), {} incomplete spans, {} sampled out, {:.2}s: {verdict}",
            report.spans_exported,
            report.metric_points_exported,
            problems + report.events_rejected,
            report.events_rejected,
            report.spans_incomplete,
            report.spans_sampled_out,
            started.elapsed().as_secs_f64(),
        );
    }
    code
}
