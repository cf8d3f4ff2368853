//! The validated, typed configuration (Kamal's `Configuration` and its section classes): every
//! key with its default, the derived values, and the accessors commands need. Secrets appear only
//! as names.

use super::yaml::{Key, Node, Value};

/// A host of a role with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Host name or address.
    pub name: String,
    /// Tags, in the order written.
    pub tags: Vec<String>,
}

/// A secret referenced by an env: the variable set in the container and the secret it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Name of the variable in the container.
    pub name: String,
    /// Name of the secret (`DB_PASSWORD:MAIN_DB_PASSWORD` reads `MAIN_DB_PASSWORD`).
    pub secret: String,
}

/// An env (root, role, tag or accessory): clear values and secret names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// Clear values, in order (numbers and booleans as Ruby prints them).
    pub clear: Vec<(String, String)>,
    /// Secret entries as written (`NAME` or `NAME:SECRET`), unique, in order.
    pub secret_keys: Vec<String>,
}

impl Env {
    pub(crate) fn from_node(node: Option<&Node>) -> Env {
        let Some(node) = node.filter(|n| n.as_map().is_some()) else {
            return Env::default();
        };
        let complex = node.has("secret") || node.has("tags") || node.has("clear");
        let clear_node = if complex {
            node.get("clear")
        } else {
            Some(node)
        };
        let clear = clear_node
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.name.clone(), v.to_ruby_string().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let secret_keys = node
            .get("secret")
            .and_then(Node::as_seq)
            .map(|s| s.iter().filter_map(Node::to_ruby_string).collect())
            .unwrap_or_default();
        Env { clear, secret_keys }
    }

    /// Kamal's `Env#merge`: clear values merged (later wins), secret names unioned.
    #[must_use]
    pub fn merge(&self, other: &Env) -> Env {
        let mut clear = self.clear.clone();
        for (k, v) in &other.clear {
            if let Some(slot) = clear.iter_mut().find(|(ck, _)| ck == k) {
                slot.1.clone_from(v);
            } else {
                clear.push((k.clone(), v.clone()));
            }
        }
        let mut secret_keys = self.secret_keys.clone();
        for s in &other.secret_keys {
            if !secret_keys.contains(s) {
                secret_keys.push(s.clone());
            }
        }
        Env { clear, secret_keys }
    }

    /// The secrets with aliases resolved (split on the first `:`).
    pub fn secrets(&self) -> Vec<SecretRef> {
        let mut out: Vec<SecretRef> = Vec::new();
        for key in &self.secret_keys {
            let (name, secret) = key.split_once(':').unwrap_or((key, key));
            let entry = SecretRef {
                name: name.to_string(),
                secret: secret.to_string(),
            };
            if let Some(slot) = out.iter_mut().find(|s| s.name == entry.name) {
                *slot = entry;
            } else {
                out.push(entry);
            }
        }
        out
    }
}

/// A registry credential: clear text, or the name of a secret (`[NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Written in the config (possibly by ERB).
    Clear(String),
    /// A secret name to look up.
    Secret(String),
}

/// `registry` (root or accessory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    /// Server, `None` for Docker Hub.
    pub server: Option<String>,
    /// Username.
    pub username: Option<Credential>,
    /// Password.
    pub password: Option<Credential>,
}

impl Registry {
    pub(crate) fn from_node(node: Option<&Node>) -> Registry {
        let Some(node) = node else {
            return Registry::default();
        };
        let cred = |key: &str| -> Option<Credential> {
            let v = node.get(key)?;
            match &v.value {
                Value::Seq(items) => items
                    .first()
                    .and_then(Node::to_ruby_string)
                    .map(Credential::Secret),
                _ => v
                    .to_ruby_string()
                    .filter(|_| !v.is_null())
                    .map(Credential::Clear),
            }
        };
        Registry {
            server: node
                .get("server")
                .filter(|n| !n.is_null())
                .and_then(Node::to_ruby_string),
            username: cred("username"),
            password: cred("password"),
        }
    }

    /// A local registry (`localhost:<port>`): run on the deploying machine, no login.
    pub fn is_local(&self) -> bool {
        self.server
            .as_deref()
            .is_some_and(super::validate::is_local_registry)
    }

    /// The port of a local registry.
    pub fn local_port(&self) -> Option<u16> {
        if !self.is_local() {
            return None;
        }
        Some(
            self.server
                .as_deref()?
                .rsplit(':')
                .next()?
                .parse()
                .unwrap_or(0),
        )
    }
}

/// `logging` (root, or role merged over root).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logging {
    /// The raw logging map (for deep merges).
    pub raw: Option<Node>,
}

impl Logging {
    /// `driver`.
    pub fn driver(&self) -> Option<String> {
        self.raw
            .as_ref()?
            .get("driver")
            .filter(|n| n.is_present())
            .and_then(Node::to_ruby_string)
    }

    /// `options`, in order.
    pub fn options(&self) -> Vec<(String, Node)> {
        self.raw
            .as_ref()
            .and_then(|r| r.get("options"))
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|(k, v)| (k.name.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Deep merge of `other` over `self`.
    #[must_use]
    pub fn merge(&self, other: &Logging) -> Logging {
        match (&self.raw, &other.raw) {
            (Some(a), Some(b)) => Logging {
                raw: Some(a.deep_merge(b)),
            },
            (None, Some(b)) => Logging {
                raw: Some(b.clone()),
            },
            (a, None) => Logging { raw: a.clone() },
        }
    }

    /// Kamal's `Logging#args` as argv words (`--log-driver "json"`, `--log-opt k="v"`; default
    /// `--log-opt max-size="10m"`).
    pub fn args(&self) -> Vec<String> {
        let driver = self.driver();
        let options = self.options();
        let options_present = self
            .raw
            .as_ref()
            .and_then(|r| r.get("options"))
            .is_some_and(Node::is_present);
        if driver.is_some() || options_present {
            let mut out = Vec::new();
            if let Some(d) = driver {
                out.push("--log-driver".to_string());
                out.push(super::view::escape_shell_value(&d));
            }
            out.extend(super::view::argumentize("--log-opt", &options));
            out
        } else {
            vec!["--log-opt".into(), "max-size=\"10m\"".into()]
        }
    }
}

/// Proxy TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ssl {
    /// No TLS.
    Off,
    /// Automatic Let's Encrypt certificates.
    Automatic,
    /// Custom certificates from two secrets.
    Custom {
        /// Secret holding the certificate PEM.
        certificate_pem: String,
        /// Secret holding the private key PEM.
        private_key_pem: String,
    },
}

/// `proxy.run`: the proxy container's own options.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyRun {
    /// The raw map (compared per host for conflicts).
    pub raw: Node,
}

impl ProxyRun {
    fn int(&self, key: &str, default: i64) -> i64 {
        self.raw.get(key).and_then(Node::as_int).unwrap_or(default)
    }

    /// `http_port` (80).
    pub fn http_port(&self) -> i64 {
        self.int("http_port", 80)
    }

    /// `https_port` (443).
    pub fn https_port(&self) -> i64 {
        self.int("https_port", 443)
    }

    /// `metrics_port`.
    pub fn metrics_port(&self) -> Option<i64> {
        self.raw.get("metrics_port").and_then(Node::as_int)
    }

    /// `publish` (true).
    pub fn publish(&self) -> bool {
        self.raw
            .get("publish")
            .and_then(Node::as_bool)
            .unwrap_or(true)
    }

    /// `debug` (false).
    pub fn debug(&self) -> bool {
        self.raw
            .get("debug")
            .and_then(Node::as_bool)
            .unwrap_or(false)
    }

    /// `bind_ips`.
    pub fn bind_ips(&self) -> Vec<String> {
        strings(self.raw.get("bind_ips"))
    }

    /// `log_max_size` (`10m`).
    pub fn log_max_size(&self) -> String {
        self.raw
            .get("log_max_size")
            .and_then(Node::to_ruby_string)
            .unwrap_or_else(|| "10m".into())
    }

    /// Whether `proxy.run` names an image (`registry`, `repository` or `version`).
    pub fn names_image(&self) -> bool {
        ["registry", "repository", "version"]
            .iter()
            .any(|key| self.raw.get(key).is_some_and(|node| !node.is_null()))
    }

    /// The proxy image. Without `registry`, `repository` and `version`, dhow's own image
    /// ([`crate::docker::proxy::DEFAULT_IMAGE`]); with any of them, Kamal's resolution
    /// `[<registry>/]<repository>:<version>` with its defaults (`basecamp/kamal-proxy`, `v0.9.2`).
    pub fn image(&self) -> String {
        if !self.names_image() {
            return crate::docker::proxy::default_image();
        }
        let repository = self
            .raw
            .get("repository")
            .and_then(Node::to_ruby_string)
            .unwrap_or_else(|| crate::docker::proxy::KAMAL_IMAGE.into());
        let version = self
            .raw
            .get("version")
            .and_then(Node::to_ruby_string)
            .unwrap_or_else(|| crate::docker::proxy::MINIMUM_VERSION.into());
        match self
            .raw
            .get("registry")
            .filter(|n| !n.is_null())
            .and_then(Node::to_ruby_string)
        {
            Some(r) => format!("{r}/{repository}:{version}"),
            None => format!("{repository}:{version}"),
        }
    }

    /// `options` (extra `docker run` flags).
    pub fn options(&self) -> Option<&Node> {
        self.raw.get("options")
    }
}

/// `proxy` (root, per role merged over the root, or per accessory).
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    /// The raw (merged) map.
    pub raw: Node,
    /// The role this proxy is for, when it is a role's.
    pub role: Option<String>,
}

impl Proxy {
    fn get(&self, key: &str) -> Option<&Node> {
        self.raw.get(key).filter(|n| !n.is_null())
    }

    /// `hosts`, or `host` split on commas.
    pub fn hosts(&self) -> Vec<String> {
        if let Some(hosts) = self.get("hosts") {
            return strings(Some(hosts));
        }
        self.get("host")
            .and_then(Node::to_ruby_string)
            .map(|h| {
                h.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `app_port` (80).
    pub fn app_port(&self) -> i64 {
        self.get("app_port").and_then(Node::as_int).unwrap_or(80)
    }

    /// TLS mode.
    pub fn ssl(&self) -> Ssl {
        match self.get("ssl") {
            Some(n) if n.as_map().is_some() => {
                let cert = n
                    .get("certificate_pem")
                    .filter(|v| v.is_present())
                    .and_then(Node::to_ruby_string);
                let key = n
                    .get("private_key_pem")
                    .filter(|v| v.is_present())
                    .and_then(Node::to_ruby_string);
                match (cert, key) {
                    (Some(certificate_pem), Some(private_key_pem)) => Ssl::Custom {
                        certificate_pem,
                        private_key_pem,
                    },
                    _ => Ssl::Automatic,
                }
            }
            Some(n) if n.is_truthy() => Ssl::Automatic,
            _ => Ssl::Off,
        }
    }

    /// Whether TLS is on.
    pub fn ssl_enabled(&self) -> bool {
        self.ssl() != Ssl::Off
    }

    /// `path_prefixes`, or `path_prefix` split on commas.
    pub fn path_prefixes(&self) -> Vec<String> {
        if let Some(p) = self.get("path_prefixes") {
            return strings(Some(p));
        }
        self.get("path_prefix")
            .and_then(Node::to_ruby_string)
            .map(|h| {
                h.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A boolean setting (`ssl_redirect`, `forward_headers`, `strip_path_prefix`), unset = proxy default.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Node::as_bool)
    }

    /// An integer setting under a section, e.g. `("healthcheck", "interval")` or `("", "response_timeout")`.
    pub fn int(&self, section: &str, key: &str) -> Option<i64> {
        let node = if section.is_empty() {
            self.get(key)
        } else {
            self.get(section)?.get(key)
        };
        node.and_then(Node::as_int)
    }

    /// `healthcheck.path`.
    pub fn healthcheck_path(&self) -> Option<String> {
        self.get("healthcheck")?
            .get("path")
            .and_then(Node::to_ruby_string)
    }

    /// `buffering.requests` / `buffering.responses` (true).
    pub fn buffering(&self, key: &str) -> bool {
        self.get("buffering")
            .and_then(|b| b.get(key))
            .and_then(Node::as_bool)
            .unwrap_or(true)
    }

    /// `logging.request_headers` (Cache-Control, Last-Modified, User-Agent).
    pub fn log_request_headers(&self) -> Vec<String> {
        match self
            .get("logging")
            .and_then(|l| l.get("request_headers"))
            .filter(|n| !n.is_null())
        {
            Some(n) => strings(Some(n)),
            None => vec![
                "Cache-Control".into(),
                "Last-Modified".into(),
                "User-Agent".into(),
            ],
        }
    }

    /// `logging.response_headers`.
    pub fn log_response_headers(&self) -> Vec<String> {
        strings(self.get("logging").and_then(|l| l.get("response_headers")))
    }

    /// `run`, when present.
    pub fn run(&self) -> Option<ProxyRun> {
        self.get("run")
            .filter(|r| r.is_present())
            .map(|raw| ProxyRun { raw: raw.clone() })
    }
}

/// A role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Hosts with tags, in order (unique).
    pub hosts: Vec<Host>,
    /// `cmd`.
    pub cmd: Option<String>,
    /// `options` (extra `docker run` flags).
    pub options: Option<Node>,
    /// The role's own env (merged with the root env and tags per host by [`Role::env_for`]).
    pub specialized_env: Env,
    /// Root logging with the role's merged over it.
    pub logging: Logging,
    /// The role's proxy (role map merged over the root), when the role runs the proxy.
    pub proxy: Option<Proxy>,
    /// `asset_path` (role, else root), split into path and mount options.
    pub asset_path: Option<(String, Option<String>)>,
    /// Custom labels: root labels, then the role's.
    pub custom_labels: Vec<(String, String)>,
    /// Whether this is the primary role.
    pub primary: bool,
}

impl Role {
    /// The first host.
    pub fn primary_host(&self) -> Option<&str> {
        self.hosts.first().map(|h| h.name.as_str())
    }

    /// Host names.
    pub fn host_names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// Whether the role runs behind the proxy.
    pub fn running_proxy(&self) -> bool {
        self.proxy.is_some()
    }

    /// Whether the role runs the proxy with TLS.
    pub fn ssl(&self) -> bool {
        self.proxy.as_ref().is_some_and(Proxy::ssl_enabled)
    }
}

/// A file or directory mount of an accessory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMount {
    /// Local path as written.
    pub local: String,
    /// Path inside the container.
    pub remote: String,
    /// Mount options (`ro`, `z`, ...).
    pub options: Option<String>,
    /// Mode (files default to `755`).
    pub mode: Option<String>,
    /// Owner.
    pub owner: Option<String>,
}

/// An accessory.
#[derive(Debug, Clone, PartialEq)]
pub struct Accessory {
    /// Name (the key under `accessories`).
    pub name: String,
    /// Container name and `service` label (`<svc>-<name>` by default).
    pub service_name: String,
    /// Image, prefixed with the accessory registry's server when it has one.
    pub image: String,
    /// Its own registry.
    pub registry: Option<Registry>,
    /// Hosts from `host`, `hosts`, `role(s)` or `tag(s)`.
    pub hosts: Vec<String>,
    /// `cmd`.
    pub cmd: Option<String>,
    /// `--publish` value (`3306` becomes `3306:3306`).
    pub port: Option<String>,
    /// Labels: `service=` then the custom ones.
    pub labels: Vec<(String, String)>,
    /// `options`.
    pub options: Option<Node>,
    /// Env.
    pub env: Env,
    /// `files`.
    pub files: Vec<PathMount>,
    /// `directories`.
    pub directories: Vec<PathMount>,
    /// `volumes`.
    pub volumes: Vec<String>,
    /// `network` (`kamal`).
    pub network: String,
    /// `proxy`.
    pub proxy: Option<Proxy>,
}

/// `boot.limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootLimit {
    /// A host count.
    Count(i64),
    /// A percentage of all hosts.
    Percent(i64),
}

/// `boot`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boot {
    /// `limit`.
    pub limit: Option<BootLimit>,
    /// `wait` seconds.
    pub wait: Option<i64>,
    /// `parallel_roles`.
    pub parallel_roles: bool,
}

impl Boot {
    /// The group size for `host_count` hosts (a percentage is at least 1).
    pub fn limit_for(&self, host_count: usize) -> Option<i64> {
        match self.limit? {
            BootLimit::Count(n) => Some(n),
            BootLimit::Percent(p) => Some(
                (i64::try_from(host_count)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(p)
                    / 100)
                    .max(1),
            ),
        }
    }
}

/// `builder.cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderCache {
    /// `gha` or `registry`.
    pub kind: String,
    /// `options`.
    pub options: Option<String>,
    /// `image`.
    pub image: Option<String>,
}

/// `builder`.
#[derive(Debug, Clone, PartialEq)]
pub struct Builder {
    /// The raw map (printed by `config`).
    pub raw: Node,
    /// `arch` as a list.
    pub arches: Vec<String>,
    /// `remote`.
    pub remote: Option<String>,
    /// `local` (true).
    pub local: bool,
    /// `driver` (`docker-container`).
    pub driver: String,
    /// `cache`.
    pub cache: Option<BuilderCache>,
    /// `context` (unset means a clean git clone).
    pub context: Option<String>,
    /// `dockerfile` (`Dockerfile`).
    pub dockerfile: String,
    /// `target`.
    pub target: Option<String>,
    /// `args`.
    pub args: Vec<(String, String)>,
    /// `secrets` (names).
    pub secrets: Vec<String>,
    /// `ssh`.
    pub ssh: Option<String>,
    /// `provenance`.
    pub provenance: Option<String>,
    /// `sbom`.
    pub sbom: Option<String>,
    /// `pack.builder`.
    pub pack_builder: Option<String>,
    /// `pack.buildpacks`.
    pub pack_buildpacks: Vec<String>,
}

impl Builder {
    /// Arches built locally, given the local Docker arch (`amd64`/`arm64`, `None` if unknown).
    pub fn local_arches(&self, local_arch: Option<&str>) -> Vec<String> {
        if !self.local {
            Vec::new()
        } else if self.remote.is_some() {
            self.arches
                .iter()
                .filter(|a| Some(a.as_str()) == local_arch)
                .cloned()
                .collect()
        } else {
            self.arches.clone()
        }
    }

    /// Arches built on the remote builder.
    pub fn remote_arches(&self, local_arch: Option<&str>) -> Vec<String> {
        if self.remote.is_none() {
            return Vec::new();
        }
        let local = self.local_arches(local_arch);
        self.arches
            .iter()
            .filter(|a| !local.contains(a))
            .cloned()
            .collect()
    }

    /// Whether a remote builder is used.
    pub fn is_remote(&self, local_arch: Option<&str>) -> bool {
        !self.remote_arches(local_arch).is_empty()
    }

    /// Docker Build Cloud driver.
    pub fn is_cloud(&self) -> bool {
        self.driver.starts_with("cloud")
    }
}

/// `ssh.proxy` / `ssh.proxy_command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshProxy {
    /// A jump host, `user@host` (user defaults to root).
    Jump(String),
    /// A `ProxyCommand`.
    Command(String),
}

/// `ssh.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshConfigFiles {
    /// `true` or unset: the default OpenSSH files; `false`: none.
    Default(bool),
    /// Explicit files.
    Files(Vec<String>),
}

/// `ssh`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ssh {
    /// The raw map.
    pub raw: Option<Node>,
    /// `user` (`root`).
    pub user: String,
    /// `port` (22), as written.
    pub port: String,
    /// Jump host or proxy command.
    pub proxy: Option<SshProxy>,
    /// `log_level` (`fatal`).
    pub log_level: String,
    /// `keys_only`.
    pub keys_only: Option<bool>,
    /// `keys`.
    pub keys: Vec<String>,
    /// `key_data` (secret names).
    pub key_data: Vec<String>,
    /// `config`.
    pub config: SshConfigFiles,
}

/// `sshkit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sshkit {
    /// The raw map (printed by `config`).
    pub raw: Option<Node>,
    /// `max_concurrent_starts` (30).
    pub max_concurrent_starts: i64,
    /// `pool_idle_timeout` (900).
    pub pool_idle_timeout: i64,
    /// `dns_retries` (3).
    pub dns_retries: i64,
}

/// `hooks_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HooksOutput {
    /// Follow the CLI verbosity.
    Default,
    /// One level for every hook.
    All(String),
    /// A level per hook.
    PerHook(Vec<(String, String)>),
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The merged raw tree (base deep-merged with the destination).
    pub raw: Node,
    /// The destination (`-d`).
    pub destination: Option<String>,
    /// `service`.
    pub service: String,
    /// `image` (defaults to `service` with a local registry).
    pub image: String,
    /// `registry`.
    pub registry: Registry,
    /// Roles, sorted by name.
    pub roles: Vec<Role>,
    /// Whether `servers` was written as a list.
    pub servers_is_list: bool,
    /// `primary_role` (`web`).
    pub primary_role_name: String,
    /// Accessories, in file order.
    pub accessories: Vec<Accessory>,
    /// Root env.
    pub env: Env,
    /// `env.tags`.
    pub env_tags: Vec<(String, Env)>,
    /// Root `labels`.
    pub labels: Vec<(String, String)>,
    /// Root `volumes`.
    pub volumes: Vec<String>,
    /// Root logging.
    pub logging: Logging,
    /// Root proxy.
    pub proxy: Proxy,
    /// `builder`.
    pub builder: Builder,
    /// `ssh`.
    pub ssh: Ssh,
    /// `sshkit`.
    pub sshkit: Sshkit,
    /// `boot`.
    pub boot: Boot,
    /// `aliases`, in order.
    pub aliases: Vec<(String, String)>,
    /// `hooks_path` (`.kamal/hooks`).
    pub hooks_path: String,
    /// `hooks_output`.
    pub hooks_output: HooksOutput,
    /// `secrets_path` (`.kamal/secrets`).
    pub secrets_path: String,
    /// `asset_path`.
    pub asset_path: Option<String>,
    /// `error_pages_path`.
    pub error_pages_path: Option<String>,
    /// `require_destination`.
    pub require_destination: bool,
    /// `allow_empty_roles`.
    pub allow_empty_roles: bool,
    /// `retain_containers` (5).
    pub retain_containers: i64,
    /// `minimum_version`.
    pub minimum_version: Option<String>,
    /// `readiness_delay` (7).
    pub readiness_delay: i64,
    /// The pull request this is the preview of (`--preview`), which gives it its own latest tag.
    pub preview: Option<u64>,
    /// `deploy_timeout` (30).
    pub deploy_timeout: i64,
    /// `drain_timeout` (30).
    pub drain_timeout: i64,
}

impl Config {
    /// The run directory: always `.kamal` (`run_directory` is accepted but ignored, as in Kamal).
    pub fn run_directory(&self) -> &'static str {
        ".kamal"
    }

    /// `[<registry server>/]<image>`.
    pub fn repository(&self) -> String {
        match &self.registry.server {
            Some(server) => format!("{server}/{}", self.image),
            None => self.image.clone(),
        }
    }

    /// `<repository>:<version>`.
    pub fn absolute_image(&self, version: &str) -> String {
        format!("{}:{version}", self.repository())
    }

    /// `latest` or `latest-<dest>`; a preview's ends in `-pr-<N>`, so it never moves
    /// production's.
    pub fn latest_tag(&self) -> String {
        let tag = match &self.destination {
            Some(d) => format!("latest-{d}"),
            None => "latest".into(),
        };
        match self.preview {
            Some(pr) => format!("{tag}-pr-{pr}"),
            None => tag,
        }
    }

    /// The builders' scope of this configuration.
    pub fn scope(&self) -> crate::docker::Scope {
        crate::docker::Scope::new(
            &self.service,
            self.destination.as_deref(),
            &self.repository(),
        )
        .with_preview(self.preview)
    }

    /// `<repository>:<latest tag>`.
    pub fn latest_image(&self) -> String {
        format!("{}:{}", self.repository(), self.latest_tag())
    }

    /// `<service>[-<dest>]`.
    pub fn service_and_destination(&self) -> String {
        match &self.destination {
            Some(d) => format!("{}-{d}", self.service),
            None => self.service.clone(),
        }
    }

    /// `<service>-<version>`.
    pub fn service_with_version(&self, version: &str) -> String {
        format!("{}-{version}", self.service)
    }

    /// `<service>-<role>[-<dest>]`: container prefix and kamal-proxy service name.
    pub fn container_prefix(&self, role: &str) -> String {
        match &self.destination {
            Some(d) => format!("{}-{role}-{d}", self.service),
            None => format!("{}-{role}", self.service),
        }
    }

    /// `<prefix>-<version>`.
    pub fn container_name(&self, role: &str, version: &str) -> String {
        format!("{}-{version}", self.container_prefix(role))
    }

    /// The first 7 characters of the version, unless it contains `_`.
    pub fn abbreviated_version(version: &str) -> String {
        if version.contains('_') {
            version.to_string()
        } else {
            version.chars().take(7).collect()
        }
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The primary role.
    pub fn primary_role(&self) -> Option<&Role> {
        self.role(&self.primary_role_name)
    }

    /// The first host of the primary role.
    pub fn primary_host(&self) -> Option<&str> {
        self.primary_role()?.primary_host()
    }

    /// Roles with the primary role first, the rest sorted by name (the order Kamal acts in).
    pub fn roles_primary_first(&self) -> Vec<&Role> {
        let mut out: Vec<&Role> = self.roles.iter().filter(|r| r.primary).collect();
        out.extend(self.roles.iter().filter(|r| !r.primary));
        out
    }

    /// Role names as `kamal config` lists them (sorted; `web` for a list-form `servers`).
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.name.clone()).collect()
    }

    /// Every host of every role and accessory, unique, in order.
    pub fn all_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for h in self
            .roles
            .iter()
            .flat_map(|r| r.hosts.iter().map(|h| h.name.clone()))
            .chain(self.accessories.iter().flat_map(|a| a.hosts.clone()))
        {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    /// Hosts of the roles only, unique.
    pub fn app_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for h in self.roles.iter().flat_map(|r| r.hosts.iter()) {
            if !out.contains(&h.name) {
                out.push(h.name.clone());
            }
        }
        out
    }

    /// Roles that have `host`.
    pub fn host_roles(&self, host: &str) -> Vec<&Role> {
        self.roles
            .iter()
            .filter(|r| r.hosts.iter().any(|h| h.name == host))
            .collect()
    }

    /// Accessories on `host`.
    pub fn host_accessories(&self, host: &str) -> Vec<&Accessory> {
        self.accessories
            .iter()
            .filter(|a| a.hosts.iter().any(|h| h == host))
            .collect()
    }

    /// The tags of `host` in `role`.
    pub fn host_tags(&self, role: &str, host: &str) -> Vec<String> {
        self.role(role)
            .and_then(|r| r.hosts.iter().find(|h| h.name == host))
            .map(|h| h.tags.clone())
            .unwrap_or_default()
    }

    /// An env tag by name.
    pub fn env_tag(&self, name: &str) -> Option<&Env> {
        self.env_tags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e)
    }

    /// The env of a role's container on a host: root env, role env, then each tag env.
    pub fn env_for(&self, role: &str, host: &str) -> Env {
        let Some(r) = self.role(role) else {
            return self.env.clone();
        };
        let mut env = self.env.merge(&r.specialized_env);
        for tag in self.host_tags(role, host) {
            if let Some(tag_env) = self.env_tag(&tag) {
                env = env.merge(tag_env);
            }
        }
        env
    }

    /// Labels of a role's containers: `service`, `role`, `destination`, then the custom ones.
    pub fn role_labels(&self, role: &Role) -> Vec<(String, Option<String>)> {
        let mut labels: Vec<(String, Option<String>)> = vec![
            ("service".into(), Some(self.service.clone())),
            ("role".into(), Some(role.name.clone())),
            ("destination".into(), self.destination.clone()),
        ];
        for (k, v) in &role.custom_labels {
            if let Some(slot) = labels.iter_mut().find(|(lk, _)| lk == k) {
                slot.1 = Some(v.clone());
            } else {
                labels.push((k.clone(), Some(v.clone())));
            }
        }
        labels
    }

    /// An accessory by name.
    pub fn accessory(&self, name: &str) -> Option<&Accessory> {
        self.accessories.iter().find(|a| a.name == name)
    }

    /// Roles that run the proxy.
    pub fn proxy_roles(&self) -> Vec<&Role> {
        self.roles.iter().filter(|r| r.running_proxy()).collect()
    }

    /// Hosts that run the proxy (proxy roles and proxied accessories).
    pub fn proxy_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let hosts = self
            .proxy_roles()
            .into_iter()
            .flat_map(|r| r.hosts.iter().map(|h| h.name.clone()))
            .chain(
                self.accessories
                    .iter()
                    .filter(|a| a.proxy.is_some())
                    .flat_map(|a| a.hosts.clone()),
            );
        for h in hosts {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        out
    }

    /// The `proxy.run` options in force on a host (they are checked to agree across roles).
    pub fn proxy_run(&self, host: &str) -> Option<ProxyRun> {
        self.proxy_runs(host).into_iter().next()
    }

    pub(crate) fn proxy_runs(&self, host: &str) -> Vec<ProxyRun> {
        self.host_roles(host)
            .into_iter()
            .filter_map(|r| r.proxy.as_ref())
            .chain(
                self.host_accessories(host)
                    .into_iter()
                    .filter_map(|a| a.proxy.as_ref()),
            )
            .filter_map(Proxy::run)
            .collect()
    }

    /// `--volume` args of the root `volumes`.
    pub fn volume_args(&self) -> Vec<String> {
        self.volumes
            .iter()
            .flat_map(|v| ["--volume".to_string(), v.clone()])
            .collect()
    }

    /// The hook output level for a hook (`quiet`/`verbose`), when configured.
    pub fn hooks_output_for(&self, hook: &str) -> Option<&str> {
        match &self.hooks_output {
            HooksOutput::Default => None,
            HooksOutput::All(level) => Some(level),
            HooksOutput::PerHook(levels) => levels
                .iter()
                .find(|(h, _)| h == hook)
                .map(|(_, l)| l.as_str()),
        }
    }

    /// `.kamal/apps/<svc>[-<dest>]`.
    pub fn app_directory(&self) -> String {
        format!(".kamal/apps/{}", self.service_and_destination())
    }

    /// `.kamal/apps/<svc>[-<dest>]/env`.
    pub fn env_directory(&self) -> String {
        format!("{}/env", self.app_directory())
    }

    /// The secrets files Kamal reads, in order.
    pub fn secrets_files(&self) -> Vec<String> {
        let second = match &self.destination {
            Some(d) => format!("{}.{d}", self.secrets_path),
            None => self.secrets_path.clone(),
        };
        vec![format!("{}-common", self.secrets_path), second]
    }

    /// Every secret the configuration refers to, with the key path that refers to it, in file
    /// order: registry credentials written as `[NAME]`, env `secret` lists (root, roles, tags,
    /// accessories; aliases resolved to the secret read), `builder.secrets`, `ssh.key_data` and
    /// custom TLS PEMs. The names are what a missing-secret error should mention.
    pub fn secret_references(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |secret: &str, path: String| {
            if !out.iter().any(|(s, p)| s == secret && *p == path) {
                out.push((secret.to_string(), path));
            }
        };
        let registry_refs = |registry: &Registry, base: &str, add: &mut dyn FnMut(&str, String)| {
            for (key, cred) in [
                ("username", &registry.username),
                ("password", &registry.password),
            ] {
                if let Some(Credential::Secret(name)) = cred {
                    add(name, format!("{base}/{key}"));
                }
            }
        };
        registry_refs(&self.registry, "registry", &mut add);
        for s in self.env.secrets() {
            add(&s.secret, "env/secret".into());
        }
        for (tag, env) in &self.env_tags {
            for s in env.secrets() {
                add(&s.secret, format!("env/tags/{tag}/secret"));
            }
        }
        for role in &self.roles {
            for s in role.specialized_env.secrets() {
                add(&s.secret, format!("servers/{}/env/secret", role.name));
            }
            if let Some(Ssl::Custom {
                certificate_pem,
                private_key_pem,
            }) = role.proxy.as_ref().map(Proxy::ssl)
            {
                add(
                    &certificate_pem,
                    format!("servers/{}/proxy/ssl/certificate_pem", role.name),
                );
                add(
                    &private_key_pem,
                    format!("servers/{}/proxy/ssl/private_key_pem", role.name),
                );
            }
        }
        for accessory in &self.accessories {
            let base = format!("accessories/{}", accessory.name);
            for s in accessory.env.secrets() {
                add(&s.secret, format!("{base}/env/secret"));
            }
            if let Some(registry) = &accessory.registry {
                registry_refs(registry, &format!("{base}/registry"), &mut add);
            }
            if let Some(Ssl::Custom {
                certificate_pem,
                private_key_pem,
            }) = accessory.proxy.as_ref().map(Proxy::ssl)
            {
                add(
                    &certificate_pem,
                    format!("{base}/proxy/ssl/certificate_pem"),
                );
                add(
                    &private_key_pem,
                    format!("{base}/proxy/ssl/private_key_pem"),
                );
            }
        }
        for name in &self.builder.secrets {
            add(name, "builder/secrets".into());
        }
        for name in &self.ssh.key_data {
            add(name, "ssh/key_data".into());
        }
        out
    }

    /// Kamal's error for legacy Traefik hook files: pass the file names found in `hooks_path`.
    pub fn check_hook_files(&self, names: &[String]) -> Result<(), Box<super::error::ConfigError>> {
        let found: Vec<&str> = ["pre-traefik-reboot", "post-traefik-reboot"]
            .into_iter()
            .filter(|h| names.iter().any(|n| n == h))
            .collect();
        if found.is_empty() {
            Ok(())
        } else {
            Err(Box::new(
                super::error::ConfigError::new(
                    super::error::ErrorKind::Invalid,
                    "",
                    format!(
                        "Found {}, these should be renamed to (pre|post)-proxy-reboot",
                        found.join(", ")
                    ),
                )
                .path("hooks_path"),
            ))
        }
    }
}

/// Strings of a scalar-or-list node.
pub(crate) fn strings(node: Option<&Node>) -> Vec<String> {
    match node {
        None => Vec::new(),
        Some(n) => match &n.value {
            Value::Seq(items) => items.iter().filter_map(Node::to_ruby_string).collect(),
            Value::Null => Vec::new(),
            _ => n.to_ruby_string().into_iter().collect(),
        },
    }
}

/// Map entries as `(key, ruby string)` pairs.
pub(crate) fn string_pairs(node: Option<&Node>) -> Vec<(String, String)> {
    node.and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v): &(Key, Node)| {
                    (k.name.clone(), v.to_ruby_string().unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default()
}
