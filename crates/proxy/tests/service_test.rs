//! Service scenarios of kamal-proxy's `internal/server/service_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

mod common;

use std::time::Duration;

use common::*;
use dhow_proxy::body;
use dhow_proxy::commands::{PauseArgs, RolloutDeployArgs, RolloutSetArgs, StopArgs};
use dhow_proxy::options::{Nanos, ServiceOptions};
use dhow_proxy::router::Router;
use dhow_proxy::service::ServiceState;
use http::Response;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_serve() {
    let t = test_router();
    let target = backend("ok", 200).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    let r = send(&t.router, "POST", "http://example.com/", "data").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_redirect_to_https_when_tls_required() {
    let t = test_router();
    let target = backend("ok", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.tls_enabled = true;
    t.router
        .deploy(args("app", &[&target], so, target_options()))
        .await
        .unwrap();
    let r = send(&t.router, "GET", "http://example.com/", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://example.com/");
    assert_eq!(
        send(&t.router, "GET", "https://example.com/", "")
            .await
            .status,
        200
    );
}

#[test]
fn test_service_has_configured_hosts() {
    let with = |hosts: &[&str]| ServiceOptions {
        hosts: hosts.iter().map(ToString::to_string).collect(),
        ..ServiceOptions::default()
    };
    assert!(!with(&[]).has_configured_hosts());
    assert!(!with(&[""]).has_configured_hosts());
    assert!(!with(&["*.example.com", ""]).has_configured_hosts());
    assert!(with(&["example.com"]).has_configured_hosts());
    assert!(with(&["example.com", "*.example.com"]).has_configured_hosts());
}

#[test]
fn test_service_validate() {
    let opts = |hosts: &[&str], prefixes: &[&str], tls: bool, canonical: &str| ServiceOptions {
        hosts: hosts.iter().map(ToString::to_string).collect(),
        path_prefixes: prefixes.iter().map(ToString::to_string).collect(),
        tls_enabled: tls,
        canonical_host: canonical.to_string(),
        ..ServiceOptions::default()
    };
    let err = |o: ServiceOptions| o.validate().unwrap_err().to_string();
    assert!(err(opts(&[], &[], true, "")).contains("host must be set when using TLS"));
    assert!(
        err(opts(&["a.com"], &["/api"], true, ""))
            .contains("TLS settings must be specified on the root path service")
    );
    assert!(
        opts(&["a.com"], &["/", "/api"], true, "")
            .validate()
            .is_ok()
    );
    assert!(
        err(opts(&["a.com"], &[], false, "b.com"))
            .contains("canonical-host 'b.com' must be present in the hosts list: [a.com]")
    );
    assert!(opts(&["a.com"], &[], false, "a.com").validate().is_ok());
    assert!(opts(&[], &[], false, "b.com").validate().is_ok());
    assert!(opts(&[], &["/api"], false, "").validate().is_ok());

    // The on-demand combinations.
    let on_demand = |hosts: &[&str], tls: bool, canonical: &str, url: &str| ServiceOptions {
        tls_on_demand_url: url.to_string(),
        ..opts(hosts, &[], tls, canonical)
    };
    assert!(on_demand(&[], true, "", "/allow").validate().is_ok());
    assert!(
        on_demand(&[""], true, "", "https://x.com/a")
            .validate()
            .is_ok()
    );
    assert!(
        err(on_demand(&[], false, "", "/allow"))
            .contains("TLS must be enabled to use a TLS on-demand URL")
    );
    assert!(
        err(on_demand(&["a.com"], true, "", "/allow"))
            .contains("cannot set hosts when using a TLS on-demand URL")
    );
    assert!(
        err(on_demand(&[], true, "a.com", "/allow"))
            .contains("cannot set a canonical host when using a TLS on-demand URL")
    );
    let mut custom = on_demand(&[], true, "", "/allow");
    custom.tls_certificate_path = "c.pem".into();
    assert!(err(custom).contains("cannot use a custom TLS certificate with a TLS on-demand URL"));
    let mut not_root = on_demand(&[], true, "", "/allow");
    not_root.path_prefixes = vec!["/api".into()];
    assert!(err(not_root).contains("TLS settings must be specified on the root path service"));
    assert!(err(on_demand(&[], true, "", "ftp://x.com/a")).contains("unsupported scheme"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_use_tls_without_redirect() {
    let t = test_router();
    let target = backend_with(|req| {
        let proto = req
            .headers()
            .get("x-forwarded-proto")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        std::future::ready(Response::new(body::full(proto)))
    })
    .await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.tls_enabled = true;
    so.tls_redirect = false;
    t.router
        .deploy(args("app", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(
        get(&t.router, "http://example.com/").await,
        (200, "http".into())
    );
    assert_eq!(
        get(&t.router, "https://example.com/").await,
        (200, "https".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_static_certificate() {
    let t = test_router();
    let target = backend("ok", 200).await;
    let mut so = service_options();
    so.hosts = vec!["example.com".into()];
    so.tls_enabled = true;
    so.tls_certificate_path = fixture("cert.pem");
    so.tls_private_key_path = fixture("key.pem");
    t.router
        .deploy(args("app", &[&target], so, target_options()))
        .await
        .unwrap();
    assert!(t.router.certificate_for("example.com").is_some());
    assert!(t.router.certificate_for("other.com").is_none());
    assert_eq!(t.router.default_tls_host().as_deref(), Some("example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_reject_tls_requests_when_not_configured() {
    let t = test_router();
    let target = backend("ok", 200).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    assert_eq!(get(&t.router, "http://example.com/").await.0, 200);
    assert_eq!(get(&t.router, "https://example.com/").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_return_success_for_health_check_while_paused_or_stopped() {
    let t = test_router();
    let target = backend("ok", 200).await;
    t.router
        .deploy(args("app", &[&target], service_options(), target_options()))
        .await
        .unwrap();
    let status = |url: &'static str| {
        let router = std::sync::Arc::clone(&t.router);
        async move { get(&router, url).await.0 }
    };
    assert_eq!(status("http://example.com/up").await, 200);
    t.router
        .pause(PauseArgs {
            service: "app".into(),
            drain_timeout: Nanos(Duration::from_secs(1)),
            pause_timeout: Nanos(Duration::from_millis(10)),
        })
        .await
        .unwrap();
    assert_eq!(status("http://example.com/up").await, 200);
    assert_eq!(status("http://example.com/other").await, 504);
    t.router
        .stop(StopArgs {
            service: "app".into(),
            drain_timeout: Nanos(Duration::from_secs(1)),
            message: "Gone to lunch".into(),
        })
        .await
        .unwrap();
    assert_eq!(status("http://example.com/up").await, 200);
    let r = send(&t.router, "GET", "http://example.com/other", "").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("Gone to lunch"));
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    t.router.resume("app").unwrap();
    assert_eq!(status("http://example.com/other").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_marshalling_state() {
    let t = test_router();
    let first = backend("first", 200).await;
    let second = backend("second", 200).await;
    let mut to = target_options();
    to.buffer_requests = true;
    to.log_request_headers = vec!["X-Custom".into()];
    t.router
        .deploy(args("app", &[&first], service_options(), to.clone()))
        .await
        .unwrap();
    t.router
        .rollout_deploy(RolloutDeployArgs {
            service: "app".into(),
            target_urls: vec![second.clone()],
            reader_urls: vec![],
            deployment_options: deployment_options(),
        })
        .await
        .unwrap();
    t.router
        .rollout_set(RolloutSetArgs {
            service: "app".into(),
            percentage: 20,
            allowlist: vec!["a".into(), "b".into()],
        })
        .unwrap();
    t.router
        .stop(StopArgs {
            service: "app".into(),
            drain_timeout: Nanos(Duration::from_secs(1)),
            message: "maintenance".into(),
        })
        .await
        .unwrap();

    let text = std::fs::read_to_string(t.state_path()).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &raw[0];
    assert_eq!(entry["name"], "app");
    assert_eq!(entry["pause_controller"]["state"], 2);
    assert_eq!(entry["pause_controller"]["stop_message"], "maintenance");
    assert_eq!(
        entry["target_options"]["response_timeout"],
        30_000_000_000u64
    );
    assert_eq!(entry["options"]["hosts"], serde_json::json!([""]));
    assert_eq!(entry["options"]["path_prefixes"], serde_json::json!(["/"]));
    assert_eq!(entry["rollout_controller"]["percentage"], 20);

    let restored = Router::new(Some(t.state_path()));
    restored.restore();
    let slots = restored.slots("app").unwrap();
    assert_eq!(slots.target_options, to);
    assert_eq!(slots.active.as_ref().unwrap().writer_names(), vec![first]);
    assert_eq!(slots.rollout.as_ref().unwrap().writer_names(), vec![second]);
    let rc = slots.rollout_controller.clone().unwrap();
    assert_eq!(
        (rc.percentage, rc.allowlist),
        (20, vec!["a".to_string(), "b".to_string()])
    );
    let r = send(&restored, "GET", "http://example.com/", "").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("maintenance"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_unmarshalling_state_from_legacy_format() {
    let target = backend("legacy", 200).await;
    let json = format!(
        r#"[{{"name":"old","hosts":["legacy.example.com"],"active_target":"{target}","options":{{"tls_enabled":false}},"target_options":{{"health_check_config":{{"path":"/up","interval":1000000000,"timeout":5000000000}},"response_timeout":10000000000}}}}]"#
    );
    let mut state: Vec<ServiceState> = serde_json::from_str(&json).unwrap();
    state[0].upgrade_legacy();
    assert_eq!(state[0].active_targets, vec![target.clone()]);
    assert_eq!(state[0].options.hosts, vec!["legacy.example.com"]);
    assert_eq!(state[0].options.path_prefixes, vec!["/"]);
    assert_eq!(
        state[0].target_options.response_timeout.0,
        Duration::from_secs(10)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamal-proxy.state");
    std::fs::write(&path, json).unwrap();
    let router = Router::new(Some(path));
    router.restore();
    assert_eq!(
        get(&router, "http://legacy.example.com/").await,
        (200, "legacy".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_restore_is_per_service() {
    // One unreadable certificate must not take every other service down with it.
    let target = backend("fine", 200).await;
    let json = format!(
        r#"[{{"name":"broken","options":{{"hosts":["broken.example.com"],"path_prefixes":["/"],"tls_enabled":true,"tls_certificate_path":"/missing.pem","tls_private_key_path":"/missing.pem"}},"target_options":{{}},"active_targets":["{target}"]}},
           {{"name":"fine","options":{{"hosts":["fine.example.com"],"path_prefixes":["/"]}},"target_options":{{}},"active_targets":["{target}"],"active_readers":null,"rollout_targets":null,"rollout_readers":null,"rollout_controller":null}}]"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kamal-proxy.state");
    std::fs::write(&path, json).unwrap();
    let router = Router::new(Some(path));
    router.restore();
    assert_eq!(
        get(&router, "http://fine.example.com/").await,
        (200, "fine".into())
    );
    assert_eq!(get(&router, "http://broken.example.com/").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_client_ip_header() {
    let t = test_router();
    let target = backend_with(|req| {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        std::future::ready(Response::new(body::full(format!(
            "{}|{}",
            h("x-forwarded-for"),
            h("cf-connecting-ip")
        ))))
    })
    .await;
    let mut so = service_options();
    so.client_ip_header = "CF-Connecting-IP".into();
    let mut to = target_options();
    to.forward_headers = true;
    t.router
        .deploy(args("app", &[&target], so, to))
        .await
        .unwrap();

    let (mut req, tls) = request("GET", "http://example.com/", "");
    req.headers_mut()
        .insert("cf-connecting-ip", "203.0.113.7".parse().unwrap());
    req.headers_mut()
        .insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
    let r = send_request(&t.router, req, tls).await;
    assert_eq!(r.body, "203.0.113.7, 192.0.2.1|203.0.113.7");

    let (mut req, tls) = request("GET", "http://example.com/", "");
    req.headers_mut()
        .insert("x-forwarded-for", "10.0.0.1".parse().unwrap());
    let r = send_request(&t.router, req, tls).await;
    assert_eq!(r.body, "10.0.0.1, 192.0.2.1|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_metrics_exclusion() {
    let t = test_router();
    let target = backend("ok", 200).await;
    let mut so = service_options();
    so.path_prefixes = vec!["/api".into()];
    so.exclude_metrics_paths = vec!["/up".into()];
    t.router
        .deploy(args("excluded-metrics", &[&target], so, target_options()))
        .await
        .unwrap();
    assert_eq!(get(&t.router, "http://example.com/api/up").await.0, 200);
    let text = dhow_proxy::metrics::global().render();
    assert!(!text.contains("service=\"excluded-metrics\""), "{text}");
    assert_eq!(get(&t.router, "http://example.com/api/other").await.0, 200);
    let text = dhow_proxy::metrics::global().render();
    assert!(text.contains(
        "kamal_proxy_http_requests_total{method=\"GET\",service=\"excluded-metrics\",status=\"200\"} 1"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_commands_deploy_rejects_invalid_options() {
    // The server validates too, with the CLI's messages, whoever sends the call.
    let t = test_router();
    let target = backend("ok", 200).await;
    let cases = [
        (
            vec![],
            vec![],
            true,
            "",
            "service options invalid: host must be set when using TLS",
        ),
        (
            vec!["a.com"],
            vec!["/api"],
            true,
            "",
            "service options invalid: TLS settings must be specified on the root path service",
        ),
        (
            vec!["a.com"],
            vec![],
            false,
            "b.com",
            "service options invalid: canonical-host 'b.com' must be present in the hosts list: [a.com]",
        ),
    ];
    for (hosts, prefixes, tls, canonical, message) in cases {
        let so = ServiceOptions {
            hosts: hosts.iter().map(ToString::to_string).collect(),
            path_prefixes: prefixes.iter().map(ToString::to_string).collect(),
            tls_enabled: tls,
            canonical_host: canonical.to_string(),
            ..ServiceOptions::default()
        };
        let err = t
            .router
            .deploy(args("app", &[&target], so, target_options()))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let err = t
        .router
        .deploy(args(
            "app",
            &["not a target"],
            service_options(),
            target_options(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "not a target :invalid host pattern");
}
