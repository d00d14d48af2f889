//! A minimal OTLP/gRPC trace receiver on loopback (the generated tonic server): counts requests and spans, and
//! answers as a script says, so fault tests can play a backend that throttles with `RetryInfo`, refuses, or
//! takes a request in part.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub spans: AtomicU64,
    /// When each request arrived, in order.
    pub arrivals: Mutex<Vec<Instant>>,
}

/// Decides the answer to request number `n` (from 0) carrying `spans` spans.
pub type Script = Arc<dyn Fn(u64, usize) -> Result<ExportTraceServiceResponse, tonic::Status> + Send + Sync>;

struct Sink {
    counts: Arc<Counts>,
    script: Script,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize =
            request.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        let n = self.counts.requests.fetch_add(1, Ordering::SeqCst);
        self.counts.arrivals.lock().unwrap().push(Instant::now());
        let answer = (self.script)(n, spans)?;
        self.counts.spans.fetch_add(spans as u64, Ordering::SeqCst);
        Ok(tonic::Response::new(answer))
    }
}

/// Starts a receiver whose answers `script` decides; returns its `http://` URL and the live counts.
pub fn start_scripted(script: Script) -> (String, Arc<Counts>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let counts = Arc::new(Counts::default());
    let sink = Sink { counts: counts.clone(), script };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(sink))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    (format!("http://{addr}"), counts)
}
