//! `dhow proxy ...`: Kamal's proxy group. boot, reboot (`--rolling`, with the
//! pre/post-proxy-reboot hooks), start, stop, restart and remove run as plans under the deploy
//! lock with Kamal's audit lines; details, logs and `boot_config get` print per host; `logs -f`
//! replaces dhow with `ssh -t`. The proxy image is dhow's own (`ghcr.io/dhow-deploy/kamal-proxy`)
//! unless `proxy.run` or the legacy boot files on the host name one; boot and reboot make sure
//! it is on each host first (pulled, or sent from the local docker when the host cannot pull it).

use std::io::{BufRead as _, IsTerminal as _};

use dhow_core::Secret;
use dhow_core::cmd::{Command, for_exec, for_log};
use dhow_core::docker::proxy::{self, BootConfigSet};
use dhow_core::docker::{audit, server};
use dhow_core::plan::{Action, Phase, ProxyImage, Stage};

use super::groups::{self, HostQueries, Query, StageHooks, step};
use super::server::{Run, exec_process};
use crate::cli::{
    BootConfigAction, BootConfigArgs, GlobalArgs, ProxyArgs, ProxyCommand, ProxyLogsArgs,
};
use crate::error::Error;
use crate::hosts;
use crate::printer::Printer;

pub fn run(args: ProxyArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let dry_run = args.dry_run;
    let prepare =
        |subcommand: &str| Run::prepare(global, printer, "proxy", Some(subcommand), false);
    match args.command {
        ProxyCommand::Boot => {
            let run = prepare("boot")?;
            let stages = vec![boot_stage(&run)?];
            locked(&run, "proxy boot", stages, dry_run, None)
        }
        ProxyCommand::Reboot { rolling, confirmed } => {
            let run = prepare("reboot")?;
            if !dry_run
                && !confirmed
                && !confirm(
                    printer,
                    "This will cause a brief outage on each host. Are you sure?",
                )
            {
                printer.info("Aborted");
                return Ok(());
            }
            let stages = reboot_stages(&run, rolling)?;
            locked(
                &run,
                "proxy reboot",
                stages,
                dry_run,
                Some(StageHooks {
                    pre: "pre-proxy-reboot",
                    post: "post-proxy-reboot",
                }),
            )
        }
        ProxyCommand::Start => {
            let run = prepare("start")?;
            let stages = vec![start_stage(&run)];
            locked(&run, "proxy start", stages, dry_run, None)
        }
        ProxyCommand::Stop => {
            let run = prepare("stop")?;
            let stages = vec![stop_stage(&run)];
            locked(&run, "proxy stop", stages, dry_run, None)
        }
        ProxyCommand::Restart => {
            let run = prepare("restart")?;
            let stages = vec![stop_stage(&run), start_stage(&run)];
            locked(&run, "proxy restart", stages, dry_run, None)
        }
        ProxyCommand::Details => {
            let run = prepare("details")?;
            let hosts = on_proxy_hosts(&run, |_| vec![Query::Show(proxy::info())]);
            groups::show(&run, "Proxy", "proxy details", hosts, dry_run)
        }
        ProxyCommand::Logs(logs_args) => logs(&prepare("logs")?, &logs_args, dry_run),
        ProxyCommand::Remove { force } => remove(&prepare("remove")?, force, dry_run),
        ProxyCommand::BootConfig(boot_args) => {
            printer.warn(
                "The proxy boot_config command is deprecated - set the config in the deploy YAML at proxy/run instead",
            );
            boot_config(&prepare("boot_config")?, &boot_args, dry_run)
        }
    }
}

fn locked(
    run: &Run,
    title: &str,
    stages: Vec<Stage>,
    dry_run: bool,
    hooks: Option<StageHooks>,
) -> Result<(), Error> {
    let version = run.version.clone().unwrap_or_default();
    groups::execute(
        run,
        title,
        &groups::locked_plan(run, &version, stages),
        dry_run,
        hooks,
    )
}

/// Asks a y/N question on the terminal; anything but `y` (or no terminal) is no.
fn confirm(printer: Printer, question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        printer.warn("not a terminal: pass -y (--confirmed) to proceed without the question");
        return false;
    }
    printer.info(&format!("{question} [y, N] (N)"));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == "y"
}

fn on_proxy_hosts(run: &Run, queries: impl Fn(&str) -> Vec<Query>) -> Vec<HostQueries> {
    run.selection
        .proxy_hosts(&run.config)
        .into_iter()
        .map(|host| HostQueries {
            queries: queries(&host),
            host,
        })
        .collect()
}

/// Kamal's `proxy boot`: the `kamal` network on every selected host; on proxy hosts the
/// registry login, the version check, the apps-config directory and
/// `docker container start kamal-proxy || docker run ...`.
fn boot_stage(run: &Run) -> Result<Stage, Error> {
    let login = groups::registry_login(run)?;
    let proxy_hosts = run.selection.proxy_hosts(&run.config);
    let hosts = run
        .selection
        .hosts
        .iter()
        .map(|host| {
            let mut steps = vec![step(
                "network",
                Action::RunAllowing {
                    command: server::create_network(),
                    allowed: "already exists".to_owned(),
                },
            )];
            if proxy_hosts.contains(host) {
                if let Some(login) = &login {
                    steps.push(step("registry login", Action::Run(login.clone())));
                }
                steps.push(step(
                    "proxy version",
                    Action::CheckProxyVersion(proxy::version()),
                ));
                steps.push(step(
                    "proxy config directory",
                    Action::Run(proxy::ensure_apps_config_directory()),
                ));
                steps.push(step(
                    "proxy image",
                    Action::EnsureProxyImage(ProxyImage::new(
                        run.config.proxy_run(host).as_ref(),
                        true,
                    )),
                ));
                steps.push(step(
                    "proxy start",
                    Action::Run(proxy::start_or_run(run.config.proxy_run(host).as_ref())),
                ));
            }
            (host.clone(), steps)
        })
        .collect();
    Ok(groups::stage("Boot kamal-proxy", Phase::Proxy, hosts))
}

/// Kamal's `proxy reboot`: per host group (each host with `--rolling`, else all), the audit
/// line, login, stop, the container pruned, the directory, a new container.
fn reboot_stages(run: &Run, rolling: bool) -> Result<Vec<Stage>, Error> {
    let login = groups::registry_login(run)?;
    let scope = run.scope();
    let proxy_hosts = run.selection.proxy_hosts(&run.config);
    let groups_of: Vec<Vec<String>> = if rolling {
        proxy_hosts.iter().map(|host| vec![host.clone()]).collect()
    } else {
        vec![proxy_hosts]
    };
    Ok(groups_of
        .into_iter()
        .filter(|hosts| !hosts.is_empty())
        .map(|hosts| {
            let label = format!("Reboot kamal-proxy on {}", hosts.join(", "));
            let hosts = hosts
                .into_iter()
                .map(|host| {
                    let mut steps = vec![step(
                        "audit",
                        Action::Run(audit::record(&scope, &run.tags, "Rebooted proxy")),
                    )];
                    if let Some(login) = &login {
                        steps.push(step("registry login", Action::Run(login.clone())));
                    }
                    // The image is on the host before the old proxy stops: no outage for a pull.
                    steps.push(step(
                        "proxy image",
                        Action::EnsureProxyImage(ProxyImage::new(
                            run.config.proxy_run(&host).as_ref(),
                            false,
                        )),
                    ));
                    steps.extend([
                        step("proxy stop", Action::Try(proxy::stop())),
                        step(
                            "proxy remove container",
                            Action::Run(proxy::remove_container()),
                        ),
                        step(
                            "proxy config directory",
                            Action::Run(proxy::ensure_apps_config_directory()),
                        ),
                        step(
                            "proxy run",
                            Action::Run(proxy::run(run.config.proxy_run(&host).as_ref())),
                        ),
                    ]);
                    (host, steps)
                })
                .collect();
            let mut stage = groups::stage(label, Phase::Proxy, hosts);
            stage.app_boot_hooks = true;
            stage
        })
        .collect())
}

fn start_stage(run: &Run) -> Stage {
    let scope = run.scope();
    let hosts = run
        .selection
        .proxy_hosts(&run.config)
        .into_iter()
        .map(|host| {
            let steps = vec![
                step(
                    "audit",
                    Action::Run(audit::record(&scope, &run.tags, "Started proxy")),
                ),
                step("proxy start", Action::Run(proxy::start())),
            ];
            (host, steps)
        })
        .collect();
    groups::stage("Start kamal-proxy", Phase::Proxy, hosts)
}

fn stop_stage(run: &Run) -> Stage {
    let scope = run.scope();
    let hosts = run
        .selection
        .proxy_hosts(&run.config)
        .into_iter()
        .map(|host| {
            let steps = vec![
                step(
                    "audit",
                    Action::Run(audit::record(&scope, &run.tags, "Stopped proxy")),
                ),
                step("proxy stop", Action::Try(proxy::stop())),
            ];
            (host, steps)
        })
        .collect();
    groups::stage("Stop kamal-proxy", Phase::Proxy, hosts)
}

/// The stages of `proxy remove` (also used by `dhow remove`): stop, the container, the
/// image, the `.kamal/proxy` directory.
pub fn remove_stages(run: &Run) -> Vec<Stage> {
    let scope = run.scope();
    let proxy_hosts = run.selection.proxy_hosts(&run.config);
    let each = |label: &str, line: Option<&str>, action: &dyn Fn() -> Action| {
        let hosts = proxy_hosts
            .iter()
            .map(|host| {
                let mut steps = Vec::new();
                if let Some(line) = line {
                    steps.push(step(
                        "audit",
                        Action::Run(audit::record(&scope, &run.tags, line)),
                    ));
                }
                steps.push(step(label, action()));
                (host.clone(), steps)
            })
            .collect();
        groups::stage(label, Phase::Proxy, hosts)
    };
    vec![
        each("Stop kamal-proxy", Some("Stopped proxy"), &|| {
            Action::Try(proxy::stop())
        }),
        each(
            "Remove the proxy container",
            Some("Removed proxy container"),
            &|| Action::Run(proxy::remove_container()),
        ),
        each(
            "Remove the proxy image",
            Some("Removed proxy image"),
            &|| Action::Run(proxy::remove_image()),
        ),
        each("Remove the proxy directory", None, &|| {
            Action::Try(proxy::remove_proxy_directory())
        }),
    ]
}

/// `proxy remove`: only when no app directory is left on the proxy hosts (`ls .kamal/apps |
/// wc -l` is 0), unless `--force`.
fn remove(run: &Run, force: bool, dry_run: bool) -> Result<(), Error> {
    if !dry_run {
        let counts = groups::capture_each(
            run,
            &run.selection.proxy_hosts(&run.config),
            &server::app_directory_count(),
        )?;
        let busy: Vec<String> = counts
            .into_iter()
            .filter(|(_, count)| count.trim().parse::<u64>().unwrap_or(0) > 0)
            .map(|(host, _)| host)
            .collect();
        if !busy.is_empty() {
            if force {
                run.printer
                    .info("Forcing, so removing the proxy, even though other apps are installed");
            } else {
                run.printer.info(&format!(
                    "Not removing the proxy, as other apps are installed on {}, ignore this check with dhow proxy remove --force",
                    busy.join(", ")
                ));
                return Ok(());
            }
        }
    }
    locked(run, "proxy remove", remove_stages(run), dry_run, None)
}

fn logs(run: &Run, args: &ProxyLogsArgs, dry_run: bool) -> Result<(), Error> {
    let timestamps = !args.skip_timestamps;
    if args.follow {
        let host = run.selection.primary_host.clone();
        let command = proxy::follow_logs(timestamps, args.grep.as_deref(), None);
        return follow(run, &host, &command, dry_run);
    }
    let lines = args
        .lines
        .or(if args.since.is_some() || args.grep.is_some() {
            None
        } else {
            Some(100)
        });
    let command = proxy::logs(
        timestamps,
        args.since.as_deref(),
        lines,
        args.grep.as_deref(),
        None,
    );
    let hosts = on_proxy_hosts(run, |_| vec![Query::Show(command.clone())]);
    groups::show(run, "Proxy", "proxy logs", hosts, dry_run)
}

fn follow(run: &Run, host: &str, command: &Command, dry_run: bool) -> Result<(), Error> {
    let message = format!("Following logs on {host}...");
    if dry_run {
        run.printer
            .data(&format!("{message}\n  {}", for_log(command)));
        return Ok(());
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let argv = hosts::interactive_ssh_argv(
        &run.config,
        &run.global.ssh,
        &pool,
        host,
        &for_exec(command),
    );
    run.printer.info(&message);
    run.printer.info(&for_log(command));
    exec_process(&argv)
}

fn boot_config(run: &Run, args: &BootConfigArgs, dry_run: bool) -> Result<(), Error> {
    match args.action {
        BootConfigAction::Get => {
            let hosts = on_proxy_hosts(run, |_| vec![Query::Show(proxy::boot_config())]);
            groups::show_formatted(
                run,
                "proxy boot_config get",
                hosts,
                dry_run,
                &|host, output| format!("Host {host}: {output}"),
            )
        }
        BootConfigAction::Reset => {
            let hosts = run
                .selection
                .proxy_hosts(&run.config)
                .into_iter()
                .map(|host| {
                    let steps = proxy::BootFile::ALL
                        .iter()
                        .map(|file| step("reset", Action::Try(file.reset())))
                        .collect();
                    (host, steps)
                })
                .collect();
            let stages = vec![groups::stage(
                "Reset the proxy boot config",
                Phase::Proxy,
                hosts,
            )];
            locked(run, "proxy boot_config reset", stages, dry_run, None)
        }
        BootConfigAction::Set => {
            let set = BootConfigSet {
                publish: !args.no_publish,
                publish_host_ips: args.publish_host_ip.clone(),
                http_port: args.http_port,
                https_port: args.https_port,
                log_max_size: args.log_max_size.clone(),
                registry: args.registry.clone(),
                repository: args.repository.clone(),
                image_version: args.image_version.clone(),
                metrics_port: args.metrics_port,
                debug: args.debug,
                docker_options: args.docker_options.clone(),
            };
            let files =
                proxy::boot_config_files(&set).map_err(|message| Error::Usage { message })?;
            let hosts = run
                .selection
                .proxy_hosts(&run.config)
                .into_iter()
                .map(|host| {
                    let mut steps = vec![step(
                        "proxy directory",
                        Action::Run(proxy::ensure_proxy_directory()),
                    )];
                    for (file, contents) in &files {
                        steps.push(match contents {
                            Some(contents) => step(
                                format!("write {}", file.path()),
                                Action::Upload {
                                    path: file.path(),
                                    mode: 0o644,
                                    contents: Secret::new(contents.clone()),
                                },
                            ),
                            None => step("reset", Action::Try(file.reset())),
                        });
                    }
                    (host, steps)
                })
                .collect();
            if dry_run {
                for (file, contents) in &files {
                    if let Some(contents) = contents {
                        run.printer.data(&format!("{}: {contents}", file.path()));
                    }
                }
            }
            let stages = vec![groups::stage(
                "Write the proxy boot config",
                Phase::Proxy,
                hosts,
            )];
            locked(run, "proxy boot_config set", stages, dry_run, None)
        }
    }
}
