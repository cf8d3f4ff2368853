//! Middleware scenarios of kamal-proxy's `request_buffer_middleware_test.go`,
//! `response_buffer_middleware_test.go`, `request_id_middleware_test.go`,
//! `request_start_middleware_test.go` and `logging_middleware_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use common::*;
use dhow_proxy::body;
use dhow_proxy::options::TargetOptions;
use http::Response;
use http_body_util::BodyExt;

async fn sized_backend(content_length: bool) -> String {
    backend_with(move |req| async move {
        if req.uri().path() == "/up" {
            return Response::new(body::full("ok"));
        }
        let size: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("size="))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let _ = req.into_body().collect().await;
        let text = "z".repeat(size);
        if content_length {
            Response::new(body::full(text))
        } else {
            // A body of unknown length is sent chunked.
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                let _ = tx.send(bytes::Bytes::from(text)).await;
            });
            Response::new(body::boxed(ChannelBody(rx)))
        }
    })
    .await
}

async fn router_with(options: TargetOptions, content_length: bool) -> TestRouter {
    let t = test_router();
    let target = sized_backend(content_length).await;
    t.router
        .deploy(args("app", &[&target], service_options(), options))
        .await
        .unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_request_buffer_middleware_limits() {
    let mut to = target_options();
    to.buffer_requests = true;
    to.max_memory_buffer_size = 4;
    to.max_request_body_size = 10;
    let t = router_with(to, true).await;
    assert_eq!(
        send(&t.router, "POST", "http://example.com/", "123456789")
            .await
            .status,
        200
    );
    let r = send(&t.router, "POST", "http://example.com/", "12345678901").await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("413"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_request_buffer_middleware_malformed_chunked_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let target = sized_backend(true).await;
    let mut to = target_options();
    to.buffer_requests = true;
    server
        .router
        .deploy(args("app", &[&target], service_options(), to))
        .await
        .unwrap();
    let response = raw_request(
        server.http_addr,
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_response_buffer_middleware_limits() {
    let mut to = target_options();
    to.buffer_responses = true;
    to.max_memory_buffer_size = 4;
    to.max_response_body_size = 10;
    let t = router_with(to, true).await;
    let r = send(&t.router, "GET", "http://example.com/?size=10", "").await;
    assert_eq!((r.status, r.body.len()), (200, 10));
    assert_eq!(
        send(&t.router, "GET", "http://example.com/?size=11", "")
            .await
            .status,
        500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_response_buffer_middleware_streams_chunked_responses() {
    let mut to = target_options();
    to.buffer_responses = true;
    to.max_response_body_size = 10;
    let t = router_with(to, false).await;
    let r = send(&t.router, "GET", "http://example.com/?size=100", "").await;
    assert_eq!((r.status, r.body.len()), (200, 100));
}

async fn echo_header(name: &'static str, value: Option<&str>) -> String {
    let t = test_router();
    let target = backend_with(move |req| {
        let v = req
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        std::future::ready(Response::new(body::full(v)))
    })
    .await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    let (mut req, tls) = request("GET", "http://example.com/", "");
    if let Some(value) = value {
        req.headers_mut().insert(name, value.parse().unwrap());
    }
    let r = send_request(&t.router, req, tls).await;
    assert!(!r.headers.contains_key(name) || name != "x-request-id");
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_request_id_middleware() {
    let generated = echo_header("x-request-id", None).await;
    assert_eq!(generated.len(), 36);
    assert_eq!(generated.matches('-').count(), 4);
    assert_eq!(
        echo_header("x-request-id", Some("abc-123")).await,
        "abc-123"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_request_start_middleware() {
    let added = echo_header("x-request-start", None).await;
    let millis: u128 = added.strip_prefix("t=").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(millis <= now && millis > now - 600_000);
    assert_eq!(
        echo_header("x-request-start", Some("t=1234")).await,
        "t=1234"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_logging_middleware() {
    let t = test_router();
    let target = backend_with(|_req| async {
        Response::builder()
            .status(201)
            .header("content-type", "text/html")
            .header("cache-control", "public")
            .header("x-custom", "hello")
            .body(body::full("response"))
            .unwrap()
    })
    .await;
    let mut to = target_options();
    to.log_request_headers = vec!["X-Custom".into()];
    to.log_response_headers = vec!["Cache-Control".into(), "X-Custom".into()];
    t.router
        .deploy(args("logged", &[&target], service_options(), to))
        .await
        .unwrap();

    dhow_proxy::log::capture_start();
    let (mut req, tls) = request("POST", "http://example.com/somepath?q=ok", "hello");
    let h = req.headers_mut();
    h.insert("user-agent", "Robot/1".parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("content-length", "5".parse().unwrap());
    h.insert("x-forwarded-for", "192.168.1.1".parse().unwrap());
    h.insert("x-custom", "custom".parse().unwrap());
    h.insert("x-request-id", "req-1".parse().unwrap());
    let r = send_request(&t.router, req, tls).await;
    assert_eq!(r.status, 201);
    let lines = dhow_proxy::log::capture_take();
    let text = lines
        .iter()
        .find(|l| l.contains(r#""msg":"Request""#) && l.contains(r#""request_id":"req-1""#))
        .expect("request logged");
    // kamal-proxy's key order.
    let keys = [
        "time",
        "level",
        "msg",
        "host",
        "port",
        "path",
        "request_id",
        "method",
        "req_content_length",
        "req_content_type",
        "remote_addr",
        "client_addr",
        "client_port",
        "user_agent",
        "proto",
        "scheme",
        "query",
        "req_x_custom",
        "resp_cache_control",
        "resp_x_custom",
        "status",
        "service",
        "target",
        "duration",
        "resp_content_length",
        "resp_content_type",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} in {text}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let line = serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["host"], "example.com");
    assert_eq!(line["port"], 80);
    assert_eq!(line["path"], "/somepath");
    assert_eq!(line["query"], "q=ok");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 201);
    assert_eq!(line["scheme"], "http");
    assert_eq!(line["service"], "logged");
    assert_eq!(line["target"], target);
    assert_eq!(line["req_content_length"], 5);
    assert_eq!(line["req_content_type"], "application/json");
    assert_eq!(line["resp_content_length"], 8);
    assert_eq!(line["resp_content_type"], "text/html");
    assert_eq!(line["remote_addr"], "192.168.1.1");
    assert_eq!(line["client_addr"], "192.0.2.1");
    assert_eq!(line["client_port"], "1234");
    assert_eq!(line["user_agent"], "Robot/1");
    assert_eq!(line["proto"], "HTTP/1.1");
    assert_eq!(line["req_x_custom"], "custom");
    assert_eq!(line["resp_cache_control"], "public");
    assert_eq!(line["resp_x_custom"], "hello");
    assert!(line["duration"].as_u64().unwrap() > 0);
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_response_buffer_middleware_delivers_complete_redirect_bodies() {
    let t = test_router();
    let target = backend_with(|req| async move {
        if req.uri().path() == "/up" {
            return Response::new(body::full("ok"));
        }
        Response::builder()
            .status(302)
            .header("location", "/elsewhere")
            .body(body::full("<a href=\"/elsewhere\">Found</a>."))
            .unwrap()
    })
    .await;
    let mut to = target_options();
    to.buffer_responses = true;
    to.max_memory_buffer_size = 4;
    t.router
        .deploy(args("app", &[&target], service_options(), to))
        .await
        .unwrap();
    let r = send(&t.router, "GET", "http://example.com/go", "").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], "/elsewhere");
    assert_eq!(r.body, "<a href=\"/elsewhere\">Found</a>.");
}
