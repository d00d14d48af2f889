//! `follow`: tail -F for JSON lines, with a checkpoint.
//!
//! The checkpoint holds the file position and the start events still waiting for their completion. It is
//! written only after everything before that position has been handed to the exporter (`force_flush`), so a
//! clean stop (SIGINT/SIGTERM) and restart sends nothing twice and loses nothing; after a crash, lines read
//! since the last checkpoint (at most `--checkpoint-ms` worth) are read again.

use std::path::Path;
use std::time::{Duration, Instant};

use bamboo_otel::sources::checkpoint::{self, OpenStarts};
use bamboo_otel::sources::follow::{Follower, Position};

use super::{bridge, flush_timeout, send, stop_flag, stopped, Mode};
use crate::report::{summary, Problems, EXIT_EXPORT_FAILED, EXIT_REJECTED};
use crate::Global;

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    file: String,
    position: Position,
    open_starts: OpenStarts,
}

pub fn follow(g: &Global, file: &Path, state: Option<&Path>, poll_ms: u64, checkpoint_ms: u64) -> u8 {
    let started = Instant::now();
    let stop = stop_flag();
    let saved: Option<State> = match state.map(checkpoint::load).transpose() {
        Ok(s) => s.flatten(),
        Err(e) => {
            eprintln!("bamboo-otel: cannot read the checkpoint: {e}");
            return EXIT_EXPORT_FAILED;
        }
    };
    let bridge = match bridge(g, Mode::Live) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let (resume, mut open) = match saved {
        Some(s) => (Some(s.position), s.open_starts),
        None => (None, OpenStarts::default()),
    };
    // Starts read before the restart whose completion has not come yet: the translator needs them again.
    for e in open.events() {
        send(&bridge, e);
    }
    let mut follower = match Follower::open(file, resume) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: cannot open: {e}", file.display());
            return EXIT_EXPORT_FAILED;
        }
    };
    let name = file.display().to_string();
    let mut problems = Problems::new(g.max_errors);
    let mut events = 0u64;
    // Terminal events already sent before a restart (the checkpoint remembers their ids): not sent again.
    let mut duplicates = 0u64;
    let mut dirty = false;
    let mut last_checkpoint = Instant::now();
    let mut stats_seen = follower.stats;
    loop {
        let mut strict_hit = false;
        let read = follower.poll(&mut |item| match item {
            Ok((_, event)) => {
                events += 1;
                if open.observe(&event) {
                    send(&bridge, event);
                } else {
                    duplicates += 1;
                }
            }
            Err(p) => {
                problems.report(&name, &p);
                strict_hit |= g.strict;
            }
        });
        match read {
            Ok(n) => dirty |= n > 0,
            Err(e) => eprintln!("{name}: read error, retrying: {e}"),
        }
        if follower.stats != stats_seen {
            if follower.stats.rotations > stats_seen.rotations {
                eprintln!("{name}: rotated; reading the new file from its start");
            }
            if follower.stats.truncations > stats_seen.truncations {
                eprintln!("{name}: truncated; reading again from its start");
            }
            stats_seen = follower.stats;
        }
        let stopping = stopped(&stop) || strict_hit;
        if dirty && (stopping || last_checkpoint.elapsed() >= Duration::from_millis(checkpoint_ms)) {
            if let Some(path) = state {
                if bridge.force_flush(flush_timeout(g)) {
                    let s = State { file: name.clone(), position: follower.position(), open_starts: open.clone() };
                    if let Err(e) = checkpoint::save(path, &s) {
                        eprintln!("{}: cannot write the checkpoint: {e}", path.display());
                    }
                }
            }
            dirty = false;
            last_checkpoint = Instant::now();
        }
        if stopping {
            break;
        }
        std::thread::sleep(Duration::from_millis(poll_ms));
    }
    let report = bridge.shutdown(flush_timeout(g));
    if duplicates > 0 && !g.quiet {
        eprintln!("{name}: {duplicates} duplicate events skipped (already sent before the checkpoint)");
    }
    let code = summary(g.quiet, events, problems.count, &report, started);
    if g.strict && problems.count > 0 {
        return EXIT_REJECTED.max(code);
    }
    code
}
