//! Hooks: runs `<hooks_path>/<hook>` on this machine, as Kamal does, when the file exists and
//! `-H` was not given, with Kamal's `KAMAL_*` environment (the audit tags plus hosts, roles,
//! lock, command and subcommand) and, for `pre-connect`, `pre-deploy` and `post-deploy`, every
//! secret. A failing hook stops the command with "Hook `X` failed:" and its output.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dhow_core::config::Config;
use dhow_core::docker::audit::Tags;
use dhow_core::secrets::Secrets;

use crate::error::Error;
use crate::printer::{Printer, Verbosity};

/// Hooks that receive every secret in their environment.
const WITH_SECRETS: [&str; 3] = ["pre-connect", "pre-deploy", "post-deploy"];

/// What every hook of a run shares.
#[derive(Debug)]
pub struct Hooks<'a> {
    pub config: &'a Config,
    pub tags: Tags,
    /// The targeted hosts (`KAMAL_HOSTS`).
    pub hosts: Vec<String>,
    /// The roles given with `-r`, if any (`KAMAL_ROLES`).
    pub roles: Option<Vec<String>>,
    /// `KAMAL_COMMAND`, e.g. `server`.
    pub command: String,
    /// `KAMAL_SUBCOMMAND`, e.g. `exec`.
    pub subcommand: Option<String>,
    /// `-H`.
    pub skip: bool,
    pub secrets: Option<&'a Secrets>,
    pub printer: Printer,
}

impl Hooks<'_> {
    /// The hook's file.
    pub fn path(&self, hook: &str) -> PathBuf {
        PathBuf::from(&self.config.hooks_path).join(hook)
    }

    /// The `KAMAL_*` variables (and secrets, for the hooks that get them).
    pub fn env(&self, hook: &str, lock: bool, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let hosts = self.hosts.join(",");
        let roles = self.roles.as_ref().map(|roles| roles.join(","));
        let lock = lock.to_string();
        let mut details: Vec<(&str, &str)> = vec![("hosts", &hosts)];
        if let Some(roles) = &roles {
            details.push(("roles", roles));
        }
        details.push(("lock", &lock));
        details.push(("command", &self.command));
        if let Some(subcommand) = &self.subcommand {
            details.push(("subcommand", subcommand));
        }
        details.extend_from_slice(extra);
        let mut env = self.tags.with(&details).env();
        if WITH_SECRETS.contains(&hook)
            && let Some(secrets) = self.secrets
        {
            for (key, value) in secrets.iter() {
                env.push((key.to_owned(), value.expose().clone()));
            }
        }
        env
    }

    /// Runs `hook` if it exists (and hooks are not skipped).
    pub fn run(&self, hook: &str, lock: bool, extra: &[(&str, &str)]) -> Result<(), Error> {
        let path = self.path(hook);
        if self.skip || !path.exists() {
            return Ok(());
        }
        let show_output = match (self.printer.verbosity(), self.config.hooks_output_for(hook)) {
            (Verbosity::Verbose, _) | (Verbosity::Normal, Some("verbose")) => true,
            (Verbosity::Normal, Some("quiet")) | (Verbosity::Quiet, _) => false,
            (Verbosity::Normal, _) => {
                self.printer.info(&format!("Running {}", path.display()));
                false
            }
        };
        if show_output {
            self.printer.info(&format!("Running {}", path.display()));
        }
        let output = Command::new(&path)
            .envs(self.env(hook, lock, extra))
            .stdin(Stdio::null())
            .output()
            .map_err(|error| Error::Hook {
                hook: hook.to_owned(),
                output: format!("could not run {}: {error}", path.display()),
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            if show_output {
                for text in [&stdout, &stderr] {
                    if !text.trim().is_empty() {
                        self.printer.info(text.trim_end());
                    }
                }
            }
            return Ok(());
        }
        let status = output.status.code().map_or_else(
            || "a signal".to_owned(),
            |code| format!("exit status: {code}"),
        );
        let mut message = format!("{} {status}", path.display());
        if !stdout.trim().is_empty() {
            let _ = write!(message, "\n{hook} stdout: {}", stdout.trim_end());
        }
        if !stderr.trim().is_empty() {
            let _ = write!(message, "\n{hook} stderr: {}", stderr.trim_end());
        }
        Err(Error::Hook {
            hook: hook.to_owned(),
            output: message,
        })
    }
}
