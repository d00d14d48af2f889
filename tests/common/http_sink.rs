//! A minimal OTLP/HTTP receiver on loopback: reads every request on any number of keep-alive connections,
//! counts requests and body bytes, and answers as a script says (200 with an empty body by default). Shared by
//! tests and the export benchmark. Scripted answers let fault tests play a backend that throttles
//! (`503` + `Retry-After`), refuses (`400`), or forwards to a real backend and counts what passed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    /// When each request's body had been read, in arrival order.
    pub arrivals: Mutex<Vec<Instant>>,
}

/// What the sink answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The response body (an OTLP response message, say); empty by default.
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { status: 200, headers: vec![], body: vec![] }
    }

    pub fn status(status: u16) -> Reply {
        Reply { status, headers: vec![], body: vec![] }
    }
}

/// Decides the answer to request number `n` (from 0) with this body and its `content-encoding` header.
pub type Script = Arc<dyn Fn(u64, &[u8], Option<&str>) -> Reply + Send + Sync>;

/// The spans in an OTLP/HTTP protobuf request body (the exporters here send it uncompressed).
pub fn spans(body: &[u8]) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP/HTTP protobuf body");
    req.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect()
}

/// Starts a sink that answers 200 to everything; returns its `/v1/traces` URL and the live counts.
pub fn start() -> (String, Arc<Counts>) {
    start_scripted(Arc::new(|_, _, _| Reply::ok()))
}

/// Starts a sink whose answers `script` decides.
pub fn start_scripted(script: Script) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, script) = (seen.clone(), script.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let mut body = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut len, mut encoding) = (0, None);
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            } else if k.eq_ignore_ascii_case("content-encoding") {
                                encoding = Some(v.trim().to_owned());
                            }
                        }
                    }
                    body.resize(len, 0);
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                    seen.bytes.fetch_add(len as u64, Ordering::Relaxed);
                    seen.arrivals.lock().unwrap().push(Instant::now());
                    let reply = script(n, &body, encoding.as_deref());
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if out.write_all(head.as_bytes()).and_then(|()| out.write_all(&reply.body)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, counts)
}
