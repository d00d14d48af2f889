//! OTLP/gRPC over the generated tonic client: gzip when asked, metadata headers, the server's `RetryInfo`
//! honoured, the spec's retryable codes retried.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;
use tonic_types::StatusExt;

use super::{accepted, retrying, Accepted, Attempt, FailReason, Failed, RetryHook, RetryPolicy, Target};
use crate::config::BuildError;

/// One gRPC channel to an OTLP receiver, for either service.
#[derive(Debug, Clone)]
pub struct GrpcWire {
    metrics: MetricsServiceClient<Channel>,
    traces: TraceServiceClient<Channel>,
    url: String,
    metadata: tonic::metadata::MetadataMap,
    retry: RetryPolicy,
    pub(super) on_retry: Option<RetryHook>,
}

impl GrpcWire {
    /// A lazily connecting channel to `target.url`; must be called inside a tokio runtime.
    pub fn new(target: &Target, retry: RetryPolicy) -> Result<GrpcWire, BuildError> {
        let invalid = |reason: String| BuildError::Invalid { name: "OTLP/gRPC endpoint".into(), reason };
        let mut endpoint = Endpoint::from_shared(target.url.clone())
            .map_err(|e| invalid(format!("{}: {e}", target.url)))?
            .timeout(target.timeout)
            .connect_timeout(target.timeout);
        if let Some(ca) = &target.ca {
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.read()?));
            endpoint = endpoint.tls_config(tls).map_err(|e| invalid(format!("{}: {e}", ca.path.display())))?;
        } else if target.url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| invalid(format!("{}: {e}", target.url)))?;
        }
        let channel = endpoint.connect_lazy();
        let (mut metrics, mut traces) = (MetricsServiceClient::new(channel.clone()), TraceServiceClient::new(channel));
        if target.gzip {
            metrics = metrics.send_compressed(tonic::codec::CompressionEncoding::Gzip);
            traces = traces.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (k, v) in &target.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|_| invalid(format!("{k:?} is not a valid gRPC metadata key")))?;
            let value = v.parse().map_err(|_| invalid(format!("the value of {k:?} is not valid (value hidden)")))?;
            metadata.insert(key, value);
        }
        Ok(GrpcWire { metrics, traces, url: target.url.clone(), metadata, retry, on_retry: None })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one metrics request; retries what may succeed later, honouring the server's `RetryInfo`.
    pub async fn send_metrics(&self, request: &ExportMetricsServiceRequest) -> Result<Accepted, Failed> {
        let (response, attempts) = retrying(self.retry, self.on_retry.as_ref(), || async {
            let mut client = self.metrics.clone();
            client.export(self.request(request.clone())).await.map_err(|s| attempt_of(&self.url, &s))
        })
        .await?;
        let p = response.into_inner().partial_success.unwrap_or_default();
        Ok(accepted(p.rejected_data_points, p.error_message, attempts))
    }

    /// Sends one trace request; retries what may succeed later, honouring the server's `RetryInfo`.
    pub async fn send_spans(&self, request: &ExportTraceServiceRequest) -> Result<Accepted, Failed> {
        let (response, attempts) = retrying(self.retry, self.on_retry.as_ref(), || async {
            let mut client = self.traces.clone();
            client.export(self.request(request.clone())).await.map_err(|s| attempt_of(&self.url, &s))
        })
        .await?;
        let p = response.into_inner().partial_success.unwrap_or_default();
        Ok(accepted(p.rejected_spans, p.error_message, attempts))
    }

    fn request<T>(&self, body: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        request
    }
}

/// What the OTLP spec says of a gRPC status: retry the transient codes, `RESOURCE_EXHAUSTED` only when the
/// server says when (`RetryInfo`), never the rest.
fn attempt_of(url: &str, status: &tonic::Status) -> Attempt {
    let retry_after = status.get_details_retry_info().and_then(|r| r.retry_delay);
    // From the transport's error under the status, not the server's message.
    let tls = status.code() == Code::Unavailable && std::error::Error::source(status).is_some_and(super::tls_failure);
    let retryable = !tls
        && match status.code() {
            Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::OutOfRange | Code::Unavailable => true,
            Code::DataLoss => true,
            Code::ResourceExhausted => retry_after.is_some(),
            _ => false,
        };
    let rejected = matches!(
        status.code(),
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::Unimplemented
    );
    Attempt {
        retryable,
        reason: match () {
            _ if retryable || tls => FailReason::Unavailable,
            _ if rejected => FailReason::Rejected,
            _ => FailReason::ServerError,
        },
        retry_after: retry_after.map(|d: Duration| d),
        message: format!("{url}: gRPC {:?}: {}", status.code(), status.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn resource_exhausted_is_retried_only_with_retry_info_and_after_the_delay_it_names() {
        let bare = tonic::Status::resource_exhausted("slow down");
        assert!(!attempt_of("u", &bare).retryable);
        let with = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1500))),
        );
        let a = attempt_of("u", &with);
        assert!(a.retryable);
        assert_eq!(a.retry_after, Some(Duration::from_millis(1500)));
        assert!(attempt_of("u", &tonic::Status::unavailable("down")).retryable);
        assert!(!attempt_of("u", &tonic::Status::invalid_argument("bad")).retryable);
    }
}
