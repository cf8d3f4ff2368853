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
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. } => ExitCode::Usage,
            Error::Config(_) | Error::NoVersion { .. } => ExitCode::Config,
            Error::ReadFile { .. } | Error::WriteFile { .. } => ExitCode::Failure,
            Error::Secrets(_) => ExitCode::Secrets,
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
            Error::Usage { .. }
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
}
