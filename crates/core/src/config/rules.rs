//! Kamal's cross-field rules (`Configuration#ensure_*`, `Role#ensure_one_host_for_ssl`), with
//! Kamal's messages, each pointing at the node that breaks it.

use super::error::{ConfigError, ErrorKind, did_you_mean};
use super::load::LoadInput;
use super::model::{Config, Ssl};
use super::yaml::{Node, Span, Value};

fn span_of(config: &Config, key: &str) -> Option<Span> {
    config.raw.get_key(key).map(|k| k.span.clone())
}

fn push(
    errors: &mut Vec<ConfigError>,
    message: impl Into<String>,
    kind: ErrorKind,
    path: &str,
    span: Option<&Span>,
) {
    errors.push(ConfigError::new(kind, "", message).path(path).at(span));
}

/// Runs every rule, adding an error for each one broken.
pub(crate) fn check(config: &Config, input: &LoadInput<'_>, errors: &mut Vec<ConfigError>) {
    if config.require_destination && config.destination.is_none() {
        errors.push(
            ConfigError::new(ErrorKind::Missing, "", "You must specify a destination")
                .path("require_destination")
                .at(span_of(config, "require_destination").as_ref())
                .hint("pass -d <destination>"),
        );
    }
    required_keys(config, errors);
    minimum_version(config, input.running_version, errors);
    if config.retain_containers < 1 {
        push(
            errors,
            "Must retain at least 1 container",
            ErrorKind::Invalid,
            "retain_containers",
            span_of(config, "retain_containers").as_ref(),
        );
    }
    service_name(config, errors);
    // Kamal validates each role's merged proxy when it first uses it, in the SSL checks.
    for role in &config.roles {
        let Some(proxy) = &role.proxy else { continue };
        let mut merged_errors = Vec::new();
        super::validate::proxy(
            &mut merged_errors,
            &proxy.raw,
            super::schema::example_at("proxy", &["proxy"]),
            "proxy",
        );
        for e in merged_errors {
            if !errors
                .iter()
                .any(|x| x.message == e.message && x.span == e.span)
            {
                errors.push(e);
            }
        }
    }
    ssl_rules(config, errors);
    if config.registry.is_local() && config.builder.is_remote(input.local_arch) {
        let remote = config.builder.remote.clone().unwrap_or_default();
        if uri_scheme(&remote).as_deref() != Some("ssh") {
            let span = config.builder.raw.get("remote").map(|n| n.span.clone());
            errors.push(
                ConfigError::new(ErrorKind::Invalid, "", "Local registry with remote builder requires an SSH URL (e.g., ssh://user@host)")
                    .path("builder/remote")
                    .at(span.as_ref()),
            );
        }
    }
    // Kamal compares `Proxy::Run` objects by identity, so even identical settings on two proxy
    // roles of one host are "conflicting" there; dhow compares the settings themselves.
    for host in config.all_hosts() {
        let runs = config.proxy_runs(&host);
        if let Some(other) = runs
            .first()
            .and_then(|first| runs.iter().find(|r| !r.raw.same_value(&first.raw)))
        {
            {
                errors.push(
                    ConfigError::new(
                        ErrorKind::Invalid,
                        "",
                        format!("Conflicting proxy run configurations for host {host}"),
                    )
                    .path("proxy/run")
                    .at(Some(&other.raw.span).filter(|s| s.line > 0)),
                );
            }
        }
    }
    hooks_output(config, errors);
}

fn required_keys(config: &Config, errors: &mut Vec<ConfigError>) {
    for key in ["service", "registry"] {
        if !config.raw.get(key).is_some_and(Node::is_present) {
            let mut e = ConfigError::new(
                ErrorKind::Missing,
                "",
                format!("Missing required configuration for {key}"),
            )
            .path(key);
            e = e.at(config.raw.get_key(key).map(|k| &k.span));
            errors.push(e);
            return;
        }
    }
    if config.image.trim().is_empty() {
        errors.push(
            ConfigError::new(ErrorKind::Missing, "", "Missing required configuration for image")
                .path("image")
                .at(config.raw.get_key("image").map(|k| &k.span))
                .hint("set `image: <user>/<app>` (only a localhost registry defaults it to the service name)"),
        );
        return;
    }
    let servers = config.raw.get("servers");
    if servers.is_none_or(Node::is_null) {
        if !config.raw.get("accessories").is_some_and(Node::is_present) {
            errors.push(
                ConfigError::new(
                    ErrorKind::Missing,
                    "",
                    "No servers or accessories specified",
                )
                .path("servers"),
            );
        }
        return;
    }
    let Some(primary) = config.primary_role() else {
        let mut e = ConfigError::new(
            ErrorKind::Invalid,
            "",
            format!(
                "The primary_role {} isn't defined",
                config.primary_role_name
            ),
        )
        .path("primary_role")
        .at(span_of(config, "primary_role")
            .or_else(|| span_of(config, "servers"))
            .as_ref());
        if let Some(c) = did_you_mean(
            &config.primary_role_name,
            config.roles.iter().map(|r| r.name.as_str()),
        ) {
            e = e.hint(format!("did you mean `{c}`?"));
        } else if !config.roles.is_empty() {
            e = e.hint(format!(
                "set `primary_role:` to one of: {}",
                config.role_names().join(", ")
            ));
        }
        errors.push(e);
        return;
    };
    if primary.hosts.is_empty() {
        errors.push(
            ConfigError::new(
                ErrorKind::Missing,
                "",
                format!("No servers specified for the {} primary_role", primary.name),
            )
            .path(format!("servers/{}", primary.name))
            .at(role_span(config, &primary.name).as_ref()),
        );
        return;
    }
    if let Some(role) = config
        .roles
        .iter()
        .find(|r| r.hosts.is_empty() && !config.allow_empty_roles)
    {
        {
            errors.push(
                ConfigError::new(
                    ErrorKind::Missing,
                    "",
                    format!("No servers specified for the {} role. You can ignore this with allow_empty_roles: true", role.name),
                )
                .path(format!("servers/{}", role.name))
                .at(role_span(config, &role.name).as_ref()),
            );
        }
    }
}

fn role_span(config: &Config, role: &str) -> Option<Span> {
    config
        .raw
        .get("servers")
        .and_then(|s| s.get_key(role))
        .map(|k| k.span.clone())
}

/// `Gem::Version` ordering: numeric segments compare as numbers, a string segment marks a
/// prerelease, which sorts before the release.
fn gem_segments(version: &str) -> Option<Vec<Result<u64, String>>> {
    let v = version.trim();
    if v.is_empty() {
        return Some(Vec::new());
    }
    if !v.starts_with(|c: char| c.is_ascii_digit())
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return None;
    }
    let mut out = Vec::new();
    for part in v.replace('-', ".pre.").split('.') {
        if part.is_empty() {
            return None;
        }
        let mut rest = part;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                out.push(Ok(rest[..digits].parse().ok()?));
                rest = &rest[digits..];
            } else {
                let letters = rest.chars().take_while(|c| !c.is_ascii_digit()).count();
                out.push(Err(rest[..letters].to_string()));
                rest = &rest[letters..];
            }
        }
    }
    while matches!(out.last(), Some(Ok(0))) {
        out.pop();
    }
    Some(out)
}

fn gem_greater(left: &str, right: &str) -> Option<bool> {
    let (lhs, rhs) = (gem_segments(left)?, gem_segments(right)?);
    for i in 0..lhs.len().max(rhs.len()) {
        let mine = lhs.get(i).cloned().unwrap_or(Ok(0));
        let theirs = rhs.get(i).cloned().unwrap_or(Ok(0));
        let ord = match (&mine, &theirs) {
            (Ok(p), Ok(q)) => p.cmp(q),
            (Err(p), Err(q)) => p.cmp(q),
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        };
        if ord != std::cmp::Ordering::Equal {
            return Some(ord == std::cmp::Ordering::Greater);
        }
    }
    Some(false)
}

fn minimum_version(config: &Config, running: &str, errors: &mut Vec<ConfigError>) {
    let Some(minimum) = &config.minimum_version else {
        return;
    };
    match gem_greater(minimum, running) {
        Some(true) => push(
            errors,
            format!("Current version is {running}, minimum required is {minimum}"),
            ErrorKind::Invalid,
            "minimum_version",
            config.raw.get("minimum_version").map(|n| &n.span),
        ),
        Some(false) => {}
        None => push(
            errors,
            format!("Malformed version number string {minimum}"),
            ErrorKind::Invalid,
            "minimum_version",
            config.raw.get("minimum_version").map(|n| &n.span),
        ),
    }
}

fn service_name(config: &Config, errors: &mut Vec<ConfigError>) {
    let Some(node) = config.raw.get("service") else {
        return;
    };
    let ok = match &node.value {
        Value::Str(s) | Value::Symbol(s) => s.split('\n').any(|line| {
            !line.is_empty()
                && line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }),
        _ => false,
    };
    if !ok {
        errors.push(
            ConfigError::new(
                ErrorKind::Invalid,
                "",
                "Service name can only include alphanumeric characters, hyphens, and underscores",
            )
            .path("service")
            .at(Some(&node.span)),
        );
    }
}

fn ssl_rules(config: &Config, errors: &mut Vec<ConfigError>) {
    for role in &config.roles {
        let Some(proxy) = &role.proxy else { continue };
        let ssl = proxy.ssl();
        if ssl != Ssl::Off && role.hosts.len() > 1 && !matches!(ssl, Ssl::Custom { .. }) {
            errors.push(
                ConfigError::new(
                    ErrorKind::Invalid,
                    "",
                    format!(
                        "SSL is only supported on a single server unless you provide custom certificates, found {} servers for role {}",
                        role.hosts.len(),
                        role.name
                    ),
                )
                .path(format!("servers/{}", role.name))
                .at(proxy.raw.get("ssl").map(|n| &n.span).filter(|s| s.line > 0)),
            );
            return;
        }
    }
    let hosts: Vec<String> = config
        .roles
        .iter()
        .filter(|r| r.ssl())
        .flat_map(|r| {
            r.proxy
                .as_ref()
                .map(super::model::Proxy::hosts)
                .unwrap_or_default()
        })
        .collect();
    let mut duplicates: Vec<String> = Vec::new();
    for h in &hosts {
        if hosts.iter().filter(|x| *x == h).count() > 1 && !duplicates.contains(h) {
            duplicates.push(h.clone());
        }
    }
    if !duplicates.is_empty() {
        errors.push(
            ConfigError::new(
                ErrorKind::Invalid,
                "",
                format!(
                    "Different roles can't share the same host for SSL: {}",
                    duplicates.join(", ")
                ),
            )
            .path("proxy/host"),
        );
    }
}

fn uri_scheme(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then(|| scheme.to_string())
}

fn hooks_output(config: &Config, errors: &mut Vec<ConfigError>) {
    let Some(node) = config.raw.get("hooks_output") else {
        return;
    };
    let check = |level: &Node, hook: Option<&str>, errors: &mut Vec<ConfigError>| {
        let Some(text) = level.to_ruby_string() else {
            return;
        };
        if text != "quiet" && text != "verbose" {
            let context = hook.map(|h| format!(" for hook '{h}'")).unwrap_or_default();
            errors.push(
                ConfigError::new(
                    ErrorKind::Invalid,
                    "",
                    format!(
                        "Invalid hooks_output '{text}'{context}, must be one of: quiet, verbose"
                    ),
                )
                .path(hook.map_or_else(
                    || "hooks_output".to_string(),
                    |h| format!("hooks_output/{h}"),
                ))
                .at(Some(&level.span))
                .expected("quiet or verbose"),
            );
        }
    };
    match &node.value {
        Value::Str(_) | Value::Symbol(_) => check(node, None, errors),
        Value::Map(entries) => {
            for (hook, level) in entries {
                check(level, Some(&hook.name), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gem_version_order() {
        assert_eq!(gem_greater("2.12.0", "2.11.0"), Some(true));
        assert_eq!(gem_greater("2.11", "2.11.0"), Some(false));
        assert_eq!(gem_greater("2.11.0.rc1", "2.11.0"), Some(false));
        assert_eq!(gem_greater("1.3.0", "2.11.0"), Some(false));
        assert_eq!(gem_greater("x y", "2.11.0"), None);
        assert_eq!(gem_greater("foo", "2.11.0"), None);
        assert_eq!(gem_greater("", "2.11.0"), Some(false));
    }

    #[test]
    fn schemes() {
        assert_eq!(uri_scheme("ssh://a@b").as_deref(), Some("ssh"));
        assert_eq!(uri_scheme("tcp://x:2375").as_deref(), Some("tcp"));
        assert_eq!(uri_scheme("builder-host"), None);
    }
}
