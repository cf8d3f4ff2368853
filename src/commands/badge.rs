//! `dhow badge` and `dhow status`: read the GitHub deployments ledger per environment; `badge`
//! writes a shields.io endpoint JSON and an SVG per environment (and can publish them to a
//! branch through the contents API), `status` prints the live version, digest, when and by whom
//! it was deployed, and what the hosts of the configuration are running.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use dhow_core::Secret;
use dhow_core::badge::{Badge, BadgeFacts, BadgeState, parse_timestamp, short_version};
use dhow_core::docker::app::App;
use dhow_github::client::{ApiError, GitHub};
use dhow_github::context::Repository;
use dhow_github::deployments::{
    Deployment, DeploymentFilter, DeploymentStatus, ReleaseRecord, SuccessfulDeployment,
};
use dhow_remote::{RemoteCommand, Transport as _};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::{BadgeArgs, GlobalArgs, StatusArgs};
use crate::error::Error;
use crate::printer::Printer;
use crate::{facts, settings};

/// The newest dhow deployment of an environment and its newest status.
struct Latest {
    deployment: Deployment,
    record: ReleaseRecord,
    status: Option<DeploymentStatus>,
}

/// What the ledger says of one environment.
struct EnvironmentLedger {
    name: String,
    latest: Option<Latest>,
    live: Option<SuccessfulDeployment>,
}

impl EnvironmentLedger {
    fn badge(&self, now_epoch: i64) -> Badge {
        let Some(latest) = &self.latest else {
            return Badge::new(&BadgeFacts {
                environment: &self.name,
                version: None,
                state: BadgeState::Inactive,
                since_epoch: None,
                now_epoch,
            });
        };
        let state = latest.status.as_ref().map_or(BadgeState::InProgress, |s| {
            BadgeState::from_deployment_state(&s.state)
        });
        let since = latest
            .status
            .as_ref()
            .map_or(latest.deployment.created_at.as_str(), |s| {
                s.created_at.as_str()
            });
        Badge::new(&BadgeFacts {
            environment: &self.name,
            version: Some(&latest.record.version),
            state,
            since_epoch: parse_timestamp(since),
            now_epoch,
        })
    }
}

/// The GitHub client from `GITHUB_TOKEN` (or `GH_TOKEN`), `GITHUB_REPOSITORY` and
/// `GITHUB_API_URL`; `None` when the token or the repository is not set.
pub(crate) fn client(env: &BTreeMap<String, String>) -> Result<Option<GitHub>, Error> {
    let token = ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|name| env.get(*name).filter(|v| !v.is_empty()));
    let repository = env.get("GITHUB_REPOSITORY").filter(|v| !v.is_empty());
    let (Some(token), Some(repository)) = (token, repository) else {
        return Ok(None);
    };
    let repository = Repository::parse(repository).ok_or_else(|| Error::Failed {
        message: format!("GITHUB_REPOSITORY is not OWNER/REPO: {repository:?}"),
    })?;
    let api_url = env
        .get("GITHUB_API_URL")
        .filter(|v| !v.is_empty())
        .map_or("https://api.github.com", String::as_str);
    GitHub::new(api_url, Secret::new(token.clone()), repository)
        .map(Some)
        .map_err(|source| github_error("set up the GitHub client", source))
}

pub(crate) fn github_error(action: &str, source: ApiError) -> Error {
    Error::GitHub {
        action: action.to_owned(),
        source: Box::new(source),
    }
}

fn missing_github() -> Error {
    Error::Failed {
        message: "the deployments ledger needs GITHUB_TOKEN (or GH_TOKEN) and GITHUB_REPOSITORY \
                  (OWNER/REPO); in GitHub Actions both are set for you"
            .to_owned(),
    }
}

/// The environments to show: the ones asked for, else every environment that has a dhow
/// deployment, in name order.
async fn environments(github: &GitHub, asked: &[String]) -> Result<Vec<String>, Error> {
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    let all = github
        .list_deployments(&DeploymentFilter::default())
        .await
        .map_err(|e| github_error("list deployments", e))?;
    let mut names: Vec<String> = all
        .iter()
        .filter(|d| d.record().is_some())
        .map(|d| d.environment.clone())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(Error::Failed {
            message: format!(
                "no dhow deployments in the ledger of {}; deploy first, or name environments \
                 with --environment",
                github.repository().full_name()
            ),
        });
    }
    Ok(names)
}

async fn ledger(github: &GitHub, name: &str) -> Result<EnvironmentLedger, Error> {
    let deployments = github
        .list_deployments(&DeploymentFilter::environment(name))
        .await
        .map_err(|e| github_error(&format!("list the deployments of {name}"), e))?;
    let mut latest = None;
    if let Some((deployment, record)) = deployments
        .into_iter()
        .find_map(|d| d.record().map(|r| (d, r)))
    {
        let statuses = github
            .list_deployment_statuses(deployment.id)
            .await
            .map_err(|e| github_error(&format!("list the statuses of {}", deployment.id), e))?;
        latest = Some(Latest {
            status: statuses.into_iter().next(),
            deployment,
            record,
        });
    }
    let live = github
        .previous_successful_deployment(name, None)
        .await
        .map_err(|e| github_error(&format!("find the live deployment of {name}"), e))?;
    Ok(EnvironmentLedger {
        name: name.to_owned(),
        latest,
        live,
    })
}

/// A file name for an environment (`review/pr-12` → `review-pr-12`).
fn file_stem(environment: &str) -> String {
    environment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn badge(args: &BadgeArgs, printer: Printer) -> Result<(), Error> {
    let env = settings::environment();
    let now = facts::now_epoch();
    let runtime = runtime()?;
    // octocrab's client needs the runtime it is built in.
    runtime.block_on(async {
        let github = client(&env)?.ok_or_else(missing_github)?;
        let names = environments(&github, &args.environments).await?;
        let mut written = Vec::new();
        for name in &names {
            let ledger = ledger(&github, name).await?;
            let badge = ledger.badge(now);
            let stem = file_stem(name);
            let json = format!("{}\n", badge.endpoint_json());
            let svg = badge.svg();
            write_file(&args.out.join(format!("{stem}.json")), json.as_bytes())?;
            write_file(&args.out.join(format!("{stem}.svg")), svg.as_bytes())?;
            printer.info(&format!(
                "{name}: {} ({})",
                badge.message,
                badge.state.color_name()
            ));
            written.push((name.clone(), stem, json, svg, badge));
        }
        if let Some(branch) = &args.publish {
            publish(&github, &env, branch, &args.path, &written, printer).await?;
        }
        Ok(())
    })
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::WriteFile {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, contents).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

async fn publish(
    github: &GitHub,
    env: &BTreeMap<String, String>,
    branch: &str,
    dir: &str,
    written: &[(String, String, String, String, Badge)],
    printer: Printer,
) -> Result<(), Error> {
    let publish_error = |e| github_error(&format!("publish the badges to branch {branch}"), e);
    if github
        .branch_head(branch)
        .await
        .map_err(publish_error)?
        .is_none()
    {
        let from = env
            .get("GITHUB_SHA")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Failed {
                message: format!(
                    "branch {branch} does not exist and GITHUB_SHA (the commit to create it \
                     from) is not set"
                ),
            })?;
        github
            .ensure_branch(branch, from)
            .await
            .map_err(publish_error)?;
    }
    let repo = github.repository().full_name();
    let dir = dir.trim_matches('/');
    let mut markdown = String::new();
    for (name, stem, json, svg, badge) in written {
        let message = format!("dhow badge: {name} {}", badge.message);
        for (ext, contents) in [("json", json.as_bytes()), ("svg", svg.as_bytes())] {
            let path = if dir.is_empty() {
                format!("{stem}.{ext}")
            } else {
                format!("{dir}/{stem}.{ext}")
            };
            github
                .put_file(&path, branch, contents, &message)
                .await
                .map_err(publish_error)?;
        }
        let raw = format!("https://raw.githubusercontent.com/{repo}/{branch}/{dir}/{stem}");
        let _ = writeln!(markdown, "![{name}]({raw}.svg)");
        let _ = writeln!(
            markdown,
            "![{name}](https://img.shields.io/endpoint?url={})",
            percent_encode(&format!("{raw}.json"))
        );
    }
    printer.info(&format!("published to branch {branch}; embed with:"));
    printer.data(markdown.trim_end());
    Ok(())
}

/// Percent-encodes everything but unreserved characters (for a URL inside a query string).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub fn status(args: &StatusArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let env = settings::environment();
    let now = facts::now_epoch();
    let with_hosts = !args.no_hosts;
    let has_github = ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .any(|name| env.get(*name).is_some_and(|v| !v.is_empty()));
    if !has_github && !with_hosts {
        return Err(missing_github());
    }
    let run = if with_hosts {
        Some(Run::prepare(global, printer, "status", None, false)?)
    } else {
        None
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let github = client(&env)?;
        if github.is_none() && !with_hosts {
            return Err(missing_github());
        }
        let mut out = String::new();
        match &github {
            Some(github) => {
                for name in environments(github, &args.environments).await? {
                    let ledger = ledger(github, &name).await?;
                    describe(&mut out, &ledger, now);
                }
            }
            None => out.push_str(
                "ledger: not read (set GITHUB_TOKEN and GITHUB_REPOSITORY to read GitHub's \
                 deployments)\n",
            ),
        }
        if let Some(run) = &run {
            hosts(&mut out, run).await?;
        }
        printer.data(out.trim_end());
        Ok(())
    })
}

fn describe(out: &mut String, ledger: &EnvironmentLedger, now: i64) {
    let ago = |timestamp: &str| {
        parse_timestamp(timestamp).map_or_else(
            || timestamp.to_owned(),
            |t| format!("{} ago", dhow_core::badge::age_text(now - t)),
        )
    };
    let _ = writeln!(out, "{}:", ledger.name);
    match &ledger.live {
        Some(live) => {
            let record = live.deployment.record().unwrap_or_default();
            let by = live
                .deployment
                .creator
                .as_ref()
                .map_or("unknown", |c| c.login.as_str());
            let _ = writeln!(
                out,
                "  live:     {} (deployment {}, {} by {}, at {})",
                short_version(&record.version),
                live.deployment.id,
                ago(&live.status.created_at),
                by,
                live.status.created_at
            );
            if let Some(digest) = &record.digest {
                let _ = writeln!(out, "  digest:   {digest}");
            }
            if let Some(url) = &live.status.environment_url {
                let _ = writeln!(out, "  url:      {url}");
            }
            if !record.hosts.is_empty() {
                let _ = writeln!(out, "  hosts:    {}", record.hosts.join(", "));
            }
        }
        None => {
            let _ = writeln!(out, "  live:     nothing (no successful deployment)");
        }
    }
    if let Some(latest) = &ledger.latest {
        let is_live = ledger
            .live
            .as_ref()
            .is_some_and(|l| l.deployment.id == latest.deployment.id);
        if !is_live {
            let state = latest
                .status
                .as_ref()
                .map_or("pending", |s| s.state.as_str());
            let _ = writeln!(
                out,
                "  latest:   {} {state} (deployment {}, {})",
                short_version(&latest.record.version),
                latest.deployment.id,
                ago(latest
                    .status
                    .as_ref()
                    .map_or(&latest.deployment.created_at, |s| &s.created_at))
            );
        }
    }
}

/// What each host of the configuration runs, per role.
async fn hosts(out: &mut String, run: &Run) -> Result<(), Error> {
    run.pre_connect()?;
    let pool = run.pool()?;
    let config = Arc::new(run.config.clone());
    let selection = run.selection.clone();
    let cancel = cancel_on_signals();
    let hosts = selection.hosts.clone();
    let roles = Arc::new(selection.roles.clone());
    let results = pool
        .run_on_hosts(&hosts, &cancel, move |session| {
            let config = Arc::clone(&config);
            let roles = Arc::clone(&roles);
            async move {
                let host = session.host().to_owned();
                let mut lines = Vec::new();
                for role in config.roles.iter().filter(|r| roles.contains(&r.name)) {
                    if !role.hosts.iter().any(|h| h.name == host) {
                        continue;
                    }
                    let command = App::new(&config, role, "").current_running_version();
                    let output = session.capture(&RemoteCommand::from(&command)).await?;
                    let output = output.ensure_success(&host, &RemoteCommand::from(&command))?;
                    let version = output.stdout_text().trim().to_owned();
                    let version = if version.is_empty() {
                        "nothing running".to_owned()
                    } else {
                        version
                    };
                    lines.push(format!("  {host} {}: {version}", role.name));
                }
                Ok(lines)
            }
        })
        .await;
    pool.close().await;
    run.report_learned(&pool);
    let per_host = results.into_result()?;
    let _ = writeln!(
        out,
        "hosts of {}{}:",
        run.config.service,
        run.config
            .destination
            .as_ref()
            .map_or(String::new(), |d| format!(" ({d})"))
    );
    for (_, lines) in per_host {
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("production"), "production");
        assert_eq!(file_stem("review/pr 12"), "review-pr-12");
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters() {
        assert_eq!(
            percent_encode("https://raw.githubusercontent.com/o/r/b/x.json"),
            "https%3A%2F%2Fraw.githubusercontent.com%2Fo%2Fr%2Fb%2Fx.json"
        );
    }
}
