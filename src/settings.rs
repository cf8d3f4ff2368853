//! Settings: the only module of the binary that reads the configuration files from disk and the
//! process environment. It turns the global options into the core's `LoadInput`, renders ERB
//! through a host that may run local commands and read files, and decides the app version.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use dhow_core::Secret;
use dhow_core::config::{self, Config, SourceFile};
use dhow_core::docker::app_files::is_error_page;
use dhow_core::erb::ErbHost;
use dhow_core::plan::ErrorPage;

use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::facts;

/// The Kamal version dhow is compatible with, compared against `minimum_version`.
pub const KAMAL_COMPATIBLE_VERSION: &str = "2.11.0";

/// A snapshot of the process environment.
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// The URL of the GitHub Actions run this process belongs to, from `GITHUB_SERVER_URL`,
/// `GITHUB_REPOSITORY` and `GITHUB_RUN_ID` (none outside Actions).
pub fn ci_run_url(env: &BTreeMap<String, String>) -> Option<String> {
    let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
    let server = get("GITHUB_SERVER_URL")?;
    let repository = get("GITHUB_REPOSITORY")?;
    let run = get("GITHUB_RUN_ID")?;
    Some(format!(
        "{}/{repository}/actions/runs/{run}",
        server.trim_end_matches('/')
    ))
}

/// Who the lock names: git's `user.name`, else in GitHub Actions the actor, else "Unknown".
pub fn lock_owner(env: &BTreeMap<String, String>, dir: &Path) -> String {
    let name = facts::locked_by(dir);
    match env.get("GITHUB_ACTOR").filter(|actor| !actor.is_empty()) {
        Some(actor) if name == "Unknown" => actor.clone(),
        _ => name,
    }
}

/// The loaded configuration.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
}

/// Reads a file that may be missing.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The local error pages of `error_pages_path` (relative to `dir`) that Kamal uploads: the
/// files matching `{4??.html,5??.html}`, by name, with their permission bits. Nothing
/// without `error_pages_path`; an error naming the key when the directory holds none, as the
/// proxy would then refuse the deploy's `--error-pages` directory.
pub fn error_pages(config: &Config, dir: &Path) -> Result<Vec<ErrorPage>, Error> {
    use std::os::unix::fs::PermissionsExt as _;

    let Some(path) = &config.error_pages_path else {
        return Ok(Vec::new());
    };
    let directory = dir.join(path);
    let mut pages = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&directory) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_error_page(&name) {
                continue;
            }
            let file = directory.join(&name);
            let read_error = |source| Error::ReadFile {
                path: file.clone(),
                source,
            };
            // Kamal copies through symlinks and skips nothing else that matches the glob.
            let metadata = std::fs::metadata(&file).map_err(read_error)?;
            if !metadata.is_file() {
                continue;
            }
            let contents = std::fs::read(&file).map_err(read_error)?;
            pages.push(ErrorPage {
                source: format!("{}/{name}", path.trim_end_matches('/')),
                name,
                mode: metadata.permissions().mode() & 0o7777,
                contents: Secret::new(contents),
            });
        }
    }
    if pages.is_empty() {
        return Err(Error::Failed {
            message: format!(
                "error_pages_path: {} holds no error pages (4??.html or 5??.html files), so the proxy could not load them",
                directory.display()
            ),
        });
    }
    pages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pages)
}

/// The architecture of this machine in Docker's words (`amd64`, `arm64`).
pub fn local_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Loads `-c` (and the `-d` overlay) with the environment `env`, working in `dir`.
pub fn load_config(
    global: &GlobalArgs,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<Loaded, Error> {
    let base_name = global.config_file.to_string_lossy().into_owned();
    let base_text = read_optional(&dir.join(&global.config_file))?;
    let destination = global.destination.as_deref();
    let overlay = destination.map(|destination| {
        let name = config::destination_file_name(&base_name, destination);
        (destination, name)
    });
    let overlay_text = match &overlay {
        Some((_, name)) => read_optional(&dir.join(name))?,
        None => None,
    };

    // ERB sees absolute paths (`Dir.pwd`, `File.expand_path`), as Ruby does.
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let host = LocalHost {
        env,
        dir: &absolute,
    };
    let renderer = config::ErbTemplates::new(&host);
    let input = config::LoadInput {
        base: SourceFile {
            name: &base_name,
            text: base_text.as_deref(),
        },
        destination: overlay.as_ref().map(|(destination, name)| {
            (
                *destination,
                SourceFile {
                    name,
                    text: overlay_text.as_deref(),
                },
            )
        }),
        env,
        running_version: KAMAL_COMPATIBLE_VERSION,
        local_arch: Some(local_arch()),
        renderer: &renderer,
    };
    let config = match global.preview {
        None => config::load(&input).map_err(|errors| Error::Config(Box::new(errors)))?,
        Some(pr) => {
            let (config, _) = config::load_preview(&input, pr)
                .map_err(|errors| Error::Config(Box::new(errors)))?;
            // The guard before anything touches a host: every name carries pr-<N>.
            let unmarked = config::preview::unmarked_names(&config, pr);
            if !unmarked.is_empty() {
                return Err(Error::Failed {
                    message: format!(
                        "preview {pr} would use names without pr-{pr}: {}",
                        unmarked.join(", ")
                    ),
                });
            }
            config
        }
    };
    // Kamal refuses Traefik-era hook files (pre-/post-traefik-reboot) in the hooks directory.
    let hook_names: Vec<String> = std::fs::read_dir(dir.join(&config.hooks_path))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Err(error) = config.check_hook_files(&hook_names) {
        return Err(Error::Config(Box::new(config::ConfigErrors {
            errors: vec![*error],
            sources: Vec::new(),
        })));
    }
    Ok(Loaded { config })
}

/// The app version: `--version`, else `VERSION`, else the git SHA (with Kamal's
/// `_uncommitted_<hex>` suffix when the build uses the working tree and it has changes).
pub fn version(
    global: &GlobalArgs,
    env: &BTreeMap<String, String>,
    config: &Config,
    dir: &Path,
) -> Result<String, Error> {
    if let Some(version) = global.app_version.as_deref().filter(|v| !v.is_empty()) {
        return Ok(version.to_owned());
    }
    if let Some(version) = env.get("VERSION").filter(|v| !v.is_empty()) {
        return Ok(version.clone());
    }
    if !facts::git_used(dir) {
        return Err(Error::NoVersion {
            dir: dir.to_path_buf(),
        });
    }
    let revision = facts::git_revision(dir).ok_or_else(|| Error::NoVersion {
        dir: dir.to_path_buf(),
    })?;
    if config.builder.context.is_some() && facts::git_uncommitted_changes(dir) {
        return Ok(format!("{revision}_uncommitted_{}", facts::random_hex(8)));
    }
    Ok(revision)
}

/// Renders a local ERB file (an accessory's `files` entry ending in `erb`) with `env` as `ENV`,
/// working in the current directory.
pub fn render_erb_file(path: &Path, env: &BTreeMap<String, String>) -> Result<String, Error> {
    let source = read_optional(path)?.ok_or_else(|| Error::Failed {
        message: format!("Missing file: {}", path.display()),
    })?;
    let dir = std::path::absolute(Path::new(".")).unwrap_or_else(|_| Path::new(".").to_path_buf());
    let host = LocalHost { env, dir: &dir };
    dhow_core::erb::render(&source, &path.to_string_lossy(), &host)
        .map(|rendered| rendered.text)
        .map_err(|error| Error::Failed {
            message: error.to_string(),
        })
}

/// The real machine as ERB sees it: `sh -c` for commands (with the environment snapshot), files
/// relative to the working directory.
struct LocalHost<'a> {
    env: &'a BTreeMap<String, String>,
    dir: &'a Path,
}

impl ErbHost for LocalHost<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn run(&self, command: &str) -> Result<String, String> {
        self.run_with_env(command, &BTreeMap::new())
    }

    fn run_with_env(
        &self,
        command: &str,
        env_changes: &BTreeMap<String, Option<String>>,
    ) -> Result<String, String> {
        // The child sees the environment as the template left it (`ENV["X"] = ...`).
        let mut env = self.env.clone();
        for (name, value) in env_changes {
            match value {
                Some(value) => {
                    env.insert(name.clone(), value.clone());
                }
                None => {
                    env.remove(name);
                }
            }
        }
        let output = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(self.dir)
            .env_clear()
            .envs(&env)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|error| format!("could not run `{command}`: {error}"))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        let full = self.dir.join(path);
        if full.is_dir() {
            return Ok(None);
        }
        read_optional(&full).map_err(|error| error.render())
    }

    fn current_dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

/// The GitHub side of a run (`--output github` or `GITHUB_ACTIONS=true`): the Actions context
/// from the environment and the event payload file (`GITHUB_EVENT_PATH`), the token and the
/// action's options.
pub fn actions(
    env: &BTreeMap<String, String>,
    destination: Option<&str>,
) -> Result<crate::actions::Actions, Error> {
    let payload = match dhow_github::context::event_path(env) {
        Some(path) => read_optional(&path)?,
        None => None,
    };
    crate::actions::Actions::from_env(env, payload.as_deref(), destination)
        .map_err(|message| Error::Usage { message })
}

/// The GitHub side of a run of `global`: a preview (`--preview N`) reports to the transient
/// environment `pr-<N>` unless `DHOW_ENVIRONMENT` names another.
pub fn actions_for(
    env: &BTreeMap<String, String>,
    global: &GlobalArgs,
) -> Result<crate::actions::Actions, Error> {
    let mut actions = actions(env, global.destination.as_deref())?;
    if let Some(pr) = global.preview {
        if env
            .get("DHOW_ENVIRONMENT")
            .is_none_or(|v| v.trim().is_empty())
        {
            actions.options.environment = preview_environment(pr);
        }
        actions.options.transient = true;
    }
    Ok(actions)
}

/// The GitHub environment of preview `pr`.
pub fn preview_environment(pr: u64) -> String {
    format!("pr-{pr}")
}

/// True when the process runs inside GitHub Actions (`GITHUB_ACTIONS=true`).
pub fn in_actions(env: &BTreeMap<String, String>) -> bool {
    dhow_github::context::in_actions(env)
}
