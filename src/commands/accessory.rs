//! `dhow accessory boot|reboot|start|stop|restart|remove|upgrade` (plans run under the deploy
//! lock, or printed with `--dry-run`) and `details|logs|exec` (direct, unlocked, as in Kamal):
//! resolves the accessories named (or `all`), their secrets, registry credentials and files
//! (ERB templates rendered with the accessory's env), then acts through the executor or the pool.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;

use dhow_core::Secret;
use dhow_core::cmd::{Command, for_log};
use dhow_core::config::{self, Config, Credential, Registry};
use dhow_core::docker::accessory::{self as builders, Accessory, LogOptions};
use dhow_core::docker::{audit, lock::LockDetails};
use dhow_core::plan::accessory::{self, AccessoryInput, Credentials, Operation};
use dhow_remote::{Pool, RemoteCommand, Transport};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::{AccessoryCommand, AccessoryLogsArgs, GlobalArgs};
use crate::error::Error;
use crate::printer::{Printer, Verbosity};
use crate::{facts, hosts, settings};

pub fn run(command: AccessoryCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    match command {
        AccessoryCommand::Boot(args) => change(
            global,
            printer,
            &args.name,
            Operation::Boot,
            args.dry_run,
            true,
        ),
        AccessoryCommand::Reboot(args) => change(
            global,
            printer,
            &args.name,
            Operation::Reboot,
            args.dry_run,
            true,
        ),
        AccessoryCommand::Start(args) => change(
            global,
            printer,
            &args.name,
            Operation::Start,
            args.dry_run,
            true,
        ),
        AccessoryCommand::Stop(args) => change(
            global,
            printer,
            &args.name,
            Operation::Stop,
            args.dry_run,
            true,
        ),
        AccessoryCommand::Restart(args) => change(
            global,
            printer,
            &args.name,
            Operation::Restart,
            args.dry_run,
            true,
        ),
        AccessoryCommand::Remove { args, confirmed } => {
            let question = format!(
                "This will remove all containers, images and data directories for {}. Are you sure?",
                args.name
            );
            let go = args.dry_run || confirmed || confirm(printer, &question)?;
            change(
                global,
                printer,
                &args.name,
                Operation::Remove,
                args.dry_run,
                go,
            )
        }
        AccessoryCommand::Upgrade {
            args,
            rolling,
            confirmed,
        } => {
            let go =
                args.dry_run || confirmed || confirm(printer, "This will restart all accessories")?;
            change(
                global,
                printer,
                &args.name,
                Operation::Upgrade { rolling },
                args.dry_run,
                go,
            )
        }
        AccessoryCommand::Details { name } => details(global, printer, &name),
        AccessoryCommand::Logs(args) => logs(global, printer, &args),
        AccessoryCommand::Exec {
            name,
            interactive,
            reuse,
            cmd,
        } => exec(global, printer, &name, interactive, reuse, &cmd),
    }
}

/// Kamal's `confirming`: asks on a terminal; without one, refuses (pass `-y`).
fn confirm(printer: Printer, question: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: format!("{question} Pass -y to confirm without a terminal."),
        });
    }
    printer.info(&format!("{question} [y, N]"));
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|error| Error::Failed {
            message: format!("could not read the answer: {error}"),
        })?;
    if answer.trim() == "y" {
        Ok(true)
    } else {
        printer.info("Aborted");
        Ok(false)
    }
}

/// The accessories `name` means (`all`: every one), or Kamal's error listing the options.
fn named<'c>(config: &'c Config, name: &str) -> Result<Vec<&'c config::Accessory>, Error> {
    if name == "all" {
        return Ok(config.accessories.iter().collect());
    }
    if let Some(accessory) = config.accessory(name) {
        return Ok(vec![accessory]);
    }
    let names: Vec<&str> = config.accessories.iter().map(|a| a.name.as_str()).collect();
    let options = match names.as_slice() {
        [] => String::new(),
        [one] => format!(" (options: {one})"),
        [first, second] => format!(" (options: {first} and {second})"),
        [rest @ .., last] => format!(" (options: {}, and {last})", rest.join(", ")),
    };
    Err(Error::Failed {
        message: format!("No accessory by the name of '{name}'{options}"),
    })
}

fn lookup(run: &Run, name: &str) -> Result<Secret<String>, Error> {
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
}

fn credentials(run: &Run, registry: &Registry) -> Result<Option<Credentials>, Error> {
    if registry.is_local() {
        return Ok(None);
    }
    let resolve = |credential: Option<&Credential>| -> Result<Option<Secret<String>>, Error> {
        match credential {
            None => Ok(None),
            Some(Credential::Clear(value)) => Ok(Some(Secret::new(value.clone()))),
            Some(Credential::Secret(name)) => lookup(run, name).map(Some),
        }
    };
    Ok(
        match (
            resolve(registry.username.as_ref())?,
            resolve(registry.password.as_ref())?,
        ) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.expose().clone(),
                password,
            }),
            _ => None,
        },
    )
}

/// Everything the accessory stages borrow, resolved.
struct Resolved {
    registry: Option<Credentials>,
    accessory_registries: BTreeMap<String, Credentials>,
    secrets: BTreeMap<String, Secret<String>>,
    files: BTreeMap<String, Vec<Secret<Vec<u8>>>>,
}

/// Registry credentials, env secrets and file contents of `accessories` (what `operation`
/// needs: only boots log in, write env files and upload files).
fn resolve(
    run: &Run,
    accessories: &[&config::Accessory],
    operation: Operation,
) -> Result<Resolved, Error> {
    let mut resolved = Resolved {
        registry: None,
        accessory_registries: BTreeMap::new(),
        secrets: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    if matches!(
        operation,
        Operation::Start | Operation::Stop | Operation::Restart | Operation::Remove
    ) {
        return Ok(resolved);
    }
    let hosted: Vec<&config::Accessory> = accessories
        .iter()
        .copied()
        .filter(|a| !accessory::accessory_hosts(&run.selection, a).is_empty())
        .collect();
    if hosted.iter().any(|a| a.registry.is_none()) {
        resolved.registry = credentials(run, &run.config.registry)?;
    }
    for accessory in &hosted {
        if let Some(own) = &accessory.registry
            && let Some(found) = credentials(run, own)?
        {
            resolved
                .accessory_registries
                .insert(accessory.name.clone(), found);
        }
        for reference in accessory.env.secrets() {
            if !resolved.secrets.contains_key(&reference.secret) {
                let value = lookup(run, &reference.secret)?;
                resolved.secrets.insert(reference.secret.clone(), value);
            }
        }
    }
    for accessory in &hosted {
        let builder = Accessory::new(&run.config, accessory);
        let mut contents = Vec::new();
        for file in builder.files() {
            contents.push(read_file(run, &builder, &file, &resolved.secrets)?);
        }
        resolved.files.insert(accessory.name.clone(), contents);
    }
    Ok(resolved)
}

/// A local file of `files`: read as is, or rendered as ERB with the accessory's env in `ENV`
/// (Kamal's `with_env_loaded`).
fn read_file(
    run: &Run,
    accessory: &Accessory<'_>,
    file: &builders::FileMount,
    secrets: &BTreeMap<String, Secret<String>>,
) -> Result<Secret<Vec<u8>>, Error> {
    let path = Path::new(&file.local);
    if !path.is_file() {
        return Err(Error::Failed {
            message: format!(
                "Missing file: {} (accessories/{}/files)",
                file.local,
                accessory.name()
            ),
        });
    }
    if file.erb {
        let mut env = run.env.clone();
        for (key, value) in accessory.env_for_templates(secrets) {
            env.insert(key, value.into_inner());
        }
        let text = settings::render_erb_file(path, &env)?;
        return Ok(Secret::new(text.into_bytes()));
    }
    std::fs::read(path)
        .map(Secret::new)
        .map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Every accessory's stages for `setup` (`Operation::Boot`) and `remove` (`Operation::Remove`),
/// resolved for `run`.
pub(super) fn all_stages(
    run: &Run,
    operation: Operation,
) -> Result<Vec<dhow_core::plan::Stage>, Error> {
    let accessories: Vec<&config::Accessory> = run.config.accessories.iter().collect();
    let resolved = resolve(run, &accessories, operation)?;
    let version = run.version.clone().unwrap_or_default();
    let input = AccessoryInput {
        config: &run.config,
        selection: &run.selection,
        tags: &run.tags,
        registry: resolved.registry.as_ref(),
        accessory_registries: &resolved.accessory_registries,
        secrets: &resolved.secrets,
        files: &resolved.files,
        version: &version,
    };
    Ok(match operation {
        Operation::Remove => accessory::remove_all(&input),
        _ => accessory::boot_all(&input),
    })
}

/// A plan command: resolve, then print the plan (`--dry-run`) or run it under the lock.
fn change(
    global: &GlobalArgs,
    printer: Printer,
    name: &str,
    operation: Operation,
    dry_run: bool,
    confirmed: bool,
) -> Result<(), Error> {
    if !confirmed {
        return Ok(());
    }
    let wants_secrets = !matches!(
        operation,
        Operation::Start | Operation::Stop | Operation::Restart | Operation::Remove
    );
    let run = Run::prepare(
        global,
        printer,
        "accessory",
        Some(operation.name()),
        wants_secrets,
    )?;
    let accessories = named(&run.config, name)?;
    let resolved = resolve(&run, &accessories, operation)?;
    let version = run.version.clone().unwrap_or_default();
    let input = AccessoryInput {
        config: &run.config,
        selection: &run.selection,
        tags: &run.tags,
        registry: resolved.registry.as_ref(),
        accessory_registries: &resolved.accessory_registries,
        secrets: &resolved.secrets,
        files: &resolved.files,
        version: &version,
    };
    let lock = LockDetails {
        locked_by: facts::locked_by(Path::new(".")),
        recorded_at: run.tags.recorded_at.clone(),
        version: version.clone(),
        message: "Automatic deploy lock".to_owned(),
        run_url: settings::ci_run_url(&run.env),
    };
    let plan = accessory::plan(&input, &lock, &accessories, operation);
    let names: Vec<&str> = if name == "all" {
        vec!["all"]
    } else {
        vec![name]
    };
    if dry_run {
        printer.data(accessory::render(&plan, operation, &names).trim_end());
        return Ok(());
    }
    if let Operation::Upgrade { .. } = operation {
        printer.info(&format!(
            "Upgrading {name} accessories on {}...",
            accessory::all_accessory_hosts(&run.config, &run.selection).join(",")
        ));
    }
    super::groups::run_plan(
        &run,
        &format!("accessory {}", operation.name()),
        &accessory::stage_hosts(&plan),
        &plan,
        None,
    )?;
    if let Operation::Upgrade { .. } = operation {
        printer.info(&format!(
            "Upgraded {name} accessories on {}...",
            accessory::all_accessory_hosts(&run.config, &run.selection).join(",")
        ));
    }
    Ok(())
}

/// Runs `build(accessory, host)` on every selected host of each accessory (in parallel per
/// accessory) and prints each host's output with `header(accessory, host)` above it.
fn on_hosts(
    run: &Run,
    pool: &Pool,
    accessories: &[&config::Accessory],
    commands: impl Fn(&config::Accessory, &str) -> Vec<Command>,
    header: impl Fn(&config::Accessory, &str) -> Option<String>,
) -> Result<(), Error> {
    let printer = run.printer;
    let runtime = runtime()?;
    runtime.block_on(async {
        let cancel = cancel_on_signals();
        let mut result = Ok(());
        for accessory in accessories {
            let hosts = accessory::accessory_hosts(&run.selection, accessory);
            let mut per_host: BTreeMap<String, Arc<Vec<RemoteCommand>>> = BTreeMap::new();
            for host in &hosts {
                let commands = commands(accessory, host);
                for command in &commands {
                    printer.debug(&format!("  {host}: {}", for_log(command)));
                }
                per_host.insert(
                    host.clone(),
                    Arc::new(commands.iter().map(RemoteCommand::from).collect()),
                );
            }
            let per_host = Arc::new(per_host);
            let outputs = pool
                .run_on_hosts(&hosts, &cancel, move |session| {
                    let per_host = Arc::clone(&per_host);
                    async move {
                        let host = session.host().to_owned();
                        let commands = per_host.get(&host).cloned().unwrap_or_default();
                        let mut text = String::new();
                        for (index, command) in commands.iter().enumerate() {
                            let output = session.capture(command).await?;
                            let output = output.ensure_success(&host, command)?;
                            if index + 1 == commands.len() {
                                output.stdout_text().trim().clone_into(&mut text);
                            }
                        }
                        Ok(text)
                    }
                })
                .await;
            match outputs.into_result() {
                Ok(outputs) => {
                    for (host, text) in outputs {
                        match header(accessory, &host) {
                            Some(header) if printer.verbosity() != Verbosity::Quiet => {
                                printer.data(&format!("{header}\n{text}\n\n"));
                            }
                            _ => printer.data(&format!("{text}\n\n")),
                        }
                    }
                }
                Err(error) => {
                    result = Err(Error::from(error));
                    break;
                }
            }
        }
        pool.close().await;
        result
    })
}

/// `accessory details NAME|all`: `docker ps --filter label=service=<svc>` on each host.
fn details(global: &GlobalArgs, printer: Printer, name: &str) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "accessory", Some("details"), false)?;
    let accessories = named(&run.config, name)?;
    run.pre_connect()?;
    let pool = run.pool()?;
    let result = on_hosts(
        &run,
        &pool,
        &accessories,
        |accessory, _| vec![Accessory::new(&run.config, accessory).info(false, false)],
        |accessory, host| Some(format!("Accessory {} Host: {host}", accessory.name)),
    );
    run.report_learned(&pool);
    result
}

/// `accessory logs NAME`: the last lines (100 unless `--since` or `--grep`) on each host, or
/// `--follow` over `ssh -t` on the first selected host.
fn logs(
    global: &GlobalArgs,
    printer: Printer,
    options_args: &AccessoryLogsArgs,
) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "accessory", Some("logs"), false)?;
    let accessories = named(&run.config, &options_args.name)?;
    let Some(accessory) = accessories
        .first()
        .copied()
        .filter(|_| accessories.len() == 1)
    else {
        return Err(Error::Usage {
            message: "accessory logs needs one accessory name, not all".to_owned(),
        });
    };
    let builder = Accessory::new(&run.config, accessory);
    let hosts = accessory::accessory_hosts(&run.selection, accessory);
    let lines = options_args
        .lines
        .or_else(|| (options_args.since.is_none() && options_args.grep.is_none()).then_some(100));
    let options = LogOptions {
        timestamps: !options_args.skip_timestamps,
        since: options_args.since.as_deref(),
        lines,
        grep: options_args.grep.as_deref(),
        grep_options: options_args.grep_options.as_deref(),
    };
    run.pre_connect()?;
    let pool = run.pool()?;
    if options_args.follow {
        let Some(host) = hosts.first() else {
            return Err(no_hosts(accessory));
        };
        let command = builder.follow_logs(&options);
        printer.info(&format!("Following logs on {host}..."));
        printer.info(&for_log(&command));
        let argv = hosts::interactive_ssh_argv(
            &run.config,
            &global.ssh,
            &pool,
            host,
            &dhow_core::cmd::for_exec(&command),
        );
        return exec_process(&argv);
    }
    let result = on_hosts(
        &run,
        &pool,
        &accessories,
        |_, _| vec![builder.logs(&options)],
        |_, _| None,
    );
    run.report_learned(&pool);
    result
}

fn no_hosts(accessory: &config::Accessory) -> Error {
    Error::Failed {
        message: format!(
            "accessory {} has no host in the selection (--hosts/--roles)",
            accessory.name
        ),
    }
}

/// `accessory exec NAME CMD...`: in a new container (`docker run --rm`) or the running one
/// (`--reuse`), on every selected host, or interactively over `ssh -t` on the first.
fn exec(
    global: &GlobalArgs,
    printer: Printer,
    name: &str,
    interactive: bool,
    reuse: bool,
    words: &[String],
) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "accessory", Some("exec"), !reuse)?;
    let accessories = named(&run.config, name)?;
    let Some(accessory) = accessories
        .first()
        .copied()
        .filter(|_| accessories.len() == 1)
    else {
        return Err(Error::Usage {
            message: "accessory exec needs one accessory name, not all".to_owned(),
        });
    };
    let cmd = builders::join_command(words);
    let builder = Accessory::new(&run.config, accessory);
    let hosts = accessory::accessory_hosts(&run.selection, accessory);
    let login = if reuse {
        None
    } else {
        let own = accessory.registry.as_ref().unwrap_or(&run.config.registry);
        credentials(&run, own)?.map(|found| {
            dhow_core::docker::registry::login(
                own.server.as_deref(),
                &found.username,
                &found.password,
            )
        })
    };
    run.pre_connect()?;
    let pool = run.pool()?;
    if interactive {
        let Some(host) = hosts.first() else {
            return Err(no_hosts(accessory));
        };
        let tty = Some(std::io::stdin().is_terminal());
        let command = if reuse {
            printer.info("Launching interactive command via SSH from existing container...");
            builder.execute_in_existing_container(&cmd, tty)
        } else {
            printer.info("Launching interactive command via SSH from new container...");
            if let Some(login) = &login {
                let login = RemoteCommand::from(login);
                runtime()?.block_on(async {
                    let result = match pool.session(host).await {
                        Ok(session) => session
                            .run(&login)
                            .await
                            .map(|_| ())
                            .map_err(|error| super::server::host_error(host, error)),
                        Err(error) => Err(super::server::host_error(host, error.into())),
                    };
                    pool.close().await;
                    result
                })?;
            }
            builder.execute_in_new_container(&cmd, tty)
        };
        let argv = hosts::interactive_ssh_argv(
            &run.config,
            &global.ssh,
            &pool,
            host,
            &dhow_core::cmd::for_exec(&command),
        );
        return exec_process(&argv);
    }
    let scope = run.scope();
    let record = audit::record(
        &scope,
        &run.tags,
        &builders::exec_audit_message(&cmd, &accessory.name),
    );
    let command = if reuse {
        printer.info("Launching command from existing container...");
        builder.execute_in_existing_container(&cmd, None)
    } else {
        printer.info("Launching command from new container...");
        builder.execute_in_new_container(&cmd, None)
    };
    let result = on_hosts(
        &run,
        &pool,
        &accessories,
        |_, _| {
            let mut commands: Vec<Command> = login.iter().cloned().collect();
            commands.push(record.clone());
            commands.push(command.clone());
            commands
        },
        |_, host| Some(format!("App Host: {host}")),
    );
    run.report_learned(&pool);
    result
}

/// Replaces this process with `argv` (the terminal, signals and exit status pass through).
fn exec_process(argv: &[String]) -> Result<(), Error> {
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
