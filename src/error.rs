//! The top-level error: every failure the binary can report, its documented exit code, and its
//! rendering as `error:` / `caused by:` / `hint:` lines.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Exit codes, documented in the README. Keep the table there in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// A command ran and failed (a remote command, a deploy step).
    Failure = 1,
    /// The command line could not be parsed.
    Usage = 2,
    /// The configuration is missing or invalid.
    Config = 3,
    /// A secret could not be resolved.
    Secrets = 4,
    /// A host could not be reached over SSH (refused, timed out, authentication failed).
    Ssh = 5,
    /// A host's key is unknown, changed or revoked.
    HostKey = 6,
    /// The deploy lock is held by someone else.
    Locked = 7,
    /// SIGINT or SIGTERM stopped the run (after releasing the lock and writing an audit line);
    /// 128 + SIGINT, as a shell reports an interrupted command.
    Interrupted = 130,
}

impl ExitCode {
    /// The code of a host's failure: host-key problems and connection problems have their own.
    pub fn of_remote(error: &dhow_remote::RemoteError) -> Self {
        match error {
            dhow_remote::RemoteError::Connect(connect) => Self::of_connect(connect),
            _ => Self::Failure,
        }
    }

    fn of_connect(error: &dhow_remote::ConnectError) -> Self {
        match error {
            dhow_remote::ConnectError::HostKey(_) => Self::HostKey,
            dhow_remote::ConnectError::Jump { source, .. } => Self::of_connect(source),
            dhow_remote::ConnectError::Cancelled { .. } => Self::Interrupted,
            _ => Self::Ssh,
        }
    }

    /// The most specific code of several failures: an interruption beats a host key, which
    /// beats a connection, which beats a command failure.
    pub fn most_specific(codes: impl IntoIterator<Item = Self>) -> Self {
        codes
            .into_iter()
            .max_by_key(|code| match code {
                Self::Interrupted => 4,
                Self::HostKey => 3,
                Self::Ssh => 2,
                _ => 1,
            })
            .unwrap_or(Self::Failure)
    }
}

/// Everything the binary reports as a failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Usage { message: String },

    #[error("could not read {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Secrets(#[from] dhow_core::secrets::SecretsError),

    /// Every problem found in the configuration; rendered with positions and snippets.
    #[error("{}", .0.render())]
    Config(Box<dhow_core::config::ConfigErrors>),

    #[error("Can't use commit hash as version, no git repository found in {}", dir.display())]
    NoVersion { dir: PathBuf },

    #[error("could not write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Selection(#[from] dhow_core::selection::SelectionError),

    #[error("invalid ssh settings: {0}")]
    SshSettings(#[from] dhow_remote::SshSettingsError),

    #[error(transparent)]
    FingerprintPins(#[from] dhow_remote::host_key::PinParseError),

    #[error(transparent)]
    KnownHosts(#[from] dhow_remote::known_hosts::KnownHostsReadError),

    /// One or more hosts failed; every failing host is listed.
    #[error(transparent)]
    Hosts(#[from] dhow_remote::HostsFailed),

    #[error("Deploy lock found. Run 'dhow lock help' for more information")]
    LockHeld,

    /// SIGINT or SIGTERM stopped the run; the message says what was cleaned up.
    #[error("{message}")]
    Interrupted { message: String },

    #[error("Hook `{hook}` failed:\n{output}")]
    Hook { hook: String, output: String },

    /// `dhow check` found problems; the table above lists them.
    #[error("check failed on {} of {total} host(s): {}", hosts.len(), hosts.join(", "))]
    CheckFailed {
        hosts: Vec<String>,
        total: usize,
        code: ExitCode,
    },

    /// A GitHub API call failed.
    #[error("GitHub: could not {action}")]
    GitHub {
        action: String,
        #[source]
        source: Box<dhow_github::client::ApiError>,
    },

    /// A failure described by its message (e.g. hosts without Docker).
    #[error("{message}")]
    Failed { message: String },
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } | Error::Selection(_) | Error::FingerprintPins(_) => {
                ExitCode::Usage
            }
            Error::Config(_) | Error::NoVersion { .. } | Error::SshSettings(_) => ExitCode::Config,
            Error::Secrets(_) => ExitCode::Secrets,
            Error::ReadFile { .. }
            | Error::WriteFile { .. }
            | Error::KnownHosts(_)
            | Error::Hook { .. }
            | Error::GitHub { .. }
            | Error::Failed { .. } => ExitCode::Failure,
            Error::Hosts(failed) => ExitCode::most_specific(
                failed
                    .failures
                    .iter()
                    .map(|failure| ExitCode::of_remote(&failure.error)),
            ),
            Error::LockHeld => ExitCode::Locked,
            Error::Interrupted { .. } => ExitCode::Interrupted,
            Error::CheckFailed { code, .. } => *code,
        }
    }

    /// A suggestion for what to do next, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoVersion { .. } => Some(
                "set VERSION, pass --version VERSION, or run inside a git repository".to_owned(),
            ),
            Error::ReadFile { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("run `dhow init` to create a configuration, or pass -c PATH".to_owned())
            }
            Error::Secrets(error) => error.hint(),
            Error::Hosts(_) | Error::CheckFailed { .. } => match self.exit_code() {
                ExitCode::HostKey => Some(
                    "add the line shown to a known_hosts file (--known-hosts PATH), pin the \
                     fingerprint (--ssh-fingerprint or DHOW_SSH_FINGERPRINTS), or opt in to \
                     trust-on-first-use with --trust-new-host-keys FILE"
                        .to_owned(),
                ),
                ExitCode::Ssh => Some(
                    "check that the host is up and ssh.user, ssh.port and ssh.keys are right; in \
                     CI pass the private key in DHOW_SSH_PRIVATE_KEY"
                        .to_owned(),
                ),
                _ => None,
            },
            Error::LockHeld => Some(
                "wait for the other run to finish; if it crashed, release the lock on the \
                 primary host (`rm -r .kamal/lock-*`, or `kamal lock release`)"
                    .to_owned(),
            ),
            Error::Interrupted { .. } => Some(
                "the containers that were serving still serve; run the command again to finish"
                    .to_owned(),
            ),
            Error::GitHub { source, .. } => match source.status() {
                Some(401) => Some("the token was refused: check GITHUB_TOKEN".to_owned()),
                Some(403 | 404) => Some(
                    "the token may lack a permission: the job needs `deployments: read` (and \
                     `contents: write` to publish badges)"
                        .to_owned(),
                ),
                _ => None,
            },
            Error::Selection(_)
            | Error::SshSettings(_)
            | Error::FingerprintPins(_)
            | Error::KnownHosts(_)
            | Error::Hook { .. }
            | Error::Failed { .. }
            | Error::Usage { .. }
            | Error::WriteFile { .. }
            | Error::Config(_)
            | Error::ReadFile { .. } => None,
        }
    }

    /// `error: …`, then one `caused by: …` per source in the chain, then `hint: …`.
    pub fn render(&self) -> String {
        match self {
            // Configuration errors carry their own `error:` lines, snippets and hints.
            Error::Config(errors) => errors.render(),
            _ => render_chain(self, self.hint().as_deref()),
        }
    }
}

/// Renders any error chain in dhow's format.
pub fn render_chain(error: &dyn std::error::Error, hint: Option<&str>) -> String {
    let mut out = format!("error: {error}\n");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(out, "  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = hint {
        let _ = writeln!(out, "  hint: {hint}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chain_and_hint() {
        let error = Error::ReadFile {
            path: PathBuf::from("config/deploy.yml"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"),
        };
        assert_eq!(
            error.render(),
            "error: could not read config/deploy.yml\n  caused by: No such file or directory\n  \
             hint: run `dhow init` to create a configuration, or pass -c PATH\n"
        );
        assert_eq!(error.exit_code() as i32, 1);
    }

    #[test]
    fn an_interruption_exits_130_even_beside_other_host_failures() {
        let interrupted = Error::Interrupted {
            message: "interrupted; the deploy lock was released".to_owned(),
        };
        assert_eq!(interrupted.exit_code() as i32, 130);
        assert_eq!(
            ExitCode::most_specific([ExitCode::Ssh, ExitCode::Interrupted, ExitCode::HostKey]),
            ExitCode::Interrupted
        );
        assert_eq!(
            ExitCode::most_specific([ExitCode::Failure, ExitCode::HostKey, ExitCode::Ssh]),
            ExitCode::HostKey
        );
    }
}
