//! End-to-end scenarios of kamal-proxy's `internal/server/server_test.go`: real listeners on
//! 127.0.0.1, the control socket, the client binary, and HTTPS over HTTP/1.1 and HTTP/2.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use dhow_proxy::commands::{Call, call};
use dhow_proxy::server::{Server, ServerConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_deploy_over_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let socket = dir.path().join("kamal-proxy.sock");
    let target = backend("first", 200).await;

    call(
        &socket,
        &Call::Deploy(args("app", &[&target], service_options(), target_options())),
    )
    .await
    .unwrap();
    assert_eq!(
        http_get(server.http_addr, "example.com", "/").await,
        (200, "first".into())
    );

    // The client binary against the same socket.
    let second = backend("second", 200).await;
    let out = client_ok(
        &socket,
        &[
            "deploy",
            "app",
            &format!("--target={second}"),
            "--health-check-interval=50ms",
            "--drain-timeout=1s",
        ],
    )
    .await;
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(
        http_get(server.http_addr, "example.com", "/").await,
        (200, "second".into())
    );

    let bin = env!("CARGO_BIN_EXE_kamal-proxy");
    let list = Command::new(bin)
        .arg("list")
        .env("KAMAL_PROXY_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("Service") && text.contains("app") && text.contains(&second),
        "{text}"
    );
    assert!(text.contains("running"));

    let out = Command::new(bin)
        .args(["remove", "nope"])
        .env("KAMAL_PROXY_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: service not found\n"
    );

    let out = Command::new(bin)
        .args(["stop", "app", "--message=Back soon"])
        .env("KAMAL_PROXY_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (status, body) = http_get(server.http_addr, "example.com", "/").await;
    assert_eq!(status, 503);
    assert!(body.contains("Back soon"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_restart_restores_state() {
    let dir = tempfile::tempdir().unwrap();
    let target = backend("kept", 200).await;
    {
        let server = start_server(dir.path()).await;
        server
            .router
            .deploy(args("app", &[&target], service_options(), target_options()))
            .await
            .unwrap();
        server.shutdown().await;
    }
    let server = start_server(dir.path()).await;
    assert_eq!(
        http_get(server.http_addr, "example.com", "/").await,
        (200, "kept".into())
    );
    server.shutdown().await;
}

fn tls_connector(alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(fixture("ca.pem")).unwrap();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_https_with_static_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerConfig {
        https_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        state_path: Some(dir.path().join("state.json")),
        ..loopback_config()
    })
    .await
    .unwrap();
    let target = backend("secure", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.tls_enabled = true;
    so.tls_certificate_path = fixture("cert.pem");
    so.tls_private_key_path = fixture("key.pem");
    server
        .router
        .deploy(args("app", &[&target], so, target_options()))
        .await
        .unwrap();

    // HTTP redirects to HTTPS.
    let (status, _) = http_get(server.http_addr, "example.com", "/").await;
    assert_eq!(status, 301);

    let https = server.https_addr.unwrap();
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
        let tls = tls_connector(alpn)
            .connect(ServerName::try_from("example.com").unwrap(), tcp)
            .await
            .unwrap();
        let io = TokioIo::new(tls);
        let (status, version, alt_svc, body) = if alpn == b"h2" {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let req = http::Request::get("https://example.com/")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let r = sender.send_request(req).await.unwrap();
            (
                r.status(),
                r.version(),
                r.headers().contains_key("alt-svc"),
                r.into_body().collect().await.unwrap().to_bytes(),
            )
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let req = http::Request::get("/")
                .header("host", "example.com")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let r = sender.send_request(req).await.unwrap();
            (
                r.status(),
                r.version(),
                r.headers().contains_key("alt-svc"),
                r.into_body().collect().await.unwrap().to_bytes(),
            )
        };
        assert_eq!(status, 200);
        assert_eq!(&body[..], b"secure");
        assert!(!alt_svc, "no Alt-Svc without HTTP/3");
        let expected = if alpn == b"h2" {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(version, expected);
    }

    // An unknown server name fails the handshake.
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    assert!(
        tls_connector(b"http/1.1")
            .connect(ServerName::try_from("unknown.example.org").unwrap(), tcp)
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_metrics_endpoint() {
    let server = Server::start(ServerConfig {
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..loopback_config()
    })
    .await
    .unwrap();
    let target = backend("m", 200).await;
    server
        .router
        .deploy(args(
            "metered",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(http_get(server.http_addr, "example.com", "/").await.0, 200);
    let (status, text) = http_get(server.metrics_addr.unwrap(), "localhost", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            "kamal_proxy_http_requests_total{method=\"GET\",service=\"metered\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("kamal_proxy_http_request_duration_seconds_bucket{method=\"GET\",service=\"metered\",status=\"200\",le=\"+Inf\"} 1"));
    assert!(text.contains("kamal_proxy_http_in_flight_requests{service=\"metered\"} 0"));
    server.shutdown().await;
}

/// How many of this process's threads serve connections (named `serve-N`), once it is `want`
/// (a new thread names itself when it starts) or after 2 s.
async fn serving_threads(want: usize) -> usize {
    let count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("serve-"))
            .count()
    };
    for _ in 0..200 {
        if count() == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    count()
}

// dhow-proxy's own: `kamal-proxy run` serves connections on one thread per CPU, each with its
// own listener on the shared port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_serving_threads_share_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        https_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        state_path: Some(dir.path().join("state.json")),
        serve_threads: 3,
        ..loopback_config()
    };
    let before = serving_threads(0).await;
    let server = Server::start(config.clone()).await.unwrap();
    assert_eq!(serving_threads(before + 3).await, before + 3);
    let target = backend("shared", 200).await;
    server
        .router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();

    // Many connections at once, spread by the kernel over the three listeners: all answered.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..40 {
        requests.spawn(http_get(server.http_addr, "example.com", "/"));
    }
    let replies = requests.join_all().await;
    assert_eq!(replies.len(), 40);
    assert!(
        replies.iter().all(|r| *r == (200, "shared".into())),
        "{replies:?}"
    );

    // The port is taken: a second server on it is refused, not let in beside the first.
    let taken = Server::start(ServerConfig {
        http_addr: server.http_addr,
        https_addr: None,
        state_path: None,
        ..config.clone()
    })
    .await;
    assert_eq!(
        taken.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::AddrInUse)
    );

    let addr = server.http_addr;
    server.shutdown().await;
    assert_eq!(serving_threads(before).await, before);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    drop(std::net::TcpListener::bind(addr).unwrap());
}

/// kamal-proxy serves cleartext HTTP/1.1 only: an HTTP/2 connection with prior knowledge (h2c)
/// is not spoken to in HTTP/2, while the same request over HTTP/1.1 is proxied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_http2_prior_knowledge_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let target = backend("app", 200).await;
    deploy_app(&server.router, &target).await;
    assert_eq!(
        http_get(server.http_addr, "example.com", "/").await,
        (200, "app".into())
    );

    let stream = tokio::net::TcpStream::connect(server.http_addr)
        .await
        .unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), async move {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await?;
        tokio::spawn(conn);
        let req = http::Request::get("http://example.com/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req).await
    })
    .await
    .expect("the h2c attempt ended within 5 s");
    assert!(
        outcome.is_err(),
        "an h2c request was answered: {:?}",
        outcome.map(|r| r.status())
    );

    // The raw preface is refused as HTTP/1.1 would refuse it (closed, or an HTTP/1.1 error),
    // never answered with an HTTP/2 SETTINGS frame.
    let reply = raw_request(server.http_addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 "),
        "{reply:?}"
    );
    server.shutdown().await;
}

/// Shutting down lets a request in flight finish with its answer, and then closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(start_server(dir.path()).await);
    let target = backend_with(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        http::Response::new(dhow_proxy::body::full("done"))
    })
    .await;
    deploy_app(&server.router, &target).await;
    let addr = server.http_addr;
    let in_flight = tokio::spawn(async move { http_get(addr, "example.com", "/slow").await });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "shutdown did not wait for the request in flight"
    );
    assert_eq!(in_flight.await.unwrap(), (200, "done".into()));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after shutdown"
    );
}
