//! Querying Prometheus 3 (built from the official module, started by `scripts/backends.sh` with the flags and
//! `deploy/prometheus.yml` users run): OTLP in at `/api/v1/otlp/v1/metrics`, PromQL out at `/api/v1/query`.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

use super::backends::urlencode;

pub const PROM: &str = "http://127.0.0.1:9090";

pub fn otlp_metrics_url() -> String {
    format!("{PROM}/api/v1/otlp/v1/metrics")
}

/// One instant query's series as (labels `key=value`, sorted; value), evaluated at `time` (seconds) or now.
pub fn query_at(expr: &str, time: Option<f64>) -> Vec<(Vec<String>, f64)> {
    let mut url = format!("{PROM}/api/v1/query?query={}", urlencode(expr));
    if let Some(t) = time {
        url.push_str(&format!("&time={t:.3}"));
    }
    let v: Value = match ureq::get(&url).timeout(Duration::from_secs(20)).call() {
        Ok(r) => r.into_json().unwrap(),
        Err(ureq::Error::Status(code, r)) => panic!("{expr}: HTTP {code}: {}", r.into_string().unwrap_or_default()),
        Err(e) => panic!("{url}: {e} (is Prometheus running? scripts/backends.sh start)"),
    };
    assert_eq!(v["status"], "success", "{expr}: {v}");
    super::backends::instant_vector(&v)
}

pub fn query(expr: &str) -> Vec<(Vec<String>, f64)> {
    query_at(expr, None)
}

/// The single value of a query that sums to one series, if it has one yet.
pub fn value(expr: &str) -> Option<f64> {
    let r = query(expr);
    (r.len() == 1).then(|| r[0].1)
}

/// Polls until `expr` is exactly `want` (60 s at most), failing with the last value seen.
pub fn wait_for(expr: &str, want: f64) {
    super::backends::wait_for_value(expr, want, value);
}
