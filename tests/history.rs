//! History as it happened, for a Prometheus whose configuration must not change: a `metrics.db` written by
//! Bamboo 2026.11.1's own `SqliteMetricsStorage` over three past days, `import-db --openmetrics`, the real
//! `promtool tsdb create-blocks-from openmetrics`, and a Prometheus started on those blocks, queried on the
//! data's own days.
#![cfg(all(feature = "bamboo", feature = "cli"))]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use bamboo_metrics::storage::MetricsMutation;
use bamboo_metrics::types::RoundStatus;
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use common::backends::{instant_vector, poll, salt, urlencode};
use common::bamboo_history::history;
use common::collector::server_bin;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");
const PROM: &str = "127.0.0.1:19092";

struct Prometheus(Child);
impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query_at(expr: &str, t: DateTime<Utc>) -> Vec<(Vec<String>, f64)> {
    let url = format!("http://{PROM}/api/v1/query?query={}&time={}", urlencode(expr), t.timestamp());
    let v: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
    assert_eq!(v["status"], "success", "{expr}: {v}");
    instant_vector(&v)
}

fn sum_at(expr: &str, t: DateTime<Utc>) -> f64 {
    query_at(expr, t).iter().map(|(_, v)| v).sum()
}

#[test]
fn a_backfilled_history_answers_on_its_own_days_with_what_the_rows_say() {
    let salt = salt();
    let dir = std::env::temp_dir().join(format!("bamboo-otel-history-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("metrics.db");
    let day0 = (Utc::now() - Span::days(4)).duration_trunc(Span::days(1)).unwrap() + Span::hours(8);
    let rows = history(day0);
    common::bamboo_history::write_db(&db, &rows);

    let service = format!("history-{salt}");
    let om = dir.join("history.om");
    let out = Command::new(BIN)
        .args(["import-db"])
        .arg(&db)
        .arg("--openmetrics")
        .arg(&om)
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", &service)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("written to"), "{stderr}");

    let data = dir.join("tsdb");
    let out = Command::new(server_bin("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let _prom = Prometheus(
        Command::new(server_bin("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={PROM}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll(60, "the backfilled Prometheus to be ready", || {
        ureq::get(&format!("http://{PROM}/-/ready")).call().ok().filter(|r| r.status() == 200)
    });

    let sel = format!("service_name=\"{service}\"");
    // At the end of each day, the cumulative totals are the rows' up to then: not one spike at the import.
    for d in 0..3i64 {
        let t = day0 + Span::days(d) + Span::hours(12);
        let upto: Vec<&MetricsMutation> = rows.iter().filter(|(at, _)| *at <= t).map(|(_, m)| m).collect();
        let rounds = upto.iter().filter(|m| matches!(m, MetricsMutation::RoundCompleted { .. })).count() as f64;
        let failed = upto
            .iter()
            .filter(|m| matches!(m, MetricsMutation::RoundCompleted { status: RoundStatus::Error, .. }))
            .count() as f64;
        let input: u64 = upto
            .iter()
            .filter_map(|m| match m {
                MetricsMutation::RoundCompleted { usage, .. } => Some(usage.prompt_tokens),
                _ => None,
            })
            .sum();
        let last = |e: &str| sum_at(&format!("last_over_time({e}[5d])"), t);
        assert_eq!(last(&format!("bamboo_rounds_total{{{sel}}}")), rounds, "day {d}: rounds");
        assert_eq!(last(&format!("bamboo_rounds_total{{{sel}, bamboo_round_status=\"error\"}}")), failed, "day {d}");
        let tokens = format!(
            "gen_ai_client_token_usage_sum{{{sel}, gen_ai_token_type=\"input\", gen_ai_request_model=\"gpt-4o\"}}"
        );
        assert_eq!(last(&tokens), input as f64, "day {d}: input tokens");
        let sessions = upto.iter().filter(|m| matches!(m, MetricsMutation::SessionCompleted { .. })).count() as f64;
        assert_eq!(last(&format!("bamboo_sessions_total{{{sel}}}")), sessions, "day {d}: sessions");
        let mismatches = |reason: &str| {
            upto.iter()
                .filter(|m| matches!(m, MetricsMutation::ExecuteSyncMismatch { reason: r, .. } if r == reason))
                .count() as f64
        };
        for reason in ["stale_snapshot", "lost_lock"] {
            let got = last(&format!("bamboo_execute_sync_mismatches_total{{{sel}, reason=\"{reason}\"}}"));
            assert_eq!(got, mismatches(reason), "day {d}: {reason} mismatches");
        }
        // Nothing yet before the data began.
        assert!(query_at(&format!("bamboo_rounds_total{{{sel}}}"), day0 - Span::hours(1)).is_empty());
    }
    // The dashboard's rate panels have data inside a session's hour, on the day it happened.
    let inside = day0 + Span::days(2) + Span::minutes(30);
    let rate = format!("sum(rate(bamboo_rounds_total{{{sel}}}[1h]))");
    assert!(sum_at(&rate, inside) > 0.0, "{rate} at {inside}");
    let p95 = format!(
        "histogram_quantile(0.95, sum by (le) (rate(gen_ai_client_operation_duration_seconds_bucket{{{sel}}}[1h])))"
    );
    let q = query_at(&p95, inside);
    assert!(q.len() == 1 && q[0].1 > 0.0 && q[0].1 <= 81.92, "{p95}: {q:?}");
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn replay_writes_each_series_up_to_the_translators_totals_on_the_streams_own_timeline() {
    let dir = std::env::temp_dir().join(format!("bamboo-otel-history-replay-{}", salt()));
    std::fs::create_dir_all(&dir).unwrap();
    let om = dir.join("sample.om");
    let input = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sample-events.jsonl");
    let out = Command::new(BIN)
        .arg("replay")
        .arg(&input)
        .args(["--openmetrics"])
        .arg(&om)
        .args(["--window", "30"])
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "replayed")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));

    let events = common::sample_events();
    let mut totals = bamboo_otel::console::MetricTotals::new();
    totals.extend(&common::run(&events).metrics);
    let (first, last) = events
        .iter()
        .filter_map(|e| e.meta())
        .map(|m| m.occurred_at)
        .fold((DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC), |(a, b), t| (a.min(t), b.max(t)));
    // The last sample of each series is its total; every sample lies on the stream's timeline (windows of 30 s).
    let last_of = |prefix: &str| -> f64 {
        let mut by_series = std::collections::HashMap::new();
        for line in text.lines().filter(|l| l.starts_with(prefix)) {
            let (series, rest) = line.rsplit_once('}').unwrap();
            let mut it = rest.split_whitespace();
            let (v, ts): (f64, f64) = (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap());
            let ts = DateTime::<Utc>::from_timestamp_millis((ts * 1000.0) as i64).unwrap();
            assert!(ts > first && ts <= last + Span::seconds(30), "{line}: outside {first} … {last}");
            by_series.insert(series.to_owned(), v);
        }
        assert!(!by_series.is_empty(), "no {prefix} samples");
        by_series.values().sum()
    };
    use bamboo_otel::semconv::Instrument;
    assert_eq!(last_of("bamboo_rounds_total{"), totals.total(Instrument::Rounds, &[]).sum);
    assert_eq!(last_of("bamboo_tool_calls_total{"), totals.total(Instrument::ToolCalls, &[]).sum);
    assert_eq!(last_of("gen_ai_client_token_usage_sum{"), totals.total(Instrument::TokenUsage, &[]).sum);
    assert_eq!(last_of("gen_ai_client_token_usage_count{"), totals.total(Instrument::TokenUsage, &[]).count as f64);
    let _ = std::fs::remove_dir_all(&dir);
}
