//! `dhow deploy --skip-push` and `dhow plan` (also `deploy --dry-run`): resolves the version,
//! the secrets the roles' env files need and the registry credentials, builds the deploy plan,
//! and either prints it (redacted) or runs it over the hosts with events to a reporter.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use dhow_core::Secret;
use dhow_core::config::Credential;
use dhow_core::docker::lock::LockDetails;
use dhow_core::event::Event;
use dhow_core::plan::{self, DeployInput, Plan};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat};
use crate::deploy::{DeployError, Executor};
use crate::error::Error;
use crate::facts;
use crate::printer::Printer;
use crate::reporter::{self, Format, Reporter};

/// Everything the plan borrows, resolved.
struct Resolved {
    version: String,
    secrets: BTreeMap<String, Secret<String>>,
    registry: Option<(String, Secret<String>)>,
    lock: LockDetails,
    nonce: String,
}

fn resolve(run: &Run) -> Result<Resolved, Error> {
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
    let lock = LockDetails {
        locked_by: facts::locked_by(std::path::Path::new(".")),
        recorded_at: run.tags.recorded_at.clone(),
        version: version.clone(),
        message: "Automatic deploy lock".to_owned(),
    };
    Ok(Resolved {
        version,
        secrets,
        registry,
        lock,
        nonce: facts::random_hex(10),
    })
}

fn build(run: &Run, resolved: &Resolved) -> Plan {
    let registry = resolved
        .registry
        .as_ref()
        .map(|(user, password)| (user.as_str(), password));
    plan::deploy(&DeployInput {
        config: &run.config,
        selection: &run.selection,
        version: &resolved.version,
        tags: &run.tags,
        lock: &resolved.lock,
        registry,
        secrets: &resolved.secrets,
        nonce: &resolved.nonce,
    })
}

fn prepare(global: &GlobalArgs, printer: Printer) -> Result<(Run, Resolved), Error> {
    let run = Run::prepare(global, printer, "deploy", None, true)?;
    if run.config.registry.is_local() {
        return Err(Error::Failed {
            message: "a local registry (localhost:PORT) needs port forwarding to the hosts, which dhow deploy does not do yet; use a registry the hosts can reach".to_owned(),
        });
    }
    let resolved = resolve(&run)?;
    Ok((run, resolved))
}

/// `dhow plan`: the redacted plan, nothing contacted.
pub fn show_plan(global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (run, resolved) = prepare(global, printer)?;
    printer.data(plan::render(&build(&run, &resolved)).trim_end());
    Ok(())
}

/// `dhow deploy`.
pub fn deploy(args: &DeployArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    if args.dry_run {
        return show_plan(global, printer);
    }
    if !args.skip_push {
        return Err(Error::Usage {
            message: "dhow deploy builds nothing yet: push the image first and deploy it with --skip-push (-P)".to_owned(),
        });
    }
    let (run, resolved) = prepare(global, printer)?;
    let plan = build(&run, &resolved);
    let format = match args.output {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
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
        command: "deploy".to_owned(),
        hosts: plan.hosts.clone(),
    });
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
    let result = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let mut sessions = BTreeMap::new();
        let mut failures = Vec::new();
        for host in &plan.hosts {
            match pool.session(host).await {
                Ok(session) => {
                    sessions.insert(host.clone(), session);
                }
                Err(error) => failures.push(format!("  {host}: {error}")),
            }
        }
        let result = if failures.is_empty() {
            let executor = Executor {
                sessions: &sessions,
                emit: &emit,
                cancel: &cancel,
                after_lock: Some(&pre_deploy),
                hook: Some(&app_boot_hook),
            };
            executor.run(&plan).await.map_err(|error| match error {
                DeployError::LockHeld { details } => {
                    if !details.is_empty() {
                        printer.data(&details);
                    }
                    Error::LockHeld
                }
                error => Error::Failed {
                    message: error.to_string(),
                },
            })
        } else {
            Err(Error::Failed {
                message: format!(
                    "could not connect to {} of {} hosts:\n{}",
                    failures.len(),
                    plan.hosts.len(),
                    failures.join("\n")
                ),
            })
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
    run.hooks().run(
        "post-deploy",
        false,
        &[("runtime", &elapsed.as_secs().to_string())],
    )
}
