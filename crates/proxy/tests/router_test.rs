//! Routing and deploy scenarios of kamal-proxy's `internal/server/router_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::time::Duration;

use common::*;
use dhow_proxy::body;
use dhow_proxy::commands::{PauseArgs, RolloutDeployArgs, RolloutSetArgs};
use dhow_proxy::error::ProxyError;
use dhow_proxy::options::Nanos;
use dhow_proxy::router::Router;
use http::Response;

fn pause_args(name: &str, drain: Duration, max_pause: Duration) -> PauseArgs {
    PauseArgs {
        service: name.into(),
        drain_timeout: Nanos(drain),
        pause_timeout: Nanos(max_pause),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_empty() {
    let t = test_router();
    assert_eq!(get(&t.router, "http://example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service() {
    let t = test_router();
    let target = backend("first", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service_multiple_targets() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&first, &second],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let (status, body) = get(&t.router, "http://example.com/").await;
        assert_eq!(status, 200);
        bodies.push(body);
    }
    assert!(bodies.contains(&"first".to_string()));
    assert!(bodies.contains(&"second".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_removing() {
    let t = test_router();
    let target = backend("first", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "first".into())
    );
    t.router.remove("service1").unwrap();
    assert_eq!(get(&t.router, "http://example.com/").await.0, 404);
    assert!(matches!(
        t.router.remove("service1"),
        Err(ProxyError::ServiceNotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service_multiple_hosts() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["1.example.com".into(), "2.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://1.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://2.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(get(&t.router, "http://3.example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_updating_hosts_of_active_service() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["1.example.com".into(), "2.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so.clone(), target_options()))
        .await
        .unwrap();
    so.hosts = vec!["3.example.com".into(), "2.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(get(&t.router, "http://1.example.com/").await.0, 404);
    assert_eq!(
        get(&t.router, "http://2.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://3.example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service_unknown_host() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["dummy.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(get(&t.router, "http://other.example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service_containing_port() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["dummy.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy.example.com:80/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deploy_service_without_host() {
    let t = test_router();
    let target = backend("first", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy.example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_replacing_active_service() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&first],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy.example.com/").await,
        (200, "first".into())
    );
    t.router
        .deploy(args(
            "service1",
            &[&second],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy.example.com/").await,
        (200, "second".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_updating_options() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["dummy.example.com".into()];
    let mut to = target_options();
    to.buffer_requests = true;
    to.max_request_body_size = 10;
    t.router
        .deploy(args("service1", &[&target], so.clone(), to.clone()))
        .await
        .unwrap();
    let long = "Something longer than 10";
    let r = send(&t.router, "POST", "http://dummy.example.com/", long).await;
    assert_eq!(r.status, 413);

    to.buffer_requests = false;
    to.max_request_body_size = 0;
    t.router
        .deploy(args("service1", &[&target], so.clone(), to.clone()))
        .await
        .unwrap();
    let r = send(&t.router, "POST", "http://dummy.example.com/", long).await;
    assert_eq!((r.status, r.body.as_str()), (200, "first"));

    so.tls_enabled = true;
    t.router
        .deploy(args("service1", &[&target], so.clone(), to.clone()))
        .await
        .unwrap();
    let r = send(&t.router, "POST", "http://dummy.example.com/", long).await;
    assert_eq!((r.status, r.body.as_str()), (301, ""));

    so.hosts = vec!["other.example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so, to))
        .await
        .unwrap();
    let r = send(&t.router, "POST", "http://other.example.com/", long).await;
    assert_eq!((r.status, r.body.as_str()), (301, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_canonical_host_redirect() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into(), "www.example.com".into()];
    so.canonical_host = "example.com".into();
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    let r = send(&t.router, "GET", "http://www.example.com/path?q=1", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "http://example.com/path?q=1");
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_canonical_host_redirect_with_tls() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into(), "www.example.com".into()];
    so.canonical_host = "example.com".into();
    so.tls_enabled = true;
    so.tls_redirect = true;
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    let r = send(&t.router, "GET", "http://www.example.com/", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://example.com/");
    assert_eq!(r.headers["connection"], "close");
    let r = send(&t.router, "GET", "https://www.example.com/", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://example.com/");
}

async fn assert_healthy(router: &Router) {
    let r = send(router, "POST", "http://example.com/", "Hello").await;
    assert_eq!((r.status, r.body.as_str()), (200, "first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_deployments_with_errors_do_not_update_service() {
    let t = test_router();
    let target = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    assert!(!t.state_path().exists());
    t.router
        .deploy(args("service1", &[&target], so.clone(), target_options()))
        .await
        .unwrap();
    assert!(t.state_path().exists());
    let saved = std::fs::read_to_string(t.state_path()).unwrap();

    // A custom certificate that cannot be loaded.
    let mut bad_tls = so.clone();
    bad_tls.tls_enabled = true;
    bad_tls.tls_certificate_path = "not valid".into();
    bad_tls.tls_private_key_path = "not valid".into();
    let mut to = target_options();
    to.buffer_requests = true;
    let err = t
        .router
        .deploy(args("service1", &[&target], bad_tls, to.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::UnableToLoadCertificate), "{err}");
    assert_healthy(&t.router).await;
    assert_eq!(std::fs::read_to_string(t.state_path()).unwrap(), saved);

    // An error page directory that cannot be loaded.
    let mut bad_pages = so.clone();
    bad_pages.error_page_path = "not valid".into();
    let err = t
        .router
        .deploy(args("service1", &[&target], bad_pages, to))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::UnableToLoadErrorPages), "{err}");
    assert_healthy(&t.router).await;
    assert_eq!(std::fs::read_to_string(t.state_path()).unwrap(), saved);

    // The saved state still loads.
    let restored = Router::new(Some(t.state_path()));
    restored.restore();
    let r = send(&restored, "POST", "http://example.com/", "Hello").await;
    assert_eq!((r.status, r.body.as_str()), (200, "first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_updating_pause_state_independently_of_deployments() {
    let t = test_router();
    let target = backend("first", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    t.router
        .pause(pause_args(
            "service1",
            Duration::from_secs(1),
            Duration::from_millis(10),
        ))
        .await
        .unwrap();
    let body = "Something longer than 10";
    assert_eq!(
        send(&t.router, "POST", "http://example.com/", body)
            .await
            .status,
        504
    );
    t.router
        .deploy(args(
            "service1",
            &[&target],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        send(&t.router, "POST", "http://example.com/", body)
            .await
            .status,
        504
    );
    t.router.resume("service1").unwrap();
    assert_eq!(
        send(&t.router, "POST", "http://example.com/", body)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_changing_host_for_service() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut so = service_options();
    so.hosts = vec!["dummy.example.com".into()];
    t.router
        .deploy(args("service1", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy.example.com/").await,
        (200, "first".into())
    );
    so.hosts = vec!["dummy2.example.com".into()];
    t.router
        .deploy(args("service1", &[&second], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://dummy2.example.com/").await,
        (200, "second".into())
    );
    assert_eq!(get(&t.router, "http://dummy.example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_reusing_host() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    t.router
        .deploy(args("service1", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    let err = t
        .router
        .deploy(args("service2", &[&second], so, target_options()))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::HostInUse));
    assert_eq!(
        err.to_string(),
        "host settings conflict with another service"
    );
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_reusing_empty_host() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&first],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    let err = t
        .router
        .deploy(args(
            "service12",
            &[&second],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::HostInUse));
    assert_eq!(
        get(&t.router, "http://anything.example.com/").await,
        (200, "first".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_routing_multiple_hosts() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut so = service_options();
    so.hosts = vec!["s1.example.com".into()];
    t.router
        .deploy(args("service1", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    so.hosts = vec!["s2.example.com".into()];
    t.router
        .deploy(args("service2", &[&second], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://s1.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://s2.example.com/").await,
        (200, "second".into())
    );
}

async fn cookie_backend(cookies: &'static [&'static str]) -> String {
    backend_with(move |_req| async move {
        let mut r = Response::new(body::empty());
        for c in cookies {
            r.headers_mut()
                .append(http::header::SET_COOKIE, c.parse().unwrap());
        }
        r
    })
    .await
}

fn cookie_path(reply: &Reply, index: usize) -> String {
    let cookie = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .nth(index)
        .unwrap();
    cookie
        .to_str()
        .unwrap()
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Path=").map(ToString::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_path_based_routing_cookie_prefix_prefix() {
    let backend1 = cookie_backend(&["session=secret; Path=/something; HttpOnly"]).await;
    let backend2 = cookie_backend(&["session=secret; Path=/; HttpOnly"]).await;
    for (scope, path, expected) in [
        (true, "/app", "/app/something"),
        (true, "/api", "/api/something"),
        (false, "/app", "/something"),
        (false, "/api", "/something"),
        (true, "/chat", "/chat"),
        (false, "/chat", "/"),
    ] {
        let t = test_router();
        let mut so = service_options();
        so.strip_prefix = true;
        let mut to = target_options();
        to.scope_cookie_paths = scope;
        so.path_prefixes = vec!["/api".into(), "/app".into()];
        t.router
            .deploy(args("service1", &[&backend1], so.clone(), to.clone()))
            .await
            .unwrap();
        so.path_prefixes = vec!["/chat".into()];
        t.router
            .deploy(args("service2", &[&backend2], so, to))
            .await
            .unwrap();
        let r = send(&t.router, "GET", &format!("http://example.com{path}"), "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get_all("set-cookie").iter().count(), 1);
        assert_eq!(cookie_path(&r, 0), expected, "{scope} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_path_based_routing_cookie_prefix_third_party_domain() {
    let t = test_router();
    let target = cookie_backend(&[
        "first_party=value1; Path=/original; Domain=example.com",
        "third_party=value2; Path=/original; Domain=other.com",
        "no_domain=value3; Path=/original",
    ])
    .await;
    let mut so = service_options();
    so.path_prefixes = vec!["/api".into()];
    let mut to = target_options();
    to.scope_cookie_paths = true;
    t.router
        .deploy(args("service", &[&target], so, to))
        .await
        .unwrap();
    let r = send(&t.router, "GET", "http://example.com/api/test", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(cookie_path(&r, 0), "/api/original");
    assert_eq!(cookie_path(&r, 1), "/original");
    assert_eq!(cookie_path(&r, 2), "/api/original");
}

async fn url_echo() -> String {
    backend_with(|req| async move {
        let uri = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        Response::new(body::full(uri))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_path_based_routing_strip_prefix() {
    let t = test_router();
    let target = url_echo().await;
    let mut so = service_options();
    so.strip_prefix = true;
    so.hosts = vec!["example.com".into()];
    t.router
        .deploy(args("service1", &[&target], so.clone(), target_options()))
        .await
        .unwrap();
    so.path_prefixes = vec!["/app".into()];
    t.router
        .deploy(args("service2", &[&target], so.clone(), target_options()))
        .await
        .unwrap();
    so.path_prefixes = vec!["/api/internal".into()];
    t.router
        .deploy(args("service3", &[&target], so.clone(), target_options()))
        .await
        .unwrap();

    assert_eq!(
        get(&t.router, "http://example.com/app/show").await,
        (200, "/show".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/app").await,
        (200, "/".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/api/internal/something?a=b").await,
        (200, "/something?a=b".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/api/external/something").await,
        (200, "/api/external/something".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/appointment").await,
        (200, "/appointment".into())
    );

    so.strip_prefix = false;
    so.path_prefixes = vec!["/app".into()];
    t.router
        .deploy(args("service2", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/app").await,
        (200, "/app".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_health_check_while_paused_with_path_prefix() {
    let t = test_router();
    let target = backend("ok", 200).await;
    let mut so = service_options();
    so.path_prefixes = vec!["/api".into()];
    so.strip_prefix = true;
    t.router
        .deploy(args("service1", &[&target], so, target_options()))
        .await
        .unwrap();
    let mut so = service_options();
    so.path_prefixes = vec!["/admin".into()];
    so.strip_prefix = false;
    let mut to = target_options();
    to.health_check_config.path = "/admin/up".into();
    t.router
        .deploy(args("service2", &[&target], so, to))
        .await
        .unwrap();

    for name in ["service1", "service2"] {
        t.router
            .pause(pause_args(
                name,
                Duration::from_secs(1),
                Duration::from_millis(10),
            ))
            .await
            .unwrap();
    }
    assert_eq!(get(&t.router, "http://example.com/api/up").await.0, 200);
    assert_eq!(get(&t.router, "http://example.com/admin/up").await.0, 200);
    assert_eq!(get(&t.router, "http://example.com/api/other").await.0, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_path_based_routing_with_hosts() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.path_prefixes = vec!["/first".into()];
    t.router
        .deploy(args("service1", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    so.path_prefixes = vec!["/second".into()];
    t.router
        .deploy(args("service2", &[&second], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/first").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/second").await,
        (200, "second".into())
    );
    assert_eq!(get(&t.router, "http://example.com/third").await.0, 404);
    assert_eq!(get(&t.router, "http://example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_path_based_routing_with_default_host() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let third = backend("third", 200).await;
    let mut so = service_options();
    so.path_prefixes = vec!["/first".into()];
    t.router
        .deploy(args("service1", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    so.path_prefixes = vec!["/second".into()];
    t.router
        .deploy(args("service2", &[&second], so.clone(), target_options()))
        .await
        .unwrap();
    so.hosts = vec!["third.example.com".into()];
    t.router
        .deploy(args("service3", &[&third], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/first").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://example.com/second").await,
        (200, "second".into())
    );
    assert_eq!(
        get(&t.router, "http://third.example.com/second/path").await,
        (200, "third".into())
    );
    assert_eq!(get(&t.router, "http://example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_target_without_host_acts_as_wildcard() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut so = service_options();
    so.hosts = vec!["s1.example.com".into()];
    t.router
        .deploy(args("service1", &[&first], so, target_options()))
        .await
        .unwrap();
    t.router
        .deploy(args(
            "default",
            &[&second],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://s1.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://s2.example.com/").await,
        (200, "second".into())
    );
    assert_eq!(
        get(&t.router, "http://s3.example.com/").await,
        (200, "second".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_targets_allow_wildcard_subdomains() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let fallback = backend("fallback", 200).await;
    let mut so = service_options();
    so.hosts = vec!["*.first.example.com".into()];
    t.router
        .deploy(args("first", &[&first], so.clone(), target_options()))
        .await
        .unwrap();
    so.hosts = vec!["*.second.example.com".into()];
    t.router
        .deploy(args("second", &[&second], so, target_options()))
        .await
        .unwrap();
    t.router
        .deploy(args(
            "fallback",
            &[&fallback],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://app.first.example.com/").await,
        (200, "first".into())
    );
    assert_eq!(
        get(&t.router, "http://api.second.example.com/").await,
        (200, "second".into())
    );
    assert_eq!(
        get(&t.router, "http://something-else.example.com/").await,
        (200, "fallback".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_wildcard_domains_cannot_be_used_with_automatic_tls() {
    let t = test_router();
    let first = backend("first", 200).await;
    let mut so = service_options();
    so.hosts = vec!["first.example.com".into(), "*.first.example.com".into()];
    so.tls_enabled = true;
    let err = t
        .router
        .deploy(args("first", &[&first], so, target_options()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ProxyError::AutomaticTlsDoesNotSupportWildcards
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_service_failing_to_become_healthy() {
    let t = test_router();
    let target = backend("", 500).await;
    let mut a = args("example", &[&target], service_options(), target_options());
    a.deployment_options.deploy_timeout = Nanos(Duration::from_millis(20));
    let err = t.router.deploy(a).await.unwrap_err();
    assert!(matches!(err, ProxyError::TargetFailedToBecomeHealthy(_)));
    assert_eq!(
        err.to_string(),
        "target failed to become healthy within configured timeout (20ms)"
    );
    assert_eq!(get(&t.router, "http://example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_enabling_rollout() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&first],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    t.router
        .rollout_deploy(RolloutDeployArgs {
            service: "service1".into(),
            target_urls: vec![second.clone()],
            reader_urls: vec![],
            deployment_options: deployment_options(),
        })
        .await
        .unwrap();
    let check = |expected: &'static str| {
        let router = &t.router;
        async move {
            let (mut req, tls) = request("GET", "http://example.com/", "");
            req.headers_mut()
                .insert("cookie", "kamal-rollout=1".parse().unwrap());
            let r = send_request(router, req, tls).await;
            assert_eq!((r.status, r.body.as_str()), (200, expected));
        }
    };
    check("first").await;
    let set = |list: &[&str]| RolloutSetArgs {
        service: "service1".into(),
        percentage: 0,
        allowlist: list.iter().map(ToString::to_string).collect(),
    };
    t.router.rollout_set(set(&["1"])).unwrap();
    check("second").await;
    t.router.rollout_set(set(&["2"])).unwrap();
    check("first").await;
    t.router.rollout_stop("service1").unwrap();
    check("first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_rollout_requires_targets() {
    let t = test_router();
    let first = backend("first", 200).await;
    t.router
        .deploy(args(
            "service1",
            &[&first],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    let err = t
        .router
        .rollout_set(RolloutSetArgs {
            service: "service1".into(),
            percentage: 10,
            allowlist: vec![],
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "rollout target not set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_restore_last_saved_state() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let third = backend("third", 200).await;
    t.router
        .deploy(args(
            "default",
            &[&first],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap();
    let mut so = service_options();
    so.hosts = vec!["other.example.com".into()];
    so.tls_enabled = true;
    so.tls_redirect = true;
    t.router
        .deploy(args("other1", &[&second], so.clone(), target_options()))
        .await
        .unwrap();
    so.path_prefixes = vec!["/api".into()];
    so.tls_enabled = false;
    so.tls_redirect = false;
    t.router
        .deploy(args("other2", &[&third], so, target_options()))
        .await
        .unwrap();

    let check = |router: std::sync::Arc<Router>| async move {
        assert_eq!(
            get(&router, "http://something.example.com/").await,
            (200, "first".into())
        );
        assert_eq!(get(&router, "http://other.example.com/").await.0, 301);
        assert_eq!(
            get(&router, "https://other.example.com/api").await,
            (200, "third".into())
        );
    };
    check(t.router.clone()).await;
    let restored = Router::new(Some(t.state_path()));
    restored.restore();
    check(restored).await;
}

/// The on-demand host policy is rebuilt from the state file: the restored service still asks its
/// check URL, which allows one host and denies another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_router_restore_tls_on_demand_host_policy() {
    let t = test_router();
    let target = backend("ok", 200).await;
    let checker = common::backend_with(|req| async move {
        let allowed = req.uri().query() == Some("host=allowed.example.com");
        let mut r = http::Response::new(dhow_proxy::body::full(""));
        if !allowed {
            *r.status_mut() = http::StatusCode::FORBIDDEN;
        }
        r
    })
    .await;
    let mut so = service_options();
    so.tls_enabled = true;
    so.tls_on_demand_url = format!("http://{checker}/check");
    so.acme_cache_path = t.dir.path().join("certs").display().to_string();
    t.router
        .deploy(args("app", &[&target], so.clone(), target_options()))
        .await
        .unwrap();
    let state = std::fs::read_to_string(t.state_path()).unwrap();
    assert!(
        state.contains(&format!(
            "\"tls_on_demand_url\":\"{}\"",
            so.tls_on_demand_url
        )),
        "{state}"
    );

    let restored = Router::new(Some(t.state_path()));
    restored.restore();
    assert_eq!(
        restored.slots("app").unwrap().options.tls_on_demand_url,
        so.tls_on_demand_url
    );
    assert!(
        dhow_proxy::on_demand::approve(&restored, "allowed.example.com")
            .await
            .is_ok()
    );
    let err = dhow_proxy::on_demand::approve(&restored, "denied.example.com")
        .await
        .unwrap_err();
    assert!(err.contains("not allowed to get a certificate"), "{err}");
    // The on-demand service is not a default TLS hostname for clients without SNI.
    assert_eq!(restored.default_tls_host(), None);
}
