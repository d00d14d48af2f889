//! The tee's cost on Bamboo's write path: `apply_batch` of 32 mutations (what `MetricsCollector` hands its
//! storage at most at once) into `SqliteMetricsStorage`, alone and wrapped in `OtelStorage`, interleaved batch
//! by batch in one run so both see the same disk and the same machine state. The bridge behind the tee
//! translates everything on its own thread (exporters off: export never runs on the write path either way).
//!
//! `cargo bench --bench tee --features bamboo` (BENCH_TEE_BATCHES sets the batches per side; default 2000)

use std::sync::Arc;
use std::time::{Duration, Instant};

use bamboo_metrics::storage::{MetricsMutation, MetricsStorage, ToolCallCompletion};
use bamboo_metrics::types::{ForwardStatus, ForwardTokenDetails, RoundStatus, SessionStatus, TokenUsage};
use bamboo_metrics::SqliteMetricsStorage;
use bamboo_otel::bamboo::OtelStorage;
use bamboo_otel::{Bridge, ExporterKind};
use chrono::Utc;

/// 32 mutations of one agent session: start, 3 rounds with 2 tool calls each, 2 forwarded requests, the end.
fn batch(n: usize) -> Vec<MetricsMutation> {
    let now = Utc::now();
    let s = format!("s{n}");
    let mut m = vec![MetricsMutation::SessionStarted {
        session_id: s.clone(),
        model: "claude-sonnet-4-5".into(),
        started_at: now,
    }];
    for r in 0..3 {
        let round = format!("{s}-run-1-round-{r}");
        m.push(MetricsMutation::RoundStarted {
            round_id: round.clone(),
            session_id: s.clone(),
            model: "claude-sonnet-4-5".into(),
            started_at: now,
        });
        for t in 0..2 {
            let id = format!("{round}-t{t}");
            m.push(MetricsMutation::ToolStarted {
                tool_call_id: id.clone(),
                round_id: round.clone(),
                session_id: s.clone(),
                tool_name: "bash".into(),
                started_at: now,
            });
            m.push(MetricsMutation::ToolCompleted {
                tool_call_id: id,
                completion: ToolCallCompletion {
                    completed_at: now,
                    success: t == 0,
                    error: (t == 1).then(|| "exit 1".into()),
                },
            });
        }
        let usage = TokenUsage { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 };
        m.push(MetricsMutation::RoundCompleted {
            round_id: round,
            completed_at: now,
            status: RoundStatus::Success,
            usage,
            prompt_cached_tool_outputs: 1,
            prompt_cached_tool_tokens_saved: 200,
            error: None,
        });
    }
    for f in 0..2 {
        let id = format!("{s}-f{f}");
        m.push(MetricsMutation::ForwardStarted {
            forward_id: id.clone(),
            endpoint: "openai.chat_completions".into(),
            model: "gpt-4o".into(),
            is_stream: true,
            started_at: now,
        });
        let details = ForwardTokenDetails {
            cache_read_input_tokens: Some(800),
            reasoning_output_tokens: Some(50),
            ..Default::default()
        };
        let usage = Some(TokenUsage { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 });
        m.push(MetricsMutation::ForwardCompleted {
            forward_id: id,
            completed_at: now,
            status_code: Some(200),
            status: ForwardStatus::Success,
            usage,
            token_details: Some(details),
            error: None,
        });
    }
    m.push(MetricsMutation::SessionMessageCount { session_id: s.clone(), message_count: 7, updated_at: now });
    m.push(MetricsMutation::SessionCompleted { session_id: s, status: SessionStatus::Completed, completed_at: now });
    while m.len() < 32 {
        m.push(MetricsMutation::ExecuteSyncMismatch { reason: "stale_snapshot".into(), occurred_at: now });
    }
    m.truncate(32);
    m
}

fn timed(rt: &tokio::runtime::Runtime, storage: &dyn MetricsStorage, batch: Vec<MetricsMutation>) -> Duration {
    let t = Instant::now();
    let r = rt.block_on(storage.apply_batch(batch)).unwrap();
    let took = t.elapsed();
    assert!(r.iter().all(Result::is_ok));
    took
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let batches: usize = std::env::var("BENCH_TEE_BATCHES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("bamboo-otel-bench-tee-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bridge = Bridge::builder()
        .traces_exporter(ExporterKind::None)
        .metrics_exporter(ExporterKind::None)
        .queue_size(1 << 16)
        .build()
        .unwrap();
    let plain = Arc::new(SqliteMetricsStorage::new(dir.join("plain.db")));
    let tee = Arc::new(OtelStorage::new(SqliteMetricsStorage::new(dir.join("tee.db")), bridge.clone()));
    rt.block_on(async {
        plain.init().await.unwrap();
        tee.init().await.unwrap();
    });
    let (mut a, mut b) = (Vec::with_capacity(batches), Vec::with_capacity(batches));
    for n in 0..batches {
        // Alternate which goes first, so neither always meets a cache the other warmed.
        let (x, y) = (batch(2 * n), batch(2 * n + 1));
        if n % 2 == 0 {
            a.push(timed(&rt, plain.as_ref(), x));
            b.push(timed(&rt, tee.as_ref(), y));
        } else {
            b.push(timed(&rt, tee.as_ref(), y));
            a.push(timed(&rt, plain.as_ref(), x));
        }
    }
    let report = bridge.shutdown(Duration::from_secs(60));
    let (ma, mb) = (pct(&mut a, 0.5), pct(&mut b, 0.5));
    println!("apply_batch of 32 mutations, {batches} batches each, interleaved");
    println!(
        "  SqliteMetricsStorage            median {:>9.1?}  p95 {:>9.1?}  p99 {:>9.1?}",
        ma,
        pct(&mut a, 0.95),
        pct(&mut a, 0.99)
    );
    println!(
        "  OtelStorage<SqliteMetricsStorage> median {:>9.1?}  p95 {:>9.1?}  p99 {:>9.1?}",
        mb,
        pct(&mut b, 0.95),
        pct(&mut b, 0.99)
    );
    let added_us = (mb.as_secs_f64() - ma.as_secs_f64()) * 1e6;
    let added_pct = (mb.as_secs_f64() / ma.as_secs_f64() - 1.0) * 100.0;
    println!("  added: {added_pct:+.1} % at the median ({added_us:+.0} µs per batch)");
    println!(
        "  tee: {:?}; bridge: {} events received, {} dropped",
        tee.stats(),
        report.events_received,
        report.events_dropped
    );
    let _ = std::fs::remove_dir_all(&dir);
}
