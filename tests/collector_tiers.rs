//! The scale-out story, run for real: three bridges in separate processes (`bamboo-otel replay`), where parts of
//! one session come from different processes and join only by their deterministic ids, → the gateway tier
//! (deploy/collector-gateway.yaml, `loadbalancing` by trace id) → two tail-sampling collectors
//! (deploy/collector-sampling.yaml) → Jaeger; metrics → the gateway → Prometheus. Both configs run as shipped;
//! only the environment variables they read are set. The collectors are the official modules built by
//! `scripts/backends.sh` (servers/otelcol).
#![cfg(all(feature = "cli", feature = "otel", feature = "grpc"))]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

use bamboo_otel::console::MetricTotals;
use bamboo_otel::events::{ForwardStatus, MetricsEvent, SessionStatus};
use bamboo_otel::semconv::Instrument;
use bamboo_otel::translate::{Output, SpanRecord, SpanStatus};
use serde_json::Value;

use common::backends::{poll, salt, PHOENIX_OTLP_GRPC};
use common::collector::Collector;
use common::jaeger::find_traces;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_bamboo-otel");
/// The sampling tier's `some-of-the-rest` share, as shipped.
const SHARE: f64 = 0.10;

/// The three processes' inputs. Session `i`: three rounds with tool calls; every tenth fails a round, every
/// tenth (offset 1) never completes; when `i % 3 == 0` its rounds 2 and 3 come from the second process, the rest
/// from the first. Forwarded requests (their own traces) come from the third.
fn workload(salt: &str, sessions: usize, requests: usize) -> [Vec<MetricsEvent>; 3] {
    let mut files: [Vec<MetricsEvent>; 3] = Default::default();
    for i in 0..sessions {
        let s = format!("tier-session-{salt}-{i}");
        let id = |k: String| format!("{salt}-{i}-{k}");
        let base = i as i64 * 50;
        // Which process reports the session's own events, and which its round `r`.
        let home = [0, 1, 2][i % 3];
        let round_home = |r: i64| if i % 3 == 0 && r > 1 { 1 } else { home };
        files[home].push(session_started(&id("ss".into()), base, &s, "claude-sonnet-4-5", None));
        for r in 1..=3 {
            let round = format!("{s}-round-{r}");
            let t = base + r * 1_000;
            let f = &mut files[round_home(r)];
            f.push(round_started(&id(format!("rs{r}")), t, &s, &round, "claude-sonnet-4-5"));
            f.push(tool(&id(format!("t{r}")), t + 300, &s, &round, &id(format!("call{r}")), "Read", 40, true));
            f.push(if i % 10 == 0 && r == 2 {
                round_failed(&id(format!("rc{r}")), t + 800, &s, &round, 800, "Provider error: 529 Overloaded")
            } else {
                round_completed(&id(format!("rc{r}")), t + 800, &s, &round, 800, usage(1_000 + r as u64, 50))
            });
        }
        if i % 10 != 1 {
            files[home].push(session_completed(&id("sc".into()), base + 4_000, &s, SessionStatus::Completed));
        }
    }
    for j in 0..requests {
        let r = format!("tier-request-{salt}-{j}");
        let t = j as i64 * 30;
        files[2].push(request_started(&format!("{r}-s"), t, &r, "anthropic.messages", "claude-sonnet-4-5", None));
        let u = Some(usage(2_000, 100));
        files[2].push(request_completed(&format!("{r}-c"), t + 400, &r, 200, ForwardStatus::Success, u, 400, None));
    }
    files
}

/// What each process's own translator makes of its file (the bridge finishes open spans at shutdown).
fn per_process(files: &[Vec<MetricsEvent>; 3]) -> Vec<Output> {
    files.iter().map(|f| common::backends::expected(f)).collect()
}

fn write(dir: &Path, files: &[Vec<MetricsEvent>; 3]) -> Vec<std::path::PathBuf> {
    files
        .iter()
        .enumerate()
        .map(|(n, events)| {
            let path = dir.join(format!("bridge-{n}.jsonl"));
            std::fs::write(&path, events.iter().map(|e| e.to_json() + "\n").collect::<String>()).unwrap();
            path
        })
        .collect()
}

/// Runs the three bridges at once, each its own process, into the gateway.
fn run_bridges(paths: &[std::path::PathBuf], gateway: &str, service: &str) {
    let children: Vec<_> = paths
        .iter()
        .map(|p| {
            let mut cmd = Command::new(BIN);
            // Three live bridges: metrics on the wall clock (the events are weeks old, beyond the shared
            // Prometheus' out-of-order window).
            cmd.arg("replay").arg(p).args(["--metrics-clock", "wall"]);
            common::without_otel_env(&mut cmd);
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{gateway}:4317"))
                .env("OTEL_SERVICE_NAME", service)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, path) in children.into_iter().zip(paths) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
}

/// Span ids per trace id, over every process's spans (a span two processes both report counts once).
fn by_trace(outputs: &[Output]) -> HashMap<String, Vec<&SpanRecord>> {
    let mut out: HashMap<String, Vec<&SpanRecord>> = HashMap::new();
    for o in outputs {
        for s in &o.spans {
            out.entry(s.trace_id.to_string()).or_default().push(s);
        }
    }
    out
}

/// What the sampling policies must keep: a trace with an error or an incomplete span.
fn must_keep(spans: &[&SpanRecord]) -> bool {
    spans.iter().any(|s| matches!(s.status, SpanStatus::Error(_)) || s.is_incomplete())
}

/// Every span Jaeger holds for `service`, as (trace id → span id → parent span id).
fn jaeger_spans(service: &str) -> HashMap<String, HashMap<String, String>> {
    let from = common::t0() - chrono::Duration::days(1);
    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    for s in find_traces(service, from, to) {
        assert_eq!(s.resource.get("service.name"), Some(&Value::from(service)));
        let spans = out.entry(s.str("traceId").to_owned()).or_default();
        spans.insert(s.str("spanId").to_owned(), s.str("parentSpanId").to_owned());
    }
    out
}

struct Tiers {
    gateway: Collector,
    samplers: Vec<Collector>,
}

/// The gateway on `hosts[0]` and two samplers on `hosts[1]` and `hosts[2]`, all as shipped in deploy/.
fn start_tiers(hosts: [&str; 3], log_dir: &Path, extra_sampler_env: &[(&str, &str)]) -> Tiers {
    let samplers: Vec<Collector> = hosts[1..]
        .iter()
        .enumerate()
        .map(|(n, host)| {
            let mut env = vec![
                ("SAMPLING_HOST", *host),
                // Long enough for all three processes' parts of a session to arrive; short for a test.
                ("SAMPLING_DECISION_WAIT", "5s"),
                ("JAEGER_OTLP_ENDPOINT", "127.0.0.2:4317"),
                // No Tempo here: the sampling tier's second exporter goes to Phoenix, a trace backend too.
                ("TEMPO_OTLP_ENDPOINT", PHOENIX_OTLP_GRPC.trim_start_matches("http://")),
            ];
            env.extend_from_slice(extra_sampler_env);
            Collector::start(&format!("sampling-{}", n + 1), "collector-sampling.yaml", host, &env, log_dir)
        })
        .collect();
    let endpoints = format!("[{}:4317, {}:4317]", hosts[1], hosts[2]);
    let gateway = Collector::start(
        "gateway",
        "collector-gateway.yaml",
        hosts[0],
        &[
            ("GATEWAY_HOST", hosts[0]),
            ("SAMPLING_ENDPOINTS", &endpoints),
            ("METRICS_OTLP_ENDPOINT", &common::prometheus::otlp_metrics_url()),
        ],
        log_dir,
    );
    Tiers { gateway, samplers }
}

/// Waits until the samplers have decided `traces` traces between them and sent what they kept: every decision
/// counts once under each policy, so one policy's sampled and not-sampled counts add up to the traces decided.
fn wait_for_decisions(tiers: &Tiers, traces: usize) {
    let decided = || -> f64 {
        tiers
            .samplers
            .iter()
            .map(|s| s.own_series("otelcol_processor_tail_sampling_count_traces_sampled", "policy=\"errors\""))
            .sum()
    };
    let last = std::cell::Cell::new(0.0);
    common::backends::poll_explained(
        120,
        || {
            last.set(decided());
            let idle = tiers.samplers.iter().all(|s| s.own_metric("otelcol_exporter_queue_size") == 0.0);
            (last.get() >= traces as f64 && idle).then_some(())
        },
        || {
            let metrics: Vec<_> = tiers.samplers.iter().map(|s| (&s.name, s.own_metrics("otelcol_"))).collect();
            format!("waiting for the samplers: they decided {} of {traces} traces; {metrics:#?}", last.get())
        },
    );
}

fn log_dir(salt: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bamboo-otel-tiers-{salt}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn three_bridges_through_the_gateway_and_two_samplers_keep_whole_traces() {
    let salt = salt();
    let service = format!("tiers-{salt}");
    let dir = log_dir(&salt);
    let tiers = start_tiers(["127.0.0.3", "127.0.0.4", "127.0.0.5"], &dir, &[]);

    let files = workload(&salt, 900, 300);
    let outputs = per_process(&files);
    let want = by_trace(&outputs);
    run_bridges(&write(&dir, &files), "127.0.0.3", &service);

    // Every trace that must be kept reaches Jaeger; then the samplers finish deciding the rest.
    let keep: HashSet<&String> = want.iter().filter(|(_, s)| must_keep(s)).map(|(t, _)| t).collect();
    poll(120, "every error and incomplete trace in Jaeger", || {
        let got = jaeger_spans(&service);
        keep.iter().all(|t| got.contains_key(*t)).then_some(())
    });
    wait_for_decisions(&tiers, want.len());
    let got = jaeger_spans(&service);

    let mut others = 0usize;
    let mut others_kept = 0usize;
    for (trace, spans) in &want {
        let ids: HashSet<String> = spans.iter().map(|s| s.span_id.to_string()).collect();
        match got.get(trace) {
            Some(stored) => {
                let stored_ids: HashSet<String> = stored.keys().cloned().collect();
                assert_eq!(stored_ids, ids, "trace {trace}: Jaeger keeps it whole or not at all");
                for (span, parent) in stored {
                    assert!(
                        parent.is_empty() || stored.contains_key(parent),
                        "trace {trace}: {span}'s parent {parent} is missing"
                    );
                }
            }
            None => assert!(!must_keep(spans), "trace {trace} has an error or an incomplete span and was not kept"),
        }
        if !must_keep(spans) {
            others += 1;
            others_kept += got.contains_key(trace) as usize;
        }
    }
    assert!(got.keys().all(|t| want.contains_key(t)), "Jaeger holds only this run's traces");
    // Sessions whose spans came from two processes, joined only by their deterministic ids.
    let traces_of = |o: &Output| o.spans.iter().map(|s| s.trace_id.to_string()).collect::<HashSet<_>>();
    let split = traces_of(&outputs[0]).intersection(&traces_of(&outputs[1])).count();
    let split_kept =
        traces_of(&outputs[0]).intersection(&traces_of(&outputs[1])).filter(|t| got.contains_key(*t)).count();
    assert!(split > 100 && split_kept > 0 && others > 300 && keep.len() > 100, "the workload exercises every case");

    // The share of the other traces kept is the configured one: binomial, four standard deviations.
    let mean = others as f64 * SHARE;
    let sd = (others as f64 * SHARE * (1.0 - SHARE)).sqrt();
    eprintln!(
        "tiers: {} traces, {} must be kept (all were), {split} split across processes ({split_kept} kept, whole), \
         {others_kept} of {others} others kept (expected {mean:.1} ± {sd:.1})",
        want.len(),
        keep.len()
    );
    assert!(
        (others_kept as f64 - mean).abs() <= 4.0 * sd,
        "{others_kept} of {others} kept, expected {mean:.1} ± {:.1}",
        4.0 * sd
    );

    // Metrics: the three processes' totals, exact in Prometheus after the gateway.
    let mut totals = MetricTotals::new();
    for o in &outputs {
        totals.extend(&o.metrics);
    }
    let svc = format!("service_name=\"{service}\"");
    let checks = [
        (format!("sum(bamboo_rounds_total{{{svc}}})"), totals.total(Instrument::Rounds, &[]).sum),
        (format!("sum(bamboo_tool_calls_total{{{svc}}})"), totals.total(Instrument::ToolCalls, &[]).sum),
        (format!("sum(bamboo_sessions_total{{{svc}}})"), totals.total(Instrument::Sessions, &[]).sum),
        (format!("sum(bamboo_forward_requests_total{{{svc}}})"), totals.total(Instrument::ForwardRequests, &[]).sum),
        (
            format!("sum(gen_ai_client_token_usage_sum{{{svc},gen_ai_token_type=\"input\"}})"),
            totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum,
        ),
        (format!("sum(bamboo_otel_events_total{{{svc}}})"), files.iter().map(Vec::len).sum::<usize>() as f64),
        (format!("count(count by (instance) (bamboo_otel_events_total{{{svc}}}))"), 3.0),
    ];
    for (expr, want) in checks {
        assert!(want > 0.0, "{expr}");
        common::prometheus::wait_for(&expr, want);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One sampling collector is SIGKILLed mid-stream and restarted. Measured and printed (RELIABILITY.md): what the
/// bridge sent, what the gateway retried, and which traces Jaeger then lacks in part or in whole. Asserted: the
/// bridge loses nothing, traces sent well before the kill or after the restart are whole, and nothing is lost
/// outside the window in which the killed sampler held undecided traces in memory.
#[test]
fn a_sampler_killed_mid_stream_loses_only_what_it_held_undecided() {
    use bamboo_otel::{Bridge, ExporterKind, Protocol};
    use std::time::{Duration, Instant};

    let salt = salt();
    let service = format!("tiers-kill-{salt}");
    let dir = log_dir(&salt);
    // Keep every trace, so anything missing in Jaeger is a loss, not a sampling decision.
    let mut tiers = start_tiers(["127.0.0.6", "127.0.0.7", "127.0.0.8"], &dir, &[("SAMPLING_PERCENTAGE", "100")]);
    let bridge = Bridge::builder()
        .service_name(&service)
        .traces_endpoint("http://127.0.0.6:4317", Protocol::Grpc)
        .metrics_exporter(ExporterKind::None)
        .replay_clock()
        .build()
        .unwrap();

    // 60 waves of 10 whole sessions (one process, one translator), one wave every 100 ms: 6 s of traffic. The
    // second sampler dies at wave 20 and comes back at wave 35.
    const WAVES: usize = 60;
    const KILL: usize = 20;
    const RESTART: usize = 35;
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut wave_of: HashMap<String, usize> = HashMap::new();
    let mut want: HashMap<String, HashSet<String>> = HashMap::new();
    let (mut killed_at, mut restarted_at) = (None, None);
    let mut held = 0.0;
    for wave in 0..WAVES {
        if wave == KILL {
            // What the sampler has accepted but not yet sent on: the traces it holds undecided.
            let s = &tiers.samplers[1];
            held = s.own_metric("otelcol_receiver_accepted_spans") - s.own_metric("otelcol_exporter_sent_spans") / 2.0;
            tiers.samplers[1].kill();
            killed_at = Some(Instant::now());
        }
        if wave == RESTART {
            tiers.samplers[1].restart();
            restarted_at = Some(Instant::now());
        }
        let files = workload(&format!("{salt}-w{wave}"), 10, 0);
        let events: Vec<MetricsEvent> = files.into_iter().flatten().collect();
        for s in common::backends::expected(&events).spans {
            let t = s.trace_id.to_string();
            want.entry(t.clone()).or_default().insert(s.span_id.to_string());
            wave_of.insert(t.clone(), wave);
            sent_at.insert(t, Instant::now());
        }
        for e in events {
            bridge.record(e);
        }
        assert!(bridge.force_flush(Duration::from_secs(30)), "the gateway took wave {wave}");
        // Pacing the load (not waiting for anything): a wave every 100 ms.
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = bridge.shutdown(Duration::from_secs(30));
    assert_eq!((report.spans_dropped, report.span_export_failures), (0, 0), "the bridge lost nothing: {report:?}");
    let spans_sent: usize = want.values().map(HashSet::len).sum();
    assert_eq!(report.spans_exported as usize, spans_sent, "{report:?}");

    // The gateway retries what it could not hand to the dead sampler. Done when the gateway has sent everything
    // it accepted and each sampler has sent on (to Jaeger and to Phoenix: two exporters) every span it accepted,
    // as it must with every trace kept.
    poll(180, "the gateway and the samplers to send on everything", || {
        let g = &tiers.gateway;
        let gateway_done =
            g.own_metric("otelcol_exporter_sent_spans") == g.own_metric("otelcol_receiver_accepted_spans");
        let samplers_done = tiers.samplers.iter().all(|s| {
            s.own_metric("otelcol_exporter_sent_spans") == 2.0 * s.own_metric("otelcol_receiver_accepted_spans")
        });
        (gateway_done && samplers_done).then_some(())
    });
    poll(60, "Jaeger to store what the samplers sent", || {
        let sent: f64 = tiers.samplers.iter().map(|s| s.own_metric("otelcol_exporter_sent_spans") / 2.0).sum();
        let stored: usize = jaeger_spans(&service).values().map(HashMap::len).sum();
        // Spans the dead sampler sent before it died are stored too: at least what the live ones sent.
        (stored as f64 >= sent).then_some(())
    });
    let got = jaeger_spans(&service);

    let (mut whole, mut partial, mut missing, mut spans_missing) = (0, 0, 0, 0);
    let mut lost_waves: Vec<usize> = Vec::new();
    for (t, ids) in &want {
        let n = got.get(t).map_or(0, |g| g.keys().filter(|k| ids.contains(*k)).count());
        match n {
            n if n == ids.len() => whole += 1,
            0 => missing += 1,
            _ => partial += 1,
        }
        if n < ids.len() {
            spans_missing += ids.len() - n;
            lost_waves.push(wave_of[t]);
        }
    }
    let g = &tiers.gateway;
    let gateway_failed = g.own_metric("otelcol_exporter_send_failed_spans");
    let gateway_enqueue_failed = g.own_metric("otelcol_exporter_enqueue_failed_spans");
    let gateway_sent = g.own_metric("otelcol_exporter_sent_spans");
    lost_waves.sort_unstable();
    let down = restarted_at.unwrap() - killed_at.unwrap();
    eprintln!(
        "tiers-kill: {} traces ({spans_sent} spans) sent, sampler down {:.1} s; Jaeger has {whole} whole, {partial} partial, \
         {missing} missing ({spans_missing} spans); lost traces came from waves {:?}; the sampler held {held} spans \
         undecided when killed; gateway: sent {gateway_sent}, {gateway_failed} failed for good, \
         {gateway_enqueue_failed} refused by a full queue",
        want.len(),
        down.as_secs_f64(),
        lost_waves.first()..=lost_waves.last(),
    );
    // Only what the killed sampler held undecided is lost: traces sent in the decision wait (5 s) before the kill,
    // as many spans as its own counters said it held (plus what reached it between that reading and the kill).
    for (t, _) in want.iter().filter(|(t, ids)| got.get(*t).map_or(0, |g| g.len()) < ids.len()) {
        let before_kill = killed_at.unwrap().saturating_duration_since(sent_at[t]);
        assert!(
            wave_of[t] < KILL && before_kill <= Duration::from_secs(7),
            "trace {t} of wave {} was lost outside the killed sampler's decision window",
            wave_of[t]
        );
    }
    assert!(
        spans_missing as f64 >= held && spans_missing as f64 <= held + 70.0,
        "{spans_missing} spans lost, the sampler held {held}"
    );
    assert_eq!(gateway_sent as usize, spans_sent, "the gateway delivered everything, the outage included");
    assert_eq!(
        (gateway_failed, gateway_enqueue_failed),
        (0.0, 0.0),
        "the gateway's retries and queue covered the outage"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
