//! One upstream `host:port`: its health state, the count of in-flight requests used for draining,
//! and forwarding a request to it (headers, buffering, timeouts, upgrades, streaming).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::body::{self, Body, ErrorFlagBody, GuardedBody};
use crate::buffer;
use crate::options::TargetOptions;
use crate::pages::proxy_error;
use crate::upstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Adding,
    Healthy,
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adding => "adding",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// What the server knows about the inbound connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub tls: bool,
    pub port: u16,
    /// `client_ip` as text, rendered once for the connection's requests.
    client_ip_text: IpText,
    /// The same text as a header value (`X-Forwarded-For` of a request that brought none).
    client_ip_value: HeaderValue,
}

impl ConnInfo {
    pub fn new(client_ip: IpAddr, client_port: u16, tls: bool, port: u16) -> Self {
        let client_ip_text = IpText::new(client_ip);
        Self {
            client_ip,
            client_port,
            tls,
            port,
            client_ip_text,
            client_ip_value: HeaderValue::from_str(client_ip_text.as_str())
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        }
    }

    /// The client address as text, as rendered when the connection was accepted.
    pub fn client_ip_str(&self) -> &str {
        self.client_ip_text.as_str()
    }

    /// The client address as rendered when the connection was accepted, to keep.
    pub fn client_ip_rendered(&self) -> IpText {
        self.client_ip_text
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The client address as text (`IpAddr`'s `Display`).
    pub fn client_ip_text(&self) -> String {
        self.client_ip_str().to_string()
    }
}

/// An address as text (`IpAddr`'s `Display`) in a buffer on the stack; IPv4 without the
/// formatter.
#[derive(Debug, Clone, Copy)]
pub struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    pub fn new(ip: IpAddr) -> Self {
        let mut text = Self {
            buf: [0; 48],
            len: 0,
        };
        match ip {
            IpAddr::V4(ip) => {
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.buf[text.len] = b'.';
                        text.len += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    for &digit in digits.format(octet).as_bytes() {
                        text.buf[text.len] = digit;
                        text.len += 1;
                    }
                }
            }
            IpAddr::V6(ip) => {
                use std::io::Write;
                let mut rest = &mut text.buf[..];
                let _ = write!(rest, "{ip}");
                let left = rest.len();
                text.len = text.buf.len() - left;
            }
        }
        text
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The tokens that cancel a target's requests in flight: `all` every request, `hijacked` (a child
/// of `all`) the upgraded connections only. A drain cancels them; the next claims get new ones.
#[derive(Debug, Clone)]
struct Cancels {
    all: CancellationToken,
    hijacked: CancellationToken,
}

impl Cancels {
    fn new() -> Self {
        let all = CancellationToken::new();
        let hijacked = all.child_token();
        Self { all, hijacked }
    }
}

/// One thread's share of a target's requests in flight, on a cache line of its own: their count,
/// and the target's tokens (the same in every shard) behind a lock no other thread takes to claim.
#[derive(Debug)]
#[repr(align(64))]
struct InflightShard {
    count: AtomicUsize,
    cancels: Mutex<Cancels>,
}

fn inflight_shards() -> Box<[InflightShard]> {
    let cancels = Cancels::new();
    (0..crate::shard::SHARDS)
        .map(|_| InflightShard {
            count: AtomicUsize::new(0),
            cancels: Mutex::new(cancels.clone()),
        })
        .collect()
}

#[derive(Debug)]
pub struct Target {
    pub address: String,
    /// `address` as a header value (`X-Kamal-Target`), made once.
    address_value: Option<HeaderValue>,
    /// `address` parsed once: the key of its pooled connections (`None` if it is no valid
    /// authority).
    authority: Option<Authority>,
    health: Mutex<HealthState>,
    draining: AtomicBool,
    /// Drains in progress (each waits for `inflight_changed`).
    drains: AtomicUsize,
    /// Requests in flight, by the thread that claimed them.
    inflight: Box<[InflightShard]>,
    inflight_changed: Notify,
}

/// A request registered on a target: the guard keeps it counted, the token cancels it.
#[derive(Debug)]
pub struct Claim {
    guard: InflightGuard,
    cancel: CancellationToken,
}

/// Keeps a request registered on its target until dropped.
#[derive(Debug)]
pub struct InflightGuard {
    target: Arc<Target>,
    /// The shard the request was claimed in (the task may be dropped on another thread).
    shard: usize,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.target.inflight[self.shard]
            .count
            .fetch_sub(1, Ordering::SeqCst);
        // Only a drain waits for the count to change. It registers before it counts, so a
        // removal that sees no drain waiting is already visible to that count.
        if self.target.drains.load(Ordering::SeqCst) > 0 {
            self.target.inflight_changed.notify_waiters();
        }
    }
}

/// Counts a drain as waiting until it ends or is dropped.
struct DrainRegistration<'a>(&'a AtomicUsize);

impl Drop for DrainRegistration<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the legacy ones), never forwarded; `Upgrade` too
/// (an upgrade is forwarded by setting it again).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether `name` is one of [`HOP_BY_HOP`]: most names are ruled out by their length alone.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(name.as_str().len(), 2 | 7 | 10 | 16..=19) && HOP_BY_HOP.contains(name)
}

/// Removes the hop-by-hop headers and those `Connection` lists; whether there were any.
fn remove_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // Most messages carry none: one pass over their names, no lookups.
    if !headers.keys().any(is_hop_by_hop) {
        return false;
    }
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    true
}

pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

impl Target {
    pub fn new(address: &str) -> Arc<Self> {
        let address = crate::options::target_with_port(address);
        Arc::new(Self {
            authority: address.parse().ok(),
            address_value: HeaderValue::from_str(&address).ok(),
            address,
            health: Mutex::new(HealthState::Adding),
            draining: AtomicBool::new(false),
            drains: AtomicUsize::new(0),
            inflight: inflight_shards(),
            inflight_changed: Notify::new(),
        })
    }

    /// The address as it was given (used in `list` and state).
    pub fn health(&self) -> HealthState {
        self.health.lock().map_or(HealthState::Adding, |s| *s)
    }

    /// Applies a check result; returns the new state when it changed.
    pub fn record_check(&self, ok: bool) -> Option<HealthState> {
        let Ok(mut state) = self.health.lock() else {
            return None;
        };
        let next = match (*state, ok) {
            (_, true) => HealthState::Healthy,
            (HealthState::Adding, false) => HealthState::Adding,
            (_, false) => HealthState::Unhealthy,
        };
        if next == *state {
            None
        } else {
            *state = next;
            Some(next)
        }
    }

    pub fn mark_healthy(&self) {
        if let Ok(mut state) = self.health.lock() {
            *state = HealthState::Healthy;
        }
    }

    pub fn inflight_count(&self) -> usize {
        self.inflight
            .iter()
            .map(|shard| shard.count.load(Ordering::SeqCst))
            .sum()
    }

    /// Cancels the requests in flight (only the hijacked ones with `hijacked_only`).
    fn cancel_inflight(&self, hijacked_only: bool) {
        if let Ok(cancels) = self.inflight[0].cancels.lock() {
            if hijacked_only {
                cancels.hijacked.cancel();
            } else {
                cancels.all.cancel();
            }
        }
    }

    /// Registers a request on this target; `None` while the target is draining.
    pub fn claim(self: &Arc<Self>, hijacked: bool) -> Option<Claim> {
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        let shard = crate::shard::index();
        let cancel = {
            let cancels = self.inflight[shard].cancels.lock().ok()?;
            if hijacked {
                cancels.hijacked.clone()
            } else {
                cancels.all.clone()
            }
        };
        self.inflight[shard].count.fetch_add(1, Ordering::SeqCst);
        Some(Claim {
            guard: InflightGuard {
                target: Arc::clone(self),
                shard,
            },
            cancel,
        })
    }

    /// Drains: hijacked connections are cancelled at once, other requests get up to `timeout`
    /// to finish and are then cancelled (their clients get a 504). Returns `false` when the
    /// timeout ran out and requests had to be cancelled.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.drains.fetch_add(1, Ordering::SeqCst);
        let _registered = DrainRegistration(&self.drains);
        self.draining.store(true, Ordering::SeqCst);
        self.cancel_inflight(true);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut completed = true;
        loop {
            let notified = self.inflight_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inflight_count() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                self.cancel_inflight(false);
                completed = false;
                break;
            }
        }
        // Requests claimed from now on are not born cancelled.
        let renewed = Cancels::new();
        for shard in &self.inflight {
            if let Ok(mut cancels) = shard.cancels.lock() {
                *cancels = renewed.clone();
            }
        }
        self.draining.store(false, Ordering::SeqCst);
        completed
    }

    /// Forwards `req` (path already stripped) to this target, under a claim made on it.
    pub async fn proxy(
        self: &Arc<Self>,
        claim: Claim,
        mut req: Request<Body>,
        options: &TargetOptions,
        conn: &ConnInfo,
    ) -> Response<Body> {
        let upgrade = is_upgrade(&req);
        let Claim { guard, cancel } = claim;
        let upgrade_value = upgrade
            .then(|| req.headers().get(header::UPGRADE).cloned())
            .flatten();
        self.prepare_headers(&mut req, options, conn);
        if let Some(value) = upgrade_value {
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            req.headers_mut().insert(header::UPGRADE, value);
        }

        // Origin form (`/path?query`), or authority form for `CONNECT`: the connection is to
        // the target already.
        let Some(authority) = &self.authority else {
            return proxy_error(StatusCode::BAD_REQUEST, "");
        };
        *req.uri_mut() = forwarded_uri(&req, authority);
        *req.version_mut() = http::Version::HTTP_11;

        let inbound_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let body_failed = Arc::new(AtomicBool::new(false));
        let req = if upgrade {
            req
        } else if options.buffer_requests {
            let (parts, incoming) = req.into_parts();
            match buffer::buffer_body(incoming, options.memory_limit(), options.request_limit())
                .await
            {
                Ok(buffered) => Request::from_parts(parts, buffered),
                Err(buffer::BufferError::TooLarge) => {
                    return proxy_error(StatusCode::PAYLOAD_TOO_LARGE, "");
                }
                Err(buffer::BufferError::Read(_)) => {
                    return proxy_error(StatusCode::BAD_REQUEST, "");
                }
                Err(buffer::BufferError::Io(_)) => {
                    return proxy_error(StatusCode::INTERNAL_SERVER_ERROR, "");
                }
            }
        } else if req.body().is_end_stream() {
            // Nothing to read, nothing that can fail: no wrapper.
            req
        } else {
            let flag = Arc::clone(&body_failed);
            req.map(|b| body::boxed(ErrorFlagBody::new(b, flag)))
        };

        let send = tokio::time::timeout(options.response_timeout.0, upstream::send(authority, req));
        let result = tokio::select! {
            r = send => r,
            () = cancel.cancelled() => {
                return proxy_error(StatusCode::GATEWAY_TIMEOUT, "");
            }
        };
        let mut response = match result {
            Err(_) => return proxy_error(StatusCode::GATEWAY_TIMEOUT, ""),
            Ok(Err(_)) if body_failed.load(Ordering::SeqCst) => {
                return proxy_error(StatusCode::BAD_REQUEST, "");
            }
            Ok(Err(_)) => return proxy_error(StatusCode::BAD_GATEWAY, ""),
            Ok(Ok(response)) => response,
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(inbound) = inbound_upgrade {
                let outbound = hyper::upgrade::on(&mut response);
                tokio::spawn(async move {
                    let _guard = guard;
                    let (Ok(inbound), Ok(outbound)) = (inbound.await, outbound.await) else {
                        return;
                    };
                    let mut inbound = TokioIo::new(inbound);
                    let mut outbound = TokioIo::new(outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cancel.cancelled() => {}
                    }
                });
                let (parts, _) = response.into_parts();
                return Response::from_parts(parts, body::empty());
            }
            return proxy_error(StatusCode::BAD_GATEWAY, "");
        }

        let (mut parts, incoming) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        let upstream_body = body::boxed(incoming);
        if options.buffer_responses && !is_streaming(&parts.headers) {
            let buffered = tokio::select! {
                r = buffer::buffer_body(upstream_body, options.memory_limit(), options.response_limit()) => r,
                () = cancel.cancelled() => return proxy_error(StatusCode::GATEWAY_TIMEOUT, ""),
            };
            return match buffered {
                Ok(b) => Response::from_parts(parts, b),
                Err(_) => proxy_error(StatusCode::INTERNAL_SERVER_ERROR, ""),
            };
        }
        let guarded = GuardedBody::new(upstream_body, cancel, guard);
        Response::from_parts(parts, body::boxed(guarded))
    }

    fn prepare_headers(&self, req: &mut Request<Body>, options: &TargetOptions, conn: &ConnInfo) {
        let host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let headers = req.headers_mut();
        // A single Host stays where it is unless `Connection` listed it.
        let removed = remove_hop_by_hop(headers);
        let mut hosts = headers.get_all(header::HOST).iter();
        let single_host = hosts.next().is_some() && hosts.next().is_none();
        if (removed || !single_host)
            && let Some(host) = &host
        {
            headers.insert(header::HOST, host.clone());
        }
        let client_ip = conn.client_ip_str();
        let forwarded_for = HeaderName::from_static("x-forwarded-for");
        let forwarded_proto = HeaderName::from_static("x-forwarded-proto");
        let forwarded_host = HeaderName::from_static("x-forwarded-host");
        let kamal_target = HeaderName::from_static("x-kamal-target");
        let joined = |headers: &HeaderMap, name: &HeaderName| -> Option<String> {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        };
        let set = |headers: &mut HeaderMap, name: &HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), v);
            }
        };
        if options.forward_headers {
            match joined(headers, &forwarded_for) {
                Some(prior) => set(headers, &forwarded_for, &format!("{prior}, {client_ip}")),
                None => {
                    headers.insert(forwarded_for.clone(), conn.client_ip_value.clone());
                }
            }
            if !headers.contains_key(&forwarded_proto) {
                headers.insert(
                    forwarded_proto.clone(),
                    HeaderValue::from_static(conn.scheme()),
                );
            }
            if !headers.contains_key(&forwarded_host)
                && let Some(host) = &host
            {
                headers.insert(forwarded_host.clone(), host.clone());
            }
            match (joined(headers, &kamal_target), &self.address_value) {
                (Some(prior), _) => {
                    set(headers, &kamal_target, &format!("{prior},{}", self.address));
                }
                (None, Some(address)) => {
                    headers.insert(kamal_target.clone(), address.clone());
                }
                (None, None) => set(headers, &kamal_target, &self.address),
            }
        } else {
            headers.insert(forwarded_for.clone(), conn.client_ip_value.clone());
            headers.insert(
                forwarded_proto.clone(),
                HeaderValue::from_static(conn.scheme()),
            );
            // Inserting replaces every value there was.
            if let Some(host) = host {
                headers.insert(forwarded_host.clone(), host);
            } else {
                headers.remove(&forwarded_host);
            }
            match &self.address_value {
                Some(address) => {
                    headers.insert(kamal_target.clone(), address.clone());
                }
                None => set(headers, &kamal_target, &self.address),
            }
        }
    }
}

/// The URI a request is sent to its target with: origin form (`/path?query`), or authority form
/// for `CONNECT`.
fn forwarded_uri(req: &Request<Body>, authority: &Authority) -> Uri {
    if req.method() == Method::CONNECT {
        Uri::from(authority.clone())
    } else {
        match req.uri().path_and_query() {
            Some(path) if path.as_str() != "/" => Uri::from(path.clone()),
            _ => Uri::default(),
        }
    }
}

/// Responses that bypass the response buffer: event streams and bodies without a length.
pub fn is_streaming(headers: &HeaderMap) -> bool {
    let event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        });
    event_stream || !headers.contains_key(header::CONTENT_LENGTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_text_is_the_display_form() {
        for ip in [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "2001:db8::17",
        ] {
            let conn = ConnInfo::new(ip.parse().unwrap(), 1234, false, 80);
            assert_eq!(conn.client_ip_text(), ip);
        }
    }

    #[test]
    fn hop_by_hop_names_are_told_from_others() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "host",
            "user-agent",
            "accept",
            "content-length",
            "x-forwarded-proto",
            "x-forwarded-for",
            "proxy-connections",
            "tea",
            "trailers",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_lists_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic eA=="),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-secret-hop", "1"),
            ("x-kept", "2"),
            ("content-type", "text/plain"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);

        // Nothing to remove: nothing changes.
        let mut plain = HeaderMap::new();
        plain.insert(header::HOST, HeaderValue::from_static("example.com"));
        plain.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let before = plain.clone();
        remove_hop_by_hop(&mut plain);
        assert_eq!(plain, before);
    }
}
