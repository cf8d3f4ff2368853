//! `dhow secrets fetch|extract|print`, and reading the secrets files for every command that
//! needs secrets (`load`). The work is in `dhow_core::secrets`; this module reads files, runs
//! processes through `LocalRunner` and hands text to the printer.

use std::path::{Path, PathBuf};

use dhow_core::secrets::{self, FetchRequest, Secrets, SecretsFile};

use crate::cli::{GlobalArgs, SecretsCommand};
use crate::error::Error;
use crate::local::{LocalRunner, process_env};
use crate::printer::Printer;
use crate::settings;

pub fn run(command: SecretsCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    match command {
        SecretsCommand::Fetch {
            adapter,
            account,
            from,
            inline,
            secrets,
        } => {
            let request = FetchRequest {
                adapter,
                account,
                from,
                names: secrets,
            };
            let fetched = secrets::fetch(&request, &process_env(), &LocalRunner)?;
            printer.data(secrets::fetch_output(&fetched, inline).expose());
            Ok(())
        }
        SecretsCommand::Extract {
            name,
            secrets,
            inline: _,
        } => {
            printer.data(secrets::extract(&name, &secrets)?.expose());
            Ok(())
        }
        SecretsCommand::Print => {
            // Like `kamal secrets print`: the configuration names the files (`secrets_path`).
            let env = process_env();
            let loaded = settings::load_config(global, &env, Path::new("."))?;
            let loaded = load(&loaded.config.secrets_files())?;
            let lines = loaded.print_lines();
            if !lines.expose().is_empty() {
                printer.data(lines.expose());
            }
            Ok(())
        }
    }
}

/// Reads and resolves the secrets files (give `Config::secrets_files()` or
/// `secrets_filenames(path, destination)`): missing files and directories are skipped, as Kamal
/// skips them; `$(...)` commands run locally; `$VAR` falls back to the process environment.
pub fn load(filenames: &[String]) -> Result<Secrets, Error> {
    let mut files = Vec::with_capacity(filenames.len());
    for path in filenames {
        files.push(SecretsFile {
            path: path.clone(),
            contents: read_optional(path)?,
        });
    }
    Ok(Secrets::load(&files, &process_env(), &LocalRunner)?)
}

fn read_optional(path: &str) -> Result<Option<String>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::ReadFile {
                path: PathBuf::from(path),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
            }),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(Error::ReadFile {
            path: PathBuf::from(path),
            source,
        }),
    }
}
