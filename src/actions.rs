//! GitHub Actions mode of the binary: the options a run takes from the action (environment name
//! and URL, token, rollback workflow, ledger on/off, lock wait), the Deployments ledger of one run
//! (adopt the deployment Actions made for `environment:` or create one, statuses `queued` →
//! `in_progress` → `success`/`failure`/`error` with the job's log URL, superseded deployments
//! `inactive`), who holds a deploy lock (run id, attempt, URL) and whether that run is over, the
//! image digest read back from a host, and the step outputs and job summary of a deploy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use dhow_core::Secret;
use dhow_core::cmd::Command;
use dhow_core::plan::{Action, Stage};
use dhow_github::context::{ActionsContext, Event as GitHubEvent, RollbackHint};
use dhow_github::deployments::{
    DeploymentFilter, DeploymentState, LEDGER_SCAN_LIMIT, NewDeployment, NewStatus, ReleaseRecord,
};
use dhow_github::workflow::{EnvFile, Summary, md_code_block, md_escape, md_link};
use dhow_github::{ApiError, GitHub};

use crate::printer::Printer;
use crate::reporter::Reporter as _;
use crate::reporter::github::{GitHubReporter, HostStatus, RunFacts};
use crate::reporter::terminal::seconds;

/// The default rollback workflow file (takes a `version` input on `workflow_dispatch`).
pub const DEFAULT_ROLLBACK_WORKFLOW: &str = "rollback.yml";

/// How long a run in CI waits for a lock held by a run that is still going, by default.
pub const DEFAULT_CI_LOCK_WAIT: Duration = Duration::from_secs(600);

/// How often a waiting run asks again.
pub const LOCK_POLL: Duration = Duration::from_secs(5);

/// What the action (or the user) asked of the GitHub side of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The GitHub environment (`DHOW_ENVIRONMENT`; default the destination, else `production`).
    pub environment: String,
    /// Where the deployed app answers (`DHOW_ENVIRONMENT_URL`; default the proxy host).
    pub environment_url: Option<String>,
    /// The workflow file the rollback link dispatches (`DHOW_ROLLBACK_WORKFLOW`).
    pub rollback_workflow: String,
    /// Record the run in GitHub Deployments (`DHOW_DEPLOYMENT`, default `true`; `false` when the
    /// workflow owns the deployment, e.g. `environment:` without `deployment: false`, and the
    /// token lacks `deployments: write`).
    pub ledger: bool,
    /// How long to wait for a lock held by a run that is still going (`DHOW_LOCK_WAIT`, seconds).
    pub lock_wait: Duration,
    /// Treat the environment as transient (previews): `DHOW_TRANSIENT_ENVIRONMENT=true`.
    pub transient: bool,
}

/// The GitHub side of a run.
#[derive(Debug)]
pub struct Actions {
    /// `None` with `--output github` outside Actions (no repository to report to).
    pub context: Option<ActionsContext>,
    /// `DHOW_GITHUB_TOKEN`, else `GITHUB_TOKEN`.
    pub token: Option<Secret<String>>,
    pub options: Options,
}

fn env_value<'a>(env: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A boolean option as the action passes it (`true`/`false`, `1`/`0`, `yes`/`no`).
pub fn flag(value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(format!("expected true or false, got {other:?}")),
    }
}

impl Options {
    /// Reads the options from the environment (injected); `destination` is `-d`.
    pub fn from_env(
        env: &BTreeMap<String, String>,
        destination: Option<&str>,
    ) -> Result<Self, String> {
        let lock_wait = match env_value(env, "DHOW_LOCK_WAIT") {
            Some(text) => Duration::from_secs(text.parse().map_err(|_| {
                format!("DHOW_LOCK_WAIT: expected a number of seconds, got {text:?}")
            })?),
            None => DEFAULT_CI_LOCK_WAIT,
        };
        Ok(Self {
            environment: env_value(env, "DHOW_ENVIRONMENT")
                .or(destination)
                .unwrap_or("production")
                .to_owned(),
            environment_url: env_value(env, "DHOW_ENVIRONMENT_URL").map(str::to_owned),
            rollback_workflow: env_value(env, "DHOW_ROLLBACK_WORKFLOW")
                .unwrap_or(DEFAULT_ROLLBACK_WORKFLOW)
                .to_owned(),
            ledger: flag(env_value(env, "DHOW_DEPLOYMENT"), true)
                .map_err(|e| format!("DHOW_DEPLOYMENT: {e}"))?,
            lock_wait,
            transient: flag(env_value(env, "DHOW_TRANSIENT_ENVIRONMENT"), false)
                .map_err(|e| format!("DHOW_TRANSIENT_ENVIRONMENT: {e}"))?,
        })
    }
}

impl Actions {
    /// The GitHub side from the environment and the event payload's text.
    pub fn from_env(
        env: &BTreeMap<String, String>,
        event_payload: Option<&str>,
        destination: Option<&str>,
    ) -> Result<Self, String> {
        let context = if env_value(env, "GITHUB_REPOSITORY").is_some() {
            Some(ActionsContext::from_env(env, event_payload).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let token = env_value(env, "DHOW_GITHUB_TOKEN")
            .or_else(|| env_value(env, "GITHUB_TOKEN"))
            .map(|t| Secret::new(t.to_owned()));
        Ok(Self {
            context,
            token,
            options: Options::from_env(env, destination)?,
        })
    }

    /// The version to deploy when none was given: the PR head on `pull_request`, else
    /// `GITHUB_SHA`.
    pub fn default_version(&self) -> Option<String> {
        self.context
            .as_ref()
            .map(|c| c.default_version().to_owned())
    }

    /// The lock message naming this run, so a later run can tell whether its holder is over.
    pub fn lock_message(&self) -> String {
        match &self.context {
            Some(context) => format!(
                "Automatic deploy lock by GitHub Actions run {} attempt {} ({})",
                context.run_id,
                context.run_attempt,
                context.attempt_url()
            ),
            None => "Automatic deploy lock".to_owned(),
        }
    }

    /// The rollback link and command for `version`.
    pub fn rollback_hint(&self, version: &str) -> Option<RollbackHint> {
        self.context
            .as_ref()
            .map(|c| c.rollback_hint(&self.options.rollback_workflow, version))
    }
}

/// The run that holds a lock, read from its details (`…/actions/runs/<id>/attempts/<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    pub run_id: u64,
    pub attempt: Option<u32>,
}

/// Finds the holder run in lock details written for `repository` (`owner/name`).
pub fn lock_holder(details: &str, repository: &str) -> Option<LockHolder> {
    let marker = format!("{repository}/actions/runs/");
    let start = details.find(&marker)? + marker.len();
    let rest = &details[start..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let run_id = digits.parse().ok()?;
    let attempt = rest[digits.len()..]
        .strip_prefix("/attempts/")
        .and_then(|tail| {
            tail.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        });
    Some(LockHolder { run_id, attempt })
}

/// What to do about a lock someone else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockVerdict {
    /// The holder run is over: remove its lock (the reason goes to the audit log).
    Stale { reason: String },
    /// The holder may still be working: wait and ask again.
    Wait { reason: String },
}

/// Decides about a held lock: an earlier attempt of this run, or a run the Actions API reports
/// `completed`, is over; anything else (another running deploy, a person's lock) is waited for.
pub async fn judge_lock(
    github: Option<&GitHub>,
    context: &ActionsContext,
    details: &str,
) -> LockVerdict {
    let Some(holder) = lock_holder(details, &context.repository.full_name()) else {
        return LockVerdict::Wait {
            reason: "the lock was not taken by a GitHub Actions run of this repository".to_owned(),
        };
    };
    if holder.run_id == context.run_id {
        if holder.attempt.is_some_and(|a| a < context.run_attempt) {
            return LockVerdict::Stale {
                reason: format!(
                    "attempt {} of run {} is over (this is attempt {})",
                    holder.attempt.unwrap_or_default(),
                    holder.run_id,
                    context.run_attempt
                ),
            };
        }
        return LockVerdict::Wait {
            reason: format!("run {} holds it", holder.run_id),
        };
    }
    let Some(github) = github else {
        return LockVerdict::Wait {
            reason: format!(
                "run {} holds it (no token to ask whether it is over)",
                holder.run_id
            ),
        };
    };
    match github.get_workflow_run(holder.run_id).await {
        Ok(run) if run.is_finished() => LockVerdict::Stale {
            reason: format!(
                "run {} is {} ({})",
                run.id,
                run.conclusion.as_deref().unwrap_or("completed"),
                run.html_url
            ),
        },
        Ok(run) => LockVerdict::Wait {
            reason: format!(
                "run {} is {}",
                run.id,
                run.status.as_deref().unwrap_or("running")
            ),
        },
        Err(error) => LockVerdict::Wait {
            reason: format!("could not ask about run {}: {error}", holder.run_id),
        },
    }
}

/// `docker image inspect --format '{{json .RepoDigests}}' <image>`: the registry digests of a
/// pulled image.
pub fn repo_digests_command(image: &str) -> Command {
    Command::from_words([
        "docker",
        "image",
        "inspect",
        "--format",
        "'{{json .RepoDigests}}'",
        image,
    ])
}

/// The `sha256:…` digest of `repository` among `docker image inspect`'s `RepoDigests` JSON.
pub fn digest_for(repo_digests_json: &str, repository: &str) -> Option<String> {
    let digests: Vec<String> = serde_json::from_str(repo_digests_json.trim()).ok()?;
    let wanted = |d: &&String| {
        d.rsplit_once('@')
            .is_some_and(|(repo, _)| repo == repository)
    };
    digests
        .iter()
        .find(wanted)
        .or_else(|| digests.first())
        .and_then(|d| d.rsplit_once('@'))
        .map(|(_, digest)| digest.to_owned())
}

/// `sha256:` of text (the resolved configuration, secrets redacted), for the ledger.
pub fn config_hash(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256:");
    for byte in digest.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The deployment of one run in GitHub Deployments.
#[derive(Debug)]
pub struct Ledger {
    github: GitHub,
    context: ActionsContext,
    environment: String,
    environment_url: Option<String>,
    transient: bool,
    log_url: String,
    deployment: Mutex<Option<(u64, bool)>>,
}

/// Why a ledger call failed, for a warning (the deploy goes on).
pub fn ledger_warning(action: &str, error: &ApiError) -> String {
    let mut text = format!("GitHub Deployments: could not {action}: {error}");
    if error.is_forbidden_for_integration() || error.status() == Some(403) {
        text.push_str(
            " (the token needs `permissions: deployments: write`; pull requests from forks and Dependabot get a read-only token)",
        );
    }
    text
}

impl Ledger {
    /// A ledger for `environment`; finds the job page for `log_url` (the job id passed as
    /// `DHOW_JOB_CHECK_RUN_ID`, else the in-progress job of this runner, else this attempt).
    pub async fn open(
        github: GitHub,
        context: ActionsContext,
        options: &Options,
        environment_url: Option<String>,
    ) -> Self {
        let log_url = match context.job_check_run_id {
            Some(id) => context.job_url(id),
            None => match github
                .find_current_job(
                    context.run_id,
                    context.runner.name.as_deref(),
                    context.job.as_deref(),
                )
                .await
            {
                Ok(Some(job)) => job.html_url.unwrap_or_else(|| context.job_url(job.id)),
                _ => context.attempt_url(),
            },
        };
        Self {
            github,
            context,
            environment: options.environment.clone(),
            environment_url,
            transient: options.transient,
            log_url,
            deployment: Mutex::new(None),
        }
    }

    pub fn github(&self) -> &GitHub {
        &self.github
    }

    /// The deployment of this run, once started: `(id, adopted)`.
    pub fn deployment(&self) -> Option<(u64, bool)> {
        self.deployment.lock().ok().and_then(|d| *d)
    }

    fn status(&self, state: DeploymentState, description: &str) -> NewStatus {
        let mut status = NewStatus::new(state)
            .description(description)
            .log_url(&self.log_url);
        if let Some(url) = &self.environment_url {
            status = status.environment_url(url);
        }
        status
    }

    /// The newest successful dhow deployment of the environment before this run's.
    pub async fn previous_success(&self) -> Result<Option<(u64, ReleaseRecord)>, ApiError> {
        let exclude = self.deployment().map(|(id, _)| id);
        let found = self
            .github
            .previous_successful_deployment(&self.environment, exclude)
            .await?;
        Ok(found.map(|s| {
            let record = s
                .deployment
                .record()
                .or_else(|| record_from_description(s.status.description.as_deref()))
                .unwrap_or_else(|| ReleaseRecord::new(s.deployment.sha.clone()));
            (s.deployment.id, record)
        }))
    }

    /// Starts the ledger entry of this run: adopts the deployment that triggered the run or that
    /// Actions made for the job's `environment:` (open, at this SHA, not made by dhow), else
    /// creates one with `record` as payload; posts `queued` (when created) and `in_progress`.
    pub async fn start(
        &self,
        record: &ReleaseRecord,
        task: &str,
        sha: Option<&str>,
    ) -> Result<u64, ApiError> {
        if let Some((id, _)) = self.deployment() {
            return Ok(id);
        }
        let sha = sha.unwrap_or_else(|| self.context.deploy_sha()).to_owned();
        let adopted = match &self.context.event {
            GitHubEvent::Deployment(d) if d.environment == self.environment => Some(d.id),
            _ if task != "deploy" => None,
            _ => self
                .github
                .find_open_deployment(&self.environment, &sha)
                .await?
                .filter(|d| d.record().is_none())
                .map(|d| d.id),
        };
        let id = if let Some(id) = adopted {
            id
        } else {
            let mut new = NewDeployment::new(&sha, &self.environment).with_record(record);
            new.task = task.to_owned();
            new.transient_environment = self.transient;
            new.production_environment = !self.transient && self.environment == "production";
            new.description = Some(format!("dhow {task} {}", record.version));
            let deployment = self.github.create_deployment(&new).await?;
            self.github
                .create_deployment_status(
                    deployment.id,
                    &self.status(DeploymentState::Queued, "Queued"),
                )
                .await?;
            deployment.id
        };
        if let Ok(mut slot) = self.deployment.lock() {
            *slot = Some((id, adopted.is_some()));
        }
        self.github
            .create_deployment_status(
                id,
                &self.status(
                    DeploymentState::InProgress,
                    &format!("Deploying {}", record.version),
                ),
            )
            .await?;
        Ok(id)
    }

    /// Posts the final state; on success marks the deployments it supersedes `inactive` (GitHub
    /// only does that itself for non-production, non-transient environments).
    pub async fn finish(
        &self,
        state: DeploymentState,
        description: &str,
    ) -> Result<Vec<u64>, ApiError> {
        let Some((id, _)) = self.deployment() else {
            return Ok(Vec::new());
        };
        self.github
            .create_deployment_status(id, &self.status(state, description))
            .await?;
        if state == DeploymentState::Success {
            return self
                .github
                .deactivate_others(&self.environment, Some(id))
                .await;
        }
        Ok(Vec::new())
    }
}

/// What `dhow rollback` without a version goes back to: the newest successful deployment of the
/// environment older than the live one (the newest success) with another version or digest.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackTarget {
    pub deployment_id: u64,
    /// The commit that deployment recorded (the rollback's deployment uses it as `ref`).
    pub sha: String,
    pub record: ReleaseRecord,
    /// What is live now, when the ledger knows.
    pub current: Option<ReleaseRecord>,
}

/// Picks the rollback target from successful deployments, newest first.
pub fn pick_rollback(successes: &[(u64, String, ReleaseRecord)]) -> Option<RollbackTarget> {
    let (_, _, current) = successes.first()?;
    let same = |r: &ReleaseRecord| {
        r.version == current.version
            && (r.digest == current.digest || r.digest.is_none() || current.digest.is_none())
    };
    successes
        .iter()
        .skip(1)
        .find(|(_, _, record)| !same(record))
        .map(|(id, sha, record)| RollbackTarget {
            deployment_id: *id,
            sha: sha.clone(),
            record: record.clone(),
            current: Some(current.clone()),
        })
}

/// The successful deployment of `wanted` (a version, or a `sha256:` digest, alone or as
/// `repo@sha256:…`), newest first, among successes.
pub fn pick_release(
    successes: &[(u64, String, ReleaseRecord)],
    wanted: &str,
) -> Option<RollbackTarget> {
    let digest = wanted.rsplit_once('@').map_or(wanted, |(_, d)| d);
    successes
        .iter()
        .find(|(_, _, record)| {
            record.version == wanted
                || (digest.starts_with("sha256:") && record.digest.as_deref() == Some(digest))
        })
        .map(|(id, sha, record)| RollbackTarget {
            deployment_id: *id,
            sha: sha.clone(),
            record: record.clone(),
            current: successes.first().map(|(_, _, r)| r.clone()),
        })
}

/// Reads the ledger of `environment`: up to [`LEDGER_SCAN_LIMIT`] deployments, newest first,
/// that reached `success`, until `pick` finds what it looks for — [`pick_rollback`] without
/// `wanted`, [`pick_release`] with it.
pub async fn rollback_target(
    github: &GitHub,
    environment: &str,
    wanted: Option<&str>,
) -> Result<Option<RollbackTarget>, ApiError> {
    let deployments = github
        .list_deployments(&DeploymentFilter::environment(environment))
        .await?;
    let mut successes = Vec::new();
    for deployment in deployments.into_iter().take(LEDGER_SCAN_LIMIT) {
        let statuses = github.list_deployment_statuses(deployment.id).await?;
        let Some(success) = statuses
            .iter()
            .find(|s| s.state() == Some(DeploymentState::Success))
        else {
            continue;
        };
        let record = deployment
            .record()
            .or_else(|| record_from_description(success.description.as_deref()))
            .unwrap_or_else(|| ReleaseRecord::new(deployment.sha.clone()));
        successes.push((deployment.id, deployment.sha.clone(), record));
        let found = match wanted {
            Some(wanted) => pick_release(&successes, wanted),
            None => pick_rollback(&successes),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Makes a deploy plan run the image `repository@digest` as `image` (`repository:version`):
/// its pull steps pull by digest and tag it, so the exact image runs even when the tag was
/// moved or the image was pruned from the hosts. Returns how many hosts were changed.
pub fn pin_to_digest(stages: &mut [Stage], repository: &str, digest: &str, image: &str) -> usize {
    let pinned = format!("{repository}@{digest}");
    let mut changed = 0;
    for stage in stages {
        for host in &mut stage.hosts {
            for step in &mut host.steps {
                if step.label == dhow_core::plan::PULL_STEP {
                    step.action = Action::Run(Command::combine(
                        [
                            Command::from_words(["docker", "pull", pinned.as_str()]),
                            Command::from_words(["docker", "tag", pinned.as_str(), image]),
                        ],
                        "&&",
                    ));
                    changed += 1;
                }
            }
        }
    }
    changed
}

/// The success description dhow posts: `Deployed <version> (<digest>)`.
pub fn success_description(record: &ReleaseRecord) -> String {
    match &record.digest {
        Some(digest) => format!("Deployed {} ({digest})", record.version),
        None => format!("Deployed {}", record.version),
    }
}

/// A record read back from a success description (deployments dhow adopted carry no payload).
pub fn record_from_description(description: Option<&str>) -> Option<ReleaseRecord> {
    let rest = description?.strip_prefix("Deployed ")?;
    let (version, digest) = match rest.split_once(" (") {
        Some((version, digest)) => (version, digest.strip_suffix(')')),
        None => (rest, None),
    };
    let mut record = ReleaseRecord::new(version);
    record.digest = digest
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_owned);
    Some(record)
}

/// How a run ended, as the `status` output and the ledger's state name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Success,
    /// The deploy ran and failed (a host, a health check).
    Failure,
    /// It could not run (configuration, lock, cancellation).
    Error,
}

impl Ending {
    pub fn state(self) -> DeploymentState {
        match self {
            Ending::Success => DeploymentState::Success,
            Ending::Failure => DeploymentState::Failure,
            Ending::Error => DeploymentState::Error,
        }
    }

    pub fn name(self) -> &'static str {
        self.state().as_str()
    }
}

/// Everything the outputs and the summary say about a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub service: String,
    pub command: String,
    pub environment: String,
    pub environment_url: Option<String>,
    pub version: String,
    pub digest: Option<String>,
    pub deployment_id: Option<u64>,
    pub previous_version: Option<String>,
    /// Host → roles.
    pub roles: BTreeMap<String, Vec<String>>,
    /// The error the run ended with.
    pub error: Option<String>,
    pub lock_takeover: Option<String>,
}

/// The step outputs: `deployment-id`, `url`, `version`, `digest`, `status`, `previous-version`,
/// `rollback-command`.
pub fn outputs(
    report: &Report,
    ending: Ending,
    rollback: Option<&RollbackHint>,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "deployment-id",
            report
                .deployment_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        ),
        ("url", report.environment_url.clone().unwrap_or_default()),
        ("version", report.version.clone()),
        ("digest", report.digest.clone().unwrap_or_default()),
        ("status", ending.name().to_owned()),
        (
            "previous-version",
            report.previous_version.clone().unwrap_or_default(),
        ),
        (
            "rollback-command",
            rollback.map(|r| r.command.clone()).unwrap_or_default(),
        ),
    ]
}

/// Appends the outputs to `GITHUB_OUTPUT`.
pub fn write_outputs(
    path: &std::path::Path,
    entries: &[(&'static str, String)],
) -> Result<(), String> {
    let pairs: Vec<(&str, &str)> = entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
    EnvFile::new(path)
        .set_all(&pairs)
        .map_err(|e| e.to_string())
}

/// The job summary of a run (markdown, secrets already redacted by `redact`).
#[expect(
    clippy::too_many_lines,
    reason = "the summary's sections read top to bottom"
)]
pub fn summary(
    report: &Report,
    facts: &RunFacts,
    ending: Ending,
    context: Option<&ActionsContext>,
    rollback: Option<&RollbackHint>,
    redact: &dyn Fn(&str) -> String,
) -> Summary {
    let mut summary = Summary::new();
    let is_rollback = report.command == "rollback";
    let verb = match (ending, is_rollback) {
        (Ending::Success, false) => "Deployed",
        (Ending::Success, true) => "Rolled back to",
        (Ending::Failure, false) => "Deploy failed:",
        (Ending::Failure, true) => "Rollback failed:",
        (Ending::Error, false) => "Deploy stopped:",
        (Ending::Error, true) => "Rollback stopped:",
    };
    let icon = match ending {
        Ending::Success => "✅",
        Ending::Failure => "❌",
        Ending::Error => "⚠️",
    };
    summary.raw(&format!(
        "## {icon} {verb} {} `{}` to {}",
        md_escape(&report.service),
        md_escape(&report.version),
        md_escape(&report.environment)
    ));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let environment = match &report.environment_url {
        Some(url) => md_link(&report.environment, url),
        None => md_escape(&report.environment),
    };
    rows.push(vec!["Environment".to_owned(), environment]);
    rows.push(vec![
        "Version".to_owned(),
        format!("`{}`", md_escape(&report.version)),
    ]);
    rows.push(vec![
        "Digest".to_owned(),
        report.digest.as_deref().map_or_else(
            || "unknown".to_owned(),
            |digest| format!("`{}`", md_escape(digest)),
        ),
    ]);
    if let Some(context) = context {
        let sha = context.deploy_sha();
        rows.push(vec![
            "Commit".to_owned(),
            md_link(
                &sha.chars().take(12).collect::<String>(),
                &context.commit_url(sha),
            ),
        ]);
        rows.push(vec![
            "Run".to_owned(),
            md_link(
                &format!("{} (attempt {})", context.run_id, context.run_attempt),
                &context.attempt_url(),
            ),
        ]);
    }
    if let Some(id) = report.deployment_id {
        rows.push(vec!["Deployment".to_owned(), id.to_string()]);
    }
    if let Some(previous) = &report.previous_version {
        rows.push(vec![
            "Previous version".to_owned(),
            format!("`{}`", md_escape(previous)),
        ]);
    }
    rows.push(vec!["Status".to_owned(), ending.name().to_owned()]);
    rows.push(vec!["Total time".to_owned(), seconds(facts.elapsed)]);
    summary.table(&["", ""], &rows);

    if let Some(error) = &report.error {
        summary.code_block("text", &redact(error));
    }

    summary.heading(3, "Hosts");
    let host_rows: Vec<Vec<String>> = facts
        .hosts
        .iter()
        .map(|(host, host_facts)| {
            let status = match host_facts.status {
                HostStatus::Succeeded => "✅ ok".to_owned(),
                HostStatus::Failed => "❌ failed".to_owned(),
                HostStatus::Pending => "⏸ not finished".to_owned(),
            };
            vec![
                format!("`{}`", md_escape(host)),
                md_escape(
                    &report
                        .roles
                        .get(host)
                        .map(|r| r.join(", "))
                        .unwrap_or_default(),
                ),
                status,
                seconds(host_facts.elapsed),
            ]
        })
        .collect();
    summary.table(&["Host", "Roles", "Status", "Time"], &host_rows);

    if !facts.timings.is_empty() {
        summary.heading(3, "Timing");
        let timing_rows: Vec<Vec<String>> = facts
            .timings
            .iter()
            .map(|t| vec![md_escape(&t.phase), seconds(t.elapsed)])
            .collect();
        summary.table(&["Phase", "Time"], &timing_rows);
    }

    if let Some(takeover) = &report.lock_takeover {
        summary.paragraph(&redact(takeover));
    }

    if !facts.audit.is_empty() {
        summary.heading(3, "Audit");
        let lines: Vec<String> = facts.audit.iter().map(|l| redact(l)).collect();
        summary.code_block("text", &lines.join("\n"));
    }

    if ending != Ending::Success {
        let mut body = String::new();
        for failure in &facts.failures {
            let _ = writeln!(body, "{}", redact(failure));
        }
        for (host, host_facts) in &facts.hosts {
            if host_facts.status != HostStatus::Failed && host_facts.output.is_empty() {
                continue;
            }
            let mut text = String::new();
            for failure in &host_facts.failures {
                let _ = writeln!(text, "{}", redact(failure));
            }
            if !host_facts.output.is_empty() {
                text.push_str("\nLast output (container log tail, health state):\n");
                for line in &host_facts.output {
                    let _ = writeln!(text, "{}", redact(line));
                }
            }
            let _ = write!(
                body,
                "\n<details open><summary>{}</summary>\n\n{}\n</details>\n",
                md_escape(host),
                md_code_block("text", &text)
            );
        }
        for warning in &facts.warnings {
            let _ = writeln!(body, "\n> warning: {}", md_escape(&redact(warning)));
        }
        if !body.trim().is_empty() {
            summary.heading(3, "Diagnostics");
            summary.raw(&body);
        }
    }

    summary.heading(3, "Rollback");
    match (rollback, &report.previous_version) {
        (Some(hint), Some(previous)) => {
            summary.raw(&format!(
                "Roll back to `{}`: {} (or from a terminal):",
                md_escape(previous),
                md_link("run the rollback workflow", &hint.page_url)
            ));
            summary.code_block("sh", &hint.command);
        }
        (Some(hint), None) => {
            summary.raw(&format!(
                "No earlier successful deployment of {} is recorded; {} takes a `version`.",
                md_escape(&report.environment),
                md_link("the rollback workflow", &hint.page_url)
            ));
        }
        (None, _) => {
            summary.paragraph(
                "Roll back with `dhow rollback` (the previous successful deployment is used).",
            );
        }
    }
    summary
}

/// A deploy run in GitHub mode: the log reporter (masks first), the ledger, and what the
/// outputs and the summary will say.
#[derive(Debug)]
pub struct CiRun {
    pub actions: Actions,
    reporter: Mutex<GitHubReporter>,
    ledger: OnceLock<Ledger>,
    report: Mutex<Report>,
    takeovers: Mutex<Vec<String>>,
    rollback: Option<RollbackTarget>,
    /// Set when a ledger call failed (a read-only token on a fork's pull request): the run goes
    /// on without the ledger, warned once.
    ledger_failed: std::sync::atomic::AtomicBool,
}

impl CiRun {
    /// Starts GitHub mode: the token and the CI private key are masked before anything else is
    /// written.
    pub fn start(actions: Actions, printer: Printer, env: &BTreeMap<String, String>) -> Self {
        let mut secrets: Vec<String> = Vec::new();
        if let Some(token) = &actions.token {
            secrets.push(token.expose().clone());
        }
        for name in ["DHOW_SSH_PRIVATE_KEY", "GITHUB_TOKEN", "DHOW_GITHUB_TOKEN"] {
            if let Some(value) = env_value(env, name) {
                secrets.push(value.to_owned());
            }
        }
        let reporter = GitHubReporter::new(printer, &secrets);
        let report = Report {
            environment: actions.options.environment.clone(),
            environment_url: actions.options.environment_url.clone(),
            ..Report::default()
        };
        Self {
            actions,
            reporter: Mutex::new(reporter),
            ledger: OnceLock::new(),
            report: Mutex::new(report),
            takeovers: Mutex::new(Vec::new()),
            rollback: None,
            ledger_failed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn ledger_ok(&self) -> Option<&Ledger> {
        if self
            .ledger_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        self.ledger.get()
    }

    fn ledger_error(&self, action: &str, error: &ApiError) {
        self.ledger_failed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.warn(&ledger_warning(action, error));
    }

    /// Makes this run a rollback to `target` (its deployment records the target's commit and the
    /// task `deploy:rollback`).
    pub fn roll_back_to(&mut self, target: RollbackTarget) {
        self.rollback = Some(target);
    }

    fn with_reporter<R>(&self, f: impl FnOnce(&mut GitHubReporter) -> R) -> Option<R> {
        self.reporter.lock().ok().map(|mut r| f(&mut r))
    }

    fn with_report(&self, f: impl FnOnce(&mut Report)) {
        if let Ok(mut report) = self.report.lock() {
            f(&mut report);
        }
    }

    /// Registers more secret values with `::add-mask::`.
    pub fn mask<I, S>(&self, secrets: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.with_reporter(|r| r.mask(secrets));
    }

    /// Renders an event.
    pub fn report(&self, event: &dhow_core::event::Event) {
        self.with_reporter(|r| r.report(event));
    }

    /// A warning annotation.
    pub fn warn(&self, message: &str) {
        self.with_reporter(|r| r.warning(message));
    }

    /// The version as far as it is known before the configuration is read.
    pub fn set_version(&self, version: Option<&str>) {
        if let Some(version) = version {
            self.with_report(|report| version.clone_into(&mut report.version));
        }
    }

    /// Fills in what the deploy is about.
    pub fn describe(
        &self,
        service: &str,
        version: &str,
        roles: BTreeMap<String, Vec<String>>,
        default_url: Option<String>,
    ) {
        self.with_report(|report| {
            service.clone_into(&mut report.service);
            report.command = if self.rollback.is_some() {
                "rollback".to_owned()
            } else {
                "deploy".to_owned()
            };
            version.clone_into(&mut report.version);
            report.roles = roles;
            if report.environment_url.is_none() {
                report.environment_url = default_url;
            }
        });
    }

    /// Opens the ledger (when there is a repository, a token and `DHOW_DEPLOYMENT` is not
    /// `false`) and looks up the previous successful deployment.
    pub async fn open_ledger(&self) {
        if !self.actions.options.ledger {
            return;
        }
        let (Some(context), Some(token)) = (&self.actions.context, &self.actions.token) else {
            if self.actions.context.is_some() {
                self.warn("no GitHub token (DHOW_GITHUB_TOKEN or GITHUB_TOKEN): the deployment is not recorded in GitHub Deployments");
            }
            return;
        };
        let github = match GitHub::new(&context.api_url, token.clone(), context.repository.clone())
        {
            Ok(github) => github,
            Err(error) => {
                self.warn(&ledger_warning("connect", &error));
                return;
            }
        };
        let url = self
            .report
            .lock()
            .ok()
            .and_then(|r| r.environment_url.clone());
        let ledger = Ledger::open(github, context.clone(), &self.actions.options, url).await;
        match ledger.previous_success().await {
            Ok(Some((_, record))) => {
                self.with_report(|r| r.previous_version = Some(record.version));
            }
            Ok(None) => {}
            Err(error) => self.warn(&ledger_warning("read the previous deployments", &error)),
        }
        let _ = self.ledger.set(ledger);
    }

    /// Starts the ledger entry (once the lock is held and the image pulled).
    pub async fn start_deployment(
        &self,
        digest: Option<String>,
        hosts: &[String],
        config_hash: &str,
    ) {
        // The digest is reported (outputs, summary) even without the ledger.
        let Some(ledger) = self.ledger_ok() else {
            if digest.is_some() {
                self.with_report(|r| r.digest = digest);
            }
            return;
        };
        let record = {
            let Ok(mut report) = self.report.lock() else {
                return;
            };
            report.digest.clone_from(&digest);
            let mut record = ReleaseRecord::new(report.version.clone());
            record.digest = digest;
            record.destination = self.actions.options.environment.clone().into();
            record.hosts = hosts.to_vec();
            record.roles = {
                let mut roles: Vec<String> = report.roles.values().flatten().cloned().collect();
                roles.sort();
                roles.dedup();
                roles
            };
            record.config_hash = Some(config_hash.to_owned());
            record
        };
        let (task, sha) = match &self.rollback {
            Some(target) => ("deploy:rollback", Some(target.sha.as_str())),
            None => ("deploy", None),
        };
        match ledger.start(&record, task, sha).await {
            Ok(id) => self.with_report(|r| r.deployment_id = Some(id)),
            Err(error) => self.ledger_error("create the deployment", &error),
        }
    }

    /// Decides about a lock someone else holds: take over a stale one (with an audit line),
    /// wait up to the lock wait for a live one.
    pub async fn judge_lock(&self, details: &str) -> LockVerdict {
        let Some(context) = &self.actions.context else {
            return LockVerdict::Wait {
                reason: "not a GitHub Actions run".to_owned(),
            };
        };
        let github = self.ledger.get().map(Ledger::github);
        let verdict = judge_lock(github, context, details).await;
        if let LockVerdict::Stale { reason } = &verdict
            && let Ok(mut takeovers) = self.takeovers.lock()
        {
            takeovers.push(reason.clone());
        }
        verdict
    }

    /// The lock wait.
    pub fn lock_wait(&self) -> Duration {
        self.actions.options.lock_wait
    }

    /// Ends the run: the final deployment status, the outputs, the summary, and an `::error`
    /// for `error`. `ending` says how it went.
    pub async fn finish(
        &self,
        ending: Ending,
        error: Option<&str>,
        hosts: &[String],
        config_hash: &str,
    ) {
        if let Some(ledger) = self.ledger_ok()
            && ledger.deployment().is_none()
        {
            self.start_deployment(None, hosts, config_hash).await;
        }
        if let Some(ledger) = self.ledger_ok() {
            let description = match (ending, error) {
                (Ending::Success, _) => {
                    let report = self.report.lock().ok();
                    let mut record = ReleaseRecord::new(
                        report
                            .as_ref()
                            .map(|r| r.version.clone())
                            .unwrap_or_default(),
                    );
                    record.digest = report.as_ref().and_then(|r| r.digest.clone());
                    success_description(&record)
                }
                (_, Some(error)) => self
                    .with_reporter(|r| r.redact(error.lines().next().unwrap_or_default()))
                    .unwrap_or_default(),
                (_, None) => ending.name().to_owned(),
            };
            match ledger.finish(ending.state(), &description).await {
                Ok(deactivated) if !deactivated.is_empty() => {
                    self.report(&dhow_core::event::Event::Output {
                        host: None,
                        stream: dhow_core::event::Stream::Stdout,
                        line: format!(
                            "Marked superseded deployments inactive: {}",
                            deactivated
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                Ok(_) => {}
                Err(err) => self.ledger_error("post the deployment status", &err),
            }
        }
        self.write_files(ending, error);
    }

    /// Writes the outputs and the summary, and annotates `error` (for failures before the
    /// deploy started, e.g. a configuration error).
    pub fn write_files(&self, ending: Ending, error: Option<&str>) {
        let mut report = self.report.lock().map(|r| r.clone()).unwrap_or_default();
        report.error = error.map(str::to_owned);
        if let Ok(takeovers) = self.takeovers.lock()
            && !takeovers.is_empty()
        {
            report.lock_takeover = Some(format!(
                "Took over a stale deploy lock: {}",
                takeovers.join("; ")
            ));
        }
        let rollback = report
            .previous_version
            .as_deref()
            .and_then(|v| self.actions.rollback_hint(v))
            .or_else(|| {
                self.actions.context.as_ref().map(|_| RollbackHint {
                    page_url: self
                        .actions
                        .context
                        .as_ref()
                        .map(|c| c.workflow_page_url(&self.actions.options.rollback_workflow))
                        .unwrap_or_default(),
                    command: String::new(),
                })
            });
        let rollback_with_command = rollback.as_ref().filter(|r| !r.command.is_empty());
        let Some(context) = &self.actions.context else {
            return;
        };
        self.with_reporter(|reporter| {
            if let Some(error) = error
                && ending != Ending::Success
            {
                reporter.error("dhow: deploy did not succeed", error);
            }
            reporter.close();
            let mut problems = Vec::new();
            let redact = |text: &str| reporter.redact(text);
            if let Some(path) = &context.files.output {
                let entries: Vec<(&'static str, String)> =
                    outputs(&report, ending, rollback_with_command)
                        .into_iter()
                        .map(|(k, v)| (k, redact(&v)))
                        .collect();
                if let Err(message) = write_outputs(path, &entries) {
                    problems.push(format!("could not write the step outputs: {message}"));
                }
            }
            if let Some(path) = &context.files.step_summary {
                let markdown = summary(
                    &report,
                    reporter.facts(),
                    ending,
                    Some(context),
                    rollback.as_ref(),
                    &redact,
                );
                if let Err(error) = dhow_github::workflow::append_summary(path, &markdown) {
                    problems.push(format!("could not write the job summary: {error}"));
                }
            }
            for problem in problems {
                reporter.warning(&problem);
            }
        });
    }

    /// Reports an error that stopped the run before anything was deployed (configuration,
    /// secrets): annotations, outputs and the summary.
    pub fn fail_early(&self, error: &crate::error::Error) {
        if let crate::error::Error::Config(errors) = error {
            self.with_reporter(|r| r.config_errors(errors));
            self.write_files(Ending::Error, None);
        } else {
            self.write_files(Ending::Error, Some(&error.render()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_holder_is_read_from_the_run_url() {
        let details = "Locked by: ci at 2026-01-01T00:00:00Z\nVersion: v1\nMessage: Automatic deploy lock by GitHub Actions run 77 attempt 2 (https://github.com/o/r/actions/runs/77/attempts/2)";
        assert_eq!(
            lock_holder(details, "o/r"),
            Some(LockHolder {
                run_id: 77,
                attempt: Some(2)
            })
        );
        assert_eq!(lock_holder(details, "o/other"), None);
        assert_eq!(
            lock_holder("https://github.com/o/r/actions/runs/5", "o/r"),
            Some(LockHolder {
                run_id: 5,
                attempt: None
            })
        );
        assert_eq!(lock_holder("Message: manual", "o/r"), None);
    }

    #[test]
    fn digest_of_the_repository_is_picked() {
        let json = r#"["other/app@sha256:aaa","registry:5000/app@sha256:bbb"]"#;
        assert_eq!(
            digest_for(json, "registry:5000/app").as_deref(),
            Some("sha256:bbb")
        );
        assert_eq!(digest_for("[]", "x"), None);
        assert_eq!(
            dhow_core::cmd::for_exec(&repo_digests_command("r/app:v1")),
            "docker image inspect --format '{{json .RepoDigests}}' r/app:v1"
        );
    }

    #[test]
    fn success_description_round_trips() {
        let mut record = ReleaseRecord::new("v1");
        record.digest = Some(format!("sha256:{}", "a".repeat(64)));
        let text = success_description(&record);
        assert!(text.len() <= 140);
        let back = record_from_description(Some(&text)).expect("record");
        assert_eq!(back.version, "v1");
        assert_eq!(back.digest, record.digest);
    }

    #[test]
    fn options_defaults_and_errors() {
        let env = BTreeMap::new();
        let options = Options::from_env(&env, Some("staging")).expect("options");
        assert_eq!(options.environment, "staging");
        assert_eq!(options.rollback_workflow, DEFAULT_ROLLBACK_WORKFLOW);
        assert!(options.ledger);
        let env = BTreeMap::from([("DHOW_DEPLOYMENT".to_owned(), "maybe".to_owned())]);
        assert!(Options::from_env(&env, None).is_err());
    }

    fn record(version: &str, digest: &str) -> ReleaseRecord {
        let mut record = ReleaseRecord::new(version);
        record.digest = Some(digest.to_owned());
        record
    }

    #[test]
    fn rollback_goes_to_the_success_before_the_live_one() {
        let successes = vec![
            (3, "c".to_owned(), record("v3", "sha256:3")),
            (2, "b".to_owned(), record("v3", "sha256:3")),
            (1, "a".to_owned(), record("v2", "sha256:2")),
        ];
        let target = pick_rollback(&successes).expect("target");
        assert_eq!(target.deployment_id, 1);
        assert_eq!(target.sha, "a");
        assert_eq!(target.record.version, "v2");
        assert_eq!(target.current.map(|c| c.version).as_deref(), Some("v3"));
        assert_eq!(pick_rollback(&successes[..2]), None);
        let named = pick_release(&successes, "v2").expect("v2");
        assert_eq!(named.deployment_id, 1);
        let by_digest = pick_release(&successes, "reg/app@sha256:3").expect("digest");
        assert_eq!(by_digest.deployment_id, 3);
        assert_eq!(pick_release(&successes, "v9"), None);
        assert_eq!(pick_rollback(&[]), None);
    }

    #[test]
    fn pinned_pull_steps_pull_by_digest_and_tag() {
        let mut stages = vec![dhow_core::plan::Stage {
            label: "Pull app image".to_owned(),
            phase: dhow_core::plan::Phase::Pull,
            hosts: vec![dhow_core::plan::HostSteps {
                host: "h1".to_owned(),
                steps: vec![dhow_core::plan::Step {
                    label: "pull".to_owned(),
                    action: Action::Run(Command::from_words(["docker", "pull", "r/app:v1"])),
                }],
                roles: Vec::new(),
            }],
            pause_after: 0,
            app_boot_hooks: false,
            after_hook: None,
            pull: None,
        }];
        assert_eq!(
            pin_to_digest(&mut stages, "r/app", "sha256:abc", "r/app:v1"),
            1
        );
        let Action::Run(command) = &stages[0].hosts[0].steps[0].action else {
            panic!("not a run step");
        };
        assert_eq!(
            dhow_core::cmd::for_exec(command),
            "docker pull r/app@sha256:abc && docker tag r/app@sha256:abc r/app:v1"
        );
    }

    #[test]
    fn config_hash_is_sha256() {
        assert_eq!(
            config_hash(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
