//! The proxy container on each host (Kamal 2.11's `commands/proxy.rb` with
//! `configuration/proxy/{run,boot}.rb`): `docker run` from `proxy.run` or from the legacy boot
//! files, start/stop, version, logs, removal and the `.kamal/proxy` directories. Without an
//! image setting the proxy is dhow's own image ([`DEFAULT_IMAGE`]); any image setting
//! (`proxy.run.registry`/`repository`/`version`, `.kamal/proxy/image`/`image_version`) resolves
//! as in Kamal. Also the commands that make sure the image is on the host before a container is
//! created from it.

use crate::cmd::Command;
use crate::config::ProxyRun;

use super::app::option_args;
use super::scope::RUN_DIRECTORY;

/// The proxy container's name.
pub const CONTAINER: &str = "kamal-proxy";
/// The oldest kamal-proxy image Kamal accepts.
pub const MINIMUM_VERSION: &str = "v0.9.2";
/// dhow's proxy image (`crates/proxy` on scratch, published with each release of dhow).
pub const DEFAULT_IMAGE: &str = "ghcr.io/dhow-deploy/kamal-proxy";
/// The tag of [`DEFAULT_IMAGE`]: the kamal-proxy version whose command line it answers (the
/// tag is what Kamal's minimum-version check reads).
pub const DEFAULT_VERSION: &str = "v0.9.2";
/// Kamal's default proxy repository, used whenever an image setting is given.
pub const KAMAL_IMAGE: &str = "basecamp/kamal-proxy";
const CONFIG_VOLUME: &str = "kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy";
const APPS_CONTAINER_DIRECTORY: &str = "/home/kamal-proxy/.apps-config";
const IMAGE_TITLE_FILTER: &str = "label=org.opencontainers.image.title=kamal-proxy";

/// `.kamal/proxy`.
pub fn host_directory() -> String {
    format!("{RUN_DIRECTORY}/proxy")
}

/// `.kamal/proxy/apps-config`, bind-mounted into the proxy.
pub fn apps_directory() -> String {
    format!("{}/apps-config", host_directory())
}

fn apps_volume_args() -> [String; 2] {
    [
        "--volume".to_owned(),
        format!("$PWD/{}:{APPS_CONTAINER_DIRECTORY}", apps_directory()),
    ]
}

/// `[ip:]port:80` and `[ip:]port:443` per bind IP (IPv6 in brackets).
fn publish_args(run: &ProxyRun) -> Vec<String> {
    if !run.publish() {
        return Vec::new();
    }
    let bind_ips = run.bind_ips();
    let ips: Vec<Option<String>> = if bind_ips.is_empty() {
        vec![None]
    } else {
        bind_ips.into_iter().map(Some).collect()
    };
    let mut words = Vec::new();
    for ip in ips {
        let prefix = ip
            .map(|ip| {
                if ip.contains(':') && !ip.starts_with('[') {
                    format!("[{ip}]:")
                } else {
                    format!("{ip}:")
                }
            })
            .unwrap_or_default();
        words.extend([
            "--publish".to_owned(),
            format!("{prefix}{}:80", run.http_port()),
            "--publish".to_owned(),
            format!("{prefix}{}:443", run.https_port()),
        ]);
    }
    words
}

/// `kamal-proxy run [--debug] [--metrics-port "<p>"]`.
fn run_command(run: &ProxyRun) -> Vec<String> {
    let mut words = vec!["kamal-proxy".to_owned(), "run".to_owned()];
    if run.debug() {
        words.push("--debug".to_owned());
    }
    if let Some(port) = run.metrics_port() {
        words.push("--metrics-port".to_owned());
        words.push(format!("\"{port}\""));
    }
    words
}

/// `docker run --name kamal-proxy ...` for a host: from `proxy.run` when the config has one,
/// else from the legacy boot files on the host (`.kamal/proxy/{options,image,...}`).
pub fn run(run: Option<&ProxyRun>) -> Command {
    let base = Command::from_words([
        "docker",
        "run",
        "--name",
        CONTAINER,
        "--network",
        "kamal",
        "--detach",
        "--restart",
        "unless-stopped",
        "--volume",
        CONFIG_VOLUME,
    ]);
    match run {
        Some(run) => {
            let mut command = base.args(apps_volume_args()).args(publish_args(run));
            let log_max_size = run.log_max_size();
            if !log_max_size.is_empty() {
                command =
                    command.args(["--log-opt".to_owned(), format!("max-size={log_max_size}")]);
            }
            if let Some(port) = run.metrics_port() {
                command = command.arg(format!("--expose={port}"));
            }
            command
                .args(option_args(run.options(), false))
                .arg(run.image())
                .args(run_command(run))
        }
        None => Command::combine(
            [
                boot_config(),
                Command::new("xargs")
                    .tokens(base.args(apps_volume_args()).as_tokens().iter().cloned()),
            ],
            "|",
        ),
    }
}

/// `<DEFAULT_IMAGE>:<DEFAULT_VERSION>`: the image dhow boots when nothing names another.
pub fn default_image() -> String {
    format!("{DEFAULT_IMAGE}:{DEFAULT_VERSION}")
}

fn read_boot_file(file: &str, default: &str) -> String {
    format!(
        "$(cat {}/{file} 2> /dev/null || echo \"{default}\")",
        host_directory()
    )
}

/// The legacy image read on the host: `.kamal/proxy/image`, else Kamal's
/// `basecamp/kamal-proxy` when an `image_version` file pins a version of it (Kamal's
/// `boot_config set --image-version` writes only that file), else dhow's image; then
/// `:` and the `image_version` file or [`DEFAULT_VERSION`].
fn read_boot_image() -> String {
    let directory = host_directory();
    format!(
        "$(cat {directory}/image 2> /dev/null || {{ test -f {directory}/image_version && echo \"{KAMAL_IMAGE}\"; }} || echo \"{DEFAULT_IMAGE}\"):{}",
        read_boot_file("image_version", DEFAULT_VERSION)
    )
}

/// `echo $(cat .kamal/proxy/options ...) $(cat image ...):$(cat image_version ...) $(cat run_command ...)`.
pub fn boot_config() -> Command {
    Command::from_words([
        "echo".to_owned(),
        format!(
            "{} {} {}",
            read_boot_file(
                "options",
                "--publish 80:80 --publish 443:443 --log-opt max-size=10m"
            ),
            read_boot_image(),
            read_boot_file("run_command", "")
        ),
    ])
}

/// `echo $(cat .kamal/proxy/image ...):$(cat .kamal/proxy/image_version ...)`: the image the
/// legacy `docker run` would use on this host.
pub fn boot_image() -> Command {
    Command::from_words(["echo".to_owned(), read_boot_image()])
}

/// `docker container ls --all --quiet --filter 'name=^kamal-proxy$'`: prints an id when a
/// proxy container exists (boot then starts it as it is).
pub fn container_exists() -> Command {
    Command::from_words([
        "docker",
        "container",
        "ls",
        "--all",
        "--quiet",
        "--filter",
        "'name=^kamal-proxy$'",
    ])
}

/// `docker image inspect --format '{{.Id}}' <image>`: succeeds when the host has the image.
pub fn image_present(image: &str) -> Command {
    Command::from_words(["docker", "image", "inspect", "--format", "'{{.Id}}'", image])
}

/// `docker pull <image>`.
pub fn pull_image(image: &str) -> Command {
    Command::from_words(["docker", "pull", image])
}

/// `docker load`: reads an image archive (`docker save`'s output) on standard input.
pub fn load_image() -> Command {
    Command::from_words(["docker", "load"])
}

/// `docker save <image>`: run locally, its output streamed to [`load_image`] on the host.
pub fn save_image(image: &str) -> Command {
    Command::from_words(["docker", "save", image])
}

/// `docker container start kamal-proxy`.
pub fn start() -> Command {
    Command::from_words(["docker", "container", "start", CONTAINER])
}

/// `docker container stop kamal-proxy`.
pub fn stop() -> Command {
    Command::from_words(["docker", "container", "stop", CONTAINER])
}

/// `docker container start kamal-proxy || docker run ...`: boot. An existing container is
/// started as it is (use reboot to change its settings).
pub fn start_or_run(config_run: Option<&ProxyRun>) -> Command {
    Command::combine([start(), run(config_run)], "||")
}

/// `docker ps --filter 'name=^kamal-proxy$'`.
pub fn info() -> Command {
    Command::from_words(["docker", "ps", "--filter", "'name=^kamal-proxy$'"])
}

/// The running proxy's image tag: `docker inspect kamal-proxy --format '{{.Config.Image}}' | awk -F: '{print $NF}'`.
pub fn version() -> Command {
    Command::combine(
        [
            Command::from_words([
                "docker",
                "inspect",
                CONTAINER,
                "--format '{{.Config.Image}}'",
            ]),
            Command::from_words(["awk", "-F:", "'{print $NF}'"]),
        ],
        "|",
    )
}

/// `docker logs kamal-proxy [--since S] [--tail N] [--timestamps] 2>&1 [| grep 'g' [opts]]`.
pub fn logs(
    timestamps: bool,
    since: Option<&str>,
    lines: Option<u32>,
    grep: Option<&str>,
    grep_options: Option<&str>,
) -> Command {
    let mut docker = Command::from_words(["docker", "logs", CONTAINER]);
    if let Some(since) = since {
        docker = docker.arg(format!("--since {since}"));
    }
    if let Some(lines) = lines {
        docker = docker.arg(format!("--tail {lines}"));
    }
    if timestamps {
        docker = docker.arg("--timestamps");
    }
    docker = docker.arg("2>&1");
    match grep {
        Some(grep) => {
            let mut text = format!("grep '{grep}'");
            if let Some(options) = grep_options {
                text.push(' ');
                text.push_str(options);
            }
            Command::combine([docker, Command::new(text)], "|")
        }
        None => docker,
    }
}

/// Removes the proxy container by its image-title label.
pub fn remove_container() -> Command {
    Command::from_words([
        "docker",
        "container",
        "prune",
        "--force",
        "--filter",
        IMAGE_TITLE_FILTER,
    ])
}

/// Removes the proxy image by its image-title label.
pub fn remove_image() -> Command {
    Command::from_words([
        "docker",
        "image",
        "prune",
        "--all",
        "--force",
        "--filter",
        IMAGE_TITLE_FILTER,
    ])
}

/// `mkdir -p .kamal/proxy`.
pub fn ensure_proxy_directory() -> Command {
    Command::from_words(["mkdir".to_owned(), "-p".to_owned(), host_directory()])
}

/// `mkdir -p .kamal/proxy/apps-config`.
pub fn ensure_apps_config_directory() -> Command {
    Command::from_words(["mkdir".to_owned(), "-p".to_owned(), apps_directory()])
}

/// `rm -r .kamal/proxy`.
pub fn remove_proxy_directory() -> Command {
    Command::from_words(["rm".to_owned(), "-r".to_owned(), host_directory()])
}

/// `rm -r .kamal/proxy/apps-config/<svc>[-<dest>]`: the app's error pages and TLS files.
pub fn remove_app_directory(service_and_destination: &str) -> Command {
    Command::from_words([
        "rm".to_owned(),
        "-r".to_owned(),
        format!("{}/{service_and_destination}", apps_directory()),
    ])
}

/// `docker volume rm kamal-proxy-config`: the proxy's state, once no proxy is left to use it
/// (Kamal's `proxy remove` leaves the volume behind).
pub fn remove_config_volume() -> Command {
    Command::from_words(["docker", "volume", "rm", "kamal-proxy-config"])
}

/// Whether the running proxy's version (e.g. `v0.9.1`) is older than the minimum Kamal accepts.
pub fn older_than_minimum(version: &str) -> bool {
    let parse = |text: &str| -> Vec<u64> {
        text.trim()
            .trim_start_matches('v')
            .split('.')
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    };
    parse(version) < parse(MINIMUM_VERSION)
}

/// `docker logs kamal-proxy [--timestamps] --tail 10 --follow 2>&1 [| grep "g" [opts]]`: the
/// remote half of `proxy logs --follow`, run through `ssh -t`.
pub fn follow_logs(timestamps: bool, grep: Option<&str>, grep_options: Option<&str>) -> Command {
    let mut docker = Command::from_words(["docker", "logs", CONTAINER]);
    if timestamps {
        docker = docker.arg("--timestamps");
    }
    docker = docker.args(["--tail", "10", "--follow", "2>&1"]);
    match grep {
        Some(grep) => {
            let mut text = format!("grep \"{grep}\"");
            if let Some(options) = grep_options {
                text.push(' ');
                text.push_str(options);
            }
            Command::combine([docker, Command::new(text)], "|")
        }
        None => docker,
    }
}

/// The legacy boot-config files under `.kamal/proxy` that `proxy boot_config set` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootFile {
    Options,
    Image,
    ImageVersion,
    RunCommand,
}

impl BootFile {
    /// Every file, in the order `boot_config set`/`reset` handle them.
    pub const ALL: [BootFile; 4] = [
        BootFile::Options,
        BootFile::Image,
        BootFile::ImageVersion,
        BootFile::RunCommand,
    ];

    /// `.kamal/proxy/<name>`.
    pub fn path(self) -> String {
        let name = match self {
            BootFile::Options => "options",
            BootFile::Image => "image",
            BootFile::ImageVersion => "image_version",
            BootFile::RunCommand => "run_command",
        };
        format!("{}/{name}", host_directory())
    }

    /// `rm .kamal/proxy/<name>` (Kamal's `reset_boot_options`, `reset_image`, ...).
    pub fn reset(self) -> Command {
        Command::from_words(["rm".to_owned(), self.path()])
    }
}

/// What `proxy boot_config set` was given (Kamal's defaults: publish on, 80/443, `10m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfigSet {
    pub publish: bool,
    pub publish_host_ips: Vec<String>,
    pub http_port: u16,
    pub https_port: u16,
    pub log_max_size: String,
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub image_version: Option<String>,
    pub metrics_port: Option<u16>,
    pub debug: bool,
    pub docker_options: Vec<String>,
}

impl Default for BootConfigSet {
    fn default() -> Self {
        Self {
            publish: true,
            publish_host_ips: Vec::new(),
            http_port: 80,
            https_port: 443,
            log_max_size: "10m".to_owned(),
            registry: None,
            repository: None,
            image_version: None,
            metrics_port: None,
            debug: false,
            docker_options: Vec::new(),
        }
    }
}

/// The contents `boot_config set` leaves in each boot file: `Some(text)` to upload, `None` to
/// remove the file (the value is Kamal's default, which the legacy `docker run` falls back to).
/// A publish IP that is not an IPv4 or IPv6 address is refused, as Kamal does.
pub fn boot_config_files(set: &BootConfigSet) -> Result<Vec<(BootFile, Option<String>)>, String> {
    let mut options = Vec::new();
    if set.publish {
        let ips: Vec<Option<String>> = if set.publish_host_ips.is_empty() {
            vec![None]
        } else {
            let mut ips = Vec::new();
            for ip in &set.publish_host_ips {
                let bare = ip.trim_start_matches('[').trim_end_matches(']');
                match bare.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V6(_)) if !ip.starts_with('[') => {
                        ips.push(Some(format!("[{ip}]")));
                    }
                    Ok(std::net::IpAddr::V4(_)) if ip == bare => ips.push(Some(ip.clone())),
                    Ok(std::net::IpAddr::V6(_)) => ips.push(Some(ip.clone())),
                    _ => return Err(format!("Invalid publish IP address: {ip}")),
                }
            }
            ips
        };
        let publish: Vec<String> = ips
            .iter()
            .map(|ip| {
                let prefix = ip.as_ref().map(|ip| format!("{ip}:")).unwrap_or_default();
                format!(
                    "--publish {prefix}{}:80 --publish {prefix}{}:443",
                    set.http_port, set.https_port
                )
            })
            .collect();
        options.push(publish.join(" "));
    }
    if !set.log_max_size.is_empty() {
        options.push("--log-opt".to_owned());
        options.push(format!("max-size={}", set.log_max_size));
    }
    if let Some(port) = set.metrics_port {
        options.push(format!("--expose={port}"));
    }
    options.extend(
        set.docker_options
            .iter()
            .map(|option| format!("--{option}")),
    );
    let options = options.join(" ");
    let default_options = "--publish 80:80 --publish 443:443 --log-opt max-size=10m";

    let registry = set.registry.clone().filter(|r| !r.is_empty());
    let names_image = registry.is_some() || set.repository.as_ref().is_some_and(|r| !r.is_empty());
    let image = [
        registry,
        Some(
            set.repository
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "basecamp".to_owned()),
        ),
        Some("kamal-proxy".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");

    let mut run_options = Vec::new();
    if set.debug {
        run_options.push("--debug".to_owned());
    }
    if let Some(port) = set.metrics_port {
        run_options.push(format!("--metrics-port \"{port}\""));
    }
    let run_command =
        (!run_options.is_empty()).then(|| format!("kamal-proxy run {}", run_options.join(" ")));

    Ok(vec![
        (
            BootFile::Options,
            (options != default_options).then_some(options),
        ),
        // Kamal drops the file when it names `basecamp/kamal-proxy`, its default; dhow's default
        // is its own image, so a named repository or registry is always written (Kamal reads
        // the written `basecamp/kamal-proxy` as its default, so both tools run the same image).
        (BootFile::Image, names_image.then_some(image)),
        (BootFile::ImageVersion, set.image_version.clone()),
        (BootFile::RunCommand, run_command),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;
    use crate::config::{Node, Value, yaml};

    fn proxy_run(yaml_text: &str) -> ProxyRun {
        let node = yaml::parse(yaml_text, "run.yml", None)
            .expect("yaml")
            .unwrap_or_else(|| Node::synthetic(Value::Null));
        ProxyRun { raw: node }
    }

    #[test]
    fn run_with_proxy_run_config() {
        let run = proxy_run("registry: registry:4443\n");
        assert_eq!(
            for_exec(&super::run(Some(&run))),
            "docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config --publish 80:80 --publish 443:443 --log-opt max-size=10m registry:4443/basecamp/kamal-proxy:v0.9.2 kamal-proxy run"
        );
    }

    #[test]
    fn run_variants() {
        let bind = for_exec(&run(Some(&proxy_run(
            "bind_ips: [0.0.0.0, 127.0.0.1, \"::1\"]\n",
        ))));
        assert!(
            bind.contains("--publish 0.0.0.0:80:80 --publish 0.0.0.0:443:443 --publish 127.0.0.1:80:80 --publish 127.0.0.1:443:443 --publish [::1]:80:80 --publish [::1]:443:443"),
            "{bind}"
        );
        let metrics = for_exec(&run(Some(&proxy_run("metrics_port: 9090\ndebug: true\n"))));
        assert!(metrics.contains("--log-opt max-size=10m --expose=9090 ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 kamal-proxy run --debug --metrics-port \"9090\""), "{metrics}");
        let unpublished = for_exec(&run(Some(&proxy_run("publish: false\n"))));
        assert!(!unpublished.contains("--publish"), "{unpublished}");
        let options = for_exec(&run(Some(&proxy_run(
            "options: {label: [a, b], memory: 1g}\n",
        ))));
        assert!(options.contains("--log-opt max-size=10m --label \"a\" --label \"b\" --memory \"1g\" ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"), "{options}");
        // HTTP/3 as the proxy's README configures it: the UDP port published and the proxy's
        // variable set, both through `options` (Kamal renders them the same way).
        let http3 = for_exec(&run(Some(&proxy_run(
            "options: {publish: \"443:443/udp\", env: KAMAL_PROXY_HTTP3=true}\n",
        ))));
        assert!(http3.contains("--publish 80:80 --publish 443:443 --log-opt max-size=10m --publish \"443:443/udp\" --env \"KAMAL_PROXY_HTTP3=true\" ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 kamal-proxy run"), "{http3}");
    }

    #[test]
    fn run_image_resolution() {
        let image = |yaml_text: &str| proxy_run(yaml_text).image();
        // Nothing names an image: dhow's own.
        assert_eq!(
            image("http_port: 8080\n"),
            "ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"
        );
        assert_eq!(
            for_exec(&run(Some(&proxy_run("bind_ips: [127.0.0.1]\n")))),
            "docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config --publish 127.0.0.1:80:80 --publish 127.0.0.1:443:443 --log-opt max-size=10m ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 kamal-proxy run"
        );
        // Any image setting: Kamal's resolution and defaults.
        assert_eq!(image("version: v0.9.3\n"), "basecamp/kamal-proxy:v0.9.3");
        assert_eq!(image("version: v0.9.2\n"), "basecamp/kamal-proxy:v0.9.2");
        assert_eq!(
            image("registry: registry:4443\n"),
            "registry:4443/basecamp/kamal-proxy:v0.9.2"
        );
        assert_eq!(
            image("repository: basecamp/kamal-proxy\n"),
            "basecamp/kamal-proxy:v0.9.2"
        );
        assert_eq!(
            image("registry: r:5000\nrepository: dhow/kamal-proxy\nversion: v0.9.4\n"),
            "r:5000/dhow/kamal-proxy:v0.9.4"
        );
        assert_eq!(
            image("registry: ~\n"),
            "ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"
        );
        assert_eq!(default_image(), "ghcr.io/dhow-deploy/kamal-proxy:v0.9.2");
        assert!(!older_than_minimum(DEFAULT_VERSION));
    }

    #[test]
    fn the_default_version_agrees_with_the_proxy_the_build_script_and_the_release() {
        // The proxy answers this version's contract, the script tags it, the release reads it.
        let proxy_cli = include_str!("../../../proxy/src/cli.rs");
        assert!(proxy_cli.contains(&format!(
            "pub const COMPATIBLE_VERSION: &str = \"{DEFAULT_VERSION}\";"
        )));
        let script = include_str!("../../../../scripts/build-proxy-image");
        assert!(script.contains(&format!("version=${{PROXY_VERSION:-{DEFAULT_VERSION}}}")));
        assert!(script.contains(&format!("default_image={DEFAULT_IMAGE}\n")));
        let release = include_str!("../../../../.github/workflows/release.yml");
        assert!(release.contains(
            "sed -n 's/^pub const DEFAULT_VERSION: &str = \"\\(.*\\)\";$/\\1/p' crates/core/src/docker/proxy.rs"
        ));
        assert!(release.contains(&format!("image={DEFAULT_IMAGE}\n")));
        assert!(include_str!("proxy.rs").contains(&format!(
            "pub const DEFAULT_VERSION: &str = \"{DEFAULT_VERSION}\";"
        )));
    }

    #[test]
    fn image_transfer_commands() {
        assert_eq!(
            for_exec(&boot_image()),
            "echo $(cat .kamal/proxy/image 2> /dev/null || { test -f .kamal/proxy/image_version && echo \"basecamp/kamal-proxy\"; } || echo \"ghcr.io/dhow-deploy/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\")"
        );
        assert_eq!(
            for_exec(&container_exists()),
            "docker container ls --all --quiet --filter 'name=^kamal-proxy$'"
        );
        assert_eq!(
            for_exec(&image_present("ghcr.io/dhow-deploy/kamal-proxy:v0.9.2")),
            "docker image inspect --format '{{.Id}}' ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"
        );
        assert_eq!(
            for_exec(&pull_image("ghcr.io/dhow-deploy/kamal-proxy:v0.9.2")),
            "docker pull ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"
        );
        assert_eq!(for_exec(&load_image()), "docker load");
        assert_eq!(
            for_exec(&save_image("ghcr.io/dhow-deploy/kamal-proxy:v0.9.2")),
            "docker save ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"
        );
    }

    #[test]
    fn legacy_run_reads_the_boot_files() {
        assert_eq!(
            for_exec(&run(None)),
            "echo $(cat .kamal/proxy/options 2> /dev/null || echo \"--publish 80:80 --publish 443:443 --log-opt max-size=10m\") $(cat .kamal/proxy/image 2> /dev/null || { test -f .kamal/proxy/image_version && echo \"basecamp/kamal-proxy\"; } || echo \"ghcr.io/dhow-deploy/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\") $(cat .kamal/proxy/run_command 2> /dev/null || echo \"\") | xargs docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config"
        );
    }

    #[test]
    fn maintenance_commands() {
        assert!(
            for_exec(&start_or_run(None))
                .starts_with("docker container start kamal-proxy || echo ")
        );
        assert_eq!(for_exec(&stop()), "docker container stop kamal-proxy");
        assert_eq!(for_exec(&info()), "docker ps --filter 'name=^kamal-proxy$'");
        assert_eq!(
            for_exec(&version()),
            "docker inspect kamal-proxy --format '{{.Config.Image}}' | awk -F: '{print $NF}'"
        );
        assert_eq!(
            for_exec(&logs(true, Some("2h"), Some(10), Some("x"), None)),
            "docker logs kamal-proxy --since 2h --tail 10 --timestamps 2>&1 | grep 'x'"
        );
        assert_eq!(
            for_exec(&remove_container()),
            "docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy"
        );
        assert_eq!(
            for_exec(&remove_image()),
            "docker image prune --all --force --filter label=org.opencontainers.image.title=kamal-proxy"
        );
        assert_eq!(
            for_exec(&ensure_apps_config_directory()),
            "mkdir -p .kamal/proxy/apps-config"
        );
        assert_eq!(for_exec(&remove_proxy_directory()), "rm -r .kamal/proxy");
    }

    #[test]
    fn remove_app_directory_and_config_volume() {
        assert_eq!(
            for_exec(&remove_app_directory("app-staging")),
            "rm -r .kamal/proxy/apps-config/app-staging"
        );
        assert_eq!(
            for_exec(&remove_config_volume()),
            "docker volume rm kamal-proxy-config"
        );
    }

    #[test]
    fn minimum_version() {
        assert!(older_than_minimum("v0.9.1"));
        assert!(older_than_minimum("v0.8.7"));
        assert!(!older_than_minimum("v0.9.2"));
        assert!(!older_than_minimum("v0.10.0"));
    }

    #[test]
    fn follow_logs_commands() {
        assert_eq!(
            for_exec(&follow_logs(true, None, None)),
            "docker logs kamal-proxy --timestamps --tail 10 --follow 2>&1"
        );
        assert_eq!(
            for_exec(&follow_logs(false, Some("hey"), Some("-i"))),
            "docker logs kamal-proxy --tail 10 --follow 2>&1 | grep \"hey\" -i"
        );
    }

    #[test]
    fn boot_config_files_and_resets() {
        assert_eq!(
            for_exec(&boot_config()),
            "echo $(cat .kamal/proxy/options 2> /dev/null || echo \"--publish 80:80 --publish 443:443 --log-opt max-size=10m\") $(cat .kamal/proxy/image 2> /dev/null || { test -f .kamal/proxy/image_version && echo \"basecamp/kamal-proxy\"; } || echo \"ghcr.io/dhow-deploy/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\") $(cat .kamal/proxy/run_command 2> /dev/null || echo \"\")"
        );
        let resets: Vec<String> = BootFile::ALL
            .iter()
            .map(|file| for_exec(&file.reset()))
            .collect();
        assert_eq!(
            resets,
            [
                "rm .kamal/proxy/options",
                "rm .kamal/proxy/image",
                "rm .kamal/proxy/image_version",
                "rm .kamal/proxy/run_command"
            ]
        );
        assert_eq!(for_exec(&ensure_proxy_directory()), "mkdir -p .kamal/proxy");

        // The defaults write nothing: every file is removed.
        let defaults = boot_config_files(&BootConfigSet::default()).expect("valid");
        assert!(defaults.iter().all(|(_, contents)| contents.is_none()));

        let custom = boot_config_files(&BootConfigSet {
            publish_host_ips: vec!["127.0.0.1".to_owned(), "::1".to_owned()],
            http_port: 8080,
            https_port: 8443,
            log_max_size: "100m".to_owned(),
            registry: Some("registry:4443".to_owned()),
            repository: Some("dhow".to_owned()),
            image_version: Some("v0.9.3".to_owned()),
            metrics_port: Some(9090),
            debug: true,
            docker_options: vec!["sysctl net.ipv4.ip_unprivileged_port_start=0".to_owned()],
            ..BootConfigSet::default()
        })
        .expect("valid");
        assert_eq!(
            custom,
            vec![
                (
                    BootFile::Options,
                    Some("--publish 127.0.0.1:8080:80 --publish 127.0.0.1:8443:443 --publish [::1]:8080:80 --publish [::1]:8443:443 --log-opt max-size=100m --expose=9090 --sysctl net.ipv4.ip_unprivileged_port_start=0".to_owned())
                ),
                (BootFile::Image, Some("registry:4443/dhow/kamal-proxy".to_owned())),
                (BootFile::ImageVersion, Some("v0.9.3".to_owned())),
                (
                    BootFile::RunCommand,
                    Some("kamal-proxy run --debug --metrics-port \"9090\"".to_owned())
                ),
            ]
        );
        // A named repository is written even when it is Kamal's default.
        let basecamp = boot_config_files(&BootConfigSet {
            repository: Some("basecamp".to_owned()),
            image_version: Some("v0.9.3".to_owned()),
            ..BootConfigSet::default()
        })
        .expect("valid");
        assert_eq!(
            basecamp[1..3],
            [
                (BootFile::Image, Some("basecamp/kamal-proxy".to_owned())),
                (BootFile::ImageVersion, Some("v0.9.3".to_owned())),
            ]
        );
        let unpublished = boot_config_files(&BootConfigSet {
            publish: false,
            ..BootConfigSet::default()
        })
        .expect("valid");
        assert_eq!(
            unpublished[0],
            (BootFile::Options, Some("--log-opt max-size=10m".to_owned()))
        );
        assert_eq!(
            boot_config_files(&BootConfigSet {
                publish_host_ips: vec!["example.com".to_owned()],
                ..BootConfigSet::default()
            }),
            Err("Invalid publish IP address: example.com".to_owned())
        );
    }
}
