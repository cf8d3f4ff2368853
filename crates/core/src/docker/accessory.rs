//! Accessories (Kamal 2.11's `commands/accessory.rb`, `accessory/proxy.rb` and the path rules of
//! `configuration/accessory.rb`): `docker run` of an accessory, start/stop/info/logs/exec, image
//! pull and removal, the uploaded files and created directories with their mounts, the env file,
//! and the kamal-proxy calls of an accessory with `proxy:`.
//!
//! Where Kamal 2.11 leaves something behind dhow does better, and says so on the function:
//! [`Accessory::remove_env_file`] lets `accessory remove` delete the env file that holds the
//! accessory's secrets.

use crate::Secret;
use crate::cmd::{Command, Token, argumentize};
use crate::config::{self, Config};
use crate::docker::app::{PROXY_CONTAINER, container_id_for, deploy_command_args, option_args};
use crate::plan::escape_env_file_value;

use std::collections::BTreeMap;

/// A file of `files`: uploaded to `host_path` (relative to the SSH user's home) and mounted at
/// `container_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    /// The local path as written in the config (read, or rendered when it ends in `erb`).
    pub local: String,
    /// Whether the local file is an ERB template (Kamal: the name ends in `erb`).
    pub erb: bool,
    /// `<service><remote>`: where the file goes on the host.
    pub host_path: String,
    /// The path inside the container (`remote`).
    pub container_path: String,
    /// Mount options (`ro`, `z`, ...).
    pub options: Option<String>,
    /// `chmod` mode (default `755`).
    pub mode: Option<String>,
    /// `chown` owner.
    pub owner: Option<String>,
}

/// A directory of `directories`: created on the host and mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryMount {
    /// What `mkdir -p`, `chmod` and `chown` act on: `$PWD/<service>/<local>`, or `local` when
    /// absolute.
    pub path: String,
    /// The host side of the mount: `<service>/<local>` (made `$PWD/...`), or `local` when absolute.
    pub host_path: String,
    /// The path inside the container.
    pub container_path: String,
    /// Mount options.
    pub options: Option<String>,
    /// `chmod` mode (none by default).
    pub mode: Option<String>,
    /// `chown` owner.
    pub owner: Option<String>,
}

/// Options of `accessory logs` (Kamal's defaults: timestamps on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions<'a> {
    pub timestamps: bool,
    pub since: Option<&'a str>,
    pub lines: Option<u64>,
    pub grep: Option<&'a str>,
    pub grep_options: Option<&'a str>,
}

/// One accessory of a configuration: what Kamal's `Commands::Accessory.new(config, name:)` holds.
#[derive(Debug, Clone, Copy)]
pub struct Accessory<'a> {
    pub config: &'a Config,
    pub accessory: &'a config::Accessory,
}

impl<'a> Accessory<'a> {
    pub fn new(config: &'a Config, accessory: &'a config::Accessory) -> Self {
        Self { config, accessory }
    }

    /// The accessory's name (its key under `accessories`).
    pub fn name(&self) -> &'a str {
        &self.accessory.name
    }

    /// The container name and `service` label (`<svc>-<name>` unless `service` is set).
    pub fn service_name(&self) -> &'a str {
        &self.accessory.service_name
    }

    /// The image, prefixed with the accessory registry's server when it has one.
    pub fn image(&self) -> &'a str {
        &self.accessory.image
    }

    /// Whether the accessory runs behind kamal-proxy.
    pub fn running_proxy(&self) -> bool {
        self.accessory.proxy.is_some()
    }

    /// `.kamal/apps/<svc>[-<dest>]/env/accessories`.
    pub fn env_directory(&self) -> String {
        format!("{}/accessories", self.config.env_directory())
    }

    /// `.kamal/apps/<svc>[-<dest>]/env/accessories/<name>.env`.
    pub fn env_file(&self) -> String {
        format!("{}/{}.env", self.env_directory(), self.accessory.name)
    }

    /// The env file's contents: the accessory's secrets (aliases resolved), one `KEY=value` line
    /// each, escaped as Kamal's `EnvFile`; a single newline when there are none. A secret missing
    /// from `secrets` is written empty (the binary resolves every secret before planning).
    pub fn env_file_contents(&self, secrets: &BTreeMap<String, Secret<String>>) -> Secret<String> {
        let mut out = String::new();
        for reference in self.accessory.env.secrets() {
            let value = secrets
                .get(&reference.secret)
                .map(|value| value.expose().as_str())
                .unwrap_or_default();
            out.push_str(&reference.name);
            out.push('=');
            out.push_str(&escape_env_file_value(value));
            out.push('\n');
        }
        if out.is_empty() {
            out.push('\n');
        }
        Secret::new(out)
    }

    /// The accessory's env as a map for ERB-rendered files: clear values, then the secrets
    /// (Kamal's `with_env_loaded` puts `env.to_h` into `ENV` while rendering).
    pub fn env_for_templates(
        &self,
        secrets: &BTreeMap<String, Secret<String>>,
    ) -> BTreeMap<String, Secret<String>> {
        let mut env: BTreeMap<String, Secret<String>> = self
            .accessory
            .env
            .clear
            .iter()
            .map(|(key, value)| (key.clone(), Secret::new(value.clone())))
            .collect();
        for reference in self.accessory.env.secrets() {
            let value = secrets.get(&reference.secret).cloned().unwrap_or_default();
            env.insert(reference.name, value);
        }
        env
    }

    /// `files`, one entry per local file (a repeated non-ERB local file keeps its first place
    /// and its last mount, as Ruby's `to_h` does).
    pub fn files(&self) -> Vec<FileMount> {
        let service = self.service_name();
        let mut out: Vec<FileMount> = Vec::new();
        for file in &self.accessory.files {
            let mount = FileMount {
                local: file.local.clone(),
                erb: file.local.ends_with("erb"),
                host_path: format!("{service}{}", file.remote),
                container_path: file.remote.clone(),
                options: file.options.clone(),
                mode: file.mode.clone(),
                owner: file.owner.clone(),
            };
            match out
                .iter_mut()
                .find(|existing| !mount.erb && existing.local == mount.local)
            {
                Some(slot) => *slot = mount,
                None => out.push(mount),
            }
        }
        out
    }

    /// `directories`, one entry per host path (a repeated one keeps its first place and its
    /// last mount).
    pub fn directories(&self) -> Vec<DirectoryMount> {
        let service = self.service_name();
        let mut out: Vec<DirectoryMount> = Vec::new();
        for directory in &self.accessory.directories {
            let absolute = directory.local.starts_with('/');
            let mount = DirectoryMount {
                path: if absolute {
                    directory.local.clone()
                } else {
                    format!("$PWD/{service}/{}", directory.local)
                },
                host_path: if absolute {
                    directory.local.clone()
                } else {
                    format!("{service}/{}", directory.local)
                },
                container_path: directory.remote.clone(),
                options: directory.options.clone(),
                mode: directory.mode.clone(),
                owner: directory.owner.clone(),
            };
            match out.iter_mut().find(|existing| existing.path == mount.path) {
                Some(slot) => *slot = mount,
                None => out.push(mount),
            }
        }
        out
    }

    fn network_args(&self) -> Vec<String> {
        vec!["--network".to_owned(), self.accessory.network.clone()]
    }

    fn publish_args(&self) -> Vec<String> {
        self.accessory
            .port
            .iter()
            .flat_map(|port| ["--publish".to_owned(), port.clone()])
            .collect()
    }

    /// Clear env (`--env K="v"`) then `--env-file <path>`.
    fn env_args(&self) -> Vec<Token> {
        let mut tokens = argumentize(
            "--env",
            self.accessory
                .env
                .clear
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
            false,
        );
        tokens.push(Token::Plain("--env-file".to_owned()));
        tokens.push(Token::Plain(self.env_file()));
        tokens
    }

    /// `volumes` as written, then the files, then the directories (`$PWD/` before relative
    /// host paths, `:<options>` after).
    fn volume_args(&self) -> Vec<String> {
        let mut words: Vec<String> = self
            .accessory
            .volumes
            .iter()
            .flat_map(|volume| ["--volume".to_owned(), volume.clone()])
            .collect();
        let mounts = self
            .files()
            .into_iter()
            .map(|file| (file.host_path, file.container_path, file.options))
            .chain(self.directories().into_iter().map(|directory| {
                (
                    directory.host_path,
                    directory.container_path,
                    directory.options,
                )
            }));
        for (host_path, container_path, options) in mounts {
            let mut volume = if host_path.starts_with('/') {
                format!("{host_path}:{container_path}")
            } else {
                format!("$PWD/{host_path}:{container_path}")
            };
            if let Some(options) = options.filter(|o| !o.is_empty()) {
                volume.push(':');
                volume.push_str(&options);
            }
            words.push("--volume".to_owned());
            words.push(volume);
        }
        words
    }

    fn label_args(&self) -> Vec<Token> {
        argumentize(
            "--label",
            self.accessory
                .labels
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
            false,
        )
    }

    /// `docker run --name <svc> --detach --restart unless-stopped --network <net> <logging>
    /// [--publish <port>] [--env KAMAL_HOST="<host>"] <env> <volumes> <labels> <options> <image>
    /// [<cmd>]` (`options.restart` is refused by the validator, as in Kamal 2.11).
    pub fn run(&self, host: Option<&str>) -> Command {
        let mut command = Command::from_words([
            "docker",
            "run",
            "--name",
            self.service_name(),
            "--detach",
            "--restart",
            "unless-stopped",
        ])
        .args(self.network_args())
        .args(self.config.logging.args())
        .args(self.publish_args());
        if let Some(host) = host {
            command = command.args(["--env".to_owned(), format!("KAMAL_HOST=\"{host}\"")]);
        }
        command
            .tokens(self.env_args())
            .args(self.volume_args())
            .tokens(self.label_args())
            .args(option_args(self.accessory.options.as_ref(), false))
            .arg(self.image())
            .args(self.accessory.cmd.clone())
    }

    /// `docker container start <svc>`.
    pub fn start(&self) -> Command {
        Command::from_words(["docker", "container", "start", self.service_name()])
    }

    /// `docker container stop <svc>`.
    pub fn stop(&self) -> Command {
        Command::from_words(["docker", "container", "stop", self.service_name()])
    }

    fn service_filter(&self) -> [String; 2] {
        [
            "--filter".to_owned(),
            format!("label=service={}", self.service_name()),
        ]
    }

    /// `docker ps [-a] [-q] --filter label=service=<svc>`.
    pub fn info(&self, all: bool, quiet: bool) -> Command {
        let mut command = Command::from_words(["docker", "ps"]);
        if all {
            command = command.arg("-a");
        }
        if quiet {
            command = command.arg("-q");
        }
        command.args(self.service_filter())
    }

    /// `docker logs <svc>  --since <s>  --tail <n> --timestamps 2>&1 [| grep '<g>' [<opts>]]`,
    /// with Kamal's doubled spaces before `--since` and `--tail`.
    pub fn logs(&self, options: &LogOptions<'_>) -> Command {
        let mut command = Command::from_words(["docker", "logs", self.service_name()]);
        if let Some(since) = options.since {
            command = command.arg(format!(" --since {since}"));
        }
        if let Some(lines) = options.lines {
            command = command.arg(format!(" --tail {lines}"));
        }
        if options.timestamps {
            command = command.arg("--timestamps");
        }
        command = command.arg("2>&1");
        match options.grep {
            Some(grep) => Command::combine(
                [
                    command,
                    Command::new(match options.grep_options {
                        Some(extra) => format!("grep '{grep}' {extra}"),
                        None => format!("grep '{grep}'"),
                    }),
                ],
                "|",
            ),
            None => command,
        }
    }

    /// `docker logs <svc> [--timestamps] --tail 10 --follow 2>&1 [| grep "<g>" [<opts>]]`: the
    /// command run over `ssh -t` on the first host.
    pub fn follow_logs(&self, options: &LogOptions<'_>) -> Command {
        let mut command = Command::from_words(["docker", "logs", self.service_name()]);
        if options.timestamps {
            command = command.arg("--timestamps");
        }
        command = command.args(["--tail", "10", "--follow", "2>&1"]);
        match options.grep {
            Some(grep) => Command::combine(
                [
                    command,
                    Command::new(match options.grep_options {
                        Some(extra) => format!("grep \"{grep}\" {extra}"),
                        None => format!("grep \"{grep}\""),
                    }),
                ],
                "|",
            ),
            None => command,
        }
    }

    /// `docker exec [-it|-i] <svc> <cmd>`. `interactive`: `Some(true)` for a terminal (`-it`),
    /// `Some(false)` for piped input (`-i`), `None` for neither.
    pub fn execute_in_existing_container(&self, cmd: &str, interactive: Option<bool>) -> Command {
        Command::from_words(["docker", "exec"])
            .args(interactive_args(interactive))
            .arg(self.service_name())
            .arg(cmd)
    }

    /// `docker run [-it|-i] --rm --network <net> <env> <volumes> <options> <image> <cmd>`
    /// (never a `--restart`: Docker refuses it beside `--rm`).
    pub fn execute_in_new_container(&self, cmd: &str, interactive: Option<bool>) -> Command {
        Command::from_words(["docker", "run"])
            .args(interactive_args(interactive))
            .arg("--rm")
            .args(self.network_args())
            .tokens(self.env_args())
            .args(self.volume_args())
            .args(option_args(self.accessory.options.as_ref(), true))
            .arg(self.image())
            .arg(cmd)
    }

    /// `docker image pull <image>`.
    pub fn pull_image(&self) -> Command {
        Command::from_words(["docker", "image", "pull", self.image()])
    }

    /// `rm -rf <svc>`: the uploaded files and relative data directories in the home directory.
    pub fn remove_service_directory(&self) -> Command {
        Command::from_words(["rm", "-rf", self.service_name()])
    }

    /// `docker container prune --force --filter label=service=<svc>`.
    pub fn remove_container(&self) -> Command {
        Command::from_words(["docker", "container", "prune", "--force"]).args(self.service_filter())
    }

    /// `docker image rm --force <image>`.
    pub fn remove_image(&self) -> Command {
        Command::from_words(["docker", "image", "rm", "--force", self.image()])
    }

    /// `mkdir -p .kamal/apps/<svc>[-<dest>]/env/accessories`.
    pub fn ensure_env_directory(&self) -> Command {
        make_directory(&self.env_directory())
    }

    /// `rm -f <env file>`: dhow's `accessory remove` deletes the file holding the accessory's
    /// secrets (Kamal leaves it on the host until `kamal remove`).
    pub fn remove_env_file(&self) -> Command {
        Command::from_words(["rm".to_owned(), "-f".to_owned(), self.env_file()])
    }

    /// `docker container ls --filter 'name=^<svc>$' --quiet`: the running container's id, the
    /// proxy target.
    pub fn running_container_id(&self) -> Command {
        container_id_for(self.service_name(), true)
    }

    /// `docker exec kamal-proxy kamal-proxy deploy <svc> --target="<target>:<port>" ...`, for an
    /// accessory with `proxy:` (`None` otherwise). `version` names the error pages directory.
    pub fn proxy_deploy(&self, target: &str, version: &str) -> Option<Command> {
        let proxy = self.accessory.proxy.as_ref()?;
        // An accessory's TLS files live in `tls/`, not `tls/<role>/` (Kamal's `role_name` nil).
        let args = deploy_command_args(self.config, proxy, "", target, version)
            .into_iter()
            .map(|arg| arg.replace("/tls//", "/tls/"));
        Some(
            Command::from_words(["docker", "exec", PROXY_CONTAINER, "kamal-proxy", "deploy"])
                .arg(self.service_name())
                .args(args),
        )
    }

    /// `docker exec kamal-proxy kamal-proxy remove <svc>`.
    pub fn proxy_remove(&self) -> Command {
        Command::from_words(["docker", "exec", PROXY_CONTAINER, "kamal-proxy", "remove"])
            .arg(self.service_name())
    }
}

/// `mkdir -p <path>`.
pub fn make_directory(path: &str) -> Command {
    Command::from_words(["mkdir", "-p", path])
}

/// `mkdir -p <dirname of path>` (Ruby's `Pathname#dirname`).
pub fn make_directory_for(path: &str) -> Command {
    let trimmed = path.trim_end_matches('/');
    let parent = match trimmed.rfind('/') {
        Some(0) => "/",
        Some(index) => trimmed[..index].trim_end_matches('/'),
        None => ".",
    };
    make_directory(parent)
}

/// `chmod <mode> <path>`.
pub fn chmod(mode: &str, path: &str) -> Command {
    Command::from_words(["chmod", mode, path])
}

/// `chown <owner> <path>`.
pub fn chown(owner: &str, path: &str) -> Command {
    Command::from_words(["chown", owner, path])
}

/// Kamal's `join_commands`: the words of a command, each stripped, joined with spaces.
pub fn join_command(words: &[String]) -> String {
    words
        .iter()
        .map(|word| word.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The audit message of `accessory exec`: `Executed cmd '<cmd>' on <name> accessory`.
pub fn exec_audit_message(cmd: &str, name: &str) -> String {
    format!("Executed cmd '{cmd}' on {name} accessory")
}

fn interactive_args(interactive: Option<bool>) -> Vec<&'static str> {
    match interactive {
        Some(true) => vec!["-it"],
        Some(false) => vec!["-i"],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
