//! Typed errors of the remote layer. Messages name the host, port, user and the redacted
//! command; they never contain private keys, key data or secret values.

use std::fmt;
use std::time::Duration;

use crate::host_key::HostKeyError;
use crate::transport::ExitStatus;

/// Opening an SSH connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error("cannot resolve host {host}: {reason}")]
    Resolve {
        /// Host name.
        host: String,
        /// Resolver error.
        reason: String,
    },
    /// Nothing listens on the port.
    #[error("connection to {host}:{port} refused")]
    Refused {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
    },
    /// Connecting, the handshake or authentication took longer than the connect timeout.
    #[error("connection to {host}:{port} timed out after {}s", timeout.as_secs_f32())]
    Timeout {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// The limit.
        timeout: Duration,
    },
    /// Another socket error.
    #[error("cannot connect to {host}:{port}: {reason}")]
    Io {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// The error.
        reason: String,
    },
    /// The server's host key was not accepted.
    #[error(transparent)]
    HostKey(Box<HostKeyError>),
    /// The SSH handshake failed (protocol error, no common algorithm, connection closed).
    #[error("ssh handshake with {host}:{port} failed: {reason}")]
    Handshake {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// What russh reported.
        reason: String,
    },
    /// Every authentication method was refused.
    #[error("authentication as {user} on {host}:{port} failed; tried: {}", tried_list(.tried))]
    Auth {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// The SSH user.
        user: String,
        /// What was tried, e.g. `key file /home/u/.ssh/id_ed25519 (ssh-ed25519 SHA256:…)`.
        tried: Vec<String>,
    },
    /// The jump host could not be reached, or refused to forward.
    #[error("cannot reach {host}:{port} through jump host {via}")]
    Jump {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
        /// The jump host, `user@host:port`.
        via: String,
        /// Why.
        #[source]
        source: Box<ConnectError>,
    },
    /// The jump host refused the forwarding channel.
    #[error("jump host {via} refused to forward to {host}:{port}: {reason}")]
    JumpForward {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
        /// The jump host, `user@host:port`.
        via: String,
        /// Why.
        reason: String,
    },
    /// The proxy command could not be started or exited early.
    #[error("proxy command for {host}:{port} failed: {reason}")]
    ProxyCommand {
        /// Target host.
        host: String,
        /// Target port.
        port: u16,
        /// Why, with the command's stderr when it wrote any.
        reason: String,
    },
    /// The run was cancelled before the connection was made.
    #[error("connection to {host} cancelled")]
    Cancelled {
        /// Host name.
        host: String,
    },
}

impl From<HostKeyError> for ConnectError {
    fn from(error: HostKeyError) -> Self {
        Self::HostKey(Box::new(error))
    }
}

fn tried_list(tried: &[String]) -> String {
    if tried.is_empty() {
        "no key or ssh-agent identity was available".to_owned()
    } else {
        tried.join(", ")
    }
}

/// A remote command exited unsuccessfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{command}` failed on {host} with {status}{}", stderr_suffix(.stderr))]
pub struct CommandFailed {
    /// Host name.
    pub host: String,
    /// The redacted command.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// The last lines of its stderr (secret values scrubbed).
    pub stderr: String,
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {trimmed}")
    }
}

/// Running a command or an upload on a host failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The command ran and failed.
    #[error(transparent)]
    CommandFailed(#[from] CommandFailed),
    /// The SSH channel failed (connection lost, channel refused).
    #[error("ssh channel to {host} failed while running `{command}`: {reason}")]
    Channel {
        /// Host name.
        host: String,
        /// The redacted command.
        command: String,
        /// What russh reported.
        reason: String,
    },
    /// Writing a file on the host failed.
    #[error("upload of {path} to {host} failed: {reason}")]
    Upload {
        /// Host name.
        host: String,
        /// Remote path.
        path: String,
        /// Why (exit status and stderr, or a channel error).
        reason: String,
    },
    /// The host refused (or lost) an SSH remote port forward.
    #[error("port forwarding of 127.0.0.1:{port} on {host} to {local} here failed: {reason}")]
    Forward {
        /// Host name.
        host: String,
        /// The port the host was asked to listen on.
        port: u16,
        /// Where connections go on this machine.
        local: String,
        /// What the server or russh reported.
        reason: String,
    },
    /// The run was cancelled while this host was working.
    #[error("cancelled on {host}")]
    Cancelled {
        /// Host name.
        host: String,
    },
}

/// One host's failure in a fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFailure {
    /// Host name.
    pub host: String,
    /// What went wrong.
    pub error: RemoteError,
}

/// A fan-out failed on one or more hosts; every failing host is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HostsFailed {
    /// Every failure, in the order the hosts were given.
    pub failures: Vec<HostFailure>,
    /// How many hosts the fan-out covered.
    pub total: usize,
}

impl fmt::Display for HostsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.failures.len();
        write!(
            f,
            "failed on {count} of {} host{}:",
            self.total,
            if self.total == 1 { "" } else { "s" }
        )?;
        for failure in &self.failures {
            write!(f, "\n  {}: {}", failure.host, failure.error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_error_lists_methods() {
        let error = ConnectError::Auth {
            host: "web1".into(),
            port: 22,
            user: "deploy".into(),
            tried: vec![
                "key file /k (ssh-ed25519 SHA256:x)".into(),
                "ssh-agent: no identities".into(),
            ],
        };
        assert_eq!(
            error.to_string(),
            "authentication as deploy on web1:22 failed; tried: key file /k (ssh-ed25519 SHA256:x), ssh-agent: no identities"
        );
        let none = ConnectError::Auth {
            host: "web1".into(),
            port: 22,
            user: "root".into(),
            tried: vec![],
        };
        assert!(
            none.to_string()
                .ends_with("no key or ssh-agent identity was available")
        );
    }

    #[test]
    fn command_failed_shows_status_and_stderr() {
        let error = CommandFailed {
            host: "web1".into(),
            command: "docker login -p [REDACTED]".into(),
            status: ExitStatus::Code(1),
            stderr: "denied\n".into(),
        };
        assert_eq!(
            error.to_string(),
            "`docker login -p [REDACTED]` failed on web1 with exit status 1: denied"
        );
    }

    #[test]
    fn hosts_failed_lists_every_host() {
        let failed = HostsFailed {
            total: 3,
            failures: vec![
                HostFailure {
                    host: "a".into(),
                    error: RemoteError::Connect(ConnectError::Refused {
                        host: "a".into(),
                        port: 22,
                    }),
                },
                HostFailure {
                    host: "c".into(),
                    error: RemoteError::Cancelled { host: "c".into() },
                },
            ],
        };
        assert_eq!(
            failed.to_string(),
            "failed on 2 of 3 hosts:\n  a: connection to a:22 refused\n  c: cancelled on c"
        );
    }
}
