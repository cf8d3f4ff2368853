//! `dhow registry setup|remove|login|logout`: logs in to (out of) the configured registry on
//! this machine and on every selected host, as Kamal's registry group. The password reaches
//! `docker login` on standard input (`--password-stdin`), never on a command line. A local
//! registry (`localhost:PORT`) needs no login: `setup` starts its container on this machine and
//! `remove` removes it (Kamal's exact commands), and `login`/`logout` are refused, as in Kamal.

use std::io::Write as _;
use std::process::Stdio;

use dhow_core::cmd::{Command, for_exec, for_log};
use dhow_core::docker::registry;

use super::groups::{self, HostQueries, Query};
use super::server::Run;
use crate::cli::{GlobalArgs, RegistryArgs, RegistryCommand};
use crate::error::Error;
use crate::printer::Printer;

pub fn run(command: &RegistryCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (args, subcommand) = match command {
        RegistryCommand::Setup(args) => (args, "setup"),
        RegistryCommand::Remove(args) => (args, "remove"),
        RegistryCommand::Login(args) => (args, "login"),
        RegistryCommand::Logout(args) => (args, "logout"),
    };
    let login = matches!(subcommand, "setup" | "login");
    let run = Run::prepare(global, printer, "registry", Some(subcommand), login)?;
    if let Some(port) = run.config.registry.local_port() {
        return match subcommand {
            "setup" => local_setup(port, args, printer),
            "remove" => {
                local_remove(args, printer);
                Ok(())
            }
            _ => Err(Error::Failed {
                message: format!(
                    "Cannot use {subcommand} command with a local registry. Use `dhow registry {}` instead.",
                    if login { "setup" } else { "remove" }
                ),
            }),
        };
    }
    login_or_logout(&run, args, subcommand, login)
}

/// Kamal's `registry setup` for a local registry: docker must be installed here (Kamal also
/// wants the buildx plugin; dhow builds without it, so only `docker --version` is checked), then
/// `docker start kamal-docker-registry || docker run --detach -p 127.0.0.1:PORT:5000 ...`.
fn local_setup(port: u16, args: &RegistryArgs, printer: Printer) -> Result<(), Error> {
    if args.skip_local {
        return Ok(());
    }
    let command = registry::setup_local(port);
    if args.dry_run {
        printer.data(&format!(
            "setup (this machine)\n  {}\n  {}",
            for_log(&docker_version()),
            for_log(&command)
        ));
        return Ok(());
    }
    run_locally(&docker_version()).map_err(|error| Error::Failed {
        message: format!(
            "Docker is not installed locally: {}",
            match error {
                Error::Failed { message } => message,
                other => other.to_string(),
            }
        ),
    })?;
    run_locally(&command)?;
    printer.info(&format!(
        "Local registry kamal-docker-registry is running on 127.0.0.1:{port}"
    ));
    Ok(())
}

/// Kamal's `registry remove` for a local registry: `docker stop kamal-docker-registry && docker
/// rm kamal-docker-registry`, its failure ignored (there may be nothing to remove).
fn local_remove(args: &RegistryArgs, printer: Printer) {
    if args.skip_local {
        return;
    }
    let command = registry::remove_local();
    if args.dry_run {
        printer.data(&format!("remove (this machine)\n  {}", for_log(&command)));
        return;
    }
    match run_locally(&command) {
        Ok(()) => printer.info("Removed the local registry kamal-docker-registry"),
        Err(error) => printer.info(&format!("No local registry removed: {error}")),
    }
}

fn docker_version() -> Command {
    Command::from_words(["docker", "--version"])
}

fn login_or_logout(
    run: &Run,
    args: &RegistryArgs,
    subcommand: &str,
    login: bool,
) -> Result<(), Error> {
    let printer = run.printer;
    let server = run.config.registry.server.clone();
    let command = if login {
        groups::registry_login(run)?.ok_or_else(|| Error::Failed {
            message: "the registry has no username and password to log in with".to_owned(),
        })?
    } else {
        registry::logout(server.as_deref())
    };
    let where_ = server.as_deref().unwrap_or("Docker Hub");
    if !args.skip_local {
        if args.dry_run {
            printer.data(&format!(
                "{subcommand} (this machine)\n  {}",
                for_log(&command)
            ));
        } else {
            run_locally(&command)?;
            printer.info(&format!(
                "{} {where_} on this machine",
                if login {
                    "Logged in to"
                } else {
                    "Logged out of"
                }
            ));
        }
    }
    if args.skip_remote {
        return Ok(());
    }
    let hosts: Vec<HostQueries> = run
        .selection
        .hosts
        .iter()
        .map(|host| HostQueries {
            host: host.clone(),
            queries: vec![Query::Run(command.clone())],
        })
        .collect();
    let count = hosts.len();
    groups::show(
        run,
        "App",
        &format!("{subcommand} (hosts)"),
        hosts,
        args.dry_run,
    )?;
    if !args.dry_run {
        printer.info(&format!(
            "{} {where_} on {count} host{}",
            if login {
                "Logged in to"
            } else {
                "Logged out of"
            },
            if count == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

/// Runs `command` with the local shell, its standard input (the password) piped in.
fn run_locally(command: &Command) -> Result<(), Error> {
    let text = for_exec(command);
    let shown = for_log(command);
    let failed = |reason: String| Error::Failed {
        message: format!("`{shown}` failed on this machine: {reason}"),
    };
    let mut child = std::process::Command::new("sh")
        .args(["-c", &text])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(error.to_string()))?;
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), command.stdin()) {
        stdin
            .write_all(data.expose().as_bytes())
            .map_err(|error| failed(error.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failed(error.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if let Some(data) = command.stdin() {
            let secret = data.expose().trim();
            if !secret.is_empty() {
                stderr = stderr.replace(secret, "[REDACTED]");
            }
        }
        Err(failed(format!("{}: {stderr}", output.status)))
    }
}
