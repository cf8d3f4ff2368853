//! TLS through the real listeners and the `kamal-proxy` client binary: a custom certificate given
//! with `--tls-certificate-path`/`--tls-private-key-path` is served for every host of the service
//! (verified against its CA, byte for byte the file's leaf), HTTP is redirected to HTTPS with the
//! path and query kept, and `--tls-redirect=false` keeps plain HTTP serving.

#![allow(clippy::unwrap_used, reason = "test setup panics on failure")]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use common::backend_with;
use dhow_proxy::server::{Server, ServerConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn start(dir: &std::path::Path) -> Server {
    Server::start(ServerConfig {
        https_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        socket_path: Some(dir.join("kamal-proxy.sock")),
        state_path: Some(dir.join("kamal-proxy.state")),
        ..common::loopback_config()
    })
    .await
    .unwrap()
}

/// A backend that echoes the scheme it was reached by (`X-Forwarded-Proto`) and the path.
async fn echo_backend() -> String {
    backend_with(|req| async move {
        let proto = req
            .headers()
            .get("x-forwarded-proto")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = format!("{proto} {}", req.uri());
        http::Response::new(dhow_proxy::body::full(text))
    })
    .await
}

fn deploy(dir: &std::path::Path, args: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
        .arg("deploy")
        .args(args)
        .env("KAMAL_PROXY_SOCKET", dir.join("kamal-proxy.sock"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Reply {
    status: u16,
    location: Option<String>,
    connection: Option<String>,
    body: String,
    leaf: Option<CertificateDer<'static>>,
}

async fn send<S>(io: S, host: &str, path: &str) -> Reply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, location, connection) = (
        response.status().as_u16(),
        header("location"),
        header("connection"),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        location,
        connection,
        body: String::from_utf8_lossy(&body).to_string(),
        leaf: None,
    }
}

async fn http_get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    send(
        tokio::net::TcpStream::connect(addr).await.unwrap(),
        host,
        path,
    )
    .await
}

/// HTTPS with SNI `host`, verified against the fixtures' CA.
async fn https_get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_string()).unwrap(), tcp)
        .await
        .unwrap();
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let mut reply = send(tls, host, path).await;
    reply.leaf = leaf;
    reply
}

fn custom_cert_flags(target: &str) -> Vec<String> {
    vec![
        "app".into(),
        format!("--target={target}"),
        "--host=example.com".into(),
        "--host=www.example.com".into(),
        "--tls".into(),
        format!("--tls-certificate-path={}", fixture("cert.pem")),
        format!("--tls-private-key-path={}", fixture("key.pem")),
        "--health-check-interval=50ms".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_custom_certificate_from_cli_flags() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let target = echo_backend().await;
    deploy(dir.path(), &custom_cert_flags(&target));

    let file_leaf = CertificateDer::from_pem_file(fixture("cert.pem")).unwrap();
    let https = server.https_addr.unwrap();
    for host in ["example.com", "www.example.com"] {
        let reply = https_get(https, host, "/hello").await;
        assert_eq!(reply.status, 200, "{host}");
        assert_eq!(reply.body, "https /hello");
        assert_eq!(
            reply.leaf.as_ref(),
            Some(&file_leaf),
            "the file's certificate"
        );
    }
    server.shutdown().await;

    // The paths are in the state file; a restart loads the same certificate.
    let restarted = start(dir.path()).await;
    let reply = https_get(restarted.https_addr.unwrap(), "example.com", "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.leaf.as_ref(), Some(&file_leaf));
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_custom_certificate_flags_must_come_together() {
    for flag in [
        "--tls-certificate-path=/c.pem",
        "--tls-private-key-path=/k.pem",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
            .args([
                "deploy",
                "app",
                "--target=web:80",
                "--host=a.com",
                "--tls",
                flag,
            ])
            .env("KAMAL_PROXY_SOCKET", "/nonexistent/kamal-proxy.sock")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("Error: if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_redirects_http_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let target = echo_backend().await;
    deploy(dir.path(), &custom_cert_flags(&target));

    let reply = http_get(server.http_addr, "www.example.com", "/a/b?c=1&d").await;
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.location.as_deref(),
        Some("https://www.example.com/a/b?c=1&d")
    );
    assert_eq!(reply.connection.as_deref(), Some("close"));
    assert!(
        !reply.body.contains("http /"),
        "never proxied: {}",
        reply.body
    );

    let reply = https_get(server.https_addr.unwrap(), "www.example.com", "/a/b?c=1&d").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "https /a/b?c=1&d")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_redirect_false_keeps_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let target = echo_backend().await;
    let mut flags = custom_cert_flags(&target);
    flags.push("--tls-redirect=false".into());
    deploy(dir.path(), &flags);

    let reply = http_get(server.http_addr, "example.com", "/plain?x=1").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "http /plain?x=1")
    );
    assert_eq!(reply.location, None);
    let reply = https_get(server.https_addr.unwrap(), "example.com", "/secure").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "https /secure"));

    // Turning the redirect back on by redeploying takes effect at once.
    deploy(dir.path(), &custom_cert_flags(&target));
    let reply = http_get(server.http_addr, "example.com", "/plain").await;
    assert_eq!(reply.status, 301);
    server.shutdown().await;
}
