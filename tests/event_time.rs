//! Metrics on the events' own timeline, over OTLP. A `metrics.db` written by Bamboo 2026.11.1's own
//! `SqliteMetricsStorage` over three past days goes through one `import-db` into VictoriaMetrics and into a
//! Prometheus with an out-of-order window. Queried on the data's own days, each window's values are what the rows
//! say, and every histogram exemplar leads to its span in Jaeger. A one-shot replay leaves no dashboard query
//! empty on either engine.
#![cfg(all(feature = "bamboo", feature = "cli"))]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bamboo_metrics::storage::MetricsMutation;
use bamboo_metrics::types::RoundStatus;
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use common::backends::{get, instant_vector, poll, salt, urlencode, VM};
use common::bamboo_history::{history, write_db};
use common::collector::server_bin;
use common::jaeger::{JAEGER, JAEGER_OTLP_GRPC};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");
/// Each test runs a Prometheus of its own (the shared one keeps deploy/'s 30 min out-of-order window, too short for
/// history days old), on its own port: the tests of this file run in parallel.
struct Prometheus {
    child: Child,
    addr: &'static str,
}
impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus with the flags deploy/ runs and the out-of-order window the README gives for history.
fn start_prometheus(dir: &Path, addr: &'static str) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "otlp:\n  promote_resource_attributes: [service.name, service.instance.id]\n\
         storage:\n  tsdb:\n    out_of_order_time_window: 30d\n",
    )
    .unwrap();
    let child = Command::new(server_bin("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={addr}"))
        .args(["--web.enable-otlp-receiver", "--enable-feature=exemplar-storage", "--storage.tsdb.retention.time=100y"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Prometheus { child, addr };
    poll(60, "the test's Prometheus to be ready", || {
        // Exited (its port taken?) rather than answering for someone else's.
        assert!(p.child.try_wait().unwrap().is_none(), "Prometheus on {addr} exited");
        ureq::get(&format!("http://{addr}/-/ready")).call().ok().filter(|r| r.status() == 200)
    });
    p
}

#[derive(Clone, Copy, Debug)]
enum Engine {
    VictoriaMetrics,
    Prometheus(&'static str),
}

impl Engine {
    fn otlp_url(self) -> String {
        match self {
            Engine::VictoriaMetrics => format!("{VM}/opentelemetry/v1/metrics"),
            Engine::Prometheus(addr) => format!("http://{addr}/api/v1/otlp/v1/metrics"),
        }
    }

    /// An instant query evaluated at `t`.
    fn at(self, expr: &str, t: DateTime<Utc>) -> Vec<(Vec<String>, f64)> {
        let base = match self {
            Engine::VictoriaMetrics => {
                if let Err(e) = ureq::post(&format!("{VM}/internal/force_flush")).call() {
                    panic!("{VM}: {e}{}", common::backends::backends_down());
                }
                VM.to_owned()
            }
            Engine::Prometheus(addr) => format!("http://{addr}"),
        };
        let t = t.timestamp_millis() as f64 / 1000.0;
        let v = get(&format!("{base}/api/v1/query?query={}&time={t:.3}", urlencode(expr))).expect("query answered");
        assert_eq!(v["status"], "success", "{self:?} {expr}: {v}");
        instant_vector(&v)
    }

    /// The non-zero values at `t` by label set (a series reads zero from its reset point, at its first event, to
    /// the end of that window).
    fn map_at(self, expr: &str, t: DateTime<Utc>) -> BTreeMap<Vec<String>, f64> {
        self.at(expr, t).into_iter().filter(|(_, v)| *v != 0.0).collect()
    }
}

/// Runs the CLI with only the given OTLP settings; returns its stderr after checking it exited 0.
fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    common::without_otel_env(&mut cmd);
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}{}", common::backends::backends_down());
    assert!(stderr.contains(" 0 refused, 0 failed"), "every point delivered: {stderr}");
    stderr
}

/// The end of the 60 s window of event time `t` falls in.
fn window_end(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Span::minutes(1)).unwrap() + Span::minutes(1)
}

/// What the rows say by `t`, per label set, for the three families checked window by window.
fn expected(rows: &[(DateTime<Utc>, MetricsMutation)], t: DateTime<Utc>) -> [BTreeMap<Vec<String>, f64>; 3] {
    let (mut rounds, mut tokens, mut usage) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (at, m) in rows {
        let MetricsMutation::RoundCompleted { status, usage: u, .. } = m else { continue };
        if window_end(*at) > t {
            continue;
        }
        let status = if *status == RoundStatus::Error { "error" } else { "success" };
        *rounds.entry(vec![format!("bamboo_round_status={status}")]).or_insert(0.0) += 1.0;
        for (ty, n) in [("input", u.prompt_tokens), ("output", u.completion_tokens)] {
            let key = vec!["gen_ai_request_model=gpt-4o".to_owned(), format!("gen_ai_token_type={ty}")];
            *tokens.entry(key.clone()).or_insert(0.0) += n as f64;
            *usage.entry(key).or_insert(0.0) += n as f64;
        }
    }
    [rounds, tokens, usage].map(|m| m.into_iter().filter(|(_, v)| *v != 0.0).collect())
}

/// The three families checked window by window, for the series of `sel`.
fn families(sel: &str) -> [String; 3] {
    [
        format!("sum by (bamboo_round_status) (last_over_time(bamboo_rounds_total{{{sel}}}[5d]))"),
        format!(
            "sum by (gen_ai_request_model, gen_ai_token_type) (last_over_time(gen_ai_client_token_usage_sum{{{sel}}}[5d]))"
        ),
        format!(
            "sum by (gen_ai_request_model, gen_ai_token_type) (last_over_time(bamboo_usage_tokens_total{{{sel}}}[5d]))"
        ),
    ]
}

/// The ends of the windows in which rounds completed, in order.
fn round_window_ends(rows: &[(DateTime<Utc>, MetricsMutation)]) -> Vec<DateTime<Utc>> {
    let mut ends: Vec<DateTime<Utc>> = rows
        .iter()
        .filter(|(_, m)| matches!(m, MetricsMutation::RoundCompleted { .. }))
        .map(|(at, _)| window_end(*at))
        .collect();
    ends.dedup();
    ends
}

/// At each window's end and a second before it, the totals are what the rows say by then: each window moves by
/// exactly its rows, at the time they happened.
fn assert_every_window(engine: Engine, rows: &[(DateTime<Utc>, MetricsMutation)], sel: &str) {
    let families = families(sel);
    for end in round_window_ends(rows) {
        for t in [end - Span::seconds(1), end] {
            for (expr, want) in families.iter().zip(expected(rows, t)) {
                assert_eq!(engine.map_at(expr, t), want, "{engine:?} at {t}: {expr}");
            }
        }
    }
}

/// Each day's execute-sync mismatches by reason, as the rows say.
fn assert_mismatches_by_day(engine: Engine, rows: &[(DateTime<Utc>, MetricsMutation)], day0: DateTime<Utc>, sel: &str) {
    for d in 0..3i64 {
        let t = day0 + Span::days(d) + Span::hours(12);
        for reason in ["stale_snapshot", "lost_lock"] {
            let want = rows
                .iter()
                .filter(|(at, m)| {
                    *at <= t && matches!(m, MetricsMutation::ExecuteSyncMismatch { reason: r, .. } if r == reason)
                })
                .count() as f64;
            let q =
                format!("sum(last_over_time(bamboo_execute_sync_mismatches_total{{{sel}, reason=\"{reason}\"}}[5d]))");
            assert_eq!(engine.at(&q, t).first().map(|r| r.1).unwrap_or(0.0), want, "{engine:?} day {d}: {q}");
        }
    }
}

#[test]
fn import_db_puts_every_window_on_the_rows_own_days_with_exemplars_that_lead_to_their_spans() {
    let salt = salt();
    let dir = std::env::temp_dir().join(format!("bamboo-otel-event-time-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("metrics.db");
    let day0 = (Utc::now() - Span::days(4)).duration_trunc(Span::days(1)).unwrap() + Span::hours(8);
    let rows = history(day0);
    write_db(&db, &rows);
    let prom = start_prometheus(&dir, "127.0.0.1:19093");
    let service = format!("event-time-{salt}");
    let db_arg = db.to_str().unwrap();
    // Traces to Jaeger (for the exemplars) and metrics to Prometheus in one run; metrics to VictoriaMetrics in a
    // second run of the same file.
    let prom_url = Engine::Prometheus(prom.addr).otlp_url();
    let stderr = run(
        &["import-db", db_arg],
        &[
            ("OTEL_SERVICE_NAME", &service),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", JAEGER_OTLP_GRPC),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &prom_url),
        ],
    );
    assert!(stderr.contains("windows of event time"), "{stderr}");
    let vm_url = Engine::VictoriaMetrics.otlp_url();
    run(
        &["import-db", db_arg],
        &[
            ("OTEL_SERVICE_NAME", &service),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &vm_url),
        ],
    );

    let sel = format!("service_name=\"{service}\"");
    let (rounds, last_end) = (&families(&sel)[0], *round_window_ends(&rows).last().unwrap());
    for engine in [Engine::Prometheus(prom.addr), Engine::VictoriaMetrics] {
        poll(60, &format!("{engine:?} to hold the import"), || {
            Some(()).filter(|_| !engine.at(rounds, last_end).is_empty())
        });
        assert_every_window(engine, &rows, &sel);
        assert_mismatches_by_day(engine, &rows, day0, &sel);
        // Sessions per day, as the rows say.
        for d in 0..3i64 {
            let t = day0 + Span::days(d) + Span::hours(12);
            let sessions =
                rows.iter().filter(|(at, m)| *at <= t && matches!(m, MetricsMutation::SessionCompleted { .. })).count()
                    as f64;
            let q = format!("sum(last_over_time(bamboo_sessions_total{{{sel}}}[5d]))");
            assert_eq!(engine.at(&q, t).first().map(|r| r.1), Some(sessions), "{engine:?} day {d}: {q}");
        }
        // Nothing before the data began; the rate panels have data inside a session's hour.
        let q = format!("bamboo_rounds_total{{{sel}}}");
        assert!(engine.at(&q, day0 - Span::hours(1)).is_empty(), "{engine:?}: samples before the data");
        let inside = day0 + Span::days(2) + Span::minutes(30);
        let rate = format!("sum(rate(bamboo_rounds_total{{{sel}}}[1h]))");
        assert!(engine.at(&rate, inside).first().is_some_and(|r| r.1 > 0.0), "{engine:?}: {rate} at {inside}");
    }

    // Exemplars: one per round (each round is alone in its window), each naming a span Jaeger holds, with the
    // round's latency and completion time.
    let q = format!("gen_ai_client_operation_duration_seconds_bucket{{{sel}}}");
    let url = format!(
        "http://{}/api/v1/query_exemplars?query={}&start={}&end={}",
        prom.addr,
        urlencode(&q),
        (day0 - Span::hours(1)).timestamp(),
        Utc::now().timestamp()
    );
    let v: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let exemplars: Vec<&Value> =
        v["data"].as_array().unwrap().iter().flat_map(|s| s["exemplars"].as_array().unwrap()).collect();
    let completions: HashMap<i64, f64> = rows
        .iter()
        .filter_map(|(at, m)| match m {
            MetricsMutation::RoundCompleted { .. } => Some((at.timestamp_millis(), 15.0)),
            _ => None,
        })
        .collect();
    assert_eq!(exemplars.len(), completions.len(), "one exemplar per round: {v}");
    for e in exemplars {
        let (trace_id, span_id) = (e["labels"]["trace_id"].as_str().unwrap(), e["labels"]["span_id"].as_str().unwrap());
        let at_ms = (e["timestamp"].as_f64().unwrap() * 1000.0).round() as i64;
        let value: f64 = e["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(completions.get(&at_ms), Some(&value), "an exemplar at a round's completion with its latency: {e}");
        let trace = poll(60, &format!("trace {trace_id} in Jaeger"), || {
            let v = get(&format!("{JAEGER}/api/v3/traces/{trace_id}?raw_traces=true"))?;
            let spans: Vec<Value> = v["result"]["resourceSpans"]
                .as_array()?
                .iter()
                .flat_map(|r| r["scopeSpans"].as_array().unwrap().iter())
                .flat_map(|s| s["spans"].as_array().unwrap().iter().cloned())
                .collect();
            spans.iter().any(|s| s["spanId"] == span_id).then_some(spans)
        });
        let span = trace.iter().find(|s| s["spanId"] == span_id).unwrap();
        assert!(span["name"].as_str().unwrap().starts_with("chat "), "{span}");
        let end_ms = common::jaeger::otlp_int(&span["endTimeUnixNano"]) / 1_000_000;
        assert_eq!(end_ms, at_ms, "the exemplar's time is its span's end");
    }
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_one_shot_replay_leaves_no_dashboard_query_empty_on_either_engine() {
    let dashboard: Value = serde_json::from_str(include_str!("../dashboards/bamboo-agents.json")).unwrap();
    let salt = salt();
    let dir = std::env::temp_dir().join(format!("bamboo-otel-event-time-replay-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let prom = start_prometheus(&dir, "127.0.0.1:19094");
    // The sample traffic (23 minutes of it), a demo session and forwarded requests with token details, ending an
    // hour ago.
    let mut events = common::backends::shifted(&common::sample_events(), Utc::now() - Span::hours(1));
    let base = events.iter().filter_map(|e| e.meta()).map(|m| m.occurred_at).max().unwrap();
    events.extend(bamboo_otel::demo::agent_session(base - Span::minutes(10)));
    events.extend(common::backends::with_token_details(base - Span::minutes(5)));
    let events = common::backends::fresh(&events, &salt);
    let last = events.iter().filter_map(|e| e.meta()).map(|m| m.occurred_at).max().unwrap();
    let file = dir.join("events.jsonl");
    std::fs::write(&file, events.iter().map(|e| e.to_json() + "\n").collect::<String>()).unwrap();
    let service = format!("one-shot-{salt}");
    for engine in [Engine::VictoriaMetrics, Engine::Prometheus(prom.addr)] {
        let url = engine.otlp_url();
        run(
            &["replay", file.to_str().unwrap()],
            &[
                ("OTEL_SERVICE_NAME", &service),
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &url),
            ],
        );
        // Evaluated at the end of the last window, over the dashboard's own ranges (one hour here).
        let t = window_end(last);
        let mut checked = 0;
        for p in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
            for target in p["targets"].as_array().unwrap() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$service", &service)
                    .replace("$__rate_interval", "1h")
                    .replace("$__range", "1h");
                let got = poll(30, &format!("{engine:?}: data for {expr}"), || {
                    Some(engine.at(&expr, t)).filter(|r| !r.is_empty())
                });
                assert!(got.iter().all(|(_, v)| v.is_finite()), "{engine:?} {expr}: {got:?}");
                checked += 1;
            }
        }
        assert!(checked >= 19, "{checked} queries");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `import-db --follow --state` on the same three days, written in two parts with a restart between them and a
/// third run that finds nothing new: every window and every day's mismatch count is what the rows say, once.
#[test]
fn a_follower_restarted_twice_ships_every_window_once() {
    let salt = salt();
    let dir = std::env::temp_dir().join(format!("bamboo-otel-event-time-follow-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (db, state) = (dir.join("metrics.db"), dir.join("state.json"));
    let day0 = (Utc::now() - Span::days(4)).duration_trunc(Span::days(1)).unwrap() + Span::hours(8);
    let rows = history(day0);
    let (before, after): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|(at, _)| *at < day0 + Span::days(2));
    assert!(!before.is_empty() && !after.is_empty());
    write_db(&db, &before);
    let service = format!("event-time-follow-{salt}");
    let sel = format!("service_name=\"{service}\"");
    let rounds = format!("sum(last_over_time(bamboo_rounds_total{{{sel}}}[5d]))");
    let follow = |want_rounds: usize| {
        let mut cmd = Command::new(BIN);
        cmd.arg("import-db").arg(&db).arg("--follow").arg("--state").arg(&state).args(["--poll-ms", "100"]);
        common::without_otel_env(&mut cmd);
        let mut child = cmd
            .env("OTEL_SERVICE_NAME", &service)
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
            .env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", Engine::VictoriaMetrics.otlp_url())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The rows' windows are days old: complete at once, shipped after the first poll.
        let t = Utc::now();
        let shipped = std::panic::catch_unwind(|| {
            poll(60, &format!("{want_rounds} rounds in VictoriaMetrics"), || {
                let got = Engine::VictoriaMetrics.at(&rounds, t).first().map(|r| r.1);
                (got == Some(want_rounds as f64)).then_some(())
            })
        });
        if let Err(e) = shipped {
            let _ = child.kill();
            std::panic::resume_unwind(e);
        }
        // The last run finds its data already there: stop it only once it handles SIGTERM (it then finishes
        // the poll it is in).
        poll(30, "the follower to handle SIGTERM", || sigterm_handled(child.id()).then_some(()));
        assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{:?} {stderr}", out.status);
        assert!(stderr.contains(" 0 refused, 0 failed"), "every point delivered: {stderr}");
    };
    let completed = |rows: &[(DateTime<Utc>, MetricsMutation)]| {
        rows.iter().filter(|(_, m)| matches!(m, MetricsMutation::RoundCompleted { .. })).count()
    };
    follow(completed(&before));
    write_db(&db, &after);
    follow(completed(&rows));
    follow(completed(&rows));

    assert_every_window(Engine::VictoriaMetrics, &rows, &sel);
    assert_mismatches_by_day(Engine::VictoriaMetrics, &rows, day0, &sel);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether process `pid` has a handler for SIGTERM (Linux: bit 15 of `SigCgt` in /proc/PID/status).
fn sigterm_handled(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("SigCgt:").map(|m| m.trim().to_owned())))
        .and_then(|m| u64::from_str_radix(&m, 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}
