//! `dhow deploy` and `dhow plan` (also `deploy --dry-run`): resolves the version,
//! the secrets the roles' env files need and the registry credentials, builds the deploy plan,
//! and either prints it (redacted) or runs it over the hosts with events to a reporter, after
//! building and pushing the image here (or adopting one with `--image`) unless `--skip-push`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use dhow_core::Secret;
use dhow_core::config::Credential;
use dhow_core::docker::app::App;
use dhow_core::docker::lock::LockDetails;
use dhow_core::event::{Event, Timing};
use dhow_core::plan::{self, DeployInput, Plan};

use dhow_core::docker::audit;
use dhow_remote::{RemoteCommand, Transport as _};

use super::server::{Run, cancel_on_signals, runtime};
use crate::actions::{self, CiRun, Ending, LockVerdict, RollbackTarget};
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat};
use crate::deploy::{CiHooks, Executor, HookFuture, Known, LockHeld};
use crate::error::Error;
use crate::printer::Printer;
use crate::reporter::{self, Format, Reporter};
use crate::{facts, settings};

/// Everything the plan borrows, resolved.
pub(crate) struct Resolved {
    version: String,
    secrets: BTreeMap<String, Secret<String>>,
    registry: Option<(String, Secret<String>)>,
    lock: LockDetails,
    nonce: String,
    error_pages: Vec<plan::ErrorPage>,
}

pub(crate) fn resolve(run: &Run, lock_message: &str) -> Result<Resolved, Error> {
    let version = run.version.clone().ok_or_else(|| Error::NoVersion {
        dir: std::path::PathBuf::from("."),
    })?;
    let config = &run.config;
    let lookup = |name: &str| -> Result<Secret<String>, Error> {
        match &run.secrets {
            Some(secrets) => Ok(secrets.resolve(name, &run.env, None)?),
            None => run
                .env
                .get(name)
                .map(|value| Secret::new(value.clone()))
                .ok_or_else(|| Error::Failed {
                    message: format!("Secret '{name}' not found"),
                }),
        }
    };
    let mut secrets = BTreeMap::new();
    for host in &run.selection.hosts {
        for role in run.selection.roles_on(config, host) {
            for reference in config.env_for(&role.name, host).secrets() {
                if !secrets.contains_key(&reference.secret) {
                    secrets.insert(reference.secret.clone(), lookup(&reference.secret)?);
                }
            }
            // A custom certificate's PEMs are written to the host before the boot.
            if let Some((certificate, key)) = App::new(config, role, &version).custom_certificate()
            {
                for name in [certificate, key] {
                    if let std::collections::btree_map::Entry::Vacant(entry) = secrets.entry(name) {
                        let value = lookup(entry.key())?;
                        entry.insert(value);
                    }
                }
            }
        }
    }
    let credential = |credential: Option<&Credential>| -> Result<Option<Secret<String>>, Error> {
        match credential {
            None => Ok(None),
            Some(Credential::Clear(value)) => Ok(Some(Secret::new(value.clone()))),
            Some(Credential::Secret(name)) => lookup(name).map(Some),
        }
    };
    let registry = if config.registry.is_local() {
        None
    } else {
        match (
            credential(config.registry.username.as_ref())?,
            credential(config.registry.password.as_ref())?,
        ) {
            (Some(user), Some(password)) => Some((user.expose().clone(), password)),
            _ => None,
        }
    };
    let mut lock = LockDetails {
        recorded_at: run.tags.recorded_at.clone(),
        ..super::lifecycle::lock_details(run, &version, lock_message)
    };
    // A message that already names the run (as in GitHub Actions) needs no `Run:` line.
    if lock
        .run_url
        .as_ref()
        .is_some_and(|url| lock_message.contains(url.as_str()))
    {
        lock.run_url = None;
    }
    // `remove` boots nothing; every other lifecycle command uploads the error pages.
    let error_pages = if run.command == "remove" {
        Vec::new()
    } else {
        settings::error_pages(config, std::path::Path::new("."))?
    };
    Ok(Resolved {
        version,
        secrets,
        registry,
        lock,
        nonce: facts::random_hex(10),
        error_pages,
    })
}

pub(crate) fn build(run: &Run, resolved: &Resolved) -> Plan {
    plan::deploy(&input(run, resolved))
}

/// The plan input of a run (shared by every lifecycle command).
pub(super) fn input<'a>(run: &'a Run, resolved: &'a Resolved) -> DeployInput<'a> {
    let registry = resolved
        .registry
        .as_ref()
        .map(|(user, password)| (user.as_str(), password));
    DeployInput {
        config: &run.config,
        selection: &run.selection,
        version: &resolved.version,
        tags: &run.tags,
        lock: &resolved.lock,
        registry,
        secrets: &resolved.secrets,
        nonce: &resolved.nonce,
        error_pages: &resolved.error_pages,
    }
}

fn prepare(
    global: &GlobalArgs,
    printer: Printer,
    lock_message: &str,
) -> Result<(Run, Resolved), Error> {
    prepare_for(global, printer, "deploy", lock_message)
}

/// The run and its resolved values for a lifecycle command (`deploy`, `setup`, ...).
pub(super) fn prepare_for(
    global: &GlobalArgs,
    printer: Printer,
    command: &str,
    lock_message: &str,
) -> Result<(Run, Resolved), Error> {
    let run = Run::prepare(global, printer, command, None, true)?;
    let resolved = resolve(&run, lock_message)?;
    Ok((run, resolved))
}

/// `dhow plan`: the redacted plan, nothing contacted.
pub fn show_plan(global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (run, resolved) = prepare(global, printer, "Automatic deploy lock")?;
    printer.data(plan::render(&build(&run, &resolved)).trim_end());
    Ok(())
}

/// Builds (or, with `--image`, adopts) and pushes the image unless `--skip-push`; returns the
/// `build`/`push` timings; a failure ends the run's events.
fn deliver(
    args: &DeployArgs,
    run: &Run,
    emit: crate::build::Emit<'_>,
    started: Instant,
) -> Result<Vec<Timing>, Error> {
    if args.skip_push {
        return Ok(Vec::new());
    }
    let source = match &args.image {
        Some(reference) => super::build::Source::Adopt(reference),
        None => super::build::Source::Build {
            output: "registry",
            no_cache: args.no_cache,
        },
    };
    match super::build::deliver_image(run, source, emit) {
        Ok(pushed) => Ok(pushed.timings),
        Err(error) => {
            emit(Event::RunFinished {
                succeeded: false,
                elapsed: started.elapsed(),
                timings: Vec::new(),
            });
            Err(error)
        }
    }
}

/// `dhow deploy`.
pub fn deploy(args: &DeployArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    run_deploy(args, global, printer, None)
}

/// `dhow rollback`: the previous successful deployment of the environment in GitHub Deployments
/// (the newest success older than the live one, with another version or digest), or the newest
/// successful deployment of `--version` (a version or an image digest), is deployed again, its
/// image pulled by digest so exactly that image runs, even after it was pruned from the hosts or
/// its tag was moved.
pub fn rollback_from_ledger(
    output: Option<OutputFormat>,
    lock_wait: Option<String>,
    global: &GlobalArgs,
    printer: Printer,
) -> Result<(), Error> {
    let env = settings::environment();
    let actions = settings::actions_for(&env, global)?;
    let (Some(context), Some(token)) = (&actions.context, &actions.token) else {
        return Err(Error::Usage {
            message: "dhow rollback without a version reads the previous successful deployment from GitHub Deployments: it needs GITHUB_REPOSITORY and a token (DHOW_GITHUB_TOKEN or GITHUB_TOKEN); otherwise name the version".to_owned(),
        });
    };
    let environment = actions.options.environment.clone();
    // octocrab needs the runtime when it is built.
    let target = runtime()?.block_on(async {
        let github =
            dhow_github::GitHub::new(&context.api_url, token.clone(), context.repository.clone())
                .map_err(|error| error.to_string())?;
        actions::rollback_target(&github, &environment, global.app_version.as_deref())
            .await
            .map_err(|error| error.to_string())
    });
    let target = target
        .map_err(|message| Error::Failed {
            message: format!("could not read GitHub Deployments of {environment}: {message}"),
        })?
        .ok_or_else(|| Error::Failed {
            message: match &global.app_version {
                Some(version) => format!(
                    "GitHub Deployments has no successful deployment of {version} in {environment} to roll back to"
                ),
                None => format!(
                    "GitHub Deployments has no successful deployment of {environment} older than the live one to roll back to"
                ),
            },
        })?;
    let args = DeployArgs {
        skip_push: true,
        image: None,
        no_cache: false,
        dry_run: false,
        output,
        lock_wait,
    };
    run_deploy(&args, global, printer, Some(&target))
}

#[expect(
    clippy::too_many_lines,
    reason = "the deploy's orchestration (reporter, ledger, hosts, executor) reads top to bottom"
)]
fn run_deploy(
    args: &DeployArgs,
    global: &GlobalArgs,
    printer: Printer,
    rollback: Option<&RollbackTarget>,
) -> Result<(), Error> {
    if args.dry_run {
        return show_plan(global, printer);
    }
    let lock_wait = lock_wait(args.lock_wait.as_deref())?;
    let env = settings::environment();
    let format = match args.output {
        Some(OutputFormat::Json) => Format::Json,
        Some(OutputFormat::Github) => Format::Github,
        None if settings::in_actions(&env) => Format::Github,
        Some(OutputFormat::Text) | None => Format::Text,
    };
    let mut ci = if format == Format::Github {
        Some(CiRun::start(
            settings::actions_for(&env, global)?,
            printer,
            &env,
        ))
    } else {
        None
    };
    let mut global = global.clone();
    if let Some(target) = rollback {
        global.app_version = Some(target.record.version.clone());
        if let Some(ci) = &mut ci {
            ci.roll_back_to(target.clone());
        }
    }
    if let Some(ci) = &ci
        && global.app_version.is_none()
        && env.get("VERSION").is_none_or(String::is_empty)
    {
        // In Actions the version defaults to the PR head (pull_request) or GITHUB_SHA.
        global.app_version = ci.actions.default_version();
    }
    if let Some(ci) = &ci {
        // Known before the configuration is read, so early failures report it too.
        let version = global
            .app_version
            .clone()
            .or_else(|| env.get("VERSION").filter(|v| !v.is_empty()).cloned());
        ci.set_version(version.as_deref());
    }
    let lock_message = ci.as_ref().map_or_else(
        || "Automatic deploy lock".to_owned(),
        |ci| ci.actions.lock_message(),
    );
    let (run, resolved) = match prepare(&global, printer, &lock_message) {
        Ok(prepared) => prepared,
        Err(error) => {
            if let Some(ci) = &ci {
                ci.fail_early(&error);
            }
            return Err(error);
        }
    };
    let mut plan = build(&run, &resolved);
    if let Some(target) = rollback {
        let image = run.config.absolute_image(&resolved.version);
        let note = match &target.record.digest {
            Some(digest)
                if actions::pin_to_digest(
                    &mut plan.before_lock,
                    &run.config.repository(),
                    digest,
                    &image,
                ) > 0 =>
            {
                format!(
                    "Rolling back to {} ({digest}), deployment {} of {}",
                    resolved.version, target.deployment_id, target.sha
                )
            }
            _ => format!(
                "Rolling back to {} (no digest recorded: pulling the tag), deployment {}",
                resolved.version, target.deployment_id
            ),
        };
        printer.info(&note);
    }
    let config_hash = actions::config_hash(&dhow_core::config::to_yaml(
        &run.config.kamal_config_view("-"),
    ));
    if let Some(ci) = &ci {
        // Every secret value is masked before the deploy prints anything.
        ci.mask(resolved.secrets.values().map(|s| s.expose().clone()));
        if let Some((_, password)) = &resolved.registry {
            ci.mask([password.expose().clone()]);
        }
        if let Some(secrets) = &run.secrets {
            ci.mask(secrets.iter().map(|(_, value)| value.expose().clone()));
        }
        let roles = plan
            .hosts
            .iter()
            .map(|host| {
                let roles = run
                    .selection
                    .roles_on(&run.config, host)
                    .into_iter()
                    .map(|role| role.name.clone())
                    .collect();
                (host.clone(), roles)
            })
            .collect();
        ci.describe(
            &run.config.service,
            &resolved.version,
            roles,
            default_url(&run.config),
        );
    }
    let reporter: Mutex<Box<dyn Reporter>> = Mutex::new(reporter::for_format(format, printer));
    let emit = |event: Event| match &ci {
        Some(ci) => ci.report(&event),
        None => {
            if let Ok(mut reporter) = reporter.lock() {
                reporter.report(&event);
            }
        }
    };
    let pool = match run.pre_connect().and_then(|()| run.pool()) {
        Ok(pool) => pool,
        Err(error) => {
            if let Some(ci) = &ci {
                ci.fail_early(&error);
            }
            return Err(error);
        }
    };
    let started = Instant::now();
    emit(Event::RunStarted {
        command: "deploy".to_owned(),
        hosts: plan.hosts.clone(),
    });
    // Kamal's `build deliver` before the lock: build (or adopt) and push here; the plan pulls.
    let build_timings = match deliver(args, &run, &emit, started) {
        Ok(timings) => timings,
        Err(error) => {
            if let Some(ci) = &ci {
                ci.fail_early(&error);
            }
            return Err(error);
        }
    };
    let runtime = runtime()?;
    let pre_deploy = || -> Result<(), String> {
        run.hooks()
            .run("pre-deploy", true, &[])
            .map_err(|error| error.render())
    };
    let app_boot_hook = |name: &str, hosts: &[String]| -> Result<(), String> {
        let hosts = hosts.join(",");
        run.hooks()
            .run(name, true, &[("hosts", &hosts)])
            .map_err(|error| error.render())
    };
    let mut cancelled = false;
    let result = runtime.block_on(async {
        let cancel = cancel_on_signals();
        if let Some(ci) = &ci {
            ci.open_ledger().await;
        }
        let connect_started = Instant::now();
        let (sessions, unreachable) = match super::lifecycle::connect(&pool, &plan.hosts).await {
            Ok(sessions) => (sessions, None),
            Err(error) => (BTreeMap::new(), Some(error)),
        };
        let connect = Timing {
            phase: "connect".to_owned(),
            elapsed: connect_started.elapsed(),
        };
        let sessions = &sessions;
        let waiting_since: Mutex<Option<Instant>> = Mutex::new(None);
        let lock_held = |details: String| -> HookFuture<'_, LockHeld> {
            let ci = ci.as_ref();
            let run = &run;
            let waiting_since = &waiting_since;
            Box::pin(async move {
                let Some(ci) = ci else {
                    return LockHeld::GiveUp;
                };
                match ci.judge_lock(&details).await {
                    LockVerdict::Stale { reason } => {
                        let line = format!("Took over the deploy lock of a finished run: {reason}");
                        LockHeld::TakeOver {
                            audit: audit::record(&run.scope(), &run.tags, &line),
                            reason,
                        }
                    }
                    LockVerdict::Wait { reason } => {
                        let since = waiting_since.lock().map_or_else(
                            |_| Instant::now(),
                            |mut since| *since.get_or_insert_with(Instant::now),
                        );
                        if since.elapsed() >= ci.lock_wait() {
                            LockHeld::GiveUp
                        } else {
                            LockHeld::Wait {
                                reason,
                                retry_in: actions::LOCK_POLL,
                            }
                        }
                    }
                }
            })
        };
        let locked = || -> HookFuture<'_, ()> {
            let ci = ci.as_ref();
            let plan = &plan;
            let run = &run;
            let config_hash = &config_hash;
            Box::pin(async move {
                let Some(ci) = ci else { return };
                let image = run.config.absolute_image(&plan.version);
                let digest = match sessions.get(&plan.lock.primary) {
                    Some(session) => session
                        .capture(&RemoteCommand::from(&actions::repo_digests_command(&image)))
                        .await
                        .ok()
                        .filter(|output| output.status.success())
                        .and_then(|output| {
                            actions::digest_for(&output.stdout_text(), &run.config.repository())
                        }),
                    None => None,
                };
                ci.start_deployment(digest, &plan.hosts, config_hash).await;
            })
        };
        let ci_hooks = CiHooks {
            lock_held: &lock_held,
            locked: &locked,
        };
        let result = if let Some(error) = unreachable {
            Err(error)
        } else {
            Executor {
                sessions,
                emit: &emit,
                cancel: &cancel,
                after_lock: Some(&pre_deploy),
                hook: Some(&app_boot_hook),
                ci: ci.as_ref().map(|_| &ci_hooks),
                before_release: None,
                lock_wait,
                lock_poll: super::lifecycle::LOCK_POLL,
                local_images: Some(&crate::local::LocalDocker),
                known: Known::default(),
            }
            .run(&plan)
            .await
            .map_err(|error| super::lifecycle::to_error(error, printer))
        };
        cancelled = cancel.is_cancelled();
        let elapsed = started.elapsed();
        emit(Event::RunFinished {
            succeeded: result.is_ok(),
            elapsed,
            timings: build_timings
                .iter()
                .cloned()
                .chain(std::iter::once(connect.clone()))
                .chain(result.as_ref().map(Clone::clone).unwrap_or_default())
                .collect(),
        });
        if let Some(ci) = &ci {
            let ending = match &result {
                Ok(_) => Ending::Success,
                Err(_) if cancelled => Ending::Error,
                Err(Error::LockHeld) => Ending::Error,
                Err(_) => Ending::Failure,
            };
            let message = result.as_ref().err().map(|error| {
                if cancelled {
                    "Cancelled (SIGINT/SIGTERM): the deploy stopped and the lock was released"
                        .to_owned()
                } else {
                    error.render()
                }
            });
            ci.finish(ending, message.as_deref(), &plan.hosts, &config_hash)
                .await;
        }
        pool.close().await;
        result
    });
    run.report_learned(&pool);
    let elapsed = started.elapsed();
    result?;
    run.hooks().run(
        "post-deploy",
        false,
        &[("runtime", &elapsed.as_secs().to_string())],
    )
}

/// The URL the app answers on: the first proxy host (https when the proxy terminates TLS).
fn default_url(config: &dhow_core::config::Config) -> Option<String> {
    config.roles.iter().find_map(|role| {
        let proxy = role.proxy.as_ref()?;
        let host = proxy.hosts().into_iter().next()?;
        let scheme = if proxy.ssl_enabled() { "https" } else { "http" };
        Some(format!("{scheme}://{host}"))
    })
}

/// `--lock-wait DURATION`, parsed.
pub(super) fn lock_wait(text: Option<&str>) -> Result<Option<std::time::Duration>, Error> {
    text.map(|text| {
        super::lifecycle::parse_duration(text).map_err(|message| Error::Usage {
            message: format!("--lock-wait: {message}"),
        })
    })
    .transpose()
}
