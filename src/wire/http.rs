//! OTLP/HTTP over reqwest: protobuf or JSON bodies, gzip when asked, `Retry-After` honoured.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde::{de::DeserializeOwned, Serialize};

use super::{accepted, retrying, Accepted, Attempt, FailReason, Failed, RetryHook, RetryPolicy, Target};
use crate::config::{BuildError, Protocol};

/// Where and how to post one signal's requests.
#[derive(Debug, Clone)]
pub struct HttpWire {
    client: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    gzip: bool,
    json: bool,
    retry: RetryPolicy,
    pub(super) on_retry: Option<RetryHook>,
}

impl HttpWire {
    /// Posts to `target.url` (the full URL, `/v1/metrics` or `/v1/traces` included), each attempt bounded by its timeout,
    /// trusting only its CA certificate when it names one.
    pub fn new(target: &Target, retry: RetryPolicy) -> Result<HttpWire, BuildError> {
        let mut b = reqwest::Client::builder().timeout(target.timeout);
        if let Some(ca) = &target.ca {
            let pem = ca.read()?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| BuildError::Invalid {
                name: ca.setting.clone(),
                reason: format!("{}: not a usable CA certificate: {e}", ca.path.display()),
            })?;
            b = b.tls_certs_only(certs);
        }
        let client =
            b.build().map_err(|e| BuildError::Invalid { name: "http client".into(), reason: e.to_string() })?;
        Ok(HttpWire {
            client,
            url: target.url.clone(),
            headers: target.headers.clone(),
            gzip: target.gzip,
            json: target.protocol == Protocol::HttpJson,
            retry,
            on_retry: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one metrics request; retries what may succeed later, honouring `Retry-After`.
    pub async fn send_metrics(&self, request: &ExportMetricsServiceRequest) -> Result<Accepted, Failed> {
        let (response, attempts) = self.post::<_, ExportMetricsServiceResponse>(request).await?;
        let p = response.and_then(|r| r.partial_success).unwrap_or_default();
        Ok(accepted(p.rejected_data_points, p.error_message, attempts))
    }

    /// Sends one trace request; retries what may succeed later, honouring `Retry-After`.
    pub async fn send_spans(&self, request: &ExportTraceServiceRequest) -> Result<Accepted, Failed> {
        let (response, attempts) = self.post::<_, ExportTraceServiceResponse>(request).await?;
        let p = response.and_then(|r| r.partial_success).unwrap_or_default();
        Ok(accepted(p.rejected_spans, p.error_message, attempts))
    }

    /// Posts `request` until it is taken or refused; the response, if it could be read (an empty or foreign body
    /// from a 2xx is taken as full success, as the spec says of an empty one).
    async fn post<Req, Resp>(&self, request: &Req) -> Result<(Option<Resp>, usize), Failed>
    where
        Req: Message + Serialize,
        Resp: Message + Default + DeserializeOwned,
    {
        let raw = if self.json {
            serde_json::to_vec(request).expect("OTLP messages serialize to JSON")
        } else {
            request.encode_to_vec()
        };
        let body = bytes::Bytes::from(self.body(raw));
        let (bytes, attempts) = retrying(self.retry, self.on_retry.as_ref(), || self.attempt(body.clone())).await?;
        let response =
            if self.json { serde_json::from_slice::<Resp>(&bytes).ok() } else { Resp::decode(&bytes[..]).ok() };
        Ok((response, attempts))
    }

    fn body(&self, raw: Vec<u8>) -> Vec<u8> {
        if !self.gzip {
            return raw;
        }
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 4), flate2::Compression::fast());
        enc.write_all(&raw).and_then(|()| enc.finish()).expect("gzip into memory cannot fail")
    }

    async fn attempt(&self, body: bytes::Bytes) -> Result<Vec<u8>, Attempt> {
        let content_type = if self.json { "application/json" } else { "application/x-protobuf" };
        let mut req = self.client.post(&self.url).header("content-type", content_type).body(body);
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| Attempt {
            retryable: !super::tls_failure(&e),
            reason: FailReason::Unavailable,
            retry_after: None,
            message: format!("{}: {}", self.url, error_chain(&e)),
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).trim().to_owned();
        let retryable = matches!(status, 408 | 429 | 502 | 503 | 504);
        Err(Attempt {
            retryable,
            reason: match status {
                _ if retryable => FailReason::Unavailable,
                400..=499 => FailReason::Rejected,
                _ => FailReason::ServerError,
            },
            retry_after,
            message: format!("{}: HTTP {status}: {text}", self.url),
        })
    }
}

/// The error and its sources on one line: reqwest's own message hides the cause (refused, TLS, DNS).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
