//! Certificate loading scenarios of kamal-proxy's `internal/server/cert_test.go`.

use std::path::PathBuf;

use dhow_proxy::error::ProxyError;
use dhow_proxy::tls::load_certificate;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn test_cert_loads_pem_pair() {
    let cert = load_certificate(&fixture("cert.pem"), &fixture("key.pem")).expect("loads");
    assert_eq!(cert.cert.len(), 1);
    assert!(cert.end_entity_cert().is_ok());
}

#[test]
fn test_cert_missing_or_swapped_files() {
    for (c, k) in [
        ("missing.pem", "key.pem"),
        ("cert.pem", "missing.pem"),
        ("key.pem", "cert.pem"),
    ] {
        let err = load_certificate(&fixture(c), &fixture(k)).unwrap_err();
        assert!(matches!(err, ProxyError::UnableToLoadCertificate));
        assert_eq!(err.to_string(), "unable to load certificate");
    }
}
