//! Error pages for the statuses the proxy produces itself: the built-in pages (404, 413, 502, 503,
//! 504, a generic one otherwise) and custom `<status>.html` templates from `--error-pages`.

use std::collections::HashMap;
use std::path::Path;

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{self, Body};
use crate::error::ProxyError;

/// Marks a response as produced by the proxy, so the error-page layer renders it.
#[derive(Debug, Clone)]
pub struct ProxyErrorMarker {
    pub message: String,
}

/// A proxy-produced error response; its page is rendered later with the service's pages.
pub fn proxy_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response.extensions_mut().insert(ProxyErrorMarker {
        message: message.to_string(),
    });
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Custom templates loaded from a directory, keyed by status.
#[derive(Debug, Clone, Default)]
pub struct ErrorPages {
    templates: HashMap<u16, String>,
}

impl ErrorPages {
    /// Loads every `*.html` in `dir`; fails with `unable to load error pages` when there are none
    /// or one does not parse.
    pub fn load(dir: &Path) -> Result<Self, ProxyError> {
        let entries = std::fs::read_dir(dir).map_err(|_| ProxyError::UnableToLoadErrorPages)?;
        let mut templates = HashMap::new();
        let mut found = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("html") {
                continue;
            }
            found = true;
            let text =
                std::fs::read_to_string(&path).map_err(|_| ProxyError::UnableToLoadErrorPages)?;
            check_template(&text)?;
            if let Some(status) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u16>().ok())
            {
                templates.insert(status, text);
            }
        }
        if !found {
            return Err(ProxyError::UnableToLoadErrorPages);
        }
        Ok(Self { templates })
    }

    fn render(&self, status: StatusCode, message: &str) -> Option<String> {
        self.templates
            .get(&status.as_u16())
            .map(|t| render_template(t, status, message))
    }
}

fn check_template(text: &str) -> Result<(), ProxyError> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ProxyError::UnableToLoadErrorPages);
        };
        let action = after[..end].trim().trim_matches('-').trim();
        if action.is_empty() || action.contains("{{") {
            return Err(ProxyError::UnableToLoadErrorPages);
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn render_template(template: &str, status: StatusCode, message: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match after[..end].trim().trim_matches('-').trim() {
            ".Message" => out.push_str(&escape(message)),
            ".StatusCode" | ".Status" => out.push_str(status.as_str()),
            _ => {}
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n<style>\nbody {{ font-family: -apple-system, BlinkMacSystemFont, \"Segoe UI\", Roboto, sans-serif; background: #fff; color: #261b23; margin: 0; display: flex; align-items: center; justify-content: center; min-height: 100vh; }}\nmain {{ max-width: 40em; padding: 2em; text-align: center; }}\nh1 {{ font-size: 1.6em; }}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

/// The built-in page for a status.
pub fn builtin(status: StatusCode, message: &str) -> String {
    match status.as_u16() {
        404 => page(
            "Not found",
            "<h1>404 Not Found</h1>\n<p>The page you were looking for doesn't exist.</p>",
        ),
        413 => page(
            "Request too large",
            "<h1>413 Request Entity Too Large</h1>\n<p>The request was too large to be processed.</p>",
        ),
        502 => page(
            "Bad gateway",
            "<h1>502 Bad Gateway</h1>\n<p>The server was unable to complete your request.</p>",
        ),
        503 => {
            let text = if message.is_empty() {
                "The service is temporarily unavailable. Please try again later.".to_string()
            } else {
                escape(message)
            };
            page(
                "Service temporarily unavailable",
                &format!("<h1>503 Service Unavailable</h1>\n<p>{text}</p>"),
            )
        }
        504 => page(
            "Gateway timeout",
            "<h1>504 Gateway Timeout</h1>\n<p>The server took too long to respond.</p>",
        ),
        _ => format!(
            "<h1>{} {}</h1>",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
    }
}

/// Renders a marked proxy error with the custom pages when they cover the status.
pub fn render(response: &mut Response<Body>, custom: Option<&ErrorPages>) {
    let Some(marker) = response.extensions_mut().remove::<ProxyErrorMarker>() else {
        return;
    };
    let status = response.status();
    let html = custom
        .and_then(|p| p.render(status, &marker.message))
        .unwrap_or_else(|| builtin(status, &marker.message));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(html.len()));
    *response.body_mut() = body::full(html);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(
        mut r: Response<Body>,
        pages: Option<&ErrorPages>,
    ) -> (StatusCode, String, String) {
        render(&mut r, pages);
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let status = r.status();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn error_page_middleware_test_renders_proxy_errors() {
        let (s, ct, body) = text(proxy_error(StatusCode::NOT_FOUND, ""), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(ct, "text/html; charset=utf-8");
        assert!(body.contains("404"));
        let (_, _, body) = text(
            proxy_error(StatusCode::SERVICE_UNAVAILABLE, "Gone to lunch"),
            None,
        )
        .await;
        assert!(body.contains("Gone to lunch"));
        let (_, _, body) = text(proxy_error(StatusCode::IM_A_TEAPOT, ""), None).await;
        assert_eq!(body, "<h1>418 I'm a teapot</h1>");
        let mut backend = Response::new(body::full("mine"));
        *backend.status_mut() = StatusCode::NOT_FOUND;
        let (_, ct, body) = text(backend, None).await;
        assert_eq!((ct.as_str(), body.as_str()), ("", "mine"));
    }

    #[tokio::test]
    async fn error_page_middleware_test_custom_pages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("404.html"), "custom 404").unwrap();
        std::fs::write(dir.path().join("503.html"), "down: {{ .Message }}").unwrap();
        let pages = ErrorPages::load(dir.path()).unwrap();
        let (_, _, body) = text(proxy_error(StatusCode::NOT_FOUND, ""), Some(&pages)).await;
        assert_eq!(body, "custom 404");
        let (_, _, body) = text(
            proxy_error(StatusCode::SERVICE_UNAVAILABLE, "<b>"),
            Some(&pages),
        )
        .await;
        assert_eq!(body, "down: &lt;b&gt;");
        let (_, _, body) = text(proxy_error(StatusCode::BAD_GATEWAY, ""), Some(&pages)).await;
        assert!(body.contains("502 Bad Gateway"));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            ErrorPages::load(empty.path()),
            Err(ProxyError::UnableToLoadErrorPages)
        ));
        std::fs::write(empty.path().join("500.html"), "{{ .Message ").unwrap();
        assert!(matches!(
            ErrorPages::load(empty.path()),
            Err(ProxyError::UnableToLoadErrorPages)
        ));
    }
}
