//! On-demand TLS approval (kamal-proxy's `internal/server/tls_on_demand_test.go`): the path form
//! routed through the service itself, the URL form against a backend on 127.0.0.1, the cached
//! certificate shortcut, the check URL and the URL validation.

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{args, backend_with, service_options, target_options, test_router};
use dhow_proxy::body;
use dhow_proxy::commands::StopArgs;
use dhow_proxy::on_demand::{Endpoint, approve};
use dhow_proxy::options::{Nanos, ServiceOptions};
use dhow_proxy::router::Router;
use http::{Response, StatusCode};

fn query_host(uri: &http::Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .find_map(|p| p.strip_prefix("host="))
        .map(str::to_string)
}

fn respond(status: u16, text: String) -> Response<body::Body> {
    let mut r = Response::new(body::full(text));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

/// An on-demand TLS service (no host) whose check URL is `url`, with its cache in `cache`.
fn on_demand_options(url: &str, cache: &std::path::Path) -> ServiceOptions {
    ServiceOptions {
        tls_enabled: true,
        tls_on_demand_url: url.to_string(),
        acme_cache_path: cache.display().to_string(),
        ..service_options()
    }
}

async fn deploy_on_demand(router: &Router, target: &str, options: ServiceOptions) {
    router
        .deploy(args("app", &[target], options, target_options()))
        .await
        .unwrap();
}

/// A backend answering `/up` and, on `/allow-host`, 200 for `allowed.example.com` and 403
/// `Access denied` for any other host.
/// `allowed.example.com` is approved; `denied.example.com` is refused with the checker's 403
/// and its body.
async fn assert_allowed_host_only(router: &Router) {
    assert!(approve(router, "allowed.example.com").await.is_ok());
    let err = approve(router, "denied.example.com").await.unwrap_err();
    assert!(err.contains("not allowed to get a certificate"), "{err}");
    assert!(err.contains("status: 403"), "{err}");
    assert!(err.contains("Access denied"), "{err}");
}

async fn allow_host_backend() -> String {
    backend_with(|req| async move {
        match (req.uri().path(), query_host(req.uri()).as_deref()) {
            ("/up", _) | ("/allow-host", Some("allowed.example.com")) => {
                respond(200, String::new())
            }
            _ => respond(403, "Access denied".into()),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_local_host_policy() {
    let t = test_router();
    let target = allow_host_backend().await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options("/allow-host", t.dir.path()),
    )
    .await;
    assert_allowed_host_only(&t.router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_local_host_policy_is_not_redirected_when_tls_redirect_enabled()
{
    let t = test_router();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let recorded = Arc::clone(&seen);
    let target = backend_with(move |req| {
        let recorded = Arc::clone(&recorded);
        async move {
            if req.uri().path() == "/allow-host" {
                *recorded.lock().unwrap() = req
                    .headers()
                    .get("x-forwarded-proto")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
            }
            respond(200, String::new())
        }
    })
    .await;
    let mut options = on_demand_options("/allow-host", t.dir.path());
    options.tls_redirect = true;
    deploy_on_demand(&t.router, &target, options).await;
    assert!(approve(&t.router, "allowed.example.com").await.is_ok());
    assert_eq!(*seen.lock().unwrap(), "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_local_host_policy_sets_host_header_to_checked_host() {
    let t = test_router();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let recorded = Arc::clone(&seen);
    let target = backend_with(move |req| {
        let recorded = Arc::clone(&recorded);
        async move {
            if req.uri().path() == "/allow-host" {
                *recorded.lock().unwrap() = req
                    .headers()
                    .get(http::header::HOST)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
            }
            respond(200, String::new())
        }
    })
    .await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options("/allow-host", t.dir.path()),
    )
    .await;
    assert!(approve(&t.router, "allowed.example.com").await.is_ok());
    assert_eq!(*seen.lock().unwrap(), "allowed.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_local_host_policy_truncates_large_response_bodies() {
    let t = test_router();
    let target = backend_with(|req| async move {
        if req.uri().path() == "/up" {
            respond(200, String::new())
        } else {
            respond(403, "a".repeat(500))
        }
    })
    .await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options("/allow-host", t.dir.path()),
    )
    .await;
    let err = approve(&t.router, "denied.example.com").await.unwrap_err();
    assert!(err.contains(&"a".repeat(256)), "{err}");
    assert!(!err.contains(&"a".repeat(257)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_local_host_policy_denies_when_stopped() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options("/allow-host", t.dir.path()),
    )
    .await;
    t.router
        .stop(StopArgs {
            service: "app".into(),
            drain_timeout: Nanos(Duration::from_secs(1)),
            message: "stopped for maintenance".into(),
        })
        .await
        .unwrap();
    let err = approve(&t.router, "allowed.example.com").await.unwrap_err();
    assert!(err.contains("not allowed to get a certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_external_host_policy() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    let checker = backend_with(|req| async move {
        if query_host(req.uri()).as_deref() == Some("allowed.example.com") {
            respond(200, String::new())
        } else {
            respond(403, "Access denied".into())
        }
    })
    .await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options(&format!("http://{checker}/check"), t.dir.path()),
    )
    .await;
    assert_allowed_host_only(&t.router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_external_host_policy_does_not_follow_redirects() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    let checker = backend_with(|req| async move {
        if req.uri().path() == "/allowed" {
            return respond(200, String::new());
        }
        let mut r = respond(302, String::new());
        r.headers_mut()
            .insert(http::header::LOCATION, "/allowed".parse().unwrap());
        r
    })
    .await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options(&format!("http://{checker}/check"), t.dir.path()),
    )
    .await;
    let err = approve(&t.router, "denied.example.com").await.unwrap_err();
    assert!(err.contains("status: 302"), "{err}");
}

/// kamal-proxy's check honours its context's cancellation; here the check gives up after its
/// 2 s timeout, with an error, when the endpoint does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_external_host_policy_honours_context() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    let checker = backend_with(|_req| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        respond(200, String::new())
    })
    .await;
    deploy_on_demand(
        &t.router,
        &target,
        on_demand_options(&format!("http://{checker}/check"), t.dir.path()),
    )
    .await;
    let started = Instant::now();
    let err = approve(&t.router, "allowed.example.com").await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_checker_skips_check_when_host_already_has_cert() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let checker = backend_with(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { respond(403, String::new()) }
    })
    .await;
    let options = on_demand_options(&format!("http://{checker}/check"), t.dir.path());
    // Certificates live in the cache by domain, with a "+rsa" variant for RSA-only clients.
    let cache = dhow_proxy::acme::cache_dir(&options.acme_cache_path, &options.acme_directory);
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("cached.example.com"), "cert").unwrap();
    std::fs::write(cache.join("rsa-only.example.com+rsa"), "cert").unwrap();
    deploy_on_demand(&t.router, &target, options).await;

    assert!(approve(&t.router, "cached.example.com").await.is_ok());
    assert!(approve(&t.router, "cached.example.com.").await.is_ok());
    assert!(approve(&t.router, "rsa-only.example.com").await.is_ok());
    assert_eq!(requests.load(Ordering::SeqCst), 0);

    assert!(approve(&t.router, "uncached.example.com").await.is_err());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn test_tls_on_demand_checker_check_url() {
    let check_url = |url: &str, host: &str| Endpoint::parse(url).unwrap().check_url(host);
    assert_eq!(
        check_url("/allow-host", "test.example.com"),
        "/allow-host?host=test.example.com"
    );
    assert_eq!(
        check_url("/allow-host", "test.example.com:8080"),
        "/allow-host?host=test.example.com%3A8080"
    );
    assert_eq!(
        check_url("/allow-host?token=abc", "test.example.com"),
        "/allow-host?host=test.example.com&token=abc"
    );
    assert_eq!(
        check_url("https://example.com/check?token=abc", "test.example.com"),
        "https://example.com/check?host=test.example.com&token=abc"
    );
    // Re-encoded in sorted order; a `host` already there is replaced.
    assert_eq!(
        check_url("/c?z=1&a=x+y&host=old&b=%2F", "h.example.com"),
        "/c?a=x+y&b=%2F&host=h.example.com&z=1"
    );
}

#[test]
fn test_validate_tls_on_demand_url() {
    for ok in [
        "/allow-host",
        "/allow-host?token=abc",
        "http://example.com/check",
        "https://example.com/check",
    ] {
        assert!(Endpoint::parse(ok).is_ok(), "{ok}");
    }
    for (bad, message) in [
        ("://invalid-url", "unable to parse tls-on-demand-url"),
        ("ftp://example.com/check", "unsupported scheme"),
        ("allow-host", "unable to parse tls-on-demand-url"),
        ("http://", "missing host"),
        (
            "//example.com/check",
            "must be a path or an absolute http(s) URL",
        ),
    ] {
        let err = Endpoint::parse(bad).unwrap_err();
        assert!(err.contains(message), "{bad}: {err}");
    }
    assert!(Endpoint::parse("/allow-host").unwrap().is_local());
    assert!(!Endpoint::parse("https://example.com/").unwrap().is_local());
}

/// A service with configured hosts approves only those hosts, without asking anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_tls_on_demand_configured_hosts_need_no_check() {
    let t = test_router();
    let target = backend_with(|_req| async { respond(200, String::new()) }).await;
    let options = ServiceOptions {
        hosts: vec!["app.example.com".into()],
        tls_enabled: true,
        acme_cache_path: t.dir.path().display().to_string(),
        ..service_options()
    };
    t.router
        .deploy(args("app", &[&target], options, target_options()))
        .await
        .unwrap();
    assert!(approve(&t.router, "app.example.com").await.is_ok());
    assert!(approve(&t.router, "other.example.com").await.is_err());
}
