//! Host-key policy: verify a server's key against `known_hosts` or pinned SHA256
//! fingerprints, and trust-on-first-use only when asked for by name. Unknown, changed and
//! revoked keys are typed errors carrying everything needed to fix them.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::known_hosts::{ExpectedKey, HostKey, KnownHosts, Origin, Verdict, entry_line};

/// Pinned SHA256 fingerprints, for CI where no `known_hosts` file is at hand.
///
/// Parsed from a list such as `SHA256:abc…, web1=SHA256:def…, [10.0.0.5]:2222=SHA256:…`:
/// a bare fingerprint is accepted for every host, `pattern=fingerprint` only for hosts whose
/// name (or `[name]:port`) matches the pattern (`*` and `?` wildcards allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintPins {
    pins: Vec<Pin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    host: Option<String>,
    fingerprint: String,
}

/// A pinned fingerprint list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid host key fingerprint {item:?}: expected SHA256:<base64> or <host>=SHA256:<base64>"
)]
pub struct PinParseError {
    /// The offending item.
    pub item: String,
}

impl FingerprintPins {
    /// Parses a comma-, space- or newline-separated list.
    pub fn parse(text: &str) -> Result<Self, PinParseError> {
        let mut pins = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
        {
            let (host, encoded) = if let Some((host, rest)) = item
                .split_once("=SHA256:")
                .filter(|(host, _)| !host.is_empty())
            {
                (Some(host.to_owned()), rest)
            } else if let Some(rest) = item.strip_prefix("SHA256:") {
                (None, rest)
            } else {
                return Err(PinParseError {
                    item: item.to_owned(),
                });
            };
            let encoded = encoded.trim_end_matches('=');
            if encoded.len() != 43
                || !encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            {
                return Err(PinParseError {
                    item: item.to_owned(),
                });
            }
            pins.push(Pin {
                host,
                fingerprint: format!("SHA256:{encoded}"),
            });
        }
        Ok(Self { pins })
    }

    /// True when no fingerprint was given.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    fn applicable(&self, host: &str, port: u16) -> impl Iterator<Item = &Pin> {
        let names = [host.to_owned(), crate::known_hosts::lookup_name(host, port)];
        self.pins.iter().filter(move |pin| match &pin.host {
            None => true,
            Some(pattern) => names
                .iter()
                .any(|name| crate::known_hosts::patterns_match(pattern, name)),
        })
    }
}

/// How server keys are verified.
#[derive(Debug)]
pub enum HostKeyPolicy {
    /// Verify against the given `known_hosts` contents (the default).
    KnownHosts(KnownHosts),
    /// Accept only keys whose SHA256 fingerprint is pinned.
    Pinned(FingerprintPins),
    /// Verify against `known_hosts`; a host with no entry at all gets its key appended to
    /// `file` and trusted, and the connection reports that it did. A changed or revoked key is
    /// still an error. Use only when the network path to the host is trusted.
    TrustOnFirstUse {
        /// Keys already trusted.
        known_hosts: KnownHosts,
        /// The file new keys are appended to.
        file: PathBuf,
    },
}

/// How a key came to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyAcceptance {
    /// A `known_hosts` line or a pinned fingerprint trusts the key.
    Verified,
    /// Trust-on-first-use appended the key to a file.
    Learned(LearnedHostKey),
}

/// A key written by trust-on-first-use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedHostKey {
    /// Host name as configured.
    pub host: String,
    /// Port.
    pub port: u16,
    /// SHA256 fingerprint of the key.
    pub fingerprint: String,
    /// The file written.
    pub file: PathBuf,
    /// The line appended.
    pub line: String,
}

impl fmt::Display for LearnedHostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trusted new host key {} for {}:{} on first use and added it to {}",
            self.fingerprint,
            self.host,
            self.port,
            self.file.display()
        )
    }
}

/// A server's key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// No `known_hosts` line or pin names this host.
    #[error(
        "host key for {host}:{port} is not known: the server presented {algorithm} {fingerprint}; \
         if that is the host's key, add this line to known_hosts: {add_line}"
    )]
    Unknown {
        /// Host name as configured.
        host: String,
        /// Port.
        port: u16,
        /// Algorithm of the presented key.
        algorithm: String,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
        /// The exact `known_hosts` line that would trust it.
        add_line: String,
    },
    /// The host is known with other keys.
    #[error(
        "host key for {host}:{port} has changed: the server presented {algorithm} {fingerprint} \
         but expected {}; this may be an attack; if the host was rebuilt, replace the old entry \
         with: {add_line}",
        expected_list(.expected)
    )]
    Changed {
        /// Host name as configured.
        host: String,
        /// Port.
        port: u16,
        /// Algorithm of the presented key.
        algorithm: String,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
        /// The keys on record.
        expected: Vec<ExpectedKey>,
        /// The exact `known_hosts` line that would trust the presented key.
        add_line: String,
    },
    /// The key is marked `@revoked`.
    #[error(
        "host key for {host}:{port} is revoked: the server presented {fingerprint}, marked @revoked at {origin}"
    )]
    Revoked {
        /// Host name as configured.
        host: String,
        /// Port.
        port: u16,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
        /// The `@revoked` line.
        origin: String,
    },
    /// Trust-on-first-use could not write the key.
    #[error("cannot add the host key for {host}:{port} to {}: {reason}", file.display())]
    Write {
        /// Host name as configured.
        host: String,
        /// Port.
        port: u16,
        /// The file.
        file: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

fn expected_list(expected: &[ExpectedKey]) -> String {
    expected
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies a [`HostKeyPolicy`]; shared by every connection of a pool.
#[derive(Debug)]
pub struct HostKeyVerifier {
    policy: Mutex<HostKeyPolicy>,
}

impl HostKeyVerifier {
    /// Wraps a policy.
    pub fn new(policy: HostKeyPolicy) -> Self {
        Self {
            policy: Mutex::new(policy),
        }
    }

    /// Algorithms recorded for the host, most preferred first (empty when unknown or pinned).
    pub fn known_algorithms(&self, host: &str, port: u16, ip: Option<IpAddr>) -> Vec<String> {
        let policy = self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*policy {
            HostKeyPolicy::KnownHosts(known)
            | HostKeyPolicy::TrustOnFirstUse {
                known_hosts: known, ..
            } => known.known_algorithms(host, port, ip),
            HostKeyPolicy::Pinned(_) => Vec::new(),
        }
    }

    /// Decides whether `key`, presented by `host`:`port` at `ip`, is trusted.
    pub fn verify(
        &self,
        host: &str,
        port: u16,
        ip: Option<IpAddr>,
        key: &HostKey,
    ) -> Result<HostKeyAcceptance, HostKeyError> {
        let mut policy = self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fingerprint = key.fingerprint();
        let add_line = entry_line(host, port, key);
        match &mut *policy {
            HostKeyPolicy::Pinned(pins) => {
                let applicable: Vec<&Pin> = pins.applicable(host, port).collect();
                if applicable.iter().any(|pin| pin.fingerprint == fingerprint) {
                    return Ok(HostKeyAcceptance::Verified);
                }
                if applicable.is_empty() {
                    return Err(HostKeyError::Unknown {
                        host: host.to_owned(),
                        port,
                        algorithm: key.algorithm().to_owned(),
                        fingerprint,
                        add_line,
                    });
                }
                Err(HostKeyError::Changed {
                    host: host.to_owned(),
                    port,
                    algorithm: key.algorithm().to_owned(),
                    fingerprint,
                    expected: applicable
                        .iter()
                        .map(|pin| ExpectedKey {
                            algorithm: "pinned".to_owned(),
                            fingerprint: pin.fingerprint.clone(),
                            origin: "pinned fingerprints".to_owned(),
                        })
                        .collect(),
                    add_line,
                })
            }
            HostKeyPolicy::KnownHosts(known) => {
                judge(known.check(host, port, ip, key), host, port, key, add_line)
            }
            HostKeyPolicy::TrustOnFirstUse { known_hosts, file } => {
                match known_hosts.check(host, port, ip, key) {
                    Verdict::Unknown => {
                        append_line(file, &add_line).map_err(|error| HostKeyError::Write {
                            host: host.to_owned(),
                            port,
                            file: file.clone(),
                            reason: error.to_string(),
                        })?;
                        known_hosts.add_key(
                            host,
                            port,
                            key,
                            Origin {
                                file: file.display().to_string(),
                                line: 0,
                            },
                        );
                        let learned = LearnedHostKey {
                            host: host.to_owned(),
                            port,
                            fingerprint,
                            file: file.clone(),
                            line: add_line,
                        };
                        tracing::warn!("{learned}");
                        Ok(HostKeyAcceptance::Learned(learned))
                    }
                    verdict => judge(verdict, host, port, key, add_line),
                }
            }
        }
    }
}

fn judge(
    verdict: Verdict,
    host: &str,
    port: u16,
    key: &HostKey,
    add_line: String,
) -> Result<HostKeyAcceptance, HostKeyError> {
    match verdict {
        Verdict::Trusted(_) => Ok(HostKeyAcceptance::Verified),
        Verdict::Unknown => Err(HostKeyError::Unknown {
            host: host.to_owned(),
            port,
            algorithm: key.algorithm().to_owned(),
            fingerprint: key.fingerprint(),
            add_line,
        }),
        Verdict::Changed(expected) => Err(HostKeyError::Changed {
            host: host.to_owned(),
            port,
            algorithm: key.algorithm().to_owned(),
            fingerprint: key.fingerprint(),
            expected,
            add_line,
        }),
        Verdict::Revoked(origin) => Err(HostKeyError::Revoked {
            host: host.to_owned(),
            port,
            fingerprint: key.fingerprint(),
            origin: origin.to_string(),
        }),
    }
}

/// Appends a line, creating the file (0600) and its directory if needed, and adding a newline
/// first when the file does not end with one.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let needs_newline = match std::fs::read(path) {
        Ok(existing) => !existing.is_empty() && !existing.ends_with(b"\n"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(error),
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut text = String::new();
    if needs_newline {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> HostKey {
        let mut blob = vec![0, 0, 0, 11];
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&[0, 0, 0, 32]);
        blob.extend(std::iter::repeat_n(seed, 32));
        HostKey::new("ssh-ed25519", blob)
    }

    #[test]
    fn pins_parse_bare_and_per_host() {
        let fp1 = key(1).fingerprint();
        let fp2 = key(2).fingerprint();
        let pins = FingerprintPins::parse(&format!("{fp1}, web2={fp2}\n")).unwrap();
        assert_eq!(pins.pins.len(), 2);
        assert_eq!(pins.pins[0].host, None);
        assert_eq!(pins.pins[1].host.as_deref(), Some("web2"));
        // Padding is tolerated.
        let padded = FingerprintPins::parse(&format!("{fp1}=")).unwrap();
        assert_eq!(padded.pins[0].fingerprint, fp1);
        let error = FingerprintPins::parse("MD5:aa:bb").unwrap_err();
        assert_eq!(error.item, "MD5:aa:bb");
        assert!(FingerprintPins::parse("SHA256:short").is_err());
        assert!(FingerprintPins::parse("").unwrap().is_empty());
    }

    #[test]
    fn pinned_policy_accepts_only_pinned_keys() {
        let pins = FingerprintPins::parse(&format!(
            "web1={} [10.0.0.9]:2222={}",
            key(1).fingerprint(),
            key(3).fingerprint()
        ))
        .unwrap();
        let verifier = HostKeyVerifier::new(HostKeyPolicy::Pinned(pins));
        assert_eq!(
            verifier.verify("web1", 22, None, &key(1)),
            Ok(HostKeyAcceptance::Verified)
        );
        assert_eq!(
            verifier.verify("10.0.0.9", 2222, None, &key(3)),
            Ok(HostKeyAcceptance::Verified)
        );
        match verifier.verify("web1", 22, None, &key(2)) {
            Err(HostKeyError::Changed {
                expected,
                fingerprint,
                ..
            }) => {
                assert_eq!(fingerprint, key(2).fingerprint());
                assert_eq!(expected[0].fingerprint, key(1).fingerprint());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verifier.verify("web2", 22, None, &key(1)),
            Err(HostKeyError::Unknown { .. })
        ));
    }

    #[test]
    fn unknown_error_names_everything_needed() {
        let verifier = HostKeyVerifier::new(HostKeyPolicy::KnownHosts(KnownHosts::new()));
        let error = verifier
            .verify("127.0.0.1", 2201, None, &key(1))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("127.0.0.1:2201"), "{message}");
        assert!(message.contains(&key(1).fingerprint()), "{message}");
        assert!(
            message.contains(&format!("[127.0.0.1]:2201 ssh-ed25519 {}", key(1).base64())),
            "{message}"
        );
    }

    #[test]
    fn changed_error_names_expected_key_and_line() {
        let known = KnownHosts::parse(&entry_line("web1", 22, &key(1)), "/home/u/.ssh/known_hosts");
        let verifier = HostKeyVerifier::new(HostKeyPolicy::KnownHosts(known));
        let message = verifier
            .verify("web1", 22, None, &key(2))
            .unwrap_err()
            .to_string();
        assert!(message.contains("has changed"), "{message}");
        assert!(message.contains(&key(2).fingerprint()), "{message}");
        assert!(
            message.contains(&format!(
                "{} (/home/u/.ssh/known_hosts:1)",
                key(1).fingerprint()
            )),
            "{message}"
        );
    }

    #[test]
    fn trust_on_first_use_appends_once_and_still_rejects_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/known_hosts");
        let verifier = HostKeyVerifier::new(HostKeyPolicy::TrustOnFirstUse {
            known_hosts: KnownHosts::new(),
            file: file.clone(),
        });
        let outcome = verifier.verify("web1", 2201, None, &key(1)).unwrap();
        let HostKeyAcceptance::Learned(learned) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(learned.file, file);
        assert!(learned.to_string().contains("added it to"));
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written, format!("{}\n", entry_line("web1", 2201, &key(1))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Second time: already trusted, nothing appended.
        assert_eq!(
            verifier.verify("web1", 2201, None, &key(1)),
            Ok(HostKeyAcceptance::Verified)
        );
        assert!(matches!(
            verifier.verify("web1", 2201, None, &key(2)),
            Err(HostKeyError::Changed { .. })
        ));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
        // The file reads back as a known_hosts file.
        let reread = KnownHosts::parse(&written, "kh");
        assert!(matches!(
            reread.check("web1", 2201, None, &key(1)),
            Verdict::Trusted(_)
        ));
    }

    #[test]
    fn append_adds_missing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, "a ssh-ed25519 AAAA").unwrap();
        append_line(&file, "b ssh-ed25519 AAAA").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "a ssh-ed25519 AAAA\nb ssh-ed25519 AAAA\n"
        );
    }
}
