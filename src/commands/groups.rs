//! What the command groups share (`dhow app`, `proxy`, `prune`, `registry`, `audit`,
//! `details`): Kamal's per-host output (`App Host: …`), read-only queries fanned out over the
//! selected hosts, mutating commands run as plans by the deploy executor under the deploy lock
//! (or printed, redacted, with `--dry-run`), and the registry login the hosts need.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use dhow_core::Secret;
use dhow_core::cmd::{Command, for_log};
use dhow_core::config::Credential;
use dhow_core::docker::lock::{self, LockDetails};
use dhow_core::docker::{registry, server};
use dhow_core::plan::{self, Action, HostSteps, LockPlan, Phase, Plan, Stage, Step};
use dhow_remote::{FanOut, RemoteCommand, RemoteError, Transport};

use super::server::{Run, cancel_on_signals, runtime};
use crate::error::Error;
use crate::facts;
use crate::printer::{Printer, Verbosity};

/// Kamal's `puts_by_host`: `<Kind> Host: <host>` (left out with `--quiet`), the output, a blank
/// line.
pub fn by_host_text(printer: Printer, kind: &str, host: &str, output: &str) -> String {
    if printer.verbosity() == Verbosity::Quiet {
        format!("{output}\n\n")
    } else {
        format!("{kind} Host: {host}\n{output}\n\n")
    }
}

/// One thing to do on a host for a read-only command.
#[derive(Debug, Clone)]
pub enum Query {
    /// Run; a failure fails the host; nothing is shown (audit lines, registry login).
    Run(Command),
    /// Capture and show under the host's heading; a failure fails the host.
    Show(Command),
    /// Capture and show; when it fails show `fallback` instead (Kamal's "Nothing found").
    ShowOr(Command, &'static str),
}

/// The queries of one host, in order.
#[derive(Debug, Clone)]
pub struct HostQueries {
    pub host: String,
    pub queries: Vec<Query>,
}

/// Runs `queries` on one host, returning what they showed (stdout trimmed, as `SSHKit`'s capture).
pub async fn run_queries<T: Transport>(
    session: &T,
    queries: &[Query],
) -> Result<Vec<String>, RemoteError> {
    let host = session.host().to_owned();
    let mut shown = Vec::new();
    for query in queries {
        match query {
            Query::Run(command) => {
                let remote = RemoteCommand::from(command);
                session
                    .capture(&remote)
                    .await?
                    .ensure_success(&host, &remote)?;
            }
            Query::Show(command) => {
                let remote = RemoteCommand::from(command);
                let output = session
                    .capture(&remote)
                    .await?
                    .ensure_success(&host, &remote)?;
                shown.push(output.stdout_text().trim().to_owned());
            }
            Query::ShowOr(command, fallback) => {
                let remote = RemoteCommand::from(command);
                let output = session.capture(&remote).await?;
                if output.status.success() {
                    shown.push(output.stdout_text().trim().to_owned());
                } else {
                    shown.push((*fallback).to_owned());
                }
            }
        }
    }
    Ok(shown)
}

/// The `--dry-run` text of read-only queries: per host, the commands in order.
pub fn render_queries(title: &str, hosts: &[HostQueries]) -> String {
    let mut out = format!("{title}\n");
    for host in hosts {
        let _ = writeln!(out, "  {}:", host.host);
        for query in &host.queries {
            match query {
                Query::Run(command) => {
                    let _ = writeln!(out, "    {}", for_log(command));
                }
                Query::Show(command) => {
                    let _ = writeln!(out, "    {}  (output shown)", for_log(command));
                }
                Query::ShowOr(command, fallback) => {
                    let _ = writeln!(
                        out,
                        "    {}  (output shown; \"{fallback}\" when it fails)",
                        for_log(command)
                    );
                }
            }
        }
    }
    out
}

/// Runs per-host queries in parallel and prints each shown output under its host's heading, in
/// the hosts' order; every failing host is reported. With `dry_run`, prints the commands.
pub fn show(
    run: &Run,
    kind: &'static str,
    title: &str,
    hosts: Vec<HostQueries>,
    dry_run: bool,
) -> Result<(), Error> {
    show_formatted(run, title, hosts, dry_run, &|host, output| {
        by_host_text(run.printer, kind, host, output)
    })
}

/// [`show`] with each host's output formatted by `format(host, output)`.
pub fn show_formatted(
    run: &Run,
    title: &str,
    hosts: Vec<HostQueries>,
    dry_run: bool,
    format: &dyn Fn(&str, &str) -> String,
) -> Result<(), Error> {
    if dry_run {
        run.printer.data(render_queries(title, &hosts).trim_end());
        return Ok(());
    }
    if hosts.is_empty() {
        return Ok(());
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let names: Vec<String> = hosts.iter().map(|host| host.host.clone()).collect();
    let by_host: Arc<BTreeMap<String, Vec<Query>>> = Arc::new(
        hosts
            .into_iter()
            .map(|host| (host.host, host.queries))
            .collect(),
    );
    let runtime = runtime()?;
    let results: FanOut<Vec<String>> = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&names, &cancel, move |session| {
                let by_host = Arc::clone(&by_host);
                async move {
                    let queries = by_host
                        .get(session.host())
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    run_queries(session.as_ref(), queries).await
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    print_results(run.printer, results, format)
}

/// Prints each host's shown outputs as `format(host, output)` gives them, in the hosts' order,
/// then fails if any host failed.
pub fn print_results(
    printer: Printer,
    results: FanOut<Vec<String>>,
    format: &dyn Fn(&str, &str) -> String,
) -> Result<(), Error> {
    for (host, result) in &results.results {
        if let Ok(shown) = result {
            for output in shown {
                printer.data(&format(host, output));
            }
        }
    }
    results.into_result()?;
    Ok(())
}

/// A step with a label.
pub fn step(label: impl Into<String>, action: Action) -> Step {
    Step {
        label: label.into(),
        action,
    }
}

/// A stage of plain steps (no role boots), hosts in parallel.
pub fn stage(label: impl Into<String>, phase: Phase, hosts: Vec<(String, Vec<Step>)>) -> Stage {
    Stage {
        label: label.into(),
        phase,
        hosts: hosts
            .into_iter()
            .map(|(host, steps)| HostSteps {
                host,
                steps,
                roles: Vec::new(),
            })
            .collect(),
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: None,
    }
}

/// The deploy lock of this run, as Kamal's `with_lock` takes it: `mkdir -p .kamal` on every
/// selected host, the lock directory on the primary host. A process started by a hook while
/// the lock is held (`KAMAL_LOCK=true`) already holds it: its lock steps do nothing (`true`).
pub fn lock_plan(run: &Run) -> LockPlan {
    let scope = run.scope();
    if run.holds_lock_from_env() {
        let nothing = Command::new("true");
        return LockPlan {
            hosts: Vec::new(),
            ensure: nothing.clone(),
            primary: run.selection.primary_host.clone(),
            acquire: nothing.clone(),
            status: nothing.clone(),
            release: nothing,
        };
    }
    let details = LockDetails {
        locked_by: facts::locked_by(std::path::Path::new(".")),
        recorded_at: run.tags.recorded_at.clone(),
        version: run.version.clone().unwrap_or_default(),
        message: "Automatic deploy lock".to_owned(),
        run_url: crate::settings::ci_run_url(&run.env),
    };
    LockPlan {
        hosts: run.selection.hosts.clone(),
        ensure: server::ensure_run_directory(),
        primary: run.selection.primary_host.clone(),
        acquire: lock::acquire(&scope, &details),
        status: lock::status(&scope),
        release: lock::release(&scope),
    }
}

/// A plan of `stages` under this run's deploy lock.
pub fn locked_plan(run: &Run, version: &str, stages: Vec<Stage>) -> Plan {
    Plan {
        title: format!("{} version {version}", run.config.service),
        service: run.config.service.clone(),
        version: version.to_owned(),
        hosts: run.selection.hosts.clone(),
        roles: run.selection.roles.clone(),
        primary_role: run.selection.primary_role.clone(),
        before_lock: Vec::new(),
        lock: lock_plan(run),
        checks: Vec::new(),
        locked: stages,
        interrupted: dhow_core::docker::audit::record(
            &run.scope(),
            &run.tags,
            &format!(
                "Interrupted {} {} by a signal",
                run.command,
                run.subcommand.as_deref().unwrap_or_default()
            ),
        ),
    }
}

/// The redacted plan under `title` (the first line of the deploy rendering names a deploy).
pub fn render_plan(title: &str, plan: &Plan) -> String {
    let text = plan::render(plan);
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    format!("{title}\n{body}")
}

pub use super::lifecycle::StageHooks;

/// Runs `plan` (or prints it with `dry_run`): connects to its hosts, runs it with the deploy
/// executor and a terminal reporter, maps a held lock to exit code 7.
pub fn execute(
    run: &Run,
    title: &str,
    plan: &Plan,
    dry_run: bool,
    hooks: Option<StageHooks>,
) -> Result<(), Error> {
    if dry_run {
        run.printer.data(render_plan(title, plan).trim_end());
        return Ok(());
    }
    run_plan(run, title, &plan.hosts, plan, hooks)
}

/// Runs `plan` under its lock ([`super::lifecycle::execute`]) with a terminal reporter that
/// announces `command` on `shown_hosts`, and no deploy hooks but `hooks` around boot groups.
pub fn run_plan(
    run: &Run,
    command: &str,
    shown_hosts: &[String],
    plan: &Plan,
    hooks: Option<StageHooks>,
) -> Result<(), Error> {
    super::lifecycle::execute(
        run,
        plan,
        super::lifecycle::Execution {
            command,
            shown_hosts: Some(shown_hosts),
            output: crate::cli::OutputFormat::Text,
            lock_wait: None,
            pre_deploy: false,
            post_deploy: super::lifecycle::PostDeploy::Never,
            stage_hooks: hooks,
        },
        run.printer,
    )
}

/// The registry user and password of the configuration, resolved from the secrets (or the
/// environment); `None` for a local registry, which needs no login.
pub fn registry_credentials(run: &Run) -> Result<Option<(String, Secret<String>)>, Error> {
    let config = &run.config;
    if config.registry.is_local() {
        return Ok(None);
    }
    let loaded;
    let secrets = match &run.secrets {
        Some(secrets) => Some(secrets),
        None if config
            .registry
            .username
            .iter()
            .chain(config.registry.password.iter())
            .any(|credential| matches!(credential, Credential::Secret(_))) =>
        {
            loaded = super::secrets::load(&config.secrets_files())?;
            Some(&loaded)
        }
        None => None,
    };
    let lookup = |credential: Option<&Credential>| -> Result<Option<Secret<String>>, Error> {
        match credential {
            None => Ok(None),
            Some(Credential::Clear(value)) => Ok(Some(Secret::new(value.clone()))),
            Some(Credential::Secret(name)) => match secrets {
                Some(secrets) => Ok(Some(secrets.resolve(name, &run.env, None)?)),
                None => run
                    .env
                    .get(name)
                    .map(|value| Some(Secret::new(value.clone())))
                    .ok_or_else(|| Error::Failed {
                        message: format!("Secret '{name}' not found"),
                    }),
            },
        }
    };
    match (
        lookup(config.registry.username.as_ref())?,
        lookup(config.registry.password.as_ref())?,
    ) {
        (Some(user), Some(password)) => Ok(Some((user.expose().clone(), password))),
        _ => Ok(None),
    }
}

/// `docker login ... --password-stdin` for the hosts, or `None` for a local registry.
pub fn registry_login(run: &Run) -> Result<Option<Command>, Error> {
    Ok(registry_credentials(run)?.map(|(user, password)| {
        registry::login(run.config.registry.server.as_deref(), &user, &password)
    }))
}

/// Captures `command` on every one of `hosts` (stdout trimmed, whatever the exit status);
/// a host that cannot be reached fails the command.
pub fn capture_each(
    run: &Run,
    hosts: &[String],
    command: &Command,
) -> Result<Vec<(String, String)>, Error> {
    if hosts.is_empty() {
        return Ok(Vec::new());
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let remote = Arc::new(RemoteCommand::from(command));
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(hosts, &cancel, move |session| {
                let remote = Arc::clone(&remote);
                async move {
                    let output = session.capture(&remote).await?;
                    Ok(output.stdout_text().trim().to_owned())
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    Ok(results.into_result()?)
}
