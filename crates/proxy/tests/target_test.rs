//! Proxying scenarios of kamal-proxy's `internal/server/target_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use dhow_proxy::body;
use dhow_proxy::commands::PauseArgs;
use dhow_proxy::load_balancer::LoadBalancer;
use dhow_proxy::options::Nanos;
use dhow_proxy::target::{HealthState, Target};
use http::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

fn header_echo(
    name: &'static str,
) -> impl Fn(http::Request<hyper::body::Incoming>) -> std::future::Ready<Response<body::Body>> {
    move |req| {
        let values: Vec<String> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        std::future::ready(Response::new(body::full(values.join("|"))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_serve() {
    let t = test_router();
    let target = backend("ok", 200).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "ok".into())
    );
}

async fn sse_backend(release: Arc<Notify>) -> String {
    backend_with(move |req| {
        let release = Arc::clone(&release);
        async move {
            if req.uri().path() != "/events" {
                return Response::new(body::full("ok"));
            }
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                tx.send(Bytes::from("data: hello\n\n")).await.unwrap();
                release.notified().await;
                let _ = tx.send(Bytes::from("data: bye\n\n")).await;
            });
            let mut r = Response::new(body::boxed(ChannelBody(rx)));
            r.headers_mut().insert(
                "content-type",
                "text/event-stream; charset=utf-8".parse().unwrap(),
            );
            r
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_stream_responses_sse() {
    for buffering in [false, true] {
        let t = test_router();
        let release = Arc::new(Notify::new());
        let target = sse_backend(Arc::clone(&release)).await;
        let mut to = target_options();
        to.buffer_responses = buffering;
        to.buffer_requests = buffering;
        t.router
            .deploy(args("app", &[&target], service_options(), to))
            .await
            .unwrap();
        let (req, tls) = request("GET", "http://example.com/events", "");
        let response = t.router.handle(req, &conn(tls)).await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        // The first event arrives while the backend is still waiting to finish.
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"data: hello\n\n", "buffering={buffering}");
        release.notify_one();
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(&rest[..], b"data: bye\n\n");
    }
}

async fn echo_ws_backend() -> String {
    backend_with(|req| async move { ws_echo(req) }).await
}

async fn open_websocket(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /socket HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed during handshake: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

async fn echo_roundtrip(stream: &mut tokio::net::TcpStream, text: &[u8]) {
    stream.write_all(text).await.unwrap();
    let mut buf = vec![0u8; text.len()];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_serve_websocket() {
    for buffering in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let target = echo_ws_backend().await;
        let mut to = target_options();
        to.buffer_requests = buffering;
        to.buffer_responses = buffering;
        if buffering {
            to.max_memory_buffer_size = 1;
            to.max_request_body_size = 2;
            to.max_response_body_size = 2;
        }
        server
            .router
            .deploy(args("app", &[&target], service_options(), to))
            .await
            .unwrap();
        let mut ws = open_websocket(server.http_addr).await;
        echo_roundtrip(&mut ws, b"hello websocket").await;
        echo_roundtrip(&mut ws, b"and again").await;
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_cancelled_request_is_logged_as_499() {
    let t = test_router();
    let arrived = Arc::new(Notify::new());
    let target = {
        let arrived = Arc::clone(&arrived);
        backend_with(move |req| {
            let arrived = Arc::clone(&arrived);
            async move {
                if req.uri().path() == "/slow" {
                    arrived.notify_one();
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                Response::new(body::full("ok"))
            }
        })
        .await
    };
    t.router
        .deploy(args(
            "cancel-svc",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    let router = Arc::clone(&t.router);
    let task = tokio::spawn(async move {
        let (req, tls) = request("GET", "http://example.com/slow", "");
        router.handle(req, &conn(tls)).await
    });
    arrived.notified().await;
    task.abort();
    let _ = task.await;
    let metrics = dhow_proxy::metrics::global().render();
    assert!(
        metrics.contains(
            "kamal_proxy_http_requests_total{method=\"GET\",service=\"cancel-svc\",status=\"499\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_preserve_host_header() {
    let t = test_router();
    let target = backend_with(header_echo("host")).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "example.com".into())
    );
}

async fn forwarded_headers(forward: bool) -> String {
    let t = test_router();
    let target = backend_with(|req| {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let text = format!(
            "{}|{}|{}|{}",
            h("x-forwarded-for"),
            h("x-forwarded-proto"),
            h("x-forwarded-host"),
            h("x-custom")
        );
        std::future::ready(Response::new(body::full(text)))
    })
    .await;
    let mut to = target_options();
    to.forward_headers = forward;
    t.router
        .deploy(args("app", &[&target], service_options(), to))
        .await
        .unwrap();
    let (mut req, tls) = request("GET", "http://example.com/", "");
    let h = req.headers_mut();
    h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
    h.insert("x-forwarded-proto", "https".parse().unwrap());
    h.insert("x-forwarded-host", "original.example.com".parse().unwrap());
    h.insert("x-custom", "kept".parse().unwrap());
    send_request(&t.router, req, tls).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_headers_are_replaced_when_not_forwarding() {
    assert_eq!(
        forwarded_headers(false).await,
        "192.0.2.1|http|example.com|kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_headers_are_kept_when_forwarding() {
    assert_eq!(
        forwarded_headers(true).await,
        "1.2.3.4, 192.0.2.1|https|original.example.com|kept"
    );
    // Missing values are filled in.
    let t = test_router();
    let target = backend_with(|req| {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let text = format!(
            "{}|{}|{}",
            h("x-forwarded-for"),
            h("x-forwarded-proto"),
            h("x-forwarded-host")
        );
        std::future::ready(Response::new(body::full(text)))
    })
    .await;
    let mut to = target_options();
    to.forward_headers = true;
    t.router
        .deploy(args("app", &[&target], service_options(), to))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await.1,
        "192.0.2.1|http|example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_unparseable_query_params_are_preserved() {
    let t = test_router();
    let target = backend_with(|req| {
        std::future::ready(Response::new(body::full(
            req.uri().query().unwrap_or_default().to_string(),
        )))
    })
    .await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/test?p1=a;b;c&p2=%x&p3=ok").await,
        (200, "p1=a;b;c&p2=%x&p3=ok".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_is_health_check_request() {
    let t = test_router();
    let target = backend("ok", 200).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    t.router
        .pause(PauseArgs {
            service: "app".into(),
            drain_timeout: Nanos(Duration::from_secs(1)),
            pause_timeout: Nanos(Duration::from_millis(10)),
        })
        .await
        .unwrap();
    assert_eq!(
        send(&t.router, "GET", "http://example.com/up", "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(&t.router, "HEAD", "http://example.com/up", "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(&t.router, "GET", "http://example.com/up?x=1", "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(&t.router, "GET", "http://example.com/up/other", "")
            .await
            .status,
        504
    );
    assert_eq!(
        send(&t.router, "POST", "http://example.com/up", "")
            .await
            .status,
        504
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_becomes_healthy() {
    let target = backend("ok", 200).await;
    let t = Target::new(&target);
    assert_eq!(t.health(), HealthState::Adding);
    let lb = LoadBalancer::new(vec![Arc::clone(&t)], vec![], Duration::ZERO, false);
    assert!(lb.choose(true, false).is_none());
    lb.start_health_checks(&target_options().health_check_config);
    lb.wait_until_healthy(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(t.health(), HealthState::Healthy);
    assert_eq!(lb.choose(true, false).unwrap().address, t.address);
    lb.dispose();
}

#[tokio::test(start_paused = true)]
async fn test_target_drain_when_empty() {
    let t = Target::new("127.0.0.1:1");
    let before = tokio::time::Instant::now();
    assert!(t.drain(Duration::from_secs(5)).await);
    assert_eq!(tokio::time::Instant::now(), before);
}

async fn slow_backend(delay: Duration) -> String {
    backend_with(move |req| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(delay).await;
        }
        Response::new(body::full("done"))
    })
    .await
}

fn in_flight(router: &Arc<dhow_proxy::router::Router>) -> tokio::task::JoinHandle<Reply> {
    let router = Arc::clone(router);
    tokio::spawn(async move { send(&router, "GET", "http://example.com/slow", "").await })
}

/// Waits (up to 5 s) until `count` requests are in flight on `target`.
async fn wait_for_in_flight(target: &Target, count: usize) {
    for _ in 0..1000 {
        if target.inflight_count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{count} requests never arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_drain_requests_that_complete_within_timeout() {
    let t = test_router();
    let target = slow_backend(Duration::from_millis(300)).await;
    let tgt = deploy_app(&t.router, &target).await;
    let request = in_flight(&t.router);
    wait_for_in_flight(&tgt, 1).await;
    assert!(
        tgt.drain(Duration::from_secs(10)).await,
        "drain should not time out"
    );
    let reply = request.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_drain_requests_that_do_not_complete_within_timeout() {
    let t = test_router();
    let target = slow_backend(Duration::from_secs(10)).await;
    let tgt = deploy_app(&t.router, &target).await;
    let requests = [in_flight(&t.router), in_flight(&t.router)];
    wait_for_in_flight(&tgt, 2).await;
    assert!(!tgt.drain(Duration::from_millis(100)).await);
    for request in requests {
        assert_eq!(request.await.unwrap().status, 504);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_drain_hijacked_connections_immediately() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let target = echo_ws_backend().await;
    let tgt = deploy_app(&server.router, &target).await;
    let mut ws = open_websocket(server.http_addr).await;
    echo_roundtrip(&mut ws, b"ping").await;
    assert!(
        tgt.drain(Duration::from_secs(5)).await,
        "hijacked connections are not waited for"
    );
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), ws.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "websocket should be closed");
    server.shutdown().await;
}

async fn body_echo() -> String {
    backend_with(|req| async move {
        if req.uri().path() == "/up" {
            return Response::new(body::full("ok"));
        }
        let size: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("size="))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let received = req.into_body().collect().await.unwrap().to_bytes();
        let text = if size > 0 {
            "x".repeat(size)
        } else {
            String::from_utf8_lossy(&received).to_string()
        };
        Response::new(body::full(text))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_enforcing_size_limits() {
    // (buffer requests, buffer responses, memory, max request, max response, request bytes,
    //  response bytes, expected status)
    type Case = (bool, bool, i64, i64, i64, usize, usize, u16);
    let cases: [Case; 9] = [
        (false, false, 1024, 0, 0, 5000, 5000, 200),
        (true, true, 1024, 10, 10, 5, 5, 200),
        (true, true, 1024, 10, 10, 20, 5, 413),
        (true, true, 1024, 10, 10, 5, 20, 500),
        (true, true, 4, 100, 100, 50, 50, 200),
        (true, false, 1024, 10, 0, 5, 5000, 200),
        (true, false, 1024, 10, 0, 20, 5, 413),
        (false, true, 1024, 0, 10, 5000, 5, 200),
        (false, true, 1024, 0, 10, 5, 20, 500),
    ];
    let target = body_echo().await;
    for (i, (breq, bresp, memory, max_req, max_resp, req_size, resp_size, expected)) in
        cases.into_iter().enumerate()
    {
        let t = test_router();
        let mut to = target_options();
        to.buffer_requests = breq;
        to.buffer_responses = bresp;
        to.max_memory_buffer_size = memory;
        to.max_request_body_size = max_req;
        to.max_response_body_size = max_resp;
        t.router
            .deploy(args("app", &[&target], service_options(), to))
            .await
            .unwrap();
        let url = format!("http://example.com/echo?size={resp_size}");
        let r = send(&t.router, "POST", &url, &"y".repeat(req_size)).await;
        assert_eq!(r.status, expected, "case {i}");
        if expected == 200 {
            assert_eq!(r.body.len(), resp_size, "case {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_target_malformed_chunked_request_without_buffering() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let target = body_echo().await;
    server
        .router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    let response = raw_request(
        server.http_addr,
        b"POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    server.shutdown().await;
}

/// A response whose headers and first bytes were sent but whose body is still coming when the
/// drain timeout runs out is cut off: the client's body ends in an error and the target has no
/// request left in flight (the body was waiting on the target when the drain cancelled it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_still_streaming_is_cut_off_at_the_drain_timeout() {
    let t = test_router();
    let release = Arc::new(Notify::new());
    let target = sse_backend(Arc::clone(&release)).await;
    let tgt = deploy_app(&t.router, &target).await;
    let (req, tls) = request("GET", "http://example.com/events", "");
    let response = t.router.handle(req, &conn(tls)).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: hello\n\n");
    // The body now waits on the target; nothing polls it until the drain cancels it.
    let reader = tokio::spawn(async move { body.frame().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(tgt.inflight_count(), 1);
    assert!(!tgt.drain(Duration::from_millis(100)).await);
    let next = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the waiting body was woken by the cancellation")
        .unwrap();
    let error = next
        .expect("a frame or an error")
        .expect_err("the body was cut off");
    assert!(error.to_string().contains("draining"), "{error}");
    assert_eq!(tgt.inflight_count(), 0);
    release.notify_one();
}

/// A drain that had to cancel its requests leaves the target able to serve: requests claimed
/// after it are not cancelled by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_serves_again_after_a_drain_cancelled_its_requests() {
    let t = test_router();
    let target = slow_backend(Duration::from_secs(10)).await;
    let tgt = deploy_app(&t.router, &target).await;
    let request = in_flight(&t.router);
    wait_for_in_flight(&tgt, 1).await;
    assert!(!tgt.drain(Duration::from_millis(100)).await);
    assert_eq!(request.await.unwrap().status, 504);
    assert_eq!(tgt.inflight_count(), 0);
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "done".into())
    );
    assert_eq!(tgt.inflight_count(), 0);
}
