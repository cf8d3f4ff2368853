//! Every way resolving or fetching a secret can fail, with Kamal's messages where Kamal has one.
//! No variant holds a secret value: messages name keys, files, lines and the command text as
//! written in the secrets file (before `$VAR` expansion, which could pull secrets in).

use std::fmt;

use super::runner::RunError;
use super::shell::UnmatchedQuote;

/// Where a secret is asked for, e.g. `env.secret` in `config/deploy.yml:12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The key path that names the secret, e.g. `env.secret` or `registry.password`.
    pub key_path: String,
    /// The file that holds the reference.
    pub file: String,
    /// Its 1-based line, when known.
    pub line: Option<usize>,
}

impl Reference {
    pub fn new(key_path: impl Into<String>, file: impl Into<String>, line: Option<usize>) -> Self {
        Self {
            key_path: key_path.into(),
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.key_path, self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        Ok(())
    }
}

fn referenced(reference: Option<&Reference>) -> String {
    reference
        .map(|r| format!(" (referenced by {r})"))
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// Kamal: "Secret 'X' not found in .kamal/secrets-common, .kamal/secrets".
    #[error("Secret '{key}' not found in {}{}", files.join(", "), referenced(reference.as_ref()))]
    NotFound {
        key: String,
        files: Vec<String>,
        reference: Option<Reference>,
    },

    /// Kamal: "Secret 'X' not found, no secret files (...) provided".
    #[error(
        "Secret '{key}' not found, no secret files ({}) provided{}",
        filenames.join(", "),
        referenced(reference.as_ref())
    )]
    NoFiles {
        key: String,
        filenames: Vec<String>,
        reference: Option<Reference>,
    },

    /// dotenv's `FormatError` for `export NAME` when NAME was never set.
    #[error("{file}:{line}: Line {text} has an unset variable")]
    UnsetVariable {
        file: String,
        line: usize,
        text: String,
    },

    /// A `$(...)` command in a secrets file failed (Kamal ignores this and keeps the output).
    #[error("{file}:{line}: `{command}` (for {key}) exited with {}", status_text(*code))]
    CommandFailed {
        file: String,
        line: usize,
        key: String,
        command: String,
        code: Option<i32>,
    },

    /// A `$(...)` command in a secrets file could not be run or evaluated.
    #[error("{file}:{line}: could not evaluate `{command}` (for {key})")]
    Command {
        file: String,
        line: usize,
        key: String,
        command: String,
        #[source]
        source: Box<SecretsError>,
    },

    #[error(transparent)]
    Run(#[from] RunError),

    #[error(transparent)]
    Split(#[from] UnmatchedQuote),

    /// `$(kamal secrets print)` inside a secrets file would read the secrets it is defining.
    #[error("`secrets print` cannot be used inside a secrets file")]
    RecursivePrint,

    /// A `$(kamal secrets ...)` line dhow cannot run (unknown subcommand or option).
    #[error("{0}")]
    Usage(String),

    #[error("Unknown secrets adapter: {0}")]
    UnknownAdapter(String),

    #[error("No value provided for required options '--account'")]
    MissingAccount,

    #[error("{0} CLI is not installed")]
    CliNotInstalled(&'static str),

    /// `secrets extract` found no such key.
    #[error("Could not find secret {0}")]
    NotInJson(String),

    /// Output that should have been JSON was not (the message never quotes the output).
    #[error("{what} is not valid JSON: {message}")]
    InvalidJson { what: String, message: String },

    /// An adapter's own failure, with the message Kamal's adapter raises.
    #[error("{0}")]
    Adapter(String),
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("status {code}"),
        None => "a signal".to_owned(),
    }
}

impl SecretsError {
    pub(crate) fn json(what: impl Into<String>, error: &serde_json::Error) -> Self {
        // serde_json's messages name the position, never the text, so no secret can leak here.
        Self::InvalidJson {
            what: what.into(),
            message: error.to_string(),
        }
    }

    /// A suggestion for the user, where there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { key, files, .. } => Some(format!(
                "define {key} in {}, or set {key} in the environment (CI secrets)",
                files.last().map_or(".kamal/secrets", String::as_str)
            )),
            Self::NoFiles { key, filenames, .. } => Some(format!(
                "create {} or set {key} in the environment (CI secrets)",
                filenames.last().map_or(".kamal/secrets", String::as_str)
            )),
            Self::UnknownAdapter(_) => Some(
                "adapters: 1password, bitwarden, bitwarden-sm, aws_secrets_manager, gcp, doppler, \
                 lastpass, enpass, passbolt"
                    .to_owned(),
            ),
            Self::CommandFailed { .. } => Some(
                "the command's output would have become the secret; fix the command or remove it"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}
