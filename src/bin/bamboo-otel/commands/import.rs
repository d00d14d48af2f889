//! `import-db`: Bamboo's metrics.db, once or following new and updated rows.
//!
//! Following: each poll re-reads rows changed since the high-water mark minus an overlap (rows written with a
//! slightly older timestamp than one already seen are still found). Events already sent are skipped by their
//! deterministic ids, remembered for the overlap window and kept in the checkpoint, so a restart neither skips
//! nor repeats.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use bamboo_otel::history::saved::Saved;
use bamboo_otel::sources::checkpoint;
use bamboo_otel::sources::db::{completion, MetricsDb, OrderedJd};
use bamboo_otel::MetricsEvent;

use super::{backfill, build, builder, flush_timeout, parse_since, send, stop_flag, stopped, Mode};
use crate::report::{summary, Problems, Progress, EXIT_EXPORT_FAILED, EXIT_REJECTED};
use crate::Global;

/// How far back each poll looks before the high-water mark.
const OVERLAP: Duration = Duration::from_secs(10);

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct State {
    high_water: Option<OrderedJd>,
    /// Event ids sent within the overlap window, with their time.
    recent: HashMap<String, f64>,
    /// Metrics in event time: the windows not shipped yet and where each shipped series stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metrics: Option<Saved>,
    /// The execute-sync mismatch counts already counted, by day and reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sync_mismatches: BTreeMap<String, u64>,
}

pub fn import_db(
    g: &Global,
    path: &Path,
    since: Option<&str>,
    follow: bool,
    state: Option<&Path>,
    poll_ms: u64,
    backfill: super::Backfill,
) -> u8 {
    let started = Instant::now();
    if follow && backfill.openmetrics.is_some() {
        eprintln!("bamboo-otel: --openmetrics writes a one-shot import's history; it cannot be used with --follow");
        return EXIT_REJECTED;
    }
    let stop = stop_flag();
    let since = match since.map(parse_since).transpose() {
        Ok(s) => s.map(OrderedJd::from_time),
        Err(e) => {
            eprintln!("bamboo-otel: {e}");
            return EXIT_EXPORT_FAILED;
        }
    };
    let db = match MetricsDb::open(path) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("bamboo-otel: {e}");
            return EXIT_REJECTED;
        }
    };
    let mut st: State = match state.filter(|_| follow).map(checkpoint::load).transpose() {
        Ok(s) => s.flatten().unwrap_or_default(),
        Err(e) => {
            eprintln!("bamboo-otel: cannot read the checkpoint: {e}");
            return EXIT_EXPORT_FAILED;
        }
    };
    if st.high_water.is_none() {
        st.high_water = since;
    }
    let (b, mut history) = match backfill::start(builder(g, if follow { Mode::Live } else { Mode::Replay }), backfill) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let (Some(h), Some(saved), Some(p)) = (history.as_mut(), st.metrics.take(), state) {
        if let Err(e) = h.restore(saved) {
            eprintln!("bamboo-otel: {}: cannot resume the metric windows it holds: {e}", p.display());
            return EXIT_EXPORT_FAILED;
        }
    }
    let bridge = match build(b) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let name = path.display().to_string();
    let mut problems = Problems::new(g.max_errors);
    let mut progress = Progress::new("rows", g.quiet);
    let mut events = 0u64;
    let mut rows = 0u64;
    let mut first = true;
    // Every event id this process sent within the overlap (starts of open rows included), so a rescan does not
    // send them again; not persisted: after a restart, open rows' starts must be sent again.
    let mut sent: HashMap<String, f64> = HashMap::new();
    // A scan that failed (corrupt, locked, removed): fatal for a one-shot import, retried while following and
    // logged once per run of failing scans.
    let mut read_failed = false;
    let mut failing = false;
    let mut mismatches_failing = false;
    loop {
        let from = if follow && !first { st.high_water.map(|h| h.minus(OVERLAP)) } else { st.high_water };
        let mut sent_now = 0u64;
        let mut shipped_now = false;
        let mut strict_hit = false;
        let scanned = db.scan(from, &mut |item| match item {
            Ok(row) => {
                // A finished row already sent (before a restart, or in the overlap) is skipped whole; an open
                // row's start is sent again, the translator drops it if it has it already.
                if follow && !remember(&mut st.recent, row) {
                    return;
                }
                for event in row {
                    if follow && !remember_in(&mut sent, event) {
                        continue;
                    }
                    events += 1;
                    sent_now += 1;
                    if let Some(h) = history.as_mut() {
                        h.record(event);
                    }
                    send(&bridge, event.clone());
                }
                if events % 4096 < row.len() as u64 {
                    progress.update(events, None);
                }
            }
            Err(p) => {
                problems.report(&name, &p);
                strict_hit |= g.strict;
            }
        });
        match scanned {
            Ok(s) => {
                failing = false;
                rows += s.rows;
                if s.high_water > st.high_water {
                    st.high_water = s.high_water;
                }
                // What was sent in this scan is remembered as of the mark it raised.
                let mark = st.high_water.map_or(0.0, |h| h.0);
                st.recent.values_mut().chain(sent.values_mut()).filter(|v| v.is_infinite()).for_each(|v| *v = mark);
                if let (Some(h), true) = (history.as_mut(), follow) {
                    // The whole (small) table each poll; a bad row is reported on the first poll only.
                    let report = first;
                    match db.sync_mismatches(&mut |p| {
                        if report {
                            problems.report(&name, &p)
                        }
                    }) {
                        Ok(rows) => {
                            mismatches_failing = false;
                            h.follow_sync_mismatches(rows, &mut st.sync_mismatches)
                        }
                        Err(e) => {
                            if !std::mem::replace(&mut mismatches_failing, true) {
                                eprintln!("bamboo-otel: {e} (retrying every poll; logged once until a read succeeds)");
                            }
                        }
                    }
                    // Rows are found up to OVERLAP behind the newest (or behind now, for a database at rest):
                    // windows ending before that are complete.
                    let newest = st.high_water.map(|h| h.to_time()).into_iter().chain([chrono::Utc::now()]).max();
                    if let Some(t) = newest {
                        shipped_now = h.ship_closed(t - OVERLAP);
                    }
                }
            }
            Err(e) => {
                read_failed = true;
                if !std::mem::replace(&mut failing, true) {
                    let retry = if follow { " (retrying every poll; logged once until a scan succeeds)" } else { "" };
                    eprintln!("bamboo-otel: {e}{retry}");
                }
                if !follow {
                    break;
                }
            }
        }
        first = false;
        if !follow || strict_hit {
            break;
        }
        if let Some(h) = st.high_water {
            let keep_from = h.minus(OVERLAP * 2).0;
            st.recent.retain(|_, jd| *jd >= keep_from);
            sent.retain(|_, jd| *jd >= keep_from);
        }
        let stopping = stopped(&stop);
        if sent_now > 0 || shipped_now || stopping {
            if let Some(p) = state {
                if let (Some(h), true) = (history.as_mut(), stopping) {
                    h.ship_open(chrono::Utc::now());
                }
                st.metrics = history.as_ref().map(|h| h.saved());
                if bridge.force_flush(flush_timeout(g)) {
                    if let Err(e) = checkpoint::save(p, &st) {
                        eprintln!("{}: cannot write the checkpoint: {e}", p.display());
                    }
                }
            }
        }
        if stopping {
            break;
        }
        std::thread::sleep(Duration::from_millis(poll_ms));
    }
    progress.finish();
    if !g.quiet {
        eprintln!("bamboo-otel: {rows} rows read from {name}");
    }
    if let (Some(h), false) = (history.as_mut(), follow) {
        match db.sync_mismatches(&mut |p| problems.report(&name, &p)) {
            Ok(rows) => h.add_sync_mismatches(rows),
            Err(e) => {
                eprintln!("bamboo-otel: {e}");
                read_failed = true;
            }
        }
    }
    let history_failed = match history {
        Some(h) if follow => !h.stop_following(state.is_some(), g),
        Some(h) => !h.finish(g),
        None => false,
    };
    let report = bridge.shutdown(flush_timeout(g));
    let code = summary(g.quiet, events, problems.count, &report, started);
    if history_failed {
        return EXIT_EXPORT_FAILED.max(code);
    }
    if (g.strict && problems.count > 0) || (read_failed && !follow) {
        return EXIT_REJECTED.max(code);
    }
    code
}

/// Records a finished row's completion as sent (its mark is set after the scan); false if it already was.
fn remember(recent: &mut HashMap<String, f64>, row: &[MetricsEvent]) -> bool {
    completion(row).map_or(true, |c| remember_in(recent, c))
}

/// Records an event id as sent; false if it already was.
fn remember_in(recent: &mut HashMap<String, f64>, event: &MetricsEvent) -> bool {
    let Some(meta) = event.meta() else { return true };
    if recent.contains_key(&meta.event_id) {
        return false;
    }
    recent.insert(meta.event_id.clone(), f64::INFINITY);
    true
}
