//! The one GitHub REST client: builds octocrab (base URI from `GITHUB_API_URL`, bearer token,
//! `X-GitHub-Api-Version: 2022-11-28`), sends JSON requests with bounded retries on 5xx and rate
//! limits, follows pagination, and turns failures into [`ApiError`]s that name the endpoint and
//! status and carry a redacted body, never the token.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dhow_core::Secret;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use crate::context::Repository;

/// A failed GitHub API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// GitHub answered with an unexpected status.
    #[error("GitHub API {endpoint} answered {status}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
        /// The response body, redacted and cut to a few hundred characters.
        body: String,
        /// `X-Accepted-GitHub-Permissions`: the permission the endpoint wants.
        accepted_permissions: Option<String>,
    },
    /// The request did not get an HTTP answer.
    #[error("GitHub API {endpoint}: request failed: {message}")]
    Transport { endpoint: String, message: String },
    /// The answer was not the JSON the endpoint documents.
    #[error("GitHub API {endpoint}: unexpected response body: {message}")]
    Decode { endpoint: String, message: String },
    /// The client could not be built.
    #[error("cannot set up the GitHub client for {api_url:?}: {message}")]
    Setup { api_url: String, message: String },
}

impl ApiError {
    /// The HTTP status, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for the 403 a read-only token (fork pull requests, Dependabot) gets on writes:
    /// callers degrade to a warning.
    pub fn is_forbidden_for_integration(&self) -> bool {
        matches!(self, Self::Status { status: 403, message, .. }
            if message.contains("Resource not accessible by integration"))
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: u32,
    /// Backoff before the second attempt after a 5xx or transport error; doubles each time.
    pub base_delay: Duration,
    /// The longest single wait; a rate limit that resets later than this fails at once.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(90),
        }
    }
}

/// Why a response may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    ServerError,
    RateLimited,
    Transport,
}

/// How long to wait before retrying a response with `status` and `headers` after `attempt`
/// (1-based) attempts, or `None` when it must not be retried. `now_epoch` is the current Unix
/// time, for `x-ratelimit-reset`. `body` is checked for GitHub's secondary-rate-limit message.
pub fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now_epoch: u64,
) -> Option<(Duration, RetryReason)> {
    if attempt >= policy.max_attempts {
        return None;
    }
    let header_u64 = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let rate_limited = status == 429
        || (status == 403
            && (headers.contains_key("retry-after")
                || header_u64("x-ratelimit-remaining") == Some(0)
                || body.contains("secondary rate limit")));
    if rate_limited {
        let wait = if let Some(secs) = header_u64("retry-after") {
            Duration::from_secs(secs)
        } else if header_u64("x-ratelimit-remaining") == Some(0)
            && let Some(reset) = header_u64("x-ratelimit-reset")
        {
            Duration::from_secs(reset.saturating_sub(now_epoch))
        } else {
            // GitHub asks to wait at least a minute after a secondary limit without headers.
            Duration::from_secs(60)
        };
        return (wait <= policy.max_delay).then_some((wait, RetryReason::RateLimited));
    }
    if matches!(status, 500 | 502 | 503 | 504) {
        return Some((backoff(policy, attempt), RetryReason::ServerError));
    }
    None
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    policy
        .base_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

/// Percent-encodes one path segment or query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// True when a `Link` header has a `rel="next"` entry.
pub fn has_next_page(headers: &HeaderMap) -> bool {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| part.contains("rel=\"next\""))
}

/// Cuts `text` to `max` characters, adding `…` when it cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The most pages any listing follows.
pub const MAX_PAGES: u32 = 50;

/// A response: status, headers and body text.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// The GitHub client for one repository.
#[derive(Debug, Clone)]
pub struct GitHub {
    octocrab: Octocrab,
    token: Secret<String>,
    repository: Repository,
    retry: RetryPolicy,
}

impl GitHub {
    /// Builds the client. `api_url` is `GITHUB_API_URL` (`https://api.github.com`, or
    /// `https://HOST/api/v3` on GHES, or the test fake).
    pub fn new(
        api_url: &str,
        token: Secret<String>,
        repository: Repository,
    ) -> Result<Self, ApiError> {
        let setup = |message: String| ApiError::Setup {
            api_url: api_url.to_owned(),
            message,
        };
        let base = api_url.trim_end_matches('/');
        let octocrab = Octocrab::builder()
            .base_uri(base)
            .map_err(|e| setup(e.to_string()))?
            .personal_token(token.expose().clone())
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            )
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            octocrab,
            token,
            repository,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// `/repos/{owner}/{repo}` with both parts encoded.
    pub(crate) fn repo_path(&self) -> String {
        format!(
            "/repos/{}/{}",
            encode(&self.repository.owner),
            encode(&self.repository.name)
        )
    }

    /// Replaces the token anywhere in `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let token = self.token.expose();
        if token.is_empty() {
            text.to_owned()
        } else {
            text.replace(token.as_str(), dhow_core::secret::REDACTED)
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        uri: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, String> {
        let response = match *method {
            Method::GET => self.octocrab._get(uri).await,
            Method::POST => self.octocrab._post(uri, body).await,
            Method::PATCH => self.octocrab._patch(uri, body).await,
            Method::PUT => self.octocrab._put(uri, body).await,
            Method::DELETE => self.octocrab._delete(uri, body).await,
            _ => return Err(format!("unsupported method {method}")),
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Sends a request (retrying 5xx, rate limits and transport errors within the policy) and
    /// returns the final response whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse, ApiError> {
        let endpoint = format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or("")
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(&method, path_and_query, body).await {
                Ok(response) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    match retry_delay(
                        &self.retry,
                        attempt,
                        response.status,
                        &response.headers,
                        &response.body,
                        now,
                    ) {
                        Some((wait, _reason)) => {
                            tokio::time::sleep(wait).await;
                        }
                        None => return Ok(response),
                    }
                }
                Err(message) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ApiError::Transport {
                            endpoint,
                            message: self.redact(&message),
                        });
                    }
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                }
            }
        }
    }

    /// Sends a request and decodes the JSON body of an expected status.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        expected: &[u16],
    ) -> Result<(T, HeaderMap), ApiError> {
        let endpoint = format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or("")
        );
        let response = self.send(method, path_and_query, body).await?;
        self.check_response(&endpoint, &response, expected)?;
        let value = serde_json::from_str(&response.body).map_err(|e| ApiError::Decode {
            endpoint,
            message: e.to_string(),
        })?;
        Ok((value, response.headers))
    }

    /// Sends a request whose answer has no body worth decoding.
    pub async fn request_empty(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        expected: &[u16],
    ) -> Result<(), ApiError> {
        let endpoint = format!(
            "{method} {}",
            path_and_query.split('?').next().unwrap_or("")
        );
        let response = self.send(method, path_and_query, body).await?;
        self.check_response(&endpoint, &response, expected)
    }

    pub(crate) fn check_response(
        &self,
        endpoint: &str,
        response: &RawResponse,
        expected: &[u16],
    ) -> Result<(), ApiError> {
        if expected.contains(&response.status) {
            return Ok(());
        }
        let parsed: Option<serde_json::Value> = serde_json::from_str(&response.body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(serde_json::Value::as_str)
            .map_or_else(
                || {
                    StatusCode::from_u16(response.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("unexpected status")
                        .to_owned()
                },
                str::to_owned,
            );
        Err(ApiError::Status {
            endpoint: endpoint.to_owned(),
            status: response.status,
            message: self.redact(&message),
            body: truncate_chars(&self.redact(&response.body), 500),
            accepted_permissions: response
                .headers
                .get("x-accepted-github-permissions")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }

    /// GETs every page of a list endpoint (`per_page=100`, following `Link: rel="next"` up to
    /// [`MAX_PAGES`]), or stops early once `enough` says the items so far suffice.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        mut enough: impl FnMut(&[T]) -> bool,
    ) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut qs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            qs.push("per_page=100".to_owned());
            qs.push(format!("page={page}"));
            let uri = format!("{path}?{}", qs.join("&"));
            let (batch, headers): (Vec<T>, _) =
                self.request(Method::GET, &uri, None, &[200]).await?;
            items.extend(batch);
            if !has_next_page(&headers) || enough(&items) {
                break;
            }
        }
        Ok(items)
    }
}
