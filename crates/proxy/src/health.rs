//! HTTP health checks: GET the check path on a target (any 2xx, redirects followed, per-check timeout).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type CheckClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> CheckClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

/// `http://<host>:<port><path>` for a target `host[:port]`, with an optional port override.
pub fn check_url(target: &str, port: u16, path: &str) -> String {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    let target_port = target.rsplit_once(':').map_or("80", |(_, p)| p).to_string();
    let port = if port == 0 {
        target_port
    } else {
        port.to_string()
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("http://{host}:{port}{path}")
}

/// Performs one check. `Ok` on a 2xx; the error text otherwise.
pub async fn check(
    client: &CheckClient,
    url: &str,
    host: &str,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, check_following(client, url, host)).await {
        Ok(result) => result,
        Err(_) => Err("context deadline exceeded".to_string()),
    }
}

async fn check_following(client: &CheckClient, url: &str, host: &str) -> Result<(), String> {
    let mut uri: Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
    for _ in 0..=10 {
        let mut builder = Request::get(uri.clone()).header(header::USER_AGENT, "kamal-proxy");
        if !host.is_empty() {
            builder = builder.header(header::HOST, host);
        }
        let request = builder.body(Empty::new()).map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                msg = format!("{msg}: {inner}");
                source = inner.source();
            }
            msg
        })?;
        let status = response.status();
        let location = response.headers().get(header::LOCATION).cloned();
        let _ = response.into_body().collect().await;
        if status.is_redirection()
            && status != StatusCode::NOT_MODIFIED
            && let Some(location) = location.and_then(|l| l.to_str().ok().map(str::to_string))
        {
            uri = resolve(&uri, &location)?;
            continue;
        }
        if status.is_success() {
            return Ok(());
        }
        return Err(format!("unexpected status {}", status.as_u16()));
    }
    Err("stopped after 10 redirects".to_string())
}

fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().map_err(|e| format!("{e}"));
    }
    let authority = base
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let base_path = base.path();
        let dir = base_path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("http://{authority}{path}")
        .parse()
        .map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_test_health_check_url() {
        assert_eq!(check_url("web:3000", 0, "/up"), "http://web:3000/up");
        assert_eq!(check_url("web:3000", 4000, "/up"), "http://web:4000/up");
        assert_eq!(check_url("web", 0, "/up"), "http://web:80/up");
        assert_eq!(
            check_url("web:80", 0, "web/index.html"),
            "http://web:80/web/index.html"
        );
    }
}
