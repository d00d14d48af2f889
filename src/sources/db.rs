//! Bamboo's SQLite `metrics.db`, read-only: rows become the same events the agent would have emitted, so they go
//! through the same translator and get the same span ids and metrics as the event path.
//!
//! Each row yields deterministic event ids (`db:round:<id>:start`, `db:round:<id>:end:<completed_at>`, …), so
//! reading a row twice is a duplicate the translator drops, not a second span. Open rows (no `completed_at`)
//! yield only their start. The database holds no trace ids, so spans get the derived trace id (per session, per
//! request), exactly as events without `trace_id` do.
//!
//! Opened with `SQLITE_OPEN_READ_ONLY` and a busy timeout: safe beside Bamboo writing in WAL mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row};

use super::Problem;
use crate::events::*;

/// Why the database cannot be read at all (as opposed to one bad row, which is a [`Problem`]).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: cannot open as SQLite: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: table {table} is missing (is this Bamboo's metrics.db?)")]
    MissingTable { path: PathBuf, table: &'static str },
    #[error("{path}: table {table} has no column {column} (written by an unsupported Bamboo version?)")]
    MissingColumn { path: PathBuf, table: &'static str, column: &'static str },
    #[error("{path}: reading {table}: {source}")]
    Query { path: PathBuf, table: &'static str, source: rusqlite::Error },
}

/// What one scan read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub rows: u64,
    pub events: u64,
    pub problems: u64,
    /// The latest change time seen (Julian day, SQLite's `julianday()`), for the next `since`.
    pub high_water: Option<OrderedJd>,
}

/// The event that finishes a row's span (a completion, or a tool call), if `events` has one: what a follower
/// remembers to avoid sending a finished row twice.
pub fn completion(events: &[MetricsEvent]) -> Option<&MetricsEvent> {
    events.last().filter(|e| {
        matches!(
            e,
            MetricsEvent::Chat(
                ChatEvent::SessionCompleted { .. } | ChatEvent::RoundCompleted { .. } | ChatEvent::ToolCalled { .. }
            ) | MetricsEvent::Forward(ForwardEvent::RequestCompleted { .. })
        )
    })
}

/// Receives each row's events, or the problem that made the row unusable.
pub type RowSink<'a> = dyn FnMut(Result<&[MetricsEvent], Problem>) + 'a;

/// A Julian day number (SQLite `julianday()`), totally ordered.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct OrderedJd(pub f64);
impl Eq for OrderedJd {}

impl OrderedJd {
    pub fn minus(self, d: Duration) -> OrderedJd {
        OrderedJd(self.0 - d.as_secs_f64() / 86_400.0)
    }
    pub fn from_time(t: DateTime<Utc>) -> OrderedJd {
        OrderedJd(t.timestamp_millis() as f64 / 86_400_000.0 + 2_440_587.5)
    }
    /// The time, to the millisecond.
    pub fn to_time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(((self.0 - 2_440_587.5) * 86_400_000.0).round() as i64)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
}

pub struct MetricsDb {
    conn: Connection,
    path: PathBuf,
}

impl MetricsDb {
    /// Opens read-only and checks the schema.
    pub fn open(path: &Path) -> Result<MetricsDb, DbError> {
        let open_err = |source| DbError::Open { path: path.to_owned(), source };
        if !path.is_file() {
            return Err(open_err(rusqlite::Error::InvalidPath(path.to_owned())));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(open_err)?;
        let db = MetricsDb { conn, path: path.to_owned() };
        db.check_schema()?;
        Ok(db)
    }

    /// Every table the scan reads must have the columns every generation of the schema has (WIRE.md): the ones
    /// it reads and the ones its change time comes from. Later additions are optional.
    fn check_schema(&self) -> Result<(), DbError> {
        for t in TABLES {
            let (table, present) = (t.name, self.columns(t.name)?);
            if present.is_empty() {
                return Err(DbError::MissingTable { path: self.path.clone(), table });
            }
            let required = t.columns.iter().chain(t.changed);
            if let Some(column) = required.copied().find(|c| !present.iter().any(|p| p == c)) {
                return Err(DbError::MissingColumn { path: self.path.clone(), table, column });
            }
        }
        Ok(())
    }

    fn columns(&self, table: &'static str) -> Result<Vec<String>, DbError> {
        let q = |source| DbError::Query { path: self.path.clone(), table, source };
        // A file that is not a database fails here, on first read, not at open.
        let mut stmt = self.conn.prepare(&format!("PRAGMA table_info({table})")).map_err(|e| match e {
            e @ rusqlite::Error::SqliteFailure(..) => DbError::Open { path: self.path.clone(), source: e },
            e => q(e),
        })?;
        let names = stmt.query_map([], |r| r.get::<_, String>(1)).map_err(q)?;
        names.collect::<Result<Vec<_>, _>>().map_err(q)
    }

    /// Reads every row changed at or after `since` (all rows when `None`), oldest first per table, and hands
    /// each row's events (start first, completion last when the row has finished), or a problem naming table and
    /// rowid, to `sink`. Streams: memory does not grow with the table.
    pub fn scan(&self, since: Option<OrderedJd>, sink: &mut RowSink<'_>) -> Result<ScanStats, DbError> {
        let mut stats = ScanStats::default();
        let since = since.map(|s| s.0);
        let resumed = self.resumed_sessions(since)?;
        for table in TABLES {
            self.scan_table(table, since, &resumed, &mut stats, sink)?;
        }
        Ok(stats)
    }

    /// Every row of `execute_sync_mismatch_metrics`, oldest first; none when the table does not exist (Bamboo
    /// before 2026.11.1). A row that cannot be read is a [`Problem`] naming its rowid, handed to `problem`.
    pub fn sync_mismatches(&self, problem: &mut dyn FnMut(Problem)) -> Result<Vec<SyncMismatch>, DbError> {
        let table = "execute_sync_mismatch_metrics";
        if self.columns(table)?.is_empty() {
            return Ok(Vec::new());
        }
        let q = |source| DbError::Query { path: self.path.clone(), table, source };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT rowid, reason, mismatch_date, count, updated_at FROM {table} ORDER BY mismatch_date, reason"
            ))
            .map_err(q)?;
        let mut rows = stmt.query([]).map_err(q)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(q)? {
            let read = || -> Result<SyncMismatch, String> {
                let day = text(row, "mismatch_date")?;
                let day = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|e| format!("mismatch_date {day:?} is not a date ({e})"))?;
                let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
                let at = opt_text(row, "updated_at")?.and_then(|t| time(&t, "updated_at").ok()).unwrap_or(midnight);
                Ok(SyncMismatch {
                    reason: text(row, "reason")?,
                    day,
                    count: opt_u64(row, "count")?.unwrap_or(0),
                    at: at.max(midnight),
                })
            };
            match read() {
                Ok(m) => out.push(m),
                Err(message) => {
                    let rowid: i64 = row.get("rowid").unwrap_or(0);
                    problem(Problem {
                        line: 0,
                        code: "invalid_row",
                        message: format!("{table} rowid {rowid}: {message}"),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Sessions resumed at least once (a round of run 2 or later), each with its rounds of those runs as events,
    /// oldest first: of the sessions changed since `since`, those with a later run, then an indexed read each.
    fn resumed_sessions(&self, since: Option<f64>) -> Result<Resumed, DbError> {
        let table = "round_metrics";
        let q = |source| DbError::Query { path: self.path.clone(), table, source };
        // Only the sessions this scan reads, and only those with a round past run 1 (every Bamboo round id has
        // `-run-1-round-` until a session is resumed): a poll of a big database stays an indexed lookup.
        let sessions = TABLES.iter().find(|t| t.name == "session_metrics").expect("listed");
        let changed = sessions.changed_sql();
        let mut ids = self
            .conn
            .prepare(&format!(
                "SELECT session_id FROM session_metrics s WHERE (?1 IS NULL OR julianday({changed}) >= ?1) \
                 AND EXISTS (SELECT 1 FROM round_metrics r WHERE r.session_id = s.session_id \
                 AND r.round_id LIKE '%-run-%-round-%' AND r.round_id NOT LIKE '%-run-1-round-%')"
            ))
            .map_err(q)?;
        let candidates: Vec<String> =
            ids.query_map([since], |r| r.get(0)).map_err(q)?.collect::<Result<_, _>>().map_err(q)?;
        let rounds = TABLES.iter().find(|t| t.name == table).expect("listed");
        let sql = format!(
            "SELECT {} FROM round_metrics WHERE session_id = ?1 ORDER BY julianday(started_at)",
            self.select_list(rounds)?
        );
        let mut stmt = self.conn.prepare(&sql).map_err(q)?;
        let mut resumed = Resumed::default();
        for session in candidates {
            let mut runs = Runs::default();
            let mut rows = stmt.query([&session]).map_err(q)?;
            while let Some(row) = rows.next().map_err(q)? {
                let Ok(id) = text(row, "round_id") else { continue };
                let run = run_of(&id, &session);
                let mut events = Vec::with_capacity(2);
                // A bad row is reported by the round pass; here it is only left out.
                if round_row_events(row, &mut events).is_err() {
                    continue;
                }
                if run < 2 {
                    let end = events.iter().filter_map(|e| e.meta()).map(|m| m.occurred_at).max();
                    runs.first_end = runs.first_end.max(end);
                    continue;
                }
                runs.later.resize_with(runs.later.len().max(run as usize - 1), Vec::new);
                runs.later[run as usize - 2].extend(events);
            }
            if !runs.later.is_empty() {
                resumed.0.insert(session, runs);
            }
        }
        Ok(resumed)
    }

    /// The select list: every column the table reads, `NULL` for optional ones this database lacks (older Bamboo).
    fn select_list(&self, table: &Table) -> Result<String, DbError> {
        let present = self.columns(table.name)?;
        let mut list = String::from("rowid");
        for c in table.columns {
            list.push_str(", ");
            list.push_str(c);
        }
        for c in table.optional {
            if present.iter().any(|p| p == c) {
                list.push_str(&format!(", {c}"));
            } else {
                list.push_str(&format!(", NULL AS {c}"));
            }
        }
        Ok(list)
    }

    fn scan_table(
        &self,
        table: &Table,
        since: Option<f64>,
        resumed: &Resumed,
        stats: &mut ScanStats,
        sink: &mut RowSink<'_>,
    ) -> Result<(), DbError> {
        let name = table.name;
        let q = |source| DbError::Query { path: self.path.clone(), table: name, source };
        let (columns, changed) = (self.select_list(table)?, table.changed_sql());
        let sql = format!(
            "SELECT {columns}, julianday({changed}) AS jd FROM {name} \
             WHERE ?1 IS NULL OR julianday({changed}) >= ?1 ORDER BY julianday(started_at)"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(q)?;
        let mut rows = stmt.query([since]).map_err(q)?;
        let mut events = Vec::with_capacity(2);
        while let Some(row) = rows.next().map_err(q)? {
            stats.rows += 1;
            if let Ok(Some(jd)) = row.get::<_, Option<f64>>("jd") {
                let jd = OrderedJd(jd);
                if stats.high_water.map_or(true, |h| jd > h) {
                    stats.high_water = Some(jd);
                }
            }
            events.clear();
            match (table.to_events)(resumed, row, &mut events) {
                Ok(()) => {
                    stats.events += events.len() as u64;
                    sink(Ok(&events));
                }
                Err(message) => {
                    stats.problems += 1;
                    let rowid: i64 = row.get("rowid").unwrap_or(0);
                    let message = format!("{name} rowid {rowid}: {message}");
                    sink(Err(Problem { line: 0, code: "invalid_row", message }));
                }
            }
        }
        Ok(())
    }
}

/// One row of `execute_sync_mismatch_metrics`: how often `reason` happened on one day, as of `updated_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncMismatch {
    pub reason: String,
    /// The row's `mismatch_date`: with the reason, what identifies the row.
    pub day: chrono::NaiveDate,
    pub count: u64,
    /// The day's last occurrence (the row's `updated_at`), or the day's start when that cannot be read.
    pub at: DateTime<Utc>,
}

/// Rounds of runs 2, 3, … of resumed sessions, by session: `runs[0]` is run 2. Sent with their session's row,
/// between the run boundaries the row's history implies, so each sits under its own run as on the event path.
#[derive(Debug, Default)]
pub(crate) struct Resumed(std::collections::HashMap<String, Runs>);

#[derive(Debug, Default)]
struct Runs {
    /// When the first run's last round ended: the first run's end.
    first_end: Option<DateTime<Utc>>,
    later: Vec<Vec<MetricsEvent>>,
}

/// The run a round belongs to, from Bamboo's `{session_id}-run-{n}-round-{k}` ids; 1 for any other id.
fn run_of(round_id: &str, session_id: &str) -> u32 {
    round_id
        .strip_prefix(session_id)
        .and_then(|r| r.strip_prefix("-run-"))
        .and_then(|r| r.split_once("-round-"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(1)
}

/// One table: the columns every schema has, those later versions added, what marks a change, and the row's events.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    /// Read when present; `NULL` (unknown) on databases written before they existed.
    optional: &'static [&'static str],
    /// When a row last changed: the first of these that is set.
    changed: &'static [&'static str],
    to_events: fn(&Resumed, &Row<'_>, &mut Vec<MetricsEvent>) -> Result<(), String>,
}

impl Table {
    /// The row's change time, as SQL.
    fn changed_sql(&self) -> String {
        format!("coalesce({})", self.changed.join(", "))
    }
}

const TABLES: &[Table] = &[
    Table {
        name: "round_metrics",
        columns: &[
            "round_id",
            "session_id",
            "model",
            "started_at",
            "completed_at",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "error",
        ],
        optional: &["prompt_cached_tool_outputs", "prompt_cached_tool_tokens_saved"],
        changed: &["completed_at", "started_at"],
        to_events: round_events,
    },
    Table {
        name: "tool_call_metrics",
        columns: &["tool_call_id", "round_id", "session_id", "tool_name", "started_at", "completed_at", "success"],
        optional: &["error"],
        changed: &["completed_at", "started_at"],
        to_events: tool_events,
    },
    Table {
        name: "forward_request_metrics",
        columns: &[
            "forward_id",
            "endpoint",
            "model",
            "is_stream",
            "started_at",
            "completed_at",
            "status_code",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "error",
        ],
        optional: &[
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "cache_write_input_tokens",
            "reasoning_output_tokens",
        ],
        changed: &["updated_at", "completed_at", "started_at"],
        to_events: forward_events,
    },
    // Sessions last: a session's span is emitted at its completion, so its rounds must be in by then for its
    // totals (a session row finishes in the same scan as its rounds).
    Table {
        name: "session_metrics",
        columns: &["session_id", "model", "started_at", "completed_at", "status", "message_count"],
        optional: &[],
        changed: &["updated_at", "completed_at", "started_at"],
        to_events: session_events,
    },
];

fn text(row: &Row<'_>, name: &str) -> Result<String, String> {
    row.get::<_, Option<String>>(name).map_err(|e| format!("{name}: {e}"))?.ok_or_else(|| format!("{name} is null"))
}

fn opt_text(row: &Row<'_>, name: &str) -> Result<Option<String>, String> {
    row.get::<_, Option<String>>(name).map_err(|e| format!("{name}: {e}"))
}

fn opt_u64(row: &Row<'_>, name: &str) -> Result<Option<u64>, String> {
    match row.get::<_, Option<i64>>(name).map_err(|e| format!("{name}: {e}"))? {
        Some(v) if v < 0 => Err(format!("{name} is negative ({v})")),
        v => Ok(v.map(|v| v as u64)),
    }
}

fn time(value: &str, name: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{name} {value:?} is not an RFC 3339 time ({e})"))
}

fn meta(id: String, at: DateTime<Utc>) -> EventMeta {
    EventMeta::at(id, at, None)
}

fn latency(start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    (end - start).num_milliseconds().max(0) as u64
}

/// A session row: its first start, its message count, and its end. For a resumed session (rounds of run 2 or
/// later) also each later run, rebuilt from its rounds: the table keeps one row per session, so a run's start
/// is its first round's start, the run before it ends at its last round's end with `awaiting_response`, and
/// every run but the last takes the row's final model and message count (what the row cannot tell apart).
fn session_events(resumed: &Resumed, row: &Row<'_>, out: &mut Vec<MetricsEvent>) -> Result<(), String> {
    let id = text(row, "session_id")?;
    let started = time(&text(row, "started_at")?, "started_at")?;
    let model = text(row, "model")?;
    out.push(
        ChatEvent::SessionStarted {
            meta: meta(format!("db:session:{id}:start"), started),
            session_id: id.clone(),
            model: model.clone(),
        }
        .into(),
    );
    if let Some(messages) = opt_u64(row, "message_count")?.filter(|n| *n > 0) {
        out.push(
            ChatEvent::MessageCountUpdated {
                meta: meta(format!("db:session:{id}:messages:{messages}"), started),
                session_id: id.clone(),
                message_count: messages.min(u32::MAX as u64) as u32,
            }
            .into(),
        );
    }
    let runs = resumed.0.get(&id);
    let mut last_end = runs.and_then(|r| r.first_end).unwrap_or(started).max(started);
    for (i, run) in runs.into_iter().flat_map(|r| &r.later).enumerate() {
        // A run number no round has (rounds of run 3 but none of run 2): nothing to show for it.
        let Some(first) = run.first() else { continue };
        let start = first.meta().map_or(last_end, |m| m.occurred_at).max(last_end);
        out.push(
            ChatEvent::SessionCompleted {
                meta: meta(format!("db:session:{id}:run:{}:end", i + 1), last_end),
                session_id: id.clone(),
                status: SessionStatus::AwaitingResponse,
            }
            .into(),
        );
        out.push(
            ChatEvent::SessionStarted {
                meta: meta(format!("db:session:{id}:run:{}:start", i + 2), start),
                session_id: id.clone(),
                model: model.clone(),
            }
            .into(),
        );
        out.extend(run.iter().cloned());
        last_end = run.iter().filter_map(|e| e.meta()).map(|m| m.occurred_at).max().unwrap_or(start);
    }
    if let Some(done) = opt_text(row, "completed_at")? {
        let at = time(&done, "completed_at")?;
        out.push(
            ChatEvent::SessionCompleted {
                meta: meta(format!("db:session:{id}:end:{done}"), at),
                session_id: id,
                status: SessionStatus::parse(&text(row, "status")?),
            }
            .into(),
        );
    }
    Ok(())
}

fn usage(row: &Row<'_>) -> Result<Option<TokenUsage>, String> {
    let p = opt_u64(row, "prompt_tokens")?;
    let c = opt_u64(row, "completion_tokens")?;
    let t = opt_u64(row, "total_tokens")?;
    Ok(match (p, c, t) {
        (None, None, None) => None,
        (p, c, t) => {
            let (p, c) = (p.unwrap_or(0), c.unwrap_or(0));
            Some(TokenUsage { prompt_tokens: p, completion_tokens: c, total_tokens: t.unwrap_or(p + c) })
        }
    })
}

/// `None` when the database predates the columns; `prompt_cached_tool_tokens_saved` alone reads as 0 saved.
fn cached_tool_outputs(row: &Row<'_>) -> Result<Option<CachedToolOutputs>, String> {
    let outputs = opt_u64(row, "prompt_cached_tool_outputs")?;
    let saved = opt_u64(row, "prompt_cached_tool_tokens_saved")?;
    let clamp = |v: u64| v.min(u32::MAX as u64) as u32;
    Ok(match (outputs, saved) {
        (None, None) => None,
        (o, s) => Some(CachedToolOutputs { outputs: clamp(o.unwrap_or(0)), tokens_saved: clamp(s.unwrap_or(0)) }),
    })
}

/// Each detail as stored: null (unknown) stays `None`, zero stays zero.
fn token_details(row: &Row<'_>) -> Result<Option<TokenDetails>, String> {
    let d = TokenDetails {
        cache_creation_input_tokens: opt_u64(row, "cache_creation_input_tokens")?,
        cache_read_input_tokens: opt_u64(row, "cache_read_input_tokens")?,
        cache_write_input_tokens: opt_u64(row, "cache_write_input_tokens")?,
        reasoning_output_tokens: opt_u64(row, "reasoning_output_tokens")?,
    };
    Ok((!d.is_empty()).then_some(d))
}

/// A round row; rounds of a resumed session's later runs are sent with the session's row instead.
fn round_events(_: &Resumed, row: &Row<'_>, out: &mut Vec<MetricsEvent>) -> Result<(), String> {
    if run_of(&text(row, "round_id")?, &text(row, "session_id")?) >= 2 {
        return Ok(());
    }
    round_row_events(row, out)
}

fn round_row_events(row: &Row<'_>, out: &mut Vec<MetricsEvent>) -> Result<(), String> {
    let id = text(row, "round_id")?;
    let session_id = text(row, "session_id")?;
    let started = time(&text(row, "started_at")?, "started_at")?;
    out.push(
        ChatEvent::RoundStarted {
            meta: meta(format!("db:round:{id}:start"), started),
            round_id: id.clone(),
            session_id: session_id.clone(),
            model: text(row, "model")?,
        }
        .into(),
    );
    if let Some(done) = opt_text(row, "completed_at")? {
        let at = time(&done, "completed_at")?;
        out.push(
            ChatEvent::RoundCompleted {
                meta: meta(format!("db:round:{id}:end:{done}"), at),
                round_id: id,
                session_id,
                status: RoundStatus::parse(&text(row, "status")?),
                usage: usage(row)?.unwrap_or_default(),
                latency_ms: latency(started, at),
                error: opt_text(row, "error")?,
                cached_tool_outputs: cached_tool_outputs(row)?,
            }
            .into(),
        );
    }
    Ok(())
}

fn tool_events(_: &Resumed, row: &Row<'_>, out: &mut Vec<MetricsEvent>) -> Result<(), String> {
    // A tool call is one event, emitted once it has finished (completed_at and success both set).
    let (Some(done), Some(success)) = (opt_text(row, "completed_at")?, opt_u64(row, "success")?) else {
        return Ok(());
    };
    let id = text(row, "tool_call_id")?;
    let started = time(&text(row, "started_at")?, "started_at")?;
    let at = time(&done, "completed_at")?;
    out.push(
        ChatEvent::ToolCalled {
            meta: meta(format!("db:tool:{id}"), at),
            tool_call_id: id,
            round_id: text(row, "round_id")?,
            session_id: text(row, "session_id")?,
            tool_name: text(row, "tool_name")?,
            latency_ms: latency(started, at),
            success: success != 0,
            error: if success != 0 { None } else { opt_text(row, "error")? },
        }
        .into(),
    );
    Ok(())
}

fn forward_events(_: &Resumed, row: &Row<'_>, out: &mut Vec<MetricsEvent>) -> Result<(), String> {
    let id = text(row, "forward_id")?;
    let started = time(&text(row, "started_at")?, "started_at")?;
    out.push(
        ForwardEvent::RequestStarted {
            meta: meta(format!("db:forward:{id}:start"), started),
            request_id: id.clone(),
            endpoint: text(row, "endpoint")?,
            model: text(row, "model")?,
            is_stream: opt_u64(row, "is_stream")?.unwrap_or(0) != 0,
        }
        .into(),
    );
    if let Some(done) = opt_text(row, "completed_at")? {
        let at = time(&done, "completed_at")?;
        let code = opt_u64(row, "status_code")?.unwrap_or(0);
        out.push(
            ForwardEvent::RequestCompleted {
                meta: meta(format!("db:forward:{id}:end:{done}"), at),
                request_id: id,
                status_code: u16::try_from(code).map_err(|_| format!("status_code {code} is not an HTTP status"))?,
                status: ForwardStatus::parse(&text(row, "status")?),
                usage: usage(row)?,
                latency_ms: latency(started, at),
                error: opt_text(row, "error")?,
                token_details: token_details(row)?,
            }
            .into(),
        );
    }
    Ok(())
}
