//! TLS: loading a custom PEM certificate pair, and choosing a certificate by SNI through the
//! routing table (the root-path service of the host), with a no-SNI fallback.

use std::path::Path;
use std::sync::{Arc, Weak};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ProxyError;
use crate::router::Router;

/// Loads a certificate chain and private key (`unable to load certificate` on any problem).
pub fn load_certificate(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, ProxyError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| ProxyError::UnableToLoadCertificate)?
        .collect::<Result<_, _>>()
        .map_err(|_| ProxyError::UnableToLoadCertificate)?;
    if chain.is_empty() {
        return Err(ProxyError::UnableToLoadCertificate);
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| ProxyError::UnableToLoadCertificate)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| ProxyError::UnableToLoadCertificate)?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| ProxyError::UnableToLoadCertificate)?;
    Ok(Arc::new(certified))
}

/// Resolves certificates from the router's services.
#[derive(Debug)]
pub struct SniResolver {
    pub router: Weak<Router>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let router = self.router.upgrade()?;
        let name = match hello.server_name() {
            Some(name) => name.trim_end_matches('.').to_string(),
            None => router.default_tls_host()?,
        };
        router.certificate_for(&name)
    }
}

/// The rustls server config: h2 and http/1.1 via ALPN, certificates by SNI.
pub fn server_config(router: &Arc<Router>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ServerConfig::builder());
    let mut config = builder
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            router: Arc::downgrade(router),
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
