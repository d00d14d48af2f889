//! Three past days of Bamboo traffic as `MetricsMutation`s, for a `metrics.db` written by Bamboo 2026.11.1's own
//! `SqliteMetricsStorage` (the history tests).

use bamboo_metrics::storage::{MetricsMutation, MetricsStorage};
use bamboo_metrics::types::{RoundStatus, SessionStatus, TokenUsage};
use bamboo_metrics::SqliteMetricsStorage;
use chrono::{DateTime, Duration as Span, Utc};

/// Day `d` (0, 1, 2) has `d + 1` sessions; session `s` of it has three rounds a minute apart, each
/// `100 × (d + 1)` input and `10` output tokens, the last one failed on day 2.
pub fn history(days_ago_start: DateTime<Utc>) -> Vec<(DateTime<Utc>, MetricsMutation)> {
    let mut m = Vec::new();
    for d in 0..3i64 {
        for s in 0..=d {
            let start = days_ago_start + Span::days(d) + Span::hours(2 * s);
            let id = format!("h-{d}-{s}");
            m.push((
                start,
                MetricsMutation::SessionStarted { session_id: id.clone(), model: "gpt-4o".into(), started_at: start },
            ));
            for r in 0..3i64 {
                let (rs, re) =
                    (start + Span::minutes(r) + Span::seconds(5), start + Span::minutes(r) + Span::seconds(20));
                let round = format!("{id}-run-1-round-{r}");
                m.push((
                    rs,
                    MetricsMutation::RoundStarted {
                        round_id: round.clone(),
                        session_id: id.clone(),
                        model: "gpt-4o".into(),
                        started_at: rs,
                    },
                ));
                let failed = d == 2 && r == 2;
                let p = 100 * (d as u64 + 1);
                m.push((
                    re,
                    MetricsMutation::RoundCompleted {
                        round_id: round,
                        completed_at: re,
                        status: if failed { RoundStatus::Error } else { RoundStatus::Success },
                        usage: TokenUsage { prompt_tokens: p, completion_tokens: 10, total_tokens: p + 10 },
                        prompt_cached_tool_outputs: 0,
                        prompt_cached_tool_tokens_saved: 0,
                        error: failed.then(|| "rate limited".to_owned()),
                    },
                ));
            }
            // Execute-sync mismatches: one per session, and a second reason on day 2.
            m.push((
                start + Span::seconds(30),
                MetricsMutation::ExecuteSyncMismatch {
                    reason: "stale_snapshot".into(),
                    occurred_at: start + Span::seconds(30),
                },
            ));
            if d == 2 {
                m.push((
                    start + Span::seconds(40),
                    MetricsMutation::ExecuteSyncMismatch {
                        reason: "lost_lock".into(),
                        occurred_at: start + Span::seconds(40),
                    },
                ));
            }
            let end = start + Span::minutes(3);
            m.push((
                end,
                MetricsMutation::SessionCompleted {
                    session_id: id,
                    status: SessionStatus::Completed,
                    completed_at: end,
                },
            ));
        }
    }
    m
}

/// Writes `rows` into a new `metrics.db` at `db` through Bamboo's own storage.
pub fn write_db(db: &std::path::Path, rows: &[(DateTime<Utc>, MetricsMutation)]) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let storage = SqliteMetricsStorage::new(db);
        storage.init().await.unwrap();
        let results = storage.apply_batch(rows.iter().map(|(_, m)| m.clone()).collect()).await.unwrap();
        assert!(results.iter().all(Result::is_ok));
    });
}
