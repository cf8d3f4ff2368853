//! Health-check scenarios of kamal-proxy's `internal/server/health_check_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use dhow_proxy::body;
use dhow_proxy::health::{check, check_url, client};
use http::{Response, StatusCode};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_success() {
    let target = backend("ok", 200).await;
    let url = check_url(&target, 0, "/up");
    assert!(check(&client(), &url, "", TIMEOUT).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_succeeds_after_failures() {
    let calls = Arc::new(AtomicUsize::new(0));
    let target = {
        let calls = Arc::clone(&calls);
        backend_with(move |_req| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let mut r = Response::new(body::empty());
            if n < 2 {
                *r.status_mut() = StatusCode::BAD_GATEWAY;
            }
            std::future::ready(r)
        })
        .await
    };
    let url = check_url(&target, 0, "/up");
    let c = client();
    assert!(check(&c, &url, "", TIMEOUT).await.is_err());
    assert!(check(&c, &url, "", TIMEOUT).await.is_err());
    assert!(check(&c, &url, "", TIMEOUT).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_timeout() {
    let target = backend_with(|_req| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Response::new(body::empty())
    })
    .await;
    let url = check_url(&target, 0, "/up");
    let err = check(&client(), &url, "", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.contains("deadline"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_error_status() {
    let target = backend("", 500).await;
    let url = check_url(&target, 0, "/up");
    let err = check(&client(), &url, "", TIMEOUT).await.unwrap_err();
    assert_eq!(err, "unexpected status 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_custom_host_header() {
    let target = backend_with(|req| {
        let host = req
            .headers()
            .get("host")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let ua = req
            .headers()
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut r = Response::new(body::empty());
        if host != "app.example.com" || ua != "kamal-proxy" {
            *r.status_mut() = StatusCode::NOT_FOUND;
        }
        std::future::ready(r)
    })
    .await;
    let url = check_url(&target, 0, "/up");
    let c = client();
    assert!(check(&c, &url, "app.example.com", TIMEOUT).await.is_ok());
    assert!(check(&c, &url, "wrong.example.com", TIMEOUT).await.is_err());
    // Empty host: the default (the target address) is sent.
    assert!(check(&c, &url, "", TIMEOUT).await.is_err());
    let echo = backend_with(|req| {
        let host = req
            .headers()
            .get("host")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        std::future::ready(Response::new(body::full(host)))
    })
    .await;
    assert!(
        check(&c, &check_url(&echo, 0, "/up"), "", TIMEOUT)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_health_check_follows_redirects() {
    let target = backend_with(|req| {
        let mut r = Response::new(body::empty());
        if req.uri().path() == "/up" {
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut()
                .insert("location", "/ready".parse().unwrap());
        }
        std::future::ready(r)
    })
    .await;
    assert!(
        check(&client(), &check_url(&target, 0, "/up"), "", TIMEOUT)
            .await
            .is_ok()
    );
}
