//! Routing-table scenarios of kamal-proxy's `internal/server/service_map_test.go`.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failed setup")]

use dhow_proxy::service_map::ServiceMap;

#[path = "routing_cases/mod.rs"]
mod routing_cases;

use routing_cases::service;

fn lookup(map: &ServiceMap, host: &str, path: &str) -> Option<String> {
    map.lookup(host, path).map(|b| b.service.name.clone())
}

#[test]
fn test_service_map_service_for_host() {
    let services = [
        service("exact", &["app.example.com"], &[], false),
        service("wildcard", &["*.example.com"], &[], false),
        service("default", &[], &[], false),
    ];
    let map = ServiceMap::build(services.iter());
    assert_eq!(
        lookup(&map, "app.example.com", "/").as_deref(),
        Some("exact")
    );
    assert_eq!(
        lookup(&map, "other.example.com", "/").as_deref(),
        Some("wildcard")
    );
    assert_eq!(
        lookup(&map, "a.b.example.com", "/").as_deref(),
        Some("default")
    );
    assert_eq!(lookup(&map, "example.org", "/").as_deref(), Some("default"));

    let map = ServiceMap::build(services[..2].iter());
    assert_eq!(lookup(&map, "example.org", "/"), None);
}

#[test]
fn test_service_map_service_for_request() {
    let services = [
        service("root", &["example.com"], &[], false),
        service("api", &["example.com"], &["/api"], false),
        service("special", &["example.com"], &["/api/special"], false),
        service("catchall-api", &[], &["/api"], false),
        service("catchall", &[], &[], false),
    ];
    let map = ServiceMap::build(services.iter());
    assert_eq!(
        lookup(&map, "example.com", "/api/special/x").as_deref(),
        Some("special")
    );
    assert_eq!(
        lookup(&map, "example.com", "/api/x").as_deref(),
        Some("api")
    );
    assert_eq!(
        lookup(&map, "example.com", "/apiary").as_deref(),
        Some("root")
    );
    assert_eq!(
        lookup(&map, "other.com", "/api/x").as_deref(),
        Some("catchall-api")
    );
    assert_eq!(lookup(&map, "other.com", "/x").as_deref(), Some("catchall"));
}

#[test]
fn test_service_map_check_availability() {
    let services = [service("first", &["example.com"], &["/api"], false)];
    let map = ServiceMap::build(services.iter());
    let check = |name: &str, hosts: &[&str], prefixes: &[&str]| {
        map.conflict(
            name,
            &hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            &prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
    };
    assert_eq!(check("first", &["example.com"], &["/api"]), None);
    assert_eq!(check("second", &["other.com"], &["/api"]), None);
    assert_eq!(check("second", &[""], &["/api"]), None);
    assert_eq!(check("second", &["example.com"], &["/app"]), None);
    assert_eq!(
        check("second", &["example.com"], &["/api"]).as_deref(),
        Some("first")
    );
}

#[test]
fn test_service_map_default_tls_hostname() {
    let services = [
        service("plain", &["plain.example.com"], &[], false),
        service(
            "secure",
            &["secure.example.com", "www.secure.example.com"],
            &[],
            true,
        ),
    ];
    let map = ServiceMap::build(services.iter());
    assert_eq!(
        map.default_tls_host().as_deref(),
        Some("secure.example.com")
    );
    let map = ServiceMap::build(services[..1].iter());
    assert_eq!(map.default_tls_host(), None);

    // An on-demand TLS service (no host) is never the default, and setting it again (a redeploy
    // rebuilds the map) does not displace the TLS service's host.
    let on_demand = || {
        let s = service("on-demand", &[], &[], true);
        s.update(|slots| slots.options.tls_on_demand_url = "/allow".into());
        s
    };
    let map = ServiceMap::build([&on_demand()]);
    assert_eq!(map.default_tls_host(), None);
    let map = ServiceMap::build([&services[1], &on_demand()]);
    assert_eq!(
        map.default_tls_host().as_deref(),
        Some("secure.example.com")
    );
    let map = ServiceMap::build([&services[1], &on_demand()]);
    assert_eq!(
        map.default_tls_host().as_deref(),
        Some("secure.example.com")
    );
}

#[test]
fn test_service_map_path_services_inherit_tls_from_root() {
    let root = service("root", &["example.com"], &[], true);
    let api = service("api", &["example.com"], &["/api"], false);
    let _map = ServiceMap::build([&root, &api]);
    assert!(api.tls_enabled());
    let _map = ServiceMap::build([&api]);
    assert!(
        !api.tls_enabled(),
        "back to defaults once the root service is gone"
    );
}

#[test]
fn test_service_map_catch_all_does_not_block_specific_host() {
    let services = [service("default", &[], &[], false)];
    let map = ServiceMap::build(services.iter());
    assert_eq!(
        map.conflict("specific", &["example.com".to_string()], &["/".to_string()]),
        None
    );
}

// The routing micro-benchmarks' requests (`scripts/bench-proxy-routing`) reach the services the
// benchmark says they do, so what it times is the real route.
#[test]
fn benchmark_routing_cases_route_as_expected() {
    let cases = routing_cases::cases();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        assert!(!case.requests.is_empty(), "{}", case.name);
        for (req, expected) in &case.requests {
            assert_eq!(
                routing_cases::route(&case.map, req),
                expected.as_deref(),
                "{}: {} {}",
                case.name,
                req.headers()["host"].to_str().unwrap(),
                req.uri()
            );
        }
    }
}
