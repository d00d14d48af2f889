//! The tee inside a live Bamboo: Bamboo's own `MetricsCollector` (bamboo-metrics 2026.11.1) writing through
//! `OtelStorage` into its own `SqliteMetricsStorage`, a bridge exporting to Jaeger, then `bamboo-otel import-db`
//! of the very file Bamboo wrote, into the same Jaeger under another service name.
#![cfg(all(feature = "bamboo", feature = "cli"))]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bamboo_agent_core::{AgentEvent, ToolResult};
use bamboo_metrics::storage::MetricsStorage;
use bamboo_metrics::types::{ForwardStatus, ForwardTokenDetails, RoundStatus, SessionStatus, TokenUsage};
use bamboo_metrics::{MetricsCollector, SqliteMetricsStorage};
use bamboo_otel::bamboo::OtelStorage;
use bamboo_otel::config::Protocol;
use bamboo_otel::semconv as sc;
use bamboo_otel::Bridge;
use chrono::{DateTime, Utc};
use common::backends::*;
use common::jaeger::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");

fn usage(p: u64, c: u64) -> TokenUsage {
    TokenUsage { prompt_tokens: p, completion_tokens: c, total_tokens: p + c }
}

/// One agent session with tools (one failing), a failed round, and three forwarded requests with every kind of
/// token detail, recorded through Bamboo's public collector API exactly as Bamboo's runtime does.
fn drive(c: &MetricsCollector, salt: &str, base: DateTime<Utc>) {
    let t = |ms: i64| base + chrono::Duration::milliseconds(ms);
    let (s1, r1, r2) = (format!("s1-{salt}"), format!("s1-{salt}-run-1-round-1"), format!("s1-{salt}-run-1-round-2"));
    c.session_started(&s1, "claude-sonnet-4-5", t(0));
    c.round_started(&r1, &s1, "claude-sonnet-4-5", t(100));
    c.record_agent_event(
        &s1,
        &r1,
        &AgentEvent::ToolStart {
            tool_call_id: format!("t1-{salt}"),
            tool_name: "read_file".into(),
            arguments: serde_json::json!({"path": "README.md"}),
        },
    );
    c.record_agent_event(
        &s1,
        &r1,
        &AgentEvent::ToolComplete {
            tool_call_id: format!("t1-{salt}"),
            result: ToolResult { success: true, result: "ok".into(), ..Default::default() },
        },
    );
    c.record_agent_event(
        &s1,
        &r1,
        &AgentEvent::ToolStart { tool_call_id: format!("t2-{salt}"), tool_name: "bash".into(), arguments: Value::Null },
    );
    c.record_agent_event(
        &s1,
        &r1,
        &AgentEvent::ToolError { tool_call_id: format!("t2-{salt}"), error: "permission denied: /etc/shadow".into() },
    );
    c.round_completed(&r1, t(2_100), RoundStatus::Success, usage(1000, 200), 2, 300, None);
    c.round_started(&r2, &s1, "claude-sonnet-4-5", t(2_200));
    c.round_completed(&r2, t(3_000), RoundStatus::Error, usage(500, 0), 0, 0, Some("rate limited".into()));
    c.session_message_count(&s1, 7, t(3_000));
    c.session_completed(&s1, SessionStatus::Completed, t(3_100));

    let f = |n: u32| format!("f{n}-{salt}");
    c.forward_started(f(1), "openai.chat_completions", "gpt-4o", true, t(4_000));
    let d1 = ForwardTokenDetails {
        cache_read_input_tokens: Some(800),
        reasoning_output_tokens: Some(100),
        cache_write_input_tokens: Some(0),
        cache_creation_input_tokens: None,
    };
    let ok = ForwardStatus::Success;
    c.forward_completed_with_details(f(1), t(5_000), Some(200), ok, Some(usage(1200, 300)), Some(d1), None);
    c.forward_started(f(2), "anthropic.messages", "claude-sonnet-4-5", false, t(6_000));
    let d2 = ForwardTokenDetails {
        cache_read_input_tokens: Some(1000),
        cache_creation_input_tokens: Some(500),
        ..Default::default()
    };
    c.forward_completed_with_details(f(2), t(6_500), Some(200), ok, Some(usage(2000, 100)), Some(d2), None);
    c.forward_started(f(3), "openai.responses", "gpt-4o", false, t(7_000));
    let e = Some("upstream returned 429".to_owned());
    c.forward_completed_with_details(f(3), t(7_200), Some(429), ForwardStatus::Error, None, None, e);
    c.execute_sync_mismatch("stale_snapshot", t(7_300));
}

/// Runs `drive` on a collector over `storage` and waits until the collector has drained and let it go.
fn record_through<S: MetricsStorage + 'static>(storage: Arc<S>, drive: impl FnOnce(&MetricsCollector)) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let owners = Arc::strong_count(&storage);
    rt.block_on(async {
        let collector = MetricsCollector::spawn(storage.clone(), 90);
        drive(&collector);
        drop(collector);
        // The consumer owns a clone until it has written everything it accepted.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&storage) > owners {
            assert!(
                std::time::Instant::now() < deadline,
                "the collector did not drain ({} owners)",
                Arc::strong_count(&storage)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// Every row of every table, as text, except the columns Bamboo fills from its own clock (tool call times come
/// from `Utc::now()` inside `record_agent_event`).
fn rows(db: &Path) -> BTreeMap<String, Vec<Vec<String>>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let wall_clock = |table: &str, col: &str| table == "tool_call_metrics" && col.ends_with("_at");
    let mut out = BTreeMap::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let all: Vec<Vec<String>> = stmt
            .query_map([], |r| {
                let mut row = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    if wall_clock(&table, name) {
                        continue;
                    }
                    let v: rusqlite::types::Value = r.get(i)?;
                    row.push(format!("{name}={v:?}"));
                }
                Ok(row)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(table, all);
    }
    out
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bamboo-otel-tee-{tag}-{}", salt()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The spans `import-db` of `db` makes, by the library path the CLI uses: which traces to wait for.
fn import_path_traces(db: &Path) -> HashMap<String, usize> {
    let mut events = Vec::new();
    let source = bamboo_otel::sources::db::MetricsDb::open(db).unwrap();
    source.scan(None, &mut |r| events.extend_from_slice(r.expect("every row reads"))).unwrap();
    let out = common::run(&events);
    let mut traces = HashMap::new();
    for s in &out.spans {
        *traces.entry(s.trace_id.to_string()).or_insert(0) += 1;
    }
    traces
}

/// A bridge exporting traces only, to Jaeger, as `service`.
fn jaeger_bridge(service: &str) -> Bridge {
    Bridge::builder()
        .service_name(service)
        .traces_endpoint(JAEGER_OTLP_GRPC, Protocol::Grpc)
        .metrics_exporter(bamboo_otel::ExporterKind::None)
        .build()
        .unwrap()
}

/// `bamboo-otel import-db db`, traces to Jaeger as `service`.
fn import_db(db: &Path, service: &str) {
    let out = Command::new(BIN)
        .arg("import-db")
        .arg(db)
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", JAEGER_OTLP_GRPC)
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", service)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn attr_f64(span: &StoredSpan, key: &str) -> Option<f64> {
    span.attrs().get(key).and_then(Value::as_f64)
}

#[test]
fn the_tee_leaves_bamboos_rows_alone_and_exports_exactly_what_import_db_makes_of_them() {
    let salt = salt();
    let dir = tmpdir("rows");
    let base = Utc::now() - chrono::Duration::minutes(10);
    let (tee_service, import_service) = (format!("tee-{salt}"), format!("import-{salt}"));

    // Bamboo alone, and Bamboo through the tee, the same calls.
    let plain_db = dir.join("plain.db");
    record_through(Arc::new(SqliteMetricsStorage::new(&plain_db)), |c| drive(c, &salt, base));
    let tee_db = dir.join("metrics.db");
    let bridge = jaeger_bridge(&tee_service);
    let tee = Arc::new(OtelStorage::new(SqliteMetricsStorage::new(&tee_db), bridge.clone()));
    record_through(tee.clone(), |c| drive(c, &salt, base));
    let stats = tee.stats();
    assert_eq!((stats.unknown_start, stats.failed_writes), (0, 0), "{stats:?}");
    assert!(stats.forwarded > 0);
    let report = bridge.shutdown(Duration::from_secs(20));
    assert!(!report.export_failed(), "{report:?}");

    // 1. The rows are what Bamboo alone writes.
    let (plain, teed) = (rows(&plain_db), rows(&tee_db));
    assert!(teed["round_metrics"].len() == 2 && teed["forward_request_metrics"].len() == 3, "{teed:#?}");
    assert_eq!(plain, teed, "the tee changed what Bamboo writes");

    // 2. import-db of that same file, into the same Jaeger under another service.
    import_db(&tee_db, &import_service);

    // Both paths make the same trace ids, so each trace holds every span twice: once per service.
    let want: HashMap<String, usize> = import_path_traces(&tee_db).into_iter().map(|(t, n)| (t, 2 * n)).collect();
    let mut by_service: HashMap<String, HashMap<String, StoredSpan>> = HashMap::new();
    for tid in want.keys() {
        let spans =
            poll(30, &format!("trace {tid} from both services"), || trace(tid).filter(|s| s.len() >= want[tid]));
        for s in spans {
            let service = s.resource.get("service.name").and_then(Value::as_str).unwrap_or("").to_owned();
            by_service.entry(service).or_default().insert(s.str("spanId").to_owned(), s);
        }
    }
    let (a, b) = (&by_service[&tee_service], &by_service[&import_service]);
    let total: usize = want.values().sum::<usize>() / 2;
    assert_eq!((a.len(), b.len()), (total, total));
    for (id, ta) in a {
        let tb = b.get(id).unwrap_or_else(|| panic!("span {id} ({}) only from the tee", ta.str("name")));
        let ctx = format!("{} {id}", ta.str("name"));
        for field in ["traceId", "parentSpanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano"] {
            assert_eq!(ta.span[field], tb.span[field], "{ctx}: {field}");
        }
        assert_eq!(ta.span["status"], tb.span["status"], "{ctx}: status");
        assert_eq!(ta.attrs(), tb.attrs(), "{ctx}: attributes");
    }

    // 3. What the rows say, on the spans: tool error texts, token details (absent where null, zero kept),
    //    cached tool outputs, and cost by hand from the shipped table.
    let named = |n: &str| a.values().filter(|s| s.str("name") == n).collect::<Vec<_>>();
    let bash = named("execute_tool bash");
    assert_eq!(bash[0].span["status"]["message"], "permission denied: /etc/shadow");
    let f1 = a.values().find(|s| s.attrs().get(sc::BAMBOO_FORWARD_REQUEST_ID) == Some(&format!("f1-{salt}").into()));
    let f1 = f1.expect("f1").attrs();
    assert_eq!(f1[sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS], 800);
    assert_eq!(f1[sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS], 100);
    assert_eq!(f1[sc::BAMBOO_USAGE_CACHE_WRITE_INPUT_TOKENS], 0);
    assert!(!f1.contains_key(sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS));
    assert_eq!(f1[sc::GEN_AI_REQUEST_STREAM], true);
    // gpt-4o: 400 uncached × $2.50/M + 800 cache reads × $1.25/M + 300 output × $10/M (reasoning is output).
    assert!((f1[sc::BAMBOO_USAGE_COST].as_f64().unwrap() - 0.005).abs() < 1e-12, "{f1:?}");
    let f2 = a.values().find(|s| s.attrs().get(sc::BAMBOO_FORWARD_REQUEST_ID) == Some(&format!("f2-{salt}").into()));
    let f2 = f2.expect("f2");
    // claude-sonnet-4-5: 500 uncached × $3 + 1000 reads × $0.30 + 500 creations × $3.75 + 100 output × $15.
    assert!((attr_f64(f2, sc::BAMBOO_USAGE_COST).unwrap() - 0.005175).abs() < 1e-12);
    let mut rounds = named("chat claude-sonnet-4-5");
    rounds.retain(|s| s.attrs().contains_key(sc::BAMBOO_ROUND_ID));
    assert_eq!(rounds.len(), 2);
    let r1 = rounds.iter().find(|s| s.attrs()[sc::BAMBOO_ROUND_STATUS] == "success").unwrap().attrs();
    assert_eq!(r1[sc::BAMBOO_ROUND_CACHED_TOOL_OUTPUTS], 2);
    assert_eq!(r1[sc::BAMBOO_ROUND_CACHED_TOOL_TOKENS_SAVED], 300);
    assert_eq!(r1[sc::GEN_AI_PROVIDER_NAME], "anthropic", "derived from the bare model name");

    // 4. A trace-wide sum of gen_ai.usage.* and bamboo.usage.cost (what backends that total a trace compute)
    //    counts each round once: the session's own totals are under bamboo.session.usage.*.
    let session = named("invoke_agent bamboo");
    let trace_id = session[0].str("traceId");
    let in_trace: Vec<&StoredSpan> = a.values().filter(|s| s.str("traceId") == trace_id).collect();
    let sum = |key: &str| in_trace.iter().filter_map(|s| attr_f64(s, key)).sum::<f64>();
    assert_eq!(sum(sc::GEN_AI_USAGE_INPUT_TOKENS), 1500.0);
    assert_eq!(sum(sc::GEN_AI_USAGE_OUTPUT_TOKENS), 200.0);
    // Rounds: (1000 × $3 + 200 × $15) + 500 × $3, per million.
    assert!((sum(sc::BAMBOO_USAGE_COST) - 0.0075).abs() < 1e-12);
    let totals = session[0].attrs();
    assert_eq!(totals[sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS], 1500);
    assert!((totals[sc::BAMBOO_SESSION_USAGE_COST].as_f64().unwrap() - 0.0075).abs() < 1e-12);
    assert_eq!(totals[sc::GEN_AI_AGENT_NAME], "bamboo");
    assert_eq!(session[0].scope["name"], "bamboo-otel");

    let _ = std::fs::remove_dir_all(&dir);
}

/// A session Bamboo pauses (`awaiting_response`) and resumes: two runs, as Bamboo 2026.11.1 records them.
fn drive_resumed(c: &MetricsCollector, salt: &str, base: DateTime<Utc>) {
    let t = |s: i64| base + chrono::Duration::seconds(s);
    let s = format!("rs-{salt}");
    let round = |run: u32, k: u32| format!("{s}-run-{run}-round-{k}");
    c.session_started(&s, "claude-sonnet-4-5", t(0));
    for k in 1..=2 {
        c.round_started(round(1, k), &s, "claude-sonnet-4-5", t(10 * k as i64));
        c.round_completed(round(1, k), t(10 * k as i64 + 5), RoundStatus::Success, usage(100, 10), 0, 0, None);
    }
    c.session_completed(&s, SessionStatus::AwaitingResponse, t(30));
    c.session_started(&s, "claude-sonnet-4-5", t(120));
    c.round_started(round(2, 1), &s, "claude-sonnet-4-5", t(121));
    c.round_completed(round(2, 1), t(130), RoundStatus::Success, usage(300, 30), 0, 0, None);
    c.session_completed(&s, SessionStatus::Completed, t(131));
}

#[test]
fn a_resumed_session_shows_both_runs_from_the_tee_and_from_import_db_with_the_same_ids() {
    let salt = salt();
    let dir = tmpdir("resumed");
    let base = Utc::now() - chrono::Duration::minutes(10);
    let (tee_service, import_service) = (format!("tee-r-{salt}"), format!("import-r-{salt}"));
    let db = dir.join("metrics.db");
    let bridge = jaeger_bridge(&tee_service);
    let tee = Arc::new(OtelStorage::new(SqliteMetricsStorage::new(&db), bridge.clone()));
    record_through(tee.clone(), |c| drive_resumed(c, &salt, base));
    assert!(!bridge.shutdown(Duration::from_secs(20)).export_failed());
    import_db(&db, &import_service);

    // One trace: 2 runs + 3 rounds, from each service.
    let want = import_path_traces(&db);
    assert_eq!(want.values().sum::<usize>(), 5, "{want:?}");
    let tid = want.keys().next().unwrap();
    let spans = poll(30, "the resumed session from both services", || trace(tid).filter(|s| s.len() >= 10));
    let of = |service: &str| -> HashMap<String, StoredSpan> {
        spans
            .iter()
            .filter(|s| s.resource.get("service.name").and_then(Value::as_str) == Some(service))
            .map(|s| (s.str("spanId").to_owned(), s.clone()))
            .collect()
    };
    let (a, b) = (of(&tee_service), of(&import_service));
    assert_eq!(a.keys().collect::<std::collections::BTreeSet<_>>(), b.keys().collect(), "the same span ids");
    for (id, ta) in &a {
        let tb = &b[id];
        let ctx = format!("{} {id}", ta.str("name"));
        assert_eq!(ta.span["parentSpanId"], tb.span["parentSpanId"], "{ctx}");
        assert_eq!(ta.attrs(), tb.attrs(), "{ctx}");
        if ta.str("name").starts_with("chat") {
            // Rounds are rows of their own: exact. Run boundaries are rebuilt from them (see the README).
            assert_eq!(ta.span["startTimeUnixNano"], tb.span["startTimeUnixNano"], "{ctx}");
            assert_eq!(ta.span["endTimeUnixNano"], tb.span["endTimeUnixNano"], "{ctx}");
        }
    }
    // Each run under the right parent, with its own rounds and totals.
    let runs: Vec<&StoredSpan> = b.values().filter(|s| s.str("name") == "invoke_agent bamboo").collect();
    assert_eq!(runs.len(), 2);
    let run = |n: i64| *runs.iter().find(|s| s.attrs()[sc::BAMBOO_SESSION_RUN] == n).unwrap();
    let (first, second) = (run(1), run(2));
    assert_eq!(second.span["parentSpanId"], first.span["spanId"]);
    assert_eq!(first.attrs()[sc::BAMBOO_SESSION_STATUS], "awaiting_response");
    assert_eq!(second.attrs()[sc::BAMBOO_SESSION_STATUS], "completed");
    assert_eq!(first.attrs()[sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS], 200);
    assert_eq!(second.attrs()[sc::BAMBOO_SESSION_USAGE_INPUT_TOKENS], 300);
    let parent_of = |round: &str| {
        b.values().find(|s| s.attrs().get(sc::BAMBOO_ROUND_ID) == Some(&Value::from(round))).unwrap().span
            ["parentSpanId"]
            .clone()
    };
    assert_eq!(parent_of(&format!("rs-{salt}-run-1-round-2")), first.span["spanId"]);
    assert_eq!(parent_of(&format!("rs-{salt}-run-2-round-1")), second.span["spanId"]);
    // import-db: run 1 ends with its last round (t+25 s), run 2 starts with its first (t+121 s).
    let nanos = |s: &StoredSpan, f: &str| s.nanos(f);
    let t = |s: i64| (base + chrono::Duration::seconds(s)).timestamp_nanos_opt().unwrap();
    assert_eq!((nanos(first, "startTimeUnixNano"), nanos(first, "endTimeUnixNano")), (t(0), t(25)));
    assert_eq!((nanos(second, "startTimeUnixNano"), nanos(second, "endTimeUnixNano")), (t(121), t(131)));
    let _ = std::fs::remove_dir_all(&dir);
}
