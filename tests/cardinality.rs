//! 10⁶ distinct tool names: the metric cardinality stays capped, every measurement is still counted (admitted
//! series plus the overflow series), the overflow is counted per metric, and memory does not grow with the
//! number of names. Read back from VictoriaMetrics. Its own test binary, so the RSS figures are this test's.
#![cfg(feature = "http")]

mod common;

use std::time::Duration;

use bamboo_otel::{Bridge, ExporterKind, Protocol};
use common::backends::*;

const LIMIT: usize = 1999;
const CALLS: usize = 1_000_000;

#[test]
fn a_million_distinct_tool_names_keep_the_series_capped_and_every_call_counted() {
    let salt = salt();
    let service = format!("cardinality-{salt}");
    let bridge = Bridge::builder()
        .service_name(&service)
        .traces_exporter(ExporterKind::None)
        .metrics_endpoint(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf)
        .metric_cardinality_limit(LIMIT)
        .replay_clock()
        .build()
        .unwrap();
    let mut rss_at_200k = 0;
    for i in 0..CALLS {
        let e = common::tool(
            &format!("e{i}-{salt}"),
            i as i64,
            "s1",
            "r1",
            &format!("c{i}"),
            &format!("tool_{i}"),
            5,
            true,
        );
        bridge.record_wait(e).unwrap();
        if i == 200_000 {
            assert!(bridge.force_flush(Duration::from_secs(60)));
            rss_at_200k = common::proc_status_kib("VmRSS:");
        }
    }
    assert!(bridge.force_flush(Duration::from_secs(120)));
    let rss_at_1m = common::proc_status_kib("VmRSS:");
    let report = bridge.shutdown(Duration::from_secs(60));
    assert!(!report.metrics_unsent && report.events_dropped == 0, "{report:?}");
    println!(
        "RSS after 200k calls {rss_at_200k} KiB, after 1M {rss_at_1m} KiB, peak {} KiB",
        common::proc_status_kib("VmHWM:")
    );
    assert!(
        rss_at_1m.saturating_sub(rss_at_200k) < 64 * 1024,
        "memory grew with distinct names: {rss_at_200k} KiB -> {rss_at_1m} KiB"
    );

    let sel = format!("service_name=\"{service}\"");
    // Every call is counted: on its own series or on the overflow series.
    vm_wait_for(&format!("sum(bamboo_tool_calls_total{{{sel}}})"), CALLS as f64);
    vm_wait_for(&format!("count(bamboo_tool_calls_total{{{sel}}})"), (LIMIT + 1) as f64);
    vm_wait_for(
        &format!("sum(bamboo_tool_calls_total{{{sel},otel_metric_overflow=\"true\"}})"),
        (CALLS - LIMIT) as f64,
    );
    for metric in ["bamboo.tool_calls", "gen_ai.execute_tool.duration"] {
        vm_wait_for(
            &format!("sum(bamboo_otel_metric_overflow_total{{{sel},metric=\"{metric}\"}})"),
            (CALLS - LIMIT) as f64,
        );
    }
    vm_wait_for(&format!("sum(gen_ai_execute_tool_duration_seconds_count{{{sel}}})"), CALLS as f64);
}
