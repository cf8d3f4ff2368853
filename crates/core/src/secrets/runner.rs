//! The one effect secrets need: running a local program. The core describes each run as an
//! [`Invocation`] (program, arguments, extra environment, what to do with stdin and stderr) and
//! gets an [`Output`] back from whatever [`Runner`] the caller injects: the binary's real process
//! runner, or a scripted fake in tests.

use std::fmt;

use crate::Secret;

/// What the child's stdin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// The caller's stdin (and its terminal), so that sign-in prompts work. Kamal runs every
    /// vault CLI this way.
    Inherit,
    /// Nothing to read.
    Null,
    /// These bytes, then end of file.
    Data(Secret<String>),
}

/// What happens to the child's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// Shown to the user, as Kamal does for every vault CLI call.
    Inherit,
    /// Thrown away, where Kamal writes `2> /dev/null`.
    Discard,
    /// Collected into [`Output::stderr`].
    Capture,
}

/// One run of a local program. Arguments are passed as they are (no shell), except for
/// `$(...)` commands in secrets files, which run as `sh -c COMMAND` like Ruby's backticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    /// Variables added to the child's environment (e.g. `BW_SESSION`).
    pub env: Vec<(String, Secret<String>)>,
    pub stdin: Stdin,
    pub stderr: Stderr,
}

impl Invocation {
    /// A program run with the caller's stdin and stderr, stdout captured.
    pub fn new<I, S>(program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            stdin: Stdin::Inherit,
            stderr: Stderr::Inherit,
        }
    }

    /// `sh -c COMMAND`, as Ruby's backticks run a command line.
    pub fn shell(command: impl Into<String>) -> Self {
        Self::new("sh", ["-c".to_owned(), command.into()])
    }

    #[must_use]
    pub fn stderr(mut self, stderr: Stderr) -> Self {
        self.stderr = stderr;
        self
    }

    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: Secret<String>) -> Self {
        self.env.push((name.into(), value));
        self
    }

    /// The program and arguments joined with spaces (for fakes and messages; arguments may hold
    /// vault item names but never secret values).
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished run left behind.
#[derive(Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended the program.
    pub code: Option<i32>,
    /// Everything the program printed on stdout. Vault CLIs print secrets here.
    pub stdout: Secret<String>,
    /// Captured stderr (empty unless [`Stderr::Capture`] was asked for).
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A successful run that printed `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Self {
            code: Some(0),
            stdout: Secret::new(stdout.into()),
            stderr: String::new(),
        }
    }

    /// A run that exited with `code` after printing `stdout`.
    pub fn failed(code: i32, stdout: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            stdout: Secret::new(stdout.into()),
            stderr: String::new(),
        }
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("code", &self.code)
            .field("stdout", &self.stdout)
            .field("stderr_bytes", &self.stderr.len())
            .finish()
    }
}

/// Why a program could not be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("{program}: command not found")]
    NotFound { program: String },
    #[error("could not run {program}: {message}")]
    Failed { program: String, message: String },
}

/// Runs local programs for the secrets code. Implementations must not log stdout.
pub trait Runner {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError>;
}

impl<R: Runner + ?Sized> Runner for &R {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        (**self).run(invocation)
    }
}
