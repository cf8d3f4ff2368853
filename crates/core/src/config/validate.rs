//! The schema validator: Kamal's `Validator` classes (type checks against the documentation's
//! example values, unknown keys, and each section's own rules), collecting every error with its
//! key path and position instead of stopping at the first.

use super::error::{ConfigError, ErrorKind, did_you_mean};
use super::yaml::{Node, Span, Value};

/// A Ruby class the validator compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Int,
    Float,
    Bool,
    Array,
    Hash,
    Nil,
    Symbol,
    Date,
}

impl Ty {
    pub(crate) fn of(node: &Node) -> Ty {
        match node.value {
            Value::Str(_) => Ty::Str,
            Value::Int(_) => Ty::Int,
            Value::Float(_) => Ty::Float,
            Value::Bool(_) => Ty::Bool,
            Value::Seq(_) => Ty::Array,
            Value::Map(_) => Ty::Hash,
            Value::Null => Ty::Nil,
            Value::Symbol(_) => Ty::Symbol,
            Value::Date(_) => Ty::Date,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "an integer",
            Ty::Float => "a float",
            Ty::Bool => "a boolean",
            Ty::Array => "an array",
            Ty::Hash => "a hash",
            Ty::Nil => "a nilclass",
            Ty::Symbol => "a symbol",
            Ty::Date => "a date",
        }
    }
}

fn valid_type(node: &Node, ty: Ty) -> bool {
    Ty::of(node) == ty || (ty == Ty::Str && node.is_stringish())
}

/// Raised (as in Ruby) when a check fails and the enclosing check cannot go on.
pub(crate) struct Stop;

pub(crate) type Res = Result<(), Stop>;

/// Kamal's built-in top-level commands (aliases may not shadow them).
pub(crate) const BUILTIN_COMMANDS: &[&str] = &[
    "accessory",
    "app",
    "audit",
    "build",
    "config",
    "deploy",
    "details",
    "docs",
    "help",
    "init",
    "lock",
    "proxy",
    "prune",
    "redeploy",
    "registry",
    "remove",
    "rollback",
    "secrets",
    "server",
    "setup",
    "upgrade",
    "version",
];

/// The validator: a context path and the list errors are added to.
pub(crate) struct Validator<'a> {
    pub(crate) errors: &'a mut Vec<ConfigError>,
    context: Vec<String>,
    allow_extensions: bool,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(errors: &'a mut Vec<ConfigError>, context: &str) -> Self {
        let context = if context.is_empty() {
            Vec::new()
        } else {
            vec![context.to_string()]
        };
        Self {
            errors,
            context,
            allow_extensions: false,
        }
    }

    pub(crate) fn context(&self) -> String {
        self.context.join("/")
    }

    fn with<T>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let pushed = !key.is_empty();
        if pushed {
            self.context.push(key.to_string());
        }
        let out = f(self);
        if pushed {
            self.context.pop();
        }
        out
    }

    /// Adds an error at the current context and stops.
    pub(crate) fn error(
        &mut self,
        kind: ErrorKind,
        message: impl Into<String>,
        span: Option<&Span>,
    ) -> Res {
        let e = ConfigError::new(kind, self.context(), message).at(span);
        self.errors.push(e);
        Err(Stop)
    }

    fn type_error(&mut self, node: &Node, types: &[Ty]) -> Res {
        let mut descriptions: Vec<&str> = Vec::new();
        for t in types {
            if !descriptions.contains(&t.describe()) {
                descriptions.push(t.describe());
            }
        }
        let expected = descriptions.join(" or ");
        let e = ConfigError::new(
            ErrorKind::Type,
            self.context(),
            format!("should be {expected}"),
        )
        .at(Some(&node.span))
        .expected(format!("{expected}, found {}", node.type_word()));
        self.errors.push(e);
        Err(Stop)
    }

    pub(crate) fn check_type(&mut self, node: &Node, types: &[Ty]) -> Res {
        if types.iter().any(|t| valid_type(node, *t)) {
            Ok(())
        } else {
            self.type_error(node, types)
        }
    }

    /// `validate_against_example!`.
    pub(crate) fn against_example(&mut self, node: &Node, example: &Node) -> Res {
        self.check_type(node, &[Ty::of(example)])?;
        let (Some(entries), Some(example_entries)) = (node.as_map(), example.as_map()) else {
            return Ok(());
        };
        let unknown: Vec<&super::yaml::Key> = entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !example_entries.iter().any(|(ek, _)| ek.name == k.name))
            .filter(|k| !(self.allow_extensions && k.name.starts_with("x-")))
            .collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|k| k.name.as_str()).collect();
            let word = if names.len() == 1 { "key" } else { "keys" };
            let candidates: Vec<&str> = example_entries
                .iter()
                .map(|(k, _)| k.name.as_str())
                .collect();
            let hints: Vec<String> = unknown
                .iter()
                .filter_map(|k| {
                    let hint = legacy_hint(&self.context(), &k.name)
                        .map(str::to_string)
                        .or_else(|| {
                            did_you_mean(&k.name, candidates.iter().copied())
                                .map(|c| format!("did you mean `{c}`?"))
                        })?;
                    Some(if unknown.len() == 1 {
                        hint
                    } else {
                        format!("`{}`: {hint}", k.name)
                    })
                })
                .collect();
            let mut e = ConfigError::new(
                ErrorKind::UnknownKey,
                self.context(),
                format!("unknown {word}: {}", names.join(", ")),
            )
            .at(Some(&unknown[0].span))
            .expected(format!("one of: {}", candidates.join(", ")));
            if !hints.is_empty() {
                e = e.hint(hints.join("; "));
            }
            self.errors.push(e);
        }
        let root = self.context.is_empty();
        for (key, value) in entries {
            if key.name.starts_with("x-") {
                continue;
            }
            let Some(example_value) = example.get(&key.name) else {
                continue;
            };
            let _ = self.with(&key.name, |v| {
                v.check_key(root, &key.name, value, example_value)
            });
        }
        Ok(())
    }

    fn check_key(&mut self, root: bool, key: &str, value: &Node, example_value: &Node) -> Res {
        if example_value.as_str() == Some("...") {
            if key == "proxy" && matches!(value.value, Value::Bool(_)) {
                return Ok(());
            }
            if root && key == "servers" {
                return self.check_type(value, &[Ty::Array, Ty::Hash]);
            }
            return self.check_type(value, &[Ty::Hash]);
        }
        if key == "ssl" {
            return self.check_type(value, &[Ty::Bool, Ty::Hash]);
        }
        if key == "hooks_output" {
            return self.hooks_output(value);
        }
        if key == "hosts" && !root {
            return self.servers_list(value);
        }
        if let Some(items) = example_value.as_seq() {
            let item_ty = items.first().map_or(Ty::Nil, Ty::of);
            return match key {
                "arch" => self.array_of_or_type(value, item_ty),
                "config" => self.ssh_config(value),
                "files" | "directories" => self.paths(value),
                _ => self.array_of(value, item_ty),
            };
        }
        if let Some(entries) = example_value.as_map() {
            return match key {
                "options" | "args" => self.check_type(value, &[Ty::Hash]),
                "labels" => {
                    let ty = entries.first().map_or(Ty::Nil, |(_, v)| Ty::of(v));
                    self.hash_of(value, ty)
                }
                _ => self.against_example(value, example_value),
            };
        }
        self.check_type(value, &[Ty::of(example_value)])
    }

    fn array_of_or_type(&mut self, value: &Node, ty: Ty) -> Res {
        let mut scratch = Vec::new();
        let ok = {
            let mut inner = Validator {
                errors: &mut scratch,
                context: self.context.clone(),
                allow_extensions: false,
            };
            if value.as_seq().is_some() {
                inner.array_of(value, ty).is_ok() && scratch_empty(&inner)
            } else {
                inner.check_type(value, &[ty]).is_ok()
            }
        };
        if ok && scratch.is_empty() {
            Ok(())
        } else {
            self.type_error(value, &[Ty::Array, ty])
        }
    }

    pub(crate) fn array_of(&mut self, value: &Node, ty: Ty) -> Res {
        self.check_type(value, &[Ty::Array])?;
        let mut failed = false;
        for (i, item) in value.as_seq().unwrap_or_default().iter().enumerate() {
            failed |= self
                .with(&i.to_string(), |v| v.check_type(item, &[ty]))
                .is_err();
        }
        if failed { Err(Stop) } else { Ok(()) }
    }

    pub(crate) fn hash_of(&mut self, value: &Node, ty: Ty) -> Res {
        self.check_type(value, &[Ty::Hash])?;
        let mut failed = false;
        for (k, item) in value.as_map().unwrap_or_default() {
            failed |= self.with(&k.name, |v| v.check_type(item, &[ty])).is_err();
        }
        if failed { Err(Stop) } else { Ok(()) }
    }

    /// `validate_servers!`: a list of hosts, each a string or a one-key map host → tag(s).
    pub(crate) fn servers_list(&mut self, value: &Node) -> Res {
        self.check_type(value, &[Ty::Array])?;
        let mut failed = false;
        for (i, server) in value.as_seq().unwrap_or_default().iter().enumerate() {
            failed |= self
                .with(&i.to_string(), |v| {
                    v.check_type(server, &[Ty::Str, Ty::Hash])?;
                    if let Some(entries) = server.as_map() {
                        if entries.len() != 1 {
                            return v.error(
                                ErrorKind::Invalid,
                                "multiple hosts found",
                                Some(&server.span),
                            );
                        }
                        let (host, tags) = &entries[0];
                        v.with(&host.name, |v| {
                            v.check_type(tags, &[Ty::Str, Ty::Array])?;
                            if tags.as_seq().is_some() {
                                v.array_of(tags, Ty::Str)?;
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })
                .is_err();
        }
        if failed { Err(Stop) } else { Ok(()) }
    }

    fn ssh_config(&mut self, value: &Node) -> Res {
        match value.value {
            Value::Seq(_) => self.array_of(value, Ty::Str),
            Value::Bool(_) | Value::Str(_) => Ok(()),
            _ => self.type_error(value, &[Ty::Bool, Ty::Bool, Ty::Str, Ty::Array]),
        }
    }

    fn paths(&mut self, value: &Node) -> Res {
        self.check_type(value, &[Ty::Array])?;
        let mut failed = false;
        for (i, path) in value.as_seq().unwrap_or_default().iter().enumerate() {
            failed |= self
                .with(&i.to_string(), |v| {
                    v.check_type(path, &[Ty::Str, Ty::Hash])?;
                    if path.as_map().is_some() {
                        for key in ["local", "remote", "mode", "owner", "options"] {
                            if let Some(field) = path.get(key) {
                                v.with(key, |v| v.check_type(field, &[Ty::Str]))?;
                            }
                        }
                    }
                    Res::Ok(())
                })
                .is_err();
        }
        if failed { Err(Stop) } else { Ok(()) }
    }

    fn hooks_output(&mut self, value: &Node) -> Res {
        if let Some(entries) = value.as_map() {
            let mut failed = false;
            for (hook, level) in entries {
                failed |= self
                    .with(&hook.name, |v| v.check_type(level, &[Ty::Str, Ty::Symbol]))
                    .is_err();
            }
            if failed { Err(Stop) } else { Ok(()) }
        } else {
            self.check_type(value, &[Ty::Str, Ty::Symbol])
        }
    }

    /// `validate_labels!`: reserved label names.
    pub(crate) fn labels(&mut self, labels: Option<&Node>) -> Res {
        let Some(entries) = labels.and_then(Node::as_map) else {
            return Ok(());
        };
        let mut failed = false;
        self.with("labels", |v| {
            for (key, _) in entries {
                if ["destination", "role", "service"].contains(&key.name.as_str()) {
                    failed |= v
                        .with(&key.name, |v| {
                            v.error(
                                ErrorKind::Invalid,
                                "invalid label. destination, role, and service are reserved labels",
                                Some(&key.span),
                            )
                        })
                        .is_err();
                }
            }
        });
        if failed { Err(Stop) } else { Ok(()) }
    }

    /// `validate_docker_options!`: no restart policy.
    pub(crate) fn docker_options(&mut self, options: Option<&Node>) -> Res {
        if options
            .and_then(|o| o.get("restart"))
            .is_some_and(Node::is_truthy)
        {
            {
                let span = options
                    .and_then(|o| o.get_key("restart"))
                    .map(|k| k.span.clone());
                return self.error(
                    ErrorKind::Invalid,
                    "Cannot set restart policy in docker options, unless-stopped is required",
                    span.as_ref(),
                );
            }
        }
        Ok(())
    }
}

fn scratch_empty(v: &Validator<'_>) -> bool {
    v.errors.is_empty()
}

/// Hints for keys that older or newer Kamal versions know.
fn legacy_hint(context: &str, key: &str) -> Option<&'static str> {
    Some(match (context, key) {
        ("", "traefik") => {
            "Kamal 2 replaced Traefik with kamal-proxy: configure `proxy:` instead (`dhow docs proxy`)"
        }
        ("", "healthcheck") => {
            "Kamal 2 checks health through the proxy: use `proxy: healthcheck: {path, interval, timeout}`"
        }
        ("", "stop_timeout") => {
            "`stop_timeout` is not a Kamal 2.11 setting; `drain_timeout` sets the stop wait"
        }
        ("", "output") => "`output` arrives in Kamal 2.12; Kamal 2.11 configs cannot use it",
        (_, "port") if context.starts_with("servers/") => {
            "a role's port goes under `proxy: app_port:` in Kamal 2"
        }
        _ => return None,
    })
}

/// Root validation (`Validator::Configuration`): root `x-` keys are allowed.
pub(crate) fn root(errors: &mut Vec<ConfigError>, node: &Node, example: &Node) {
    let mut v = Validator::new(errors, "");
    v.allow_extensions = true;
    let _ = v.against_example(node, example);
}

/// A section validated against its example with no extra rules (boot, logging, ssh, sshkit).
pub(crate) fn plain(errors: &mut Vec<ConfigError>, node: &Node, example: &Node, context: &str) {
    let _ = Validator::new(errors, context).against_example(node, example);
}

/// `Validator::Servers`.
pub(crate) fn servers(errors: &mut Vec<ConfigError>, node: &Node) {
    let mut v = Validator::new(errors, "servers");
    if v.check_type(node, &[Ty::Array, Ty::Hash, Ty::Nil]).is_ok() && node.as_seq().is_some() {
        let _ = v.servers_list(node);
    }
}

/// `Validator::Role`.
pub(crate) fn role(errors: &mut Vec<ConfigError>, node: &Node, example: &Node, context: &str) {
    let mut v = Validator::new(errors, context);
    if v.check_type(node, &[Ty::Array, Ty::Hash]).is_err() {
        return;
    }
    if node.as_seq().is_some() {
        let _ = v.servers_list(node);
    } else {
        let _ = v.against_example(node, example);
        let _ = v.labels(node.get("labels"));
        let _ = v.docker_options(node.get("options"));
    }
}

/// `Validator::Env`: the simple form (a map of strings) or the full form (clear/secret/tags).
pub(crate) fn env(errors: &mut Vec<ConfigError>, node: &Node, context: &str) {
    let mut v = Validator::new(errors, context);
    let _ = env_in(&mut v, node);
}

fn env_in(v: &mut Validator<'_>, node: &Node) -> Res {
    const SPECIAL: [&str; 3] = ["clear", "secret", "tags"];
    let Some(entries) = node.as_map() else {
        return v.check_type(node, &[Ty::Hash]);
    };
    let complex = entries
        .iter()
        .any(|(k, _)| SPECIAL.contains(&k.name.as_str()));
    if !complex {
        return v.hash_of(node, Ty::Str);
    }
    let unknown: Vec<&super::yaml::Key> = entries
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !SPECIAL.contains(&k.name.as_str()))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(|k| k.name.as_str()).collect();
        let word = if names.len() == 1 { "key" } else { "keys" };
        let mut e = ConfigError::new(
            ErrorKind::UnknownKey,
            v.context(),
            format!("unknown {word}: {}", names.join(", ")),
        )
        .at(Some(&unknown[0].span))
        .expected("only clear, secret and tags once any of them is used");
        if let Some(c) = did_you_mean(names[0], SPECIAL) {
            e = e.hint(format!("did you mean `{c}`?"));
        } else {
            e = e.hint(format!("move `{}` under `clear:`", names[0]));
        }
        v.errors.push(e);
    }
    if let Some(clear) = node.get("clear") {
        let _ = v.with("clear", |v| v.hash_of(clear, Ty::Str));
    }
    if let Some(secret) = node.get("secret") {
        let _ = v.with("secret", |v| v.array_of(secret, Ty::Str));
    }
    if let Some(tags) = node.get("tags") {
        if v.context() == "env" {
            let _: Res = v.with("tags", |v| {
                v.check_type(tags, &[Ty::Hash])?;
                for (tag, value) in tags.as_map().unwrap_or_default() {
                    let _: Res = v.with(&tag.name, |v| {
                        v.check_type(value, &[Ty::Hash])?;
                        env_in(v, value)
                    });
                }
                Ok(())
            });
        } else {
            let span = node.get_key("tags").map(|k| k.span.clone());
            let _ = v.error(
                ErrorKind::Invalid,
                "tags are only allowed in the root env",
                span.as_ref(),
            );
        }
    }
    Ok(())
}

/// `Validator::Registry`.
pub(crate) fn registry(errors: &mut Vec<ConfigError>, node: &Node, example: &Node, context: &str) {
    const CREDENTIALS: [&str; 2] = ["username", "password"];
    let strip = |n: &Node| -> Node {
        match &n.value {
            Value::Map(m) => Node {
                value: Value::Map(
                    m.iter()
                        .filter(|(k, _)| !CREDENTIALS.contains(&k.name.as_str()))
                        .cloned()
                        .collect(),
                ),
                span: n.span.clone(),
                tag: None,
            },
            _ => n.clone(),
        }
    };
    let mut v = Validator::new(errors, context);
    if v.against_example(&strip(node), &strip(example)).is_err() || node.as_map().is_none() {
        return;
    }
    let local = node
        .get("server")
        .and_then(Node::to_ruby_string)
        .is_some_and(|s| is_local_registry(&s));
    if local {
        return;
    }
    for key in CREDENTIALS {
        let _ = v.with(key, |v| {
            let Some(value) = node.get(key).filter(|n| n.is_present()) else {
                let span = node.get_key(key).map_or_else(|| node.span.clone(), |k| k.span.clone());
                let e = ConfigError::new(ErrorKind::Missing, v.context(), "is required")
                    .at(Some(&span))
                    .expected("a string, or a list with one secret name such as [KAMAL_REGISTRY_PASSWORD]");
                v.errors.push(e);
                return Err(Stop);
            };
            let ok = matches!(value.value, Value::Str(_))
                || value.as_seq().is_some_and(|s| s.len() == 1 && matches!(s[0].value, Value::Str(_)));
            if !ok {
                return v.error(ErrorKind::Type, "should be a string or an array with one string (for secret lookup)", Some(&value.span));
            }
            Ok(())
        });
    }
}

/// Kamal's `^localhost[:$]` test on a registry server.
pub(crate) fn is_local_registry(server: &str) -> bool {
    server.lines().any(|line| {
        line.strip_prefix("localhost")
            .is_some_and(|rest| rest.starts_with([':', '$']))
    })
}

/// `Validator::Accessory`.
pub(crate) fn accessory(errors: &mut Vec<ConfigError>, node: &Node, example: &Node, context: &str) {
    let mut v = Validator::new(errors, context);
    if v.against_example(node, example).is_err() {
        return;
    }
    let Some(entries) = node.as_map() else { return };
    let selectors = ["host", "hosts", "role", "roles", "tag", "tags"];
    let count = entries
        .iter()
        .filter(|(k, _)| selectors.contains(&k.name.as_str()))
        .count();
    if count != 1 {
        let span = entries
            .iter()
            .find(|(k, _)| {
                k.name == "host"
                    || k.name == "hosts"
                    || k.name == "role"
                    || k.name == "roles"
                    || k.name == "tag"
                    || k.name == "tags"
            })
            .map(|(k, _)| k.span.clone());
        let mut e = ConfigError::new(
            ErrorKind::Invalid,
            v.context(),
            "specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`",
        )
        .at(Some(span.as_ref().unwrap_or(&node.span)));
        e = e.expected(if count == 0 {
            "exactly one host selector, found none".to_string()
        } else {
            format!("exactly one host selector, found {count}")
        });
        v.errors.push(e);
    }
    let _ = v.labels(node.get("labels"));
    let _ = v.docker_options(node.get("options"));
}

/// `Validator::Alias`.
pub(crate) fn alias(
    errors: &mut Vec<ConfigError>,
    name: &super::yaml::Key,
    node: &Node,
    example: &Node,
) {
    let mut v = Validator::new(errors, &format!("aliases/{}", name.name));
    if v.against_example(node, example).is_err() {
        return;
    }
    let valid = !name.name.is_empty()
        && name
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        let _ = v.error(
            ErrorKind::Invalid,
            format!("Invalid alias name: '{}'. Must only contain lowercase letters, alphanumeric, hyphens and underscores.", name.name),
            Some(&name.span),
        );
        return;
    }
    if BUILTIN_COMMANDS.contains(&name.name.as_str()) {
        let _ = v.error(
            ErrorKind::Invalid,
            format!("Alias '{}' conflicts with a built-in command.", name.name),
            Some(&name.span),
        );
    }
}

/// `Validator::Builder`.
pub(crate) fn builder(errors: &mut Vec<ConfigError>, node: &Node, example: &Node) {
    let mut v = Validator::new(errors, "builder");
    if v.against_example(node, example).is_err() {
        return;
    }
    if let Some(kind) = node
        .get("cache")
        .and_then(|c| c.get("type"))
        .filter(|t| t.is_truthy())
    {
        let text = kind.to_ruby_string().unwrap_or_default();
        if text != "gha" && text != "registry" {
            let e = ConfigError::new(
                ErrorKind::Invalid,
                v.context(),
                format!("Invalid cache type: {text}"),
            )
            .at(Some(&kind.span))
            .path("builder/cache/type")
            .expected("gha or registry");
            v.errors.push(e);
        }
    }
    let arch = node.get("arch");
    if !arch.is_some_and(Node::is_present) {
        let span = arch.map_or_else(|| node.span.clone(), |a| a.span.clone());
        let e = ConfigError::new(ErrorKind::Missing, v.context(), "Builder arch not set")
            .at(Some(&span))
            .path("builder/arch")
            .expected("arch: amd64, arm64, or a list of them")
            .hint("add `arch: amd64` (or `arch: [amd64, arm64]`) under `builder:`");
        v.errors.push(e);
    }
    if node.get("pack").is_some_and(Node::is_truthy)
        && arch.and_then(Node::as_seq).is_some_and(|a| a.len() > 1)
    {
        let _ = v.error(
            ErrorKind::Invalid,
            "buildpacks only support building for one arch",
            arch.map(|a| &a.span),
        );
    }
    if node.get("local").and_then(Node::as_bool) == Some(false)
        && !node.get("remote").is_some_and(Node::is_present)
    {
        let span = node.get_key("local").map(|k| k.span.clone());
        let _ = v.error(
            ErrorKind::Invalid,
            "Cannot disable local builds, no remote is set",
            span.as_ref(),
        );
    }
}

/// `Validator::Proxy` (a null proxy config is not checked).
pub(crate) fn proxy(errors: &mut Vec<ConfigError>, node: &Node, example: &Node, context: &str) {
    if node.is_null() {
        return;
    }
    let mut v = Validator::new(errors, context);
    if v.against_example(node, example).is_err() || node.as_map().is_none() {
        return;
    }
    let present = |k: &str| node.get(k).is_some_and(Node::is_present);
    if !present("host") && !present("hosts") && node.get("ssl").is_some_and(Node::is_truthy) {
        let span = node.get_key("ssl").map(|k| k.span.clone());
        let e = ConfigError::new(
            ErrorKind::Invalid,
            v.context(),
            "Must set a host to enable automatic SSL",
        )
        .at(span.as_ref())
        .hint("add `host: app.example.com` next to `ssl: true`");
        v.errors.push(e);
    }
    if node.has("host") && node.has("hosts") {
        let span = node.get_key("hosts").map(|k| k.span.clone());
        let _ = v.error(
            ErrorKind::Invalid,
            "Specify one of 'host' or 'hosts', not both",
            span.as_ref(),
        );
    }
    if let Some(ssl) = node.get("ssl").filter(|s| s.as_map().is_some()) {
        let has = |k: &str| ssl.get(k).is_some_and(Node::is_present);
        if has("certificate_pem") && !has("private_key_pem") {
            let _ = v.error(
                ErrorKind::Missing,
                "Missing private_key_pem setting (required when certificate_pem is present)",
                Some(&ssl.span),
            );
        }
        if has("private_key_pem") && !has("certificate_pem") {
            let _ = v.error(
                ErrorKind::Missing,
                "Missing certificate_pem setting (required when private_key_pem is present)",
                Some(&ssl.span),
            );
        }
    }
    if let Some(run) = node.get("run").filter(|r| r.is_truthy()) {
        let has = |k: &str| run.get(k).is_some_and(Node::is_present);
        if run.get("publish").and_then(Node::as_bool) == Some(false)
            && (has("bind_ips") || has("http_port") || has("https_port"))
        {
            let span = run.get_key("publish").map(|k| k.span.clone());
            let _ = v.error(
                ErrorKind::Invalid,
                "Cannot set http_port, https_port or bind_ips when publish is false",
                span.as_ref(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{example, example_at};
    use super::super::yaml::parse;
    use super::*;

    fn msgs(errors: &[ConfigError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    fn node(text: &str) -> Node {
        parse(text, "t.yml", None).unwrap().unwrap()
    }

    #[test]
    fn unknown_keys_and_types_at_root() {
        let mut errors = Vec::new();
        root(
            &mut errors,
            &node("service: 1\nservrs: []\nretain_containers: '3'\nx-anchor: 1\n"),
            example("configuration"),
        );
        assert_eq!(
            msgs(&errors),
            [
                "unknown key: servrs",
                "retain_containers: should be an integer"
            ]
        );
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `servers`?"));
        assert_eq!(errors[0].span.as_ref().unwrap().line, 2);
    }

    #[test]
    fn role_labels_and_options() {
        let mut errors = Vec::new();
        let n = node("hosts: [a]\nlabels:\n  service: x\noptions:\n  restart: always\n");
        role(
            &mut errors,
            &n,
            example_at("role", &["servers", "workers"]),
            "servers/web",
        );
        assert_eq!(
            msgs(&errors),
            [
                "servers/web/labels/service: invalid label. destination, role, and service are reserved labels",
                "servers/web: Cannot set restart policy in docker options, unless-stopped is required"
            ]
        );
    }

    #[test]
    fn servers_list_shapes() {
        let mut errors = Vec::new();
        servers(
            &mut errors,
            &node("- a\n- b: [t1, 2]\n- {c: x, d: y}\n- [x]\n"),
        );
        assert_eq!(
            msgs(&errors),
            [
                "servers/2: multiple hosts found",
                "servers/3: should be a string or a hash"
            ]
        );
    }

    #[test]
    fn env_rules() {
        let mut errors = Vec::new();
        env(
            &mut errors,
            &node("clear: {A: 1}\nsecret: [B]\nFOO: x\n"),
            "env",
        );
        env(&mut errors, &node("tags: {t: {A: x}}\n"), "servers/web/env");
        env(&mut errors, &node("tags: {t1: {tags: {}}}\n"), "env");
        env(&mut errors, &node("A: [x]\n"), "env");
        assert_eq!(
            msgs(&errors),
            [
                "env: unknown key: FOO",
                "servers/web/env: tags are only allowed in the root env",
                "env/tags/t1: tags are only allowed in the root env",
                "env/A: should be a string"
            ]
        );
    }

    #[test]
    fn registry_rules() {
        let ex = example_at("registry", &["registry"]);
        let mut errors = Vec::new();
        registry(&mut errors, &node("{}"), ex, "registry");
        registry(
            &mut errors,
            &node("server: localhost:5000\n"),
            ex,
            "registry",
        );
        registry(
            &mut errors,
            &node("username: [a, b]\npassword: [P]\n"),
            ex,
            "registry",
        );
        assert_eq!(
            msgs(&errors),
            [
                "registry/username: is required",
                "registry/password: is required",
                "registry/username: should be a string or an array with one string (for secret lookup)"
            ]
        );
    }

    #[test]
    fn builder_rules() {
        let ex = example_at("builder", &["builder"]);
        let mut errors = Vec::new();
        builder(&mut errors, &node("cache: {type: s3}\nlocal: false\n"), ex);
        builder(
            &mut errors,
            &node("arch: [amd64, arm64]\npack: {builder: x}\n"),
            ex,
        );
        builder(&mut errors, &node("arch: {a: 1}\n"), ex);
        assert_eq!(
            msgs(&errors),
            [
                "builder: Invalid cache type: s3",
                "builder: Builder arch not set",
                "builder: Cannot disable local builds, no remote is set",
                "builder: buildpacks only support building for one arch",
                "builder/arch: should be an array or a string",
            ]
        );
    }

    #[test]
    fn proxy_rules() {
        let ex = example_at("proxy", &["proxy"]);
        let mut errors = Vec::new();
        proxy(&mut errors, &node("ssl: true\n"), ex, "proxy");
        proxy(
            &mut errors,
            &node("host: a\nhosts: [b]\nssl: {certificate_pem: C}\n"),
            ex,
            "proxy",
        );
        proxy(
            &mut errors,
            &node("run: {publish: false, http_port: 8080}\n"),
            ex,
            "proxy",
        );
        proxy(&mut errors, &node("false"), ex, "proxy");
        assert_eq!(
            msgs(&errors),
            [
                "proxy: Must set a host to enable automatic SSL",
                "proxy: Specify one of 'host' or 'hosts', not both",
                "proxy: Missing private_key_pem setting (required when certificate_pem is present)",
                "proxy: Cannot set http_port, https_port or bind_ips when publish is false",
                "proxy: should be a hash",
            ]
        );
    }

    #[test]
    fn accessory_and_alias_rules() {
        let ex = example_at("accessory", &["accessories", "mysql"]);
        let mut errors = Vec::new();
        accessory(
            &mut errors,
            &node("image: x\nhost: a\nrole: web\nlabels: {role: x}\n"),
            ex,
            "accessories/db",
        );
        accessory(
            &mut errors,
            &node("image: x\nfiles: [{local: a, mode: [x]}]\nhost: a\n"),
            ex,
            "accessories/db",
        );
        let ex = example_at("alias", &["aliases", "uname"]);
        let key = |n: &str| super::super::yaml::Key {
            name: n.into(),
            span: Span::synthetic(),
        };
        alias(&mut errors, &key("Bad!"), &node("x"), ex);
        alias(&mut errors, &key("deploy"), &node("x"), ex);
        assert_eq!(
            msgs(&errors),
            [
                "accessories/db: specify one of `host`, `hosts`, `role`, `roles`, `tag` or `tags`",
                "accessories/db/labels/role: invalid label. destination, role, and service are reserved labels",
                "accessories/db/files/0/mode: should be a string",
                "aliases/Bad!: Invalid alias name: 'Bad!'. Must only contain lowercase letters, alphanumeric, hyphens and underscores.",
                "aliases/deploy: Alias 'deploy' conflicts with a built-in command.",
            ]
        );
    }

    #[test]
    fn ssh_config_and_hooks_output() {
        let mut errors = Vec::new();
        plain(
            &mut errors,
            &node("config: 1\nport: 2222\n"),
            example_at("ssh", &["ssh"]),
            "ssh",
        );
        root(
            &mut errors,
            &node("hooks_output: {pre-deploy: [x]}\n"),
            example("configuration"),
        );
        assert_eq!(
            msgs(&errors),
            [
                "ssh/config: should be a boolean or a string or an array",
                "hooks_output/pre-deploy: should be a string or a symbol"
            ]
        );
    }
}
