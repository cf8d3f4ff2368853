//! `dhow app ...`: Kamal's app group. Read-only subcommands (details, containers, images,
//! version, logs, exec, stale containers) print each host's output under `App Host: …`;
//! mutating ones (boot, start, stop, maintenance, live, remove, `stale_containers --stop`)
//! run as plans under the deploy lock with Kamal's audit lines, or print the redacted plan with
//! `--dry-run`. `exec -i` and `logs -f` replace dhow with `ssh -t` on the primary host.

use std::io::IsTerminal as _;
use std::sync::Arc;

use dhow_core::cmd::{Command, for_exec};
use dhow_core::config::{Config, Role};
use dhow_core::docker::app::{self as builders, App, LogOptions, NewContainerExec};
use dhow_core::docker::{audit, server};
use dhow_core::plan::{Action, CONTAINER_ID, Phase, STALE_VERSION, Stage};
use dhow_remote::{RemoteCommand, Transport as _};

use super::groups::{self, HostQueries, Query, step};
use super::server::{Run, cancel_on_signals, exec_process, runtime};
use crate::cli::{AppArgs, AppCommand, AppExecArgs, AppLogsArgs, GlobalArgs};
use crate::error::Error;
use crate::hosts;
use crate::printer::Printer;

pub fn run(args: AppArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let dry_run = args.dry_run;
    let prepare = |subcommand: &str, secrets: bool| {
        Run::prepare(global, printer, "app", Some(subcommand), secrets)
    };
    match args.command {
        AppCommand::Boot => boot(prepare("boot", true)?, dry_run),
        AppCommand::Start => {
            let run = prepare("start", false)?;
            let version = config_version(&run)?;
            let stages = vec![start_stage(&run, &version)];
            groups::execute(
                &run,
                "app start",
                &groups::locked_plan(&run, &version, stages),
                dry_run,
                None,
            )
        }
        AppCommand::Stop => {
            let run = prepare("stop", false)?;
            let stages = vec![stop_stage(&run)];
            locked(&run, "app stop", stages, dry_run)
        }
        AppCommand::Details => {
            let run = prepare("details", false)?;
            let hosts = per_role(&run, &run.selection.app_hosts(&run.config), |app, _| {
                vec![Query::Show(app.info())]
            });
            groups::show(&run, "App", "app details", hosts, dry_run)
        }
        AppCommand::Containers => {
            let run = prepare("containers", false)?;
            let hosts = each_host(&run.selection.app_hosts(&run.config), |_| {
                vec![Query::Show(builders::list_service_containers(&run.config))]
            });
            groups::show(&run, "App", "app containers", hosts, dry_run)
        }
        AppCommand::Images => {
            let run = prepare("images", false)?;
            let hosts = first_role(&run, |app| vec![Query::Show(app.list_images())]);
            groups::show(&run, "App", "app images", hosts, dry_run)
        }
        AppCommand::Version => {
            let run = prepare("version", false)?;
            let hosts = first_role(&run, |app| vec![Query::Show(app.current_running_version())]);
            groups::show(&run, "App", "app version", hosts, dry_run)
        }
        AppCommand::Logs(logs_args) => logs(&prepare("logs", false)?, &logs_args, dry_run),
        AppCommand::Exec(exec_args) => exec(&prepare("exec", true)?, &exec_args, dry_run),
        AppCommand::StaleContainers { stop } => {
            let run = prepare("stale_containers", false)?;
            if stop {
                let stages = vec![stale_stage(&run)];
                locked(&run, "app stale_containers --stop", stages, dry_run)
            } else {
                detect_stale(&run, dry_run)
            }
        }
        AppCommand::Remove => {
            let run = prepare("remove", false)?;
            let stages = remove_stages(&run);
            locked(&run, "app remove", stages, dry_run)
        }
        AppCommand::Maintenance {
            drain_timeout,
            message,
        } => {
            let run = prepare("maintenance", false)?;
            let drain = drain_timeout.map_or(run.config.drain_timeout, i64::from);
            let stages = vec![proxy_roles_stage(
                &run,
                "Set the app to maintenance mode",
                |app| app.proxy_maintenance(Some(drain), message.as_deref()),
            )];
            locked(&run, "app maintenance", stages, dry_run)
        }
        AppCommand::Live => {
            let run = prepare("live", false)?;
            let stages = vec![proxy_roles_stage(&run, "Set the app to live mode", |app| {
                app.proxy_live()
            })];
            locked(&run, "app live", stages, dry_run)
        }
    }
}

/// Runs `stages` under the deploy lock (or prints them with `dry_run`).
fn locked(run: &Run, title: &str, stages: Vec<Stage>, dry_run: bool) -> Result<(), Error> {
    let version = run.version.clone().unwrap_or_default();
    groups::execute(
        run,
        title,
        &groups::locked_plan(run, &version, stages),
        dry_run,
        None,
    )
}

/// The app version Kamal's `config.version` gives: `--version`, `VERSION`, or git.
fn config_version(run: &Run) -> Result<String, Error> {
    run.version.clone().ok_or_else(|| Error::NoVersion {
        dir: std::path::PathBuf::from("."),
    })
}

/// Kamal's `version_or_latest`: `--version`, else the `latest[-<dest>]` tag (not `VERSION`
/// nor git: a standalone boot or exec acts on the image last tagged latest).
fn version_or_latest(run: &Run) -> String {
    run.global
        .app_version
        .clone()
        .unwrap_or_else(|| run.config.latest_tag())
}

/// Queries for every selected role on each host (Kamal's `on_roles`).
fn per_role(
    run: &Run,
    hosts: &[String],
    queries: impl Fn(&App<'_>, &str) -> Vec<Query>,
) -> Vec<HostQueries> {
    let version = run
        .version
        .clone()
        .unwrap_or_else(|| run.config.latest_tag());
    hosts
        .iter()
        .map(|host| HostQueries {
            host: host.clone(),
            queries: run
                .selection
                .roles_on(&run.config, host)
                .into_iter()
                .flat_map(|role| queries(&App::new(&run.config, role, &version), host))
                .collect(),
        })
        .collect()
}

/// Queries for the first selected role of each app host (Kamal's `KAMAL.roles_on(host).first`).
fn first_role(run: &Run, queries: impl Fn(&App<'_>) -> Vec<Query>) -> Vec<HostQueries> {
    let version = run
        .version
        .clone()
        .unwrap_or_else(|| run.config.latest_tag());
    run.selection
        .app_hosts(&run.config)
        .into_iter()
        .filter_map(|host| {
            let role = *run.selection.roles_on(&run.config, &host).first()?;
            Some(HostQueries {
                queries: queries(&App::new(&run.config, role, &version)),
                host,
            })
        })
        .collect()
}

fn each_host(hosts: &[String], queries: impl Fn(&str) -> Vec<Query>) -> Vec<HostQueries> {
    hosts
        .iter()
        .map(|host| HostQueries {
            host: host.clone(),
            queries: queries(host),
        })
        .collect()
}

/// `(host, role)` pairs of the selected app hosts, primary-role hosts first.
fn host_roles(run: &Run) -> Vec<(String, Vec<&Role>)> {
    run.selection
        .app_hosts(&run.config)
        .into_iter()
        .map(|host| {
            let roles = run.selection.roles_on(&run.config, &host);
            (host, roles)
        })
        .collect()
}

/// `app boot`: the boot stages of a deploy and the `latest` tag, for `--version` or the image
/// tagged latest, under the lock.
fn boot(mut run: Run, dry_run: bool) -> Result<(), Error> {
    let version = version_or_latest(&run);
    run.version = Some(version.clone());
    let resolved = super::deploy::resolve(&run, "Automatic deploy lock")?;
    let deploy = super::deploy::build(&run, &resolved);
    let stages: Vec<Stage> = deploy
        .locked
        .into_iter()
        .filter(|stage| {
            stage.phase == Phase::Boot
                && !stage.hosts.iter().any(|host| {
                    host.steps
                        .iter()
                        .any(|step| matches!(step.action, Action::StopStale { .. }))
                })
        })
        .collect();
    let plan = groups::locked_plan(&run, &version, stages);
    if !dry_run {
        run.printer.info(&format!(
            "Start container with version {version} (or reboot if already running)..."
        ));
    }
    groups::execute(
        &run,
        "app boot",
        &plan,
        dry_run,
        Some(groups::StageHooks {
            pre: "pre-app-boot",
            post: "post-app-boot",
        }),
    )
}

/// `app start`: `docker start` of the version's container, then (proxy roles) the running
/// container deployed to the proxy again.
fn start_stage(run: &Run, version: &str) -> Stage {
    let scope = run.scope();
    let hosts = host_roles(run)
        .into_iter()
        .map(|(host, roles)| {
            let mut steps = Vec::new();
            for role in roles {
                let app = App::new(&run.config, role, version);
                steps.push(step(
                    "audit",
                    Action::Run(audit::record(
                        &scope,
                        &run.tags,
                        &format!("Started app version {version}"),
                    )),
                ));
                steps.push(step(
                    format!("start {}", role.name),
                    Action::Try(app.start()),
                ));
                if role.running_proxy()
                    && let Some(deploy) = app.proxy_deploy(CONTAINER_ID)
                {
                    steps.push(step(
                        format!("proxy deploy {}", role.name),
                        Action::ProxyDeploy {
                            probe: app.current_running_container_id(),
                            deploy,
                        },
                    ));
                }
            }
            (host, steps)
        })
        .collect();
    groups::stage("Start app containers", Phase::Boot, hosts)
}

/// `app stop`: the audit line, the role out of the proxy when a container runs, `docker stop`.
pub fn stop_stage(run: &Run) -> Stage {
    let scope = run.scope();
    let version = run.version.clone().unwrap_or_default();
    let hosts = host_roles(run)
        .into_iter()
        .map(|(host, roles)| {
            let mut steps = Vec::new();
            for role in roles {
                let app = App::new(&run.config, role, &version);
                let tags = run.tags.with(&[("role", &role.name)]);
                steps.push(step(
                    "audit",
                    Action::Run(audit::record(&scope, &tags, "Stopped app")),
                ));
                if role.running_proxy() {
                    steps.push(step(
                        format!("proxy remove {}", role.name),
                        Action::TryIfFound {
                            probe: app.current_running_container_id(),
                            command: app.proxy_remove(),
                        },
                    ));
                }
                steps.push(step(
                    format!("stop {}", role.name),
                    Action::Try(app.stop(None)),
                ));
            }
            (host, steps)
        })
        .collect();
    groups::stage("Stop app containers", Phase::Boot, hosts)
}

/// `app stale_containers --stop`: every running version of a role but the current one.
fn stale_stage(run: &Run) -> Stage {
    let version = run.version.clone().unwrap_or_default();
    let hosts = host_roles(run)
        .into_iter()
        .map(|(host, roles)| {
            let steps = roles
                .into_iter()
                .map(|role| {
                    let app = App::new(&run.config, role, &version);
                    step(
                        format!("stale containers of {}", role.name),
                        Action::StopStale {
                            list: app.list_versions(&[], &[]),
                            current: app.current_running_version(),
                            stop: app.stop(Some(STALE_VERSION)),
                        },
                    )
                })
                .collect();
            (host, steps)
        })
        .collect();
    groups::stage("Stop stale containers", Phase::Boot, hosts)
}

/// Per role: its name, the command listing its versions, the one printing the running one.
type RoleProbes = Vec<(String, Command, Command)>;

/// `app stale_containers`: lists the stale versions per role and host.
fn detect_stale(run: &Run, dry_run: bool) -> Result<(), Error> {
    let version = run.version.clone().unwrap_or_default();
    let pairs: Vec<(String, RoleProbes)> = host_roles(run)
        .into_iter()
        .map(|(host, roles)| {
            let roles = roles
                .into_iter()
                .map(|role| {
                    let app = App::new(&run.config, role, &version);
                    (
                        role.name.clone(),
                        app.list_versions(&[], &[]),
                        app.current_running_version(),
                    )
                })
                .collect();
            (host, roles)
        })
        .collect();
    if dry_run {
        let hosts = pairs
            .iter()
            .map(|(host, roles)| HostQueries {
                host: host.clone(),
                queries: roles
                    .iter()
                    .flat_map(|(_, list, current)| {
                        [Query::Show(list.clone()), Query::Show(current.clone())]
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        run.printer
            .data(groups::render_queries("app stale_containers", &hosts).trim_end());
        return Ok(());
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let names: Vec<String> = pairs.iter().map(|(host, _)| host.clone()).collect();
    let pairs = Arc::new(pairs);
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&names, &cancel, move |session| {
                let pairs = Arc::clone(&pairs);
                async move {
                    let host = session.host().to_owned();
                    let mut lines = Vec::new();
                    let Some((_, roles)) = pairs.iter().find(|(h, _)| *h == host) else {
                        return Ok(lines);
                    };
                    for (role, list, current) in roles {
                        let listed = session.capture(&RemoteCommand::from(list)).await?;
                        let running = session.capture(&RemoteCommand::from(current)).await?;
                        let running = running.stdout_text().trim().to_owned();
                        for version in listed.stdout_text().lines().map(str::trim) {
                            if version.is_empty() || version == running {
                                continue;
                            }
                            lines.push(format!(
                                "Detected stale container for role {role} with version {version} \
                                 (use `dhow app stale_containers --stop` to stop)"
                            ));
                        }
                    }
                    Ok(lines)
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    groups::print_results(run.printer, results, &|host, output| {
        groups::by_host_text(run.printer, "App", host, output)
    })
}

/// `app maintenance` / `app live`: a kamal-proxy call for every proxy role on the proxy hosts.
fn proxy_roles_stage(run: &Run, label: &str, command: impl Fn(&App<'_>) -> Command) -> Stage {
    let version = run.version.clone().unwrap_or_default();
    let hosts = run
        .selection
        .proxy_hosts(&run.config)
        .into_iter()
        .map(|host| {
            let steps = run
                .selection
                .roles_on(&run.config, &host)
                .into_iter()
                .filter(|role| role.running_proxy())
                .map(|role| {
                    let app = App::new(&run.config, role, &version);
                    step(format!("proxy {}", role.name), Action::Run(command(&app)))
                })
                .collect();
            (host, steps)
        })
        .collect();
    groups::stage(label, Phase::Proxy, hosts)
}

/// Hosts where every role of the host is selected: only there are images and directories
/// removed (Kamal's `hosts_removing_all_roles`).
fn hosts_removing_all_roles(run: &Run) -> Vec<String> {
    run.selection
        .app_hosts(&run.config)
        .into_iter()
        .filter(|host| {
            let mut selected: Vec<&str> = run
                .selection
                .roles_on(&run.config, host)
                .iter()
                .map(|role| role.name.as_str())
                .collect();
            let mut all: Vec<&str> = run
                .config
                .host_roles(host)
                .iter()
                .map(|role| role.name.as_str())
                .collect();
            selected.sort_unstable();
            all.sort_unstable();
            selected == all
        })
        .collect()
}

/// `app remove`: stop, remove the containers, then (on hosts losing every role) the images and
/// the app directories. Also the app part of `dhow remove`.
pub fn remove_stages(run: &Run) -> Vec<Stage> {
    let scope = run.scope();
    let version = run.version.clone().unwrap_or_default();
    let containers = host_roles(run)
        .into_iter()
        .map(|(host, roles)| {
            let mut steps = Vec::new();
            for role in roles {
                let app = App::new(&run.config, role, &version);
                let tags = run.tags.with(&[("role", &role.name)]);
                steps.push(step(
                    "audit",
                    Action::Run(audit::record(&scope, &tags, "Removed all app containers")),
                ));
                steps.push(step(
                    format!("remove containers of {}", role.name),
                    Action::Run(app.remove_containers()),
                ));
            }
            (host, steps)
        })
        .collect();
    let removing_all = hosts_removing_all_roles(run);
    let first_app = |host: &str| {
        run.config
            .host_roles(host)
            .first()
            .map(|role| App::new(&run.config, role, &version))
    };
    let images = removing_all
        .iter()
        .map(|host| {
            let mut steps = vec![step(
                "audit",
                Action::Run(audit::record(&scope, &run.tags, "Removed all app images")),
            )];
            if let Some(app) = first_app(host) {
                steps.push(step("remove images", Action::Run(app.remove_images())));
            }
            (host.clone(), steps)
        })
        .collect();
    let directories = removing_all
        .iter()
        .map(|host| {
            let mut steps = vec![
                step(
                    "remove app directory",
                    Action::Try(server::remove_app_directory(&scope)),
                ),
                step(
                    "audit",
                    Action::Run(audit::record(
                        &scope,
                        &run.tags,
                        &format!("Removed {}", scope.app_directory()),
                    )),
                ),
            ];
            if let Some(app) = first_app(host) {
                steps.push(step(
                    "remove proxy app directory",
                    Action::Try(app.remove_proxy_app_directory()),
                ));
            }
            (host.clone(), steps)
        })
        .collect();
    vec![
        stop_stage(run),
        groups::stage("Remove app containers", Phase::Boot, containers),
        groups::stage("Remove app images", Phase::Prune, images),
        groups::stage("Remove app directories", Phase::Prune, directories),
    ]
}

/// The role `logs -f` and `exec -i` use on the primary host: the primary role unless `--roles`
/// was given, else the first selected role there.
fn primary_app_role(run: &Run) -> Result<(&Role, String), Error> {
    let host = run.selection.primary_host.clone();
    let roles = run.selection.roles_on(&run.config, &host);
    let primary = run
        .global
        .roles
        .is_none()
        .then(|| run.config.primary_role())
        .flatten()
        .filter(|role| roles.iter().any(|r| r.name == role.name));
    primary
        .or_else(|| roles.first().copied())
        .map(|role| (role, host.clone()))
        .ok_or_else(|| Error::Failed {
            message: format!("no selected role runs on {host}"),
        })
}

fn logs(run: &Run, args: &AppLogsArgs, dry_run: bool) -> Result<(), Error> {
    let unbounded = args.since.is_some() || args.grep.is_some();
    if args.follow {
        let lines = args.lines.or(if unbounded { None } else { Some(10) });
        let (role, host) = primary_app_role(run)?;
        let version = run
            .version
            .clone()
            .unwrap_or_else(|| run.config.latest_tag());
        let app = App::new(&run.config, role, &version);
        let command = app.follow_logs(&LogOptions {
            container_id: args.container_id.as_deref(),
            timestamps: !args.skip_timestamps,
            since: None,
            lines,
            grep: args.grep.as_deref(),
            grep_options: args.grep_options.as_deref(),
        });
        return interactive(
            run,
            &host,
            &command,
            &format!("Following logs on {host}..."),
            dry_run,
        );
    }
    let lines = args.lines.or(if unbounded { None } else { Some(100) });
    let hosts = per_role(run, &run.selection.app_hosts(&run.config), |app, _| {
        vec![Query::ShowOr(
            app.logs(&LogOptions {
                container_id: args.container_id.as_deref(),
                timestamps: !args.skip_timestamps,
                since: args.since.as_deref(),
                lines,
                grep: args.grep.as_deref(),
                grep_options: args.grep_options.as_deref(),
            }),
            "Nothing found",
        )]
    });
    groups::show(run, "App", "app logs", hosts, dry_run)
}

/// Replaces dhow with `ssh -t` running `command` on `host` (or prints the argv with `dry_run`).
fn interactive(
    run: &Run,
    host: &str,
    command: &Command,
    message: &str,
    dry_run: bool,
) -> Result<(), Error> {
    if !dry_run {
        run.pre_connect()?;
    }
    let pool = run.pool()?;
    let argv = hosts::interactive_ssh_argv(
        &run.config,
        &run.global.ssh,
        &pool,
        host,
        &for_exec(command),
    );
    if dry_run {
        run.printer.data(&format!(
            "{message}\n  {}",
            dhow_core::cmd::for_log(command)
        ));
        return Ok(());
    }
    run.printer.info(message);
    run.printer.info(&dhow_core::cmd::for_log(command));
    exec_process(&argv)
}

/// Captures `command` on `host` (the running version, before an exec in it).
fn capture_on(run: &Run, host: &str, command: &Command) -> Result<String, Error> {
    Ok(groups::capture_each(run, &[host.to_owned()], command)?
        .into_iter()
        .next()
        .map(|(_, output)| output)
        .unwrap_or_default())
}

/// `-e K:V` values as pairs (split on the first `:`, as Thor's hash options).
fn exec_env(values: &[String]) -> Result<Vec<(String, String)>, Error> {
    values
        .iter()
        .map(|value| {
            value
                .split_once(':')
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .ok_or_else(|| Error::Usage {
                    message: format!("--env expects KEY:VALUE, got {value:?}"),
                })
        })
        .collect()
}

fn exec(run: &Run, args: &AppExecArgs, dry_run: bool) -> Result<(), Error> {
    let incompatible: Vec<&str> = [("interactive", args.interactive), ("reuse", args.reuse)]
        .into_iter()
        .filter(|(_, set)| args.detach && *set)
        .map(|(name, _)| name)
        .collect();
    if !incompatible.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "Detach is not compatible with {}",
                incompatible.join(" or ")
            ),
        });
    }
    if args.cmd.is_empty() {
        return Err(Error::Usage {
            message: "No command provided. You must specify a command to execute.".to_owned(),
        });
    }
    let cmd = vec![args.cmd.join(" ")];
    let env = exec_env(&args.env)?;
    let config: &Config = &run.config;

    if args.interactive {
        return exec_interactive(run, args, &cmd, &env, dry_run);
    }

    let scope = run.scope();
    let app_hosts = run.selection.app_hosts(config);
    if args.reuse {
        let version = running_version(run, dry_run)?;
        if !dry_run {
            run.printer.info(&format!(
                "Launching command with version {version} from existing container..."
            ));
        }
        let hosts = per_role(run, &app_hosts, |app, _| {
            let tags = run.tags.with(&[("role", &app.role.name)]);
            let app = App::new(config, app.role, &version);
            vec![
                Query::Run(audit::record(
                    &scope,
                    &tags,
                    &format!("Executed cmd '{}' on app version {version}", cmd[0]),
                )),
                Query::Show(app.execute_in_existing_container(&cmd, None, &env)),
            ]
        });
        return groups::show(run, "App", "app exec --reuse", hosts, dry_run);
    }

    let version = version_or_latest(run);
    if !dry_run {
        run.printer.info(&format!(
            "Launching command with version {version} from new container..."
        ));
    }
    let login = groups::registry_login(run)?;
    let hosts: Vec<HostQueries> = app_hosts
        .iter()
        .map(|host| {
            let mut queries: Vec<Query> = login.iter().cloned().map(Query::Run).collect();
            for role in run.selection.roles_on(config, host) {
                let app = App::new(config, role, &version);
                let suffix = crate::facts::random_hex(3);
                queries.push(Query::Run(audit::record(
                    &scope,
                    &run.tags,
                    &format!("Executed cmd '{}' on app version {version}", cmd[0]),
                )));
                queries.push(Query::Show(app.execute_in_new_container(
                    &NewContainerExec {
                        host,
                        command: &cmd,
                        interactive: None,
                        detach: args.detach,
                        env: &env,
                        suffix: &suffix,
                    },
                )));
            }
            HostQueries {
                host: host.clone(),
                queries,
            }
        })
        .collect();
    groups::show(run, "App", "app exec", hosts, dry_run)
}

/// The version `--reuse` runs in: `--version`, else the one running on the primary host.
fn running_version(run: &Run, dry_run: bool) -> Result<String, Error> {
    if let Some(version) = &run.global.app_version {
        return Ok(version.clone());
    }
    let (role, host) = primary_app_role(run)?;
    if dry_run {
        return Ok("<running-version>".to_owned());
    }
    let version = run.config.latest_tag();
    let current = App::new(&run.config, role, &version).current_running_version();
    let found = capture_on(run, &host, &current)?;
    if found.is_empty() {
        return Err(Error::Failed {
            message: format!("no running container of {} on {host}", role.name),
        });
    }
    Ok(found)
}

/// `app exec -i [--reuse]`: `ssh -t` to the primary host, in a new or the running container.
fn exec_interactive(
    run: &Run,
    args: &AppExecArgs,
    cmd: &[String],
    env: &[(String, String)],
    dry_run: bool,
) -> Result<(), Error> {
    let config = &run.config;
    let tty = std::io::stdin().is_terminal();
    let (role, host) = primary_app_role(run)?;
    let (command, message) = if args.reuse {
        let version = running_version(run, dry_run)?;
        let command =
            App::new(config, role, &version).execute_in_existing_container(cmd, Some(tty), env);
        let message = format!(
            "Launching interactive command with version {version} via SSH from existing container on {host}..."
        );
        (command, message)
    } else {
        let version = version_or_latest(run);
        let suffix = crate::facts::random_hex(3);
        let command =
            App::new(config, role, &version).execute_in_new_container(&NewContainerExec {
                host: &host,
                command: cmd,
                interactive: Some(tty),
                detach: false,
                env,
                suffix: &suffix,
            });
        if !dry_run && let Some(login) = groups::registry_login(run)? {
            groups::show(
                run,
                "App",
                "registry login",
                vec![HostQueries {
                    host: host.clone(),
                    queries: vec![Query::Run(login)],
                }],
                false,
            )?;
        }
        let message = format!(
            "Launching interactive command with version {version} via SSH from new container on {host}..."
        );
        (command, message)
    };
    interactive(run, &host, &command, &message, dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_env_splits_on_the_first_colon() {
        assert_eq!(
            exec_env(&["A:1".to_owned(), "URL:http://x:80".to_owned()]).expect("valid"),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("URL".to_owned(), "http://x:80".to_owned())
            ]
        );
        assert!(matches!(
            exec_env(&["nocolon".to_owned()]),
            Err(Error::Usage { .. })
        ));
    }
}
