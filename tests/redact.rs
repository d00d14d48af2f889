//! Redaction end to end: rules, a keyed hash and a span hook configured on the builder, checked by reading the
//! spans back from Phoenix and the metric series from VictoriaMetrics. Nothing redacted may reach either.
#![cfg(feature = "http")]

mod common;

use bamboo_otel::redact::{Action, Redactor};
use bamboo_otel::translate::KeyValue;
use bamboo_otel::{Bridge, Protocol};
use common::backends::*;

#[test]
fn redacted_values_never_reach_the_backends() {
    let salt = salt();
    let project = format!("redact-{salt}");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now() - chrono::Duration::minutes(10)), &salt);
    let trace = events.iter().find_map(|e| e.meta()?.trace_id.clone()).expect("the demo carries a trace id");
    let bridge = Bridge::builder()
        .service_name(&project)
        .resource_attribute("openinference.project.name", &project)
        .traces_endpoint(format!("{PHOENIX}/v1/traces"), Protocol::HttpProtobuf)
        .metrics_endpoint(format!("{VM}/opentelemetry/v1/metrics"), Protocol::HttpProtobuf)
        .replay_clock()
        .redact("bamboo.trace_id", Action::Hash)
        .redact("error.message", Action::Drop)
        .redact_values("gen_ai.tool.name", "Ba*", Action::Hash)
        .redact_key("test-key-5b1")
        .redact_spans_with(|s| s.attributes.push(KeyValue::new("test.hooked", true)))
        .build()
        .unwrap();
    let report = send(&bridge, &events);
    assert_eq!((report.spans_exported, report.spans_dropped), (14, 0), "{report:?}");

    let mut r = Redactor::default();
    r.set_key("test-key-5b1");
    let (bash, trace_hash) = (r.hash("Bash"), r.hash(&trace));
    let spans = wait_for_spans(&project, 14);
    let mut names: Vec<String> = Vec::new();
    for s in spans.values() {
        let attrs = phoenix_attrs(s);
        let text = s.to_string();
        assert!(!text.contains("Provider error"), "an error text reached Phoenix: {text}");
        assert!(!text.contains("\"Bash\"") && !text.contains(" Bash\""), "a hashed tool name reached Phoenix: {text}");
        assert_eq!(attrs["test.hooked"], true, "the hook saw every span");
        if let Some(t) = attrs.get("bamboo.trace_id") {
            assert_eq!(t, &serde_json::json!(trace_hash));
        }
        names.push(s["name"].as_str().unwrap().to_owned());
    }
    names.sort();
    let bash_spans = names.iter().filter(|n| **n == format!("execute_tool {bash}")).count();
    assert_eq!(bash_spans, 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "execute_tool Read").count(), 2, "other tools untouched: {names:?}");
    let failed: Vec<_> = spans.values().filter(|s| s["status"]["code"].as_i64() == Some(2)).collect();
    assert!(!failed.is_empty());
    for s in failed {
        assert_eq!(s["status"]["message"].as_str().unwrap_or(""), "", "status text dropped, status kept");
    }

    // Metrics carry the same pseudonym, and the plain name nowhere.
    let sel = format!("service_name=\"{project}\"");
    vm_wait_for(&format!("sum(bamboo_tool_calls_total{{{sel},gen_ai_tool_name=\"{bash}\"}})"), 2.0);
    assert_eq!(vm_value(&format!("count(bamboo_tool_calls_total{{{sel},gen_ai_tool_name=\"Bash\"}})")), None);
    vm_wait_for(&format!("sum(bamboo_tool_calls_total{{{sel},gen_ai_tool_name=\"Read\"}})"), 2.0);
}
