//! `dhow registry login|logout`: logs in to (out of) the configured registry on this machine
//! and on every selected host, as Kamal's registry group. The password reaches `docker login`
//! on standard input (`--password-stdin`), never on a command line; a local registry
//! (`localhost:PORT`) needs no login and is refused, as Kamal does.

use std::io::Write as _;
use std::process::Stdio;

use dhow_core::cmd::{Command, for_exec, for_log};
use dhow_core::docker::registry;

use super::groups::{self, HostQueries, Query};
use super::server::Run;
use crate::cli::{GlobalArgs, RegistryCommand};
use crate::error::Error;
use crate::printer::Printer;

pub fn run(command: &RegistryCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (args, login) = match command {
        RegistryCommand::Login(args) => (args, true),
        RegistryCommand::Logout(args) => (args, false),
    };
    let subcommand = if login { "login" } else { "logout" };
    let run = Run::prepare(global, printer, "registry", Some(subcommand), login)?;
    if run.config.registry.is_local() {
        return Err(Error::Failed {
            message: format!(
                "Cannot use {subcommand} command with a local registry: it needs no login"
            ),
        });
    }
    let server = run.config.registry.server.clone();
    let command = if login {
        groups::registry_login(&run)?.ok_or_else(|| Error::Failed {
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
        &run,
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
