//! The routing table: host (exact, then `*.` one-level wildcard, then catch-all) to bindings of
//! path prefix → service, longest prefix first, with conflict checks and TLS inheritance.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::service::Service;

#[derive(Debug, Clone)]
pub struct Binding {
    pub prefix: String,
    pub service: Arc<Service>,
}

#[derive(Debug, Default)]
pub struct ServiceMap {
    hosts: HashMap<String, Vec<Binding>>,
    /// Whether any host is a `*.` wildcard: without one, a host that matches no exact entry
    /// goes straight to the catch-all (no wildcard key is made for it).
    wildcards: bool,
}

/// Strips a port from a `Host` value (only when a `:` appears after position 0).
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rfind(':') {
        Some(i) if i > 0 => &host[..i],
        _ => host,
    }
}

/// Whether `path` is under `prefix` on a segment boundary.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Looks up the `*.` wildcard entry covering `host` (one level: `*.example.com` for
/// `app.example.com`), its key built on the stack for names up to 255 bytes (DNS names are at
/// most 253).
fn wildcard_entry<'a, V>(hosts: &'a HashMap<String, V>, host: &str) -> Option<&'a V> {
    let suffix = &host[host.find('.')?..];
    let mut key = [0u8; 256];
    if suffix.len() < key.len() {
        key[0] = b'*';
        key[1..=suffix.len()].copy_from_slice(suffix.as_bytes());
        let key = std::str::from_utf8(&key[..=suffix.len()]).ok()?;
        hosts.get(key)
    } else {
        hosts.get(&format!("*{suffix}"))
    }
}

impl ServiceMap {
    /// Builds the table and applies TLS inheritance to path services.
    pub fn build<'a>(services: impl IntoIterator<Item = &'a Arc<Service>>) -> Self {
        let mut hosts: HashMap<String, Vec<Binding>> = HashMap::default();
        let services: Vec<&Arc<Service>> = services.into_iter().collect();
        for service in &services {
            let options = service.options();
            for host in &options.hosts {
                for prefix in &options.path_prefixes {
                    hosts.entry(host.clone()).or_default().push(Binding {
                        prefix: prefix.clone(),
                        service: Arc::clone(service),
                    });
                }
            }
        }
        for bindings in hosts.values_mut() {
            bindings.sort_by_key(|b| std::cmp::Reverse(b.prefix.len()));
        }
        let wildcards = hosts.keys().any(|h| h.starts_with("*."));
        let map = Self { hosts, wildcards };
        for service in &services {
            let options = service.options();
            if options.path_prefixes.iter().any(|p| p == "/") {
                service.set_effective_tls(options.tls_enabled, options.tls_redirect);
                continue;
            }
            let first_host = options.hosts.first().cloned().unwrap_or_default();
            match map.root_service(&first_host) {
                Some(root) => {
                    let root_options = root.options();
                    service.set_effective_tls(root_options.tls_enabled, root_options.tls_redirect);
                }
                None => service.set_effective_tls(false, true),
            }
        }
        map
    }

    /// The bindings for a host: exact, else wildcard, else catch-all. No fallback after that.
    pub fn bindings_for_host(&self, host: &str) -> Option<&Vec<Binding>> {
        if let Some(b) = self.hosts.get(host) {
            return Some(b);
        }
        if self.wildcards
            && let Some(b) = wildcard_entry(&self.hosts, host)
        {
            return Some(b);
        }
        self.hosts.get("")
    }

    /// The service and matched prefix for a host and path.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Binding> {
        self.bindings_for_host(host)?
            .iter()
            .find(|b| prefix_matches(&b.prefix, path))
    }

    /// The service serving `/` for a host.
    pub fn root_service(&self, host: &str) -> Option<Arc<Service>> {
        self.bindings_for_host(host)?
            .iter()
            .find(|b| b.prefix == "/")
            .map(|b| Arc::clone(&b.service))
    }

    /// The name of a different service already holding one of these (host, prefix) pairs.
    pub fn conflict(&self, name: &str, hosts: &[String], prefixes: &[String]) -> Option<String> {
        for host in hosts {
            let Some(bindings) = self.hosts.get(host) else {
                continue;
            };
            for binding in bindings {
                if binding.service.name != name && prefixes.contains(&binding.prefix) {
                    return Some(binding.service.name.clone());
                }
            }
        }
        None
    }

    /// The first host of a TLS service, for clients that send no SNI.
    pub fn default_tls_host(&self) -> Option<String> {
        let mut hosts: Vec<&String> = self.hosts.keys().filter(|h| !h.is_empty()).collect();
        hosts.sort();
        hosts.into_iter().find_map(|h| {
            self.hosts[h]
                .iter()
                .any(|b| b.service.options().tls_enabled)
                .then(|| h.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_stripping() {
        assert_eq!(host_without_port("example.com:80"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port(":80"), ":80");
    }

    #[test]
    fn wildcard_entries_of_any_length() {
        let long = format!("*.{}.example.com", "a".repeat(300));
        let mut hosts: HashMap<String, u8> = HashMap::default();
        hosts.insert("*.example.com".into(), 1);
        hosts.insert(long.clone(), 2);
        assert_eq!(wildcard_entry(&hosts, "app.example.com"), Some(&1));
        assert_eq!(
            wildcard_entry(&hosts, &format!("x{}", &long[1..])),
            Some(&2)
        );
        assert_eq!(wildcard_entry(&hosts, "a.b.example.com"), None);
        assert_eq!(wildcard_entry(&hosts, "localhost"), None);
    }

    #[test]
    fn segment_boundaries() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(!prefix_matches("/api", "/apiary"));
        assert!(prefix_matches("/", "/anything"));
    }
}
