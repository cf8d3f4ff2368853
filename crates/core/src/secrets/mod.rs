//! Secrets as Kamal 2 resolves them, plus dhow's CI mode.
//!
//! * Files: `<secrets_path>-common`, then `<secrets_path>` (or `<secrets_path>.<dest>` with a
//!   destination: the plain file is not read then). Missing files are skipped; later files win.
//! * Syntax: dotenv 3.2.0 with Kamal's command substitution ([`dotenv`]); `$(kamal secrets ...)`
//!   and `$(dhow secrets ...)` run in-process, other `$(...)` through the injected [`Runner`].
//! * Vault adapters ([`adapters`]) wrap each vault's CLI.
//! * **CI mode**: [`Secrets::resolve`] falls back to the process environment for a name no
//!   file defines, and a miss names the place that asked for the secret.
//!
//! Deliberate differences from Kamal (each one turns a silent wrong value into a right value or
//! a clear error):
//! * A `$(...)` command that exits non-zero is an error naming the file, line and command;
//!   Kamal keeps whatever it printed (usually nothing) as the secret.
//! * `$NAME` in a later file finds a name defined in an earlier file (e.g. in
//!   `secrets-common`) when neither the file itself nor the environment defines it; Kamal
//!   substitutes an empty string.
//! * The output of a `$(...)` command is not run through `$NAME` substitution again. Kamal
//!   (dotenv) substitutes it, so a vault password such as `pa$word` arrives as `pa`.
//! * The AWS adapter's read error names the secrets rather than echoing the CLI's output, and a
//!   secret string that is JSON but not an object is kept whole (Kamal crashes on it).
//! * `op signin --raw`'s session token is passed without its trailing newline (Kamal passes it
//!   with the newline escaped as the two characters `\n`).
//! * A missing `--account` is an error (exit code 4); Kamal prints the message and exits 0.
//!
//! This module is pure: file contents, the environment and the process runner are passed in.

pub mod adapters;
pub mod commands;
pub mod dotenv;
pub mod error;
pub mod json;
pub mod runner;
pub mod shell;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;

pub use self::commands::{FetchRequest, extract, fetch, fetch_output};
pub use self::dotenv::Entry;
pub use self::error::{Reference, SecretsError};
pub use self::json::SecretMap;
pub use self::runner::{Invocation, Output, RunError, Runner, Stderr, Stdin};
use crate::Secret;

/// Read access to environment variables (the process environment, passed in as a map).
pub trait EnvLookup {
    fn get_var(&self, name: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> EnvLookup for HashMap<String, String, S> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn get_var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The secrets files Kamal reads, in order: `<path>-common`, then `<path>` or `<path>.<dest>`.
pub fn secrets_filenames(secrets_path: &str, destination: Option<&str>) -> [String; 2] {
    let main = match destination {
        Some(dest) => format!("{secrets_path}.{dest}"),
        None => secrets_path.to_owned(),
    };
    [format!("{secrets_path}-common"), main]
}

/// One secrets file as the caller found it: its path and, if it exists, its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsFile {
    pub path: String,
    pub contents: Option<String>,
}

/// A resolved secret and where it was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Defined {
    key: String,
    value: Secret<String>,
    file: String,
    line: usize,
}

/// The secrets of one run: every `KEY=value` of the secrets files, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<Defined>,
    /// The files that existed and were read.
    files: Vec<String>,
    /// The files that were looked for.
    filenames: Vec<String>,
}

impl Secrets {
    /// Parses the files in order (give the two from [`secrets_filenames`]; a file with
    /// `contents: None` is missing and skipped). `$VAR` falls back to `env`; `$(...)` runs
    /// through `runner` (`sh -c`) or, for `kamal secrets`/`dhow secrets`, in-process.
    pub fn load(
        files: &[SecretsFile],
        env: &dyn EnvLookup,
        runner: &dyn Runner,
    ) -> Result<Self, SecretsError> {
        let mut secrets = Secrets {
            values: Vec::new(),
            files: Vec::new(),
            filenames: files.iter().map(|f| f.path.clone()).collect(),
        };
        let commands = LocalCommands { env, runner };
        for file in files {
            let Some(contents) = &file.contents else {
                continue;
            };
            secrets.files.push(file.path.clone());
            let vars = Fallback {
                env,
                earlier: &secrets.values,
            };
            let entries = dotenv::parse(&file.path, contents, &vars, &commands)?;
            for entry in entries {
                let defined = Defined {
                    key: entry.key,
                    value: entry.value,
                    file: file.path.clone(),
                    line: entry.line,
                };
                match secrets.values.iter_mut().find(|d| d.key == defined.key) {
                    Some(slot) => *slot = defined,
                    None => secrets.values.push(defined),
                }
            }
        }
        Ok(secrets)
    }

    /// Kamal's `secrets[key]`: the value from the files, or Kamal's error.
    pub fn get(&self, key: &str) -> Result<&Secret<String>, SecretsError> {
        self.find(key).ok_or_else(|| self.not_found(key, None))
    }

    /// CI mode: the value from the files, else from `env`; a miss names `reference`.
    pub fn resolve(
        &self,
        key: &str,
        env: &dyn EnvLookup,
        reference: Option<&Reference>,
    ) -> Result<Secret<String>, SecretsError> {
        if let Some(value) = self.find(key) {
            return Ok(value.clone());
        }
        env.get_var(key)
            .map(|value| Secret::new(value.to_owned()))
            .ok_or_else(|| self.not_found(key, reference.cloned()))
    }

    /// CI mode for a whole configuration: resolves every `(name, where it is referenced)` and
    /// reports every miss at once, in the order given.
    pub fn resolve_all<'r>(
        &self,
        wanted: impl IntoIterator<Item = (&'r str, Option<&'r Reference>)>,
        env: &dyn EnvLookup,
    ) -> Result<Vec<(String, Secret<String>)>, Vec<SecretsError>> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (key, reference) in wanted {
            match self.resolve(key, env, reference) {
                Ok(value) => found.push((key.to_owned(), value)),
                Err(error) => missing.push(error),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(missing)
        }
    }

    /// Kamal's `secrets.key?(key)`: defined in a file with a non-blank value.
    pub fn is_present(&self, key: &str) -> bool {
        self.find(key)
            .is_some_and(|v| !adapters::is_blank(v.expose()))
    }

    /// Where `key` was defined: the file and 1-based line.
    pub fn origin(&self, key: &str) -> Option<(&str, usize)> {
        self.values
            .iter()
            .find(|d| d.key == key)
            .map(|d| (d.file.as_str(), d.line))
    }

    /// Every secret, in the order Kamal's merged hash has them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret<String>)> {
        self.values.iter().map(|d| (d.key.as_str(), &d.value))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The secrets files that existed.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// `secrets print`: one `KEY=value` line per secret, in clear text.
    pub fn print_lines(&self) -> Secret<String> {
        let mut out = String::new();
        for (key, value) in self.iter() {
            out.push_str(key);
            out.push('=');
            out.push_str(value.expose());
            out.push('\n');
        }
        Secret::new(out)
    }

    fn find(&self, key: &str) -> Option<&Secret<String>> {
        self.values.iter().find(|d| d.key == key).map(|d| &d.value)
    }

    fn not_found(&self, key: &str, reference: Option<Reference>) -> SecretsError {
        if self.files.is_empty() {
            SecretsError::NoFiles {
                key: key.to_owned(),
                filenames: self.filenames.clone(),
                reference,
            }
        } else {
            SecretsError::NotFound {
                key: key.to_owned(),
                files: self.files.clone(),
                reference,
            }
        }
    }
}

/// `$NAME` after the file's own earlier lines: the environment, then earlier files.
struct Fallback<'a> {
    env: &'a dyn EnvLookup,
    earlier: &'a [Defined],
}

impl dotenv::VariableSource for Fallback<'_> {
    fn environment(&self, name: &str) -> Option<String> {
        self.env.get_var(name).map(str::to_owned)
    }

    fn variable(&self, name: &str) -> Option<String> {
        self.env.get_var(name).map(str::to_owned).or_else(|| {
            self.earlier
                .iter()
                .find(|d| d.key == name)
                .map(|d| d.value.expose().clone())
        })
    }
}

/// Kamal's `/\A\s*kamal\s*secrets\s+/`, for dhow's own name too.
static INLINE_SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A[ \t\r\n\x0B\x0C]*(?:kamal|dhow)[ \t\r\n\x0B\x0C]*secrets[ \t\r\n\x0B\x0C]+")
        .expect("the inline secrets pattern is valid")
});

/// Runs `$(...)`: `kamal secrets` / `dhow secrets` in-process, anything else with `sh -c`.
struct LocalCommands<'a> {
    env: &'a dyn EnvLookup,
    runner: &'a dyn Runner,
}

impl dotenv::CommandSubstitution for LocalCommands<'_> {
    fn substitute(&self, command: &str) -> Result<String, SecretsError> {
        if INLINE_SECRETS.is_match(command) {
            let words = shell::shellsplit(command)?;
            let output = commands::run_inline(&words[1..], self.env, self.runner)?;
            return Ok(dotenv::chomp(&output).to_owned());
        }
        let output = self.runner.run(&Invocation::shell(command))?;
        if !output.success() {
            return Err(SecretsError::CommandFailed {
                file: String::new(),
                line: 0,
                key: String::new(),
                command: command.to_owned(),
                code: output.code,
            });
        }
        Ok(dotenv::chomp(output.stdout.expose()).to_owned())
    }
}
