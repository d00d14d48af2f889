//! Our own OTLP wire: requests we encode ourselves (with the official generated types, `opentelemetry-proto`)
//! sent to the configured endpoint. Both signals go this way: the translator's spans already have their ids and
//! times, and going through the SDK's `SpanData` and exporter cost more than the encoding itself; metrics in
//! event time carry times and exemplars the SDK's types cannot (see [`crate::history`]).
//!
//! What an OTLP exporter promises, kept on both transports: the standard `OTEL_EXPORTER_OTLP_*` settings
//! ([`Target`]: endpoint, headers, compression, timeout, certificate), retry with exponential backoff and jitter
//! (from `backon`) for what the OTLP spec calls retryable, the server's `Retry-After` (HTTP) or `RetryInfo`
//! (gRPC) honoured, partial success counted, a refusal for good never resent.

// With the `otel` feature alone no transport exists, and what would feed one is unused.
#![cfg_attr(not(any(feature = "http", feature = "grpc")), allow(unused))]

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
mod target;

#[cfg(feature = "grpc")]
pub use grpc::GrpcWire;
#[cfg(feature = "http")]
pub use http::HttpWire;
pub use target::{Target, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_METRICS_ENDPOINT, DEFAULT_HTTP_TRACES_ENDPOINT};

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::config::{BuildError, Protocol};

/// The first retry's delay (then doubled, with jitter, up to [`MAX_RETRY_DELAY`]).
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// The longest wait between two attempts, a server's `Retry-After` or `RetryInfo` included.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: usize = 6;

/// How often and how patiently a request is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: usize,
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: MAX_ATTEMPTS, first_delay: FIRST_RETRY_DELAY }
    }
}

/// Called before each retry with what failed and how long the wire will wait: lets a caller see an outage as it
/// begins instead of when the request's last attempt gives up.
#[derive(Clone)]
pub struct RetryHook(std::sync::Arc<RetryFn>);

/// What a [`RetryHook`] runs: the failed attempt's message, and the wait before the next one.
type RetryFn = dyn Fn(&str, Duration) + Send + Sync;

impl RetryHook {
    pub fn new(f: impl Fn(&str, Duration) + Send + Sync + 'static) -> RetryHook {
        RetryHook(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for RetryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryHook")
    }
}

/// A request the backend took, whole or in part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Data points or spans the backend said it rejected (OTLP partial success), with its message.
    pub rejected: u64,
    pub message: Option<String>,
    /// Attempts it took (1: no retry).
    pub attempts: usize,
}

/// A request that did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub reason: FailReason,
    /// What the backend or the network said.
    pub message: String,
    pub attempts: usize,
}

/// Why a request did not get through; one low-cardinality label each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// Refused for good (HTTP 4xx other than 408 and 429; a gRPC client-error code): the same bytes would be
    /// refused again.
    Rejected,
    /// The server failed (HTTP 500, gRPC `INTERNAL` or `UNKNOWN`). The OTLP spec says not to retry at once, but
    /// from a collector this is far more often a restart or overload than a verdict on the data: callers keep it
    /// for a later attempt, as they keep [`Unavailable`](FailReason::Unavailable) data.
    ServerError,
    /// Still failing (unreachable, overloaded, timing out) when the attempts ran out.
    Unavailable,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Rejected => "rejected",
            FailReason::ServerError => "server_error",
            FailReason::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} after {} attempt(s): {}", self.reason.as_str(), self.attempts, self.message)
    }
}

/// One attempt's failure, and whether and when to try again.
#[derive(Debug)]
#[cfg(any(feature = "http", feature = "grpc"))]
struct Attempt {
    retryable: bool,
    /// What the request's failure is, if this attempt is its last.
    reason: FailReason,
    /// What the server asked for (`Retry-After`, `RetryInfo`): used instead of the backoff's own delay.
    retry_after: Option<Duration>,
    message: String,
}

/// Runs `attempt` until it succeeds, fails for good or the policy's attempts run out.
#[cfg(any(feature = "http", feature = "grpc"))]
async fn retrying<T, F, Fut>(policy: RetryPolicy, hook: Option<&RetryHook>, attempt: F) -> Result<(T, usize), Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    use backon::{ExponentialBuilder, Retryable};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let attempts = AtomicUsize::new(0);
    let mut attempt = attempt;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(MAX_RETRY_DELAY)
        .with_max_times(policy.max_attempts.max(1) - 1)
        .with_jitter();
    let answer = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt()
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|a: &Attempt| a.retryable)
    .adjust(|a: &Attempt, next: Option<Duration>| next.map(|d| a.retry_after.map_or(d, |r| r.min(MAX_RETRY_DELAY))))
    .notify(|a: &Attempt, wait: Duration| {
        if let Some(h) = hook {
            (h.0)(&a.message, wait)
        }
    })
    .await;
    let attempts = attempts.load(Ordering::Relaxed);
    match answer {
        Ok(v) => Ok((v, attempts)),
        Err(a) => Err(Failed { reason: a.reason, message: a.message, attempts }),
    }
}

/// Whether a failed connection failed on TLS (an untrusted or invalid certificate, a refused handshake):
/// trying the same server again at once would fail the same way, so it is not retried. rustls' errors reach us
/// as `io::Error`s of kind `InvalidData` under the client's own error.
#[cfg(any(feature = "http", feature = "grpc"))]
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
        }
        let text = err.to_string();
        if text.contains("certificate") || text.contains("HandshakeFailure") {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(any(feature = "http", feature = "grpc"))]
fn accepted(rejected: i64, message: String, attempts: usize) -> Accepted {
    Accepted { rejected: rejected.max(0) as u64, message: Some(message).filter(|m| !m.is_empty()), attempts }
}

/// Requests to one backend, over the configured transport: metrics, spans, or both (a wire per signal when
/// their targets differ).
#[derive(Debug, Clone)]
pub enum Wire {
    #[cfg(feature = "http")]
    Http(HttpWire),
    // Boxed: the tonic channel is several times the size of the HTTP client, and a wire is made once per run.
    #[cfg(feature = "grpc")]
    Grpc(Box<GrpcWire>),
    /// No transport is compiled in (the `otel` feature alone): such a wire cannot be made.
    #[cfg(not(any(feature = "http", feature = "grpc")))]
    #[doc(hidden)]
    Never(std::convert::Infallible),
}

impl Wire {
    /// A wire to `target` over its protocol. For gRPC, call it inside a tokio runtime (the channel is made on it,
    /// connecting on first use).
    pub fn new(target: &Target, retry: RetryPolicy) -> Result<Wire, BuildError> {
        match target.protocol {
            #[cfg(feature = "http")]
            Protocol::HttpProtobuf | Protocol::HttpJson => Ok(Wire::Http(HttpWire::new(target, retry)?)),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Ok(Wire::Grpc(Box::new(GrpcWire::new(target, retry)?))),
            #[allow(unreachable_patterns)]
            other => Err(BuildError::Invalid {
                name: "protocol".into(),
                reason: format!("{other:?} is not compiled in: enable its Cargo feature"),
            }),
        }
    }

    /// Where requests go.
    pub fn url(&self) -> &str {
        match self {
            #[cfg(feature = "http")]
            Wire::Http(w) => w.url(),
            #[cfg(feature = "grpc")]
            Wire::Grpc(w) => w.url(),
            #[cfg(not(any(feature = "http", feature = "grpc")))]
            Wire::Never(never) => match *never {},
        }
    }

    /// Calls `hook` before each retry.
    pub fn on_retry(mut self, hook: RetryHook) -> Wire {
        match &mut self {
            #[cfg(feature = "http")]
            Wire::Http(w) => w.on_retry = Some(hook),
            #[cfg(feature = "grpc")]
            Wire::Grpc(w) => w.on_retry = Some(hook),
            #[cfg(not(any(feature = "http", feature = "grpc")))]
            Wire::Never(never) => match *never {},
        }
        self
    }

    /// Sends one metrics request, retrying what may succeed later.
    pub async fn send_metrics(&self, request: &ExportMetricsServiceRequest) -> Result<Accepted, Failed> {
        match self {
            #[cfg(feature = "http")]
            Wire::Http(w) => w.send_metrics(request).await,
            #[cfg(feature = "grpc")]
            Wire::Grpc(w) => w.send_metrics(request).await,
            #[cfg(not(any(feature = "http", feature = "grpc")))]
            Wire::Never(never) => match *never {},
        }
    }

    /// Sends one trace request, retrying what may succeed later.
    pub async fn send_spans(&self, request: &ExportTraceServiceRequest) -> Result<Accepted, Failed> {
        match self {
            #[cfg(feature = "http")]
            Wire::Http(w) => w.send_spans(request).await,
            #[cfg(feature = "grpc")]
            Wire::Grpc(w) => w.send_spans(request).await,
            #[cfg(not(any(feature = "http", feature = "grpc")))]
            Wire::Never(never) => match *never {},
        }
    }
}
