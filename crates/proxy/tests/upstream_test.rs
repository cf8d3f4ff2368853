//! The upstream connection pool seen through the router and the server: keep-alive reuse, targets
//! that close idle connections or drop requests, the idle cap, and upgrades on pooled connections.
//! Each test runs on one thread (a current-thread runtime), whose pool it can inspect.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use dhow_proxy::body::{self, Body};
use dhow_proxy::upstream::{MAX_IDLE_PER_AUTHORITY, idle_connections};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a backend saw of the requests other than its health checks.
#[derive(Default)]
struct Seen {
    /// Connections that carried at least one such request.
    connections: AtomicUsize,
    /// Those of them that have closed.
    closed: AtomicUsize,
    requests: AtomicUsize,
}

/// A keep-alive HTTP/1.1 backend (with upgrades) answering with `handler`; counts what it sees.
async fn counting_backend<F, Fut>(handler: F) -> (String, Arc<Seen>)
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let handler = Arc::new(handler);
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            let seen = Arc::clone(&counts);
            tokio::spawn(async move {
                let used = Arc::new(AtomicBool::new(false));
                let service = {
                    let used = Arc::clone(&used);
                    let seen = Arc::clone(&seen);
                    service_fn(move |req: Request<Incoming>| {
                        if req.uri().path() != "/up" {
                            seen.requests.fetch_add(1, Ordering::SeqCst);
                            if !used.swap(true, Ordering::SeqCst) {
                                seen.connections.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        let handler = Arc::clone(&handler);
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    })
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
                if used.load(Ordering::SeqCst) {
                    seen.closed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, seen)
}

async fn ok_backend() -> (String, Arc<Seen>) {
    counting_backend(|_req| async { Response::new(body::full("ok")) }).await
}

async fn deploy(t: &TestRouter, target: &str) {
    t.router
        .deploy(args("app", &[target], service_options(), target_options()))
        .await
        .unwrap();
}

/// Deploys with a single health check: the requests the backend reads after it are the test's.
async fn deploy_unchecked(t: &TestRouter, target: &str) {
    let mut to = target_options();
    to.health_check_config.interval = dhow_proxy::options::Nanos(Duration::from_secs(3600));
    t.router
        .deploy(args("app", &[target], service_options(), to))
        .await
        .unwrap();
}

/// Waits (up to 5 s) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn test_upstream_sequential_requests_reuse_one_connection() {
    let t = test_router();
    let (target, seen) = ok_backend().await;
    deploy(&t, &target).await;
    for _ in 0..5 {
        assert_eq!(
            get(&t.router, "http://example.com/").await,
            (200, "ok".into())
        );
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(idle_connections(&target), 1);
}

/// A backend in plain TCP that answers each request on a connection with `200 ok` and closes a
/// connection idle for 50 ms; with `drop_second`, it closes a connection on its second request
/// instead of answering. Returns its address and the requests it read (health checks included).
async fn closing_backend(drop_second: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut served = 0;
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let read = tokio::time::timeout(
                            Duration::from_millis(50),
                            stream.read(&mut chunk),
                        );
                        match read.await {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    counted.fetch_add(1, Ordering::SeqCst);
                    served += 1;
                    if drop_second && served == 2 {
                        return;
                    }
                    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn test_upstream_target_closing_idle_connections_costs_no_request() {
    let t = test_router();
    let (target, _) = closing_backend(false).await;
    deploy_unchecked(&t, &target).await;
    for _ in 0..3 {
        assert_eq!(
            get(&t.router, "http://example.com/").await,
            (200, "ok".into())
        );
        // Long enough for the backend to close the connection it just used.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn test_upstream_a_request_already_written_is_not_retried() {
    let t = test_router();
    let (target, requests) = closing_backend(true).await;
    deploy_unchecked(&t, &target).await;
    let before = requests.load(Ordering::SeqCst);
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "ok".into())
    );
    // The second request on the pooled connection is read, then the connection closes.
    let (status, _) = get(&t.router, "http://example.com/").await;
    assert_eq!(status, 502);
    assert_eq!(requests.load(Ordering::SeqCst) - before, 2);
    // The next one goes on a new connection.
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "ok".into())
    );
}

#[tokio::test]
async fn test_upstream_concurrent_requests_beyond_the_idle_cap() {
    let concurrent = MAX_IDLE_PER_AUTHORITY + 10;
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrent));
    let (target, seen) = counting_backend(move |req| {
        let barrier = Arc::clone(&barrier);
        async move {
            // Every request is held until all are in: each needs its own connection.
            if req.uri().path() == "/wait" {
                barrier.wait().await;
            }
            Response::new(body::full("ok"))
        }
    })
    .await;
    let t = test_router();
    deploy(&t, &target).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..concurrent {
        let router = Arc::clone(&t.router);
        requests.spawn(async move { send(&router, "GET", "http://example.com/wait", "").await });
    }
    while let Some(reply) = requests.join_next().await {
        let reply = reply.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), concurrent);
    eventually("the connections beyond the cap closed", || {
        seen.closed.load(Ordering::SeqCst) == concurrent - MAX_IDLE_PER_AUTHORITY
    })
    .await;
    assert_eq!(idle_connections(&target), MAX_IDLE_PER_AUTHORITY);
    // The idle ones serve what comes next.
    for _ in 0..3 {
        assert_eq!(
            get(&t.router, "http://example.com/").await,
            (200, "ok".into())
        );
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), concurrent);
    assert_eq!(
        seen.closed.load(Ordering::SeqCst),
        concurrent - MAX_IDLE_PER_AUTHORITY
    );
}

async fn echo_ws_backend() -> (String, Arc<Seen>) {
    counting_backend(|req| async move { ws_echo(req) }).await
}

#[tokio::test]
async fn test_upstream_upgrade_takes_a_pooled_connection_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (target, seen) = echo_ws_backend().await;
    deploy_on(&server, &target).await;
    let plain = b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    let reply = raw_request(server.http_addr, plain).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    eventually("the connection is idle", || idle_connections(&target) == 1).await;

    // The upgrade goes on the idle connection, which then belongs to the WebSocket.
    let mut ws = tokio::net::TcpStream::connect(server.http_addr)
        .await
        .unwrap();
    ws.write_all(
        b"GET /socket HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(ws.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    for text in [&b"hello websocket"[..], b"and again"] {
        ws.write_all(text).await.unwrap();
        let mut echoed = vec![0u8; text.len()];
        ws.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, text);
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert_eq!(idle_connections(&target), 0);

    let reply = raw_request(server.http_addr, plain).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    drop(ws);
    server.shutdown().await;
}

async fn deploy_on(server: &dhow_proxy::server::Server, target: &str) {
    server
        .router
        .deploy(args("app", &[target], service_options(), target_options()))
        .await
        .unwrap();
}
