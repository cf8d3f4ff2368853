//! `dhow preview`: the pull-request preview lifecycle. `deploy` (the safety rails: forks, the
//! label gate, the live-preview cap; then `deploy --preview N` and the sticky comment), `remove`
//! (`remove --preview N`, the preview's deployments made inactive, the comment updated), `sweep`
//! (previews of closed or idle pull requests removed) and `list`; `auto` picks deploy or remove
//! from the `pull_request` event.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dhow_core::config::preview::{self as config_preview, PreviewSettings};
use dhow_core::preview::{
    self, CapDecision, Comment, CommentState, LivePreview, PullState, SweepReason,
};
use dhow_github::client::GitHub;
use dhow_github::context::ActionsContext;
use dhow_github::deployments::{DeploymentFilter, DeploymentState, NewStatus};
use dhow_remote::{RemoteCommand, Transport as _};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::{DeployArgs, GlobalArgs, PreviewCommand, RemoveArgs};
use crate::error::Error;
use crate::printer::Printer;
use crate::{facts, settings};

pub fn run(command: PreviewCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    match command {
        PreviewCommand::Auto { deploy } => auto(&deploy, global, printer),
        PreviewCommand::Deploy { pr, deploy } => {
            let pr = number(pr, global)?;
            deploy_preview(pr, &deploy, global, printer)
        }
        PreviewCommand::Remove { pr } => {
            let pr = number(pr, global)?;
            remove_preview(pr, global, printer, "removed on request")
        }
        PreviewCommand::Sweep {
            older_than,
            dry_run,
        } => sweep(older_than.as_deref(), dry_run, global, printer),
        PreviewCommand::List => list(global, printer),
    }
}

/// The event's context, when running in Actions with a repository.
fn context(env: &BTreeMap<String, String>, global: &GlobalArgs) -> Option<ActionsContext> {
    settings::actions_for(env, global)
        .ok()
        .and_then(|actions| actions.context)
}

/// The pull request: `--pr`, else `--preview`, else the `pull_request` event's.
fn number(pr: Option<u64>, global: &GlobalArgs) -> Result<u64, Error> {
    if let Some(pr) = pr.or(global.preview) {
        return Ok(pr);
    }
    let env = settings::environment();
    context(&env, global)
        .and_then(|c| c.pull_request().map(|p| p.number))
        .ok_or_else(|| Error::Usage {
            message: "which pull request? pass --pr N (or run from a pull_request event)"
                .to_owned(),
        })
}

fn with_preview(global: &GlobalArgs, pr: u64) -> GlobalArgs {
    let mut global = global.clone();
    global.preview = Some(pr);
    global
}

/// `dhow preview auto`: from the `pull_request` event, deploy (opened, synchronize, reopened,
/// labeled) or remove (closed).
fn auto(deploy: &DeployArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let env = settings::environment();
    let Some(pull) = context(&env, global).and_then(|c| c.pull_request().cloned()) else {
        return Err(Error::Usage {
            message: "dhow preview auto runs on a pull_request event (GITHUB_EVENT_NAME=pull_request with its payload); use dhow preview deploy|remove --pr N otherwise".to_owned(),
        });
    };
    match pull.action.as_str() {
        "closed" => remove_preview(pull.number, global, printer, "the pull request was closed"),
        "opened" | "synchronize" | "reopened" | "labeled" | "ready_for_review" => {
            deploy_preview(pull.number, deploy, global, printer)
        }
        other => {
            printer.info(&format!(
                "notice: nothing to do for pull_request action {other:?}"
            ));
            Ok(())
        }
    }
}

/// The preview settings of the configuration.
fn preview_settings(run: &Run) -> Result<PreviewSettings, Error> {
    match config_preview::settings(&run.config.raw) {
        Ok(Some(settings)) => Ok(settings),
        Ok(None) | Err(_) => Err(Error::Failed {
            message: "the configuration has no valid x-dhow-preview block".to_owned(),
        }),
    }
}

/// Every preview container on `hosts`, grouped by pull request.
fn live_previews(run: &Run, hosts: &[String]) -> Result<Vec<LivePreview>, Error> {
    run.pre_connect()?;
    let pool = run.pool()?;
    let runtime = runtime()?;
    let hosts = hosts.to_vec();
    let per_host = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&hosts, &cancel, move |session| async move {
                let host = session.host().to_owned();
                let command = RemoteCommand::from(&preview::list_command());
                let output = session.capture(&command).await?;
                let output = output.ensure_success(&host, &command)?;
                Ok(preview::parse_list(&output.stdout_text()))
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    let per_host = per_host.into_result()?;
    Ok(preview::live_previews(&per_host))
}

/// A GitHub client when a token and a repository are set; the sticky comment and the ledger
/// are skipped otherwise.
fn github(env: &BTreeMap<String, String>) -> Result<Option<GitHub>, Error> {
    super::badge::client(env)
}

async fn comment(github: Option<&GitHub>, pr: u64, body: &Comment<'_>, printer: Printer) {
    let Some(github) = github else { return };
    if let Err(error) = github
        .upsert_sticky_comment(pr, preview::COMMENT_KEY, &body.markdown())
        .await
    {
        printer.warn(&format!(
            "could not update the preview comment on #{pr}: {error}"
        ));
    }
}

const HINT: &str = "Pushing to the pull request redeploys the preview; closing it removes \
                    the preview. By hand: `dhow preview deploy --pr N` / `dhow preview remove --pr N`.";

/// The rails of the event: forks get no preview unless allowed; the label gate.
fn skipped(
    pull: &dhow_github::context::PullRequestEvent,
    settings: &PreviewSettings,
) -> Option<String> {
    if pull.from_fork && !settings.forks {
        return Some(
            "the pull request comes from a fork, whose runs get no secrets (set \
             x-dhow-preview.forks: true to allow it)"
                .to_owned(),
        );
    }
    match &settings.label {
        Some(label) if !pull.labels.iter().any(|l| l == label) => {
            Some(format!("it lacks the label {label:?}"))
        }
        _ => None,
    }
}

fn deploy_preview(
    pr: u64,
    deploy: &DeployArgs,
    global: &GlobalArgs,
    printer: Printer,
) -> Result<(), Error> {
    let env = settings::environment();
    let global = with_preview(global, pr);
    let run = Run::prepare(&global, printer, "preview", Some("deploy"), false)?;
    let settings = preview_settings(&run)?;
    let context = context(&env, &global);
    let pull = context.as_ref().and_then(|c| c.pull_request().cloned());

    if let Some(reason) = pull.as_ref().and_then(|pull| skipped(pull, &settings)) {
        printer.info(&format!("notice: skipped the preview of #{pr}: {reason}"));
        return Ok(());
    }

    // The cap, over every host previews may run on.
    let live = live_previews(&run, &run.selection.hosts)?;
    match preview::cap(&live, pr, &settings) {
        CapDecision::Deploy => {}
        CapDecision::Refuse { live, max } => {
            let list = live
                .iter()
                .map(|n| format!("#{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::Failed {
                message: format!(
                    "the preview of #{pr} was refused: {max} previews are live ({list}), the \
                     most x-dhow-preview.max allows; remove one (dhow preview remove --pr N) or \
                     set when_full: remove_oldest"
                ),
            });
        }
        CapDecision::RemoveFirst(oldest) => {
            for old in oldest {
                printer.info(&format!(
                    "removing the preview of #{old} (the oldest) to stay within max: {}",
                    settings.max
                ));
                remove_preview(
                    old,
                    &global,
                    printer,
                    &format!("removed to make room for #{pr}"),
                )?;
            }
        }
    }

    let url = run.config.proxy.hosts().first().map_or_else(
        || format!("/{}", config_preview::mark(pr)),
        |host| {
            let scheme = if settings.ssl { "https" } else { "http" };
            format!("{scheme}://{host}")
        },
    );
    let version = run.version.clone();
    let log_url = context.as_ref().map(ActionsContext::log_url);
    let rt = runtime()?;
    // One sticky comment, found by its marker and edited in place at each state.
    let post = |state: CommentState| -> Result<(), Error> {
        let body = Comment {
            pr,
            state,
            url: Some(url.as_str()),
            version: version.as_deref(),
            log_url: log_url.as_deref(),
            hint: Some(HINT),
        };
        rt.block_on(async {
            let github = github(&env)?;
            comment(github.as_ref(), pr, &body, printer).await;
            Ok::<(), Error>(())
        })
    };
    post(CommentState::Deploying)?;
    let result = super::deploy::deploy(deploy, &global, printer);
    match &result {
        Ok(()) => {
            post(CommentState::Live)?;
            printer.info(&format!("preview of #{pr}: {url}"));
        }
        Err(error) => post(CommentState::Failed(error.to_string()))?,
    }
    result
}

fn remove_preview(pr: u64, global: &GlobalArgs, printer: Printer, why: &str) -> Result<(), Error> {
    let env = settings::environment();
    let global = with_preview(global, pr);
    let args = RemoveArgs {
        confirmed: true,
        dry_run: false,
        output: None,
        lock_wait: None,
    };
    super::remove::remove(&args, &global, printer)?;
    remove_volumes(pr, &global, printer)?;
    printer.info(&format!("removed the preview of #{pr} ({why})"));
    let environment = settings::preview_environment(pr);
    runtime()?.block_on(async {
        let github = github(&env)?;
        let Some(github) = github.as_ref() else {
            return Ok(());
        };
        // Its deployments become inactive, then the comment says it is gone.
        match github
            .list_deployments(&DeploymentFilter::environment(&environment))
            .await
        {
            Ok(deployments) => {
                for deployment in deployments {
                    let status = NewStatus::new(DeploymentState::Inactive)
                        .description(format!("preview of #{pr} {why}"));
                    if let Err(error) = github
                        .create_deployment_status(deployment.id, &status)
                        .await
                    {
                        printer.warn(&format!(
                            "could not mark deployment {} inactive: {error}",
                            deployment.id
                        ));
                    }
                }
            }
            Err(error) => printer.warn(&format!(
                "could not list the deployments of {environment}: {error}"
            )),
        }
        let body = Comment {
            pr,
            state: CommentState::Removed,
            url: None,
            version: None,
            log_url: None,
            hint: Some(why),
        };
        comment(Some(github), pr, &body, printer).await;
        Ok(())
    })
}

/// Deletes the preview's named volumes on every host of its configuration (its own names only:
/// each carries `-pr-<N>`).
fn remove_volumes(pr: u64, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "preview", Some("remove"), false)?;
    let names = preview::named_volumes(&run.config, pr);
    if names.is_empty() {
        return Ok(());
    }
    let mut hosts = run.selection.hosts.clone();
    for accessory in &run.config.accessories {
        for host in &accessory.hosts {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let command = RemoteCommand::from(&preview::remove_volumes_command(&names));
    let result = runtime()?.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&hosts, &cancel, move |session| {
                let command = command.clone();
                async move {
                    let host = session.host().to_owned();
                    let output = session.capture(&command).await?;
                    output.ensure_success(&host, &command)?;
                    Ok(())
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    result.into_result()?;
    printer.info(&format!("removed the volumes {}", names.join(", ")));
    Ok(())
}

/// `dhow preview list`: the previews on the hosts.
fn list(global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "preview", Some("list"), false)?;
    let live = live_previews(&run, &run.selection.hosts)?;
    let now = facts::now_epoch();
    let mut out = String::new();
    if live.is_empty() {
        out.push_str("no previews on the hosts\n");
    }
    for p in &live {
        let age = p.last_deployed.map_or_else(
            || "unknown".to_owned(),
            |t| format!("{} ago", dhow_core::badge::age_text(now - t)),
        );
        let _ = writeln!(
            out,
            "#{}  {} container(s) on {}  last deployed {age}",
            p.pr,
            p.containers,
            p.hosts.join(", ")
        );
    }
    printer.data(out.trim_end());
    Ok(())
}

/// `dhow preview sweep`: removes the previews whose pull request is closed (or gone), or idle
/// longer than the TTL (`--older-than`, else `x-dhow-preview.ttl`).
fn sweep(
    older_than: Option<&str>,
    dry_run: bool,
    global: &GlobalArgs,
    printer: Printer,
) -> Result<(), Error> {
    let env = settings::environment();
    let run = Run::prepare(global, printer, "preview", Some("sweep"), false)?;
    let ttl = match older_than {
        Some(text) => config_preview::parse_duration(text).ok_or_else(|| Error::Usage {
            message: format!(
                "--older-than: expected a duration such as 7d, 12h or 30m, got {text:?}"
            ),
        })?,
        None => config_preview::settings(&run.config.raw)
            .ok()
            .flatten()
            .map_or(7 * 86_400, |s| s.ttl_seconds),
    };
    let live = live_previews(&run, &run.selection.hosts)?;
    let pulls = runtime()?.block_on(async {
        let github = github(&env)?.ok_or_else(|| Error::Failed {
            message: "dhow preview sweep asks GitHub which pull requests are closed: it needs GITHUB_TOKEN and GITHUB_REPOSITORY".to_owned(),
        })?;
        let mut pulls = BTreeMap::new();
        for p in &live {
            let state = match github.get_pull_request(p.pr).await {
                Ok(pull) => Some(PullState {
                    open: pull.state == "open",
                    updated: dhow_core::badge::parse_timestamp(&pull.updated_at),
                }),
                Err(error) if error.status() == Some(404) => None,
                Err(error) => {
                    return Err(super::badge::github_error(
                        &format!("read pull request #{}", p.pr),
                        error,
                    ));
                }
            };
            pulls.insert(p.pr, state);
        }
        Ok(pulls)
    })?;
    let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
    let doomed = preview::sweep(&live, &pulls, ttl, facts::now_epoch());
    let kept: Vec<String> = live
        .iter()
        .filter(|p| !doomed.iter().any(|(pr, _)| *pr == p.pr))
        .map(|p| format!("#{}", p.pr))
        .collect();
    let mut report = String::new();
    for (pr, reason) in &doomed {
        if dry_run {
            let _ = writeln!(report, "would remove #{pr}: {}", reason.text());
        } else {
            remove_preview(*pr, global, printer, &sweep_reason(reason))?;
            let _ = writeln!(report, "removed #{pr}: {}", reason.text());
        }
    }
    if doomed.is_empty() {
        report.push_str("nothing to sweep\n");
    }
    if !kept.is_empty() {
        let _ = writeln!(report, "kept {}", kept.join(", "));
    }
    printer.data(report.trim_end());
    Ok(())
}

fn sweep_reason(reason: &SweepReason) -> String {
    format!("swept: {}", reason.text())
}
