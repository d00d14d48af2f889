//! A Bamboo application's metrics collector, exporting to Jaeger (traces) and Prometheus (metrics) as well as
//! writing `metrics.db` as before. `cargo run --example bamboo_collector --features bamboo` with Jaeger on
//! 127.0.0.1:4317 and Prometheus' OTLP receiver on :9090 (see the README, "Inside a Bamboo application").
use std::sync::Arc;
use std::time::Duration;

use bamboo_metrics::types::{RoundStatus, SessionStatus, TokenUsage};
use bamboo_metrics::{MetricsCollector, SqliteMetricsStorage};
use bamboo_otel::{bamboo::OtelStorage, Bridge, Protocol};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bridge = Bridge::builder()
        .service_name("my-agent")
        .traces_endpoint("http://127.0.0.1:4317", Protocol::Grpc)
        .metrics_endpoint("http://127.0.0.1:9090/api/v1/otlp/v1/metrics", Protocol::HttpProtobuf)
        .build()?;
    let storage = Arc::new(OtelStorage::new(SqliteMetricsStorage::new("metrics.db"), bridge.clone()));
    let collector = MetricsCollector::spawn(storage.clone(), 90);

    // What Bamboo's runtime records, unchanged: a session with one round.
    let now = chrono::Utc::now();
    collector.session_started("demo-session", "claude-sonnet-4-5", now);
    collector.round_started("demo-round", "demo-session", "claude-sonnet-4-5", now);
    let usage = TokenUsage { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500 };
    collector.round_completed("demo-round", now, RoundStatus::Success, usage, 0, 0, None);
    collector.session_completed("demo-session", SessionStatus::Completed, now);

    // Let the collector write what it accepted, then flush the bridge with a bound.
    drop(collector);
    while Arc::strong_count(&storage) > 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = bridge.shutdown(Duration::from_secs(5));
    eprintln!("{} spans exported, {:?}", report.spans_exported, storage.stats());
    Ok(())
}
