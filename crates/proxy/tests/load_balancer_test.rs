//! Load-balancing scenarios of kamal-proxy's `internal/server/load_balancer_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dhow_proxy::body;
use dhow_proxy::error::ProxyError;
use dhow_proxy::load_balancer::{LoadBalancer, parse_targets};
use dhow_proxy::options::Nanos;
use dhow_proxy::target::Target;
use http::Response;

#[test]
fn test_load_balancer_invalid_target_names() {
    for bad in ["", "_", "/"] {
        let err = parse_targets(&["web:80".to_string(), bad.to_string()]).unwrap_err();
        assert!(matches!(err, ProxyError::InvalidHostPattern(ref t) if t == bad));
        assert_eq!(err.to_string(), format!("{bad} :invalid host pattern"));
    }
    let names: Vec<String> = ["bb:1", "aa:2", "cc:3"]
        .iter()
        .map(ToString::to_string)
        .collect();
    let targets = parse_targets(&names).unwrap();
    let lb = LoadBalancer::new(targets, vec![], Duration::ZERO, false);
    assert_eq!(lb.writer_names(), names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_wait_until_healthy() {
    let healthy = backend("ok", 200).await;
    let unhealthy = backend("no", 500).await;
    let config = target_options().health_check_config;

    let lb = LoadBalancer::new(
        vec![Target::new(&healthy), Target::new(&unhealthy)],
        vec![],
        Duration::ZERO,
        false,
    );
    lb.start_health_checks(&config);
    let err = lb
        .wait_until_healthy(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::TargetFailedToBecomeHealthy(_)));
    lb.dispose();

    let other = backend("ok", 200).await;
    let lb = LoadBalancer::new(
        vec![Target::new(&healthy)],
        vec![Target::new(&other)],
        Duration::ZERO,
        false,
    );
    lb.start_health_checks(&config);
    lb.wait_until_healthy(Duration::from_secs(10))
        .await
        .unwrap();
    lb.dispose();
}

#[test]
fn test_load_balancer_round_robin() {
    let a = Target::new("aa:1");
    let b = Target::new("bb:1");
    let lb = LoadBalancer::new(
        vec![Arc::clone(&a), Arc::clone(&b)],
        vec![],
        Duration::ZERO,
        false,
    );
    lb.mark_all_healthy();
    let picks: Vec<String> = (0..4)
        .map(|_| lb.choose(false, false).unwrap().address.clone())
        .collect();
    assert_eq!(picks, vec!["bb:1", "aa:1", "bb:1", "aa:1"]);
}

async fn named(name: &'static str) -> String {
    backend_with(move |req| async move {
        let mut r = Response::new(body::full(name));
        if req.uri().path() == "/opt-out" {
            r.headers_mut()
                .insert("x-writer-affinity", "false".parse().unwrap());
        }
        r
    })
    .await
}

async fn reader_writer_router(
    affinity: Duration,
    websockets: bool,
    with_reader: bool,
) -> TestRouter {
    let t = test_router();
    let writer = named("writer").await;
    let reader = named("reader").await;
    let mut so = service_options();
    so.writer_affinity_timeout = Nanos(affinity);
    so.read_targets_accept_websockets = websockets;
    let mut a = args("app", &[&writer], so, target_options());
    if with_reader {
        a.reader_urls = vec![reader];
    }
    t.router.deploy(a).await.unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_readers_and_writers() {
    let t = reader_writer_router(Duration::ZERO, false, true).await;
    for method in ["GET", "HEAD"] {
        let r = send(&t.router, method, "http://example.com/", "").await;
        assert_eq!(r.status, 200);
        if method == "GET" {
            assert_eq!(r.body, "reader");
        }
    }
    for method in ["DELETE", "PATCH", "POST", "PUT"] {
        assert_eq!(
            send(&t.router, method, "http://example.com/", "")
                .await
                .body,
            "writer"
        );
    }
    let t = reader_writer_router(Duration::ZERO, false, false).await;
    assert_eq!(
        send(&t.router, "GET", "http://example.com/", "").await.body,
        "writer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_websockets_go_to_writers_unless_enabled() {
    for websockets in [false, true] {
        let t = reader_writer_router(Duration::ZERO, websockets, true).await;
        let (mut req, tls) = request("GET", "http://example.com/", "");
        req.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        req.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        // The backend declines the upgrade, so its plain answer shows which target was used.
        let r = send_request(&t.router, req, tls).await;
        let expected = if websockets { "reader" } else { "writer" };
        assert_eq!((r.status, r.body.as_str()), (200, expected));
    }
}

fn writer_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("kamal-writer="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_writer_affinity() {
    let t = reader_writer_router(Duration::from_secs(60), false, true).await;
    let r = send(&t.router, "POST", "http://example.com/", "").await;
    assert_eq!(r.body, "writer");
    let cookie = writer_cookie(&r).expect("writer cookie set");
    assert!(
        cookie.contains("Path=/") && cookie.contains("HttpOnly") && cookie.contains("Expires=")
    );
    let expiry: u128 = cookie["kamal-writer=".len()..]
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(expiry > now);

    let value = cookie.split(';').next().unwrap().to_string();
    let (mut req, tls) = request("GET", "http://example.com/", "");
    req.headers_mut().insert("cookie", value.parse().unwrap());
    assert_eq!(send_request(&t.router, req, tls).await.body, "writer");
    assert_eq!(
        send(&t.router, "GET", "http://example.com/", "").await.body,
        "reader"
    );

    // A short timeout still sets a cookie with a future expiry.
    let t = reader_writer_router(Duration::from_millis(200), false, true).await;
    assert!(writer_cookie(&send(&t.router, "POST", "http://example.com/", "").await).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_no_writer_cookie_without_readers_timeout_or_when_opted_out() {
    let t = reader_writer_router(Duration::from_secs(1), false, false).await;
    assert!(writer_cookie(&send(&t.router, "POST", "http://example.com/", "").await).is_none());
    let t = reader_writer_router(Duration::ZERO, false, true).await;
    assert!(writer_cookie(&send(&t.router, "POST", "http://example.com/", "").await).is_none());
    let t = reader_writer_router(Duration::from_secs(1), false, true).await;
    let r = send(&t.router, "POST", "http://example.com/opt-out", "").await;
    assert!(writer_cookie(&r).is_none());
    assert!(!r.headers.contains_key("x-writer-affinity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_load_balancer_sets_target_header() {
    for forward in [false, true] {
        let t = test_router();
        let target = backend_with(|req| {
            let v = req
                .headers()
                .get("x-kamal-target")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            std::future::ready(Response::new(body::full(v)))
        })
        .await;
        let mut to = target_options();
        to.forward_headers = forward;
        t.router
            .deploy(args("app", &[&target], service_options(), to))
            .await
            .unwrap();
        let (mut req, tls) = request("GET", "http://example.com/", "");
        req.headers_mut()
            .insert("x-kamal-target", "upstream:1".parse().unwrap());
        let body = send_request(&t.router, req, tls).await.body;
        if forward {
            assert_eq!(body, format!("upstream:1,{target}"));
        } else {
            assert_eq!(body, target);
        }
    }
}
