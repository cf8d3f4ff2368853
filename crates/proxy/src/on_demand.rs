//! Which hosts may get an automatic certificate: a service's own hosts, or, for a service deployed
//! with `--tls-on-demand-url`, any host that the approval check answers 200 for (a GET to an
//! external URL, or a path served by the service itself), hosts with a cached certificate
//! excepted; also the on-demand URL's validation and the check URL (`?host=<name>`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body::Body as HttpBody;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::acme::Issuer;
use crate::body;
use crate::log;
use crate::router::Router;
use crate::service::{InternalRequest, Service};
use crate::target::ConnInfo;

/// How long one approval check may take, answer included.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a denial's body is kept for the log and the error.
pub const MAX_DENIAL_BODY: usize = 256;

/// A parsed `--tls-on-demand-url`: a path on the service itself, or an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Everything before the query (the path, or scheme, authority and path).
    base: String,
    /// The query as given, without `?`.
    query: String,
    local: bool,
}

fn has_control_character(url: &str) -> bool {
    url.bytes().any(|b| b < 0x20 || b == 0x7f)
}

fn has_bad_escape(url: &str) -> bool {
    let bytes = url.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

fn valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl Endpoint {
    /// Validates the URL as kamal-proxy does, with its error texts.
    pub fn parse(url: &str) -> Result<Self, String> {
        let unparsable = |detail: &str| format!("unable to parse tls-on-demand-url: {detail}");
        if url.starts_with("//") {
            return Err("tls-on-demand-url must be a path or an absolute http(s) URL".to_string());
        }
        if has_control_character(url) {
            return Err(unparsable("invalid control character in URL"));
        }
        if has_bad_escape(url) {
            return Err(unparsable("invalid URL escape"));
        }
        let without_fragment = url.split_once('#').map_or(url, |(before, _)| before);
        let (base, query) = without_fragment
            .split_once('?')
            .unwrap_or((without_fragment, ""));
        let endpoint = Self {
            base: base.to_string(),
            query: query.to_string(),
            local: url.starts_with('/'),
        };
        if endpoint.local {
            return Ok(endpoint);
        }
        let Some((scheme, rest)) = base.split_once(':') else {
            return Err(unparsable("invalid URI for request"));
        };
        if scheme.is_empty() {
            return Err(unparsable("missing protocol scheme"));
        }
        if !valid_scheme(scheme) || !rest.starts_with('/') {
            return Err(unparsable("invalid URI for request"));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "unsupported scheme \"{scheme}\" in tls-on-demand-url"
            ));
        }
        let authority = rest
            .strip_prefix("//")
            .map(|r| r.split('/').next().unwrap_or_default())
            .unwrap_or_default();
        let host_and_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, after)| after);
        let host = if host_and_port.starts_with('[') {
            host_and_port
        } else {
            host_and_port
                .split_once(':')
                .map_or(host_and_port, |(h, _)| h)
        };
        if host.is_empty() {
            return Err("missing host in tls-on-demand-url".to_string());
        }
        Ok(endpoint)
    }

    /// Whether the URL is a path routed through the service itself.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// The URL (or path) asked about `host`: `host=<name>` set in the query, the query re-encoded
    /// with its keys in sorted order, other parameters kept.
    pub fn check_url(&self, host: &str) -> String {
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in self.query.split('&').filter(|p| !p.is_empty()) {
            if pair.contains(';') {
                continue;
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(key), Some(value)) = (query_unescape(key), query_unescape(value)) {
                params.entry(key).or_default().push(value);
            }
        }
        params.insert("host".to_string(), vec![host.to_string()]);
        let mut query = String::new();
        for (key, values) in &params {
            for value in values {
                if !query.is_empty() {
                    query.push('&');
                }
                let _ = write!(query, "{}={}", query_escape(key), query_escape(value));
            }
        }
        format!("{}?{query}", self.base)
    }
}

/// Go's `url.QueryEscape`: unreserved characters kept, space as `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` for a bad escape.
fn query_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether the issuer already holds a certificate for `host` (in memory, or in the cache
/// directory as `<host>` or autocert's RSA variant `<host>+rsa`); a trailing dot is ignored.
pub fn has_cached_certificate(issuer: &Issuer, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.contains('/') || host.starts_with('.') {
        return false;
    }
    issuer.cached(host).is_some()
        || [host.to_string(), format!("{host}+rsa")]
            .iter()
            .any(|name| issuer.dir().join(name).is_file())
}

/// Reads at most `limit` bytes of a body, as text.
async fn body_prefix<B>(body: B, limit: usize) -> String
where
    B: HttpBody<Data = Bytes>,
{
    let mut body = Box::pin(body);
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let take = data.len().min(limit - out.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path form: a GET routed through the service itself, `Host` set to the candidate, seen by
/// the target as plain HTTP, with no HTTPS or canonical-host redirect.
async fn probe_service(
    service: &Service,
    endpoint: &Endpoint,
    host: &str,
) -> Result<(u16, String), String> {
    let uri: Uri = endpoint
        .check_url(host)
        .parse()
        .map_err(|e| format!("on-demand check URL: {e}"))?;
    let host_value = HeaderValue::from_str(host).map_err(|e| format!("host {host:?}: {e}"))?;
    let mut req = Request::new(body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    req.headers_mut().insert(header::HOST, host_value);
    req.extensions_mut().insert(InternalRequest);
    let conn = ConnInfo::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, false, 0);
    let (response, _) = service.serve(req, "/", host, &conn).await;
    Ok(answer(response).await)
}

/// A check's answer: its status, and for a denial the start of its body.
async fn answer<B: HttpBody<Data = Bytes>>(response: http::Response<B>) -> (u16, String) {
    let status = response.status().as_u16();
    let text = if status == 200 {
        String::new()
    } else {
        body_prefix(response.into_body(), MAX_DENIAL_BODY).await
    };
    (status, text)
}

fn client_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| rustls::ClientConfig::builder())
                .with_root_certificates(roots)
                .with_no_client_auth()
        })
        .clone()
}

/// The URL form: a GET to the URL, redirects not followed.
async fn probe_url(endpoint: &Endpoint, host: &str) -> Result<(u16, String), String> {
    let url = endpoint.check_url(host);
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("on-demand check URL {url}: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config())
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let response = client
        .get(uri)
        .await
        .map_err(|e| format!("on-demand check {url}: {e}"))?;
    Ok(answer(response).await)
}

/// Asks the endpoint about `host` (within [`CHECK_TIMEOUT`]); only a 200 approves. A denial is
/// logged with its status and up to [`MAX_DENIAL_BODY`] bytes of its body.
pub async fn check(service: &Service, endpoint: &Endpoint, host: &str) -> Result<(), String> {
    let probe = async {
        if endpoint.is_local() {
            probe_service(service, endpoint, host).await
        } else {
            probe_url(endpoint, host).await
        }
    };
    let (status, text) = tokio::time::timeout(CHECK_TIMEOUT, probe)
        .await
        .map_err(|_| format!("TLS on-demand check for {host} timed out"))??;
    if status == 200 {
        return Ok(());
    }
    if log::active() {
        log::emit_line(log::line(
            "WARN",
            "TLS on-demand check denied host",
            &[
                ("host", host.into()),
                ("status", status.into()),
                ("body", text.as_str().into()),
            ],
        ));
    }
    Err(format!(
        "{host} is not allowed to get a certificate (status: {status}, body: {text:?})"
    ))
}

/// For a TLS handshake naming `host`: the issuer to obtain its certificate from, when the host's
/// root-path service has automatic TLS and the host may have a certificate (one of the service's
/// hosts, or approved by the on-demand check).
pub async fn approve(router: &Router, host: &str) -> Result<Arc<Issuer>, String> {
    let service = router
        .root_service(host)
        .ok_or_else(|| format!("no service for {host}"))?;
    let slots = service.slots();
    if !service.tls_enabled() || slots.certificate.is_some() {
        return Err(format!("{host} has no automatic TLS"));
    }
    let issuer = slots
        .acme
        .clone()
        .ok_or_else(|| format!("{host} has no automatic TLS"))?;
    let url = &slots.options.tls_on_demand_url;
    if url.is_empty() {
        // Only the service's own (exact) hosts get certificates.
        return if slots.options.hosts.iter().any(|h| h == host) {
            Ok(issuer)
        } else {
            Err(format!("{host} is not one of the service's hosts"))
        };
    }
    if has_cached_certificate(&issuer, host) {
        return Ok(issuer);
    }
    let endpoint = Endpoint::parse(url)?;
    check(&service, &endpoint, host).await?;
    Ok(issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(query_escape("a b/c:d~"), "a+b%2Fc%3Ad~");
        assert_eq!(query_unescape("a+b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(query_unescape("%zz"), None);
    }
}
