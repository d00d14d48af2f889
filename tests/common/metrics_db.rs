//! Bamboo's `metrics.db` as its storage writes it, for tests and the benchmark input generator: the schema from
//! WIRE.md (plus two later columns the importer must tolerate) and the row each event produces.
#![allow(dead_code)]

use bamboo_otel::events::*;
use rusqlite::{params, Connection};

/// The columns every generation has (WIRE.md), plus two later additions the importer must tolerate.
pub const SCHEMA: &str = "
CREATE TABLE session_metrics (session_id TEXT PRIMARY KEY, model TEXT NOT NULL, started_at TEXT NOT NULL,
  completed_at TEXT, status TEXT NOT NULL, total_rounds INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL
  DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, total_tokens INTEGER NOT NULL DEFAULT 0,
  prompt_cached_tool_outputs INTEGER NOT NULL DEFAULT 0, tool_call_count INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, total_tokens_saved INTEGER);
CREATE TABLE round_metrics (round_id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES session_metrics,
  model TEXT NOT NULL, started_at TEXT NOT NULL, completed_at TEXT, status TEXT NOT NULL, prompt_tokens INTEGER
  NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, total_tokens INTEGER NOT NULL DEFAULT 0,
  prompt_cached_tool_outputs INTEGER NOT NULL DEFAULT 0, error TEXT, tokens_saved INTEGER);
CREATE TABLE tool_call_metrics (tool_call_id TEXT PRIMARY KEY, round_id TEXT NOT NULL, session_id TEXT NOT NULL,
  tool_name TEXT NOT NULL, started_at TEXT NOT NULL, completed_at TEXT, success INTEGER, error TEXT);
CREATE TABLE forward_request_metrics (forward_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, model TEXT NOT NULL,
  is_stream INTEGER NOT NULL, started_at TEXT NOT NULL, completed_at TEXT, status_code INTEGER, status TEXT NOT NULL
  DEFAULT 'pending', prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER, error TEXT,
  updated_at TEXT NOT NULL);
";

pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Applies one event to the database as Bamboo's storage does: an insert at each start, an update at each
/// completion.
pub fn apply(db: &Connection, e: &MetricsEvent) -> rusqlite::Result<usize> {
    let at = |m: &EventMeta| ts(m.occurred_at);
    match e {
        MetricsEvent::Chat(ChatEvent::SessionStarted { meta, session_id, model }) => db.execute(
            "INSERT INTO session_metrics (session_id, model, started_at, status, updated_at) VALUES (?1,?2,?3,'running',?3)",
            params![session_id, model, at(meta)],
        ),
        MetricsEvent::Chat(ChatEvent::SessionCompleted { meta, session_id, status }) => db.execute(
            "UPDATE session_metrics SET completed_at=?2, status=?3, updated_at=?2 WHERE session_id=?1",
            params![session_id, at(meta), status.as_str()],
        ),
        MetricsEvent::Chat(ChatEvent::MessageCountUpdated { meta, session_id, message_count }) => db.execute(
            "UPDATE session_metrics SET message_count=?2, updated_at=?3 WHERE session_id=?1",
            params![session_id, message_count, at(meta)],
        ),
        MetricsEvent::Chat(ChatEvent::RoundStarted { meta, round_id, session_id, model }) => db.execute(
            "INSERT INTO round_metrics (round_id, session_id, model, started_at, status) VALUES (?1,?2,?3,?4,'running')",
            params![round_id, session_id, model, at(meta)],
        ),
        MetricsEvent::Chat(ChatEvent::RoundCompleted { meta, round_id, status, usage, error, .. }) => db.execute(
            "UPDATE round_metrics SET completed_at=?2, status=?3, prompt_tokens=?4, completion_tokens=?5,
             total_tokens=?6, error=?7 WHERE round_id=?1",
            params![
                round_id,
                at(meta),
                status.as_str(),
                usage.prompt_tokens as i64,
                usage.completion_tokens as i64,
                usage.total_tokens as i64,
                error
            ],
        ),
        MetricsEvent::Chat(ChatEvent::ToolCalled {
            meta, tool_call_id, round_id, session_id, tool_name, latency_ms, success, ..
        }) => db.execute(
            "INSERT INTO tool_call_metrics VALUES (?1,?2,?3,?4,?5,?6,?7,NULL)",
            params![
                tool_call_id,
                round_id,
                session_id,
                tool_name,
                ts(meta.occurred_at - chrono::Duration::milliseconds(*latency_ms as i64)),
                at(meta),
                *success as i64
            ],
        ),
        MetricsEvent::Forward(ForwardEvent::RequestStarted { meta, request_id, endpoint, model, is_stream }) => db
            .execute(
                "INSERT INTO forward_request_metrics (forward_id, endpoint, model, is_stream, started_at, updated_at)
                 VALUES (?1,?2,?3,?4,?5,?5)",
                params![request_id, endpoint, model, *is_stream as i64, at(meta)],
            ),
        MetricsEvent::Forward(ForwardEvent::RequestCompleted {
            meta, request_id, status_code, status, usage, error, ..
        }) => db.execute(
            "UPDATE forward_request_metrics SET completed_at=?2, status_code=?3, status=?4, prompt_tokens=?5,
             completion_tokens=?6, total_tokens=?7, error=?8, updated_at=?2 WHERE forward_id=?1",
            params![
                request_id,
                at(meta),
                status_code,
                status.as_str(),
                usage.map(|u| u.prompt_tokens as i64),
                usage.map(|u| u.completion_tokens as i64),
                usage.map(|u| u.total_tokens as i64),
                error
            ],
        ),
        _ => Ok(0),
    }
}
