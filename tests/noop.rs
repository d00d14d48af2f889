//! Without the `otel` feature the Bridge is a stand-in with the same API that does nothing.
#![cfg(not(feature = "otel"))]

use std::time::Duration;

use bamboo_otel::{Bridge, ShutdownReport};

#[test]
fn the_no_op_bridge_accepts_everything_and_reports_nothing() {
    let bridge = Bridge::from_env().expect("no configuration can fail without an exporter");
    assert!(!bridge.is_enabled());
    for event in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        bridge.record(event);
    }
    assert!(bridge.record_json("{not json").is_err(), "parse errors are still reported");
    assert!(bridge.force_flush(Duration::from_millis(1)));
    assert_eq!(bridge.shutdown(Duration::from_millis(1)), ShutdownReport::default());
    assert_eq!(bridge.dropped_events(), 0);
}
