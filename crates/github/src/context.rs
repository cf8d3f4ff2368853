//! The GitHub Actions run context: parsed purely from an injected environment map and the text of
//! the event payload file (`GITHUB_EVENT_PATH`), plus the URLs derived from it (run, attempt, job
//! log, workflow dispatch page, commit).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Deserialize;

/// Why the Actions context could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    /// A variable the runner always sets is missing or empty.
    #[error("environment variable {0} is not set (is this running inside GitHub Actions?)")]
    Missing(&'static str),
    /// A variable has a value of the wrong shape.
    #[error("environment variable {name} has an invalid value {value:?}: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The event payload is not the JSON the event name promises.
    #[error("event payload for `{event}` is invalid: {message}")]
    Event { event: String, message: String },
}

/// `owner/name` of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
}

impl Repository {
    /// Splits `owner/name` on the first `/`.
    pub fn parse(full_name: &str) -> Option<Self> {
        let (owner, name) = full_name.split_once('/')?;
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// The runner the job runs on (`RUNNER_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runner {
    /// `Linux`, `Windows`, `macOS`.
    pub os: Option<String>,
    /// `X86`, `X64`, `ARM`, `ARM64`, ...
    pub arch: Option<String>,
    pub name: Option<String>,
    /// `github-hosted` or `self-hosted`.
    pub environment: Option<String>,
    pub temp: Option<PathBuf>,
    pub tool_cache: Option<PathBuf>,
    /// `RUNNER_DEBUG=1`: step debug logging is on.
    pub debug: bool,
}

/// The per-step files the runner reads after the step (`GITHUB_OUTPUT`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFiles {
    pub output: Option<PathBuf>,
    pub env: Option<PathBuf>,
    pub path: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    pub state: Option<PathBuf>,
}

/// A `push` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub git_ref: String,
    pub before: String,
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    /// `None` when the push deleted the ref.
    pub head_commit: Option<Commit>,
    pub commit_count: usize,
    pub pusher: Option<String>,
}

/// The head commit of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub message: String,
}

/// A `pull_request` or `pull_request_target` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, `reopened`, `closed`, ...
    pub action: String,
    pub number: u64,
    pub title: String,
    pub html_url: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    pub author: Option<String>,
    pub labels: Vec<String>,
    pub head_sha: String,
    pub head_ref: String,
    /// `owner/name` of the head repository; `None` when the fork was deleted.
    pub head_repo: Option<String>,
    pub base_sha: String,
    pub base_ref: String,
    pub base_repo: String,
    pub merge_commit_sha: Option<String>,
    /// The head lives in another repository than the base: the token is read-only and secrets
    /// are absent.
    pub from_fork: bool,
}

/// A `workflow_dispatch` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowDispatchEvent {
    pub git_ref: String,
    /// The workflow file path, e.g. `.github/workflows/deploy.yml`.
    pub workflow: Option<String>,
    /// The inputs as strings, as the event file carries them.
    pub inputs: BTreeMap<String, String>,
}

/// The deployment object carried by `deployment` and `deployment_status` events.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentInfo {
    pub id: u64,
    pub sha: String,
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    pub payload: serde_json::Value,
    pub transient_environment: Option<bool>,
    pub production_environment: Option<bool>,
}

/// A `deployment_status` event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatusEvent {
    pub state: String,
    pub environment: String,
    pub environment_url: Option<String>,
    pub log_url: Option<String>,
    pub deployment: DeploymentInfo,
    /// Present when Actions itself created the deployment for a job's `environment:`.
    pub workflow_run_id: Option<u64>,
}

/// The event that started the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Push(PushEvent),
    PullRequest(PullRequestEvent),
    WorkflowDispatch(WorkflowDispatchEvent),
    Deployment(DeploymentInfo),
    DeploymentStatus(DeploymentStatusEvent),
    /// Any other event (`schedule`, `release`, ...), or no payload file.
    Other(String),
}

/// Everything dhow knows about the Actions run it is part of.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsContext {
    pub repository: Repository,
    pub repository_id: Option<u64>,
    /// `GITHUB_SHA`: for pull requests the merge commit, not the head.
    pub sha: String,
    /// `GITHUB_REF`, fully formed.
    pub git_ref: String,
    pub ref_name: Option<String>,
    pub head_ref: Option<String>,
    pub base_ref: Option<String>,
    pub event_name: String,
    pub event: Event,
    pub run_id: u64,
    pub run_number: Option<u64>,
    pub run_attempt: u32,
    pub server_url: String,
    pub api_url: String,
    pub workflow: Option<String>,
    pub workflow_ref: Option<String>,
    /// The job's YAML key (`GITHUB_JOB`), not its numeric id.
    pub job: Option<String>,
    /// The numeric job id (= its check-run id), when the workflow passes `${{ job.check_run_id }}`
    /// as `DHOW_JOB_CHECK_RUN_ID`.
    pub job_check_run_id: Option<u64>,
    pub actor: Option<String>,
    pub triggering_actor: Option<String>,
    pub workspace: Option<PathBuf>,
    pub action_path: Option<PathBuf>,
    pub runner: Runner,
    pub files: EnvFiles,
}

/// True when the environment says the process runs inside GitHub Actions.
pub fn in_actions(env: &BTreeMap<String, String>) -> bool {
    env.get("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// The event payload file the runner wrote (`GITHUB_EVENT_PATH`), for the caller to read and
/// pass to [`ActionsContext::from_env`].
pub fn event_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    path(env, "GITHUB_EVENT_PATH")
}

fn get<'a>(env: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn required<'a>(
    env: &'a BTreeMap<String, String>,
    name: &'static str,
) -> Result<&'a str, ContextError> {
    get(env, name).ok_or(ContextError::Missing(name))
}

fn number<T: std::str::FromStr>(
    env: &BTreeMap<String, String>,
    name: &'static str,
) -> Result<Option<T>, ContextError> {
    match get(env, name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ContextError::Invalid {
            name,
            value: v.to_owned(),
            expected: "a positive integer",
        }),
    }
}

fn path(env: &BTreeMap<String, String>, name: &str) -> Option<PathBuf> {
    get(env, name).map(PathBuf::from)
}

fn trim_slash(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

impl ActionsContext {
    /// Reads the context from `env` (the process environment, injected) and `event_payload` (the
    /// contents of the file `GITHUB_EVENT_PATH` names, read by the caller; `None` if absent).
    pub fn from_env(
        env: &BTreeMap<String, String>,
        event_payload: Option<&str>,
    ) -> Result<Self, ContextError> {
        let full_name = required(env, "GITHUB_REPOSITORY")?;
        let repository = Repository::parse(full_name).ok_or_else(|| ContextError::Invalid {
            name: "GITHUB_REPOSITORY",
            value: full_name.to_owned(),
            expected: "owner/name",
        })?;
        let sha = required(env, "GITHUB_SHA")?.to_owned();
        let event_name = required(env, "GITHUB_EVENT_NAME")?.to_owned();
        let run_id = number(env, "GITHUB_RUN_ID")?.ok_or(ContextError::Missing("GITHUB_RUN_ID"))?;
        let run_attempt = number(env, "GITHUB_RUN_ATTEMPT")?.unwrap_or(1);
        let event = match event_payload {
            Some(text) => parse_event(&event_name, text)?,
            None => Event::Other(event_name.clone()),
        };
        Ok(Self {
            repository,
            repository_id: number(env, "GITHUB_REPOSITORY_ID")?,
            sha,
            git_ref: get(env, "GITHUB_REF").unwrap_or_default().to_owned(),
            ref_name: get(env, "GITHUB_REF_NAME").map(str::to_owned),
            head_ref: get(env, "GITHUB_HEAD_REF").map(str::to_owned),
            base_ref: get(env, "GITHUB_BASE_REF").map(str::to_owned),
            event_name,
            event,
            run_id,
            run_number: number(env, "GITHUB_RUN_NUMBER")?,
            run_attempt,
            server_url: trim_slash(get(env, "GITHUB_SERVER_URL").unwrap_or("https://github.com")),
            api_url: trim_slash(get(env, "GITHUB_API_URL").unwrap_or("https://api.github.com")),
            workflow: get(env, "GITHUB_WORKFLOW").map(str::to_owned),
            workflow_ref: get(env, "GITHUB_WORKFLOW_REF").map(str::to_owned),
            job: get(env, "GITHUB_JOB").map(str::to_owned),
            job_check_run_id: number(env, "DHOW_JOB_CHECK_RUN_ID")?,
            actor: get(env, "GITHUB_ACTOR").map(str::to_owned),
            triggering_actor: get(env, "GITHUB_TRIGGERING_ACTOR").map(str::to_owned),
            workspace: path(env, "GITHUB_WORKSPACE"),
            action_path: path(env, "GITHUB_ACTION_PATH"),
            runner: Runner {
                os: get(env, "RUNNER_OS").map(str::to_owned),
                arch: get(env, "RUNNER_ARCH").map(str::to_owned),
                name: get(env, "RUNNER_NAME").map(str::to_owned),
                environment: get(env, "RUNNER_ENVIRONMENT").map(str::to_owned),
                temp: path(env, "RUNNER_TEMP"),
                tool_cache: path(env, "RUNNER_TOOL_CACHE"),
                debug: get(env, "RUNNER_DEBUG") == Some("1"),
            },
            files: EnvFiles {
                output: path(env, "GITHUB_OUTPUT"),
                env: path(env, "GITHUB_ENV"),
                path: path(env, "GITHUB_PATH"),
                step_summary: path(env, "GITHUB_STEP_SUMMARY"),
                state: path(env, "GITHUB_STATE"),
            },
        })
    }

    /// The pull request this run is about, if any.
    pub fn pull_request(&self) -> Option<&PullRequestEvent> {
        match &self.event {
            Event::PullRequest(pr) => Some(pr),
            _ => None,
        }
    }

    /// The commit a deployment should record: the PR head on pull requests (`GITHUB_SHA` is the
    /// merge commit there, which the PR page never shows), the deployment's own SHA on
    /// deployment events, else `GITHUB_SHA`.
    pub fn deploy_sha(&self) -> &str {
        match &self.event {
            Event::PullRequest(pr) if !pr.head_sha.is_empty() => &pr.head_sha,
            Event::Deployment(d) if !d.sha.is_empty() => &d.sha,
            Event::DeploymentStatus(s) if !s.deployment.sha.is_empty() => &s.deployment.sha,
            _ => &self.sha,
        }
    }

    /// The version dhow deploys when none is given: the PR head SHA on `pull_request`, else
    /// `GITHUB_SHA`.
    pub fn default_version(&self) -> &str {
        match &self.event {
            Event::PullRequest(pr) if !pr.head_sha.is_empty() => &pr.head_sha,
            _ => &self.sha,
        }
    }

    /// True for pull requests whose head is in another repository (read-only token, no secrets).
    pub fn is_fork_pull_request(&self) -> bool {
        self.pull_request().is_some_and(|pr| pr.from_fork)
    }

    /// `https://github.com/owner/repo`.
    pub fn repository_url(&self) -> String {
        format!("{}/{}", self.server_url, self.repository.full_name())
    }

    /// The workflow run's page.
    pub fn run_url(&self) -> String {
        format!("{}/actions/runs/{}", self.repository_url(), self.run_id)
    }

    /// The page of this attempt of the run.
    pub fn attempt_url(&self) -> String {
        format!("{}/attempts/{}", self.run_url(), self.run_attempt)
    }

    /// The job page for a numeric job id (its check-run id).
    pub fn job_url(&self, job_id: u64) -> String {
        format!("{}/job/{job_id}", self.run_url())
    }

    /// Where a deployment status's `log_url` points: the job page when the job id is known,
    /// otherwise this attempt of the run.
    pub fn log_url(&self) -> String {
        match self.job_check_run_id {
            Some(id) => self.job_url(id),
            None => self.attempt_url(),
        }
    }

    /// A commit's page.
    pub fn commit_url(&self, sha: &str) -> String {
        format!("{}/commit/{sha}", self.repository_url())
    }

    /// The workflow file path from `GITHUB_WORKFLOW_REF`
    /// (`owner/repo/.github/workflows/deploy.yml@refs/heads/main` → `.github/workflows/deploy.yml`).
    pub fn workflow_path(&self) -> Option<String> {
        let workflow_ref = self.workflow_ref.as_deref()?;
        let without_ref = workflow_ref
            .rsplit_once('@')
            .map_or(workflow_ref, |(path, _)| path);
        let prefix = format!("{}/", self.repository.full_name());
        let path = if without_ref.len() >= prefix.len()
            && without_ref[..prefix.len()].eq_ignore_ascii_case(&prefix)
        {
            &without_ref[prefix.len()..]
        } else {
            // Reusable workflows or renamed repositories: keep what follows `owner/repo/`.
            without_ref.splitn(3, '/').nth(2)?
        };
        (!path.is_empty()).then(|| path.to_owned())
    }

    /// The workflow file name (`deploy.yml`), as `workflow_id` for dispatch.
    pub fn workflow_file(&self) -> Option<String> {
        let path = self.workflow_path()?;
        path.rsplit('/').next().map(str::to_owned)
    }

    /// The page with the "Run workflow" (dispatch) form for a workflow file name.
    pub fn workflow_page_url(&self, workflow_file: &str) -> String {
        format!(
            "{}/actions/workflows/{workflow_file}",
            self.repository_url()
        )
    }

    /// The branch a dispatch should run on: the PR base on pull requests, else the ref name.
    pub fn dispatch_ref(&self) -> Option<String> {
        if let Some(pr) = self.pull_request() {
            return Some(pr.base_ref.clone());
        }
        if let Some(name) = &self.ref_name {
            return Some(name.clone());
        }
        self.git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| self.git_ref.strip_prefix("refs/tags/"))
            .map(str::to_owned)
    }
}

/// How to roll back from GitHub: the workflow's dispatch page and the exact `gh` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackHint {
    /// The page with the "Run workflow" form.
    pub page_url: String,
    /// `gh workflow run <file> --repo <owner/repo> --ref <branch> -f version=<version>`.
    pub command: String,
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@=+,%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

impl ActionsContext {
    /// The rollback link and command for `version` through the `workflow_file` workflow (which
    /// takes a `version` input on `workflow_dispatch`).
    pub fn rollback_hint(&self, workflow_file: &str, version: &str) -> RollbackHint {
        let mut command = format!(
            "gh workflow run {} --repo {}",
            shell_word(workflow_file),
            shell_word(&self.repository.full_name())
        );
        if let Some(git_ref) = self.dispatch_ref() {
            let _ = write!(command, " --ref {}", shell_word(&git_ref));
        }
        let _ = write!(command, " -f version={}", shell_word(version));
        RollbackHint {
            page_url: self.workflow_page_url(workflow_file),
            command,
        }
    }
}

#[derive(Deserialize)]
struct RawRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct RawPush {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    head_commit: Option<RawCommit>,
    #[serde(default)]
    commits: Vec<serde_json::Value>,
    pusher: Option<RawPusher>,
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct RawPusher {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawPrEvent {
    action: String,
    pull_request: RawPr,
}

#[derive(Deserialize)]
struct RawPr {
    number: u64,
    #[serde(default)]
    title: String,
    html_url: Option<String>,
    state: String,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    draft: Option<bool>,
    user: Option<RawUser>,
    #[serde(default)]
    labels: Vec<RawLabel>,
    head: RawBranch,
    base: RawBranch,
    merge_commit_sha: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    login: String,
}

#[derive(Deserialize)]
struct RawLabel {
    name: String,
}

#[derive(Deserialize)]
struct RawBranch {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<RawRepo>,
}

#[derive(Deserialize)]
struct RawDispatch {
    #[serde(rename = "ref")]
    git_ref: String,
    workflow: Option<String>,
    #[serde(default)]
    inputs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawDeploymentEvent {
    deployment: RawDeployment,
}

#[derive(Deserialize)]
struct RawDeployment {
    id: u64,
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
    task: String,
    environment: String,
    description: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
    transient_environment: Option<bool>,
    production_environment: Option<bool>,
}

#[derive(Deserialize)]
struct RawDeploymentStatusEvent {
    deployment_status: RawStatus,
    deployment: RawDeployment,
    workflow_run: Option<RawRun>,
}

#[derive(Deserialize)]
struct RawStatus {
    state: String,
    environment: String,
    environment_url: Option<String>,
    log_url: Option<String>,
    target_url: Option<String>,
}

#[derive(Deserialize)]
struct RawRun {
    id: u64,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn deployment_info(raw: RawDeployment) -> DeploymentInfo {
    DeploymentInfo {
        id: raw.id,
        sha: raw.sha,
        git_ref: raw.git_ref,
        task: raw.task,
        environment: raw.environment,
        description: raw.description,
        payload: raw.payload,
        transient_environment: raw.transient_environment,
        production_environment: raw.production_environment,
    }
}

fn input_to_string(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses an event payload for `event_name`. Events dhow does not act on become
/// [`Event::Other`]; the payload must still be JSON.
pub fn parse_event(event_name: &str, payload: &str) -> Result<Event, ContextError> {
    let invalid = |e: serde_json::Error| ContextError::Event {
        event: event_name.to_owned(),
        message: e.to_string(),
    };
    Ok(match event_name {
        "push" => {
            let raw: RawPush = serde_json::from_str(payload).map_err(invalid)?;
            Event::Push(PushEvent {
                git_ref: raw.git_ref,
                before: raw.before,
                after: raw.after,
                created: raw.created,
                deleted: raw.deleted,
                forced: raw.forced,
                head_commit: raw.head_commit.map(|c| Commit {
                    id: c.id,
                    message: c.message,
                }),
                commit_count: raw.commits.len(),
                pusher: raw.pusher.and_then(|p| p.name),
            })
        }
        "pull_request" | "pull_request_target" => {
            let raw: RawPrEvent = serde_json::from_str(payload).map_err(invalid)?;
            let pr = raw.pull_request;
            let base_repo = pr.base.repo.map(|r| r.full_name).unwrap_or_default();
            let head_repo = pr.head.repo.map(|r| r.full_name);
            let from_fork = head_repo
                .as_deref()
                .is_none_or(|head| !head.eq_ignore_ascii_case(&base_repo));
            Event::PullRequest(PullRequestEvent {
                action: raw.action,
                number: pr.number,
                title: pr.title,
                html_url: pr.html_url,
                state: pr.state,
                merged: pr.merged.unwrap_or(false),
                draft: pr.draft.unwrap_or(false),
                author: pr.user.map(|u| u.login),
                labels: pr.labels.into_iter().map(|l| l.name).collect(),
                head_sha: pr.head.sha,
                head_ref: pr.head.git_ref,
                head_repo,
                base_sha: pr.base.sha,
                base_ref: pr.base.git_ref,
                base_repo,
                merge_commit_sha: non_empty(pr.merge_commit_sha),
                from_fork,
            })
        }
        "workflow_dispatch" => {
            let raw: RawDispatch = serde_json::from_str(payload).map_err(invalid)?;
            Event::WorkflowDispatch(WorkflowDispatchEvent {
                git_ref: raw.git_ref,
                workflow: raw.workflow,
                inputs: raw
                    .inputs
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, input_to_string(v)))
                    .collect(),
            })
        }
        "deployment" => {
            let raw: RawDeploymentEvent = serde_json::from_str(payload).map_err(invalid)?;
            Event::Deployment(deployment_info(raw.deployment))
        }
        "deployment_status" => {
            let raw: RawDeploymentStatusEvent = serde_json::from_str(payload).map_err(invalid)?;
            let status = raw.deployment_status;
            Event::DeploymentStatus(DeploymentStatusEvent {
                state: status.state,
                environment: status.environment,
                environment_url: non_empty(status.environment_url),
                log_url: non_empty(status.log_url).or_else(|| non_empty(status.target_url)),
                deployment: deployment_info(raw.deployment),
                workflow_run_id: raw.workflow_run.map(|r| r.id),
            })
        }
        other => {
            let _: serde_json::Value = serde_json::from_str(payload).map_err(invalid)?;
            Event::Other(other.to_owned())
        }
    })
}
