//! GitHub Deployments as dhow's release ledger: typed create/list/status calls, the payload dhow
//! records in every deployment, the previous-success lookup for rollback, and the workflow run
//! and pull request reads (stale-lock checks, previews).

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{ApiError, GitHub, truncate_chars};

/// A deployment status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Queued,
    Pending,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
            Self::Inactive => "inactive",
        }
    }

    /// Parses a state name as the API reports it.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "queued" => Self::Queued,
            "pending" => Self::Pending,
            "in_progress" => Self::InProgress,
            "success" => Self::Success,
            "failure" => Self::Failure,
            "error" => Self::Error,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }
}

/// What dhow records in a deployment's `payload`: enough to redeploy it by digest later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Always `dhow`, to tell our deployments from others in the same environment.
    pub tool: String,
    pub version: String,
    /// `repository/name` of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `sha256:…` of the pushed image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Hash of the resolved configuration (secrets excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

impl ReleaseRecord {
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            tool: "dhow".to_owned(),
            version: version.into(),
            ..Self::default()
        }
    }

    /// Reads a record back from a deployment payload (object or JSON string); `None` when the
    /// deployment was not made by dhow.
    pub fn from_payload(payload: &Value) -> Option<Self> {
        let value = match payload {
            Value::String(text) => serde_json::from_str(text).ok()?,
            other => other.clone(),
        };
        let record: Self = serde_json::from_value(value).ok()?;
        (record.tool == "dhow").then_some(record)
    }
}

/// A deployment to create. `auto_merge` is always `false` and `required_contexts` always `[]`:
/// the workflow is the gate, and GitHub's defaults would merge branches or refuse on pending
/// checks.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeployment {
    /// The full commit SHA (a branch could resolve to another commit by the time it is read).
    pub git_ref: String,
    pub environment: String,
    /// `deploy`, `deploy:rollback`, `deploy:preview`.
    pub task: String,
    pub description: Option<String>,
    pub transient_environment: bool,
    pub production_environment: bool,
    pub payload: Value,
}

impl NewDeployment {
    /// A deployment of `sha` to `environment`; production defaults to `environment ==
    /// "production"`, as GitHub's does.
    pub fn new(sha: impl Into<String>, environment: impl Into<String>) -> Self {
        let environment = environment.into();
        Self {
            git_ref: sha.into(),
            production_environment: environment == "production",
            environment,
            task: "deploy".to_owned(),
            description: None,
            transient_environment: false,
            payload: json!({}),
        }
    }

    /// Records a release in the payload.
    #[must_use]
    pub fn with_record(mut self, record: &ReleaseRecord) -> Self {
        self.payload = serde_json::to_value(record).unwrap_or_else(|_| json!({}));
        self
    }

    /// The request body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "ref": self.git_ref,
            "task": self.task,
            "auto_merge": false,
            "required_contexts": [],
            "payload": self.payload,
            "environment": self.environment,
            "transient_environment": self.transient_environment,
            "production_environment": self.production_environment,
        });
        if let Some(description) = &self.description {
            body["description"] = Value::String(truncate_chars(description, 140));
        }
        body
    }
}

/// A deployment as the API returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    #[serde(default)]
    pub payload: Value,
    pub created_at: String,
    #[serde(default)]
    pub transient_environment: Option<bool>,
    #[serde(default)]
    pub production_environment: Option<bool>,
    #[serde(default)]
    pub creator: Option<Login>,
}

impl Deployment {
    /// The dhow release recorded in the payload, if dhow made it.
    pub fn record(&self) -> Option<ReleaseRecord> {
        ReleaseRecord::from_payload(&self.payload)
    }
}

/// A user reference.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Login {
    pub login: String,
}

/// A status to post on a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatus {
    pub state: DeploymentState,
    /// Cut to GitHub's 140 characters.
    pub description: Option<String>,
    pub environment_url: Option<String>,
    /// The job page; GitHub also sets `target_url` from it.
    pub log_url: Option<String>,
    pub environment: Option<String>,
    pub auto_inactive: Option<bool>,
}

impl NewStatus {
    pub fn new(state: DeploymentState) -> Self {
        Self {
            state,
            description: None,
            environment_url: None,
            log_url: None,
            environment: None,
            auto_inactive: None,
        }
    }

    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    #[must_use]
    pub fn environment_url(mut self, url: impl Into<String>) -> Self {
        self.environment_url = Some(url.into());
        self
    }

    #[must_use]
    pub fn log_url(mut self, url: impl Into<String>) -> Self {
        self.log_url = Some(url.into());
        self
    }

    #[must_use]
    pub fn auto_inactive(mut self, on: bool) -> Self {
        self.auto_inactive = Some(on);
        self
    }

    /// The request body.
    pub fn body(&self) -> Value {
        let mut body = json!({ "state": self.state.as_str() });
        if let Some(d) = &self.description {
            body["description"] = Value::String(truncate_chars(d, 140));
        }
        if let Some(url) = &self.environment_url {
            body["environment_url"] = Value::String(url.clone());
        }
        if let Some(url) = &self.log_url {
            body["log_url"] = Value::String(url.clone());
        }
        if let Some(env) = &self.environment {
            body["environment"] = Value::String(env.clone());
        }
        if let Some(on) = self.auto_inactive {
            body["auto_inactive"] = Value::Bool(on);
        }
        body
    }
}

/// A deployment status as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeploymentStatus {
    pub id: u64,
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
    pub created_at: String,
}

impl DeploymentStatus {
    pub fn state(&self) -> Option<DeploymentState> {
        DeploymentState::parse(&self.state)
    }
}

/// Filters for listing deployments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub environment: Option<String>,
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub task: Option<String>,
}

impl DeploymentFilter {
    pub fn environment(environment: impl Into<String>) -> Self {
        Self {
            environment: Some(environment.into()),
            ..Self::default()
        }
    }
}

/// A deployment that succeeded, with the success status that shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SuccessfulDeployment {
    pub deployment: Deployment,
    pub status: DeploymentStatus,
}

/// A workflow run (for stale-lock checks).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    pub id: u64,
    /// `queued`, `in_progress`, `completed`, `waiting`, ...
    pub status: Option<String>,
    pub conclusion: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    pub html_url: String,
    pub head_sha: String,
}

impl WorkflowRun {
    /// The run is over: a lock it holds is stale.
    pub fn is_finished(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }
}

/// A job of a workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    /// The numeric job id (= its check-run id).
    pub id: u64,
    pub run_id: u64,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    #[serde(default)]
    pub runner_name: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Deserialize)]
struct JobPage {
    jobs: Vec<Job>,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub state: String,
    pub title: String,
    pub html_url: String,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub draft: Option<bool>,
    pub updated_at: String,
    pub head: PullRef,
    pub base: PullRef,
    #[serde(default)]
    pub labels: Vec<Label>,
    pub user: Option<Login>,
}

/// One side of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

/// A label.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    pub name: String,
}

/// The most deployments the previous-success lookup inspects.
pub const LEDGER_SCAN_LIMIT: usize = 100;

impl GitHub {
    /// `POST /repos/{o}/{r}/deployments`.
    pub async fn create_deployment(&self, new: &NewDeployment) -> Result<Deployment, ApiError> {
        let path = format!("{}/deployments", self.repo_path());
        let response = self.send(Method::POST, &path, Some(&new.body())).await?;
        if response.status == 202 {
            // Only possible with auto_merge, which dhow never sends; report it plainly.
            return Err(ApiError::Status {
                endpoint: format!("POST {path}"),
                status: 202,
                message: "GitHub merged the default branch instead of creating a deployment"
                    .to_owned(),
                body: truncate_chars(&self.redact(&response.body), 500),
                accepted_permissions: None,
            });
        }
        let (deployment, _) = self.decode_response(&format!("POST {path}"), response, &[201])?;
        Ok(deployment)
    }

    /// `POST /repos/{o}/{r}/deployments/{id}/statuses`.
    pub async fn create_deployment_status(
        &self,
        deployment_id: u64,
        status: &NewStatus,
    ) -> Result<DeploymentStatus, ApiError> {
        let path = format!("{}/deployments/{deployment_id}/statuses", self.repo_path());
        let (status, _) = self
            .request(Method::POST, &path, Some(&status.body()), &[201])
            .await?;
        Ok(status)
    }

    /// `GET /repos/{o}/{r}/deployments/{id}`.
    pub async fn get_deployment(&self, deployment_id: u64) -> Result<Deployment, ApiError> {
        let path = format!("{}/deployments/{deployment_id}", self.repo_path());
        Ok(self.request(Method::GET, &path, None, &[200]).await?.0)
    }

    /// Lists deployments matching `filter`, newest first, across pages.
    pub async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, ApiError> {
        self.list_deployments_until(filter, |_| false).await
    }

    async fn list_deployments_until(
        &self,
        filter: &DeploymentFilter,
        enough: impl FnMut(&[Deployment]) -> bool,
    ) -> Result<Vec<Deployment>, ApiError> {
        let mut query = Vec::new();
        if let Some(v) = &filter.environment {
            query.push(("environment", v.as_str()));
        }
        if let Some(v) = &filter.sha {
            query.push(("sha", v.as_str()));
        }
        if let Some(v) = &filter.git_ref {
            query.push(("ref", v.as_str()));
        }
        if let Some(v) = &filter.task {
            query.push(("task", v.as_str()));
        }
        let path = format!("{}/deployments", self.repo_path());
        self.list_all(&path, &query, enough).await
    }

    /// Lists a deployment's statuses, newest first.
    pub async fn list_deployment_statuses(
        &self,
        deployment_id: u64,
    ) -> Result<Vec<DeploymentStatus>, ApiError> {
        let path = format!("{}/deployments/{deployment_id}/statuses", self.repo_path());
        self.list_all(&path, &[], |_| false).await
    }

    /// The newest deployment of `environment` (other than `exclude`) that reached `success`,
    /// even if a later deployment has since made it `inactive`. Looks at up to
    /// [`LEDGER_SCAN_LIMIT`] deployments, newest first.
    pub async fn previous_successful_deployment(
        &self,
        environment: &str,
        exclude: Option<u64>,
    ) -> Result<Option<SuccessfulDeployment>, ApiError> {
        let deployments = self
            .list_deployments_until(&DeploymentFilter::environment(environment), |items| {
                items.len() >= LEDGER_SCAN_LIMIT
            })
            .await?;
        for deployment in deployments.into_iter().take(LEDGER_SCAN_LIMIT) {
            if Some(deployment.id) == exclude {
                continue;
            }
            let statuses = self.list_deployment_statuses(deployment.id).await?;
            if let Some(status) = statuses
                .into_iter()
                .find(|s| s.state() == Some(DeploymentState::Success))
            {
                return Ok(Some(SuccessfulDeployment { deployment, status }));
            }
        }
        Ok(None)
    }

    /// Deployments of `environment` at `sha` whose latest status is still `queued`,
    /// `pending` or `in_progress`: the one Actions created for a job's `environment:`, which dhow
    /// adopts instead of creating a duplicate.
    pub async fn find_open_deployment(
        &self,
        environment: &str,
        sha: &str,
    ) -> Result<Option<Deployment>, ApiError> {
        let filter = DeploymentFilter {
            environment: Some(environment.to_owned()),
            sha: Some(sha.to_owned()),
            ..DeploymentFilter::default()
        };
        for deployment in self.list_deployments(&filter).await? {
            let statuses = self.list_deployment_statuses(deployment.id).await?;
            let open = statuses.first().is_none_or(|s| {
                matches!(
                    s.state(),
                    Some(
                        DeploymentState::Queued
                            | DeploymentState::Pending
                            | DeploymentState::InProgress
                    )
                )
            });
            if open {
                return Ok(Some(deployment));
            }
        }
        Ok(None)
    }

    /// Posts `inactive` on every deployment of `environment` except `keep` whose latest state is
    /// not already inactive. Returns the ids it deactivated.
    pub async fn deactivate_others(
        &self,
        environment: &str,
        keep: Option<u64>,
    ) -> Result<Vec<u64>, ApiError> {
        let mut done = Vec::new();
        for deployment in self
            .list_deployments(&DeploymentFilter::environment(environment))
            .await?
        {
            if Some(deployment.id) == keep {
                continue;
            }
            let statuses = self.list_deployment_statuses(deployment.id).await?;
            if statuses.first().and_then(DeploymentStatus::state) == Some(DeploymentState::Inactive)
            {
                continue;
            }
            self.create_deployment_status(
                deployment.id,
                &NewStatus::new(DeploymentState::Inactive).auto_inactive(false),
            )
            .await?;
            done.push(deployment.id);
        }
        Ok(done)
    }

    /// `DELETE /repos/{o}/{r}/deployments/{id}` (GitHub refuses active ones unless it is the
    /// last: post `inactive` first).
    pub async fn delete_deployment(&self, deployment_id: u64) -> Result<(), ApiError> {
        let path = format!("{}/deployments/{deployment_id}", self.repo_path());
        self.request_empty(Method::DELETE, &path, None, &[204])
            .await
    }

    /// `GET /repos/{o}/{r}/actions/runs/{run_id}`.
    pub async fn get_workflow_run(&self, run_id: u64) -> Result<WorkflowRun, ApiError> {
        let path = format!("{}/actions/runs/{run_id}", self.repo_path());
        Ok(self.request(Method::GET, &path, None, &[200]).await?.0)
    }

    /// The jobs of a run's latest attempt, across pages.
    pub async fn list_run_jobs(&self, run_id: u64) -> Result<Vec<Job>, ApiError> {
        let path = format!("{}/actions/runs/{run_id}/jobs", self.repo_path());
        let mut jobs = Vec::new();
        for page in 1..=crate::client::MAX_PAGES {
            let uri = format!("{path}?filter=latest&per_page=100&page={page}");
            let (batch, headers): (JobPage, _) =
                self.request(Method::GET, &uri, None, &[200]).await?;
            jobs.extend(batch.jobs);
            if !crate::client::has_next_page(&headers) {
                break;
            }
        }
        Ok(jobs)
    }

    /// The job this process runs in, when the workflow did not pass `job.check_run_id`: the
    /// in-progress job on `runner_name` (`RUNNER_NAME`), else the only in-progress job named
    /// `job_key` (`GITHUB_JOB`), else the only in-progress job.
    pub async fn find_current_job(
        &self,
        run_id: u64,
        runner_name: Option<&str>,
        job_key: Option<&str>,
    ) -> Result<Option<Job>, ApiError> {
        let running: Vec<Job> = self
            .list_run_jobs(run_id)
            .await?
            .into_iter()
            .filter(|j| j.status == "in_progress")
            .collect();
        if let Some(runner) = runner_name
            && let Some(job) = running
                .iter()
                .find(|j| j.runner_name.as_deref() == Some(runner))
        {
            return Ok(Some(job.clone()));
        }
        let named: Vec<&Job> = running
            .iter()
            .filter(|j| job_key.is_some_and(|k| j.name == k))
            .collect();
        if let [job] = named.as_slice() {
            return Ok(Some((*job).clone()));
        }
        Ok(match running.as_slice() {
            [job] => Some(job.clone()),
            _ => None,
        })
    }

    /// Whether an environment exists.
    pub async fn environment_exists(&self, name: &str) -> Result<bool, ApiError> {
        let path = format!(
            "{}/environments/{}",
            self.repo_path(),
            crate::client::encode(name)
        );
        let endpoint = format!("GET {path}");
        let response = self.send(Method::GET, &path, None).await?;
        if response.status == 404 {
            return Ok(false);
        }
        self.check_response(&endpoint, &response, &[200])?;
        Ok(true)
    }

    /// `DELETE /repos/{o}/{r}/environments/{name}`. Needs a token with Administration write
    /// (not `GITHUB_TOKEN`): a 403 comes back as an error the caller can turn into a warning
    /// ([`ApiError::is_forbidden_for_integration`]).
    pub async fn delete_environment(&self, name: &str) -> Result<(), ApiError> {
        let path = format!(
            "{}/environments/{}",
            self.repo_path(),
            crate::client::encode(name)
        );
        self.request_empty(Method::DELETE, &path, None, &[204])
            .await
    }

    /// `POST /repos/{o}/{r}/statuses/{sha}`: a commit status (`error`, `failure`, `pending`,
    /// `success`) under `context`; the description is cut to 140 characters.
    pub async fn create_commit_status(
        &self,
        sha: &str,
        state: &str,
        context: &str,
        target_url: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), ApiError> {
        let path = format!(
            "{}/statuses/{}",
            self.repo_path(),
            crate::client::encode(sha)
        );
        let mut body = json!({ "state": state, "context": context });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        if let Some(text) = description {
            body["description"] = json!(truncate_chars(text, 140));
        }
        self.request_empty(Method::POST, &path, Some(&body), &[201])
            .await
    }

    /// `GET /repos/{o}/{r}/pulls/{number}`.
    pub async fn get_pull_request(&self, number: u64) -> Result<PullRequest, ApiError> {
        let path = format!("{}/pulls/{number}", self.repo_path());
        Ok(self.request(Method::GET, &path, None, &[200]).await?.0)
    }

    /// Lists pull requests in `state` (`open`, `closed`, `all`).
    pub async fn list_pull_requests(&self, state: &str) -> Result<Vec<PullRequest>, ApiError> {
        let path = format!("{}/pulls", self.repo_path());
        self.list_all(&path, &[("state", state)], |_| false).await
    }

    fn decode_response<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        response: crate::client::RawResponse,
        expected: &[u16],
    ) -> Result<(T, http::HeaderMap), ApiError> {
        self.check_response(endpoint, &response, expected)?;
        let value = serde_json::from_str(&response.body).map_err(|e| ApiError::Decode {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        })?;
        Ok((value, response.headers))
    }
}
