//! The `Transport` trait: run a rendered command on one host with its output streamed (and,
//! when asked, its stdin streamed from a reader), and upload bytes to a path with a mode. `RemoteCommand` carries the shell text and its redacted
//! rendering; only the redacted one ever reaches errors and logs.

use std::fmt;
use std::future::Future;

use dhow_core::Secret;

use crate::error::{CommandFailed, RemoteError};

/// How many bytes of stderr a [`CommandFailed`] keeps (the end of the stream).
pub const STDERR_TAIL_BYTES: usize = 4096;

/// A command ready to run: the shell text sent to the host, the redacted text shown in logs
/// and errors, optional stdin and the secret values to scrub from captured stderr.
#[derive(Clone)]
pub struct RemoteCommand {
    exec: Secret<String>,
    display: String,
    stdin: Option<Secret<Vec<u8>>>,
    scrub: Vec<Secret<String>>,
}

impl RemoteCommand {
    /// A command from its rendered shell text and the redacted rendering of the same command.
    pub fn new(exec: impl Into<String>, display: impl Into<String>) -> Self {
        Self {
            exec: Secret::new(exec.into()),
            display: display.into(),
            stdin: None,
            scrub: Vec::new(),
        }
    }

    /// A command with nothing secret in it: shown as it is run.
    pub fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Self::new(text.clone(), text)
    }

    /// Sends `bytes` on the command's stdin (then end-of-file): the way secrets reach a remote
    /// process without appearing in its argv.
    #[must_use]
    pub fn with_stdin(mut self, bytes: Secret<Vec<u8>>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Values replaced by `[REDACTED]` in captured stderr before it goes into an error.
    #[must_use]
    pub fn with_scrubbed(mut self, values: impl IntoIterator<Item = Secret<String>>) -> Self {
        self.scrub.extend(values);
        self
    }

    /// The shell text to run; call only when handing it to the SSH channel.
    pub fn exec_text(&self) -> &str {
        self.exec.expose()
    }

    /// The redacted text for logs and errors.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The bytes for stdin, if any.
    pub fn stdin(&self) -> Option<&[u8]> {
        self.stdin.as_ref().map(|bytes| bytes.expose().as_slice())
    }

    /// Replaces every scrubbed value in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.scrub {
            if !value.expose().is_empty() {
                text = text.replace(value.expose().as_str(), dhow_core::secret::REDACTED);
            }
        }
        text
    }
}

impl From<&dhow_core::cmd::Command> for RemoteCommand {
    /// Renders a core command once for exec and once for logs; its stdin goes along, and the
    /// text of its sensitive tokens and its stdin are scrubbed from captured stderr.
    fn from(command: &dhow_core::cmd::Command) -> Self {
        let mut remote = Self::new(
            dhow_core::cmd::for_exec(command),
            dhow_core::cmd::for_log(command),
        );
        let mut scrub: Vec<Secret<String>> = command
            .as_tokens()
            .iter()
            .filter_map(|token| match token {
                dhow_core::cmd::Token::Sensitive { text, .. } => Some(Secret::new(text.clone())),
                dhow_core::cmd::Token::Plain(_) => None,
            })
            .collect();
        if let Some(stdin) = command.stdin() {
            remote.stdin = Some(Secret::new(stdin.expose().as_bytes().to_vec()));
            let trimmed = stdin.expose().trim();
            if !trimmed.is_empty() {
                scrub.push(Secret::new(trimmed.to_owned()));
            }
        }
        remote.with_scrubbed(scrub)
    }
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCommand")
            .field("display", &self.display)
            .field("stdin", &self.stdin.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// It was killed by this signal (e.g. `TERM`).
    Signal(String),
    /// The channel closed without an exit status.
    Unknown,
}

impl ExitStatus {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        *self == Self::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit status {code}"),
            Self::Signal(signal) => write!(f, "signal {signal}"),
            Self::Unknown => f.write_str("no exit status (channel closed)"),
        }
    }
}

/// Everything a command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Standard output as text (lossy UTF-8).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `Ok(self)` on exit code 0, otherwise the typed failure with the stderr tail.
    pub fn ensure_success(
        self,
        host: &str,
        command: &RemoteCommand,
    ) -> Result<Self, CommandFailed> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(CommandFailed {
                host: host.to_owned(),
                command: command.display().to_owned(),
                status: self.status,
                stderr: command.scrub(&tail(&self.stderr, STDERR_TAIL_BYTES)),
            })
        }
    }
}

/// The last `limit` bytes of `bytes` as text, starting at a line boundary when possible.
pub fn tail(bytes: &[u8], limit: usize) -> String {
    if bytes.len() <= limit {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let start = bytes.len() - limit;
    let window = &bytes[start..];
    let window = match window.iter().position(|&b| b == b'\n') {
        Some(newline) if newline + 1 < window.len() => &window[newline + 1..],
        _ => window,
    };
    format!("…{}", String::from_utf8_lossy(window))
}

/// A callback that receives output chunks as they arrive, in order.
pub type OutputSink<'a> = dyn FnMut(OutputStream, &[u8]) + Send + 'a;

/// A stream of bytes for a command's stdin (e.g. a local `docker save`).
pub type InputStream<'a> = dyn tokio::io::AsyncRead + Send + Unpin + 'a;

/// One host's command runner. Implemented by SSH sessions; tests of higher layers implement
/// it with fakes.
pub trait Transport: Send + Sync {
    /// The host this transport reaches, as configured.
    fn host(&self) -> &str;

    /// Runs `command`, passing each output chunk to `on_output` as it arrives, and returns how
    /// it ended. A non-zero exit is not an error here (see [`Transport::run`]).
    fn exec<'a>(
        &'a self,
        command: &'a RemoteCommand,
        on_output: &'a mut OutputSink<'_>,
    ) -> impl Future<Output = Result<ExitStatus, RemoteError>> + Send + 'a;

    /// Runs `command` with `input` streamed to its stdin (then end-of-file) as it is read,
    /// never held whole in memory by an SSH session; otherwise like [`Transport::exec`] (the
    /// command's own stdin bytes, if any, are not sent). This default reads `input` to its end
    /// first, which suits fakes.
    fn exec_with_input<'a>(
        &'a self,
        command: &'a RemoteCommand,
        input: &'a mut InputStream<'_>,
        on_output: &'a mut OutputSink<'_>,
    ) -> impl Future<Output = Result<ExitStatus, RemoteError>> + Send + 'a {
        async move {
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(input, &mut bytes)
                .await
                .map_err(|error| RemoteError::Channel {
                    host: self.host().to_owned(),
                    command: command.display().to_owned(),
                    reason: format!("reading the input: {error}"),
                })?;
            let command = command.clone().with_stdin(Secret::new(bytes));
            self.exec(&command, on_output).await
        }
    }

    /// Writes `contents` to `path` on the host with permission bits `mode` (e.g. `0o600`).
    /// The file never exists with looser permissions, not even while it is being written, and
    /// it replaces any previous file atomically.
    fn upload<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        mode: u32,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send + 'a;

    /// SSH remote port forwarding: the host listens on `127.0.0.1:<port>` and every connection
    /// made there reaches `local` on this machine, until [`Transport::stop_forward`] (how hosts
    /// pull from a registry on `localhost:<port>` here).
    fn forward_port(
        &self,
        port: u16,
        local: std::net::SocketAddr,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send + '_;

    /// Ends the forward of `port` started by [`Transport::forward_port`].
    fn stop_forward(&self, port: u16) -> impl Future<Output = Result<(), RemoteError>> + Send + '_;

    /// Runs `command` and collects its output, whatever its exit status.
    fn capture<'a>(
        &'a self,
        command: &'a RemoteCommand,
    ) -> impl Future<Output = Result<Output, RemoteError>> + Send + 'a {
        async move {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let status = self
                .exec(command, &mut |stream, chunk| match stream {
                    OutputStream::Stdout => stdout.extend_from_slice(chunk),
                    OutputStream::Stderr => stderr.extend_from_slice(chunk),
                })
                .await?;
            Ok(Output {
                status,
                stdout,
                stderr,
            })
        }
    }

    /// Runs `command` and fails with [`CommandFailed`] unless it exits with 0.
    fn run<'a>(
        &'a self,
        command: &'a RemoteCommand,
    ) -> impl Future<Output = Result<Output, RemoteError>> + Send + 'a {
        async move {
            let output = self.capture(command).await?;
            Ok(output.ensure_success(self.host(), command)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_exec_text_and_stdin() {
        let command = RemoteCommand::new("docker login -p hunter2", "docker login -p [REDACTED]")
            .with_stdin(Secret::new(b"stdin-canary".to_vec()));
        let debug = format!("{command:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("stdin-canary"), "{debug}");
        assert!(debug.contains("docker login -p [REDACTED]"), "{debug}");
        assert_eq!(command.exec_text(), "docker login -p hunter2");
        assert_eq!(command.stdin(), Some(&b"stdin-canary"[..]));
    }

    #[test]
    fn failure_scrubs_secret_values_from_stderr() {
        let command = RemoteCommand::new("x", "x").with_scrubbed([Secret::from("hunter2")]);
        let output = Output {
            status: ExitStatus::Code(3),
            stdout: Vec::new(),
            stderr: b"bad password hunter2\n".to_vec(),
        };
        let error = output.ensure_success("web1", &command).unwrap_err();
        assert_eq!(error.stderr, "bad password [REDACTED]\n");
        assert_eq!(error.status, ExitStatus::Code(3));
    }

    #[test]
    fn core_commands_render_once_for_exec_and_once_for_logs() {
        let command = dhow_core::cmd::Command::new("docker")
            .args(["login", "registry.example.com", "-u"])
            .sensitive("\"ci-user\"", "[REDACTED]")
            .arg("--password-stdin")
            .with_stdin(Secret::from("pw-canary\n"));
        let remote = RemoteCommand::from(&command);
        assert_eq!(
            remote.exec_text(),
            "docker login registry.example.com -u \"ci-user\" --password-stdin"
        );
        assert_eq!(
            remote.display(),
            "docker login registry.example.com -u [REDACTED] --password-stdin"
        );
        assert_eq!(remote.stdin(), Some(&b"pw-canary\n"[..]));
        assert_eq!(
            remote.scrub("denied for \"ci-user\" with pw-canary"),
            "denied for [REDACTED] with [REDACTED]"
        );
    }

    #[test]
    fn tail_keeps_the_end_from_a_line_start() {
        assert_eq!(tail(b"short", 10), "short");
        let text = b"line one\nline two\nline three\n";
        assert_eq!(tail(text, 15), "…line three\n");
    }

    #[test]
    fn exit_status_display() {
        assert_eq!(ExitStatus::Code(2).to_string(), "exit status 2");
        assert_eq!(ExitStatus::Signal("KILL".into()).to_string(), "signal KILL");
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Unknown.success());
    }
}
