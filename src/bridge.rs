//! The public handle: build it once, `record` events from anywhere, `shutdown` at exit.
//!
//! ```no_run
//! use bamboo_otel::{Bridge, MetricsEvent};
//! # fn events() -> Vec<MetricsEvent> { vec![] }
//! // Reads the standard OTEL_* variables (endpoint, protocol, headers, sampler, …).
//! let bridge = Bridge::from_env().expect("valid OTEL_* configuration");
//! for event in events() {
//!     bridge.record(event); // never blocks: a bounded queue feeds a worker thread
//! }
//! let report = bridge.shutdown(std::time::Duration::from_secs(5));
//! println!("{report:?}");
//! ```
//!
//! `record` costs a queue push on the caller's thread. When the queue is full the event is dropped, counted
//! (`bamboo_otel.events.rejected{reason="queue_full"}` and [`ShutdownReport::events_dropped`]) and logged once per
//! burst. Dropping the last handle shuts the bridge down with a 5 s bound.
//!
//! Without the `otel` Cargo feature, `Bridge` has the same API and does nothing, with no OpenTelemetry
//! dependency, so applications can wire it unconditionally.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use crate::pipeline::ShutdownReport;

use crate::config::{BuildError, ExporterKind, Protocol, Sampler, Settings};
use crate::events::{MetricsEvent, ParseError};
use crate::pipeline::Shared;

/// Builds a [`Bridge`]. Starts from the environment (`OTEL_*`, `BAMBOO_OTEL_*`); what is set here wins.
#[derive(Debug, Clone)]
pub struct BridgeBuilder {
    settings: Result<Settings, BuildError>,
}

impl BridgeBuilder {
    fn map(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        if let Ok(s) = &mut self.settings {
            f(s);
        }
        self
    }

    pub fn service_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.map(|s| s.service_name = Some(name))
    }

    /// Adds a resource attribute (e.g. `openinference.project.name`, `deployment.environment`).
    pub fn resource_attribute(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (k, v) = (key.into(), value.into());
        self.map(|s| s.resource.push((k, v)))
    }

    pub fn traces_exporter(self, kind: ExporterKind) -> Self {
        self.map(|s| s.traces = kind)
    }

    pub fn metrics_exporter(self, kind: ExporterKind) -> Self {
        self.map(|s| s.metrics = kind)
    }

    /// OTLP endpoint and protocol for both signals. For HTTP, give the full signal URLs with
    /// [`traces_endpoint`](Self::traces_endpoint) and [`metrics_endpoint`](Self::metrics_endpoint) instead.
    pub fn protocol(self, protocol: Protocol) -> Self {
        self.map(|s| (s.traces_protocol, s.metrics_protocol) = (protocol, protocol))
    }

    /// The collector's base URL for both signals, as `OTEL_EXPORTER_OTLP_ENDPOINT` gives it: for HTTP,
    /// `/v1/traces` and `/v1/metrics` are appended; for gRPC it is used as is. Unlike the per-signal setters it
    /// leaves the exporters (`otlp`, `console`, `none`) and the protocol as they are.
    pub fn endpoint(mut self, base_url: impl Into<String>) -> Self {
        let url = base_url.into();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.settings = Err(BuildError::InvalidValue {
                name: "endpoint".into(),
                value: url,
                expected: "an http:// or https:// URL",
            });
            return self;
        }
        self.map(|s| s.endpoint = Some(url))
    }

    pub fn traces_endpoint(self, url: impl Into<String>, protocol: Protocol) -> Self {
        let url = url.into();
        self.map(|s| {
            s.traces_endpoint = Some(url);
            s.traces_protocol = protocol;
            s.traces = ExporterKind::Otlp;
        })
    }

    pub fn metrics_endpoint(self, url: impl Into<String>, protocol: Protocol) -> Self {
        let url = url.into();
        self.map(|s| {
            s.metrics_endpoint = Some(url);
            s.metrics_protocol = protocol;
            s.metrics = ExporterKind::Otlp;
        })
    }

    /// A header sent with every export (e.g. an API key). Its value never appears in logs or errors.
    pub fn header(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (k, v) = (key.into(), value.into());
        self.map(|s| s.headers.push((k, v)))
    }

    /// Trust only the CA certificates in this PEM file for TLS to the collector (both signals), as
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE` does. The file is read when the bridge is built.
    pub fn certificate(self, pem_file: impl Into<std::path::PathBuf>) -> Self {
        let ca = crate::config::CaFile { setting: "certificate".into(), path: pem_file.into() };
        self.map(|s| {
            s.traces_certificate = Some(ca.clone());
            s.metrics_certificate = Some(ca);
        })
    }

    /// gzip-compress every export.
    pub fn gzip(self, yes: bool) -> Self {
        self.map(|s| s.gzip = yes)
    }

    /// Span batches sent at once (default [`DEFAULT_MAX_CONCURRENT_EXPORTS`](crate::config::DEFAULT_MAX_CONCURRENT_EXPORTS);
    /// `BAMBOO_OTEL_MAX_CONCURRENT_EXPORTS`). Zero is refused when the bridge is built, as in the environment.
    pub fn max_concurrent_exports(self, n: usize) -> Self {
        self.count("max_concurrent_exports", n, |s, n| s.max_concurrent_exports = n)
    }

    /// Spans per export request (default [`DEFAULT_BATCH_SIZE`](crate::config::DEFAULT_BATCH_SIZE);
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`). Zero is refused.
    pub fn batch_size(self, n: usize) -> Self {
        self.count("batch_size", n, |s, n| s.batch_size = n)
    }

    /// Finished spans kept waiting for export while the backend is failing; beyond it the oldest are dropped and
    /// counted (default [`DEFAULT_MAX_QUEUED_SPANS`](crate::config::DEFAULT_MAX_QUEUED_SPANS);
    /// `OTEL_BSP_MAX_QUEUE_SIZE`). With the event queue, this bounds the bridge's memory. Zero is refused.
    pub fn max_queued_spans(self, n: usize) -> Self {
        self.count("max_queued_spans", n, |s, n| s.max_queued_spans = n)
    }

    /// How long one export request may take, retries included (default
    /// [`DEFAULT_EXPORT_TIMEOUT`](crate::config::DEFAULT_EXPORT_TIMEOUT); `OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub fn export_timeout(self, timeout: Duration) -> Self {
        self.map(|s| s.export_timeout = timeout)
    }

    /// Distinct attribute sets kept per metric (default
    /// [`DEFAULT_METRIC_CARDINALITY_LIMIT`](crate::config::DEFAULT_METRIC_CARDINALITY_LIMIT);
    /// `BAMBOO_OTEL_METRIC_CARDINALITY_LIMIT`). Beyond it, measurements fold into one `otel.metric.overflow=true`
    /// series and are counted in `bamboo_otel.metric.overflow{metric}`, so a flood of distinct tool names cannot
    /// grow memory or the backend. Zero is refused.
    pub fn metric_cardinality_limit(self, n: usize) -> Self {
        self.count("metric_cardinality_limit", n, |s, n| s.metric_cardinality_limit = n)
    }

    /// Events waiting for the worker; beyond it `record` drops and counts (default
    /// [`DEFAULT_QUEUE_SIZE`](crate::config::DEFAULT_QUEUE_SIZE); `BAMBOO_OTEL_QUEUE_SIZE`). Zero is refused.
    pub fn queue_size(self, n: usize) -> Self {
        self.count("queue_size", n, |s, n| s.queue_size = n)
    }

    /// Open sessions, rounds and requests kept at once (default
    /// [`DEFAULT_MAX_OPEN_SPANS`](crate::translate::DEFAULT_MAX_OPEN_SPANS); `BAMBOO_OTEL_MAX_OPEN_SPANS`); beyond
    /// it the least recently active is emitted as incomplete and counted. With the queues, this bounds memory.
    /// Zero is refused; one is raised to two (a session and its round).
    pub fn max_open_spans(self, n: usize) -> Self {
        self.count("max_open_spans", n, |s, n| s.translate.max_open_spans = n.max(2))
    }

    /// How long an open span may stay idle before it is emitted as incomplete (default
    /// [`DEFAULT_SPAN_TTL`](crate::translate::DEFAULT_SPAN_TTL); `BAMBOO_OTEL_SPAN_TTL`).
    pub fn span_ttl(self, ttl: Duration) -> Self {
        self.map(|s| s.translate.span_ttl = ttl)
    }

    /// Error texts are cut to this many bytes on a UTF-8 boundary (default
    /// [`DEFAULT_MAX_ERROR_LEN`](crate::translate::DEFAULT_MAX_ERROR_LEN)).
    pub fn max_error_len(self, n: usize) -> Self {
        self.map(|s| s.translate.max_error_len = n)
    }

    /// `gen_ai.agent.name` on session and tool spans and agent metrics. Default
    /// [`DEFAULT_AGENT_NAME`](crate::translate::DEFAULT_AGENT_NAME); environment `BAMBOO_OTEL_AGENT_NAME`.
    pub fn agent_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if name.trim().is_empty() {
            self.settings = Err(BuildError::InvalidValue {
                name: "agent_name".into(),
                value: name,
                expected: "a non-empty agent name",
            });
            return self;
        }
        self.map(|s| s.translate.agent_name = name.into())
    }

    /// Models matching `glob` are served by `provider` (`gen_ai.provider.name`), ahead of the built-in
    /// [model families](crate::translate::genai::MODEL_FAMILIES). Environment `BAMBOO_OTEL_MODEL_PROVIDERS`.
    pub fn provider_rule(self, glob: impl Into<String>, provider: impl Into<String>) -> Self {
        let (glob, provider) = (glob.into(), provider.into());
        self.map(|s| s.translate.providers.push(glob, provider))
    }

    /// Prices from a TOML file (the format of [`BUILTIN_PRICES`](crate::translate::cost::BUILTIN_PRICES)), read
    /// now, ahead of the shipped table. Environment `BAMBOO_OTEL_PRICES`.
    pub fn prices_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        match crate::config::read_prices("prices_file", path.as_ref()) {
            Ok(table) => self.map(|s| s.translate.prices = Some(table)),
            Err(e) => {
                self.settings = Err(e);
                self
            }
        }
    }

    /// Whether spans and metrics carry cost by the price table. Default on.
    pub fn cost(self, yes: bool) -> Self {
        self.map(|s| {
            s.translate.prices = match (yes, s.translate.prices.take()) {
                (false, _) => None,
                (true, Some(t)) => Some(t),
                (true, None) => Some(crate::translate::builtin_prices()),
            }
        })
    }

    pub fn sampler(self, sampler: Sampler) -> Self {
        self.map(|s| s.sampler = sampler)
    }

    pub fn metric_interval(self, every: Duration) -> Self {
        self.map(|s| s.metric_interval = every)
    }

    /// Whether spans still open at shutdown are emitted as incomplete (default) or dropped.
    pub fn flush_open_spans_on_shutdown(self, yes: bool) -> Self {
        self.map(|s| s.flush_open_on_shutdown = yes)
    }

    /// Drops or hashes attributes whose key matches `key_glob` (`*` matches anything), on spans and metrics;
    /// `error.message` stands for the span status text. See [`crate::redact`]. Also `BAMBOO_OTEL_REDACT`.
    pub fn redact(self, key_glob: impl Into<String>, action: crate::redact::Action) -> Self {
        let key = key_glob.into();
        self.map(|s| s.redact.push_rule(crate::redact::Rule { key, value: None, action }))
    }

    /// Like [`redact`](Self::redact), only for values matching `value_glob` (e.g. tool names `internal_*`).
    pub fn redact_values(
        self,
        key_glob: impl Into<String>,
        value_glob: impl Into<String>,
        action: crate::redact::Action,
    ) -> Self {
        let (key, value) = (key_glob.into(), Some(value_glob.into()));
        self.map(|s| s.redact.push_rule(crate::redact::Rule { key, value, action }))
    }

    /// Keeps only attributes whose key matches one of these globs (`BAMBOO_OTEL_ATTRIBUTE_ALLOWLIST`).
    pub fn attribute_allowlist<I, S>(self, key_globs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let globs = key_globs.into_iter().map(Into::into).collect();
        self.map(|s| s.redact.set_allowlist(globs))
    }

    /// The secret key of `hash` redaction (`BAMBOO_OTEL_REDACT_KEY`). Never logged.
    pub fn redact_key(self, secret: &str) -> Self {
        self.map(|s| s.redact.set_key(secret))
    }

    /// A function that sees every finished span last, after the rules, and may change anything in it (names,
    /// attributes, status). It runs on the bridge's worker thread, never on the caller's.
    pub fn redact_spans_with(self, hook: impl Fn(&mut crate::translate::SpanRecord) + Send + Sync + 'static) -> Self {
        let hook: crate::redact::SpanHook = Arc::new(hook);
        self.map(|s| s.redact.set_hook(hook))
    }

    /// Sets a count that must be positive, or records why the bridge will not build.
    fn count(mut self, name: &str, n: usize, set: impl FnOnce(&mut Settings, usize)) -> Self {
        if n == 0 {
            self.settings = Err(BuildError::InvalidValue {
                name: name.into(),
                value: "0".into(),
                expected: "a positive whole number",
            });
            return self;
        }
        self.map(|s| set(s, n))
    }

    /// Replaying recorded events: measure idle time on the events' own clock.
    pub fn replay_clock(self) -> Self {
        self.map(|s| s.translate.clock = crate::translate::TtlClock::EventTime)
    }

    pub fn settings(&self) -> Result<&Settings, &BuildError> {
        self.settings.as_ref()
    }

    pub fn build(self) -> Result<Bridge, BuildError> {
        let settings = self.settings?;
        Bridge::start(settings)
    }
}

/// The bridge handle. Cheap to clone; all clones feed the same worker.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("enabled", &self.is_enabled()).finish()
    }
}

struct Inner {
    shared: Arc<Shared>,
    #[cfg(feature = "otel")]
    worker: std::sync::Mutex<Option<crate::pipeline::WorkerHandle>>,
    #[cfg(feature = "otel")]
    events: Option<std::sync::mpsc::SyncSender<MetricsEvent>>,
    #[cfg(feature = "otel")]
    app: Option<AppSpans>,
    #[cfg(feature = "otel")]
    provider: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// What the bridge's tracer provider needs: the worker's span queue, the resource and the sampler.
#[cfg(feature = "otel")]
struct AppSpans {
    tx: std::sync::mpsc::SyncSender<opentelemetry_sdk::trace::SpanData>,
    resource: opentelemetry_sdk::Resource,
    sampler: Sampler,
}

impl Bridge {
    pub fn builder() -> BridgeBuilder {
        BridgeBuilder { settings: Settings::from_env() }
    }

    /// A bridge configured from the environment only.
    pub fn from_env() -> Result<Bridge, BuildError> {
        Self::builder().build()
    }

    /// A bridge that does nothing (what `OTEL_SDK_DISABLED=true` gives).
    pub fn disabled() -> Bridge {
        Bridge {
            inner: Arc::new(Inner {
                shared: Arc::default(),
                #[cfg(feature = "otel")]
                worker: std::sync::Mutex::new(None),
                #[cfg(feature = "otel")]
                events: None,
                #[cfg(feature = "otel")]
                app: None,
                #[cfg(feature = "otel")]
                provider: std::sync::OnceLock::new(),
            }),
        }
    }

    #[cfg(feature = "otel")]
    fn start(settings: Settings) -> Result<Bridge, BuildError> {
        if settings.disabled {
            return Ok(Bridge::disabled());
        }
        let shared = Arc::new(Shared::default());
        let sampler = settings.sampler;
        let handle = crate::pipeline::spawn(settings, shared.clone())?;
        Ok(Bridge {
            inner: Arc::new(Inner {
                shared,
                events: Some(handle.events.clone()),
                app: Some(AppSpans { tx: handle.app_spans.clone(), resource: handle.resource.clone(), sampler }),
                provider: std::sync::OnceLock::new(),
                worker: std::sync::Mutex::new(Some(handle)),
            }),
        })
    }

    #[cfg(not(feature = "otel"))]
    fn start(_settings: Settings) -> Result<Bridge, BuildError> {
        Ok(Bridge::disabled())
    }

    /// Whether events go anywhere (false with `OTEL_SDK_DISABLED=true` or without the `otel` feature).
    pub fn is_enabled(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.inner.events.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }

    /// Hands an event to the worker. Never blocks, never panics; a full queue drops the event and counts it.
    #[inline]
    pub fn record(&self, event: MetricsEvent) {
        #[cfg(feature = "otel")]
        if let Some(tx) = &self.inner.events {
            if tx.try_send(event).is_err() {
                self.queue_full();
            }
        }
        #[cfg(not(feature = "otel"))]
        drop(event);
    }

    /// Hands an event to the worker, waiting for queue space instead of dropping: for batch sources (file
    /// replay, database import) that must not lose events and can afford to wait. Never use it on an agent's
    /// hot path. Returns the event back if the bridge has shut down (or is disabled).
    // The event comes back by value, as `SyncSender::send` gives it: no allocation on the failure path.
    #[allow(clippy::result_large_err)]
    pub fn record_wait(&self, event: MetricsEvent) -> Result<(), MetricsEvent> {
        #[cfg(feature = "otel")]
        if let Some(tx) = &self.inner.events {
            return tx.send(event).map_err(|e| e.0);
        }
        Err(event)
    }

    #[cold]
    #[cfg(feature = "otel")]
    fn queue_full(&self) {
        let shared = &self.inner.shared;
        shared.queue_full.fetch_add(1, Ordering::Relaxed);
        if !shared.burst_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "bamboo_otel", reason = "queue_full", "event queue full: dropping events (counted in bamboo_otel.events.rejected; logged once per burst)");
        }
    }

    /// Parses one JSON line and records it. A line that does not parse is returned as an error and not recorded.
    pub fn record_json(&self, line: &str) -> Result<(), ParseError> {
        let event = MetricsEvent::from_json(line)?;
        self.record(event);
        Ok(())
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.inner.shared.queue_full.load(Ordering::Relaxed)
    }

    /// Translates everything queued so far and exports finished spans and current metrics; waits at most
    /// `timeout`. Open spans stay open. Returns whether every finished span handed over so far has been exported
    /// (or dropped and counted): `false` when the timeout passed or the backend is failing and spans wait for a
    /// retry, so a source can checkpoint only what is really delivered.
    pub fn force_flush(&self, timeout: Duration) -> bool {
        #[cfg(feature = "otel")]
        {
            let guard = self.inner.worker.lock().unwrap_or_else(|p| p.into_inner());
            let Some(w) = guard.as_ref() else { return true };
            let (tx, rx) = std::sync::mpsc::channel();
            if w.control.send(crate::pipeline::Control::Flush(tx)).is_err() {
                return false;
            }
            drop(guard);
            rx.recv_timeout(timeout).unwrap_or(false)
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = timeout;
            true
        }
    }

    /// Emits open spans as incomplete (unless configured not to), exports everything, and stops the worker.
    /// Returns within `timeout` (plus the time to join a worker that finished) with what it could and could not
    /// send. Later calls, and `record` afterwards, do nothing.
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        #[cfg(feature = "otel")]
        {
            let handle = self.inner.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(w) = handle else { return ShutdownReport::default() };
            let (tx, rx) = std::sync::mpsc::channel();
            if w.control.send(crate::pipeline::Control::Shutdown(timeout, tx)).is_err() {
                return ShutdownReport::default();
            }
            // The worker bounds its own work by `timeout`; the margin covers the reply itself.
            match rx.recv_timeout(timeout + Duration::from_millis(500)) {
                Ok(report) => {
                    let _ = w.thread.join();
                    report
                }
                Err(_) => {
                    ShutdownReport { timed_out: true, events_dropped: self.dropped_events(), ..Default::default() }
                }
            }
        }
        #[cfg(not(feature = "otel"))]
        {
            let _ = timeout;
            ShutdownReport::default()
        }
    }

    /// A tracer provider whose spans go through this bridge: the same exporter, resource (`service.name` and
    /// all), batching, outage handling and sampling ratio as Bamboo's spans. Every call returns the same provider.
    /// Its queue never blocks: a full queue drops the span and counts it in `bamboo_otel.spans.dropped`.
    /// On a disabled bridge the provider has no processor and spans go nowhere.
    #[cfg(feature = "otel")]
    pub fn tracer_provider(&self) -> opentelemetry_sdk::trace::SdkTracerProvider {
        self.inner
            .provider
            .get_or_init(|| match &self.inner.app {
                Some(app) => crate::pipeline::tracer_provider(
                    crate::pipeline::ForwardToWorker { tx: app.tx.clone(), shared: self.inner.shared.clone() },
                    app.resource.clone(),
                    app.sampler,
                ),
                None => opentelemetry_sdk::trace::SdkTracerProvider::builder().build(),
            })
            .clone()
    }

    /// A `tracing-opentelemetry` layer on [`Bridge::tracer_provider`], so the application's own `tracing` spans
    /// reach the same backend as Bamboo's, under the same service.
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    /// let bridge = bamboo_otel::Bridge::from_env().unwrap();
    /// tracing_subscriber::registry().with(bridge.tracing_layer()).init();
    /// tracing::info_span!("handle_request").in_scope(|| { /* … */ });
    /// ```
    #[cfg(feature = "otel")]
    pub fn tracing_layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(self.tracer_provider().tracer("bamboo-otel.app"))
    }

    /// Drains a Bamboo event channel into the bridge until the channel closes. Spawn it on the application's
    /// runtime: `tokio::spawn(bridge.clone().drain(rx))`.
    pub async fn drain(self, mut rx: tokio::sync::mpsc::Receiver<MetricsEvent>) {
        while let Some(event) = rx.recv().await {
            self.record(event);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        {
            // The last handle is gone: closing the queue makes the worker flush and stop (bounded at 5 s).
            self.events = None;
            if let Some(w) = self.worker.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
                drop(w.events);
                drop(w.control);
                let _ = w.thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_refuses_zero_counts_and_bare_endpoints_by_name_as_the_environment_does() {
        let refused = |b: BridgeBuilder| b.build().expect_err("must not build").to_string();
        for (name, b) in [
            ("batch_size", Bridge::builder().batch_size(0)),
            ("queue_size", Bridge::builder().queue_size(0)),
            ("max_queued_spans", Bridge::builder().max_queued_spans(0)),
            ("max_concurrent_exports", Bridge::builder().max_concurrent_exports(0)),
            ("metric_cardinality_limit", Bridge::builder().metric_cardinality_limit(0)),
            ("max_open_spans", Bridge::builder().max_open_spans(0)),
            ("endpoint", Bridge::builder().endpoint("localhost:4317")),
        ] {
            assert!(refused(b).contains(name), "{name}");
        }
        let s = Bridge::builder().endpoint("http://collector:4318").batch_size(3).settings.unwrap();
        assert_eq!((s.endpoint.as_deref(), s.batch_size), (Some("http://collector:4318"), 3));
    }
}
