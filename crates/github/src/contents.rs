//! Files in the repository through the contents API (badge publishing): read a file on a
//! branch, create or update it with the current blob SHA (re-reading on a stale SHA, bounded),
//! and create the branch when it does not exist yet.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::{ApiError, GitHub, encode};

/// A file read from the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// The blob SHA, needed to update the file.
    pub sha: String,
    pub content: Vec<u8>,
}

/// What [`GitHub::put_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created {
        commit: String,
    },
    Updated {
        commit: String,
    },
    /// The file already had this content; no commit was made.
    Unchanged,
}

#[derive(Deserialize)]
struct RawContent {
    #[serde(rename = "type")]
    kind: String,
    sha: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct RawCommit {
    commit: RawCommitSha,
}

#[derive(Deserialize)]
struct RawCommitSha {
    sha: String,
}

/// Encodes a repository path: each segment percent-encoded, slashes kept.
fn encode_path(path: &str) -> String {
    path.trim_matches('/')
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// How often `put_file` re-reads after a stale-SHA conflict.
const PUT_ATTEMPTS: u32 = 3;

impl GitHub {
    /// Reads a file on `branch` (the default branch when `None`); `None` when it does not exist.
    pub async fn get_file(
        &self,
        path: &str,
        branch: Option<&str>,
    ) -> Result<Option<RepoFile>, ApiError> {
        let mut uri = format!("{}/contents/{}", self.repo_path(), encode_path(path));
        if let Some(branch) = branch {
            let _ = write!(uri, "?ref={}", encode(branch));
        }
        let endpoint = format!("GET {}", uri.split('?').next().unwrap_or_default());
        let response = self.send(Method::GET, &uri, None).await?;
        if response.status == 404 {
            return Ok(None);
        }
        self.check_response(&endpoint, &response, &[200])?;
        let decode = |message: String| ApiError::Decode {
            endpoint: endpoint.clone(),
            message,
        };
        let raw: RawContent =
            serde_json::from_str(&response.body).map_err(|e| decode(e.to_string()))?;
        if raw.kind != "file" {
            return Err(decode(format!("{path} is a {}, not a file", raw.kind)));
        }
        if raw.encoding.as_deref() != Some("base64") {
            return Err(decode(format!(
                "{path} has encoding {:?} (too large for the contents API?)",
                raw.encoding
            )));
        }
        let text: String = raw
            .content
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let content = BASE64
            .decode(text)
            .map_err(|e| decode(format!("content of {path} is not base64: {e}")))?;
        Ok(Some(RepoFile {
            sha: raw.sha,
            content,
        }))
    }

    /// Creates or updates `path` on `branch` with `content`, committing with `message`. Leaves
    /// the file alone when it already holds `content`; on a stale SHA (someone else committed in
    /// between) it re-reads and tries again, a bounded number of times.
    pub async fn put_file(
        &self,
        path: &str,
        branch: &str,
        content: &[u8],
        message: &str,
    ) -> Result<PutOutcome, ApiError> {
        let uri = format!("{}/contents/{}", self.repo_path(), encode_path(path));
        let endpoint = format!("PUT {uri}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get_file(path, Some(branch)).await?;
            if current.as_ref().is_some_and(|f| f.content == content) {
                return Ok(PutOutcome::Unchanged);
            }
            let mut body = json!({
                "message": message,
                "content": BASE64.encode(content),
                "branch": branch,
            });
            if let Some(file) = &current {
                body["sha"] = json!(file.sha);
            }
            let response = self.send(Method::PUT, &uri, Some(&body)).await?;
            if response.status == 409 && attempt < PUT_ATTEMPTS {
                continue;
            }
            self.check_response(&endpoint, &response, &[200, 201])?;
            let raw: RawCommit =
                serde_json::from_str(&response.body).map_err(|e| ApiError::Decode {
                    endpoint: endpoint.clone(),
                    message: e.to_string(),
                })?;
            let commit = raw.commit.sha;
            return Ok(if response.status == 201 {
                PutOutcome::Created { commit }
            } else {
                PutOutcome::Updated { commit }
            });
        }
    }

    /// The head SHA of `branch`, or `None` when it does not exist.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct RawRef {
            object: RawObject,
        }
        #[derive(Deserialize)]
        struct RawObject {
            sha: String,
        }
        let uri = format!("{}/git/ref/heads/{}", self.repo_path(), encode_path(branch));
        let response = self.send(Method::GET, &uri, None).await?;
        if response.status == 404 {
            return Ok(None);
        }
        let endpoint = format!("GET {uri}");
        self.check_response(&endpoint, &response, &[200])?;
        let raw: RawRef = serde_json::from_str(&response.body).map_err(|e| ApiError::Decode {
            endpoint,
            message: e.to_string(),
        })?;
        Ok(Some(raw.object.sha))
    }

    /// Makes sure `branch` exists, creating it at `from_sha` when missing. Returns true when it
    /// created it.
    pub async fn ensure_branch(&self, branch: &str, from_sha: &str) -> Result<bool, ApiError> {
        if self.branch_head(branch).await?.is_some() {
            return Ok(false);
        }
        let uri = format!("{}/git/refs", self.repo_path());
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": from_sha });
        self.request_empty(Method::POST, &uri, Some(&body), &[201])
            .await?;
        Ok(true)
    }
}
