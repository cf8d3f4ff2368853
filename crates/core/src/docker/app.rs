//! App containers (Kamal 2.11's `commands/app.rb` and `app/{containers,execution,images,
//! logging,proxy}.rb`): `docker run` for a role on a host, finding the current container and
//! version, stopping, renaming, listing, logs, exec, and the kamal-proxy calls for a role.

use std::fmt::Write as _;

use crate::cmd::{
    Command, Token, argumentize, escape_shell_value, optionize_with, shell_single_quote,
};
use crate::config::{Config, Node, Proxy, Role, Value};

/// `docker inspect` format of a container's health, or its state when it has no health check.
pub const HEALTH_STATUS_FORMAT: &str =
    "'{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'";
/// `docker inspect` format of a container's health-check log.
pub const HEALTH_LOG_FORMAT: &str = "'{{json .State.Health}}'";
/// The container the proxy runs in.
pub const PROXY_CONTAINER: &str = "kamal-proxy";

/// The app of one role, optionally on one host, at one version: what Kamal's
/// `Commands::App.new(config, role:, host:)` holds, with the version passed in explicitly.
#[derive(Debug, Clone, Copy)]
pub struct App<'a> {
    pub config: &'a Config,
    pub role: &'a Role,
    /// The version acted on (`config.version` in Kamal).
    pub version: &'a str,
}

impl<'a> App<'a> {
    pub fn new(config: &'a Config, role: &'a Role, version: &'a str) -> Self {
        Self {
            config,
            role,
            version,
        }
    }

    /// `<svc>-<role>[-<dest>]`: the container prefix and the proxy service name.
    pub fn container_prefix(&self) -> String {
        self.config.container_prefix(&self.role.name)
    }

    /// `<prefix>-<version>` (this app's version unless `version` is given).
    pub fn container_name(&self, version: Option<&str>) -> String {
        format!(
            "{}-{}",
            self.container_prefix(),
            version.unwrap_or(self.version)
        )
    }

    /// `.kamal/apps/<svc>[-<dest>]/env/roles/<role>.env`.
    pub fn env_file(&self) -> String {
        format!(
            "{}/roles/{}.env",
            self.config.env_directory(),
            self.role.name
        )
    }

    /// Clear env (`--env K="v"`; an empty value gives a bare `--env K`) then the env file.
    fn env_args(&self, host: &str) -> Vec<Token> {
        let env = self.config.env_for(&self.role.name, host);
        let mut tokens = argumentize(
            "--env",
            env.clear
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
            false,
        );
        tokens.push(Token::Plain("--env-file".to_owned()));
        tokens.push(Token::Plain(self.env_file()));
        tokens
    }

    fn label_args(&self) -> Vec<Token> {
        let mut tokens = Vec::new();
        for (key, value) in self.config.role_labels(self.role) {
            tokens.push(Token::Plain("--label".to_owned()));
            tokens.push(Token::Plain(match value.filter(|v| !v.is_empty()) {
                Some(value) => format!("{key}={}", escape_shell_value(&value)),
                None => key,
            }));
        }
        tokens
    }

    fn asset_volume_args(&self) -> Vec<String> {
        match (&self.role.asset_path, self.role.running_proxy()) {
            (Some((path, options)), true) => {
                let mut mount = format!(
                    "$PWD/{}/assets/volumes/{}-{}:{path}",
                    self.config.app_directory(),
                    self.role.name,
                    self.version
                );
                if let Some(options) = options {
                    mount.push(':');
                    mount.push_str(options);
                }
                vec!["--volume".to_owned(), mount]
            }
            _ => Vec::new(),
        }
    }

    /// `docker stop` arguments: `-t <drain_timeout>` for roles without the proxy (the proxy has
    /// already drained the others).
    fn stop_args(&self) -> Vec<String> {
        if self.role.running_proxy() {
            Vec::new()
        } else {
            vec!["-t".to_owned(), self.config.drain_timeout.to_string()]
        }
    }

    /// `docker run ... <image> [<cmd>]` for the new container on `host`.
    pub fn run(&self, host: &str, hostname: Option<&str>) -> Command {
        let name = self.container_name(None);
        let mut command = Command::from_words([
            "docker",
            "run",
            "--detach",
            "--restart unless-stopped",
            "--name",
            &name,
            "--network",
            "kamal",
        ]);
        if let Some(hostname) = hostname {
            command = command.args(["--hostname", hostname]);
        }
        command = command.args([
            "--env".to_owned(),
            format!("KAMAL_CONTAINER_NAME=\"{name}\""),
            "--env".to_owned(),
            format!("KAMAL_VERSION=\"{}\"", self.version),
            "--env".to_owned(),
            format!("KAMAL_HOST=\"{host}\""),
        ]);
        if let Some(destination) = &self.config.destination {
            command = command.args([
                "--env".to_owned(),
                format!("KAMAL_DESTINATION=\"{destination}\""),
            ]);
        }
        command
            .tokens(self.env_args(host))
            .args(self.role.logging.args())
            .args(self.config.volume_args())
            .args(self.asset_volume_args())
            .tokens(self.label_args())
            .args(option_args(self.role.options.as_ref(), false))
            .arg(self.config.absolute_image(self.version))
            .args(self.role.cmd.clone())
    }

    /// `docker start <name>`.
    pub fn start(&self) -> Command {
        Command::from_words([
            "docker".to_owned(),
            "start".to_owned(),
            self.container_name(None),
        ])
    }

    /// The container's health (or state) for `version`.
    pub fn status(&self, version: &str) -> Command {
        Command::combine(
            [
                self.container_id_for_version(version, false),
                xargs(&Command::from_words([
                    "docker",
                    "inspect",
                    "--format",
                    HEALTH_STATUS_FORMAT,
                ])),
            ],
            "|",
        )
    }

    /// Stops the container of `version`, or the current running one.
    pub fn stop(&self, version: Option<&str>) -> Command {
        let find = match version {
            Some(version) => self.container_id_for_version(version, false),
            None => self.current_running_container_id(),
        };
        Command::combine(
            [
                find,
                xargs(&Command::from_words(["docker", "stop"]).args(self.stop_args())),
            ],
            "|",
        )
    }

    /// `docker ps` filtered to this role.
    pub fn info(&self) -> Command {
        Command::from_words(["docker", "ps"]).args(self.container_filter_args(&[]))
    }

    /// The id of the running container of the current version.
    pub fn current_running_container_id(&self) -> Command {
        self.current_running_container("--quiet")
    }

    /// `docker container ls --all --filter 'name=^<name>$' --quiet`.
    pub fn container_id_for_version(&self, version: &str, only_running: bool) -> Command {
        container_id_for(&self.container_name(Some(version)), only_running)
    }

    /// The version of the running container, from its name.
    pub fn current_running_version(&self) -> Command {
        Command::combine(
            [
                self.current_running_container("--format '{{.Names}}'"),
                self.extract_version_from_name(),
            ],
            "|",
        )
    }

    /// The versions of this role's containers (running ones with `statuses: ["running"]`).
    pub fn list_versions(&self, docker_args: &[&str], statuses: &[&str]) -> Command {
        Command::combine(
            [
                Command::from_words(["docker", "ps"])
                    .args(self.container_filter_args(statuses))
                    .args(docker_args.iter().copied())
                    .args(["--format", "\"{{.Names}}\""]),
                self.extract_version_from_name(),
            ],
            "|",
        )
    }

    /// `mkdir -p .kamal/apps/<svc>[-<dest>]/env/roles`.
    pub fn ensure_env_directory(&self) -> Command {
        Command::from_words([
            "mkdir".to_owned(),
            "-p".to_owned(),
            format!("{}/roles", self.config.env_directory()),
        ])
    }

    /// `docker container ls --all` filtered to this role.
    pub fn list_containers(&self) -> Command {
        Command::from_words(["docker", "container", "ls", "--all"])
            .args(self.container_filter_args(&[]))
    }

    /// Container names of this role.
    pub fn list_container_names(&self) -> Command {
        self.list_containers().args(["--format", "'{{ .Names }}'"])
    }

    /// Removes the container of `version`.
    pub fn remove_container(&self, version: &str) -> Command {
        Command::combine(
            [
                container_id_for(&self.container_name(Some(version)), false),
                xargs(&Command::from_words(["docker", "container", "rm"])),
            ],
            "|",
        )
    }

    /// `docker rename <name of version> <name of new_version>`.
    pub fn rename_container(&self, version: &str, new_version: &str) -> Command {
        Command::from_words([
            "docker".to_owned(),
            "rename".to_owned(),
            self.container_name(Some(version)),
            self.container_name(Some(new_version)),
        ])
    }

    /// Removes the stopped containers of this role.
    pub fn remove_containers(&self) -> Command {
        Command::from_words(["docker", "container", "prune", "--force"])
            .args(self.container_filter_args(&[]))
    }

    /// The health-check log of the container of `version`.
    pub fn container_health_log(&self, version: &str) -> Command {
        Command::combine(
            [
                container_id_for(&self.container_name(Some(version)), false),
                xargs(&Command::from_words([
                    "docker",
                    "inspect",
                    "--format",
                    HEALTH_LOG_FORMAT,
                ])),
            ],
            "|",
        )
    }

    /// `docker image ls <repository>`.
    pub fn list_images(&self) -> Command {
        Command::from_words([
            "docker".to_owned(),
            "image".to_owned(),
            "ls".to_owned(),
            self.config.repository(),
        ])
    }

    /// Removes every image of the service.
    pub fn remove_images(&self) -> Command {
        Command::from_words([
            "docker".to_owned(),
            "image".to_owned(),
            "prune".to_owned(),
            "--all".to_owned(),
            "--force".to_owned(),
            "--filter".to_owned(),
            format!("label=service={}", self.config.service),
        ])
    }

    /// `docker tag <repo>:<version> <repo>:latest[-<dest>]`.
    pub fn tag_latest_image(&self) -> Command {
        Command::from_words([
            "docker".to_owned(),
            "tag".to_owned(),
            self.config.absolute_image(self.version),
            self.config.latest_image(),
        ])
    }

    /// Logs of a container (`container_id`) or of the current one.
    pub fn logs(&self, options: &LogOptions<'_>) -> Command {
        let source = match options.container_id {
            Some(id) => Command::from_words(["echo", id]),
            None => self.current_running_container_id(),
        };
        let mut docker_logs = String::from("xargs docker logs");
        if options.timestamps {
            docker_logs.push_str(" --timestamps");
        }
        if let Some(since) = options.since {
            let _ = write!(docker_logs, " --since {since}");
        }
        if let Some(lines) = options.lines {
            let _ = write!(docker_logs, " --tail {lines}");
        }
        docker_logs.push_str(" 2>&1");
        let mut parts = vec![source, Command::new(docker_logs)];
        if let Some(grep) = options.grep {
            let mut text = format!("grep '{grep}'");
            if let Some(grep_options) = options.grep_options {
                text.push(' ');
                text.push_str(grep_options);
            }
            parts.push(Command::new(text));
        }
        Command::combine(parts, "|")
    }

    /// `docker exec [-it] [--env K="v"] <name> <command...>` in the running container.
    pub fn execute_in_existing_container(
        &self,
        command: &[String],
        interactive: Option<bool>,
        env: &[(String, String)],
    ) -> Command {
        Command::from_words(["docker", "exec"])
            .args(interactive_args(interactive))
            .tokens(argumentize(
                "--env",
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                false,
            ))
            .arg(self.container_name(None))
            .args(command.iter().cloned())
    }

    /// `docker run --rm --name <prefix>-exec-<version>-<suffix> ...` for a one-off command.
    /// `suffix` is Kamal's 6 random hex characters, chosen by the caller.
    pub fn execute_in_new_container(&self, exec: &NewContainerExec<'_>) -> Command {
        let name = format!(
            "{}-exec-{}-{}",
            self.container_prefix(),
            self.version,
            exec.suffix
        );
        let mut command =
            Command::from_words(["docker", "run"]).args(interactive_args(exec.interactive));
        command = if exec.detach {
            command.arg("--detach")
        } else {
            command.arg("--rm")
        };
        command
            .args([
                "--name".to_owned(),
                name,
                "--network".to_owned(),
                "kamal".to_owned(),
            ])
            .tokens(self.env_args(exec.host))
            .tokens(argumentize(
                "--env",
                exec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                false,
            ))
            .args(self.role.logging.args())
            .args(self.config.volume_args())
            .args(option_args(self.role.options.as_ref(), false))
            .arg(self.config.absolute_image(self.version))
            .args(exec.command.iter().cloned())
    }

    fn proxy(&self) -> Option<&'a Proxy> {
        self.role.proxy.as_ref()
    }

    /// `docker exec kamal-proxy kamal-proxy deploy <prefix> --target="<id>:<port>" ...`.
    /// `None` for a role that does not run behind the proxy.
    pub fn proxy_deploy(&self, target: &str) -> Option<Command> {
        let proxy = self.proxy()?;
        Some(proxy_exec(
            &["deploy", &self.container_prefix()],
            deploy_command_args(self.config, proxy, &self.role.name, target, self.version),
        ))
    }

    /// `docker exec kamal-proxy kamal-proxy remove <prefix>`.
    pub fn proxy_remove(&self) -> Command {
        proxy_exec(&["remove", &self.container_prefix()], Vec::new())
    }

    /// `docker exec kamal-proxy kamal-proxy resume <prefix>`.
    pub fn proxy_live(&self) -> Command {
        proxy_exec(&["resume", &self.container_prefix()], Vec::new())
    }

    /// `docker exec kamal-proxy kamal-proxy stop <prefix> [--drain-timeout="Ns"] [--message="..."]`.
    pub fn proxy_maintenance(&self, drain_timeout: Option<i64>, message: Option<&str>) -> Command {
        let drain = drain_timeout.map(|seconds| format!("{seconds}s"));
        let mut options: Vec<(&str, Option<&str>)> = Vec::new();
        if let Some(drain) = drain.as_deref() {
            options.push(("drain-timeout", Some(drain)));
        }
        if let Some(message) = message {
            options.push(("message", Some(message)));
        }
        proxy_exec(
            &["stop", &self.container_prefix()],
            optionize_with(options, "="),
        )
    }

    fn current_running_container(&self, format: &str) -> Command {
        let filters = self.container_filter_args(&["running", "restarting"]);
        let latest_image_id = format!(
            "docker image ls --filter reference={} --format '{{{{.ID}}}}'",
            self.config.latest_image()
        );
        let latest_image_container = Command::from_words(["docker", "ps", "--latest", format])
            .args(filters.iter().cloned())
            .args([
                "--filter".to_owned(),
                format!("ancestor=$({latest_image_id})"),
            ]);
        let latest_container =
            Command::from_words(["docker", "ps", "--latest", format]).args(filters.iter().cloned());
        let chained = crate::cmd::for_exec(&Command::combine(
            [latest_image_container, latest_container],
            ";",
        ));
        Command::combine(
            [
                Command::from_words([
                    "sh".to_owned(),
                    "-c".to_owned(),
                    shell_single_quote(&chained),
                ]),
                Command::from_words(["head", "-1"]),
            ],
            "|",
        )
    }

    fn extract_version_from_name(&self) -> Command {
        Command::new(format!(
            "while read line; do echo ${{line#{}-}}; done",
            self.container_prefix()
        ))
    }

    fn container_filter_args(&self, statuses: &[&str]) -> Vec<String> {
        let mut filters = vec![
            format!("label=service={}", self.config.service),
            format!(
                "label=destination={}",
                self.config.destination.as_deref().unwrap_or_default()
            ),
            format!("label=role={}", self.role.name),
        ];
        filters.extend(statuses.iter().map(|status| format!("status={status}")));
        filters
            .into_iter()
            .flat_map(|filter| ["--filter".to_owned(), filter])
            .collect()
    }
}

/// Options of `app logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions<'a> {
    pub container_id: Option<&'a str>,
    pub timestamps: bool,
    pub since: Option<&'a str>,
    pub lines: Option<u32>,
    pub grep: Option<&'a str>,
    pub grep_options: Option<&'a str>,
}

/// A one-off command in a new container.
#[derive(Debug, Clone)]
pub struct NewContainerExec<'a> {
    pub host: &'a str,
    pub command: &'a [String],
    /// `Some(true)`: `-it`; `Some(false)`: `-i`; `None`: neither.
    pub interactive: Option<bool>,
    pub detach: bool,
    pub env: &'a [(String, String)],
    /// Six hex characters (Kamal's `SecureRandom.hex(3)`).
    pub suffix: &'a str,
}

/// `docker container ls --all --filter 'name=^<name>$' --quiet`.
pub fn container_id_for(name: &str, only_running: bool) -> Command {
    let mut command = Command::from_words(["docker", "container", "ls"]);
    if !only_running {
        command = command.arg("--all");
    }
    command.args([
        "--filter".to_owned(),
        format!("'name=^{name}$'"),
        "--quiet".to_owned(),
    ])
}

fn xargs(command: &Command) -> Command {
    Command::new("xargs").tokens(command.as_tokens().iter().cloned())
}

fn interactive_args(interactive: Option<bool>) -> Vec<&'static str> {
    match interactive {
        Some(true) => vec!["-it"],
        Some(false) => vec!["-i"],
        None => Vec::new(),
    }
}

fn proxy_exec(words: &[&str], options: Vec<String>) -> Command {
    Command::from_words(["docker", "exec", PROXY_CONTAINER, "kamal-proxy"])
        .args(words.iter().copied())
        .args(options)
}

/// Kamal's `optionize(options)` of a role's or accessory's `options` map: `--key "value"`, a
/// bare `--key` for `true`, the flag repeated for a list. `skip_restart` leaves `restart` out.
pub fn option_args(options: Option<&Node>, skip_restart: bool) -> Vec<String> {
    let Some(entries) = options.and_then(Node::as_map) else {
        return Vec::new();
    };
    let mut words = Vec::new();
    for (key, value) in entries {
        if skip_restart && key.name == "restart" {
            continue;
        }
        let values: Vec<&Node> = match value.as_seq() {
            Some(items) => items.iter().collect(),
            None => vec![value],
        };
        for value in values {
            words.push(format!("--{}", key.name));
            if value.value != Value::Bool(true) {
                words.push(escape_shell_value(
                    &value.to_ruby_string().unwrap_or_default(),
                ));
            }
        }
    }
    words
}

/// Kamal's `Proxy#deploy_command_args(target:)`: every deploy option as `--key="value"`.
#[expect(
    clippy::too_many_lines,
    reason = "one option after another, in Kamal's order"
)]
pub fn deploy_command_args(
    config: &Config,
    proxy: &Proxy,
    role: &str,
    target: &str,
    version: &str,
) -> Vec<String> {
    let seconds = |value: Option<i64>| value.map(|v| format!("{v}s"));
    let target = format!("{target}:{}", proxy.app_port());
    let hosts = proxy.hosts();
    let (cert, key) = match proxy.ssl() {
        crate::config::Ssl::Custom { .. } => (
            Some(format!(
                "/home/kamal-proxy/.apps-config/{}/tls/{role}/cert.pem",
                config.service_and_destination()
            )),
            Some(format!(
                "/home/kamal-proxy/.apps-config/{}/tls/{role}/key.pem",
                config.service_and_destination()
            )),
        ),
        _ => (None, None),
    };
    let deploy_timeout = format!("{}s", config.deploy_timeout);
    let drain_timeout = format!("{}s", config.drain_timeout);
    let interval = seconds(proxy.int("healthcheck", "interval"));
    let timeout = seconds(proxy.int("healthcheck", "timeout"));
    let path = proxy.healthcheck_path();
    let target_timeout = seconds(proxy.int("", "response_timeout"));
    let memory = proxy.int("buffering", "memory").map(|v| v.to_string());
    let max_request = proxy
        .int("buffering", "max_request_body")
        .map(|v| v.to_string());
    let max_response = proxy
        .int("buffering", "max_response_body")
        .map(|v| v.to_string());
    let prefixes = proxy.path_prefixes();
    let error_pages = config.error_pages_path.as_ref().map(|_| {
        format!(
            "/home/kamal-proxy/.apps-config/{}/error_pages/{version}",
            config.service_and_destination()
        )
    });
    let request_headers = proxy.log_request_headers();
    let response_headers = proxy.log_response_headers();
    let bool_text = |value: bool| if value { None } else { Some("false") };

    let mut options: Vec<(&str, Option<&str>)> = vec![("target", Some(&target))];
    options.extend(hosts.iter().map(|host| ("host", Some(host.as_str()))));
    if proxy.ssl_enabled() {
        options.push(("tls", None));
    }
    if let Some(cert) = &cert {
        options.push(("tls-certificate-path", Some(cert)));
    }
    if let Some(key) = &key {
        options.push(("tls-private-key-path", Some(key)));
    }
    options.push(("deploy-timeout", Some(&deploy_timeout)));
    options.push(("drain-timeout", Some(&drain_timeout)));
    for (name, value) in [
        ("health-check-interval", &interval),
        ("health-check-timeout", &timeout),
        ("health-check-path", &path),
        ("target-timeout", &target_timeout),
    ] {
        if let Some(value) = value {
            options.push((name, Some(value)));
        }
    }
    options.push(("buffer-requests", bool_text(proxy.buffering("requests"))));
    options.push(("buffer-responses", bool_text(proxy.buffering("responses"))));
    for (name, value) in [
        ("buffer-memory", &memory),
        ("max-request-body", &max_request),
        ("max-response-body", &max_response),
    ] {
        if let Some(value) = value {
            options.push((name, Some(value)));
        }
    }
    options.extend(
        prefixes
            .iter()
            .map(|prefix| ("path-prefix", Some(prefix.as_str()))),
    );
    for (name, key) in [
        ("strip-path-prefix", "strip_path_prefix"),
        ("forward-headers", "forward_headers"),
        ("tls-redirect", "ssl_redirect"),
    ] {
        if let Some(flag) = proxy.flag(key) {
            options.push((name, bool_text(flag)));
        }
    }
    options.extend(
        request_headers
            .iter()
            .map(|header| ("log-request-header", Some(header.as_str()))),
    );
    options.extend(
        response_headers
            .iter()
            .map(|header| ("log-response-header", Some(header.as_str()))),
    );
    if let Some(error_pages) = &error_pages {
        options.push(("error-pages", Some(error_pages)));
    }
    optionize_with(options, "=")
}

/// The builders the command groups (`dhow app ...`) add to [`App`].
impl App<'_> {
    /// Kamal's `follow_logs`: the remote half of `app logs --follow`, run through `ssh -t`:
    /// `<container id> | xargs docker logs [--timestamps] [--tail N] --follow 2>&1 [| grep "g"]`.
    /// `since` is not used when following, as in Kamal.
    pub fn follow_logs(&self, options: &LogOptions<'_>) -> Command {
        let source = match options.container_id {
            Some(id) => Command::from_words(["echo", id]),
            None => self.current_running_container_id(),
        };
        let mut docker_logs = String::from("xargs docker logs");
        if options.timestamps {
            docker_logs.push_str(" --timestamps");
        }
        if let Some(lines) = options.lines {
            let _ = write!(docker_logs, " --tail {lines}");
        }
        docker_logs.push_str(" --follow 2>&1");
        let mut parts = vec![source, Command::new(docker_logs)];
        if let Some(grep) = options.grep {
            let mut text = format!("grep \"{grep}\"");
            if let Some(grep_options) = options.grep_options {
                text.push(' ');
                text.push_str(grep_options);
            }
            parts.push(Command::new(text));
        }
        Command::combine(parts, "|")
    }

    /// `rm -r .kamal/proxy/apps-config/<svc>[-<dest>]`: the app's proxy files (error pages,
    /// certificates).
    pub fn remove_proxy_app_directory(&self) -> Command {
        Command::from_words([
            "rm".to_owned(),
            "-r".to_owned(),
            format!(
                "{}/{}",
                super::proxy::apps_directory(),
                self.config.service_and_destination()
            ),
        ])
    }
}

/// `docker container ls --all` of every container of the service and destination, whatever the
/// role (Kamal's `KAMAL.app.list_containers`, an app without a role).
pub fn list_service_containers(config: &Config) -> Command {
    Command::from_words([
        "docker".to_owned(),
        "container".to_owned(),
        "ls".to_owned(),
        "--all".to_owned(),
        "--filter".to_owned(),
        format!("label=service={}", config.service),
        "--filter".to_owned(),
        format!(
            "label=destination={}",
            config.destination.as_deref().unwrap_or_default()
        ),
    ])
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cmd::for_exec;
    use crate::config::{LoadInput, NoTemplates, SourceFile};

    const BASE: &str = "service: app\nimage: dhh/app\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\n";

    /// Kamal's test app (`dhh/app`) with `extra` YAML, optionally with a destination file.
    pub(crate) fn load(extra: &str, destination: Option<(&str, &str)>) -> Config {
        let env = BTreeMap::new();
        let text = format!("{BASE}{extra}");
        let input = LoadInput {
            base: SourceFile {
                name: "config/deploy.yml",
                text: Some(&text),
            },
            destination: destination.map(|(name, text)| {
                (
                    name,
                    SourceFile {
                        name: "config/deploy.dest.yml",
                        text: Some(text),
                    },
                )
            }),
            env: &env,
            running_version: "2.11.0",
            local_arch: Some("amd64"),
            renderer: &NoTemplates,
        };
        crate::config::load(&input).expect("valid config")
    }

    pub(crate) fn app<'a>(config: &'a Config, role: &str, version: &'a str) -> App<'a> {
        App::new(config, config.role(role).expect("role"), version)
    }

    #[test]
    fn run_without_destination() {
        let config = load("servers: [1.1.1.1]\n", None);
        assert_eq!(
            for_exec(&app(&config, "web", "999").run("1.1.1.1", None)),
            "docker run --detach --restart unless-stopped --name app-web-999 --network kamal --env KAMAL_CONTAINER_NAME=\"app-web-999\" --env KAMAL_VERSION=\"999\" --env KAMAL_HOST=\"1.1.1.1\" --env-file .kamal/apps/app/env/roles/web.env --log-opt max-size=\"10m\" --label service=\"app\" --label role=\"web\" --label destination dhh/app:999"
        );
    }

    #[test]
    fn run_with_destination() {
        let config = load(
            "servers: [1.1.1.1]\n",
            Some(("staging", "env: {clear: {A: b}}\n")),
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").run("1.1.1.1", None)),
            "docker run --detach --restart unless-stopped --name app-web-staging-999 --network kamal --env KAMAL_CONTAINER_NAME=\"app-web-staging-999\" --env KAMAL_VERSION=\"999\" --env KAMAL_HOST=\"1.1.1.1\" --env KAMAL_DESTINATION=\"staging\" --env A=\"b\" --env-file .kamal/apps/app-staging/env/roles/web.env --log-opt max-size=\"10m\" --label service=\"app\" --label role=\"web\" --label destination=\"staging\" dhh/app:999"
        );
    }

    #[test]
    fn run_with_hostname_volumes_options_cmd_and_logging() {
        let config = load(
            "volumes: [\"/local/path:/container/path\"]\nlogging: {driver: local, options: {max-size: 100m}}\nservers:\n  web: [1.1.1.1]\n  workers:\n    hosts: [1.1.1.2]\n    cmd: bin/jobs\n    options: {mount: somewhere, cap-add: true}\n    logging: {options: {max-file: \"3\"}}\n",
            None,
        );
        assert_eq!(
            for_exec(&app(&config, "workers", "999").run("1.1.1.2", Some("myhost"))),
            "docker run --detach --restart unless-stopped --name app-workers-999 --network kamal --hostname myhost --env KAMAL_CONTAINER_NAME=\"app-workers-999\" --env KAMAL_VERSION=\"999\" --env KAMAL_HOST=\"1.1.1.2\" --env-file .kamal/apps/app/env/roles/workers.env --log-driver \"local\" --log-opt max-size=\"100m\" --log-opt max-file=\"3\" --volume /local/path:/container/path --label service=\"app\" --label role=\"workers\" --label destination --mount \"somewhere\" --cap-add dhh/app:999 bin/jobs"
        );
    }

    #[test]
    fn tag_env_comes_before_the_env_file() {
        let config = load(
            "servers: [{1.1.1.1: tag1}]\nenv:\n  clear: {A: a}\n  tags:\n    tag1: {ENV1: value1}\n",
            None,
        );
        let rendered = for_exec(&app(&config, "web", "999").run("1.1.1.1", None));
        assert!(
            rendered.contains(
                "--env KAMAL_HOST=\"1.1.1.1\" --env A=\"a\" --env ENV1=\"value1\" --env-file"
            ),
            "{rendered}"
        );
    }

    #[test]
    fn empty_clear_value_is_a_bare_env() {
        let config = load("servers: [1.1.1.1]\nenv: {clear: {FOO: \"\"}}\n", None);
        assert!(
            for_exec(&app(&config, "web", "1").run("1.1.1.1", None))
                .contains(" --env FOO --env-file ")
        );
    }

    #[test]
    fn stop_current_and_given_version() {
        let config = load(
            "servers:\n  web: [1.1.1.1]\n  workers: [1.1.1.2]\ndrain_timeout: 20\n",
            None,
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").stop(None)),
            "sh -c 'docker ps --latest --quiet --filter label=service=app --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=dhh/app:latest --format '\\''{{.ID}}'\\'') ; docker ps --latest --quiet --filter label=service=app --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting' | head -1 | xargs docker stop"
        );
        assert_eq!(
            for_exec(&app(&config, "web", "999").stop(Some("123"))),
            "docker container ls --all --filter 'name=^app-web-123$' --quiet | xargs docker stop"
        );
        assert!(
            for_exec(&app(&config, "workers", "999").stop(Some("123")))
                .ends_with("xargs docker stop -t 20")
        );
    }

    #[test]
    fn current_running_version_extracts_from_the_name() {
        let config = load("servers: [1.1.1.1]\n", None);
        assert!(
            for_exec(&app(&config, "web", "999").current_running_version())
                .ends_with("--filter status=running --filter status=restarting' | head -1 | while read line; do echo ${line#app-web-}; done")
        );
    }

    #[test]
    fn proxy_deploy_like_kamal() {
        let config = load("servers: [1.1.1.1]\n", None);
        assert_eq!(
            for_exec(
                &app(&config, "web", "999")
                    .proxy_deploy("172.1.0.2")
                    .expect("proxy role")
            ),
            "docker exec kamal-proxy kamal-proxy deploy app-web --target=\"172.1.0.2:80\" --deploy-timeout=\"30s\" --drain-timeout=\"30s\" --buffer-requests --buffer-responses --log-request-header=\"Cache-Control\" --log-request-header=\"Last-Modified\" --log-request-header=\"User-Agent\""
        );
        let config = load(
            "servers: [1.1.1.1]\nproxy: {ssl: true, hosts: [example.com, other.com], healthcheck: {path: /health, interval: 2}, buffering: {responses: false}}\n",
            None,
        );
        assert_eq!(
            for_exec(
                &app(&config, "web", "999")
                    .proxy_deploy("abc")
                    .expect("proxy role")
            ),
            "docker exec kamal-proxy kamal-proxy deploy app-web --target=\"abc:80\" --host=\"example.com\" --host=\"other.com\" --tls --deploy-timeout=\"30s\" --drain-timeout=\"30s\" --health-check-interval=\"2s\" --health-check-path=\"/health\" --buffer-requests --buffer-responses=\"false\" --log-request-header=\"Cache-Control\" --log-request-header=\"Last-Modified\" --log-request-header=\"User-Agent\""
        );
    }

    #[test]
    fn proxy_management_like_kamal() {
        let config = load("servers: [1.1.1.1]\n", None);
        let app = app(&config, "web", "999");
        assert_eq!(
            for_exec(&app.proxy_remove()),
            "docker exec kamal-proxy kamal-proxy remove app-web"
        );
        assert_eq!(
            for_exec(&app.proxy_live()),
            "docker exec kamal-proxy kamal-proxy resume app-web"
        );
        assert_eq!(
            for_exec(&app.proxy_maintenance(Some(10), Some("Hi"))),
            "docker exec kamal-proxy kamal-proxy stop app-web --drain-timeout=\"10s\" --message=\"Hi\""
        );
    }

    #[test]
    fn exec_in_new_and_existing_containers() {
        let config = load("servers: [1.1.1.1]\n", None);
        let app = app(&config, "web", "999");
        let command = ["bin/rails".to_owned(), "db:setup".to_owned()];
        let env = [("foo".to_owned(), "bar".to_owned())];
        let exec = NewContainerExec {
            host: "1.1.1.1",
            command: &command,
            interactive: None,
            detach: false,
            env: &env,
            suffix: "abcdef",
        };
        assert_eq!(
            for_exec(&app.execute_in_new_container(&exec)),
            "docker run --rm --name app-web-exec-999-abcdef --network kamal --env-file .kamal/apps/app/env/roles/web.env --env foo=\"bar\" --log-opt max-size=\"10m\" dhh/app:999 bin/rails db:setup"
        );
        assert_eq!(
            for_exec(&app.execute_in_existing_container(&command, Some(true), &env)),
            "docker exec -it --env foo=\"bar\" app-web-999 bin/rails db:setup"
        );
    }

    #[test]
    fn containers_images_and_logs() {
        let config = load("servers: [1.1.1.1]\n", None);
        let app = app(&config, "web", "999");
        assert_eq!(
            for_exec(&app.rename_container("999", "999_replaced_abc")),
            "docker rename app-web-999 app-web-999_replaced_abc"
        );
        assert_eq!(
            for_exec(&app.remove_containers()),
            "docker container prune --force --filter label=service=app --filter label=destination= --filter label=role=web"
        );
        assert_eq!(
            for_exec(&app.remove_images()),
            "docker image prune --all --force --filter label=service=app"
        );
        assert_eq!(
            for_exec(&app.tag_latest_image()),
            "docker tag dhh/app:999 dhh/app:latest"
        );
        assert_eq!(
            for_exec(&app.status("999")),
            "docker container ls --all --filter 'name=^app-web-999$' --quiet | xargs docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}'"
        );
        let logs = LogOptions {
            container_id: Some("abc"),
            timestamps: true,
            since: Some("5m"),
            lines: Some(100),
            grep: Some("hey"),
            grep_options: None,
        };
        assert_eq!(
            for_exec(&app.logs(&logs)),
            "echo abc | xargs docker logs --timestamps --since 5m --tail 100 2>&1 | grep 'hey'"
        );
        assert_eq!(
            for_exec(&app.ensure_env_directory()),
            "mkdir -p .kamal/apps/app/env/roles"
        );
    }

    #[test]
    fn follow_logs_and_service_containers() {
        let config = load("servers: [1.1.1.1]\n", None);
        let web = app(&config, "web", "999");
        let current = "sh -c 'docker ps --latest --quiet --filter label=service=app --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=dhh/app:latest --format '\\''{{.ID}}'\\'') ; docker ps --latest --quiet --filter label=service=app --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting' | head -1";
        assert_eq!(
            for_exec(&web.follow_logs(&LogOptions {
                timestamps: true,
                lines: Some(10),
                ..LogOptions::default()
            })),
            format!("{current} | xargs docker logs --timestamps --tail 10 --follow 2>&1")
        );
        assert_eq!(
            for_exec(&web.follow_logs(&LogOptions {
                container_id: Some("abc123"),
                grep: Some("hey"),
                grep_options: Some("-i"),
                ..LogOptions::default()
            })),
            "echo abc123 | xargs docker logs --follow 2>&1 | grep \"hey\" -i"
        );
        assert_eq!(
            for_exec(&web.remove_proxy_app_directory()),
            "rm -r .kamal/proxy/apps-config/app"
        );
        assert_eq!(
            for_exec(&list_service_containers(&config)),
            "docker container ls --all --filter label=service=app --filter label=destination="
        );
        let staging = load(
            "servers: [1.1.1.1]\n",
            Some(("staging", "env: {clear: {A: b}}\n")),
        );
        assert_eq!(
            for_exec(&list_service_containers(&staging)),
            "docker container ls --all --filter label=service=app --filter label=destination=staging"
        );
        assert_eq!(
            for_exec(&app(&staging, "web", "999").remove_proxy_app_directory()),
            "rm -r .kamal/proxy/apps-config/app-staging"
        );
    }
}
