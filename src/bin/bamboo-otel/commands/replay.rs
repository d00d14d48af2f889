//! `replay` and `demo`: one-shot exports.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use bamboo_otel::sources::jsonl::{self, JsonLines};

use super::{backfill, bridge, build, builder, flush_timeout, send, stop_flag, stopped, Mode};
use crate::report::{summary, Problems, Progress, EXIT_EXPORT_FAILED, EXIT_REJECTED};
use crate::Global;

pub fn replay(g: &Global, files: &[PathBuf], backfill: super::Backfill) -> u8 {
    let started = Instant::now();
    let stop = stop_flag();
    let (b, mut history) = match backfill::start(builder(g, Mode::Replay), backfill) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let bridge = match build(b) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let mut problems = Problems::new(g.max_errors);
    let mut events = 0u64;
    let mut progress = Progress::new("bytes", g.quiet);
    let mut unreadable = false;
    'files: for path in files {
        let name = path.display().to_string();
        let (input, total): (Box<dyn BufRead + Send>, Option<u64>) = if name == "-" {
            match jsonl::stdin() {
                Ok(i) => (i, None),
                Err(e) => {
                    eprintln!("-: {e}");
                    unreadable = true;
                    continue;
                }
            }
        } else {
            match jsonl::open(path) {
                Ok(i) => (i, std::fs::metadata(path).ok().map(|m| m.len())),
                Err(e) => {
                    eprintln!("{name}: cannot open: {e}");
                    unreadable = true;
                    continue;
                }
            }
        };
        let mut lines = JsonLines::new(input);
        while let Some(item) = lines.next() {
            match item {
                Ok((_, event)) => {
                    events += 1;
                    if let Some(h) = history.as_mut() {
                        h.record(&event);
                    }
                    send(&bridge, event);
                }
                Err(p) => {
                    problems.report(&name, &p);
                    if g.strict {
                        break 'files;
                    }
                }
            }
            if events % 1024 == 0 {
                progress.update(lines.bytes_read(), total);
                if stopped(&stop) {
                    eprintln!("bamboo-otel: interrupted; flushing what was read");
                    break 'files;
                }
            }
        }
    }
    progress.finish();
    let history_failed = history.is_some_and(|h| !h.finish(g));
    let report = bridge.shutdown(flush_timeout(g));
    let code = summary(g.quiet, events, problems.count, &report, started);
    if (unreadable || history_failed) && code != EXIT_EXPORT_FAILED {
        return EXIT_EXPORT_FAILED;
    }
    if g.strict && problems.count > 0 {
        return EXIT_REJECTED.max(code);
    }
    code
}

pub fn demo(g: &Global, sessions: u32) -> u8 {
    let started = Instant::now();
    // The demo prints to the console unless an endpoint was asked for explicitly.
    let mut g = g.clone();
    if g.endpoint.is_none() {
        g.console = true;
    }
    let bridge = match bridge(&g, Mode::Replay) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut events = 0;
    let base = chrono::Utc::now() - chrono::Duration::minutes(i64::from(sessions));
    for n in 0..sessions {
        for e in bamboo_otel::demo::agent_session(base + chrono::Duration::seconds(i64::from(n) * 50)) {
            events += 1;
            send(&bridge, e);
        }
    }
    let report = bridge.shutdown(flush_timeout(&g));
    summary(g.quiet, events, 0, &report, started)
}
