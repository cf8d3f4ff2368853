//! Test harness: in-process backends on 127.0.0.1:0, routers with a temp state file, and helpers
//! that send requests through the router the way the server does.

#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    reason = "test harness: a failed setup step should panic"
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dhow_proxy::body::{self, Body};
use dhow_proxy::commands::DeployArgs;
use dhow_proxy::options::{DeploymentOptions, Nanos, ServiceOptions, TargetOptions};
use dhow_proxy::router::Router;
use dhow_proxy::target::{ConnInfo, Target};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Starts a backend answering with `handler`; returns its `127.0.0.1:port`.
pub async fn backend_with<F, Fut>(handler: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr.to_string()
}

/// A WebSocket echo endpoint for [`backend_with`]: an upgrade request gets `101` and its bytes
/// echoed back over the upgraded connection; anything else gets `ok`.
pub fn ws_echo(mut req: Request<Incoming>) -> Response<Body> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !req.headers().contains_key("upgrade") {
        return Response::new(body::full("ok"));
    }
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on.await {
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .body(body::empty())
        .unwrap()
}

/// A backend that answers every path (including the health check) with `status` and `text`.
pub async fn backend(text: &'static str, status: u16) -> String {
    backend_with(move |_req| async move {
        let mut r = Response::new(body::full(text));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    })
    .await
}

pub struct TestRouter {
    pub router: Arc<Router>,
    pub dir: tempfile::TempDir,
}

impl TestRouter {
    pub fn state_path(&self) -> std::path::PathBuf {
        self.dir.path().join("state.json")
    }
}

pub fn test_router() -> TestRouter {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::new(Some(dir.path().join("state.json")));
    TestRouter { router, dir }
}

pub fn service_options() -> ServiceOptions {
    ServiceOptions::default()
}

pub fn target_options() -> TargetOptions {
    let mut options = TargetOptions::default();
    options.health_check_config.interval = Nanos(Duration::from_millis(50));
    options
}

pub fn deployment_options() -> DeploymentOptions {
    DeploymentOptions {
        deploy_timeout: Nanos(Duration::from_secs(5)),
        drain_timeout: Nanos(Duration::from_secs(5)),
        force: false,
    }
}

pub fn args(name: &str, targets: &[&str], so: ServiceOptions, to: TargetOptions) -> DeployArgs {
    DeployArgs {
        service: name.to_string(),
        target_urls: targets.iter().map(ToString::to_string).collect(),
        reader_urls: Vec::new(),
        deployment_options: deployment_options(),
        service_options: so,
        target_options: to,
    }
}

/// Deploys the service `app` to the one `target` with the default options and returns that
/// target as the router holds it (for its in-flight count and drains).
pub async fn deploy_app(router: &Router, target: &str) -> Arc<Target> {
    router
        .deploy(args("app", &[target], service_options(), target_options()))
        .await
        .unwrap();
    let active = router.slots("app").unwrap().active.clone().unwrap();
    Arc::clone(active.targets().next().unwrap())
}

pub fn conn(tls: bool) -> ConnInfo {
    ConnInfo::new(
        "192.0.2.1".parse().unwrap(),
        1234,
        tls,
        if tls { 443 } else { 80 },
    )
}

/// Builds a request for a full URL (`http://host/path?q`), setting `Host` like a client would.
pub fn request(method: &str, url: &str, body: &str) -> (Request<Full<Bytes>>, bool) {
    let uri: http::Uri = url.parse().unwrap();
    let tls = uri.scheme_str() == Some("https");
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let host = uri.authority().unwrap().as_str().to_string();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    (req, tls)
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn send_request(router: &Router, req: Request<Full<Bytes>>, tls: bool) -> Reply {
    let response = router.handle(req, &conn(tls)).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).to_string(),
    }
}

pub async fn send(router: &Router, method: &str, url: &str, body: &str) -> Reply {
    let (req, tls) = request(method, url, body);
    send_request(router, req, tls).await
}

pub async fn get(router: &Router, url: &str) -> (u16, String) {
    let r = send(router, "GET", url, "").await;
    (r.status, r.body)
}

/// A server on 127.0.0.1:0, HTTP only, serving on the calling runtime, without socket, state,
/// metrics or ACME roots: tests change what they need with `..loopback_config()`.
pub fn loopback_config() -> dhow_proxy::server::ServerConfig {
    dhow_proxy::server::ServerConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        https_addr: None,
        metrics_addr: None,
        socket_path: None,
        state_path: None,
        acme_ca_file: None,
        serve_threads: 0,
        http3: false,
    }
}

/// Starts a full server (HTTP only) on 127.0.0.1:0.
pub async fn start_server(dir: &std::path::Path) -> dhow_proxy::server::Server {
    dhow_proxy::server::Server::start(dhow_proxy::server::ServerConfig {
        socket_path: Some(dir.join("kamal-proxy.sock")),
        state_path: Some(dir.join("state.json")),
        ..loopback_config()
    })
    .await
    .unwrap()
}

/// Runs the client binary (`kamal-proxy ARGS...`) against the control socket `socket`, off the
/// async runtime, and asserts that it succeeded; returns its output.
pub async fn client_ok(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    let socket = socket.to_path_buf();
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
            .args(&args)
            .env("KAMAL_PROXY_SOCKET", &socket)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A response body fed through a channel, for streaming (SSE) backends.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Sends a raw HTTP/1.1 request over TCP and returns everything read until the server closes
/// (or until `limit` bytes).
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 101") {
            let text = String::from_utf8_lossy(&out).to_string();
            if let Some(len) = text.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            }) {
                let head = text.find("\r\n\r\n").unwrap() + 4;
                if out.len() >= head + len {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}
