//! `--hosts`, `--roles` and `--primary`: which hosts and roles a command acts on, with Kamal's
//! rules (`Kamal::Commander` and `Commander::Specifics`): `*` and `{a,b}` wildcards, roles cut
//! to the selected hosts, primary-role hosts first, the lock on the first selected host.

use crate::config::{Config, Role};

/// Why a filter selected nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("No --hosts match for {0}")]
    NoHosts(String),
    #[error("No --roles match for {0}")]
    NoRoles(String),
    #[error("the configuration has no primary host (no role with hosts)")]
    NoPrimaryHost,
}

/// The hosts and roles a command acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Role names, the primary role first, then in the configuration's order.
    pub roles: Vec<String>,
    /// Hosts, primary-role hosts first (stable), then the rest in configuration order.
    pub hosts: Vec<String>,
    /// The primary host of the selection: where the deploy lock lives.
    pub primary_host: String,
    /// The primary role of the selection, if any selected role runs on the primary host.
    pub primary_role: Option<String>,
}

impl Selection {
    /// The roles of this selection that run on `host`.
    pub fn roles_on<'c>(&self, config: &'c Config, host: &str) -> Vec<&'c Role> {
        self.roles
            .iter()
            .filter_map(|name| config.role(name))
            .filter(|role| role.hosts.iter().any(|h| h.name == host))
            .collect()
    }

    /// App hosts (hosts with at least one selected role), primary-role hosts first.
    pub fn app_hosts(&self, config: &Config) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|host| !self.roles_on(config, host).is_empty())
            .cloned()
            .collect()
    }

    /// Selected hosts that run the proxy (a proxy role or a proxied accessory).
    pub fn proxy_hosts(&self, config: &Config) -> Vec<String> {
        let proxy_hosts = config.proxy_hosts();
        self.hosts
            .iter()
            .filter(|host| proxy_hosts.contains(host))
            .cloned()
            .collect()
    }

    /// Selected hosts that carry an accessory.
    pub fn accessory_hosts(&self, config: &Config) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|host| config.accessories.iter().any(|a| a.hosts.contains(host)))
            .cloned()
            .collect()
    }
}

/// Splits a comma-separated option value (`-h a,b`) on the commas outside `{...}`, so
/// `-h 10.0.0.{1,2}` works (Kamal splits on every comma and so never matches such a pattern).
fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in value.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Kamal's `filter_specific_items`: items matching any filter (`File.fnmatch` with
/// `FNM_EXTGLOB`), each once, in filter order then item order.
pub fn filter_specific_items(filters: &[String], items: &[String]) -> Vec<String> {
    let mut matches: Vec<String> = Vec::new();
    for filter in filters {
        for item in items {
            if fnmatch(filter, item) && !matches.contains(item) {
                matches.push(item.clone());
            }
        }
    }
    matches
}

/// Ruby's `File.fnmatch(pattern, text, File::FNM_EXTGLOB)`: `*` (any run, including `/` since
/// `FNM_PATHNAME` is off), `?`, `[...]` classes, `{a,b}` alternatives and `\` escapes. Leading
/// dots need no special match because `FNM_DOTMATCH` only matters with `FNM_PATHNAME`... except
/// at the very start, where Ruby requires a literal dot; host and role names never start with one.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    expand_braces(pattern)
        .iter()
        .any(|alternative| glob(alternative.as_bytes(), text.as_bytes()))
}

/// `a{b,c}d` → `abd`, `acd` (nested braces expand recursively).
fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'{' => {
                if depth == 0 {
                    open = Some(index);
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open.unwrap_or(0);
                    let (prefix, inner, suffix) = (
                        &pattern[..start],
                        &pattern[start + 1..index],
                        &pattern[index + 1..],
                    );
                    let mut parts = Vec::new();
                    let mut level = 0usize;
                    let mut last = 0usize;
                    for (position, c) in inner.char_indices() {
                        match c {
                            '{' => level += 1,
                            '}' => level = level.saturating_sub(1),
                            ',' if level == 0 => {
                                parts.push(&inner[last..position]);
                                last = position + 1;
                            }
                            _ => {}
                        }
                    }
                    parts.push(&inner[last..]);
                    return parts
                        .into_iter()
                        .flat_map(|part| expand_braces(&format!("{prefix}{part}{suffix}")))
                        .collect();
                }
            }
            _ => {}
        }
    }
    vec![pattern.to_owned()]
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let (mut star_p, mut star_t) = (None::<usize>, 0usize);
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = Some(p);
                    star_t = t;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pattern[p..], text[t]) {
                        if matched {
                            p += next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == b'[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                byte if byte == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star_p {
            Some(star) => {
                p = star + 1;
                star_t += 1;
                t = star_t;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// Matches `byte` against a `[...]` class at the start of `pattern`; returns whether it matched
/// and the class's length, or `None` when the class is not closed.
fn class(pattern: &[u8], byte: u8) -> Option<(bool, usize)> {
    let mut index = 1;
    let negate = matches!(pattern.get(index), Some(b'!' | b'^'));
    if negate {
        index += 1;
    }
    let mut matched = false;
    let mut first = true;
    while index < pattern.len() {
        let current = pattern[index];
        if current == b']' && !first {
            return Some((matched != negate, index + 1));
        }
        first = false;
        if pattern.get(index + 1) == Some(&b'-')
            && pattern.get(index + 2).is_some_and(|&b| b != b']')
        {
            let high = pattern[index + 2];
            if current <= byte && byte <= high {
                matched = true;
            }
            index += 3;
        } else {
            if current == byte {
                matched = true;
            }
            index += 1;
        }
    }
    None
}

/// Applies `--hosts`, `--roles` and `--primary` to the configuration.
pub fn select(
    config: &Config,
    hosts: Option<&str>,
    roles: Option<&str>,
    primary: bool,
) -> Result<Selection, SelectionError> {
    let all_hosts = config.all_hosts();
    let role_names: Vec<String> = config.roles.iter().map(|role| role.name.clone()).collect();

    let specific_roles = specific(roles, &role_names, SelectionError::NoRoles)?;
    let mut specific_hosts = specific(hosts, &all_hosts, SelectionError::NoHosts)?;

    let role_of = |name: &String| config.role(name);
    if primary {
        let host = match &specific_roles {
            Some(names) => {
                let roles: Vec<&Role> = names.iter().filter_map(role_of).collect();
                primary_or_first(config, &roles)
                    .and_then(Role::primary_host)
                    .map(str::to_owned)
            }
            None => config.primary_host().map(str::to_owned),
        };
        specific_hosts = Some(vec![host.ok_or(SelectionError::NoPrimaryHost)?]);
    }

    let base_hosts = specific_hosts.clone().unwrap_or_else(|| all_hosts.clone());
    // Roles: the specified ones (or all), kept only when they run on a selected host.
    let candidate_roles: Vec<&Role> = match &specific_roles {
        Some(names) => names.iter().filter_map(role_of).collect(),
        None => config.roles.iter().collect(),
    };
    let mut selected_roles: Vec<&Role> = candidate_roles
        .iter()
        .copied()
        .filter(|role| role.hosts.iter().any(|h| base_hosts.contains(&h.name)))
        .collect();
    // Hosts: the specified ones (or all), cut to the hosts of the specified roles.
    let mut selected_hosts: Vec<String> = match &specific_roles {
        Some(names) => {
            let role_hosts: Vec<String> = names
                .iter()
                .filter_map(role_of)
                .flat_map(|role| role.host_names().into_iter().map(str::to_owned))
                .collect();
            if role_hosts.is_empty() {
                base_hosts.clone()
            } else {
                base_hosts
                    .iter()
                    .filter(|host| role_hosts.contains(host))
                    .cloned()
                    .collect()
            }
        }
        None => base_hosts.clone(),
    };

    let primary_specific_role = specific_roles.as_ref().and_then(|names| {
        let roles: Vec<&Role> = names.iter().filter_map(role_of).collect();
        primary_or_first(config, &roles)
    });
    let primary_host = specific_hosts
        .as_ref()
        .and_then(|hosts| hosts.first().cloned())
        .or_else(|| {
            primary_specific_role
                .and_then(Role::primary_host)
                .map(str::to_owned)
        })
        .or_else(|| config.primary_host().map(str::to_owned))
        .ok_or(SelectionError::NoPrimaryHost)?;
    let roles_on_primary: Vec<&Role> = selected_roles
        .iter()
        .copied()
        .filter(|role| role.hosts.iter().any(|h| h.name == primary_host))
        .collect();
    let primary_role = primary_or_first(config, &roles_on_primary).map(|role| role.name.clone());

    // Stable sorts: the primary role first; hosts of the primary role first.
    selected_roles.sort_by_key(|role| Some(&role.name) != primary_role.as_ref());
    let primary_role_hosts: Vec<&str> = primary_role
        .as_ref()
        .and_then(|name| config.role(name))
        .map(Role::host_names)
        .unwrap_or_default();
    let runs_primary_role = |host: &String| {
        primary_role_hosts.contains(&host.as_str())
            && selected_roles
                .iter()
                .any(|role| Some(&role.name) == primary_role.as_ref())
    };
    selected_hosts.sort_by_key(|host| !runs_primary_role(host));

    Ok(Selection {
        roles: selected_roles
            .iter()
            .map(|role| role.name.clone())
            .collect(),
        hosts: selected_hosts,
        primary_host,
        primary_role,
    })
}

/// The items an option's filters select (`None` when the option is absent or empty), or the
/// error naming the filters when they select nothing.
fn specific(
    option: Option<&str>,
    items: &[String],
    no_match: fn(String) -> SelectionError,
) -> Result<Option<Vec<String>>, SelectionError> {
    let filters = option.map(split_list).unwrap_or_default();
    if filters.is_empty() {
        return Ok(None);
    }
    let matched = filter_specific_items(&filters, items);
    if matched.is_empty() {
        return Err(no_match(filters.join(",")));
    }
    Ok(Some(matched))
}

fn primary_or_first<'a>(config: &Config, roles: &[&'a Role]) -> Option<&'a Role> {
    roles
        .iter()
        .find(|role| role.name == config.primary_role_name)
        .or_else(|| roles.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_ruby_extglob() {
        assert!(fnmatch("1.1.1.*", "1.1.1.2"));
        assert!(fnmatch("*", "anything"));
        assert!(fnmatch("web", "web"));
        assert!(!fnmatch("web", "web2"));
        assert!(fnmatch("web*", "web2"));
        assert!(fnmatch("{web,workers}", "workers"));
        assert!(fnmatch("1.1.1.{1,3}", "1.1.1.3"));
        assert!(!fnmatch("1.1.1.{1,3}", "1.1.1.2"));
        assert!(fnmatch("host[0-9]", "host7"));
        assert!(!fnmatch("host[!0-9]", "host7"));
        assert!(fnmatch("h?st", "host"));
        assert!(fnmatch("*.example.com", "a.b.example.com"));
    }

    #[test]
    fn filter_keeps_filter_order_and_uniqueness() {
        let items: Vec<String> = ["1.1.1.1", "1.1.1.2", "1.1.1.3"]
            .map(str::to_owned)
            .to_vec();
        let filters: Vec<String> = ["1.1.1.3", "1.1.1.*"].map(str::to_owned).to_vec();
        assert_eq!(
            filter_specific_items(&filters, &items),
            ["1.1.1.3", "1.1.1.1", "1.1.1.2"]
        );
    }
}
