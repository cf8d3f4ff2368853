//! Service, target and deployment options: their defaults, validation and the JSON shape shared by
//! the state file and the control socket (durations as integer nanoseconds, like Go).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ProxyError;

/// A duration stored as integer nanoseconds (Go's `time.Duration` JSON form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nanos(pub Duration);

impl Nanos {
    pub fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl Serialize for Nanos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        Ok(Self(Duration::from_nanos(
            u64::try_from(value).unwrap_or(0),
        )))
    }
}

/// Go marshals nil slices as `null`; accept it as empty.
pub fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

pub const DEFAULT_HEALTH_CHECK_PATH: &str = "/up";
pub const DEFAULT_BUFFER_MEMORY: i64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckConfig {
    pub path: String,
    pub port: u16,
    pub interval: Nanos,
    pub timeout: Nanos,
    pub host: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_HEALTH_CHECK_PATH.to_string(),
            port: 0,
            interval: Nanos::secs(1),
            timeout: Nanos::secs(5),
            host: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors kamal-proxy's option set"
)]
pub struct ServiceOptions {
    #[serde(deserialize_with = "null_as_empty")]
    pub hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub path_prefixes: Vec<String>,
    pub tls_enabled: bool,
    pub tls_certificate_path: String,
    pub tls_private_key_path: String,
    pub tls_on_demand_url: String,
    pub tls_redirect: bool,
    pub canonical_host: String,
    pub acme_directory: String,
    pub acme_cache_path: String,
    pub error_page_path: String,
    pub strip_prefix: bool,
    pub writer_affinity_timeout: Nanos,
    pub read_targets_accept_websockets: bool,
    #[serde(deserialize_with = "null_as_empty")]
    pub exclude_metrics_paths: Vec<String>,
    pub client_ip_header: String,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            path_prefixes: Vec::new(),
            tls_enabled: false,
            tls_certificate_path: String::new(),
            tls_private_key_path: String::new(),
            tls_on_demand_url: String::new(),
            tls_redirect: true,
            canonical_host: String::new(),
            acme_directory: String::new(),
            acme_cache_path: String::new(),
            error_page_path: String::new(),
            strip_prefix: true,
            writer_affinity_timeout: Nanos::secs(1),
            read_targets_accept_websockets: false,
            exclude_metrics_paths: Vec::new(),
            client_ip_header: String::new(),
        }
    }
}

pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

impl ServiceOptions {
    /// Whether hosts are configured: at least one, and none of them empty (catch-all).
    pub fn has_configured_hosts(&self) -> bool {
        !self.hosts.is_empty() && self.hosts.iter().all(|h| !h.is_empty())
    }

    /// Normalises hosts (`[]` → `[""]`) and prefixes (`[]` → `["/"]`, each `/` + trimmed).
    pub fn normalize(&mut self) {
        if self.hosts.is_empty() {
            self.hosts = vec![String::new()];
        }
        if self.path_prefixes.is_empty() {
            self.path_prefixes = vec!["/".to_string()];
        }
        for prefix in &mut self.path_prefixes {
            *prefix = normalize_prefix(prefix);
        }
    }

    pub fn serves_root_path(&self) -> bool {
        self.path_prefixes.is_empty()
            || self
                .path_prefixes
                .iter()
                .any(|p| normalize_prefix(p) == "/")
    }

    /// kamal-proxy's `ServiceOptions.Validate`.
    pub fn validate(&self) -> Result<(), ProxyError> {
        let invalid = |m: String| ProxyError::Message(format!("service options invalid: {m}"));
        if !self.tls_on_demand_url.is_empty() && !self.tls_enabled {
            return Err(invalid(
                "TLS must be enabled to use a TLS on-demand URL".into(),
            ));
        }
        if self.tls_enabled && !self.tls_on_demand_url.is_empty() {
            if self.has_configured_hosts() {
                return Err(invalid(
                    "cannot set hosts when using a TLS on-demand URL".into(),
                ));
            }
            if !self.tls_certificate_path.is_empty() || !self.tls_private_key_path.is_empty() {
                return Err(invalid(
                    "cannot use a custom TLS certificate with a TLS on-demand URL".into(),
                ));
            }
            if !self.canonical_host.is_empty() {
                return Err(invalid(
                    "cannot set a canonical host when using a TLS on-demand URL".into(),
                ));
            }
            crate::on_demand::Endpoint::parse(&self.tls_on_demand_url).map_err(invalid)?;
        } else if self.tls_enabled && !self.has_configured_hosts() {
            return Err(invalid("host must be set when using TLS".into()));
        }
        if self.tls_enabled && !self.serves_root_path() {
            return Err(invalid(
                "TLS settings must be specified on the root path service".into(),
            ));
        }
        if !self.canonical_host.is_empty()
            && self.has_configured_hosts()
            && !self.hosts.contains(&self.canonical_host)
        {
            return Err(invalid(format!(
                "canonical-host '{}' must be present in the hosts list: [{}]",
                self.canonical_host,
                self.hosts.join(" ")
            )));
        }
        Ok(())
    }

    pub fn has_custom_certificate(&self) -> bool {
        !self.tls_certificate_path.is_empty() && !self.tls_private_key_path.is_empty()
    }
}

pub fn normalize_prefix(prefix: &str) -> String {
    format!("/{}", prefix.trim_matches('/'))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors kamal-proxy's option set"
)]
pub struct TargetOptions {
    pub health_check_config: HealthCheckConfig,
    pub response_timeout: Nanos,
    pub buffer_requests: bool,
    pub buffer_responses: bool,
    pub max_memory_buffer_size: i64,
    pub max_request_body_size: i64,
    pub max_response_body_size: i64,
    #[serde(deserialize_with = "null_as_empty")]
    pub log_request_headers: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub log_response_headers: Vec<String>,
    pub forward_headers: bool,
    pub scope_cookie_paths: bool,
}

impl Default for TargetOptions {
    fn default() -> Self {
        Self {
            health_check_config: HealthCheckConfig::default(),
            response_timeout: Nanos::secs(30),
            buffer_requests: false,
            buffer_responses: false,
            max_memory_buffer_size: DEFAULT_BUFFER_MEMORY,
            max_request_body_size: 0,
            max_response_body_size: 0,
            log_request_headers: Vec::new(),
            log_response_headers: Vec::new(),
            forward_headers: false,
            scope_cookie_paths: false,
        }
    }
}

impl TargetOptions {
    pub fn memory_limit(&self) -> usize {
        usize::try_from(self.max_memory_buffer_size).unwrap_or(0)
    }
    pub fn request_limit(&self) -> u64 {
        u64::try_from(self.max_request_body_size).unwrap_or(0)
    }
    pub fn response_limit(&self) -> u64 {
        u64::try_from(self.max_response_body_size).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeploymentOptions {
    pub deploy_timeout: Nanos,
    pub drain_timeout: Nanos,
    pub force: bool,
}

impl Default for DeploymentOptions {
    fn default() -> Self {
        Self {
            deploy_timeout: Nanos::secs(30),
            drain_timeout: Nanos::secs(30),
            force: false,
        }
    }
}

/// Validates a target address: `^\w[-_.\w+]+(:\d+)?$`.
pub fn valid_target(target: &str) -> bool {
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (target, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let mut chars = host.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    if !word(first) {
        return false;
    }
    let rest: Vec<char> = chars.collect();
    !rest.is_empty()
        && rest
            .iter()
            .all(|&c| word(c) || c == '-' || c == '.' || c == '+')
}

/// Adds the default port 80 to a target without one.
pub fn target_with_port(target: &str) -> String {
    if target.contains(':') {
        target.to_string()
    } else {
        format!("{target}:80")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_patterns() {
        for ok in [
            "web:80",
            "a7535f905149:3000",
            "localhost",
            "10.0.0.1:8080",
            "a_b",
        ] {
            assert!(valid_target(ok), "{ok}");
        }
        for bad in [
            "",
            "_",
            "/",
            "a",
            "http://x:80",
            "x:80/path",
            "[::1]:80",
            "x:",
            "-ab",
        ] {
            assert!(!valid_target(bad), "{bad}");
        }
    }

    #[test]
    fn normalizes_hosts_and_prefixes() {
        let mut o = ServiceOptions {
            path_prefixes: vec!["api/".into(), "/".into(), "//x//".into()],
            ..ServiceOptions::default()
        };
        o.normalize();
        assert_eq!(o.hosts, vec![String::new()]);
        assert_eq!(o.path_prefixes, vec!["/api", "/", "/x"]);
    }
}
