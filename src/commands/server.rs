//! `dhow server exec` and `dhow server bootstrap`, and the run context every command that
//! talks to hosts starts from (config, selection, tags, secrets, pool, pre-connect hook,
//! SIGINT/SIGTERM cancellation, the deploy lock).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use dhow_core::config::Config;
use dhow_core::docker::{Scope, audit, lock, server};
use dhow_core::secrets::Secrets;
use dhow_core::selection::{self, Selection};
use dhow_remote::{
    CancellationToken, HostFailure, HostsFailed, Pool, RemoteCommand, RemoteError, Transport,
};

use crate::cli::{GlobalArgs, ServerCommand};
use crate::error::Error;
use crate::hooks::Hooks;
use crate::printer::Printer;
use crate::{facts, hosts, settings};

/// Everything a command that works on hosts needs.
pub struct Run {
    pub config: Config,
    pub selection: Selection,
    pub env: BTreeMap<String, String>,
    pub tags: audit::Tags,
    pub secrets: Option<Secrets>,
    pub version: Option<String>,
    pub printer: Printer,
    pub global: GlobalArgs,
    pub command: String,
    pub subcommand: Option<String>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("command", &self.command)
            .field("hosts", &self.selection.hosts)
            .finish_non_exhaustive()
    }
}

impl Run {
    /// Loads the configuration, applies `-h/-r/-p`, and reads the secrets when `want_secrets`
    /// or when something needs them (`ssh.key_data`, a pre-connect hook that will run).
    pub fn prepare(
        global: &GlobalArgs,
        printer: Printer,
        command: &str,
        subcommand: Option<&str>,
        want_secrets: bool,
    ) -> Result<Self, Error> {
        let env = settings::environment();
        let dir = Path::new(".");
        let config = settings::load_config(global, &env, dir)?.config;
        let selection = selection::select(
            &config,
            global.hosts.as_deref(),
            global.roles.as_deref(),
            global.primary,
        )?;
        let version = match settings::version(global, &env, &config, dir) {
            Ok(version) => Some(version),
            Err(Error::NoVersion { .. }) => None,
            Err(error) => return Err(error),
        };
        let tags = audit::Tags {
            recorded_at: facts::now_iso8601(),
            performer: facts::performer(dir),
            destination: config.destination.clone(),
            version: version.clone(),
            service_version: Some(match &version {
                Some(version) => format!(
                    "{}@{}",
                    config.service,
                    Config::abbreviated_version(version)
                ),
                None => config.service.clone(),
            }),
            service: config.service.clone(),
            details: Vec::new(),
        };
        let hook_runs =
            !global.skip_hooks && Path::new(&config.hooks_path).join("pre-connect").exists();
        let secrets = if want_secrets || hook_runs || !config.ssh.key_data.is_empty() {
            Some(super::secrets::load(&config.secrets_files())?)
        } else {
            None
        };
        Ok(Self {
            config,
            selection,
            env,
            tags,
            secrets,
            version,
            printer,
            global: global.clone(),
            command: command.to_owned(),
            subcommand: subcommand.map(str::to_owned),
        })
    }

    /// The scope of the builders (service, destination, repository).
    pub fn scope(&self) -> Scope {
        self.config.scope()
    }

    /// The hooks of this run.
    pub fn hooks(&self) -> Hooks<'_> {
        let roles = self
            .global
            .roles
            .as_ref()
            .map(|_| self.selection.roles.clone());
        Hooks {
            config: &self.config,
            tags: self.tags.clone(),
            hosts: self.selection.hosts.clone(),
            roles,
            command: self.command.clone(),
            subcommand: self.subcommand.clone(),
            skip: self.global.skip_hooks,
            secrets: self.secrets.as_ref(),
            printer: self.printer,
        }
    }

    /// Runs the pre-connect hook (once, before the first connection).
    pub fn pre_connect(&self) -> Result<(), Error> {
        self.hooks()
            .run("pre-connect", self.holds_lock_from_env(), &[])
    }

    /// The connection pool; warnings are shown.
    pub fn pool(&self) -> Result<Pool, Error> {
        let (pool, warnings) = hosts::pool(
            &self.config,
            &self.global.ssh,
            &self.env,
            self.secrets.as_ref(),
        )?;
        for warning in warnings {
            self.printer.warn(&warning);
        }
        Ok(pool)
    }

    /// A process started by a hook while the lock is held (`KAMAL_LOCK=true`) holds it too.
    pub fn holds_lock_from_env(&self) -> bool {
        self.env
            .get("KAMAL_LOCK")
            .is_some_and(|value| value == "true")
    }

    /// Says which host keys trust-on-first-use wrote.
    pub fn report_learned(&self, pool: &Pool) {
        for learned in pool.learned_host_keys() {
            self.printer.warn(&format!("{learned}: {}", learned.line));
        }
    }
}

/// A multi-threaded runtime for the SSH work of one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::Failed {
            message: format!("could not start the async runtime: {error}"),
        })
}

/// A token cancelled by SIGINT or SIGTERM (call inside the runtime).
pub fn cancel_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    });
    cancel
}

/// One host's failure as the top-level error.
pub fn host_error(host: &str, error: RemoteError) -> Error {
    Error::Hosts(HostsFailed {
        failures: vec![HostFailure {
            host: host.to_owned(),
            error,
        }],
        total: 1,
    })
}

pub fn run(command: ServerCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    match command {
        ServerCommand::Exec { interactive, cmd } => exec(global, printer, interactive, &cmd),
        ServerCommand::Bootstrap => {
            let run = Run::prepare(global, printer, "server", Some("bootstrap"), false)?;
            run.pre_connect()?;
            let pool = run.pool()?;
            let runtime = runtime()?;
            let result = runtime.block_on(async {
                let cancel = cancel_on_signals();
                let result = bootstrap(&run, &pool, &cancel).await;
                pool.close().await;
                result
            });
            run.report_learned(&pool);
            result
        }
    }
}

fn exec(
    global: &GlobalArgs,
    printer: Printer,
    interactive: bool,
    words: &[String],
) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "server", Some("exec"), false)?;
    let cmd = words.join(" ");
    run.pre_connect()?;
    let pool = run.pool()?;
    if interactive {
        let host = run.selection.primary_host.clone();
        printer.info(&format!("Running '{cmd}' on {host} interactively..."));
        let argv = hosts::interactive_ssh_argv(&run.config, &global.ssh, &pool, &host, &cmd);
        return exec_process(&argv);
    }
    let hosts = run.selection.hosts.clone();
    printer.info(&format!("Running '{cmd}' on {}...", hosts.join(", ")));
    let scope = Arc::new(run.scope());
    let tags = Arc::new(run.tags.clone());
    let command = Arc::new(RemoteCommand::plain(cmd.clone()));
    let cmd = Arc::new(cmd);
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&hosts, &cancel, move |session| {
                let scope = Arc::clone(&scope);
                let tags = Arc::clone(&tags);
                let command = Arc::clone(&command);
                let cmd = Arc::clone(&cmd);
                async move {
                    let host = session.host().to_owned();
                    let record =
                        audit::record(&scope, &tags, &format!("Executed cmd '{cmd}' on {host}"));
                    printer.debug(&format!("  {host}: {}", dhow_core::cmd::for_log(&record)));
                    session.run(&RemoteCommand::from(&record)).await?;
                    let output = session.capture(&command).await?;
                    let output = output.ensure_success(&host, &command)?;
                    let text = output.stdout_text();
                    let text = text.trim();
                    if printer.verbosity() == crate::printer::Verbosity::Quiet {
                        printer.data(&format!("{text}\n\n"));
                    } else {
                        printer.data(&format!("App Host: {host}\n{text}\n\n"));
                    }
                    Ok(())
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    result.into_result()?;
    Ok(())
}

/// Replaces this process with `argv` (so the terminal, signals and the exit status pass
/// through, as Kamal's `exec`).
pub fn exec_process(argv: &[String]) -> Result<(), Error> {
    use std::os::unix::process::CommandExt as _;
    let Some((program, rest)) = argv.split_first() else {
        return Err(Error::Failed {
            message: "nothing to run".to_owned(),
        });
    };
    let error = std::process::Command::new(program).args(rest).exec();
    Err(Error::Failed {
        message: format!("could not run {program}: {error}"),
    })
}

/// Kamal's `with_lock` around bootstrap: `mkdir -p .kamal` everywhere, the lock on the primary
/// host, released on error and on SIGINT/SIGTERM.
async fn bootstrap(run: &Run, pool: &Pool, cancel: &CancellationToken) -> Result<(), Error> {
    let reentrant = run.holds_lock_from_env();
    if !reentrant {
        acquire_lock(run, pool, cancel).await?;
    }
    let interrupted = || Error::Failed {
        message: "interrupted by a signal".to_owned(),
    };
    let result = install_docker(run, pool, cancel)
        .await
        .and_then(|()| {
            if cancel.is_cancelled() {
                return Err(interrupted());
            }
            run.hooks().run("docker-setup", true, &[])
        })
        .and_then(|()| {
            if cancel.is_cancelled() {
                Err(interrupted())
            } else {
                Ok(())
            }
        });
    if !reentrant && let Err(error) = release_lock(run, pool).await {
        {
            if result.is_ok() {
                return Err(error);
            }
            run.printer.error(&format!(
                "Error releasing the deploy lock: {}",
                error.render().trim_end()
            ));
        }
    }
    result
}

/// `mkdir -p .kamal` on every host, then the lock directory on the primary host.
pub async fn acquire_lock(run: &Run, pool: &Pool, cancel: &CancellationToken) -> Result<(), Error> {
    let hosts = run.selection.hosts.clone();
    let ensure = Arc::new(RemoteCommand::from(&server::ensure_run_directory()));
    pool.run_on_hosts(&hosts, cancel, move |session| {
        let ensure = Arc::clone(&ensure);
        async move { session.run(&ensure).await.map(|_| ()) }
    })
    .await
    .into_result()?;

    run.printer.info("Acquiring the deploy lock...");
    let primary = run.selection.primary_host.clone();
    let details = lock::LockDetails {
        locked_by: settings::lock_owner(&run.env, Path::new(".")),
        recorded_at: facts::now_iso8601(),
        version: run.version.clone().unwrap_or_default(),
        message: "Automatic deploy lock".to_owned(),
        run_url: settings::ci_run_url(&run.env),
    };
    let scope = run.scope();
    let session = pool
        .session(&primary)
        .await
        .map_err(|error| host_error(&primary, error.into()))?;
    let acquire = RemoteCommand::from(&lock::acquire(&scope, &details));
    let output = session
        .capture(&acquire)
        .await
        .map_err(|error| host_error(&primary, error))?;
    if output.status.success() {
        return Ok(());
    }
    if output.stderr_text().contains("cannot create directory")
        || output.stderr_text().contains("File exists")
    {
        run.printer.info("Deploy lock already in place!");
        let status = RemoteCommand::from(&lock::status(&scope));
        if let Ok(status) = session.capture(&status).await {
            run.printer.data(status.stdout_text().trim_end());
        }
        return Err(Error::LockHeld);
    }
    Err(host_error(
        &primary,
        RemoteError::CommandFailed(output.ensure_success(&primary, &acquire).err().ok_or_else(
            || Error::Failed {
                message: "lock acquisition failed".to_owned(),
            },
        )?),
    ))
}

/// Removes the lock directory on the primary host.
pub async fn release_lock(run: &Run, pool: &Pool) -> Result<(), Error> {
    run.printer.info("Releasing the deploy lock...");
    let primary = run.selection.primary_host.clone();
    let session = pool
        .session(&primary)
        .await
        .map_err(|error| host_error(&primary, error.into()))?;
    session
        .run(&RemoteCommand::from(&lock::release(&run.scope())))
        .await
        .map_err(|error| host_error(&primary, error))?;
    Ok(())
}

/// What bootstrap found on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Docker {
    Present,
    Installed,
    Missing,
}

/// §3.7 on every host in parallel: `docker -v`; else, with root or passwordless sudo, the
/// get.docker.com installer and the docker group; hosts that cannot be fixed are listed.
async fn install_docker(run: &Run, pool: &Pool, cancel: &CancellationToken) -> Result<(), Error> {
    let printer = run.printer;
    let hosts = run.selection.hosts.clone();
    let results = pool
        .run_on_hosts(&hosts, cancel, move |session| async move {
            let host = session.host().to_owned();
            let check = |command: dhow_core::cmd::Command| {
                let session = Arc::clone(&session);
                async move {
                    let command = RemoteCommand::from(&command);
                    session
                        .capture(&command)
                        .await
                        .map(|output| output.status.success())
                }
            };
            if check(server::docker_installed()).await? {
                return Ok(Docker::Present);
            }
            if !check(server::superuser()).await? {
                return Ok(Docker::Missing);
            }
            printer.info(&format!("Missing Docker on {host}. Installing…"));
            session
                .run(&RemoteCommand::from(&server::install_docker()))
                .await?;
            if !check(server::root()).await? && !check(server::in_docker_group()).await? {
                session
                    .run(&RemoteCommand::from(&server::add_to_docker_group()))
                    .await?;
                // Drops this SSH connection so the new group applies; the pool reconnects.
                let _ = session
                    .capture(&RemoteCommand::from(&server::refresh_session()))
                    .await;
                printer.info("Session refreshed due to group change.");
            }
            Ok(Docker::Installed)
        })
        .await
        .into_result()?;
    let missing: Vec<String> = results
        .into_iter()
        .filter(|(_, docker)| *docker == Docker::Missing)
        .map(|(host, _)| host)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed {
            message: format!(
                "Docker is not installed on {} and can't be automatically installed without \
                 having root access and either `wget` or `curl`. Install Docker manually: \
                 https://docs.docker.com/engine/install/",
                missing.join(", ")
            ),
        })
    }
}
