//! Our own OTLP wire: requests we encode ourselves (with the official generated types, `opentelemetry-proto`)
//! sent to the configured endpoint, for data the SDK's exporters cannot carry as it is (metrics in event time,
//! with exemplars: see [`crate::history`]).
//!
//! What an OTLP exporter promises, kept on both transports: the standard `OTEL_EXPORTER_OTLP_*` settings
//! ([`Target`]: endpoint, headers, compression, timeout, certificate), retry with exponential backoff and jitter
//! (from `backon`) for what the OTLP spec calls retryable, the server's `Retry-After` (HTTP) or `RetryInfo`
//! (gRPC) honoured, partial success counted, a refusal for good never resent.

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
mod target;

#[cfg(feature = "grpc")]
pub use grpc::GrpcWire;
#[cfg(feature = "http")]
pub use http::HttpWire;
pub use target::{Target, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_METRICS_ENDPOINT};

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceRequest};

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

/// A request the backend took, whole or in part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Points the backend said it rejected (OTLP partial success), with its message.
    pub rejected_points: u64,
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
    /// Refused for good (HTTP 4xx other than 408 and 429; a gRPC code the spec calls permanent): the same bytes
    /// would be refused again.
    Rejected,
    /// Still failing (unreachable, overloaded, timing out) when the attempts ran out.
    Unavailable,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Rejected => "rejected",
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
struct Attempt {
    retryable: bool,
    /// What the server asked for (`Retry-After`, `RetryInfo`): used instead of the backoff's own delay.
    retry_after: Option<Duration>,
    message: String,
}

/// Runs `attempt` until it succeeds, fails for good or the policy's attempts run out.
async fn retrying<T, F, Fut>(policy: RetryPolicy, attempt: F) -> Result<(T, usize), Failed>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
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
    .await;
    let attempts = attempts.load(Ordering::Relaxed);
    match answer {
        Ok(v) => Ok((v, attempts)),
        Err(a) => Err(Failed {
            reason: if a.retryable { FailReason::Unavailable } else { FailReason::Rejected },
            message: a.message,
            attempts,
        }),
    }
}

fn accepted(partial: Option<ExportMetricsPartialSuccess>, attempts: usize) -> Accepted {
    Accepted {
        rejected_points: partial.as_ref().map_or(0, |p| p.rejected_data_points.max(0) as u64),
        message: partial.map(|p| p.error_message).filter(|m| !m.is_empty()),
        attempts,
    }
}

/// Metric requests to one backend, over the configured transport.
#[derive(Debug, Clone)]
pub enum MetricsWire {
    #[cfg(feature = "http")]
    Http(HttpWire),
    // Boxed: the tonic channel is several times the size of the HTTP client, and a wire is made once per run.
    #[cfg(feature = "grpc")]
    Grpc(Box<GrpcWire>),
}

impl MetricsWire {
    /// A wire to `target` over its protocol. For gRPC, call it inside a tokio runtime (the channel is made on it,
    /// connecting on first use).
    pub fn new(target: &Target, retry: RetryPolicy) -> Result<MetricsWire, BuildError> {
        match target.protocol {
            #[cfg(feature = "http")]
            Protocol::HttpProtobuf | Protocol::HttpJson => Ok(MetricsWire::Http(HttpWire::new(target, retry)?)),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Ok(MetricsWire::Grpc(Box::new(GrpcWire::new(target, retry)?))),
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
            MetricsWire::Http(w) => w.url(),
            #[cfg(feature = "grpc")]
            MetricsWire::Grpc(w) => w.url(),
        }
    }

    /// Sends one request, retrying what may succeed later.
    pub async fn send(&self, request: &ExportMetricsServiceRequest) -> Result<Accepted, Failed> {
        match self {
            #[cfg(feature = "http")]
            MetricsWire::Http(w) => w.send_metrics(request).await,
            #[cfg(feature = "grpc")]
            MetricsWire::Grpc(w) => w.send_metrics(request).await,
        }
    }
}
