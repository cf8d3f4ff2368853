//! The load pipeline: ERB (through an injected renderer), YAML with positions, the destination
//! deep merge, schema validation, typed sections and Kamal's cross-field rules, in Kamal's order.

use std::collections::BTreeMap;

use super::error::{ConfigError, ConfigErrors, ErrorKind};
use super::model::{
    Accessory, Boot, BootLimit, Builder, BuilderCache, Config, Env, HooksOutput, Host, Logging,
    PathMount, Proxy, Registry, Role, Ssh, SshConfigFiles, SshProxy, Sshkit, string_pairs, strings,
};
use super::preview;
use super::schema::{example, example_at};
use super::validate;
use super::yaml::{self, Node, Value};

/// The result of rendering a template: the text and, for each rendered line, its 1-based line in
/// the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Rendered text.
    pub text: String,
    /// `line_map[i]` is the source line of rendered line `i + 1`.
    pub line_map: Vec<usize>,
}

/// A template failure, with where it happened in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFailure {
    /// What went wrong (e.g. the unsupported expression).
    pub message: String,
    /// 1-based source line.
    pub line: usize,
    /// 1-based source column, when known.
    pub col: Option<usize>,
    /// How to fix it, when the renderer knows.
    pub hint: Option<String>,
}

/// The ERB step, injected by the caller so the core stays free of any particular renderer.
pub trait TemplateRenderer {
    /// Renders `source` (the file `origin`) with the environment `env`.
    fn render(
        &self,
        origin: &str,
        source: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Rendered, TemplateFailure>;
}

/// A renderer for files without ERB: text without `<%` passes through; anything else is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTemplates;

impl TemplateRenderer for NoTemplates {
    fn render(
        &self,
        _origin: &str,
        source: &str,
        _env: &BTreeMap<String, String>,
    ) -> Result<Rendered, TemplateFailure> {
        if let Some((i, line)) = source.lines().enumerate().find(|(_, l)| l.contains("<%")) {
            return Err(TemplateFailure {
                message: "ERB templates are not supported here".into(),
                line: i + 1,
                col: line.find("<%").map(|c| c + 1),
                hint: Some("this caller renders no ERB".into()),
            });
        }
        Ok(Rendered {
            text: source.to_string(),
            line_map: (1..=source.lines().count()).collect(),
        })
    }
}

impl<F> TemplateRenderer for F
where
    F: Fn(&str, &str, &BTreeMap<String, String>) -> Result<Rendered, TemplateFailure>,
{
    fn render(
        &self,
        origin: &str,
        source: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Rendered, TemplateFailure> {
        self(origin, source, env)
    }
}

/// One configuration file as read by the caller.
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    /// File name, as shown in messages (e.g. `config/deploy.yml`).
    pub name: &'a str,
    /// Its contents, `None` when the file does not exist.
    pub text: Option<&'a str>,
}

/// Everything the loader needs; the caller reads the files and the environment.
#[derive(Clone, Copy)]
pub struct LoadInput<'a> {
    /// The base file (`-c`, default `config/deploy.yml`).
    pub base: SourceFile<'a>,
    /// The destination (`-d`) and its overlay file ([`destination_file_name`]).
    pub destination: Option<(&'a str, SourceFile<'a>)>,
    /// The process environment, for ERB.
    pub env: &'a BTreeMap<String, String>,
    /// The running tool's Kamal-compatible version, for `minimum_version`.
    pub running_version: &'a str,
    /// The local Docker architecture (`amd64`/`arm64`), when known.
    pub local_arch: Option<&'a str>,
    /// The ERB step.
    pub renderer: &'a dyn TemplateRenderer,
}

impl std::fmt::Debug for LoadInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadInput")
            .field("base", &self.base)
            .field("destination", &self.destination)
            .field("running_version", &self.running_version)
            .finish_non_exhaustive()
    }
}

/// Kamal's destination file: `<config minus extension>.<dest>.yml`.
pub fn destination_file_name(config_file: &str, destination: &str) -> String {
    let (dir, file) = match config_file.rfind('/') {
        Some(i) => (&config_file[..=i], &config_file[i + 1..]),
        None => ("", config_file),
    };
    let stem = match file.rfind('.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    };
    format!("{dir}{stem}.{destination}.yml")
}

/// Loads, merges, validates and types a configuration, collecting every error.
pub fn load(input: &LoadInput<'_>) -> Result<Config, ConfigErrors> {
    load_with(input, &mut Ok)
}

/// Loads the configuration of pull-request preview `pr`: the merged tree is turned into the
/// preview's by [`preview::derive`] (from the `x-dhow-preview` block) before it is validated
/// and typed, so every rule checks what will really run.
pub fn load_preview(
    input: &LoadInput<'_>,
    pr: u64,
) -> Result<(Config, preview::PreviewSettings), ConfigErrors> {
    let mut found = None;
    let mut config = load_with(input, &mut |raw: Node| {
        let Some(settings) = preview::settings(&raw)? else {
            return Err(vec![
                ConfigError::new(
                    ErrorKind::Missing,
                    preview::KEY,
                    "is not set: previews need an x-dhow-preview block in the configuration",
                )
                .hint("add `x-dhow-preview:` with `domain:` (see `dhow docs preview`)"),
            ]);
        };
        let derived = preview::derive(&raw, &settings, pr)?;
        found = Some(settings);
        Ok(derived)
    })?;
    config.preview = Some(pr);
    match found {
        Some(settings) => Ok((config, settings)),
        None => Err(ConfigErrors {
            errors: vec![ConfigError::new(
                ErrorKind::Missing,
                preview::KEY,
                "was not read: the configuration could not be loaded",
            )],
            sources: Vec::new(),
        }),
    }
}

fn load_with(
    input: &LoadInput<'_>,
    transform: &mut dyn FnMut(Node) -> Result<Node, Vec<ConfigError>>,
) -> Result<Config, ConfigErrors> {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut env = input.env.clone();
    match input.destination {
        Some((dest, _)) => {
            env.insert("KAMAL_DESTINATION".into(), dest.to_string());
        }
        None => {
            env.remove("KAMAL_DESTINATION");
        }
    }
    let mut files = vec![input.base];
    if let Some((_, file)) = input.destination {
        files.push(file);
    }
    let mut merged: Option<Node> = None;
    for file in files {
        let Some(text) = file.text else {
            errors.push(ConfigError::new(
                ErrorKind::FileNotFound,
                "",
                format!("Configuration file not found in {}", file.name),
            ));
            break;
        };
        sources.push((file.name.to_string(), text.to_string()));
        match load_file(file.name, text, &env, input.renderer) {
            Ok(node) => {
                merged = Some(match merged {
                    None => node,
                    Some(base) => base.deep_merge(&node),
                });
            }
            Err(e) => {
                errors.push(*e);
                break;
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors { errors, sources });
    }
    let Some(raw) = merged else {
        return Err(ConfigErrors { errors, sources });
    };
    let raw = match transform(raw) {
        Ok(raw) => raw,
        Err(errors) => return Err(ConfigErrors { errors, sources }),
    };
    let config = build(raw, input, &mut errors);
    // A role's proxy is validated again after the merge with the root one (as in Kamal); keep
    // each problem once.
    let mut unique: Vec<ConfigError> = Vec::new();
    for e in errors {
        if !unique
            .iter()
            .any(|u| u.to_string() == e.to_string() && u.span == e.span)
        {
            unique.push(e);
        }
    }
    let errors = unique;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors { errors, sources })
    }
}

fn load_file(
    name: &str,
    text: &str,
    env: &BTreeMap<String, String>,
    renderer: &dyn TemplateRenderer,
) -> Result<Node, Box<ConfigError>> {
    let output = renderer.render(name, text, env).map_err(|f| {
        let span = yaml::Span {
            file: name.into(),
            line: f.line,
            col: f.col.unwrap_or(1),
        };
        let e = ConfigError::new(
            ErrorKind::Template,
            "",
            format!("{name}:{}:{}: {}", f.line, f.col.unwrap_or(1), f.message),
        )
        .at(Some(&span));
        Box::new(match f.hint {
            Some(h) => e.hint(h),
            None => e,
        })
    })?;
    let node = yaml::parse(&output.text, name, Some(&output.line_map)).map_err(|e| {
        Box::new(
            ConfigError::new(
                ErrorKind::Syntax,
                "",
                format!(
                    "({name}): {} at line {} column {}",
                    e.message, e.span.line, e.span.col
                ),
            )
            .at(Some(&e.span)),
        )
    })?;
    match node {
        Some(n) if n.as_map().is_some() => Ok(n),
        Some(n) => Err(Box::new(
            ConfigError::new(
                ErrorKind::Syntax,
                "",
                format!(
                    "{name} must contain a hash of settings, found {}",
                    n.type_word()
                ),
            )
            .at(Some(&n.span)),
        )),
        None => Err(Box::new(ConfigError::new(
            ErrorKind::Syntax,
            "",
            format!("{name} is empty: it must contain a hash of settings"),
        ))),
    }
}

/// The node with its span moved to the key that holds it (so "is required" and "not set"
/// errors point at `registry:` rather than at the first key inside it).
fn at_key(node: &Node, parent: &Node, key: &str) -> Node {
    let mut node = node.clone();
    if let Some(k) = parent.get_key(key) {
        node.span = k.span.clone();
    }
    node
}

fn string_at(node: &Node, key: &str) -> Option<String> {
    node.get(key)
        .filter(|n| !n.is_null())
        .and_then(Node::to_ruby_string)
}

fn int_at(node: &Node, key: &str) -> Option<i64> {
    node.get(key).and_then(Node::as_int)
}

fn empty_map() -> Node {
    Node::synthetic(Value::Map(Vec::new()))
}

#[expect(
    clippy::too_many_lines,
    reason = "mirrors Kamal's Configuration#initialize step by step"
)]
fn build(raw: Node, input: &LoadInput<'_>, errors: &mut Vec<ConfigError>) -> Config {
    let destination = input.destination.map(|(d, _)| d.to_string());
    validate::root(errors, &raw, example("configuration"));

    // Servers and roles.
    let servers = raw.get("servers");
    if let Some(s) = servers {
        validate::servers(errors, s);
    }
    let servers_is_list = servers.and_then(Node::as_seq).is_some();
    let primary_role_name = string_at(&raw, "primary_role").unwrap_or_else(|| "web".into());
    let mut role_names: Vec<String> = match servers.map(|s| &s.value) {
        Some(Value::Seq(_)) => vec!["web".into()],
        Some(Value::Map(m)) => m.iter().map(|(k, _)| k.name.clone()).collect(),
        _ => Vec::new(),
    };
    role_names.sort();
    let root_logging = Logging {
        raw: raw.get("logging").filter(|n| n.as_map().is_some()).cloned(),
    };
    let root_proxy_node = raw.get("proxy").cloned().unwrap_or_else(empty_map);
    let root_labels = string_pairs(raw.get("labels"));
    let mut roles = Vec::new();
    for name in &role_names {
        roles.push(build_role(
            name,
            &raw,
            servers_is_list,
            &primary_role_name,
            &root_logging,
            &root_labels,
            errors,
        ));
    }

    // Registry.
    let registry_node = raw.get("registry").cloned().unwrap_or_else(empty_map);
    if registry_node.as_map().is_some() {
        validate::registry(
            errors,
            &at_key(&registry_node, &raw, "registry"),
            example_at("registry", &["registry"]),
            "registry",
        );
    }
    let registry = Registry::from_node(Some(&registry_node));

    let service = string_at(&raw, "service").unwrap_or_default();

    // Accessories.
    let mut accessories = Vec::new();
    if let Some(entries) = raw.get("accessories").and_then(Node::as_map) {
        for (key, node) in entries {
            accessories.push(build_accessory(
                &key.name, node, &service, &raw, &roles, errors,
            ));
        }
    }

    // Aliases.
    let mut aliases = Vec::new();
    if let Some(entries) = raw.get("aliases").and_then(Node::as_map) {
        for (key, node) in entries {
            validate::alias(
                errors,
                key,
                node,
                example_at("alias", &["aliases", "uname"]),
            );
            aliases.push((key.name.clone(), node.to_ruby_string().unwrap_or_default()));
        }
    }

    // Boot.
    let boot_node = raw.get("boot").cloned().unwrap_or_else(empty_map);
    if !boot_node.is_null() {
        validate::plain(errors, &boot_node, example_at("boot", &["boot"]), "boot");
    }
    let boot = Boot {
        limit: boot_node.get("limit").and_then(|l| {
            if let Value::Int(i) = &l.value {
                return Some(BootLimit::Count(*i));
            }
            let s = l.to_ruby_string()?;
            Some(match s.strip_suffix('%') {
                Some(p) => BootLimit::Percent(leading_int(p)),
                None => BootLimit::Count(leading_int(&s)),
            })
        }),
        wait: int_at(&boot_node, "wait"),
        parallel_roles: boot_node
            .get("parallel_roles")
            .and_then(Node::as_bool)
            .unwrap_or(false),
    };

    // Builder.
    let builder_node = raw
        .get("builder")
        .filter(|n| !n.is_null())
        .cloned()
        .unwrap_or_else(empty_map);
    validate::builder(
        errors,
        &at_key(&builder_node, &raw, "builder"),
        example_at("builder", &["builder"]),
    );
    let builder = build_builder(&builder_node);

    // Root env.
    let env_node = raw
        .get("env")
        .filter(|n| !n.is_null())
        .cloned()
        .unwrap_or_else(empty_map);
    if env_node.as_map().is_some() {
        validate::env(errors, &env_node, "env");
    }
    let env = Env::from_node(Some(&env_node));
    let env_tags = env_node
        .get("tags")
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.name.clone(), Env::from_node(Some(v))))
                .collect()
        })
        .unwrap_or_default();

    // Root logging and proxy.
    if let Some(l) = raw.get("logging").filter(|n| n.as_map().is_some()) {
        {
            validate::plain(errors, l, example_at("logging", &["logging"]), "logging");
        }
    }
    if raw
        .get("proxy")
        .is_some_and(|p| !matches!(p.value, Value::Map(_) | Value::Null))
    {
        // `proxy: false` passes the root check and fails here, as in Kamal.
        validate::proxy(
            errors,
            &root_proxy_node,
            example_at("proxy", &["proxy"]),
            "proxy",
        );
    } else {
        validate::proxy(
            errors,
            &root_proxy_node,
            example_at("proxy", &["proxy"]),
            "proxy",
        );
    }
    let proxy = Proxy {
        raw: if root_proxy_node.as_map().is_some() {
            root_proxy_node.clone()
        } else {
            empty_map()
        },
        role: None,
    };

    // SSH and SSHKit.
    let ssh_node = raw.get("ssh").filter(|n| !n.is_null()).cloned();
    if let Some(n) = ssh_node.as_ref().filter(|n| n.as_map().is_some()) {
        {
            validate::plain(errors, n, example_at("ssh", &["ssh"]), "ssh");
        }
    }
    let ssh = build_ssh(ssh_node);
    let sshkit_node = raw.get("sshkit").filter(|n| !n.is_null()).cloned();
    if let Some(n) = sshkit_node.as_ref().filter(|n| n.as_map().is_some()) {
        {
            validate::plain(errors, n, example_at("sshkit", &["sshkit"]), "sshkit");
        }
    }
    let sshkit = Sshkit {
        max_concurrent_starts: sshkit_node
            .as_ref()
            .and_then(|n| int_at(n, "max_concurrent_starts"))
            .unwrap_or(30),
        pool_idle_timeout: sshkit_node
            .as_ref()
            .and_then(|n| int_at(n, "pool_idle_timeout"))
            .unwrap_or(900),
        dns_retries: sshkit_node
            .as_ref()
            .and_then(|n| int_at(n, "dns_retries"))
            .unwrap_or(3),
        raw: sshkit_node,
    };

    // Role proxies are merged over the root proxy once the root is known (the merged maps are
    // validated again with the cross-field rules, where Kamal meets them).
    for role in &mut roles {
        if let Some(p) = role.proxy.take() {
            let merged = proxy.raw.deep_merge(&p.raw);
            role.proxy = Some(Proxy {
                raw: merged,
                role: Some(role.name.clone()),
            });
        }
    }

    let local_registry = registry.is_local();
    let image = string_at(&raw, "image")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            if local_registry {
                raw.get("service").and_then(Node::to_ruby_string)
            } else {
                None
            }
        })
        .unwrap_or_default();

    let hooks_output = match raw.get("hooks_output").map(|n| &n.value) {
        Some(Value::Map(m)) => HooksOutput::PerHook(
            m.iter()
                .map(|(k, v)| (k.name.clone(), v.to_ruby_string().unwrap_or_default()))
                .collect(),
        ),
        Some(Value::Str(s) | Value::Symbol(s)) => HooksOutput::All(s.clone()),
        _ => HooksOutput::Default,
    };

    let config = Config {
        destination,
        service,
        image,
        registry,
        roles,
        servers_is_list,
        primary_role_name,
        accessories,
        env,
        env_tags,
        labels: root_labels,
        volumes: strings(raw.get("volumes")),
        logging: root_logging,
        proxy,
        builder,
        ssh,
        sshkit,
        boot,
        aliases,
        hooks_path: string_at(&raw, "hooks_path").unwrap_or_else(|| ".kamal/hooks".into()),
        hooks_output,
        secrets_path: string_at(&raw, "secrets_path").unwrap_or_else(|| ".kamal/secrets".into()),
        asset_path: string_at(&raw, "asset_path"),
        error_pages_path: string_at(&raw, "error_pages_path"),
        require_destination: raw.get("require_destination").is_some_and(Node::is_truthy),
        allow_empty_roles: raw.get("allow_empty_roles").is_some_and(Node::is_truthy),
        retain_containers: int_at(&raw, "retain_containers").unwrap_or(5),
        minimum_version: string_at(&raw, "minimum_version"),
        readiness_delay: int_at(&raw, "readiness_delay").unwrap_or(7),
        preview: None,
        deploy_timeout: int_at(&raw, "deploy_timeout").unwrap_or(30),
        drain_timeout: int_at(&raw, "drain_timeout").unwrap_or(30),
        raw,
    };
    super::rules::check(&config, input, errors);
    config
}

/// Ruby's `String#to_i`: the leading integer, 0 when there is none.
fn leading_int(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let n: String = digits
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    let v: i64 = n.parse().unwrap_or(0);
    if neg { -v } else { v }
}

#[expect(clippy::too_many_lines, reason = "mirrors Kamal's Role#initialize")]
fn build_role(
    name: &str,
    raw: &Node,
    servers_is_list: bool,
    primary_role_name: &str,
    root_logging: &Logging,
    root_labels: &[(String, String)],
    errors: &mut Vec<ConfigError>,
) -> Role {
    let servers = raw.get("servers");
    let role_node = if servers_is_list {
        empty_map()
    } else {
        servers
            .and_then(|s| s.get(name))
            .cloned()
            .unwrap_or_else(|| Node::synthetic(Value::Null))
    };
    let context = format!("servers/{name}");
    if !servers_is_list {
        validate::role(
            errors,
            &role_node,
            example_at("role", &["servers", "workers"]),
            &context,
        );
    }
    let specializations = if role_node.as_map().is_some() {
        role_node.clone()
    } else {
        empty_map()
    };

    let env_node = specializations
        .get("env")
        .cloned()
        .unwrap_or_else(empty_map);
    if env_node.as_map().is_some() {
        validate::env(errors, &env_node, &format!("{context}/env"));
    }
    let logging_node = specializations
        .get("logging")
        .cloned()
        .unwrap_or_else(empty_map);
    if logging_node.as_map().is_some() {
        validate::plain(
            errors,
            &logging_node,
            example_at("logging", &["logging"]),
            &format!("{context}/logging"),
        );
    }

    let primary = name == primary_role_name;
    let proxy_spec = specializations.get("proxy");
    let running = if primary {
        !matches!(proxy_spec.map(|p| &p.value), Some(Value::Bool(false)))
    } else {
        proxy_spec.is_some_and(Node::is_truthy)
    };
    let proxy = if running {
        let node = match proxy_spec {
            None => empty_map(),
            Some(p) if matches!(p.value, Value::Bool(true) | Value::Null) => empty_map(),
            Some(p) => p.clone(),
        };
        validate::proxy(
            errors,
            &node,
            example_at("proxy", &["proxy"]),
            &format!("{context}/proxy"),
        );
        Some(Proxy {
            raw: if node.as_map().is_some() {
                node
            } else {
                empty_map()
            },
            role: Some(name.to_string()),
        })
    } else {
        None
    };

    // Hosts.
    let host_nodes: Vec<Node> = if servers_is_list {
        servers
            .and_then(Node::as_seq)
            .map(<[Node]>::to_vec)
            .unwrap_or_default()
    } else {
        match &role_node.value {
            Value::Seq(items) => items.clone(),
            Value::Map(_) => match role_node.get("hosts").map(|h| &h.value) {
                Some(Value::Seq(items)) => items.clone(),
                Some(Value::Null) | None => Vec::new(),
                Some(_) => role_node.get("hosts").cloned().into_iter().collect(),
            },
            _ => Vec::new(),
        }
    };
    let mut hosts: Vec<Host> = Vec::new();
    for h in &host_nodes {
        let entry = match &h.value {
            Value::Map(m) if !m.is_empty() => Some(Host {
                name: m[0].0.name.clone(),
                tags: strings(Some(&m[0].1)),
            }),
            Value::Str(s) => Some(Host {
                name: s.clone(),
                tags: Vec::new(),
            }),
            _ => None,
        };
        if let Some(entry) = entry {
            if let Some(slot) = hosts.iter_mut().find(|x| x.name == entry.name) {
                *slot = entry;
            } else {
                hosts.push(entry);
            }
        }
    }

    let mut custom_labels: Vec<(String, String)> = root_labels.to_vec();
    for (k, v) in string_pairs(specializations.get("labels")) {
        if let Some(slot) = custom_labels.iter_mut().find(|(ck, _)| *ck == k) {
            slot.1 = v;
        } else {
            custom_labels.push((k, v));
        }
    }
    let asset_raw = string_at(&specializations, "asset_path")
        .or_else(|| string_at(raw, "asset_path"))
        .filter(|s| !s.trim().is_empty());
    let asset_path = asset_raw.map(|p| match p.split_once(':') {
        Some((path, opts)) => (path.to_string(), Some(opts.to_string())),
        None => (p, None),
    });

    Role {
        name: name.to_string(),
        hosts,
        cmd: string_at(&specializations, "cmd"),
        options: specializations
            .get("options")
            .filter(|n| !n.is_null())
            .cloned(),
        specialized_env: Env::from_node(Some(&env_node)),
        logging: root_logging.merge(&Logging {
            raw: logging_node.as_map().map(|_| logging_node.clone()),
        }),
        proxy,
        asset_path,
        custom_labels,
        primary,
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "mirrors Kamal's Accessory#initialize"
)]
fn build_accessory(
    name: &str,
    node: &Node,
    service: &str,
    raw: &Node,
    roles: &[Role],
    errors: &mut Vec<ConfigError>,
) -> Accessory {
    let context = format!("accessories/{name}");
    validate::accessory(
        errors,
        node,
        example_at("accessory", &["accessories", "mysql"]),
        &context,
    );
    let cfg = if node.as_map().is_some() {
        node.clone()
    } else {
        empty_map()
    };

    // Unknown roles.
    if let Some(list) = cfg.get("roles").and_then(Node::as_seq) {
        let missing: Vec<String> = list
            .iter()
            .filter_map(Node::to_ruby_string)
            .filter(|r| !roles.iter().any(|x| x.name == *r))
            .collect();
        if !missing.is_empty() {
            errors.push(
                ConfigError::new(
                    ErrorKind::Invalid,
                    "",
                    format!("{context}: unknown roles {}", missing.join(", ")),
                )
                .at(cfg.get("roles").map(|n| &n.span))
                .path(format!("{context}/roles"))
                .expected(format!(
                    "one of the roles: {}",
                    roles
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    } else if let Some(role) = cfg.get("role").filter(|n| n.is_truthy()) {
        let role_name = role.to_ruby_string().unwrap_or_default();
        if !roles.iter().any(|x| x.name == role_name) {
            let mut e = ConfigError::new(
                ErrorKind::Invalid,
                "",
                format!("{context}: unknown role {role_name}"),
            )
            .at(Some(&role.span))
            .path(format!("{context}/role"));
            if let Some(c) =
                super::error::did_you_mean(&role_name, roles.iter().map(|r| r.name.as_str()))
            {
                e = e.hint(format!("did you mean `{c}`?"));
            }
            errors.push(e);
        }
    }

    let env_node = cfg.get("env").cloned().unwrap_or_else(empty_map);
    if env_node.as_map().is_some() {
        validate::env(errors, &env_node, &format!("{context}/env"));
    }
    let proxy = cfg.get("proxy").filter(|p| p.is_present()).map(|p| {
        validate::proxy(
            errors,
            p,
            example_at("proxy", &["proxy"]),
            &format!("{context}/proxy"),
        );
        Proxy {
            raw: if p.as_map().is_some() {
                p.clone()
            } else {
                empty_map()
            },
            role: None,
        }
    });
    let registry = cfg.get("registry").filter(|r| r.is_present()).map(|r| {
        if r.as_map().is_some() {
            validate::registry(
                errors,
                &at_key(r, &cfg, "registry"),
                example_at("registry", &["registry"]),
                &format!("{context}/registry"),
            );
        }
        Registry::from_node(Some(r))
    });

    let hosts: Vec<String> = if cfg.has("host") {
        strings(cfg.get("host")).into_iter().take(1).collect()
    } else if cfg.has("hosts") {
        strings(cfg.get("hosts"))
    } else if let Some(role) = cfg.get("role") {
        let role_name = role.to_ruby_string().unwrap_or_default();
        roles
            .iter()
            .find(|r| r.name == role_name)
            .map(|r| r.hosts.iter().map(|h| h.name.clone()).collect())
            .unwrap_or_default()
    } else if let Some(list) = cfg.get("roles") {
        strings(Some(list))
            .iter()
            .flat_map(|rn| {
                roles
                    .iter()
                    .find(|r| r.name == *rn)
                    .map(|r| r.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect()
    } else if let Some(tag) = cfg.get("tag") {
        hosts_with_tag(raw, &tag.to_ruby_string().unwrap_or_default())
    } else if let Some(tags) = cfg.get("tags") {
        strings(Some(tags))
            .iter()
            .flat_map(|t| hosts_with_tag(raw, t))
            .collect()
    } else {
        Vec::new()
    };

    let service_name = string_at(&cfg, "service").unwrap_or_else(|| format!("{service}-{name}"));
    let image_name = string_at(&cfg, "image").unwrap_or_default();
    let image = match registry.as_ref().and_then(|r| r.server.clone()) {
        Some(server) => format!("{server}/{image_name}"),
        None => image_name,
    };
    let port = cfg
        .get("port")
        .filter(|n| !n.is_null())
        .and_then(Node::to_ruby_string)
        .map(|p| {
            if p.contains(':') {
                p
            } else {
                format!("{p}:{p}")
            }
        });
    let mut labels = vec![("service".to_string(), service_name.clone())];
    for (k, v) in string_pairs(cfg.get("labels")) {
        if let Some(slot) = labels.iter_mut().find(|(lk, _)| *lk == k) {
            slot.1 = v;
        } else {
            labels.push((k, v));
        }
    }
    Accessory {
        name: name.to_string(),
        service_name,
        image,
        registry,
        hosts,
        cmd: string_at(&cfg, "cmd"),
        port,
        labels,
        options: cfg.get("options").filter(|n| !n.is_null()).cloned(),
        env: Env::from_node(Some(&env_node)),
        files: path_mounts(cfg.get("files"), Some("755")),
        directories: path_mounts(cfg.get("directories"), None),
        volumes: strings(cfg.get("volumes")),
        network: string_at(&cfg, "network").unwrap_or_else(|| "kamal".into()),
        proxy,
    }
}

/// Kamal's `extract_hosts_from_config_with_tag`: only list-form roles of a map-form `servers`
/// are searched (a string tag value matches by substring, as Ruby's `include?` does).
fn hosts_with_tag(raw: &Node, tag: &str) -> Vec<String> {
    let Some(roles) = raw.get("servers").and_then(Node::as_map) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, servers) in roles {
        for host in servers.as_seq().unwrap_or_default() {
            if let Some([(name, tags)]) = host.as_map() {
                let hit = match &tags.value {
                    Value::Seq(items) => items
                        .iter()
                        .any(|t| t.to_ruby_string().as_deref() == Some(tag)),
                    Value::Str(s) => s.contains(tag),
                    _ => false,
                };
                if hit {
                    out.push(name.name.clone());
                }
            }
        }
    }
    out
}

fn path_mounts(node: Option<&Node>, default_mode: Option<&str>) -> Vec<PathMount> {
    let mut out = Vec::new();
    for item in node.and_then(Node::as_seq).unwrap_or_default() {
        if item.as_map().is_some() {
            out.push(PathMount {
                local: string_at(item, "local").unwrap_or_default(),
                remote: string_at(item, "remote").unwrap_or_default(),
                options: string_at(item, "options"),
                mode: string_at(item, "mode").or_else(|| default_mode.map(str::to_string)),
                owner: string_at(item, "owner"),
            });
        } else {
            {
                let text = item.to_ruby_string().unwrap_or_default();
                let mut parts = text.splitn(3, ':');
                out.push(PathMount {
                    local: parts.next().unwrap_or_default().to_string(),
                    remote: parts.next().unwrap_or_default().to_string(),
                    options: parts.next().map(str::to_string),
                    mode: default_mode.map(str::to_string),
                    owner: None,
                });
            }
        }
    }
    out
}

fn build_builder(node: &Node) -> Builder {
    let cache = node
        .get("cache")
        .filter(|c| c.is_truthy())
        .map(|c| BuilderCache {
            kind: string_at(c, "type").unwrap_or_default(),
            options: string_at(c, "options"),
            image: string_at(c, "image"),
        });
    let pack = node.get("pack").filter(|p| p.is_truthy());
    Builder {
        arches: strings(node.get("arch")),
        remote: string_at(node, "remote"),
        local: node.get("local").and_then(Node::as_bool) != Some(false),
        driver: string_at(node, "driver").unwrap_or_else(|| "docker-container".into()),
        cache,
        context: string_at(node, "context"),
        dockerfile: string_at(node, "dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        target: string_at(node, "target"),
        args: string_pairs(node.get("args")),
        secrets: strings(node.get("secrets")),
        ssh: string_at(node, "ssh"),
        provenance: string_at(node, "provenance"),
        sbom: string_at(node, "sbom"),
        pack_builder: pack.and_then(|p| string_at(p, "builder")),
        pack_buildpacks: strings(pack.and_then(|p| p.get("buildpacks"))),
        raw: node.clone(),
    }
}

fn build_ssh(node: Option<Node>) -> Ssh {
    let n = node.clone().unwrap_or_else(empty_map);
    let proxy = if let Some(p) = string_at(&n, "proxy") {
        Some(SshProxy::Jump(if p.contains('@') {
            p
        } else {
            format!("root@{p}")
        }))
    } else {
        string_at(&n, "proxy_command").map(SshProxy::Command)
    };
    let config = match n.get("config").map(|c| &c.value) {
        Some(Value::Bool(b)) => SshConfigFiles::Default(*b),
        Some(Value::Str(s)) => SshConfigFiles::Files(vec![s.clone()]),
        Some(Value::Seq(_)) => SshConfigFiles::Files(strings(n.get("config"))),
        _ => SshConfigFiles::Default(true),
    };
    Ssh {
        user: string_at(&n, "user").unwrap_or_else(|| "root".into()),
        port: string_at(&n, "port").unwrap_or_else(|| "22".into()),
        proxy,
        log_level: string_at(&n, "log_level").unwrap_or_else(|| "fatal".into()),
        keys_only: n.get("keys_only").and_then(Node::as_bool),
        keys: strings(n.get("keys")),
        key_data: strings(n.get("key_data")),
        config,
        raw: node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_file_names() {
        assert_eq!(
            destination_file_name("config/deploy.yml", "staging"),
            "config/deploy.staging.yml"
        );
        assert_eq!(
            destination_file_name("config/foo.yml", "x"),
            "config/foo.x.yml"
        );
        assert_eq!(destination_file_name("deploy", "x"), "deploy.x.yml");
        assert_eq!(leading_int("25"), 25);
        assert_eq!(leading_int("abc"), 0);
    }
}
