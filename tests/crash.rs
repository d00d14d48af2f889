//! The CLI killed with SIGKILL at random points, 20 times, while a file grows, then left to finish: no span
//! may be missing, and a span may arrive twice only if the line that completed it was read after the last
//! checkpoint before a kill (the documented at-least-once window). The CLI exports through a counting proxy
//! that forwards every request to Phoenix: the proxy counts each span id it passes, Phoenix proves delivery.
#![cfg(feature = "cli")]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bamboo_otel::translate::{Output, TranslateConfig, Translator, TtlClock};
use bamboo_otel::MetricsEvent;
use common::backends::*;
use common::http_sink::{self, Reply};
use common::metrics_db::{apply, SCHEMA};

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");
const KILLS: usize = 20;

type Received = Arc<Mutex<HashMap<String, u32>>>;

/// A proxy in front of Phoenix's OTLP/HTTP endpoint that counts every span id passing through.
fn counting_proxy() -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let (url, _) = http_sink::start_scripted(Arc::new(move |_, body, _| {
        let status = match ureq::post(&format!("{PHOENIX}/v1/traces"))
            .set("content-type", "application/x-protobuf")
            .send_bytes(body)
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(_) => 503,
        };
        if status == 200 {
            let mut seen = seen.lock().unwrap();
            for span in http_sink::spans(body) {
                let id: String = span.span_id.iter().map(|b| format!("{b:02x}")).collect();
                *seen.entry(id).or_default() += 1;
            }
        }
        Reply::status(status)
    }));
    (url, received)
}

/// For each span the translator makes of `events` (live: nothing finished at the end), the 1-based line whose
/// event completed it.
fn completing_lines(events: &[MetricsEvent]) -> HashMap<String, usize> {
    let mut tr = Translator::new(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() });
    let mut out = Output::new();
    let mut lines = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        tr.process(e, common::at(0), &mut out);
        for s in out.spans.drain(..) {
            lines.insert(s.span_id.to_string(), i + 1);
        }
    }
    lines
}

fn start(file: &Path, state: &Path, traces: &str, project: &str) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("follow").arg(file).arg("--state").arg(state).args(["--poll-ms", "20", "--checkpoint-ms", "100"]);
    spawn(cmd, traces, project)
}

fn start_import(db: &Path, state: &Path, traces: &str, project: &str) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("import-db").arg(db).arg("--follow").arg("--state").arg(state).args(["--poll-ms", "20"]);
    spawn(cmd, traces, project)
}

fn spawn(mut cmd: Command, traces: &str, project: &str) -> Child {
    cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("openinference.project.name={project}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn checkpoint_line(state: &Path) -> usize {
    std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["position"]["line"].as_u64())
        .unwrap_or(0) as usize
}

fn seeded() -> Rng {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("seed {seed}");
    Rng(seed)
}

/// A small deterministic generator, seeded from the clock and printed, so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn follow_killed_20_times_at_random_points_misses_nothing_and_repeats_only_inside_the_window() {
    let salt = salt();
    let project = format!("crash-follow-{salt}");
    let events = fresh(&common::sample_events(), &salt);
    let lines: Vec<String> = events.iter().map(MetricsEvent::to_json).collect();
    let completed_by = completing_lines(&events);
    let dir = std::env::temp_dir().join(format!("bamboo-otel-crash-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, state) = (dir.join("events.jsonl"), dir.join("state.json"));
    let (traces, received) = counting_proxy();
    let mut rng = seeded();

    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&file).unwrap();
    let mut written = 0;
    // (checkpoint line the restart resumes from, lines written before the kill): the re-read window of a kill.
    let mut windows = Vec::new();
    let step = lines.len() / (KILLS + 1);
    for _ in 0..KILLS {
        let mut child = start(&file, &state, &traces, &project);
        // Lines arrive in bursts while the follower runs; it is killed at a random moment among them.
        let until = (written + step).min(lines.len());
        while written < until {
            let burst = (1 + rng.below(6) as usize).min(until - written);
            for l in &lines[written..written + burst] {
                writeln!(out, "{l}").unwrap();
            }
            written += burst;
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        }
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        child.kill().unwrap(); // SIGKILL: no flush, no checkpoint, no goodbye.
        child.wait().unwrap();
        windows.push((checkpoint_line(&state), written));
    }
    for l in &lines[written..] {
        writeln!(out, "{l}").unwrap();
    }
    // A last run, left to read everything and checkpoint it, then stopped cleanly.
    let child = start(&file, &state, &traces, &project);
    poll(90, "the last run to checkpoint every line", || (checkpoint_line(&state) == lines.len()).then_some(()));
    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    assert!(child.wait_with_output().unwrap().status.success());

    let received = received.lock().unwrap().clone();
    let missing: Vec<_> = completed_by.keys().filter(|id| !received.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} spans never arrived: {missing:?}", missing.len());
    let mut repeats = 0;
    for (id, &n) in &received {
        let line = *completed_by.get(id).unwrap_or_else(|| panic!("span {id} was never expected"));
        let allowed = windows.iter().filter(|(from, to)| line > *from && line <= *to).count() as u32;
        assert!(n - 1 <= allowed, "span {id} (line {line}) arrived {n} times; kills re-reading it: {allowed}");
        repeats += n - 1;
    }
    let resumed_from: Vec<usize> = windows.iter().map(|w| w.0).collect();
    println!(
        "{} spans, {} lines, {KILLS} kills; repeats {repeats}; checkpoints at kill: {resumed_from:?}",
        completed_by.len(),
        lines.len()
    );
    let want: Vec<_> =
        common::run_with(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() }, &events, false).spans;
    assert_phoenix_has_exactly(&project, &want);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn import_db_follow_killed_20_times_while_bamboo_writes_misses_nothing() {
    let salt = salt();
    let project = format!("crash-db-{salt}");
    let base = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut events = Vec::new();
    for n in 0..6 {
        events.extend(bamboo_otel::demo::agent_session(base + chrono::Duration::seconds(n * 45)));
    }
    // Bamboo writes rows as things happen: in time order, without trace ids (the database has none).
    events.sort_by_key(|e| e.meta().map(|m| m.occurred_at));
    let events: Vec<MetricsEvent> =
        fresh(&events, &salt).iter().filter(|e| e.meta().is_some()).map(common::without_trace_id).collect();
    let dir = std::env::temp_dir().join(format!("bamboo-otel-crash-db-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (db_path, state) = (dir.join("metrics.db"), dir.join("state.json"));
    let db = rusqlite::Connection::open(&db_path).unwrap();
    db.pragma_update(None, "journal_mode", "wal").unwrap();
    db.execute_batch(SCHEMA).unwrap();
    let (traces, received) = counting_proxy();
    let mut rng = seeded();
    let step = events.len() / (KILLS + 1);
    let mut written = 0;
    for _ in 0..KILLS {
        let mut child = start_import(&db_path, &state, &traces, &project);
        let until = (written + step).min(events.len());
        while written < until {
            apply(&db, &events[written]).unwrap();
            written += 1;
            std::thread::sleep(Duration::from_millis(rng.below(15)));
        }
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    for e in &events[written..] {
        apply(&db, e).unwrap();
    }
    let want =
        common::run_with(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() }, &events, false).spans;
    let child = start_import(&db_path, &state, &traces, &project);
    poll(90, "every span through the proxy", || {
        let got = received.lock().unwrap();
        want.iter().all(|s| got.contains_key(&s.span_id.to_string())).then_some(())
    });
    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    assert!(child.wait_with_output().unwrap().status.success());
    let received = received.lock().unwrap().clone();
    let repeats: u32 = received.values().map(|n| n - 1).sum();
    let worst = received.values().max().copied().unwrap_or(0);
    println!(
        "{} spans, {} rows written, {KILLS} kills; repeats {repeats}, most copies of one span {worst}",
        want.len(),
        events.len()
    );
    assert!(worst <= 1 + KILLS as u32, "a span arrived {worst} times in {KILLS} restarts");
    assert_eq!(received.len(), want.len(), "only expected spans");
    assert_phoenix_has_exactly(&project, &want);
    let _ = std::fs::remove_dir_all(dir);
}
