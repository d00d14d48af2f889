//! The `bamboo-otel` binary, driven as users run it, against the real backends (Phoenix, VictoriaMetrics).
#![cfg(feature = "cli")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use bamboo_otel::console::MetricTotals;
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::{Output as TrOutput, TranslateConfig, TtlClock};
use bamboo_otel::MetricsEvent;
use common::backends::*;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bamboo-otel-cli-{tag}-{}", salt()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The environment a user would set: traces to Phoenix over gRPC, metrics to VictoriaMetrics over HTTP.
fn otel_env(cmd: &mut Command, project: &str, service: &str) {
    cmd.env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", PHOENIX_OTLP_GRPC)
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", format!("{VM}/opentelemetry/v1/metrics"))
        .env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("openinference.project.name={project}"));
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into(), String::from_utf8_lossy(&stderr).into())
}

fn lines(events: &[MetricsEvent]) -> Vec<String> {
    events.iter().map(MetricsEvent::to_json).collect()
}

/// What the translator makes of `events` (replay: event clock; open spans finished at the end when `finish`).
fn translate(events: &[MetricsEvent], finish: bool) -> TrOutput {
    common::run_with(TranslateConfig { clock: TtlClock::EventTime, ..Default::default() }, events, finish)
}

fn input_tokens(out: &TrOutput) -> f64 {
    let mut totals = MetricTotals::new();
    totals.extend(&out.metrics);
    totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum
}

fn vm_input_tokens(service: &str, want: f64) {
    vm_wait_for(
        // Replays stamp metric points with the events' own times (weeks old for the sample traffic): the latest
        // point of each series, however old, holds its total.
        &format!(
            "sum(last_over_time(gen_ai_client_token_usage_sum{{service_name=\"{service}\",gen_ai_token_type=\"input\"}}[1000d]))"
        ),
        want,
    );
}

/// `N spans exported` from a summary line.
fn spans_exported(stderr: &str) -> u64 {
    let s = stderr.lines().find(|l| l.contains(" spans exported")).unwrap_or_else(|| panic!("no summary in {stderr}"));
    let before = &s[..s.find(" spans exported").unwrap()];
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn replay_exports_files_and_gzip_exactly_and_reports_each_bad_line() {
    let salt = salt();
    let (project, service) = (format!("cli-replay-{salt}"), format!("cli-replay-{salt}"));
    let mut events = common::sample_events();
    events.extend(bamboo_otel::demo::agent_session(chrono::Utc::now() - chrono::Duration::minutes(3)));
    let events = fresh(&events, &salt);
    let dir = tmpdir("replay");
    let (first, second) = events.split_at(events.len() / 2);
    let plain = dir.join("events.jsonl");
    let mut text = lines(first).join("\n") + "\n";
    // Bad lines at known positions: each must be reported with its line number and skipped.
    let bad = [
        "this is not json",
        r#"{"Chat":{"SessionPaused":{"meta":{}}}}"#,
        r#"{"Chat":{"SessionStarted":{"meta":{"event_id":"x","occurred_at":"2026-11-02T09:00:00Z","trace_id":null},"model":"m"}}}"#,
        r#"{"Chat":{"SessionStarted":{"meta":{"event_id":"x","occurred_at":"yesterday","trace_id":null},"session_id":"s","model":"m"}}}"#,
    ];
    let first_bad = first.len() + 1;
    for b in bad {
        text.push_str(b);
        text.push('\n');
    }
    std::fs::write(&plain, text).unwrap();
    let gz = dir.join("more.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all((lines(second).join("\n") + "\n").as_bytes()).unwrap();
    enc.finish().unwrap();

    let mut cmd = Command::new(BIN);
    cmd.arg("replay").arg(&plain).arg(&gz);
    otel_env(&mut cmd, &project, &service);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 2, "rejected lines give exit code 2: {stderr}");
    for (i, code) in ["invalid_json", "unknown_variant", "missing_field", "invalid_field"].iter().enumerate() {
        let want = format!("{}:{}: ", plain.display(), first_bad + i);
        assert!(stderr.lines().any(|l| l.starts_with(&want) && l.contains(code)), "{want}…{code} in {stderr}");
    }
    let want = translate(&events, true);
    assert_eq!(spans_exported(&stderr), want.spans.len() as u64, "{stderr}");
    assert_phoenix_has_exactly(&project, &want.spans);
    vm_input_tokens(&service, input_tokens(&want));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn otel_sdk_disabled_in_the_environment_sends_nothing() {
    let salt = salt();
    let dir = tmpdir("disabled");
    let file = dir.join("events.jsonl");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &salt);
    std::fs::write(&file, lines(&events).join("\n")).unwrap();
    let quiet = format!("cli-disabled-{salt}");
    let mut cmd = Command::new(BIN);
    cmd.arg("replay").arg(&file).env("OTEL_SDK_DISABLED", "true");
    otel_env(&mut cmd, &quiet, &quiet);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(spans_exported(&stderr), 0, "{stderr}");
    // A control run afterwards proves Phoenix had time to ingest; the disabled project must still be absent.
    let control = format!("cli-control-{salt}");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &format!("{salt}c"));
    std::fs::write(&file, lines(&events).join("\n")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("replay").arg(&file).env("OTEL_SDK_DISABLED", "false");
    otel_env(&mut cmd, &control, &control);
    assert_eq!(run(&mut cmd).0, 0);
    wait_for_spans(&control, 14);
    assert!(phoenix_spans(&quiet).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_configuration_value_is_named_and_exit_code_is_1() {
    let (code, _, stderr) =
        run(Command::new(BIN).args(["replay", "/dev/null"]).env("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp"));
    assert_eq!(code, 1);
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grcp: expected grpc, http/protobuf or http/json"), "{stderr}");
}

#[test]
fn an_unreachable_backend_is_exit_code_1_and_says_so() {
    let dir = tmpdir("unreachable");
    let file = dir.join("events.jsonl");
    std::fs::write(&file, lines(&bamboo_otel::demo::agent_session(chrono::Utc::now())).join("\n")).unwrap();
    let (code, _, stderr) = run(Command::new(BIN)
        .args(["replay", "--endpoint", "http://127.0.0.1:9", "--flush-timeout", "3"])
        .arg(&file)
        .env("OTEL_METRICS_EXPORTER", "none"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("EXPORT FAILED: 14 spans dropped"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_counts_by_kind_and_lists_problems() {
    let dir = tmpdir("check");
    let file = dir.join("events.jsonl");
    let mut text = lines(&common::sample_events()).join("\n");
    text.push_str("\n{\"Forward\":{\"RequestStarted\":{}}}\n\u{1}\n");
    std::fs::write(&file, text).unwrap();
    let (code, stdout, stderr) = run(Command::new(BIN).arg("check").arg(&file));
    assert_eq!(code, 2);
    let n = common::sample_events().len();
    assert!(stdout.contains(&format!("{n} events, 2 problems")), "{stdout}");
    let tools = common::sample_events().iter().filter(|e| e.variant() == "Chat.ToolCalled").count();
    assert!(stdout.lines().any(|l| l.contains("Chat.ToolCalled") && l.trim_end().ends_with(&tools.to_string())));
    assert!(stderr.contains(&format!("{}:{}: ", file.display(), n + 1)), "{stderr}");
    assert!(stderr.contains(&format!("{}:{}: ", file.display(), n + 2)), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_prints_a_span_tree_and_metrics_without_a_collector() {
    let (code, stdout, stderr) = run(Command::new(BIN).arg("demo"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("invoke_agent bamboo") && stdout.contains("execute_tool") && stdout.contains("== metrics"));
    assert_eq!(spans_exported(&stderr), 14);
}

// ---- follow ----

fn checkpoint_line(state: &Path) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    v["position"]["line"].as_u64()
}

fn wait_checkpoint(state: &Path, line: u64) {
    poll(60, &format!("checkpoint at line {line}"), || (checkpoint_line(state) == Some(line)).then_some(()));
}

fn start_follow(file: &Path, state: &Path, project: &str, service: &str) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("follow").arg(file).arg("--state").arg(state).args(["--poll-ms", "50", "--checkpoint-ms", "100"]);
    otel_env(&mut cmd, project, service);
    cmd.env("OTEL_METRIC_EXPORT_INTERVAL", "1000").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn stop(child: Child) -> String {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn follow_survives_appends_rotation_truncation_and_a_restart_without_gaps_or_duplicates() {
    let salt = salt();
    let (project, service) = (format!("cli-follow-{salt}"), format!("cli-follow-{salt}"));
    let events = fresh(&common::sample_events(), &salt);
    let all = lines(&events);
    let dir = tmpdir("follow");
    let (file, state) = (dir.join("events.jsonl"), dir.join("state.json"));
    let chunk = |a: usize, b: usize| all[a..b].iter().map(|l| format!("{l}\n")).collect::<String>();

    append(&file, &chunk(0, 100));
    let child = start_follow(&file, &state, &project, &service);
    wait_checkpoint(&state, 100);
    // A line written in two parts is read once, whole.
    let (head, tail) = all[100].split_at(all[100].len() / 2);
    append(&file, head);
    append(&file, &format!("{tail}\n{}", chunk(101, 150)));
    wait_checkpoint(&state, 150);
    // Rotation: the old file is renamed, a new one takes its name.
    std::fs::rename(&file, dir.join("events.jsonl.1")).unwrap();
    append(&file, &chunk(150, 220));
    wait_checkpoint(&state, 70);
    let first_run = stop(child);
    // Written while the follower is down: the restart must pick it up from the checkpoint.
    append(&file, &chunk(220, 260));
    let child = start_follow(&file, &state, &project, &service);
    wait_checkpoint(&state, 110);
    // Truncation in place, then new lines shorter than what was there.
    let rest = chunk(260, all.len());
    assert!(rest.len() < std::fs::metadata(&file).unwrap().len() as usize, "the test needs a shrinking file");
    std::fs::write(&file, &rest).unwrap();
    wait_checkpoint(&state, (all.len() - 260) as u64);
    let second_run = stop(child);

    // Live mode leaves never-finished spans open (their starts wait in the checkpoint), so compare without finish.
    let want = translate(&events, false);
    let sent = spans_exported(&first_run) + spans_exported(&second_run);
    assert_eq!(sent, want.spans.len() as u64, "no span twice, none missing:\n{first_run}\n{second_run}");
    assert_phoenix_has_exactly(&project, &want.spans);
    vm_input_tokens(&service, input_tokens(&want));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn header_values_never_appear_in_any_output() {
    let secret = format!("sk-live-{}", salt());
    let dir = tmpdir("secret");
    let file = dir.join("events.jsonl");
    std::fs::write(&file, lines(&bamboo_otel::demo::agent_session(chrono::Utc::now())).join("\n")).unwrap();
    let header = format!("x-api-key={secret},x-tenant=acme");
    let runs: Vec<Vec<(&str, String)>> = vec![
        // Unreachable over gRPC and over HTTP: export errors are logged and summarised.
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
            ("OTEL_EXPORTER_OTLP_HEADERS", header.clone()),
        ],
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", header.clone()),
        ],
        // A malformed header list is a configuration error that must not echo the value.
        vec![("OTEL_EXPORTER_OTLP_HEADERS", format!("x-api-key:{secret}"))],
        vec![("OTEL_EXPORTER_OTLP_METRICS_HEADERS", secret.clone())],
        // Working export (Phoenix ignores the header).
        vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", PHOENIX_OTLP_GRPC.into()), ("OTEL_EXPORTER_OTLP_HEADERS", header)],
    ];
    for env in runs {
        let mut cmd = Command::new(BIN);
        cmd.args(["replay", "--flush-timeout", "3", "--max-errors", "1000"])
            .arg(&file)
            .env("OTEL_METRICS_EXPORTER", "none");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let (code, stdout, stderr) = run(&mut cmd);
        assert!(!stdout.contains(&secret) && !stderr.contains(&secret), "secret leaked with {env:?}:\n{stderr}");
        assert!(!stderr.is_empty(), "every run prints a summary or an error");
        let _ = code;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_outage_is_logged_once_not_once_per_batch() {
    let dir = tmpdir("outage-log");
    let file = dir.join("events.jsonl");
    // 20 sessions in batches of 14 spans: 20 batches fail, one warning.
    let mut events = Vec::new();
    for i in 0..20 {
        events.extend(bamboo_otel::demo::agent_session(chrono::Utc::now() + chrono::Duration::minutes(i)));
    }
    std::fs::write(&file, lines(&events).join("\n")).unwrap();
    let (code, _, stderr) = run(Command::new(BIN)
        .args(["replay", "--endpoint", "http://127.0.0.1:9", "--flush-timeout", "5"])
        .arg(&file)
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "14"));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.matches("span export failed").count(), 1, "one warning per outage:\n{stderr}");
    assert!(stderr.contains("EXPORT FAILED: 280 spans dropped"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
