//! The edge between the configuration and the SSH layer: builds a run's connection [`Pool`]
//! from the config's `ssh`/`sshkit` sections, the resolved `key_data` secrets, a CI private
//! key from `DHOW_SSH_PRIVATE_KEY`, and the host-key options (`known_hosts` files, pinned
//! fingerprints, or the named trust-on-first-use opt-in). Also the argv of an interactive
//! `ssh -t` session in Kamal's shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dhow_core::Secret;
use dhow_core::config::{Config, SshConfigFiles, SshProxy};
use dhow_core::secrets::Secrets;
use dhow_remote::{
    FingerprintPins, HostKeyPolicy, KnownHosts, LocalSsh, Pool, resolve_key_data, ssh_settings,
};

use crate::cli::SshArgs;
use crate::error::Error;

/// The environment variable that carries a private key (PEM/OpenSSH text) in CI.
pub const PRIVATE_KEY_ENV: &str = "DHOW_SSH_PRIVATE_KEY";

/// The `known_hosts` files OpenSSH reads by default.
pub fn default_known_hosts(home: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(home) = home {
        files.push(home.join(".ssh/known_hosts"));
    }
    files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    files
}

/// How host keys are verified for this run.
pub fn host_key_policy(args: &SshArgs, home: Option<&Path>) -> Result<HostKeyPolicy, Error> {
    let pins = args.ssh_fingerprints.join(",");
    let pins = FingerprintPins::parse(&pins)?;
    if !pins.is_empty() {
        return Ok(HostKeyPolicy::Pinned(pins));
    }
    let mut known = KnownHosts::new();
    if args.known_hosts.is_empty() {
        for file in default_known_hosts(home) {
            known.add_file_if_exists(&file)?;
        }
    } else {
        // Files named on purpose must exist.
        for file in &args.known_hosts {
            known.add_file(file)?;
        }
    }
    Ok(match &args.trust_new_host_keys {
        Some(file) => {
            known.add_file_if_exists(file)?;
            HostKeyPolicy::TrustOnFirstUse {
                known_hosts: known,
                file: file.clone(),
            }
        }
        None => HostKeyPolicy::KnownHosts(known),
    })
}

/// A pool for the configuration's hosts, and warnings to show (deprecated raw `key_data`,
/// unreadable `known_hosts` lines).
pub fn pool(
    config: &Config,
    args: &SshArgs,
    env: &BTreeMap<String, String>,
    secrets: Option<&Secrets>,
) -> Result<(Pool, Vec<String>), Error> {
    let home = env.get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let (mut key_data, mut warnings) = resolve_key_data(&config.ssh.key_data, |name| {
        secrets
            .and_then(|secrets| secrets.resolve(name, env, None).ok())
            .or_else(|| env.get(name).map(|value| Secret::new(value.clone())))
    })?;
    if let Some(key) = env
        .get(PRIVATE_KEY_ENV)
        .filter(|key| !key.trim().is_empty())
    {
        // Keys pasted into CI variables often lose their final newline; both forms parse.
        let mut key = key.clone();
        if !key.ends_with('\n') {
            key.push('\n');
        }
        key_data.insert(0, Secret::new(key));
    }
    let local = LocalSsh {
        home: home.clone(),
        agent_socket: env
            .get("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    };
    let (options, limits) = ssh_settings(&config.ssh, &config.sshkit, key_data, &local)?;
    let policy = host_key_policy(args, home.as_deref())?;
    if let HostKeyPolicy::KnownHosts(known)
    | HostKeyPolicy::TrustOnFirstUse {
        known_hosts: known, ..
    } = &policy
    {
        warnings.extend(known.warnings().iter().cloned());
    }
    Ok((Pool::new(options, policy, limits), warnings))
}

/// Kamal's `run_over_ssh` as an argv: `ssh [-F file] [-J jump | -o ProxyCommand=…] [-i key]…
/// [-o IdentitiesOnly=yes] -t user@host -p port CMD`, plus dhow's host-key options (the
/// `known_hosts` files given, strict checking). The command is one argument: the remote shell
/// runs it, so nothing is re-quoted locally.
pub fn interactive_ssh_argv(
    config: &Config,
    args: &SshArgs,
    pool: &Pool,
    host: &str,
    command: &str,
) -> Vec<String> {
    let target = pool.target(host);
    let mut words = vec!["ssh".to_owned()];
    match &config.ssh.config {
        SshConfigFiles::Files(files) => {
            for file in files {
                words.push("-F".to_owned());
                words.push(file.clone());
            }
        }
        SshConfigFiles::Default(false) => {
            words.push("-F".to_owned());
            words.push("/dev/null".to_owned());
        }
        SshConfigFiles::Default(true) => {}
    }
    match &config.ssh.proxy {
        Some(SshProxy::Jump(jump)) => {
            words.push("-J".to_owned());
            words.push(jump.clone());
        }
        Some(SshProxy::Command(command)) => {
            words.push("-o".to_owned());
            words.push(format!("ProxyCommand={command}"));
        }
        None => {}
    }
    for key in &pool.options().keys {
        words.push("-i".to_owned());
        words.push(key.to_string_lossy().into_owned());
    }
    if pool.options().keys_only {
        words.push("-o".to_owned());
        words.push("IdentitiesOnly=yes".to_owned());
    }
    if !args.known_hosts.is_empty() {
        let files: Vec<String> = args
            .known_hosts
            .iter()
            .map(|file| file.to_string_lossy().into_owned())
            .collect();
        words.push("-o".to_owned());
        words.push(format!("UserKnownHostsFile={}", files.join(" ")));
    }
    if let Some(file) = &args.trust_new_host_keys {
        words.push("-o".to_owned());
        words.push(format!("UserKnownHostsFile={}", file.to_string_lossy()));
        words.push("-o".to_owned());
        words.push("StrictHostKeyChecking=accept-new".to_owned());
    } else {
        words.push("-o".to_owned());
        words.push("StrictHostKeyChecking=yes".to_owned());
    }
    words.push("-t".to_owned());
    words.push(format!("{}@{}", target.user, target.host));
    words.push("-p".to_owned());
    words.push(target.port.to_string());
    words.push(command.to_owned());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SshArgs {
        SshArgs {
            known_hosts: Vec::new(),
            ssh_fingerprints: Vec::new(),
            trust_new_host_keys: None,
        }
    }

    #[test]
    fn pins_win_over_known_hosts() {
        let mut args = args();
        args.ssh_fingerprints = vec![format!("SHA256:{}", "A".repeat(43))];
        args.known_hosts = vec![PathBuf::from("/nonexistent/known_hosts")];
        assert!(matches!(
            host_key_policy(&args, None),
            Ok(HostKeyPolicy::Pinned(_))
        ));
        args.ssh_fingerprints = vec!["nonsense".to_owned()];
        assert!(matches!(
            host_key_policy(&args, None),
            Err(Error::FingerprintPins(_))
        ));
    }

    #[test]
    fn named_known_hosts_files_must_exist_and_defaults_may_not() {
        let mut args = args();
        assert!(matches!(
            host_key_policy(&args, Some(Path::new("/nonexistent-home"))),
            Ok(HostKeyPolicy::KnownHosts(_))
        ));
        args.known_hosts = vec![PathBuf::from("/nonexistent/known_hosts")];
        assert!(matches!(
            host_key_policy(&args, None),
            Err(Error::KnownHosts(_))
        ));
        args.known_hosts = Vec::new();
        args.trust_new_host_keys = Some(PathBuf::from("/tmp/dhow-tofu-test"));
        assert!(matches!(
            host_key_policy(&args, None),
            Ok(HostKeyPolicy::TrustOnFirstUse { .. })
        ));
    }
}
