//! Pull-request previews: the `x-dhow-preview` block of `deploy.yml` (a root `x-` extension key,
//! which real Kamal accepts and ignores) and the derivation of one preview's configuration from
//! the merged tree. Every name a preview creates carries `pr-<N>`: the service
//! (`<service>-pr-<N>`, hence its containers, env files, app directory and lock), its accessories,
//! its named volumes and host paths, its proxy host (`pr-<N>.<domain>`) or path prefix
//! (`/pr-<N>`); a preview runs only on hosts the configuration already has.

use crate::config::error::{ConfigError, ErrorKind};
use crate::config::model::Config;
use crate::config::yaml::{Key, Node, Span, Value};

/// The extension key.
pub const KEY: &str = "x-dhow-preview";

/// The label every preview container carries, with the pull request number as its value.
pub const LABEL: &str = "dhow.preview";

/// What to do when a new preview would exceed the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the new preview (the default).
    Refuse,
    /// Remove the preview that was deployed longest ago, then deploy.
    RemoveOldest,
}

/// The validated `x-dhow-preview` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewSettings {
    /// Previews answer on `pr-<N>.<domain>`.
    pub domain: Option<String>,
    /// Without a domain: previews answer under `/pr-<N>` on the app's own proxy host(s).
    pub path_prefix: bool,
    /// The roles a preview gets (default: the primary role only).
    pub roles: Option<Vec<String>>,
    /// The accessories a preview gets, each its own copy (default: none).
    pub accessories: Vec<String>,
    /// The hosts previews run on (default: the hosts of their roles); each must be a host of
    /// the configuration.
    pub hosts: Vec<String>,
    /// The most previews live at once.
    pub max: u32,
    /// What happens to a preview beyond `max`.
    pub when_full: WhenFull,
    /// `docker run --memory` for every preview container.
    pub memory: Option<String>,
    /// `docker run --cpus` for every preview container.
    pub cpus: Option<String>,
    /// Only pull requests carrying this label get a preview.
    pub label: Option<String>,
    /// Whether pull requests from forks get a preview (default false: they have no secrets).
    pub forks: bool,
    /// Previews idle longer than this are removed by `dhow preview sweep` (seconds; 7 days).
    pub ttl_seconds: u64,
    /// Whether the preview's proxy host gets a certificate (default false).
    pub ssl: bool,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        Self {
            domain: None,
            path_prefix: false,
            roles: None,
            accessories: Vec::new(),
            hosts: Vec::new(),
            max: 5,
            when_full: WhenFull::Refuse,
            memory: None,
            cpus: None,
            label: None,
            forks: false,
            ttl_seconds: 7 * 86_400,
            ssl: false,
        }
    }
}

const KEYS: &[&str] = &[
    "domain",
    "path_prefix",
    "roles",
    "accessories",
    "hosts",
    "max",
    "when_full",
    "memory",
    "cpus",
    "label",
    "forks",
    "ttl",
    "ssl",
];

/// The service name of preview `pr` of `service`.
pub fn service_name(service: &str, pr: u64) -> String {
    format!("{service}-pr-{pr}")
}

/// `pr-<N>`, the mark every name of a preview carries.
pub fn mark(pr: u64) -> String {
    format!("pr-{pr}")
}

fn error(path: &str, node: Option<&Node>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(ErrorKind::Invalid, path, message).at(node.map(|n| &n.span))
}

fn type_error(path: &str, node: &Node, expected: &str) -> ConfigError {
    ConfigError::new(
        ErrorKind::Type,
        path,
        format!("should be {expected}, found {}", node.type_word()),
    )
    .at(Some(&node.span))
    .expected(expected)
}

fn string_list(path: &str, node: &Node, errors: &mut Vec<ConfigError>) -> Vec<String> {
    if let Value::Seq(items) = &node.value {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.to_ruby_string() {
                Some(s) if item.is_stringish() => Some(s),
                _ => {
                    errors.push(type_error(&format!("{path}/{i}"), item, "a string"));
                    None
                }
            })
            .collect()
    } else {
        errors.push(type_error(path, node, "a list of strings"));
        Vec::new()
    }
}

/// Parses a duration like `7d`, `12h`, `30m`, `90s` or `2w` into seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Reads `x-dhow-preview` from the merged tree: `Ok(None)` when the block is absent, every
/// problem with its key path and position otherwise.
pub fn settings(raw: &Node) -> Result<Option<PreviewSettings>, Vec<ConfigError>> {
    let Some(block) = raw.get(KEY) else {
        return Ok(None);
    };
    let Some(entries) = block.as_map() else {
        return Err(vec![type_error(KEY, block, "a map of preview settings")]);
    };
    let mut errors = Vec::new();
    let mut settings = PreviewSettings::default();
    for (key, node) in entries {
        let path = format!("{KEY}/{}", key.name);
        let string = |errors: &mut Vec<ConfigError>| match node.to_ruby_string() {
            Some(s) if node.is_stringish() && !s.is_empty() => Some(s),
            _ => {
                errors.push(type_error(&path, node, "a non-empty string"));
                None
            }
        };
        let boolean = |errors: &mut Vec<ConfigError>| {
            node.as_bool().or_else(|| {
                errors.push(type_error(&path, node, "true or false"));
                None
            })
        };
        match key.name.as_str() {
            "domain" => {
                settings.domain = string(&mut errors).map(|d| d.trim_matches('.').to_owned());
            }
            "path_prefix" => settings.path_prefix = boolean(&mut errors).unwrap_or(false),
            "roles" => settings.roles = Some(string_list(&path, node, &mut errors)),
            "accessories" => settings.accessories = string_list(&path, node, &mut errors),
            "hosts" => settings.hosts = string_list(&path, node, &mut errors),
            "max" => match node.as_int().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => settings.max = n,
                _ => errors.push(type_error(&path, node, "a positive whole number")),
            },
            "when_full" => match node.as_str() {
                Some("refuse") => settings.when_full = WhenFull::Refuse,
                Some("remove_oldest") => settings.when_full = WhenFull::RemoveOldest,
                _ => errors.push(
                    error(&path, Some(node), "should be `refuse` or `remove_oldest`")
                        .expected("refuse | remove_oldest"),
                ),
            },
            "memory" => settings.memory = string(&mut errors),
            "cpus" => {
                settings.cpus = match &node.value {
                    Value::Int(n) => Some(n.to_string()),
                    Value::Float(f) => Some(crate::config::yaml::ruby_float(*f)),
                    _ => string(&mut errors),
                };
            }
            "label" => settings.label = string(&mut errors),
            "forks" => settings.forks = boolean(&mut errors).unwrap_or(false),
            "ttl" => match node.to_ruby_string().as_deref().and_then(parse_duration) {
                Some(seconds) if seconds > 0 => settings.ttl_seconds = seconds,
                _ => errors.push(
                    error(
                        &path,
                        Some(node),
                        "should be a duration such as 7d, 12h or 30m",
                    )
                    .expected("a duration: <number>s|m|h|d|w"),
                ),
            },
            "ssl" => settings.ssl = boolean(&mut errors).unwrap_or(false),
            other => errors.push(
                ConfigError::new(ErrorKind::UnknownKey, KEY, format!("unknown key: {other}"))
                    .path(path.clone())
                    .at(Some(&key.span))
                    .hint(format!("known keys: {}", KEYS.join(", "))),
            ),
        }
    }
    if settings.domain.is_none() && !settings.path_prefix {
        errors.push(
            error(
                KEY,
                Some(block),
                "needs `domain` (previews answer on pr-<N>.<domain>) or `path_prefix: true` \
                 (previews answer under /pr-<N>)",
            )
            .path(KEY),
        );
    }
    if errors.is_empty() {
        Ok(Some(settings))
    } else {
        Err(errors)
    }
}

fn key(name: &str) -> Key {
    Key {
        name: name.to_owned(),
        span: Span::synthetic(),
    }
}

fn string_node(text: impl Into<String>) -> Node {
    Node::synthetic(Value::Str(text.into()))
}

fn map_entries(node: &mut Node) -> Option<&mut Vec<(Key, Node)>> {
    match &mut node.value {
        Value::Map(entries) => Some(entries),
        _ => None,
    }
}

fn get_mut<'a>(entries: &'a mut [(Key, Node)], name: &str) -> Option<&'a mut Node> {
    entries
        .iter_mut()
        .find(|(k, _)| k.name == name)
        .map(|(_, v)| v)
}

fn remove(entries: &mut Vec<(Key, Node)>, name: &str) {
    entries.retain(|(k, _)| k.name != name);
}

/// A volume of a preview: a named volume or a host path gets `-pr-<N>` appended; an anonymous
/// volume (`/data`) stays as it is.
pub fn volume(spec: &str, pr: u64) -> String {
    match spec.split_once(':') {
        Some((source, rest)) if !source.is_empty() => format!("{source}-{}:{rest}", mark(pr)),
        _ => spec.to_owned(),
    }
}

/// The host name of a host entry (`"1.2.3.4"` or `{"1.2.3.4": tags}`).
fn host_of(entry: &Node) -> Option<String> {
    match &entry.value {
        Value::Map(entries) if entries.len() == 1 => Some(entries[0].0.name.clone()),
        _ => entry.to_ruby_string(),
    }
}

/// Every host the configuration names in `servers`.
fn all_hosts(servers: &Node) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut add = |list: &Node| {
        for entry in list.as_seq().unwrap_or_default() {
            if let Some(host) = host_of(entry)
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        }
    };
    match &servers.value {
        Value::Seq(_) => add(servers),
        Value::Map(roles) => {
            for (_, role) in roles {
                match &role.value {
                    Value::Seq(_) => add(role),
                    Value::Map(_) => {
                        if let Some(list) = role.get("hosts") {
                            add(list);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    hosts
}

/// Replaces whole-word occurrences of `from` (bounded by anything but `[A-Za-z0-9_-]`).
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        let before_ok = before.is_none_or(|c| !is_word(c));
        let after = &rest[at + from.len()..];
        let after_ok = after.chars().next().is_none_or(|c| !is_word(c));
        out.push_str(&rest[..at]);
        if before_ok && after_ok {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn rewrite_strings(node: &mut Node, renames: &[(String, String)]) {
    match &mut node.value {
        Value::Str(text) => {
            for (from, to) in renames {
                if text.contains(from.as_str()) {
                    *text = replace_word(text, from, to);
                }
            }
        }
        Value::Map(entries) => {
            for (_, value) in entries {
                rewrite_strings(value, renames);
            }
        }
        Value::Seq(items) => {
            for item in items {
                rewrite_strings(item, renames);
            }
        }
        _ => {}
    }
}

/// Adds `name: value` to the clear part of an `env` node (flat or `clear:`), creating it.
fn add_clear_env(parent: &mut Vec<(Key, Node)>, vars: &[(&str, String)]) {
    if get_mut(parent, "env").is_none() {
        parent.push((key("env"), Node::synthetic(Value::Map(Vec::new()))));
    }
    let Some(env) = get_mut(parent, "env").and_then(map_entries) else {
        return;
    };
    let structured = env
        .iter()
        .any(|(k, _)| matches!(k.name.as_str(), "clear" | "secret" | "tags"));
    let target = if structured {
        if get_mut(env, "clear").is_none() {
            env.push((key("clear"), Node::synthetic(Value::Map(Vec::new()))));
        }
        match get_mut(env, "clear").and_then(map_entries) {
            Some(clear) => clear,
            None => return,
        }
    } else {
        env
    };
    for (name, value) in vars {
        Node::map_set(target, key(name), string_node(value.clone()));
    }
}

fn add_label(parent: &mut Vec<(Key, Node)>, pr: u64) {
    if get_mut(parent, "labels").is_none() {
        parent.push((key("labels"), Node::synthetic(Value::Map(Vec::new()))));
    }
    if let Some(labels) = get_mut(parent, "labels").and_then(map_entries) {
        Node::map_set(labels, key(LABEL), string_node(pr.to_string()));
    }
}

fn rewrite_volumes(parent: &mut [(Key, Node)], name: &str, pr: u64) {
    if let Some(Value::Seq(items)) = get_mut(parent, name).map(|n| &mut n.value) {
        for item in items {
            if let Value::Str(spec) = &mut item.value {
                *spec = volume(spec, pr);
            }
        }
    }
}

/// Points a proxy map at the preview: `pr-<N>.<domain>`, or the `/pr-<N>` path prefix.
fn rewrite_proxy(proxy: &mut Node, settings: &PreviewSettings, host: Option<&str>, pr: u64) {
    let Some(entries) = map_entries(proxy) else {
        return;
    };
    if let Some(host) = host {
        remove(entries, "hosts");
        Node::map_set(entries, key("host"), string_node(host));
    } else {
        remove(entries, "path_prefixes");
        Node::map_set(
            entries,
            key("path_prefix"),
            string_node(format!("/{}", mark(pr))),
        );
    }
    remove(entries, "ssl_redirect");
    Node::map_set(
        entries,
        key("ssl"),
        Node::synthetic(Value::Bool(settings.ssl)),
    );
}

/// Adds `--memory`/`--cpus` to a role's or accessory's `options`.
fn add_caps(entries: &mut Vec<(Key, Node)>, settings: &PreviewSettings) {
    if settings.memory.is_none() && settings.cpus.is_none() {
        return;
    }
    if get_mut(entries, "options").is_none_or(|n| n.as_map().is_none()) {
        remove(entries, "options");
        entries.push((key("options"), Node::synthetic(Value::Map(Vec::new()))));
    }
    if let Some(options) = get_mut(entries, "options").and_then(map_entries) {
        if let Some(memory) = &settings.memory {
            Node::map_set(options, key("memory"), string_node(memory.clone()));
        }
        if let Some(cpus) = &settings.cpus {
            Node::map_set(options, key("cpus"), string_node(cpus.clone()));
        }
    }
}

/// A role as a map (`hosts:` + settings), with its hosts limited to `allowed` (all when empty).
fn preview_role(role: &Node, allowed: &[String]) -> (Node, Vec<String>) {
    let mut node = match &role.value {
        Value::Seq(_) => Node::synthetic(Value::Map(vec![(key("hosts"), role.clone())])),
        _ => role.clone(),
    };
    let mut kept = Vec::new();
    if let Some(entries) = map_entries(&mut node)
        && let Some(Value::Seq(items)) = get_mut(entries, "hosts").map(|n| &mut n.value)
    {
        items.retain(|entry| {
            host_of(entry).is_some_and(|h| allowed.is_empty() || allowed.contains(&h))
        });
        kept = items.iter().filter_map(host_of).collect();
    }
    (node, kept)
}

/// The merged tree of preview `pr`: see the module documentation for what changes.
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the tree, section by section"
)]
pub fn derive(raw: &Node, settings: &PreviewSettings, pr: u64) -> Result<Node, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut tree = raw.clone();
    let Some(root) = map_entries(&mut tree) else {
        return Err(vec![error("", Some(raw), "the configuration is not a map")]);
    };
    let Some(service) = root
        .iter()
        .find(|(k, _)| k.name == "service")
        .and_then(|(_, v)| v.to_ruby_string())
    else {
        // The normal validation reports the missing service.
        return Ok(tree);
    };
    let preview_service = service_name(&service, pr);
    let host = settings
        .domain
        .as_ref()
        .map(|domain| format!("{}.{domain}", mark(pr)));

    // Hosts: only ones the configuration already has.
    let servers = root
        .iter()
        .find(|(k, _)| k.name == "servers")
        .map_or_else(|| Node::synthetic(Value::Null), |(_, v)| v.clone());
    let known = all_hosts(&servers);
    for (i, h) in settings.hosts.iter().enumerate() {
        if !known.contains(h) {
            errors.push(
                error(
                    &format!("{KEY}/hosts/{i}"),
                    raw.get(KEY).and_then(|b| b.get("hosts")),
                    format!(
                        "{h} is not a host of this configuration; previews run only on its \
                         hosts ({})",
                        known.join(", ")
                    ),
                )
                .path(format!("{KEY}/hosts/{i}")),
            );
        }
    }

    // Roles: the chosen ones, as maps, on the allowed hosts, with the caps.
    let primary = root
        .iter()
        .find(|(k, _)| k.name == "primary_role")
        .and_then(|(_, v)| v.to_ruby_string())
        .unwrap_or_else(|| "web".to_owned());
    let role_list: Vec<(String, Node)> = match &servers.value {
        Value::Seq(_) => vec![("web".to_owned(), servers.clone())],
        Value::Map(roles) => roles
            .iter()
            .map(|(k, v)| (k.name.clone(), v.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let wanted = settings
        .roles
        .clone()
        .unwrap_or_else(|| vec![primary.clone()]);
    let mut new_roles = Vec::new();
    let mut preview_hosts = Vec::new();
    for (i, name) in wanted.iter().enumerate() {
        let Some((_, role)) = role_list.iter().find(|(n, _)| n == name) else {
            errors.push(
                error(
                    &format!("{KEY}/roles/{i}"),
                    raw.get(KEY).and_then(|b| b.get("roles")),
                    format!(
                        "{name} is not a role of this configuration (roles: {})",
                        role_list
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .path(format!("{KEY}/roles/{i}")),
            );
            continue;
        };
        let (mut node, kept) = preview_role(role, &settings.hosts);
        if kept.is_empty() {
            errors.push(
                error(
                    &format!("{KEY}/hosts"),
                    raw.get(KEY),
                    format!("role {name} has none of the preview hosts"),
                )
                .path(format!("{KEY}/hosts")),
            );
        }
        for h in kept {
            if !preview_hosts.contains(&h) {
                preview_hosts.push(h);
            }
        }
        if let Some(entries) = map_entries(&mut node) {
            add_caps(entries, settings);
            rewrite_volumes(entries, "volumes", pr);
            if let Some(proxy) = get_mut(entries, "proxy") {
                rewrite_proxy(proxy, settings, host.as_deref(), pr);
            }
            if let Some(labels) = get_mut(entries, "labels").and_then(map_entries) {
                Node::map_set(labels, key(LABEL), string_node(pr.to_string()));
            }
        }
        new_roles.push((key(name), node));
    }
    if let Some(servers) = get_mut(root, "servers") {
        *servers = Node {
            value: Value::Map(new_roles),
            span: servers.span.clone(),
            tag: None,
        };
    }
    if !wanted.contains(&primary)
        && let Some(first) = wanted.first()
    {
        Node::map_set(root, key("primary_role"), string_node(first.clone()));
    }

    // Accessories: the chosen ones, renamed, on the first preview host, no published ports.
    let mut renames: Vec<(String, String)> = Vec::new();
    let accessory_host = preview_hosts.first().cloned();
    let mut new_accessories = Vec::new();
    let existing: Vec<(Key, Node)> = root
        .iter()
        .find(|(k, _)| k.name == "accessories")
        .and_then(|(_, v)| v.as_map())
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    for (i, name) in settings.accessories.iter().enumerate() {
        let Some((k, accessory)) = existing.iter().find(|(k, _)| &k.name == name) else {
            errors.push(
                error(
                    &format!("{KEY}/accessories/{i}"),
                    raw.get(KEY).and_then(|b| b.get("accessories")),
                    format!("{name} is not an accessory of this configuration"),
                )
                .path(format!("{KEY}/accessories/{i}")),
            );
            continue;
        };
        let mut node = accessory.clone();
        if let Some(entries) = map_entries(&mut node) {
            let base_name = entries
                .iter()
                .find(|(k, _)| k.name == "service")
                .and_then(|(_, v)| v.to_ruby_string())
                .unwrap_or_else(|| format!("{service}-{name}"));
            let new_name = format!("{preview_service}-{name}");
            renames.push((base_name, new_name.clone()));
            Node::map_set(entries, key("service"), string_node(new_name));
            for placement in ["host", "hosts", "role", "roles", "tag", "tags"] {
                remove(entries, placement);
            }
            if let Some(h) = &accessory_host {
                entries.push((key("host"), string_node(h.clone())));
            }
            remove(entries, "port");
            rewrite_volumes(entries, "volumes", pr);
            rewrite_volumes(entries, "directories", pr);
            add_caps(entries, settings);
            add_label(entries, pr);
            if let Some(proxy) = get_mut(entries, "proxy") {
                let accessory_host = settings
                    .domain
                    .as_ref()
                    .map(|domain| format!("{}-{name}.{domain}", mark(pr)));
                rewrite_proxy(proxy, settings, accessory_host.as_deref(), pr);
            }
        }
        new_accessories.push((k.clone(), node));
    }
    remove(root, "accessories");
    if !new_accessories.is_empty() {
        root.push((
            key("accessories"),
            Node::synthetic(Value::Map(new_accessories)),
        ));
    }

    // The app finds its accessories under their preview names.
    renames.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    if let Some(env) = get_mut(root, "env") {
        rewrite_strings(env, &renames);
    }
    if let Some(Value::Map(roles)) = get_mut(root, "servers").map(|s| &mut s.value) {
        for (_, role) in roles {
            if let Some(env) = map_entries(role).and_then(|e| get_mut(e, "env")) {
                rewrite_strings(env, &renames);
            }
        }
    }

    // The root proxy, volumes, labels and the preview's own env.
    if let Some(proxy) = get_mut(root, "proxy") {
        rewrite_proxy(proxy, settings, host.as_deref(), pr);
    }
    rewrite_volumes(root, "volumes", pr);
    add_label(root, pr);
    let url = match &host {
        Some(host) => format!("{}://{host}", if settings.ssl { "https" } else { "http" }),
        None => format!("/{}", mark(pr)),
    };
    add_clear_env(
        root,
        &[("DHOW_PREVIEW", pr.to_string()), ("DHOW_PREVIEW_URL", url)],
    );
    Node::map_set(root, key("service"), string_node(preview_service));

    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(errors)
    }
}

/// Names of a loaded preview configuration that do not carry `pr-<N>`: the service, accessory
/// service names, named volumes and host paths. Empty for every configuration [`derive`] makes;
/// a guard before anything touches a host.
pub fn unmarked_names(config: &Config, pr: u64) -> Vec<String> {
    let mark = mark(pr);
    let mut names = vec![config.service.clone()];
    names.extend(config.accessories.iter().map(|a| a.service_name.clone()));
    let volume_sources = config
        .volumes
        .iter()
        .chain(config.accessories.iter().flat_map(|a| a.volumes.iter()))
        .filter_map(|v| v.split_once(':').map(|(source, _)| source.to_owned()));
    names.extend(volume_sources);
    names.retain(|name| !name.contains(&mark));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_carry_the_mark() {
        assert_eq!(volume("data:/var/lib/data", 7), "data-pr-7:/var/lib/data");
        assert_eq!(volume("/srv/app:/app:ro", 7), "/srv/app-pr-7:/app:ro");
        assert_eq!(volume("/anonymous", 7), "/anonymous");
    }

    #[test]
    fn words_are_replaced_only_whole() {
        let r = |t: &str| replace_word(t, "shop-db", "shop-pr-7-db");
        assert_eq!(
            r("postgres://shop-db:5432/x"),
            "postgres://shop-pr-7-db:5432/x"
        );
        assert_eq!(r("shop-db"), "shop-pr-7-db");
        assert_eq!(r("shop-db-replica shop-db"), "shop-db-replica shop-pr-7-db");
        assert_eq!(r("myshop-db,shop-db"), "myshop-db,shop-pr-7-db");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("30m"), Some(1_800));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("7y"), None);
    }
}
