//! Runs a lifecycle plan (deploy, setup, redeploy, rollback, remove) over the hosts: the
//! reporter for `--output`, the pre-connect hook, the connections, the executor with the
//! pre-deploy, app-boot and docker-setup hooks, `--lock-wait`, SIGINT/SIGTERM, the timing
//! breakdown, and the post-deploy hook (after the lock is released, or inside it for setup, as
//! Kamal does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhow_core::docker::lock::LockDetails;
use dhow_core::event::Event;
use dhow_core::plan::Plan;
use dhow_remote::{Pool, SshSession};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::OutputFormat;
use crate::deploy::{DeployError, Executor, Known};
use crate::error::Error;
use crate::printer::Printer;
use crate::reporter::{self, Format, Reporter};
use crate::{facts, settings};

/// When the post-deploy hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostDeploy {
    /// Not at all (remove).
    Never,
    /// After the lock is released (deploy, redeploy, rollback).
    AfterRelease,
    /// While the lock is still held (setup).
    BeforeRelease,
}

/// How a plan is run.
#[derive(Debug, Clone, Copy)]
pub struct Execution<'a> {
    /// `KAMAL_COMMAND` and the run event's name.
    pub command: &'a str,
    /// The hosts the run announces (`None`: the plan's).
    pub shown_hosts: Option<&'a [String]>,
    pub output: OutputFormat,
    /// `--lock-wait`.
    pub lock_wait: Option<Duration>,
    /// Whether the pre-deploy hook runs once the lock is held (and the checks passed).
    pub pre_deploy: bool,
    pub post_deploy: PostDeploy,
    /// The hooks around each boot group (`None`: no hooks there).
    pub stage_hooks: Option<StageHooks>,
}

/// The hooks run before and after each boot group: `pre-app-boot` and `post-app-boot` for the
/// app; `proxy reboot` runs `pre-proxy-reboot` and `post-proxy-reboot` instead.
#[derive(Debug, Clone, Copy)]
pub struct StageHooks {
    pub pre: &'static str,
    pub post: &'static str,
}

/// The app's boot hooks.
pub const APP_BOOT_HOOKS: StageHooks = StageHooks {
    pre: "pre-app-boot",
    post: "post-app-boot",
};

/// How often a held lock is polled under `--lock-wait`.
pub const LOCK_POLL: Duration = Duration::from_secs(3);

/// The automatic lock's details for `version`: who (git `user.name`, else the Actions actor),
/// when, and the CI run's URL.
pub fn lock_details(run: &Run, version: &str, message: &str) -> LockDetails {
    LockDetails {
        locked_by: settings::lock_owner(&run.env, std::path::Path::new(".")),
        recorded_at: facts::now_iso8601(),
        version: version.to_owned(),
        message: message.to_owned(),
        run_url: settings::ci_run_url(&run.env),
    }
}

/// Parses a `--lock-wait` value: `30s`, `5m`, `1h`, `90` (seconds), or combinations (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let unit = match character {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: use a number with s, m or h (e.g. 30s, 5m)"
                ));
            }
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: a unit needs a number before it"))?;
        total = total.saturating_add(value.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: the last number needs a unit (s, m or h)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Connects to every host of `hosts` at once: their sessions, or an error naming each host
/// that could not be reached and why.
pub async fn connect(
    pool: &Pool,
    hosts: &[String],
) -> Result<BTreeMap<String, Arc<SshSession>>, Error> {
    let mut sessions = BTreeMap::new();
    let mut failures = Vec::new();
    for (host, session) in pool.connect_all(hosts).await {
        match session {
            Ok(session) => {
                sessions.insert(host, session);
            }
            Err(error) => failures.push(format!("  {host}: {error}")),
        }
    }
    if failures.is_empty() {
        Ok(sessions)
    } else {
        Err(Error::Failed {
            message: format!(
                "could not connect to {} of {} hosts:\n{}",
                failures.len(),
                hosts.len(),
                failures.join("\n")
            ),
        })
    }
}

/// Runs `plan` over the hosts of `run`.
pub fn execute(
    run: &Run,
    plan: &Plan,
    execution: Execution<'_>,
    printer: Printer,
) -> Result<(), Error> {
    let format = match execution.output {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
        OutputFormat::Github => Format::Github,
    };
    let reporter: Mutex<Box<dyn Reporter>> = Mutex::new(reporter::for_format(format, printer));
    let emit = |event: Event| {
        if let Ok(mut reporter) = reporter.lock() {
            reporter.report(&event);
        }
    };
    run.pre_connect()?;
    let pool = run.pool()?;
    let started = Instant::now();
    emit(Event::RunStarted {
        command: execution.command.to_owned(),
        hosts: execution.shown_hosts.unwrap_or(&plan.hosts).to_vec(),
    });
    let runtime = runtime()?;
    let pre_deploy = || -> Result<(), String> {
        run.hooks()
            .run("pre-deploy", true, &[])
            .map_err(|error| error.render())
    };
    // The executor names the app's hooks; a run with other stage hooks runs those instead.
    let hook = |name: &str, hosts: &[String]| -> Result<(), String> {
        let Some(names) = execution.stage_hooks else {
            return Ok(());
        };
        let name = if name == APP_BOOT_HOOKS.pre {
            names.pre
        } else {
            names.post
        };
        let hosts = hosts.join(",");
        run.hooks()
            .run(name, true, &[("hosts", &hosts)])
            .map_err(|error| error.render())
    };
    let post_deploy_locked = || -> Result<(), String> {
        run.hooks()
            .run(
                "post-deploy",
                true,
                &[("runtime", &started.elapsed().as_secs().to_string())],
            )
            .map_err(|error| error.render())
    };
    let result = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let mut hosts = plan.hosts.clone();
        if !hosts.contains(&plan.lock.primary) {
            hosts.push(plan.lock.primary.clone());
        }
        let result = match connect(&pool, &hosts).await {
            Ok(sessions) => Executor {
                sessions: &sessions,
                emit: &emit,
                cancel: &cancel,
                after_lock: execution.pre_deploy.then_some(&pre_deploy as _),
                hook: execution
                    .stage_hooks
                    .map(|_| &hook as &crate::deploy::HookRunner<'_>),
                ci: None,
                before_release: (execution.post_deploy == PostDeploy::BeforeRelease)
                    .then_some(&post_deploy_locked as _),
                lock_wait: execution.lock_wait,
                lock_poll: LOCK_POLL,
                local_images: Some(&crate::local::LocalDocker),
                known: Known::default(),
            }
            .run(plan)
            .await
            .map_err(|error| to_error(error, printer)),
            Err(error) => Err(error),
        };
        pool.close().await;
        result
    });
    run.report_learned(&pool);
    let succeeded = result.is_ok();
    let timings = result.as_ref().map(Clone::clone).unwrap_or_default();
    let elapsed = started.elapsed();
    emit(Event::RunFinished {
        succeeded,
        elapsed,
        timings,
    });
    result?;
    if execution.post_deploy == PostDeploy::AfterRelease {
        run.hooks().run(
            "post-deploy",
            false,
            &[("runtime", &elapsed.as_secs().to_string())],
        )?;
    }
    Ok(())
}

/// The executor's error as the command's: a held lock prints the holder's details (exit 7), a
/// signal ends the run with exit 130.
pub(super) fn to_error(error: DeployError, printer: Printer) -> Error {
    match error {
        DeployError::LockHeld { details } => {
            if !details.is_empty() {
                printer.data(&details);
            }
            Error::LockHeld
        }
        DeployError::Cancelled => Error::Interrupted {
            message: error.to_string(),
        },
        error @ DeployError::Hosts { .. } => Error::Failed {
            message: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("1m3").is_err());
        assert!(parse_duration("").is_err());
    }
}
