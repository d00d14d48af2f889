//! OTLP/gRPC over the generated tonic client: gzip when asked, metadata headers, the server's `RetryInfo`
//! honoured, the spec's retryable codes retried.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;
use tonic_types::StatusExt;

use super::{accepted, retrying, Accepted, Attempt, Failed, RetryPolicy, Target};
use crate::config::BuildError;

/// One gRPC channel to a metrics service.
#[derive(Debug, Clone)]
pub struct GrpcWire {
    client: MetricsServiceClient<Channel>,
    url: String,
    metadata: tonic::metadata::MetadataMap,
    retry: RetryPolicy,
}

impl GrpcWire {
    /// A lazily connecting channel to `target.url`; must be called inside a tokio runtime.
    pub fn new(target: &Target, retry: RetryPolicy) -> Result<GrpcWire, BuildError> {
        let invalid = |reason: String| BuildError::Invalid { name: "OTLP/gRPC metrics endpoint".into(), reason };
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
        let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
        if target.gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (k, v) in &target.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|_| invalid(format!("{k:?} is not a valid gRPC metadata key")))?;
            let value = v.parse().map_err(|_| invalid(format!("the value of {k:?} is not valid (value hidden)")))?;
            metadata.insert(key, value);
        }
        Ok(GrpcWire { client, url: target.url.clone(), metadata, retry })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one metrics request; retries what may succeed later, honouring the server's `RetryInfo`.
    pub async fn send_metrics(&self, request: &ExportMetricsServiceRequest) -> Result<Accepted, Failed> {
        let (response, attempts) = retrying(self.retry, || self.attempt(request.clone())).await?;
        Ok(accepted(response.partial_success, attempts))
    }

    async fn attempt(
        &self,
        body: ExportMetricsServiceRequest,
    ) -> Result<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse, Attempt> {
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let mut client = self.client.clone();
        match client.export(request).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => Err(attempt_of(&self.url, &status)),
        }
    }
}

/// What the OTLP spec says of a gRPC status: retry the transient codes, `RESOURCE_EXHAUSTED` only when the
/// server says when (`RetryInfo`), never the rest.
fn attempt_of(url: &str, status: &tonic::Status) -> Attempt {
    let retry_after = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = match status.code() {
        Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::OutOfRange | Code::Unavailable => true,
        Code::DataLoss => true,
        Code::ResourceExhausted => retry_after.is_some(),
        _ => false,
    };
    Attempt {
        retryable,
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
