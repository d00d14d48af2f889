//! Reading spans back from Jaeger v2 (deploy/jaeger.yaml, started by `scripts/backends.sh` on 127.0.0.2): its
//! query API v3 (`/api/v3/traces/{trace_id}`, OTLP JSON) for fidelity, and the UI's search API (`/api/traces`)
//! for the tag searches the README tells users to type.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::backends::{get, poll, urlencode};

pub const JAEGER: &str = "http://127.0.0.2:16686";
/// The OTLP receivers, on the ports the README names (only the host differs from `jaeger:4317`).
pub const JAEGER_OTLP_GRPC: &str = "http://127.0.0.2:4317";
pub const JAEGER_OTLP_HTTP: &str = "http://127.0.0.2:4318";

/// One span as Jaeger returns it, with the resource and scope it was stored under.
#[derive(Debug, Clone)]
pub struct StoredSpan {
    pub resource: HashMap<String, Value>,
    pub scope: Value,
    pub span: Value,
}

impl StoredSpan {
    pub fn attrs(&self) -> HashMap<String, Value> {
        otlp_attrs(&self.span["attributes"])
    }
    pub fn str(&self, field: &str) -> &str {
        self.span[field].as_str().unwrap_or("")
    }
    /// A `*UnixNano` field.
    pub fn nanos(&self, field: &str) -> i64 {
        otlp_int(&self.span[field])
    }
}

/// A 64-bit integer of OTLP JSON (`intValue`, `*UnixNano`): a decimal string, or a number; -1 if neither.
pub fn otlp_int(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64()).unwrap_or(-1)
}

/// OTLP JSON attributes as key → plain JSON value (`intValue` strings become numbers).
pub fn otlp_attrs(list: &Value) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for kv in list.as_array().into_iter().flatten() {
        let v = &kv["value"];
        let value = if let Some(s) = v.get("stringValue") {
            s.clone()
        } else if let Some(i) = v.get("intValue") {
            Value::from(otlp_int(i))
        } else if let Some(b) = v.get("boolValue") {
            b.clone()
        } else if let Some(d) = v.get("doubleValue") {
            d.clone()
        } else {
            v.clone()
        };
        out.insert(kv["key"].as_str().unwrap_or_default().to_owned(), value);
    }
    out
}

/// The spans of an API v3 answer (`result.resourceSpans`), each with its resource and scope.
fn stored_spans(answer: &Value) -> Vec<StoredSpan> {
    let mut out = Vec::new();
    for rs in answer["result"]["resourceSpans"].as_array().into_iter().flatten() {
        let resource = otlp_attrs(&rs["resource"]["attributes"]);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                out.push(StoredSpan { resource: resource.clone(), scope: ss["scope"].clone(), span: span.clone() });
            }
        }
    }
    out
}

/// Every span of one trace, as stored (`None` while Jaeger does not have it). Raw: without Jaeger's adjusters,
/// which shift times for clock skew and add `@jaeger@warnings` (an orphan tool call's missing parent, say).
pub fn trace(trace_id: &str) -> Option<Vec<StoredSpan>> {
    get(&format!("{JAEGER}/api/v3/traces/{trace_id}?raw_traces=true")).map(|v| stored_spans(&v))
}

/// Polls until Jaeger holds at least `want[trace]` spans of every trace, then returns them by span id.
pub fn wait_for_traces(want: &HashMap<String, usize>, secs: u64) -> HashMap<String, StoredSpan> {
    let mut done: HashMap<String, Vec<StoredSpan>> = HashMap::new();
    poll(secs, &format!("{} traces in Jaeger", want.len()), || {
        for (tid, n) in want {
            if done.contains_key(tid) {
                continue;
            }
            if let Some(spans) = trace(tid).filter(|s| s.len() >= *n) {
                done.insert(tid.clone(), spans);
            }
        }
        (done.len() == want.len()).then_some(())
    });
    done.into_values().flatten().map(|s| (s.str("spanId").to_owned(), s)).collect()
}

/// The trace ids the UI's search finds for `service` with the given tags (what a user types into "Tags").
pub fn search_by_tags(service: &str, tags: &[(&str, &str)]) -> HashSet<String> {
    let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let url = format!(
        "{JAEGER}/api/traces?service={}&tags={}&limit=1000&lookback=24h",
        urlencode(service),
        urlencode(&Value::Object(tags).to_string())
    );
    let v = get(&url).unwrap_or(Value::Null);
    v["data"].as_array().into_iter().flatten().filter_map(|t| t["traceID"].as_str().map(str::to_owned)).collect()
}

/// Every span of the traces Jaeger holds for `service` that start between the two times (API v3 search).
pub fn find_traces(
    service: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<StoredSpan> {
    let url = format!(
        "{JAEGER}/api/v3/traces?query.service_name={}&query.start_time_min={}&query.start_time_max={}&query.num_traces=100000",
        urlencode(service),
        urlencode(&from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        urlencode(&to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    get(&url).map(|v| stored_spans(&v)).unwrap_or_default()
}
