//! Writes benchmark input of a given size: JSON lines of the benchmark mix, or a `metrics.db` with the same
//! sessions as rows (schema per WIRE.md). Used by `scripts/bench.sh`.
//!
//! ```text
//! cargo run --release --features sources --example gen_load -- jsonl /tmp/big.jsonl 1024
//! cargo run --release --features sources --example gen_load -- db /tmp/metrics.db 1024
//! ```

use std::io::{BufWriter, Write};

use bamboo_otel::events::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (kind, path, mb) = match &args[..] {
        [_, k, p, mb] => (k.as_str(), p.as_str(), mb.parse::<u64>()?),
        _ => return Err("usage: gen_load jsonl|db PATH SIZE_MB".into()),
    };
    let target = mb << 20;
    let start = chrono::Utc::now() - chrono::Duration::days(20);
    let mut written = 0u64;
    let mut batch = 0i64;
    match kind {
        "jsonl" => {
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
            while written < target {
                for e in bamboo_otel::demo::load_mix(1_000, start + chrono::Duration::seconds(batch * 2_000)) {
                    let line = e.to_json();
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                    written += line.len() as u64 + 1;
                }
                batch += 1;
            }
            out.flush()?;
        }
        "db" => {
            let _ = std::fs::remove_file(path);
            let mut db = rusqlite::Connection::open(path)?;
            // Fast to write; switched to WAL (as Bamboo runs it) at the end.
            db.pragma_update(None, "journal_mode", "off")?;
            db.pragma_update(None, "synchronous", "off")?;
            db.execute_batch(SCHEMA)?;
            while std::fs::metadata(path)?.len() < target {
                let tx = db.transaction()?;
                for e in bamboo_otel::demo::load_mix(2_000, start + chrono::Duration::seconds(batch * 4_000)) {
                    apply(&tx, &e)?;
                }
                tx.commit()?;
                batch += 1;
            }
            db.pragma_update(None, "journal_mode", "wal")?;
        }
        _ => return Err("kind must be jsonl or db".into()),
    }
    eprintln!("{path}: {} MiB", std::fs::metadata(path)?.len() >> 20);
    Ok(())
}

const SCHEMA: &str = "
CREATE TABLE session_metrics (session_id TEXT PRIMARY KEY, model TEXT NOT NULL, started_at TEXT NOT NULL,
  completed_at TEXT, status TEXT NOT NULL, total_rounds INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL
  DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, total_tokens INTEGER NOT NULL DEFAULT 0,
  prompt_cached_tool_outputs INTEGER NOT NULL DEFAULT 0, tool_call_count INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL);
CREATE TABLE round_metrics (round_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, model TEXT NOT NULL,
  started_at TEXT NOT NULL, completed_at TEXT, status TEXT NOT NULL, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, total_tokens INTEGER NOT NULL DEFAULT 0,
  prompt_cached_tool_outputs INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE tool_call_metrics (tool_call_id TEXT PRIMARY KEY, round_id TEXT NOT NULL, session_id TEXT NOT NULL,
  tool_name TEXT NOT NULL, started_at TEXT NOT NULL, completed_at TEXT, success INTEGER, error TEXT);
CREATE TABLE forward_request_metrics (forward_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, model TEXT NOT NULL,
  is_stream INTEGER NOT NULL, started_at TEXT NOT NULL, completed_at TEXT, status_code INTEGER, status TEXT NOT NULL
  DEFAULT 'pending', prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER, error TEXT,
  updated_at TEXT NOT NULL);
";

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// One event applied as Bamboo's storage would: an insert at each start, an update at each completion.
fn apply(db: &rusqlite::Connection, e: &MetricsEvent) -> rusqlite::Result<usize> {
    use rusqlite::params;
    match e {
        MetricsEvent::Chat(ChatEvent::SessionStarted { meta, session_id, model }) => db.execute(
            "INSERT INTO session_metrics (session_id, model, started_at, status, updated_at) VALUES (?1,?2,?3,'running',?3)",
            params![session_id, model, ts(meta.occurred_at)],
        ),
        MetricsEvent::Chat(ChatEvent::SessionCompleted { meta, session_id, status }) => db.execute(
            "UPDATE session_metrics SET completed_at=?2, status=?3, updated_at=?2 WHERE session_id=?1",
            params![session_id, ts(meta.occurred_at), status.as_str()],
        ),
        MetricsEvent::Chat(ChatEvent::RoundStarted { meta, round_id, session_id, model }) => db.execute(
            "INSERT INTO round_metrics (round_id, session_id, model, started_at, status) VALUES (?1,?2,?3,?4,'running')",
            params![round_id, session_id, model, ts(meta.occurred_at)],
        ),
        MetricsEvent::Chat(ChatEvent::RoundCompleted { meta, round_id, status, usage, error, .. }) => db.execute(
            "UPDATE round_metrics SET completed_at=?2, status=?3, prompt_tokens=?4, completion_tokens=?5, \
             total_tokens=?6, error=?7 WHERE round_id=?1",
            params![
                round_id,
                ts(meta.occurred_at),
                status.as_str(),
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                error
            ],
        ),
        MetricsEvent::Chat(ChatEvent::ToolCalled {
            meta, tool_call_id, round_id, session_id, tool_name, latency_ms, success,
        }) => db.execute(
            "INSERT INTO tool_call_metrics VALUES (?1,?2,?3,?4,?5,?6,?7,NULL)",
            params![
                tool_call_id,
                round_id,
                session_id,
                tool_name,
                ts(meta.occurred_at - chrono::Duration::milliseconds(*latency_ms as i64)),
                ts(meta.occurred_at),
                *success as i64
            ],
        ),
        MetricsEvent::Forward(ForwardEvent::RequestStarted { meta, request_id, endpoint, model, is_stream }) => db
            .execute(
                "INSERT INTO forward_request_metrics (forward_id, endpoint, model, is_stream, started_at, updated_at) \
                 VALUES (?1,?2,?3,?4,?5,?5)",
                params![request_id, endpoint, model, *is_stream as i64, ts(meta.occurred_at)],
            ),
        MetricsEvent::Forward(ForwardEvent::RequestCompleted {
            meta, request_id, status_code, status, usage, error, ..
        }) => db.execute(
            "UPDATE forward_request_metrics SET completed_at=?2, status_code=?3, status=?4, prompt_tokens=?5, \
             completion_tokens=?6, total_tokens=?7, error=?8, updated_at=?2 WHERE forward_id=?1",
            params![
                request_id,
                ts(meta.occurred_at),
                status_code,
                status.as_str(),
                usage.map(|u| u.prompt_tokens),
                usage.map(|u| u.completion_tokens),
                usage.map(|u| u.total_tokens),
                error
            ],
        ),
        _ => Ok(0),
    }
}
