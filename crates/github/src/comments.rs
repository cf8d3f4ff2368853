//! Sticky issue and pull-request comments: one comment per key, found by a hidden marker,
//! created once and then edited in place (never duplicated, left alone when unchanged).

use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::{ApiError, GitHub};

/// GitHub's limit on a comment body.
pub const COMMENT_LIMIT: usize = 65_536;

/// The hidden marker that identifies dhow's sticky comment for `key` (e.g. `preview`).
pub fn sticky_marker(key: &str) -> String {
    let mut clean = String::new();
    for c in key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
    {
        // `--` may not appear inside an HTML comment.
        if !(c == '-' && clean.ends_with('-')) {
            clean.push(c);
        }
    }
    let key = clean;
    format!("<!-- dhow:sticky:{key} -->")
}

/// The full comment body: the marker line, then `markdown`, cut to GitHub's limit.
pub fn sticky_body(key: &str, markdown: &str) -> String {
    let marker = sticky_marker(key);
    let note = "\n\n_Comment truncated: it exceeded GitHub's size limit._";
    let budget = COMMENT_LIMIT - marker.chars().count() - 1;
    let text = if markdown.chars().count() > budget {
        let keep = budget - note.chars().count();
        let cut: String = markdown.chars().take(keep).collect();
        format!("{cut}{note}")
    } else {
        markdown.to_owned()
    };
    format!("{marker}\n{text}")
}

/// An issue comment as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What [`GitHub::upsert_sticky_comment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyOutcome {
    Created(u64),
    Updated(u64),
    /// The comment already had this body; nothing was sent (no notification noise).
    Unchanged(u64),
}

impl StickyOutcome {
    pub fn id(self) -> u64 {
        match self {
            Self::Created(id) | Self::Updated(id) | Self::Unchanged(id) => id,
        }
    }
}

impl GitHub {
    /// Every comment on an issue or pull request, oldest first.
    pub async fn list_issue_comments(&self, issue: u64) -> Result<Vec<IssueComment>, ApiError> {
        let path = format!("{}/issues/{issue}/comments", self.repo_path());
        self.list_all(&path, &[], |_| false).await
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments`.
    pub async fn create_issue_comment(
        &self,
        issue: u64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
        let path = format!("{}/issues/{issue}/comments", self.repo_path());
        let body = json!({ "body": body });
        Ok(self
            .request(Method::POST, &path, Some(&body), &[201])
            .await?
            .0)
    }

    /// `PATCH /repos/{o}/{r}/issues/comments/{id}`.
    pub async fn update_issue_comment(
        &self,
        comment_id: u64,
        body: &str,
    ) -> Result<IssueComment, ApiError> {
        let path = format!("{}/issues/comments/{comment_id}", self.repo_path());
        let body = json!({ "body": body });
        Ok(self
            .request(Method::PATCH, &path, Some(&body), &[200])
            .await?
            .0)
    }

    /// `DELETE /repos/{o}/{r}/issues/comments/{id}`.
    pub async fn delete_issue_comment(&self, comment_id: u64) -> Result<(), ApiError> {
        let path = format!("{}/issues/comments/{comment_id}", self.repo_path());
        self.request_empty(Method::DELETE, &path, None, &[204])
            .await
    }

    /// The sticky comment for `key` on `issue`, if there is one (the oldest, should several
    /// exist).
    pub async fn find_sticky_comment(
        &self,
        issue: u64,
        key: &str,
    ) -> Result<Option<IssueComment>, ApiError> {
        let marker = sticky_marker(key);
        let comments = self.list_issue_comments(issue).await?;
        Ok(comments
            .into_iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(&marker))))
    }

    /// Creates the sticky comment for `key`, or edits it in place.
    pub async fn upsert_sticky_comment(
        &self,
        issue: u64,
        key: &str,
        markdown: &str,
    ) -> Result<StickyOutcome, ApiError> {
        let body = sticky_body(key, markdown);
        match self.find_sticky_comment(issue, key).await? {
            Some(existing) if existing.body.as_deref() == Some(body.as_str()) => {
                Ok(StickyOutcome::Unchanged(existing.id))
            }
            Some(existing) => {
                let updated = self.update_issue_comment(existing.id, &body).await?;
                Ok(StickyOutcome::Updated(updated.id))
            }
            None => {
                let created = self.create_issue_comment(issue, &body).await?;
                Ok(StickyOutcome::Created(created.id))
            }
        }
    }
}
