//! Where each signal's requests go and how, from the settings the OTLP exporter spec names: the builder's
//! endpoint, else `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` (used as given), else `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`/v1/traces` or `/v1/metrics` appended for HTTP), else the OTLP defaults; headers, compression, timeout and
//! certificate in their signal's form first, then the general one.

use std::time::Duration;

use crate::config::{BuildError, CaFile, Protocol, Settings};

/// The OTLP default for gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The OTLP default for HTTP metrics, path included.
pub const DEFAULT_HTTP_METRICS_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
/// The OTLP default for HTTP traces, path included.
pub const DEFAULT_HTTP_TRACES_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// What differs between the two signals' settings.
struct Signal<'a> {
    /// As it appears in variable names: `TRACES`, `METRICS`.
    name: &'static str,
    http_path: &'static str,
    http_default: &'static str,
    protocol: Protocol,
    endpoint: &'a Option<String>,
    ca: &'a Option<CaFile>,
}

/// One signal's destination, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub protocol: Protocol,
    /// For HTTP the full URL (`/v1/metrics` or `/v1/traces` included); for gRPC the server's base URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    pub timeout: Duration,
    pub ca: Option<CaFile>,
}

impl Target {
    /// The metrics target of `s`, reading what the settings leave to the exporter from `env`.
    pub fn metrics(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, BuildError> {
        let signal = Signal {
            name: "METRICS",
            http_path: "/v1/metrics",
            http_default: DEFAULT_HTTP_METRICS_ENDPOINT,
            protocol: s.metrics_protocol,
            endpoint: &s.metrics_endpoint,
            ca: &s.metrics_certificate,
        };
        Target::resolve(s, signal, env)
    }

    /// The traces target of `s`, reading what the settings leave to the exporter from `env`.
    pub fn traces(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, BuildError> {
        let signal = Signal {
            name: "TRACES",
            http_path: "/v1/traces",
            http_default: DEFAULT_HTTP_TRACES_ENDPOINT,
            protocol: s.traces_protocol,
            endpoint: &s.traces_endpoint,
            ca: &s.traces_certificate,
        };
        Target::resolve(s, signal, env)
    }

    fn resolve(s: &Settings, signal: Signal<'_>, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, BuildError> {
        let var = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let signal_var = |what: &str| var(&format!("OTEL_EXPORTER_OTLP_{}_{what}", signal.name));
        let protocol = signal.protocol;
        let http = !matches!(protocol, Protocol::Grpc);
        // A base URL names the collector: HTTP appends the signal's path, gRPC takes it as is.
        let from_base = |base: &str| {
            if http {
                format!("{}{}", base.trim_end_matches('/'), signal.http_path)
            } else {
                base.to_owned()
            }
        };
        // The builder's settings first, then the environment's; the signal's own before the base.
        let url = if let Some(url) = signal.endpoint {
            url.clone()
        } else if let Some(base) = &s.endpoint {
            from_base(base)
        } else if let Some(url) = signal_var("ENDPOINT") {
            url
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            from_base(&base)
        } else if http {
            signal.http_default.to_owned()
        } else {
            DEFAULT_GRPC_ENDPOINT.to_owned()
        };
        let mut headers = Vec::new();
        for name in ["OTEL_EXPORTER_OTLP_HEADERS".to_owned(), format!("OTEL_EXPORTER_OTLP_{}_HEADERS", signal.name)] {
            if let Some(v) = var(&name) {
                for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let Some((k, v)) = item.split_once('=') else {
                        return Err(BuildError::InvalidValue {
                            name,
                            value: "(value hidden)".into(),
                            expected: "key=value pairs separated by commas",
                        });
                    };
                    let (k, v) = (k.trim().to_owned(), percent_decode(v.trim()));
                    headers.retain(|(have, _): &(String, String)| !have.eq_ignore_ascii_case(&k));
                    headers.push((k, v));
                }
            }
        }
        for (k, v) in &s.headers {
            headers.retain(|(have, _): &(String, String)| !have.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        let gzip = match signal_var("COMPRESSION") {
            Some(v) => v == "gzip",
            None => s.gzip,
        };
        let timeout = match signal_var("TIMEOUT").and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => Duration::from_millis(ms),
            None => s.export_timeout,
        };
        Ok(Target { protocol, url, headers, gzip, timeout, ca: signal.ca.clone() })
    }
}

/// `%XX` escapes, as the OTLP spec allows in header values.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &Settings, vars: &[(&str, &str)]) -> Target {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Target::metrics(s, &|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
    }

    #[test]
    fn the_endpoint_comes_from_the_builder_then_the_signal_variable_then_the_base_then_the_default() {
        let mut s = Settings { metrics_protocol: Protocol::HttpProtobuf, ..Settings::default() };
        assert_eq!(target(&s, &[]).url, DEFAULT_HTTP_METRICS_ENDPOINT);
        assert_eq!(
            target(&s, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://vm:8428/x/")]).url,
            "http://vm:8428/x/v1/metrics"
        );
        let both = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a"), ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://b/m")];
        assert_eq!(target(&s, &both).url, "http://b/m");
        s.endpoint = Some("http://base:4318/".into());
        assert_eq!(target(&s, &both).url, "http://base:4318/v1/metrics", "the builder's base beats the environment");
        s.metrics_endpoint = Some("http://c/v1/metrics".into());
        assert_eq!(target(&s, &both).url, "http://c/v1/metrics");
        let grpc = Settings { metrics_protocol: Protocol::Grpc, ..Settings::default() };
        assert_eq!(target(&grpc, &[]).url, DEFAULT_GRPC_ENDPOINT);
        assert_eq!(target(&grpc, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://col:4317")]).url, "http://col:4317");
    }

    #[test]
    fn signal_headers_override_general_ones_and_values_are_percent_decoded() {
        let t = target(
            &Settings::default(),
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1, Authorization=Basic%20abc"),
                ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-a=2"),
                ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500"),
            ],
        );
        assert_eq!(t.headers, vec![("Authorization".into(), "Basic abc".into()), ("x-a".into(), "2".into())]);
        assert!(t.gzip);
        assert_eq!(t.timeout, Duration::from_millis(2500));
    }
}
