//! `bamboo-otel import-db` on a metrics.db built here from the schema in WIRE.md, with rows written the way
//! Bamboo's storage writes them (an insert at each start, an update at each completion).
#![cfg(feature = "cli")]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bamboo_otel::console::MetricTotals;
use bamboo_otel::events::*;
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::Output;
use chrono::DurationRound;
use common::backends::*;
use common::metrics_db::{apply, SCHEMA};
use rusqlite::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bamboo-otel-db-{tag}-{}", salt()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn otel_env(cmd: &mut Command, project: &str) {
    cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", PHOENIX_OTLP_GRPC)
        .env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", format!("{VM}/opentelemetry/v1/metrics"))
        .env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", project)
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("openinference.project.name={project}"));
}

fn spans_exported(stderr: &str) -> u64 {
    let s = stderr.lines().find(|l| l.contains(" spans exported")).unwrap_or_else(|| panic!("no summary: {stderr}"));
    s[..s.find(" spans exported").unwrap()].rsplit(' ').next().unwrap().parse().unwrap()
}

/// Sessions with rounds, tools and failures, plus forwarded requests; no trace ids (the database has none).
fn stream(salt: &str) -> Vec<MetricsEvent> {
    let base = chrono::Utc::now() - chrono::Duration::minutes(20);
    let mut events = Vec::new();
    for n in 0..3 {
        events.extend(bamboo_otel::demo::agent_session(base + chrono::Duration::seconds(n * 60)));
    }
    let t = |s: i64| (base + chrono::Duration::seconds(s)).timestamp_millis() - common::t0().timestamp_millis();
    events.push(common::request_started("f1s", t(10), "f1", "openai.chat_completions", "gpt-4o", None));
    let u = Some(common::usage(1200, 80));
    events.push(common::request_completed("f1c", t(12), "f1", 200, ForwardStatus::Success, u, 2000, None));
    events.push(common::request_started("f2s", t(20), "f2", "anthropic.messages", "claude", None));
    let e = Some("upstream returned 429");
    events.push(common::request_completed("f2c", t(21), "f2", 429, ForwardStatus::Error, None, 900, e));
    fresh(&events, salt).iter().map(common::without_trace_id).collect()
}

fn event_path(events: &[MetricsEvent]) -> Output {
    common::run(events)
}

fn build_db(path: &Path, events: &[MetricsEvent]) {
    let db = Connection::open(path).unwrap();
    db.pragma_update(None, "journal_mode", "wal").unwrap();
    db.execute_batch(SCHEMA).unwrap();
    for e in events {
        apply(&db, e).unwrap();
    }
}

#[test]
fn import_db_gives_the_same_spans_and_metrics_as_the_event_path() {
    let salt = salt();
    let project = format!("db-import-{salt}");
    let events = stream(&salt);
    let dir = tmpdir("import");
    let db = dir.join("metrics.db");
    build_db(&db, &events);
    let mut cmd = Command::new(BIN);
    cmd.arg("import-db").arg(&db);
    otel_env(&mut cmd, &project);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let want = event_path(&events);
    assert_eq!(spans_exported(&stderr), want.spans.len() as u64, "{stderr}");
    let got = wait_for_spans(&project, want.spans.len());
    assert_eq!(got.len(), want.spans.len());
    for w in &want.spans {
        let g = got.get(&w.span_id.to_string()).unwrap_or_else(|| panic!("{} {} missing", w.name, w.span_id));
        assert_eq!(g["name"], w.name.as_str());
        assert_eq!(g["trace_id"], w.trace_id.to_string().as_str(), "{}", w.name);
        let parent = w.parent_span_id.map(|p| p.to_string()).unwrap_or_default();
        assert_eq!(g["parent_span_id"].as_str().unwrap_or(""), parent, "{}", w.name);
    }
    let mut totals = MetricTotals::new();
    totals.extend(&want.metrics);
    for ty in ["input", "output"] {
        let want = totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", ty)]).sum;
        vm_wait_for(
            // The points carry the rows' own times: the latest of each series, however old, holds its total.
            &format!(
                "sum(last_over_time(gen_ai_client_token_usage_sum{{service_name=\"{project}\",gen_ai_token_type=\"{ty}\"}}[1000d]))"
            ),
            want,
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Another process writes the database in WAL mode, statement by statement, as an agent would.
const WRITER: &str = r#"
import sqlite3, sys, time
path, salt, sessions = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=wal")
def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03d+00:00" % int((t % 1) * 1000)
for s in range(sessions):
    sid = f"s{s}-{salt}"
    db.execute("INSERT INTO session_metrics (session_id, model, started_at, status, updated_at) VALUES (?,?,?,'running',?)", (sid, "gpt-4o", now(), now()))
    for r in range(3):
        rid = f"{sid}-r{r}"
        db.execute("INSERT INTO round_metrics (round_id, session_id, model, started_at, status) VALUES (?,?,?,?,'running')", (rid, sid, "gpt-4o", now()))
        for k in range(2):
            tid = f"{rid}-t{k}"
            db.execute("INSERT INTO tool_call_metrics (tool_call_id, round_id, session_id, tool_name, started_at) VALUES (?,?,?,?,?)", (tid, rid, sid, "Read", now()))
            time.sleep(0.01)
            db.execute("UPDATE tool_call_metrics SET completed_at=?, success=1 WHERE tool_call_id=?", (now(), tid))
        p = 100 * (r + 1)
        db.execute("UPDATE round_metrics SET completed_at=?, status='success', prompt_tokens=?, completion_tokens=?, total_tokens=? WHERE round_id=?", (now(), p, 10, p + 10, rid))
    db.execute("UPDATE session_metrics SET completed_at=?, status='completed', updated_at=? WHERE session_id=?", (now(), now(), sid))
    print(f"session {s} done", flush=True)
"#;

fn start_importer(db: &Path, state: &Path, project: &str) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("import-db").arg(db).arg("--follow").arg("--state").arg(state).args(["--poll-ms", "100"]);
    // Windows of one second of event time: the restart falls inside one (the writer is that quick).
    cmd.args(["--window", "1"]);
    otel_env(&mut cmd, project);
    cmd.env("OTEL_METRIC_EXPORT_INTERVAL", "1000").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn stop(child: std::process::Child) -> String {
    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

#[test]
fn import_db_follow_keeps_up_with_a_concurrent_wal_writer_across_a_restart() {
    let salt = salt();
    let project = format!("db-follow-{salt}");
    let dir = tmpdir("follow");
    let (db, state) = (dir.join("metrics.db"), dir.join("state.json"));
    build_db(&db, &[]);
    const SESSIONS: usize = 6;
    let importer = start_importer(&db, &state, &project);
    let mut writer = Command::new("python3")
        .args(["-c", WRITER])
        .arg(&db)
        .arg(&salt)
        .arg(SESSIONS.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = BufReader::new(writer.stdout.take().unwrap()).lines();
    // Restart the importer while the writer is mid-way.
    for _ in 0..2 {
        progress.next().unwrap().unwrap();
    }
    let first = stop(importer);
    let importer = start_importer(&db, &state, &project);
    for line in progress {
        line.unwrap();
    }
    assert!(writer.wait().unwrap().success());
    // Spans per session: the session, 3 rounds, 6 tool calls.
    let want = SESSIONS * (1 + 3 + 6);
    let got = poll(90, "all spans in Phoenix", || {
        let got = phoenix_spans(&project);
        (got.len() >= want).then_some(got)
    });
    let second = stop(importer);
    assert_eq!(got.len(), want);
    assert_eq!(spans_exported(&first) + spans_exported(&second), want as u64, "none twice:\n{first}\n{second}");
    let names: HashSet<&str> = got.values().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, HashSet::from(["invoke_agent bamboo", "chat gpt-4o", "execute_tool Read"]));
    // Input tokens: 100 + 200 + 300 per session, counted once across both importer processes.
    let q = format!("sum(gen_ai_client_token_usage_sum{{service_name=\"{project}\",gen_ai_token_type=\"input\"}})");
    vm_wait_for(&q, (SESSIONS * 600) as f64);
    // Window by window, the total is what the rows completed by then say: across the restart no window is
    // counted twice or lost (the checkpoint carries the open windows' totals on).
    let rows: Vec<(chrono::DateTime<chrono::Utc>, u64)> = {
        let db = Connection::open(&db).unwrap();
        let mut stmt =
            db.prepare("SELECT completed_at, prompt_tokens FROM round_metrics WHERE status = 'success'").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(t, n)| (chrono::DateTime::parse_from_rfc3339(&t).unwrap().to_utc(), n))
            .collect();
        rows
    };
    assert_eq!(rows.len(), SESSIONS * 3);
    let second = chrono::Duration::seconds(1);
    let first_end = rows.iter().map(|r| r.0).min().unwrap().duration_trunc(second).unwrap() + second;
    let last_end = rows.iter().map(|r| r.0).max().unwrap().duration_trunc(second).unwrap() + second;
    let q = format!(
        "sum(last_over_time(gen_ai_client_token_usage_sum{{service_name=\"{project}\",gen_ai_token_type=\"input\"}}[1h]))"
    );
    let mut end = first_end;
    while end <= last_end {
        let want: u64 = rows.iter().filter(|(t, _)| *t < end).map(|r| r.1).sum();
        wait_for_value(&format!("{q} at {end}"), want as f64, |_| vm_value_at(&q, end));
        end += second;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_database_it_cannot_read_is_a_clear_error() {
    let dir = tmpdir("bad");
    // A table without a required column, as a different Bamboo version might write.
    let old = dir.join("old.db");
    let c = Connection::open(&old).unwrap();
    c.execute_batch(
        &SCHEMA.replace("status TEXT NOT NULL, prompt_tokens INTEGER\n  NOT NULL", "prompt_tokens INTEGER\n  NOT NULL"),
    )
    .unwrap();
    drop(c);
    let out = Command::new(BIN).arg("import-db").arg(&old).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("table round_metrics has no column status"), "{stderr}");
    // Not a database at all.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let out = Command::new(BIN).arg("import-db").arg(&junk).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("junk.db") && stderr.contains("SQLite"), "{stderr}");
    // A bad row is reported with its table and rowid; the other rows still go out.
    let rows = dir.join("rows.db");
    build_db(&rows, &stream(&salt()));
    Connection::open(&rows)
        .unwrap()
        .execute("UPDATE round_metrics SET started_at='last tuesday' WHERE rowid=2", [])
        .unwrap();
    let out = Command::new(BIN).args(["import-db", "--dry-run"]).arg(&rows).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("round_metrics rowid 2: started_at \"last tuesday\""), "{stderr}");
    assert!(spans_exported(&stderr) > 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `import-db --dry-run` on `db`; returns (exit code, stderr) and checks the file was not written.
fn import_untouched(db: &Path) -> (i32, String) {
    let before = std::fs::read(db).unwrap();
    let out = Command::new(BIN).args(["import-db", "--dry-run"]).arg(db).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
    assert!(std::fs::read(db).unwrap() == before, "{}: the importer wrote to the database", db.display());
    (out.status.code().unwrap_or(-1), stderr)
}

/// A database in rollback-journal mode (one file, no WAL), for cutting and corrupting.
fn build_plain_db(path: &Path, events: &[MetricsEvent]) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(SCHEMA).unwrap();
    for e in events {
        apply(&db, e).unwrap();
    }
}

#[test]
fn a_truncated_corrupt_locked_or_newer_database_is_a_clear_error_or_read_and_never_written() {
    let dir = tmpdir("hostile");
    let events = stream(&salt());
    let want = event_path(&events).spans.len() as u64;

    // Truncated: half of the file is gone.
    let cut = dir.join("cut.db");
    build_plain_db(&cut, &events);
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&cut).unwrap().set_len(len / 2).unwrap();
    let (code, stderr) = import_untouched(&cut);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cut.db") && stderr.to_lowercase().contains("malformed"), "{stderr}");

    // Corrupt: garbage over every page after the first (the schema page survives, the rows do not).
    let bad = dir.join("corrupt.db");
    build_plain_db(&bad, &events);
    let mut bytes = std::fs::read(&bad).unwrap();
    for b in bytes.iter_mut().skip(4096) {
        *b = 0xa5;
    }
    std::fs::write(&bad, &bytes).unwrap();
    let (code, stderr) = import_untouched(&bad);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("corrupt.db"), "{stderr}");

    // Locked: another process holds an exclusive lock for longer than the importer waits.
    let locked = dir.join("locked.db");
    build_plain_db(&locked, &events);
    let mut holder = Command::new("python3")
        .args(["-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(30)"])
        .arg(&locked)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let started = std::time::Instant::now();
    let (code, stderr) = import_untouched(&locked);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("locked.db") && stderr.contains("locked"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "waited {:?}", started.elapsed());

    // Newer: a table, columns and a schema version this importer has never heard of. Read as usual.
    let newer = dir.join("newer.db");
    build_plain_db(&newer, &events);
    Connection::open(&newer)
        .unwrap()
        .execute_batch(
            "ALTER TABLE round_metrics ADD COLUMN reasoning_tokens INTEGER;
             ALTER TABLE session_metrics ADD COLUMN agent_version TEXT;
             CREATE TABLE future_metrics (id TEXT PRIMARY KEY, payload BLOB);
             PRAGMA user_version = 99;",
        )
        .unwrap();
    let (code, stderr) = import_untouched(&newer);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(spans_exported(&stderr), want, "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
