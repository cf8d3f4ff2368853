//! The routing micro-benchmarks' tables and requests, after kamal-proxy's `service_map_test.go`
//! benchmarks (one service; exact, wildcard and default hits; host plus path routing). Shared by
//! `examples/bench-routing.rs`, which times them, and `service_map_test.rs`, which checks that
//! every request routes where the benchmark says it does.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "benchmark fixtures: a bad fixture should panic"
)]

use std::sync::Arc;

use dhow_proxy::options::ServiceOptions;
use dhow_proxy::pause::PauseSnapshot;
use dhow_proxy::service::{Service, Slots, request_host};
use dhow_proxy::service_map::ServiceMap;
use http::Request;

/// One benchmark: a routing table and the requests looked up in it, each with the service it
/// must reach (`None`: no service, a 404).
pub struct Case {
    pub name: &'static str,
    pub map: ServiceMap,
    pub requests: Vec<(Request<()>, Option<String>)>,
}

/// A service on `hosts` (none: the catch-all) and `prefixes` (none: `/`), TLS on or off.
pub fn service(name: &str, hosts: &[&str], prefixes: &[&str], tls: bool) -> Arc<Service> {
    let mut options = ServiceOptions {
        hosts: hosts.iter().map(ToString::to_string).collect(),
        path_prefixes: prefixes.iter().map(ToString::to_string).collect(),
        tls_enabled: tls,
        ..ServiceOptions::default()
    };
    options.normalize();
    Service::new(
        name,
        Slots {
            options,
            ..Slots::default()
        },
        PauseSnapshot::default(),
    )
}

/// A request as a browser sends it over HTTP/1.1: origin-form target, `Host` header.
fn request(host: &str, path: &str) -> Request<()> {
    Request::get(path).header("host", host).body(()).unwrap()
}

#[allow(clippy::unnecessary_wraps, reason = "reads as the expected route")]
fn expect(name: &str) -> Option<String> {
    Some(name.to_string())
}

/// What the router does per request to pick a service: the host from the request (port
/// removed), then the table lookup by host and path. Returns the service's name.
pub fn route<'a>(map: &'a ServiceMap, req: &Request<()>) -> Option<&'a str> {
    map.lookup(request_host(req), req.uri().path())
        .map(|b| b.service.name.as_str())
}

/// The reference the benchmark compares with: one hash-map lookup of the request's host (the
/// least a host router can do), in a map of the same hosts.
pub fn host_keys(case: &Case) -> rustc_hash::FxHashMap<String, usize> {
    case.requests
        .iter()
        .enumerate()
        .map(|(i, (req, _))| (request_host(req).to_string(), i))
        .collect()
}

pub fn cases() -> Vec<Case> {
    let single = [service("app", &["example.com"], &[], false)];
    let wildcard = [
        service("exact", &["app.example.com"], &[], false),
        service("wildcard", &["*.example.com"], &[], false),
        service("default", &[], &[], false),
    ];
    // Ten apps, each with a root service and three path services.
    let mut paths = Vec::new();
    for app in 0..10 {
        let host = format!("app{app}.example.com");
        for (suffix, prefix) in [
            ("root", "/"),
            ("api", "/api"),
            ("api-v2", "/api/v2"),
            ("admin", "/admin"),
        ] {
            paths.push(service(
                &format!("app{app}-{suffix}"),
                &[&host],
                &[prefix],
                false,
            ));
        }
    }
    vec![
        Case {
            name: "single service",
            map: ServiceMap::build(single.iter()),
            requests: vec![(request("example.com", "/"), expect("app"))],
        },
        Case {
            name: "wildcard matching",
            map: ServiceMap::build(wildcard.iter()),
            requests: vec![
                (request("app.example.com", "/"), expect("exact")),
                (request("other.example.com:8080", "/"), expect("wildcard")),
                (request("example.org", "/"), expect("default")),
            ],
        },
        Case {
            name: "host and path routing",
            map: ServiceMap::build(paths.iter()),
            requests: vec![
                (
                    request("app3.example.com", "/api/v2/users/42"),
                    expect("app3-api-v2"),
                ),
                (
                    request("app7.example.com", "/admin/settings"),
                    expect("app7-admin"),
                ),
                (
                    request("app0.example.com", "/assets/app.css"),
                    expect("app0-root"),
                ),
                (request("app5.example.com", "/apiary"), expect("app5-root")),
                (request("app9.example.com", "/api"), expect("app9-api")),
                (request("unknown.example.com", "/api"), None),
            ],
        },
    ]
}
