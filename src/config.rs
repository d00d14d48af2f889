//! Bridge configuration: the builder's settings and the `OTEL_*` / `BAMBOO_OTEL_*` environment, with errors that
//! say what to fix. Always compiled, so a build without the `otel` feature validates configuration the same way.
//!
//! Variables the OTLP exporter itself reads (`OTEL_EXPORTER_OTLP_ENDPOINT`, `_HEADERS`, `_TIMEOUT`,
//! `_COMPRESSION`, their `_TRACES_`/`_METRICS_` forms and `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`)
//! are left to it, and only checked here so that a typo fails at build time with a clear message instead of
//! being ignored. Header values are never echoed in errors or logs.

use std::time::Duration;

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    Otlp,
    Console,
    None,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// Which traces are kept. Decisions are made per trace id, so a sampled session keeps all its rounds and tools.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// Keep a trace when its id falls below the ratio, as the SDK's `TraceIdRatioBased` does.
    TraceIdRatio(f64),
}

impl Sampler {
    /// The spec's TraceIdRatioBased decision, on the low 63 bits of the trace id.
    pub fn should_sample(&self, trace_id: crate::ids::TraceId) -> bool {
        match *self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(r) if r >= 1.0 => true,
            Sampler::TraceIdRatio(r) if r <= 0.0 => false,
            Sampler::TraceIdRatio(r) => {
                let low = u64::from_be_bytes(trace_id.0[8..16].try_into().expect("8 bytes")) >> 1;
                low < (r * (1u64 << 63) as f64) as u64
            }
        }
    }
}

/// A configuration error: which setting, the value given, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{name}={value}: expected {expected}")]
    InvalidValue { name: String, value: String, expected: &'static str },
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("could not start the export pipeline: {0}")]
    Pipeline(String),
}

/// The user's price table (TOML) over the shipped one; errors name the setting and the file.
pub fn read_prices(
    setting: &str,
    path: &std::path::Path,
) -> Result<std::sync::Arc<crate::translate::cost::PriceTable>, BuildError> {
    use crate::translate::cost::PriceTable;
    let err = |reason: String| BuildError::Invalid { name: setting.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("{}: could not read: {e}", path.display())))?;
    let mine = PriceTable::from_toml(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
    Ok(std::sync::Arc::new(PriceTable::builtin().overridden_by(mine)))
}

/// A PEM file of CA certificates, and the variable or builder setting that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub setting: String,
    pub path: std::path::PathBuf,
}

impl CaFile {
    /// Reads the file and checks it holds at least one PEM certificate; errors name the setting and the path.
    pub fn read(&self) -> Result<Vec<u8>, BuildError> {
        let err = |reason: String| BuildError::Invalid { name: self.setting.clone(), reason };
        let pem =
            std::fs::read(&self.path).map_err(|e| err(format!("{}: could not read: {e}", self.path.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(err(format!(
                "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                self.path.display()
            )));
        }
        Ok(pem)
    }
}

/// Events waiting for the worker by default (`BAMBOO_OTEL_QUEUE_SIZE`).
pub const DEFAULT_QUEUE_SIZE: usize = 8192;
/// Spans per export request by default (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
pub const DEFAULT_BATCH_SIZE: usize = 512;
/// How often a partial span batch is sent by default (`OTEL_BSP_SCHEDULE_DELAY`).
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(5);
/// Finished spans kept waiting for export by default (`OTEL_BSP_MAX_QUEUE_SIZE`).
pub const DEFAULT_MAX_QUEUED_SPANS: usize = 2048 * 16;
/// Span batches in flight at once by default (`BAMBOO_OTEL_MAX_CONCURRENT_EXPORTS`).
pub const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 8;
/// How long one export may take, retries included, by default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often metrics are exported by default (`OTEL_METRIC_EXPORT_INTERVAL`).
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_secs(60);
/// Attribute sets per metric by default (`BAMBOO_OTEL_METRIC_CARDINALITY_LIMIT`): one under the SDK's own
/// limit (2000 sets plus its overflow series), so ours folds first, and counts.
pub const DEFAULT_METRIC_CARDINALITY_LIMIT: usize = 1999;

/// The temporality metric exports ask for (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemporalityPreference {
    /// Totals since the start (what Prometheus and Mimir want).
    #[default]
    Cumulative,
    /// Changes since the last export, up-down counters included.
    Delta,
    /// Delta for counters and histograms, cumulative for up-down counters.
    LowMemory,
}

/// Everything the bridge needs, from the builder or the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub disabled: bool,
    pub service_name: Option<String>,
    pub resource: Vec<(String, String)>,
    pub traces: ExporterKind,
    pub metrics: ExporterKind,
    pub traces_protocol: Protocol,
    pub metrics_protocol: Protocol,
    pub metrics_temporality: TemporalityPreference,
    /// The builder's base URL for both signals (`BridgeBuilder::endpoint`), ahead of the environment's.
    pub endpoint: Option<String>,
    /// Explicit endpoints (the builder's); `None` leaves the exporter to read the environment.
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub headers: Vec<(String, String)>,
    /// A CA certificate (PEM file) that alone is trusted for TLS to the traces / metrics endpoint, and the
    /// setting it came from (for errors). `None`: the system's roots.
    pub traces_certificate: Option<CaFile>,
    pub metrics_certificate: Option<CaFile>,
    /// gzip-compress exports (also set by `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`).
    pub gzip: bool,
    pub sampler: Sampler,
    pub metric_interval: Duration,
    pub batch_size: usize,
    pub schedule_delay: Duration,
    /// Spans kept waiting for export while the backend is unreachable; beyond it the oldest are dropped.
    pub max_queued_spans: usize,
    /// Span batches sent at once. A collector hop costs a round trip per request; more in flight keeps the link
    /// busy (BENCHMARKS.md). During an outage only one is sent at a time.
    pub max_concurrent_exports: usize,
    pub export_timeout: Duration,
    pub queue_size: usize,
    pub translate: crate::translate::TranslateConfig,
    /// Emit still-open spans as incomplete at shutdown.
    pub flush_open_on_shutdown: bool,
    /// Distinct attribute sets per metric; beyond it measurements fold into `otel.metric.overflow=true`, counted.
    pub metric_cardinality_limit: usize,
    /// What is dropped or hashed before export (`BAMBOO_OTEL_REDACT`, `BAMBOO_OTEL_ATTRIBUTE_ALLOWLIST`).
    pub redact: crate::redact::Redactor,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            disabled: false,
            service_name: None,
            resource: Vec::new(),
            traces: ExporterKind::Otlp,
            metrics: ExporterKind::Otlp,
            traces_protocol: default_protocol(),
            metrics_protocol: default_protocol(),
            metrics_temporality: TemporalityPreference::Cumulative,
            endpoint: None,
            traces_endpoint: None,
            metrics_endpoint: None,
            headers: Vec::new(),
            traces_certificate: None,
            metrics_certificate: None,
            gzip: false,
            sampler: Sampler::AlwaysOn,
            metric_interval: DEFAULT_METRIC_INTERVAL,
            batch_size: DEFAULT_BATCH_SIZE,
            schedule_delay: DEFAULT_SCHEDULE_DELAY,
            max_queued_spans: DEFAULT_MAX_QUEUED_SPANS,
            max_concurrent_exports: DEFAULT_MAX_CONCURRENT_EXPORTS,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            queue_size: DEFAULT_QUEUE_SIZE,
            translate: Default::default(),
            flush_open_on_shutdown: true,
            redact: Default::default(),
            metric_cardinality_limit: DEFAULT_METRIC_CARDINALITY_LIMIT,
        }
    }
}

/// gRPC when it is compiled in (the OTLP default), else HTTP/protobuf.
fn default_protocol() -> Protocol {
    if cfg!(feature = "grpc") || !cfg!(feature = "http") {
        Protocol::Grpc
    } else {
        Protocol::HttpProtobuf
    }
}

/// Reads one variable; empty counts as unset, as the OpenTelemetry spec says.
fn var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn invalid(name: &str, value: &str, expected: &'static str) -> BuildError {
    BuildError::InvalidValue { name: name.to_owned(), value: value.to_owned(), expected }
}

fn parse_exporter(name: &str, value: &str) -> Result<ExporterKind, BuildError> {
    match value.to_ascii_lowercase().as_str() {
        "otlp" => Ok(ExporterKind::Otlp),
        "console" => Ok(ExporterKind::Console),
        "none" => Ok(ExporterKind::None),
        _ => Err(invalid(name, value, "otlp, console or none")),
    }
}

fn parse_protocol(name: &str, value: &str) -> Result<Protocol, BuildError> {
    let p = match value {
        "grpc" => Protocol::Grpc,
        "http/protobuf" => Protocol::HttpProtobuf,
        "http/json" => Protocol::HttpJson,
        _ => return Err(invalid(name, value, "grpc, http/protobuf or http/json")),
    };
    let compiled = match p {
        Protocol::Grpc => cfg!(feature = "grpc"),
        Protocol::HttpProtobuf | Protocol::HttpJson => cfg!(feature = "http"),
    };
    if !compiled && cfg!(feature = "otel") {
        return Err(BuildError::Invalid {
            name: name.to_owned(),
            reason: format!("{value} is not compiled in: enable the bamboo-otel Cargo feature for it"),
        });
    }
    Ok(p)
}

fn parse_millis(name: &str, value: &str) -> Result<Duration, BuildError> {
    value.parse::<u64>().map(Duration::from_millis).map_err(|_| invalid(name, value, "a whole number of milliseconds"))
}

fn parse_count(name: &str, value: &str) -> Result<usize, BuildError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(name, value, "a positive whole number")),
    }
}

/// `key=value,key=value` (values URL-decoded by the exporter; here only the shape is checked).
fn parse_pairs(name: &str, value: &str, secret: bool) -> Result<Vec<(String, String)>, BuildError> {
    let mut pairs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => pairs.push((k.trim().to_owned(), v.trim().to_owned())),
            _ => {
                let shown = if secret { "(value hidden)".to_owned() } else { value.to_owned() };
                return Err(BuildError::InvalidValue {
                    name: name.into(),
                    value: shown,
                    expected: "key=value pairs separated by commas",
                });
            }
        }
    }
    Ok(pairs)
}

impl Settings {
    /// The resource every export carries: the configured attributes, `service.name` (configured, else
    /// `bamboo-agent`), `service.instance.id` (configured, else a fresh UUID: cumulative series from two
    /// processes, a restarted sidecar or many agents, must not share an identity, or the backend sees one counter
    /// going up and down) and the SDK's `telemetry.sdk.*`.
    pub fn resource_attributes(&self) -> Vec<(String, String)> {
        let find = |key: &str| self.resource.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let service =
            self.service_name.clone().or_else(|| find("service.name")).unwrap_or_else(|| "bamboo-agent".into());
        let instance = find("service.instance.id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut attrs: Vec<(String, String)> =
            self.resource.iter().filter(|(k, _)| k != "service.name" && k != "service.instance.id").cloned().collect();
        attrs.push(("service.name".into(), service));
        attrs.push(("service.instance.id".into(), instance));
        attrs.push(("telemetry.sdk.language".into(), "rust".into()));
        attrs.push(("telemetry.sdk.name".into(), "opentelemetry".into()));
        attrs
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, BuildError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Reads settings through `env` (a lookup function, so tests need not touch the process environment).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, BuildError> {
        let mut s = Settings::default();
        if let Some(v) = var(env, "OTEL_SDK_DISABLED") {
            s.disabled = match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(invalid("OTEL_SDK_DISABLED", &v, "true or false")),
            };
        }
        s.service_name = var(env, "OTEL_SERVICE_NAME");
        if let Some(v) = var(env, "OTEL_RESOURCE_ATTRIBUTES") {
            s.resource = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &v, false)?;
        }
        if let Some(v) = var(env, "OTEL_TRACES_EXPORTER") {
            s.traces = parse_exporter("OTEL_TRACES_EXPORTER", &v)?;
        }
        if let Some(v) = var(env, "OTEL_METRICS_EXPORTER") {
            s.metrics = parse_exporter("OTEL_METRICS_EXPORTER", &v)?;
        }
        if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_PROTOCOL") {
            let p = parse_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", &v)?;
            (s.traces_protocol, s.metrics_protocol) = (p, p);
        }
        if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            s.traces_protocol = parse_protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &v)?;
        }
        if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") {
            s.metrics_protocol = parse_protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", &v)?;
        }
        for signal in ["", "TRACES_", "METRICS_"] {
            let name = format!("OTEL_EXPORTER_OTLP_{signal}HEADERS");
            if let Some(v) = var(env, &name) {
                parse_pairs(&name, &v, true)?;
            }
            let name = format!("OTEL_EXPORTER_OTLP_{signal}COMPRESSION");
            if let Some(v) = var(env, &name) {
                if !matches!(v.as_str(), "gzip" | "none") {
                    return Err(invalid(&name, &v, "gzip or none"));
                }
                if signal.is_empty() {
                    s.gzip = v == "gzip";
                }
            }
            let name = format!("OTEL_EXPORTER_OTLP_{signal}TIMEOUT");
            if let Some(v) = var(env, &name) {
                let t = parse_millis(&name, &v)?;
                if signal.is_empty() {
                    s.export_timeout = t;
                }
            }
            let name = format!("OTEL_EXPORTER_OTLP_{signal}CERTIFICATE");
            if let Some(v) = var(env, &name) {
                let ca = Some(CaFile { setting: name.clone(), path: v.into() });
                // The signal-specific form wins whatever the order it is read in.
                match signal {
                    "TRACES_" => s.traces_certificate = ca,
                    "METRICS_" => s.metrics_certificate = ca,
                    _ => {
                        s.traces_certificate = ca.clone();
                        s.metrics_certificate = ca;
                    }
                }
            }
            let name = format!("OTEL_EXPORTER_OTLP_{signal}ENDPOINT");
            if let Some(v) = var(env, &name) {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(invalid(&name, &v, "an http:// or https:// URL"));
                }
            }
        }
        if let Some(v) = var(env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE") {
            s.metrics_temporality = match v.to_ascii_lowercase().as_str() {
                "cumulative" => TemporalityPreference::Cumulative,
                "delta" => TemporalityPreference::Delta,
                "lowmemory" => TemporalityPreference::LowMemory,
                _ => {
                    return Err(invalid(
                        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                        &v,
                        "cumulative, delta or lowmemory",
                    ))
                }
            };
        }
        if let Some(v) = var(env, "OTEL_METRIC_EXPORT_INTERVAL") {
            s.metric_interval = parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &v)?;
        }
        s.sampler = sampler_from_env(env)?;
        if let Some(v) = var(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            s.batch_size = parse_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?;
        }
        if let Some(v) = var(env, "OTEL_BSP_SCHEDULE_DELAY") {
            s.schedule_delay = parse_millis("OTEL_BSP_SCHEDULE_DELAY", &v)?;
        }
        if let Some(v) = var(env, "OTEL_BSP_MAX_QUEUE_SIZE") {
            s.max_queued_spans = parse_count("OTEL_BSP_MAX_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = var(env, "OTEL_BSP_EXPORT_TIMEOUT") {
            s.export_timeout = parse_millis("OTEL_BSP_EXPORT_TIMEOUT", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_QUEUE_SIZE") {
            s.queue_size = parse_count("BAMBOO_OTEL_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_SPAN_TTL") {
            s.translate.span_ttl = Duration::from_secs(
                v.parse().map_err(|_| invalid("BAMBOO_OTEL_SPAN_TTL", &v, "a whole number of seconds"))?,
            );
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_MAX_CONCURRENT_EXPORTS") {
            s.max_concurrent_exports = parse_count("BAMBOO_OTEL_MAX_CONCURRENT_EXPORTS", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_MAX_OPEN_SPANS") {
            s.translate.max_open_spans = parse_count("BAMBOO_OTEL_MAX_OPEN_SPANS", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_AGENT_NAME") {
            if v.trim().is_empty() {
                return Err(invalid("BAMBOO_OTEL_AGENT_NAME", &v, "a non-empty agent name"));
            }
            s.translate.agent_name = v.into();
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_MODEL_PROVIDERS") {
            s.translate.providers = crate::translate::genai::ProviderRules::parse(&v)
                .map_err(|reason| BuildError::Invalid { name: "BAMBOO_OTEL_MODEL_PROVIDERS".into(), reason })?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_PRICES") {
            s.translate.prices = Some(read_prices("BAMBOO_OTEL_PRICES", std::path::Path::new(&v))?);
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_MAX_ERROR_LEN") {
            s.translate.max_error_len = parse_count("BAMBOO_OTEL_MAX_ERROR_LEN", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_METRIC_CARDINALITY_LIMIT") {
            s.metric_cardinality_limit = parse_count("BAMBOO_OTEL_METRIC_CARDINALITY_LIMIT", &v)?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_REDACT") {
            s.redact = v.parse().map_err(|e: crate::redact::RuleError| BuildError::Invalid {
                name: "BAMBOO_OTEL_REDACT".into(),
                reason: e.to_string(),
            })?;
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_ATTRIBUTE_ALLOWLIST") {
            s.redact.set_allowlist(v.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect());
        }
        if let Some(v) = var(env, "BAMBOO_OTEL_REDACT_KEY") {
            s.redact.set_key(&v);
        }
        Ok(s)
    }
}

fn sampler_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Sampler, BuildError> {
    let ratio = || -> Result<f64, BuildError> {
        match var(env, "OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(invalid("OTEL_TRACES_SAMPLER_ARG", &v, "a ratio from 0 to 1")),
            },
        }
    };
    // Every span of a trace shares its trace id, so parent-based and plain samplers decide alike here.
    match var(env, "OTEL_TRACES_SAMPLER").as_deref() {
        None | Some("always_on") | Some("parentbased_always_on") => Ok(Sampler::AlwaysOn),
        Some("always_off") | Some("parentbased_always_off") => Ok(Sampler::AlwaysOff),
        Some("traceidratio") | Some("parentbased_traceidratio") => Ok(Sampler::TraceIdRatio(ratio()?)),
        Some(other) => Err(invalid(
            "OTEL_TRACES_SAMPLER",
            other,
            "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, BuildError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let e = with(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grcp")]).unwrap_err();
        assert_eq!(e.to_string(), "OTEL_EXPORTER_OTLP_PROTOCOL=grcp: expected grpc, http/protobuf or http/json");
        let e = with(&[("OTEL_TRACES_EXPORTER", "jaeger")]).unwrap_err();
        assert_eq!(e.to_string(), "OTEL_TRACES_EXPORTER=jaeger: expected otlp, console or none");
        let e = with(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")]).unwrap_err();
        assert!(e.to_string().starts_with("OTEL_TRACES_SAMPLER_ARG=2"));
        assert!(with(&[("OTEL_METRIC_EXPORT_INTERVAL", "5s")]).is_err());
        assert!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).is_err());
    }

    #[test]
    fn header_values_never_appear_in_errors() {
        let e = with(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=sk-secret-123,broken")]).unwrap_err();
        assert!(!e.to_string().contains("sk-secret-123"), "{e}");
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_HEADERS"));
    }

    #[test]
    fn variables_are_read() {
        let s = with(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_SERVICE_NAME", "agent"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=ml"),
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
            ("BAMBOO_OTEL_QUEUE_SIZE", "100"),
            ("BAMBOO_OTEL_SPAN_TTL", "60"),
        ])
        .unwrap();
        assert!(s.disabled);
        assert_eq!(s.service_name.as_deref(), Some("agent"));
        assert_eq!(s.resource, vec![("deployment.environment".into(), "prod".into()), ("team".into(), "ml".into())]);
        assert_eq!((s.traces, s.metrics), (ExporterKind::Console, ExporterKind::None));
        assert_eq!(s.sampler, Sampler::TraceIdRatio(0.25));
        assert_eq!(s.metric_interval, Duration::from_millis(1500));
        assert_eq!((s.batch_size, s.queue_size), (64, 100));
        assert_eq!(s.translate.span_ttl, Duration::from_secs(60));
        // Empty values count as unset.
        assert_eq!(with(&[("OTEL_TRACES_EXPORTER", "")]).unwrap().traces, ExporterKind::Otlp);
    }

    #[test]
    fn agent_name_providers_and_prices_are_read_and_bad_ones_name_the_variable() {
        let dir = std::env::temp_dir().join(format!("bamboo-otel-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[[price]]\nprovider='openai'\nmodel='gpt-4o'\ninput=1.0\noutput=2.0\nsource='contract'\ndate='2026-11-01'\n",
        )
        .unwrap();
        let s = with(&[
            ("BAMBOO_OTEL_AGENT_NAME", "support-agent"),
            ("BAMBOO_OTEL_MODEL_PROVIDERS", "my-*=azure.ai.openai"),
            ("BAMBOO_OTEL_PRICES", good.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(s.translate.agent_name, "support-agent");
        assert_eq!(s.translate.providers.provider("my-gpt").as_deref(), Some("azure.ai.openai"));
        let prices = s.translate.prices.as_deref().unwrap();
        assert_eq!(prices.find("openai", "gpt-4o").unwrap().input, 1.0, "the user's row first");
        assert_eq!(prices.find("openai", "gpt-4o-mini").unwrap().input, 0.15, "the shipped rows after it");

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[[price]]\nprovider='openai'\nmodel='x'\ninput=1.0\noutput=1.0\n").unwrap();
        let e = with(&[("BAMBOO_OTEL_PRICES", bad.to_str().unwrap())]).unwrap_err().to_string();
        assert!(e.starts_with("BAMBOO_OTEL_PRICES: ") && e.contains("bad.toml"), "{e}");
        let e = with(&[("BAMBOO_OTEL_PRICES", "/nonexistent/prices.toml")]).unwrap_err().to_string();
        assert!(e.contains("could not read"), "{e}");
        assert!(with(&[("BAMBOO_OTEL_MODEL_PROVIDERS", "nope")]).unwrap_err().to_string().contains("MODEL_PROVIDERS"));
        // Empty means unset, as for every OTEL_* variable.
        assert_eq!(with(&[("BAMBOO_OTEL_AGENT_NAME", " ")]).unwrap().translate.agent_name, "bamboo");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redaction_is_read_and_a_bad_rule_names_the_variable() {
        let s = with(&[
            ("BAMBOO_OTEL_REDACT", "bamboo.trace_id=hash, error.message=drop"),
            ("BAMBOO_OTEL_ATTRIBUTE_ALLOWLIST", "gen_ai.*"),
            ("BAMBOO_OTEL_REDACT_KEY", "k-secret-9"),
        ])
        .unwrap();
        assert_eq!(s.redact.rules().len(), 2);
        assert!(!format!("{s:?}").contains("k-secret-9"), "the key must never be printed");
        let e = with(&[("BAMBOO_OTEL_REDACT", "bamboo.trace_id=scramble")]).unwrap_err();
        assert!(e.to_string().starts_with("BAMBOO_OTEL_REDACT: \"bamboo.trace_id=scramble\""), "{e}");
    }

    #[test]
    fn ratio_sampling_keeps_about_the_ratio_of_traces() {
        let s = Sampler::TraceIdRatio(0.5);
        let kept = (0..10_000).filter(|i| s.should_sample(crate::ids::TraceId::derive("t", &i.to_string()))).count();
        assert!((4_500..5_500).contains(&kept), "{kept}");
        assert!(!Sampler::TraceIdRatio(0.0).should_sample(crate::ids::TraceId::derive("t", "x")));
    }
}
