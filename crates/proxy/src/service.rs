//! A named service: its options, the active and rollout load balancers, pause and rollout
//! controllers, certificate and error pages, and serving one request (TLS checks, redirects, pause,
//! slot and target choice, writer affinity and cookie scoping).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use crate::body::{self, Body};
use crate::load_balancer::{LoadBalancer, WRITER_COOKIE};
use crate::options::{ServiceOptions, TargetOptions, null_as_empty};
use crate::pages::{ErrorPages, proxy_error};
use crate::pause::{PauseController, PauseSnapshot, PauseState, WaitResult};
use crate::rollout::{ROLLOUT_COOKIE, RolloutController};
use crate::service_map::host_without_port;
use crate::target::{ConnInfo, Target, is_upgrade};

/// Marks a request the proxy makes to a service itself (the on-demand TLS check): it gets no
/// HTTPS or canonical-host redirect.
#[derive(Debug, Clone, Copy)]
pub struct InternalRequest;

#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub options: ServiceOptions,
    pub target_options: TargetOptions,
    pub active: Option<Arc<LoadBalancer>>,
    pub rollout: Option<Arc<LoadBalancer>>,
    pub rollout_controller: Option<RolloutController>,
    pub pages: Option<Arc<ErrorPages>>,
    pub certificate: Option<Arc<CertifiedKey>>,
    pub acme: Option<Arc<crate::acme::Issuer>>,
}

#[derive(Debug)]
pub struct Service {
    pub name: String,
    inner: RwLock<Arc<Slots>>,
    pub pause: PauseController,
    effective_tls: AtomicBool,
    effective_redirect: AtomicBool,
}

/// The state-file form of a service (kamal-proxy's JSON, legacy keys accepted on read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServiceState {
    pub name: String,
    pub options: ServiceOptions,
    pub target_options: TargetOptions,
    #[serde(deserialize_with = "null_as_empty")]
    pub active_targets: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub active_readers: Vec<String>,
    pub rollout_targets: Option<Vec<String>>,
    pub rollout_readers: Option<Vec<String>>,
    pub pause_controller: PauseSnapshot,
    pub rollout_controller: Option<RolloutController>,
    #[serde(skip_serializing)]
    pub active_target: Option<String>,
    #[serde(skip_serializing)]
    pub rollout_target: Option<String>,
    #[serde(skip_serializing)]
    pub hosts: Option<Vec<String>>,
    #[serde(skip_serializing)]
    pub path_prefixes: Option<Vec<String>>,
}

impl ServiceState {
    /// Folds legacy keys into the current ones and normalises the options.
    pub fn upgrade_legacy(&mut self) {
        if self.active_targets.is_empty()
            && let Some(t) = self.active_target.take().filter(|t| !t.is_empty())
        {
            self.active_targets = vec![t];
        }
        if self.rollout_targets.as_ref().is_none_or(Vec::is_empty)
            && let Some(t) = self.rollout_target.take().filter(|t| !t.is_empty())
        {
            self.rollout_targets = Some(vec![t]);
        }
        if self.options.hosts.is_empty()
            && let Some(hosts) = self.hosts.take()
        {
            self.options.hosts = hosts;
        }
        if self.options.path_prefixes.is_empty()
            && let Some(prefixes) = self.path_prefixes.take()
        {
            self.options.path_prefixes = prefixes;
        }
        self.options.normalize();
    }
}

fn cookie_value<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

fn is_websocket<B>(req: &Request<B>) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && is_upgrade(req)
}

/// The host a request is for, port removed: its `Host` header, else its URI's authority
/// (HTTP/2 and HTTP/3 send `:authority`).
pub fn request_host<B>(req: &Request<B>) -> &str {
    host_of(req.headers().get(header::HOST), req.uri())
}

/// [`request_host`] from a request's parts.
pub fn host_of<'a>(host_header: Option<&'a HeaderValue>, uri: &'a http::Uri) -> &'a str {
    let raw = host_header
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str))
        .unwrap_or_default();
    host_without_port(raw)
}

fn redirect(location: &str, method: &Method) -> Response<Body> {
    let text = if *method == Method::GET || *method == Method::HEAD {
        format!("<a href=\"{location}\">Moved Permanently</a>.\n\n")
    } else {
        String::new()
    };
    let mut builder = Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::CONNECTION, "close");
    if let Ok(v) = HeaderValue::from_str(location) {
        builder = builder.header(header::LOCATION, v);
    }
    if !text.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "text/html; charset=utf-8");
    }
    builder
        .body(body::full(text))
        .unwrap_or_else(|_| proxy_error(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// Rewrites one `Set-Cookie` value's `Path` under `prefix` when its domain is empty or `host`.
pub fn scope_cookie(value: &str, prefix: &str, host: &str) -> String {
    let mut parts: Vec<String> = value.split(';').map(|p| p.trim().to_string()).collect();
    let domain = parts.iter().skip(1).find_map(|p| {
        p.split_once('=')
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case("domain"))
            .map(|(_, v)| v.trim().trim_start_matches('.').to_ascii_lowercase())
    });
    if let Some(domain) = domain
        && !domain.is_empty()
        && domain != host.to_ascii_lowercase()
    {
        return value.to_string();
    }
    let mut found = false;
    for part in parts.iter_mut().skip(1) {
        if let Some((k, v)) = part.split_once('=')
            && k.trim().eq_ignore_ascii_case("path")
        {
            *part = format!("Path={}", join_path(prefix, v.trim()));
            found = true;
        }
    }
    if !found {
        parts.push(format!("Path={prefix}"));
    }
    parts.join("; ")
}

fn join_path(prefix: &str, path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        prefix.to_string()
    } else {
        format!("{}/{trimmed}", prefix.trim_end_matches('/'))
    }
}

impl Service {
    pub fn new(name: &str, slots: Slots, pause: PauseSnapshot) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            effective_tls: AtomicBool::new(slots.options.tls_enabled),
            effective_redirect: AtomicBool::new(slots.options.tls_redirect),
            inner: RwLock::new(Arc::new(slots)),
            pause: PauseController::new(pause),
        })
    }

    pub fn slots(&self) -> Arc<Slots> {
        self.inner
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    pub fn options(&self) -> ServiceOptions {
        self.inner
            .read()
            .map(|s| s.options.clone())
            .unwrap_or_default()
    }

    pub fn certificate(&self) -> Option<Arc<CertifiedKey>> {
        self.inner.read().ok()?.certificate.clone()
    }

    pub fn pages(&self) -> Option<Arc<ErrorPages>> {
        self.inner.read().ok()?.pages.clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Slots)) {
        if let Ok(mut guard) = self.inner.write() {
            let mut slots = Slots::clone(&guard);
            f(&mut slots);
            *guard = Arc::new(slots);
        }
    }

    pub fn set_effective_tls(&self, tls: bool, redirect: bool) {
        self.effective_tls.store(tls, Ordering::SeqCst);
        self.effective_redirect.store(redirect, Ordering::SeqCst);
    }

    pub fn tls_enabled(&self) -> bool {
        self.effective_tls.load(Ordering::SeqCst)
    }

    pub fn to_state(&self) -> ServiceState {
        let slots = self.slots();
        ServiceState {
            name: self.name.clone(),
            options: slots.options.clone(),
            target_options: slots.target_options.clone(),
            active_targets: slots
                .active
                .as_ref()
                .map(|l| l.writer_names())
                .unwrap_or_default(),
            active_readers: slots
                .active
                .as_ref()
                .map(|l| l.reader_names())
                .unwrap_or_default(),
            rollout_targets: slots.rollout.as_ref().map(|l| l.writer_names()),
            rollout_readers: slots.rollout.as_ref().map(|l| l.reader_names()),
            pause_controller: self.pause.snapshot(),
            rollout_controller: slots.rollout_controller.clone(),
            ..ServiceState::default()
        }
    }

    /// Drains both slots (pause and stop).
    pub async fn drain(&self, timeout: Duration) {
        let slots = self.slots();
        let active = slots.active.clone();
        let rollout = slots.rollout.clone();
        let a = async {
            if let Some(lb) = active {
                lb.drain(timeout).await;
            }
        };
        let r = async {
            if let Some(lb) = rollout {
                lb.drain(timeout).await;
            }
        };
        tokio::join!(a, r);
    }

    /// TLS-only rejection and the HTTPS / canonical-host redirect.
    fn tls_and_redirects(
        &self,
        req: &Request<Body>,
        options: &ServiceOptions,
        host: &str,
        conn: &ConnInfo,
    ) -> Option<Response<Body>> {
        let tls = self.tls_enabled();
        if conn.tls && !tls {
            return Some(proxy_error(StatusCode::SERVICE_UNAVAILABLE, ""));
        }
        let want_https = tls && self.effective_redirect.load(Ordering::SeqCst) && !conn.tls;
        let canonical = !options.canonical_host.is_empty() && options.canonical_host != host;
        if (!want_https && !canonical) || req.extensions().get::<InternalRequest>().is_some() {
            return None;
        }
        let scheme = if want_https { "https" } else { conn.scheme() };
        let target_host = if canonical {
            options.canonical_host.as_str()
        } else {
            host
        };
        let uri = req
            .uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        Some(redirect(
            &format!("{scheme}://{target_host}{uri}"),
            req.method(),
        ))
    }

    /// Writer-affinity cookie and cookie path scoping on the way out.
    fn finish_response(
        response: &mut Response<Body>,
        lb: &LoadBalancer,
        read: bool,
        scope: Option<(&str, &str)>,
    ) {
        let opt_out = response
            .headers_mut()
            .remove(http::HeaderName::from_static("x-writer-affinity"))
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"false"));
        if lb.affinity_enabled() && !read && !opt_out {
            let expiry = SystemTime::now() + lb.writer_affinity_timeout;
            let cookie = format!(
                "{WRITER_COOKIE}={}; Path=/; Expires={}; HttpOnly",
                crate::timefmt::unix_millis(expiry),
                crate::timefmt::http_date(expiry + Duration::from_secs(1))
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        let Some((prefix, host)) = scope else {
            return;
        };
        let cookies: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if cookies.is_empty() {
            return;
        }
        response.headers_mut().remove(header::SET_COOKIE);
        for cookie in cookies {
            if let Ok(v) = HeaderValue::from_str(&scope_cookie(&cookie, prefix, host)) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }

    /// Serves a request for `host` routed to this service under `prefix`; with the response, the
    /// target it went to (none when it was answered here).
    pub async fn serve(
        &self,
        mut req: Request<Body>,
        prefix: &str,
        host: &str,
        conn: &ConnInfo,
    ) -> (Response<Body>, Option<Arc<Target>>) {
        let slots = self.slots();
        let options = &slots.options;
        if let Some(response) = self.tls_and_redirects(&req, options, host, conn) {
            return (response, None);
        }

        // The path without the prefix, when stripping changes it.
        let stripped = if options.strip_prefix && prefix != "/" {
            let path = req.uri().path();
            match path.strip_prefix(prefix) {
                Some("") => Some("/".to_string()),
                Some(rest) => Some(rest.to_string()),
                None => None,
            }
        } else {
            None
        };

        if self.pause.state() != PauseState::Running
            && (req.method() == Method::GET || req.method() == Method::HEAD)
            && stripped.as_deref().unwrap_or(req.uri().path())
                == slots.target_options.health_check_config.path
        {
            let mut ok = Response::new(body::empty());
            *ok.status_mut() = StatusCode::OK;
            return (ok, None);
        }
        match self.pause.wait().await {
            WaitResult::Proceed => {}
            WaitResult::Stopped(message) => {
                return (proxy_error(StatusCode::SERVICE_UNAVAILABLE, &message), None);
            }
            WaitResult::TimedOut => return (proxy_error(StatusCode::GATEWAY_TIMEOUT, ""), None),
        }

        if let Some(stripped) = stripped {
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            if let Ok(uri) = format!("{stripped}{query}").parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }

        let rollout_cookie = cookie_value(&req, ROLLOUT_COOKIE);
        let websocket = is_websocket(&req);
        let upgrade = is_upgrade(&req);
        let affinity = cookie_value(&req, WRITER_COOKIE)
            .and_then(|v| v.parse::<u128>().ok())
            .is_some_and(|expiry| expiry > crate::timefmt::unix_millis(SystemTime::now()));
        // A deploy may swap the load balancer and start draining the old targets between our
        // snapshot and the claim; then the claim fails and the choice is made again from the
        // current slots, so a switch never turns into a 503.
        let mut chosen = None;
        for _ in 0..3 {
            let current = self.slots();
            let use_rollout = current.rollout.is_some()
                && current
                    .rollout_controller
                    .as_ref()
                    .is_some_and(|rc| rc.use_rollout(rollout_cookie.as_deref()));
            let lb = if use_rollout {
                current.rollout.clone()
            } else {
                current.active.clone()
            };
            let Some(lb) = lb else {
                return (proxy_error(StatusCode::SERVICE_UNAVAILABLE, ""), None);
            };
            let read = (req.method() == Method::GET || req.method() == Method::HEAD)
                && (!websocket || lb.read_targets_accept_websockets);
            let Some(target) = lb.choose(read, affinity) else {
                return (proxy_error(StatusCode::SERVICE_UNAVAILABLE, ""), None);
            };
            if let Some(claim) = target.claim(upgrade) {
                chosen = Some((lb, read, target, claim));
                break;
            }
        }
        let Some((lb, read, target, claim)) = chosen else {
            return (proxy_error(StatusCode::SERVICE_UNAVAILABLE, ""), None);
        };

        let mut response = target.proxy(claim, req, &slots.target_options, conn).await;
        let scope =
            (slots.target_options.scope_cookie_paths && prefix != "/").then_some((prefix, host));
        Self::finish_response(&mut response, &lb, read, scope);
        (response, Some(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_scope_test_paths() {
        assert_eq!(
            scope_cookie("a=1; Path=/", "/api", "x.com"),
            "a=1; Path=/api"
        );
        assert_eq!(
            scope_cookie("a=1; Path=/something", "/api", "x.com"),
            "a=1; Path=/api/something"
        );
        assert_eq!(scope_cookie("a=1", "/api", "x.com"), "a=1; Path=/api");
    }

    #[test]
    fn cookie_scope_test_domains() {
        assert_eq!(
            scope_cookie("a=1; Domain=x.com; Path=/", "/api", "x.com"),
            "a=1; Domain=x.com; Path=/api"
        );
        assert_eq!(
            scope_cookie("a=1; Domain=other.com; Path=/", "/api", "x.com"),
            "a=1; Domain=other.com; Path=/"
        );
        assert_eq!(
            scope_cookie("a=1; Domain=x.com; Path=/", "/api", "sub.x.com"),
            "a=1; Domain=x.com; Path=/"
        );
        assert_eq!(
            scope_cookie("a=1; Domain=sub.x.com; Path=/", "/api", "x.com"),
            "a=1; Domain=sub.x.com; Path=/"
        );
    }
}
