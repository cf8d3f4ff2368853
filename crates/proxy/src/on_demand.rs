//! The on-demand TLS URL (`--tls-on-demand-url`): its validation, with kamal-proxy's errors, and
//! the check URL asked about a host (`?host=<name>`, the query re-encoded in sorted order).

use std::collections::BTreeMap;
use std::fmt::Write as _;

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
