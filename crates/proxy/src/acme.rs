//! Automatic certificates over ACME (instant-acme): issued during the first TLS handshake for a
//! host, cached on disk in autocert's layout under `<acme_cache_path>/<sha256 hex of the
//! directory>/` (one `<host>` file with the key and chain, the account key in `acme_account+key`),
//! renewed in the background before expiry. As autocert does, TLS-ALPN-01 is tried first (the
//! challenge certificate served on the HTTPS port to `acme-tls/1` handshakes), then HTTP-01 (the
//! key authorization answered on the HTTP port) in a new order when that fails.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, ChallengeType, HttpClient, Identifier, Key,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::log;
use crate::options::ServiceOptions;

/// Let's Encrypt's production directory, used when a service names none.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Where HTTP-01 challenge requests arrive.
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";
/// The account key's file name in the cache directory (autocert's).
pub const ACCOUNT_KEY_FILE: &str = "acme_account+key";
/// Renew when less than this is left (autocert's default), or a third of a shorter lifetime.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// After a failed issuance, handshakes for that host fail at once for this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// How long one issuance may poll the order before giving up.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// `<cache path>/<sha256 hex of the directory option>` (the empty string for production).
pub fn cache_dir(cache_path: &str, directory_option: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, directory_option.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    Path::new(cache_path).join(hex)
}

/// The directory URL a service's `acme_directory` option stands for.
pub fn directory_url(directory_option: &str) -> &str {
    if directory_option.is_empty() {
        LETS_ENCRYPT_PRODUCTION
    } else {
        directory_option
    }
}

/// PEM text of one DER object.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A certificate in memory with its renewal time.
#[derive(Debug, Clone)]
struct Cached {
    key: Arc<CertifiedKey>,
    not_after: SystemTime,
    renew_at: SystemTime,
}

impl Cached {
    /// Parses `<private key PEM><certificate chain PEM>` (autocert's file, or ours).
    fn from_pem(text: &[u8]) -> Result<Self, String> {
        let key = PrivateKeyDer::from_pem_slice(text).map_err(|e| format!("private key: {e}"))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("certificate: {e}"))?;
        let leaf = chain.first().ok_or("no certificate")?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("certificate: {e}"))?;
        let to_time = |t: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
        let not_before = to_time(parsed.validity().not_before.timestamp());
        let not_after = to_time(parsed.validity().not_after.timestamp());
        let lifetime = not_after
            .duration_since(not_before)
            .unwrap_or(Duration::ZERO);
        let renew_at = not_after
            .checked_sub(RENEW_BEFORE.min(lifetime / 3))
            .unwrap_or(not_after);
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| format!("private key: {e}"))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|e| format!("key does not match the certificate: {e}"))?;
        Ok(Self {
            key: Arc::new(certified),
            not_after,
            renew_at,
        })
    }

    fn valid(&self) -> bool {
        SystemTime::now() < self.not_after
    }

    fn due(&self) -> bool {
        SystemTime::now() >= self.renew_at
    }
}

/// The ACME side of the proxy: pending challenges and one issuer per (directory, cache dir).
pub struct Acme {
    /// HTTP-01: key authorization by token.
    challenges: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: the challenge certificate by host.
    alpn_challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    issuers: Mutex<HashMap<(String, PathBuf), Arc<Issuer>>>,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for Acme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acme")
            .field("extra_roots", &self.extra_roots.len())
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// `extra_roots` are trusted, beside the system's, on connections to ACME directories.
    pub fn new(extra_roots: Vec<CertificateDer<'static>>) -> Arc<Self> {
        Arc::new(Self {
            challenges: Mutex::new(HashMap::new()),
            alpn_challenges: Mutex::new(HashMap::new()),
            issuers: Mutex::new(HashMap::new()),
            extra_roots,
        })
    }

    /// Reads PEM certificates to trust for ACME directories (`KAMAL_PROXY_ACME_CA_FILE`).
    pub fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
        let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if roots.is_empty() {
            return Err(format!("{}: no certificates", path.display()));
        }
        Ok(roots)
    }

    /// The key authorization for a pending HTTP-01 token.
    pub fn challenge_response(&self, token: &str) -> Option<String> {
        self.challenges.lock().ok()?.get(token).cloned()
    }

    /// The TLS configuration that answers a pending TLS-ALPN-01 challenge for `host` (RFC 8737:
    /// only `acme-tls/1`, the challenge certificate), if one is pending.
    pub fn alpn_challenge_config(&self, host: &str) -> Option<Arc<rustls::ServerConfig>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let key = Arc::clone(self.alpn_challenges.lock().ok()?.get(&host)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Some(Arc::new(config))
    }

    /// The issuer for a service's ACME settings (shared by services with the same settings).
    pub fn issuer(&self, options: &ServiceOptions) -> Arc<Issuer> {
        let dir = cache_dir(&options.acme_cache_path, &options.acme_directory);
        let url = directory_url(&options.acme_directory).to_string();
        let key = (url.clone(), dir.clone());
        let Ok(mut issuers) = self.issuers.lock() else {
            return Arc::new(Issuer::new(url, dir));
        };
        Arc::clone(
            issuers
                .entry(key)
                .or_insert_with(|| Arc::new(Issuer::new(url, dir))),
        )
    }

    fn http_client(&self) -> Result<Box<dyn HttpClient>, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for root in &self.extra_roots {
            roots
                .add(root.clone())
                .map_err(|e| format!("ACME CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        let client: HyperClient<_, BodyWrapper<Bytes>> =
            HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Box::new(client))
    }
}

/// Why an order did not give a certificate.
#[derive(Debug)]
enum IssueError {
    /// The directory offers no challenge of the type asked for.
    NotOffered,
    Failed(String),
}

impl From<String> for IssueError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOffered => f.write_str("the ACME server offers no such challenge"),
            Self::Failed(message) => f.write_str(message),
        }
    }
}

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The self-signed certificate a TLS-ALPN-01 challenge is answered with: the host as its only
/// name and the SHA-256 of the key authorization in the critical `acmeIdentifier` extension.
fn alpn_challenge_certificate(host: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&private).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// Removes the challenges of one order when it ends, however it ends.
struct ChallengeGuard<'a> {
    acme: &'a Acme,
    tokens: Vec<String>,
    alpn_hosts: Vec<String>,
}

impl ChallengeGuard<'_> {
    fn add(&mut self, token: &str, authorization: &str) {
        if let Ok(mut map) = self.acme.challenges.lock() {
            map.insert(token.to_string(), authorization.to_string());
        }
        self.tokens.push(token.to_string());
    }

    fn add_alpn(&mut self, host: &str, certificate: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        if let Ok(mut map) = self.acme.alpn_challenges.lock() {
            map.insert(host.clone(), certificate);
        }
        self.alpn_hosts.push(host);
    }
}

impl Drop for ChallengeGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.acme.challenges.lock() {
            for token in &self.tokens {
                map.remove(token);
            }
        }
        if let Ok(mut map) = self.acme.alpn_challenges.lock() {
            for host in &self.alpn_hosts {
                map.remove(host);
            }
        }
    }
}

/// Certificates from one ACME directory, cached in one directory.
pub struct Issuer {
    directory_url: String,
    dir: PathBuf,
    account: tokio::sync::OnceCell<Account>,
    certs: RwLock<HashMap<String, Cached>>,
    issuing: tokio::sync::Mutex<()>,
    failures: Mutex<HashMap<String, Instant>>,
    renewing: Mutex<HashSet<String>>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("directory_url", &self.directory_url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    fn new(directory_url: String, dir: PathBuf) -> Self {
        Self {
            directory_url,
            dir,
            account: tokio::sync::OnceCell::new(),
            certs: RwLock::new(HashMap::new()),
            issuing: tokio::sync::Mutex::new(()),
            failures: Mutex::new(HashMap::new()),
            renewing: Mutex::new(HashSet::new()),
        }
    }

    /// The cache directory (`<acme_cache_path>/<sha256 hex>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The certificate for `host` if one is in memory and not expired (for the SNI resolver).
    pub fn cached(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.read().ok()?;
        let cached = certs.get(host)?;
        cached.valid().then(|| Arc::clone(&cached.key))
    }

    fn remember(&self, host: &str, cached: Cached) {
        if let Ok(mut certs) = self.certs.write() {
            certs.insert(host.to_string(), cached);
        }
    }

    fn load_from_disk(&self, host: &str) -> Option<Cached> {
        let path = self.dir.join(host);
        let text = std::fs::read(&path).ok()?;
        match Cached::from_pem(&text) {
            Ok(cached) if cached.valid() => Some(cached),
            Ok(_) => None,
            Err(e) => {
                log::error(
                    "Unable to read cached certificate",
                    &[
                        ("path", path.display().to_string().into()),
                        ("error", e.into()),
                    ],
                );
                None
            }
        }
    }

    /// Makes sure a valid certificate for `host` is in memory: from memory, from the disk cache,
    /// or issued now. A certificate due for renewal is served while a new one is obtained.
    pub async fn ensure(self: &Arc<Self>, acme: &Arc<Acme>, host: &str) -> Result<(), String> {
        let current = self
            .certs
            .read()
            .ok()
            .and_then(|c| c.get(host).cloned())
            .filter(Cached::valid)
            .or_else(|| {
                let loaded = self.load_from_disk(host)?;
                self.remember(host, loaded.clone());
                Some(loaded)
            });
        if let Some(cached) = current {
            if cached.due() {
                self.renew_in_background(acme, host);
            }
            return Ok(());
        }
        if let Some(failed) = self.failures.lock().ok().and_then(|f| f.get(host).copied())
            && failed.elapsed() < RETRY_AFTER_FAILURE
        {
            return Err("a recent attempt to obtain a certificate failed".to_string());
        }
        let _issuing = self.issuing.lock().await;
        if self.cached(host).is_some() {
            return Ok(());
        }
        self.obtain(acme, host).await
    }

    fn renew_in_background(self: &Arc<Self>, acme: &Arc<Acme>, host: &str) {
        let Ok(mut renewing) = self.renewing.lock() else {
            return;
        };
        if !renewing.insert(host.to_string()) {
            return;
        }
        let issuer = Arc::clone(self);
        let acme = Arc::clone(acme);
        let host = host.to_string();
        tokio::spawn(async move {
            let _issuing = issuer.issuing.lock().await;
            let _ = issuer.obtain(&acme, &host).await;
            if let Ok(mut renewing) = issuer.renewing.lock() {
                renewing.remove(&host);
            }
        });
    }

    /// Issues a certificate for `host`, writes it to the cache and keeps it in memory.
    async fn obtain(&self, acme: &Acme, host: &str) -> Result<(), String> {
        log::info(
            "Requesting certificate",
            &[
                ("host", host.into()),
                ("directory", self.directory_url.as_str().into()),
            ],
        );
        let result = async {
            let (key_pem, chain_pem) = self.issue(acme, host).await?;
            let text = format!("{key_pem}{chain_pem}");
            let cached = Cached::from_pem(text.as_bytes())?;
            let path = self.dir.join(host);
            write_private(&path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            self.remember(host, cached);
            Ok::<(), String>(())
        }
        .await;
        match &result {
            Ok(()) => {
                if let Ok(mut failures) = self.failures.lock() {
                    failures.remove(host);
                }
                log::info("Certificate obtained", &[("host", host.into())]);
            }
            Err(e) => {
                if let Ok(mut failures) = self.failures.lock() {
                    failures.insert(host.to_string(), Instant::now());
                }
                log::error(
                    "Unable to obtain certificate",
                    &[("host", host.into()), ("error", e.as_str().into())],
                );
            }
        }
        result
    }

    async fn account(&self, acme: &Acme) -> Result<&Account, String> {
        self.account
            .get_or_try_init(|| async {
                let http = acme.http_client()?;
                let path = self.dir.join(ACCOUNT_KEY_FILE);
                let existing = std::fs::read(&path)
                    .ok()
                    .and_then(|pem| PrivateKeyDer::from_pem_slice(&pem).ok());
                let pkcs8 = if let Some(PrivateKeyDer::Pkcs8(der)) = existing {
                    der
                } else {
                    let (_, der) = Key::generate_pkcs8().map_err(|e| e.to_string())?;
                    write_private(&path, &pem("PRIVATE KEY", der.secret_pkcs8_der()))
                        .map_err(|e| format!("writing {}: {e}", path.display()))?;
                    der
                };
                let key = Key::from_pkcs8_der(PrivatePkcs8KeyDer::from(
                    pkcs8.secret_pkcs8_der().to_vec(),
                ))
                .map_err(|e| e.to_string())?;
                let (account, _) = Account::builder_with_http(http)
                    .create_from_key(
                        (key, PrivateKeyDer::Pkcs8(pkcs8)),
                        self.directory_url.clone(),
                    )
                    .await
                    .map_err(|e| format!("ACME account at {}: {e}", self.directory_url))?;
                Ok::<Account, String>(account)
            })
            .await
    }

    /// A certificate for `host`: an order answered with TLS-ALPN-01 where the directory offers
    /// it, and, when that order fails, a new one answered with HTTP-01 (autocert's order: a
    /// failed challenge fails its authorization, so the second type needs a new order).
    async fn issue(&self, acme: &Acme, host: &str) -> Result<(String, String), String> {
        match self.issue_with(acme, host, ChallengeType::TlsAlpn01).await {
            Ok(issued) => Ok(issued),
            Err(IssueError::NotOffered) => self
                .issue_with(acme, host, ChallengeType::Http01)
                .await
                .map_err(|e| e.to_string()),
            Err(IssueError::Failed(alpn)) => {
                log::info(
                    "TLS-ALPN-01 failed, trying HTTP-01",
                    &[("host", host.into()), ("error", alpn.as_str().into())],
                );
                self.issue_with(acme, host, ChallengeType::Http01)
                    .await
                    .map_err(|e| format!("{e} (after tls-alpn-01: {alpn})"))
            }
        }
    }

    /// One order answered with `kind` for every pending authorization, then finalize (a new
    /// P-256 key).
    async fn issue_with(
        &self,
        acme: &Acme,
        host: &str,
        kind: ChallengeType,
    ) -> Result<(String, String), IssueError> {
        let account = self.account(acme).await?;
        let identifiers = [Identifier::Dns(host.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut guard = ChallengeGuard {
            acme,
            tokens: Vec::new(),
            alpn_hosts: Vec::new(),
        };
        let mut authorizations = order.authorizations();
        while let Some(result) = authorizations.next().await {
            let mut authz = result.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => return Err(format!("authorization is {status:?}").into()),
            }
            let Identifier::Dns(name) = authz.identifier().identifier.clone() else {
                return Err("the ACME server asks about a non-DNS identifier"
                    .to_string()
                    .into());
            };
            let Some(mut challenge) = authz.challenge(kind.clone()) else {
                return Err(if kind == ChallengeType::Http01 {
                    "the ACME server offers no http-01 challenge"
                        .to_string()
                        .into()
                } else {
                    IssueError::NotOffered
                });
            };
            let authorization = challenge.key_authorization();
            if kind == ChallengeType::TlsAlpn01 {
                let certificate =
                    alpn_challenge_certificate(&name, authorization.digest().as_ref())?;
                guard.add_alpn(&name, certificate);
            } else {
                guard.add(&challenge.token.clone(), authorization.as_str());
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        let retries = RetryPolicy::new().timeout(ORDER_TIMEOUT);
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| format!("order: {e}"))?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            return Err(format!("order is {status:?}{detail}").into());
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        drop(guard);
        Ok((key_pem, chain_pem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_hashes_the_directory_option() {
        // sha256("") for Let's Encrypt production, as kamal-proxy does.
        assert_eq!(
            cache_dir("/c", ""),
            PathBuf::from("/c/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(directory_url(""), LETS_ENCRYPT_PRODUCTION);
        assert_eq!(directory_url("https://x/dir"), "https://x/dir");
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem("PRIVATE KEY", &[0u8; 100]);
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(text.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        let der = PrivateKeyDer::from_pem_slice(text.as_bytes());
        assert!(der.is_ok());
    }
}
