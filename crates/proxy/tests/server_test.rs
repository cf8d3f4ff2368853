//! End-to-end scenarios of kamal-proxy's `internal/server/server_test.go`: real listeners on
//! 127.0.0.1, the control socket, the client binary, and HTTPS over HTTP/1.1, HTTP/2 and HTTP/3.

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

/// A server with HTTPS (and HTTP/3 when `http3`) on 127.0.0.1:0.
async fn start_https(dir: &std::path::Path, http3: bool) -> Server {
    Server::start(ServerConfig {
        https_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        state_path: Some(dir.join("state.json")),
        http3,
        ..loopback_config()
    })
    .await
    .unwrap()
}

/// A service for `example.com` with TLS from the fixture certificate.
fn tls_service() -> dhow_proxy::options::ServiceOptions {
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.tls_enabled = true;
    so.tls_certificate_path = fixture("cert.pem");
    so.tls_private_key_path = fixture("key.pem");
    so
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_https_with_static_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_https(dir.path(), false).await;
    let target = backend("secure", 200).await;
    server
        .router
        .deploy(args("app", &[&target], tls_service(), target_options()))
        .await
        .unwrap();

    // HTTP redirects to HTTPS.
    let (status, _) = http_get(server.http_addr, "example.com", "/").await;
    assert_eq!(status, 301);

    let https = server.https_addr.unwrap();
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let (status, version, alt_svc, body) = https_request(https, alpn, None).await;
        assert_eq!((status, body.as_str()), (200, "secure"));
        assert!(alt_svc.is_none(), "no Alt-Svc without HTTP/3");
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
    // No UDP listener: the HTTPS port's number is free over UDP.
    assert!(std::net::UdpSocket::bind(https).is_ok());
    server.shutdown().await;
}

/// A GET and a POST over TLS with `alpn` (HTTP/1.1 or HTTP/2): status, version, `Alt-Svc`, body.
async fn https_request(
    https: SocketAddr,
    alpn: &[u8],
    post: Option<&'static str>,
) -> (u16, http::Version, Option<http::HeaderValue>, String) {
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let tls = tls_connector(alpn)
        .connect(ServerName::try_from("example.com").unwrap(), tcp)
        .await
        .unwrap();
    let io = TokioIo::new(tls);
    let method = if post.is_some() { "POST" } else { "GET" };
    let body = http_body_util::Full::new(Bytes::from(post.unwrap_or_default()));
    let response = if alpn == b"h2" {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri("https://example.com/")
            .body(body)
            .unwrap();
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri("/")
            .header("host", "example.com")
            .body(body)
            .unwrap();
        sender.send_request(req).await.unwrap()
    };
    let (status, version) = (response.status().as_u16(), response.version());
    let alt_svc = response.headers().get("alt-svc").cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        version,
        alt_svc,
        String::from_utf8_lossy(&body).to_string(),
    )
}

/// A QUIC connection to `addr` for `name` with ALPN `h3`, trusting the fixture CA.
async fn quic_connect(
    addr: SocketAddr,
    name: &str,
) -> (
    quinn::Endpoint,
    Result<quinn::Connection, quinn::ConnectionError>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    // A handshake nobody answers fails after this (the default is 30 s).
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(std::time::Duration::from_secs(2).try_into().unwrap()));
    config.transport_config(Arc::new(transport));
    endpoint.set_default_client_config(config);
    let connection = endpoint.connect(addr, name).unwrap().await;
    (endpoint, connection)
}

/// An HTTP/3 client connection to `addr` for `example.com`.
async fn h3_client(
    addr: SocketAddr,
) -> (
    quinn::Endpoint,
    h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
) {
    let (endpoint, connection) = quic_connect(addr, "example.com").await;
    let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(connection.unwrap()))
        .await
        .unwrap();
    tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    (endpoint, sender)
}

/// Sends `method url` over HTTP/3 with `chunks` as the body (with a Content-Length when
/// `length`), returns the status, version, headers and body.
async fn h3_request(
    sender: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    method: &str,
    url: &str,
    chunks: &[&'static str],
    length: bool,
) -> (u16, http::Version, http::HeaderMap, String) {
    let mut req = http::Request::builder().method(method).uri(url);
    if length {
        req = req.header("content-length", chunks.concat().len());
    }
    let mut stream = sender.send_request(req.body(()).unwrap()).await.unwrap();
    for chunk in chunks {
        stream
            .send_data(Bytes::from_static(chunk.as_bytes()))
            .await
            .unwrap();
    }
    stream.finish().await.unwrap();
    let response = stream.recv_response().await.unwrap();
    let mut body = Vec::new();
    while let Some(mut data) = stream.recv_data().await.unwrap() {
        use bytes::Buf;
        while data.has_remaining() {
            let chunk = data.chunk();
            body.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    (
        response.status().as_u16(),
        response.version(),
        response.headers().clone(),
        String::from_utf8_lossy(&body).to_string(),
    )
}

/// A target that answers with what it saw: method, `X-Forwarded-Proto`, how the body was framed
/// (`length=N`, `chunked` or `none`) and the body.
async fn echo_backend() -> String {
    backend_with(|req: http::Request<hyper::body::Incoming>| async move {
        let headers = req.headers().clone();
        let framing = if let Some(n) = headers.get("content-length") {
            format!("length={}", n.to_str().unwrap())
        } else if headers.contains_key("transfer-encoding") {
            "chunked".to_string()
        } else {
            "none".to_string()
        };
        let proto = headers
            .get("x-forwarded-proto")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let method = req.method().to_string();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let text = format!(
            "{method} {proto} {framing} {}",
            String::from_utf8_lossy(&body)
        );
        http::Response::builder()
            .body(dhow_proxy::body::full(text))
            .unwrap()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_https_with_http3() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_https(dir.path(), true).await;
    let target = echo_backend().await;
    let mut so = tls_service();
    so.hosts.push("www.example.com".into());
    so.canonical_host = "example.com".into();
    server
        .router
        .deploy(args("app", &[&target], so, target_options()))
        .await
        .unwrap();
    let https = server.https_addr.unwrap();
    let quic = server.http3_addr.unwrap();
    assert_eq!(
        quic.port(),
        https.port(),
        "HTTP/3 on the HTTPS port's number"
    );
    let advertised = format!("h3=\":{}\"; ma=2592000", https.port());

    // HTTP/1.1 and HTTP/2 responses advertise HTTP/3 on the HTTPS port.
    for alpn in [&b"http/1.1"[..], &b"h2"[..]] {
        let (status, _, alt_svc, body) = https_request(https, alpn, None).await;
        assert_eq!((status, body.as_str()), (200, "GET https none "));
        assert_eq!(alt_svc.unwrap(), advertised.as_str());
    }
    // Plain HTTP does not (it redirects to HTTPS here).
    let (status, _) = http_get(server.http_addr, "example.com", "/").await;
    assert_eq!(status, 301);

    // HTTP/3 itself: a GET and a DELETE reach the target without a body, a POST with its
    // Content-Length, a body without one streams through chunked; no Alt-Svc on HTTP/3
    // responses.
    let (_endpoint, mut sender) = h3_client(quic).await;
    let url = "https://example.com/";
    let (status, version, headers, body) = h3_request(&mut sender, "GET", url, &[], false).await;
    assert_eq!((status, body.as_str()), (200, "GET https none "));
    assert_eq!(version, http::Version::HTTP_3);
    assert!(!headers.contains_key("alt-svc"), "{headers:?}");
    let (status, _, _, body) = h3_request(&mut sender, "DELETE", url, &[], false).await;
    assert_eq!((status, body.as_str()), (200, "DELETE https none "));
    let (status, _, _, body) = h3_request(&mut sender, "POST", url, &["hello ", "h3"], true).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "POST https length=8 hello h3")
    );
    let (status, _, _, body) = h3_request(&mut sender, "POST", url, &["one,", "two"], false).await;
    assert_eq!((status, body.as_str()), (200, "POST https chunked one,two"));
    // The proxy's own answers carry no connection-specific fields over HTTP/3 (RFC 9114 §4.2):
    // the canonical-host redirect's `Connection: close` is dropped.
    let (status, _, headers, _) =
        h3_request(&mut sender, "GET", "https://www.example.com/a", &[], false).await;
    assert_eq!(status, 301);
    assert_eq!(headers["location"], "https://example.com/a");
    assert!(!headers.contains_key("connection"), "{headers:?}");

    // An unknown server name fails the QUIC handshake as it fails the TLS one.
    let (_other, refused) = quic_connect(quic, "unknown.example.org").await;
    assert!(refused.is_err());
    server.shutdown().await;
    // The UDP port is released on shutdown (by the endpoint's driver task, once it sees its last
    // handle gone).
    let mut released = false;
    for _ in 0..200 {
        if std::net::UdpSocket::bind(quic).is_ok() {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(released, "the UDP port is still bound after shutdown");
}

/// An HTTP/3 answer is streamed as the target produces it (server-sent events): the first event
/// reaches the client while the target still holds the response open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_streams_responses_as_they_come() {
    use bytes::Buf as _;
    let dir = tempfile::tempdir().unwrap();
    let server = start_https(dir.path(), true).await;
    let (feeds_tx, mut feeds) =
        tokio::sync::mpsc::unbounded_channel::<tokio::sync::mpsc::Sender<Bytes>>();
    let target = backend_with(move |req: http::Request<hyper::body::Incoming>| {
        let feeds_tx = feeds_tx.clone();
        async move {
            if req.uri().path() != "/events" {
                return http::Response::new(dhow_proxy::body::full("ok"));
            }
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            feeds_tx.send(tx).unwrap();
            http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(dhow_proxy::body::boxed(ChannelBody(rx)))
                .unwrap()
        }
    })
    .await;
    server
        .router
        .deploy(args("app", &[&target], tls_service(), target_options()))
        .await
        .unwrap();
    let (_endpoint, mut sender) = h3_client(server.http3_addr.unwrap()).await;
    let req = http::Request::get("https://example.com/events")
        .body(())
        .unwrap();
    let mut stream = sender.send_request(req).await.unwrap();
    stream.finish().await.unwrap();
    let feed = feeds.recv().await.unwrap();
    feed.send(Bytes::from_static(b"data: one\n\n"))
        .await
        .unwrap();
    let response = stream.recv_response().await.unwrap();
    assert_eq!(response.status(), 200);
    let read = |mut data: Box<dyn bytes::Buf + Send>| {
        let mut text = Vec::new();
        while data.has_remaining() {
            let chunk = data.chunk();
            text.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
        String::from_utf8(text).unwrap()
    };
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.recv_data())
        .await
        .expect("the first event was held back")
        .unwrap()
        .unwrap();
    assert_eq!(read(Box::new(first)), "data: one\n\n");
    feed.send(Bytes::from_static(b"data: two\n\n"))
        .await
        .unwrap();
    drop(feed);
    let mut rest = String::new();
    while let Some(data) = stream.recv_data().await.unwrap() {
        rest.push_str(&read(Box::new(data)));
    }
    assert_eq!(rest, "data: two\n\n");
    server.shutdown().await;
}

/// A target that answers "done", after 500 ms for `/slow`.
async fn slow_backend() -> String {
    backend_with(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        http::Response::new(dhow_proxy::body::full("done"))
    })
    .await
}

/// Shuts `server` down 150 ms into the `/slow` request `in_flight` (status, body): the shutdown
/// must wait for it, and the request must be answered.
async fn shut_down_with_a_request_in_flight(
    server: &Server,
    in_flight: tokio::task::JoinHandle<(u16, String)>,
) {
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "shutdown did not wait for the request in flight"
    );
    assert_eq!(in_flight.await.unwrap(), (200, "done".into()));
}

/// Shutting down answers the HTTP/3 requests in flight (after GOAWAY), then refuses new
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_shutdown_finishes_the_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(start_https(dir.path(), true).await);
    let target = slow_backend().await;
    server
        .router
        .deploy(args("app", &[&target], tls_service(), target_options()))
        .await
        .unwrap();
    let quic = server.http3_addr.unwrap();
    let in_flight = tokio::spawn(async move {
        let (_endpoint, mut sender) = h3_client(quic).await;
        let url = "https://example.com/slow";
        let (status, _, _, body) = h3_request(&mut sender, "GET", url, &[], false).await;
        (status, body)
    });
    shut_down_with_a_request_in_flight(&server, in_flight).await;
    let (_endpoint, refused) = quic_connect(quic, "example.com").await;
    assert!(
        refused.is_err(),
        "a QUIC connection was accepted after shutdown"
    );
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
        http3: false,
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
    let target = slow_backend().await;
    deploy_app(&server.router, &target).await;
    let addr = server.http_addr;
    let in_flight = tokio::spawn(async move { http_get(addr, "example.com", "/slow").await });
    shut_down_with_a_request_in_flight(&server, in_flight).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener still accepts after shutdown"
    );
}
