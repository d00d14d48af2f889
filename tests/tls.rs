//! TLS to the collector with a custom CA (`OTEL_EXPORTER_OTLP_CERTIFICATE` / `BridgeBuilder::certificate`).
//!
//! Each test makes a throwaway CA and a server certificate for 127.0.0.1, and runs a TLS-terminating proxy (real
//! rustls, ALPN h2 and http/1.1) in front of rotel; rotel forwards to Phoenix, where the spans are read back.
#![cfg(all(feature = "grpc", feature = "http"))]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bamboo_otel::{Bridge, BuildError, ExporterKind, Protocol};
use common::backends::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

struct Pki {
    dir: PathBuf,
    ca_file: PathBuf,
    server_cert: String,
    server_key: String,
}

fn make_ca(dir: &std::path::Path, name: &str) -> (PathBuf, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("bamboo-otel test CA {name}"));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let file = dir.join(format!("{name}.pem"));
    std::fs::write(&file, cert.pem()).unwrap();
    (file, Issuer::new(params, key))
}

fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("bamboo-otel-tls-{tag}-{}", salt()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_file, issuer) = make_ca(&dir, "ca");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki { dir, ca_file, server_cert: cert.pem(), server_key: key.serialize_pem() }
}

/// Starts a TLS-terminating TCP proxy to `upstream` on a background runtime; returns its address.
fn tls_proxy(pki: &Pki, upstream: &'static str) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server_cert.as_bytes()).map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects our certificate aborts the handshake: nothing to forward.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
    });
    addr
}

fn endpoint(addr: SocketAddr, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => format!("https://{addr}"),
        _ => format!("https://{addr}/v1/traces"),
    }
}

fn upstream(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => "127.0.0.1:14317",
        _ => "127.0.0.1:14318",
    }
}

fn trusted_ca_reaches_phoenix(protocol: Protocol) {
    let pki = pki("ok");
    let addr = tls_proxy(&pki, upstream(protocol));
    let salt = salt();
    let project = format!("e2e-tls-{salt}");
    let events = fresh(&bamboo_otel::demo::agent_session(chrono::Utc::now()), &salt);
    let bridge = Bridge::builder()
        .resource_attribute("openinference.project.name", &project)
        .traces_endpoint(endpoint(addr, protocol), protocol)
        .certificate(&pki.ca_file)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    for e in events {
        bridge.record(e);
    }
    let report = bridge.shutdown(Duration::from_secs(30));
    assert_eq!((report.spans_exported, report.span_export_failures), (14, 0), "{report:?}");
    assert_eq!(wait_for_spans(&project, 14).len(), 14);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn wrong_ca_is_refused(protocol: Protocol) {
    let pki = pki("wrong");
    let addr = tls_proxy(&pki, upstream(protocol));
    let (other_ca, _) = make_ca(&pki.dir, "other");
    let bridge = Bridge::builder()
        .traces_endpoint(endpoint(addr, protocol), protocol)
        .certificate(&other_ca)
        .metrics_exporter(ExporterKind::None)
        .build()
        .unwrap();
    for e in bamboo_otel::demo::agent_session(chrono::Utc::now()) {
        bridge.record(e);
    }
    let report = bridge.shutdown(Duration::from_secs(3));
    assert_eq!(report.spans_exported, 0, "{report:?}");
    assert!(report.span_export_failures >= 1, "{report:?}");
    assert_eq!(report.spans_dropped, 14, "every span the untrusted server would have had is counted: {report:?}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[test]
fn grpc_trusts_the_custom_ca() {
    trusted_ca_reaches_phoenix(Protocol::Grpc);
}

#[test]
fn http_trusts_the_custom_ca() {
    trusted_ca_reaches_phoenix(Protocol::HttpProtobuf);
}

#[test]
fn grpc_refuses_a_server_signed_by_another_ca() {
    wrong_ca_is_refused(Protocol::Grpc);
}

#[test]
fn http_refuses_a_server_signed_by_another_ca() {
    wrong_ca_is_refused(Protocol::HttpProtobuf);
}

#[test]
fn an_unreadable_or_non_pem_certificate_is_a_build_error_naming_it() {
    let missing = std::env::temp_dir().join(format!("no-such-ca-{}.pem", salt()));
    let err = Bridge::builder()
        .traces_endpoint("https://127.0.0.1:1", Protocol::Grpc)
        .certificate(&missing)
        .build()
        .unwrap_err();
    let BuildError::Invalid { name, reason } = &err else { panic!("{err:?}") };
    assert_eq!(name, "certificate");
    assert!(reason.contains(&missing.display().to_string()) && reason.contains("could not read"), "{err}");

    let not_pem = std::env::temp_dir().join(format!("not-pem-{}.pem", salt()));
    std::fs::write(&not_pem, "hello").unwrap();
    let err = Bridge::builder()
        .traces_endpoint("https://127.0.0.1:1/v1/traces", Protocol::HttpProtobuf)
        .certificate(&not_pem)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let _ = std::fs::remove_file(&not_pem);
}
