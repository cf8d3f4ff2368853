//! From the validated `ssh` and `sshkit` sections of a Kamal config (plus the resolved
//! `key_data` secrets and a few facts about the local machine) to [`SshOptions`] and
//! [`PoolLimits`]. Errors name the config key.

use std::path::{Path, PathBuf};

use dhow_core::Secret;
use dhow_core::config::{Ssh, SshProxy, Sshkit};

use crate::pool::PoolLimits;
use crate::session::{JumpHost, Proxy, SshOptions};

/// What the local machine contributes: the home directory (for `~/` in key paths and the
/// default identity files) and the ssh-agent socket (`SSH_AUTH_SOCK`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSsh {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
}

/// A value in the `ssh`/`sshkit` sections cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SshSettingsError {
    /// The config key, e.g. `ssh.port`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Resolves `ssh.key_data` items: each is a secret name looked up with `lookup`; a raw private
/// key is still accepted (Kamal 2 deprecates it) and produces a warning.
pub fn resolve_key_data(
    items: &[String],
    lookup: impl Fn(&str) -> Option<Secret<String>>,
) -> Result<(Vec<Secret<String>>, Vec<String>), SshSettingsError> {
    let mut keys = Vec::new();
    let mut warnings = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if item.contains("-----BEGIN") {
            warnings.push(format!(
                "ssh.key_data[{index}]: a private key written in the config is deprecated \
                 (Kamal 3 removes it); put it in a secret and list the secret's name"
            ));
            keys.push(Secret::new(item.clone()));
            continue;
        }
        match lookup(item) {
            Some(value) => keys.push(value),
            None => {
                return Err(SshSettingsError {
                    key: format!("ssh.key_data[{index}]"),
                    message: format!("secret {item} is not defined in .kamal/secrets"),
                });
            }
        }
    }
    Ok((keys, warnings))
}

/// Builds the connection options and pool limits of a run.
pub fn ssh_settings(
    ssh: &Ssh,
    sshkit: &Sshkit,
    key_data: Vec<Secret<String>>,
    local: &LocalSsh,
) -> Result<(SshOptions, PoolLimits), SshSettingsError> {
    let port = ssh
        .port
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| SshSettingsError {
            key: "ssh.port".to_owned(),
            message: format!("{:?} is not a port number", ssh.port),
        })?;
    let proxy = match &ssh.proxy {
        None => None,
        Some(SshProxy::Jump(spec)) => {
            Some(Proxy::Jump(JumpHost::parse(spec).map_err(|error| {
                SshSettingsError {
                    key: "ssh.proxy".to_owned(),
                    message: error.to_string(),
                }
            })?))
        }
        Some(SshProxy::Command(command)) => Some(Proxy::Command(command.clone())),
    };
    let keys = ssh
        .keys
        .iter()
        .map(|key| expand_home(key, local.home.as_deref()))
        .collect();
    let max_concurrent_starts =
        positive(sshkit.max_concurrent_starts, "sshkit.max_concurrent_starts")?;
    let dns_retries = u32::try_from(sshkit.dns_retries).map_err(|_| SshSettingsError {
        key: "sshkit.dns_retries".to_owned(),
        message: format!("{} is not a retry count", sshkit.dns_retries),
    })?;
    let options = SshOptions {
        user: ssh.user.clone(),
        port,
        keys,
        key_data,
        keys_only: ssh.keys_only.unwrap_or(false),
        agent_socket: local.agent_socket.clone(),
        default_keys: local
            .home
            .as_deref()
            .map(SshOptions::default_key_files)
            .unwrap_or_default(),
        proxy,
        dns_retries,
        ..SshOptions::default()
    };
    let limits = PoolLimits {
        max_concurrent_starts,
        ..PoolLimits::default()
    };
    Ok((options, limits))
}

fn positive(value: i64, key: &str) -> Result<usize, SshSettingsError> {
    usize::try_from(value)
        .ok()
        .filter(|value| *value > 0)
        .ok_or_else(|| SshSettingsError {
            key: key.to_owned(),
            message: format!("{value} must be a positive number"),
        })
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home.map_or_else(|| PathBuf::from(path), Path::to_owned),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhow_core::config::SshConfigFiles;

    fn ssh() -> Ssh {
        Ssh {
            raw: None,
            user: "deploy".into(),
            port: "2222".into(),
            proxy: Some(SshProxy::Jump("root@bastion:2200".into())),
            log_level: "fatal".into(),
            keys_only: Some(true),
            keys: vec!["~/.ssh/deploy_ed25519".into(), "/etc/keys/ci".into()],
            key_data: vec![],
            config: SshConfigFiles::Default(true),
        }
    }

    fn sshkit() -> Sshkit {
        Sshkit {
            raw: None,
            max_concurrent_starts: 30,
            pool_idle_timeout: 900,
            dns_retries: 3,
        }
    }

    #[test]
    fn maps_every_field() {
        let local = LocalSsh {
            home: Some("/home/ci".into()),
            agent_socket: Some("/tmp/agent.sock".into()),
        };
        let (options, limits) =
            ssh_settings(&ssh(), &sshkit(), vec![Secret::from("k")], &local).unwrap();
        assert_eq!(options.user, "deploy");
        assert_eq!(options.port, 2222);
        assert_eq!(
            options.keys,
            vec![
                PathBuf::from("/home/ci/.ssh/deploy_ed25519"),
                PathBuf::from("/etc/keys/ci")
            ]
        );
        assert_eq!(options.key_data.len(), 1);
        assert!(options.keys_only);
        assert_eq!(options.agent_socket, Some(PathBuf::from("/tmp/agent.sock")));
        assert_eq!(
            options.default_keys[0],
            PathBuf::from("/home/ci/.ssh/id_ed25519")
        );
        assert_eq!(
            options.proxy,
            Some(Proxy::Jump(JumpHost {
                user: "root".into(),
                host: "bastion".into(),
                port: 2200
            }))
        );
        assert_eq!(
            options.keepalive_interval,
            crate::session::KEEPALIVE_INTERVAL
        );
        assert_eq!(limits.max_concurrent_starts, 30);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut bad_port = ssh();
        bad_port.port = "ssh".into();
        let error = ssh_settings(&bad_port, &sshkit(), vec![], &LocalSsh::default()).unwrap_err();
        assert_eq!(error.to_string(), "ssh.port: \"ssh\" is not a port number");

        let mut bad_proxy = ssh();
        bad_proxy.proxy = Some(SshProxy::Jump("root@bastion:x".into()));
        let error = ssh_settings(&bad_proxy, &sshkit(), vec![], &LocalSsh::default()).unwrap_err();
        assert_eq!(error.key, "ssh.proxy");

        let mut zero = sshkit();
        zero.max_concurrent_starts = 0;
        let error = ssh_settings(&ssh(), &zero, vec![], &LocalSsh::default()).unwrap_err();
        assert_eq!(error.key, "sshkit.max_concurrent_starts");
    }

    #[test]
    fn proxy_command_passes_through() {
        let mut with_command = ssh();
        with_command.proxy = Some(SshProxy::Command("ssh -W %h:%p bastion".into()));
        let (options, _) =
            ssh_settings(&with_command, &sshkit(), vec![], &LocalSsh::default()).unwrap();
        assert_eq!(
            options.proxy,
            Some(Proxy::Command("ssh -W %h:%p bastion".into()))
        );
    }

    #[test]
    fn key_data_names_resolve_and_raw_keys_warn() {
        let items = vec![
            "SSH_PRIVATE_KEY".to_owned(),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
                .to_owned(),
        ];
        let (keys, warnings) = resolve_key_data(&items, |name| {
            (name == "SSH_PRIVATE_KEY").then(|| Secret::from("resolved"))
        })
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].expose(), "resolved");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("ssh.key_data[1]: "));
        assert!(!warnings[0].contains("abc"));

        let error = resolve_key_data(&["MISSING".to_owned()], |_| None).unwrap_err();
        assert_eq!(error.key, "ssh.key_data[0]");
        assert!(error.message.contains("MISSING"));
    }
}
