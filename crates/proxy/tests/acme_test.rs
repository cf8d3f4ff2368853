//! Automatic TLS against a real ACME server: Debian's `pebble`, with `pebble-challtestsrv` as its
//! DNS server (every name resolves to 127.0.0.1), validates HTTP-01 on the proxy's own HTTP port
//! or TLS-ALPN-01 on its HTTPS port (each test points the other at a port nobody listens on, so
//! only the one challenge type can pass).
//! The service is deployed with the `kamal-proxy` client binary; the first handshake obtains the
//! certificate, which a client verifies against pebble's root; it lands in the cache path of
//! kamal-proxy (`<cache>/<sha256 of the directory>/<host>`), and a restarted proxy serves it from
//! there with pebble gone. Without pebble the test fails under CI (`CI=true`, where `scripts/test`
//! installs it) and prints a notice otherwise.

#![allow(clippy::unwrap_used, reason = "test setup panics on failure")]

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::backend_with;
use dhow_proxy::server::{Server, ServerConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

const HOST: &str = "app.dhow.test";

/// A child process killed (by its own handle) when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
}

fn pebble() -> Option<(PathBuf, PathBuf)> {
    if let (Some(p), Some(c)) = (find("pebble"), find("pebble-challtestsrv")) {
        return Some((p, c));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "pebble is not installed under CI: scripts/test installs it (apt-get install pebble)"
    );
    #[expect(
        clippy::print_stderr,
        reason = "the notice says why nothing was checked"
    )]
    {
        eprintln!(
            "notice: pebble is not installed; skipping the ACME test (apt-get install pebble)"
        );
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test CA and a certificate for pebble's own HTTPS listeners (localhost, 127.0.0.1).
fn pebble_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dhow acme test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("pebble-cert.pem"),
        dir.join("pebble-key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn connector(roots: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// GET over TLS (HTTP/1.1), verifying the server against `roots` for `name`.
async fn https_get(
    addr: SocketAddr,
    name: &str,
    roots: &[CertificateDer<'static>],
    path: &str,
) -> Result<(u16, Bytes), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let tls = connector(roots)
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", name)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body))
}

async fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, Option<String>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), location)
}

async fn start_proxy(dir: &Path, ca: &Path) -> Server {
    Server::start(ServerConfig {
        https_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        socket_path: Some(dir.join("kamal-proxy.sock")),
        state_path: Some(dir.join("kamal-proxy.state")),
        acme_ca_file: Some(ca.to_path_buf()),
        ..common::loopback_config()
    })
    .await
    .unwrap()
}

async fn wait_for_port(port: u16, what: &str, log: &Path) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{what} did not listen on {port}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn spawn_logged(command: &mut Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Proc(
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap(),
    )
}

/// pebble and its DNS server, stopped on drop.
struct Pebble {
    _dns_server: Proc,
    _acme_server: Proc,
    acme_port: u16,
    management_port: u16,
    log: PathBuf,
}

/// Starts pebble (validating HTTP-01 on `http_port`, TLS-ALPN-01 on `tls_port`) and its DNS
/// server (`pebble_tls` files).
async fn start_pebble(
    dir: &Path,
    pebble_bin: &Path,
    challtestsrv_bin: &Path,
    http_port: u16,
    tls_port: u16,
) -> Pebble {
    let (pebble_cert, pebble_key) = (dir.join("pebble-cert.pem"), dir.join("pebble-key.pem"));
    // DNS for pebble's validation: every name is 127.0.0.1 (no AAAA answers).
    let dns_port = free_port();
    let challtestsrv_log = dir.join("challtestsrv.log");
    let dns = spawn_logged(
        Command::new(challtestsrv_bin).args([
            "-management",
            &format!("127.0.0.1:{}", free_port()),
            "-dns01",
            &format!("127.0.0.1:{dns_port}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ]),
        &challtestsrv_log,
    );

    let acme_port = free_port();
    let management_port = free_port();
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": pebble_cert,
            "privateKey": pebble_key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.join("pebble-config.json");
    std::fs::File::create(&config_path)
        .unwrap()
        .write_all(config.to_string().as_bytes())
        .unwrap();
    let pebble_log = dir.join("pebble.log");
    let pebble = spawn_logged(
        Command::new(pebble_bin)
            .args(["-config"])
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0"),
        &pebble_log,
    );
    wait_for_port(acme_port, "pebble", &pebble_log).await;
    wait_for_port(management_port, "pebble management", &pebble_log).await;

    Pebble {
        _dns_server: dns,
        _acme_server: pebble,
        acme_port,
        management_port,
        log: pebble_log,
    }
}

/// `kamal-proxy deploy` through the client binary, naming the test directory and cache path.
/// pebble's root (regenerated at every start), from its management interface (served with the
/// test CA `ca`).
async fn pebble_root(ca: &Path, management_port: u16) -> Vec<CertificateDer<'static>> {
    let test_ca: Vec<CertificateDer<'static>> = vec![CertificateDer::from_pem_file(ca).unwrap()];
    let (status, root_pem) = https_get(
        SocketAddr::from(([127, 0, 0, 1], management_port)),
        "localhost",
        &test_ca,
        "/roots/0",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    vec![CertificateDer::from_pem_slice(&root_pem).unwrap()]
}

async fn deploy_with_acme(socket: &Path, backend: &str, directory: &str, cache: &Path) {
    common::client_ok(
        socket,
        &[
            "deploy",
            "app",
            &format!("--target={backend}"),
            &format!("--host={HOST}"),
            "--tls",
            &format!("--tls-acme-directory={directory}"),
            &format!("--tls-acme-cache-path={}", cache.display()),
            "--health-check-interval=50ms",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_acme_certificate_from_pebble() {
    let Some((pebble_bin, challtestsrv_bin)) = pebble() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pebble_tls(dir.path());
    let backend =
        backend_with(|_req| async { http::Response::new(dhow_proxy::body::full("secured")) }).await;
    let server = start_proxy(dir.path(), &ca).await;

    // HTTP-01 only: TLS-ALPN-01, tried first, fails (nothing listens where pebble validates it)
    // and a second order is answered over HTTP.
    let pebble = start_pebble(
        dir.path(),
        &pebble_bin,
        &challtestsrv_bin,
        server.http_addr.port(),
        free_port(),
    )
    .await;
    let (acme_port, management_port, pebble_log) =
        (pebble.acme_port, pebble.management_port, pebble.log.clone());

    // Deploy through the client binary, naming the test directory and cache path.
    let directory = format!("https://127.0.0.1:{acme_port}/dir");
    let cache = dir.path().join("certs");
    let socket = dir.path().join("kamal-proxy.sock");
    deploy_with_acme(&socket, &backend, &directory, &cache).await;

    let pebble_root = pebble_root(&ca, management_port).await;

    // HTTP redirects to HTTPS (the challenge path is served before this, for pebble).
    assert_eq!(
        http_get(server.http_addr, HOST, "/x?y=1").await,
        (301, Some(format!("https://{HOST}/x?y=1")))
    );

    // The first handshake obtains the certificate; the client verifies it against pebble's root.
    let https = server.https_addr.unwrap();
    let first = tokio::time::timeout(
        Duration::from_secs(120),
        https_get(https, HOST, &pebble_root, "/"),
    )
    .await
    .expect("bounded: the first handshake waits for issuance");
    let (status, body) = first.unwrap_or_else(|e| {
        panic!(
            "{e}\npebble log:\n{}",
            std::fs::read_to_string(&pebble_log).unwrap_or_default()
        )
    });
    assert_eq!((status, &body[..]), (200, &b"secured"[..]));

    // The certificate is cached where kamal-proxy caches it, private files only.
    let cache_dir = dhow_proxy::acme::cache_dir(&cache.display().to_string(), &directory);
    for file in [HOST, dhow_proxy::acme::ACCOUNT_KEY_FILE] {
        let meta = std::fs::metadata(cache_dir.join(file)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600,
            "{file}"
        );
    }
    let cached = std::fs::read(cache_dir.join(HOST)).unwrap();
    assert!(
        CertificateDer::pem_slice_iter(&cached).count() >= 2,
        "key, leaf and chain"
    );

    // The first order's TLS-ALPN-01 failed (its authorization is invalid), the second order's
    // HTTP-01 passed.
    let log = std::fs::read_to_string(&pebble_log).unwrap_or_default();
    let (failed, over_http) = (log.find("set INVALID"), log.find("validate w/ HTTP"));
    assert!(
        matches!((failed, over_http), (Some(a), Some(b)) if a < b),
        "TLS-ALPN-01 first, then HTTP-01:\n{log}"
    );

    // A name the service does not list gets no certificate.
    let other = https_get(https, "other.dhow.test", &pebble_root, "/").await;
    assert!(other.is_err(), "{other:?}");

    // With pebble gone, a restarted proxy serves the cached certificate (state + cache).
    drop(pebble);
    server.shutdown().await;
    let restarted = start_proxy(dir.path(), &ca).await;
    let (status, body) = https_get(restarted.https_addr.unwrap(), HOST, &pebble_root, "/")
        .await
        .unwrap();
    assert_eq!((status, &body[..]), (200, &b"secured"[..]));
    restarted.shutdown().await;
}

/// On-demand TLS end to end: a service with no host, deployed with `--tls-on-demand-url=/allow`,
/// whose backend approves one host. That host's first handshake is approved through the service
/// and obtains a certificate from pebble; another host is denied and gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_acme_on_demand_certificate_from_pebble() {
    let Some((pebble_bin, challtestsrv_bin)) = pebble() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pebble_tls(dir.path());
    let backend = backend_with(|req| async move {
        let approved = req.uri().query() == Some(&format!("host={HOST}")[..]);
        let mut response = http::Response::new(dhow_proxy::body::full("secured"));
        if req.uri().path() == "/allow" && !approved {
            *response.status_mut() = http::StatusCode::FORBIDDEN;
        }
        response
    })
    .await;
    let server = start_proxy(dir.path(), &ca).await;
    // HTTP-01 only: TLS-ALPN-01, tried first, fails (nothing listens where pebble validates it)
    // and a second order is answered over HTTP.
    let pebble = start_pebble(
        dir.path(),
        &pebble_bin,
        &challtestsrv_bin,
        server.http_addr.port(),
        free_port(),
    )
    .await;
    let (acme_port, management_port, pebble_log) =
        (pebble.acme_port, pebble.management_port, pebble.log.clone());

    let directory = format!("https://127.0.0.1:{acme_port}/dir");
    let cache = dir.path().join("certs");
    let socket = dir.path().join("kamal-proxy.sock");
    common::client_ok(
        &socket,
        &[
            "deploy",
            "app",
            &format!("--target={backend}"),
            "--tls",
            "--tls-on-demand-url=/allow",
            &format!("--tls-acme-directory={directory}"),
            &format!("--tls-acme-cache-path={}", cache.display()),
            "--health-check-interval=50ms",
        ],
    )
    .await;

    let pebble_root = pebble_root(&ca, management_port).await;

    let https = server.https_addr.unwrap();
    let first = tokio::time::timeout(
        Duration::from_secs(120),
        https_get(https, HOST, &pebble_root, "/"),
    )
    .await
    .expect("bounded: the first handshake waits for approval and issuance");
    let (status, body) = first.unwrap_or_else(|e| {
        panic!(
            "{e}\npebble log:\n{}",
            std::fs::read_to_string(&pebble_log).unwrap_or_default()
        )
    });
    assert_eq!((status, &body[..]), (200, &b"secured"[..]));

    let denied = "denied.dhow.test";
    let other = https_get(https, denied, &pebble_root, "/").await;
    assert!(other.is_err(), "{other:?}");
    let cache_dir = dhow_proxy::acme::cache_dir(&cache.display().to_string(), &directory);
    assert!(cache_dir.join(HOST).is_file());
    assert!(!cache_dir.join(denied).exists());
    drop(pebble);
    server.shutdown().await;
}

/// TLS-ALPN-01 (RFC 8737), which kamal-proxy's autocert tries first: pebble validates on the
/// proxy's HTTPS port and cannot reach an HTTP port, so the certificate can only come from the
/// `acme-tls/1` handshake the proxy answers with the challenge certificate. Handshakes asking for
/// `acme-tls/1` with no challenge pending get no certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_acme_tls_alpn_01_certificate_from_pebble() {
    let Some((pebble_bin, challtestsrv_bin)) = pebble() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = pebble_tls(dir.path());
    let backend =
        backend_with(|_req| async { http::Response::new(dhow_proxy::body::full("secured")) }).await;
    let server = start_proxy(dir.path(), &ca).await;
    let https = server.https_addr.unwrap();
    let pebble = start_pebble(
        dir.path(),
        &pebble_bin,
        &challtestsrv_bin,
        free_port(),
        https.port(),
    )
    .await;
    let directory = format!("https://127.0.0.1:{}/dir", pebble.acme_port);
    let cache = dir.path().join("certs");
    deploy_with_acme(
        &dir.path().join("kamal-proxy.sock"),
        &backend,
        &directory,
        &cache,
    )
    .await;
    let pebble_root = pebble_root(&ca, pebble.management_port).await;

    // No challenge pending: an `acme-tls/1` handshake gets nothing (no certificate, not the
    // service's either).
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let probe = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await;
    assert!(
        probe.is_err(),
        "an acme-tls/1 handshake without a challenge"
    );

    let first = tokio::time::timeout(
        Duration::from_secs(120),
        https_get(https, HOST, &pebble_root, "/"),
    )
    .await
    .expect("bounded: the first handshake waits for issuance");
    let (status, body) = first.unwrap_or_else(|e| {
        panic!(
            "{e}\npebble log:\n{}",
            std::fs::read_to_string(&pebble.log).unwrap_or_default()
        )
    });
    assert_eq!((status, &body[..]), (200, &b"secured"[..]));
    let pebble_log = std::fs::read_to_string(&pebble.log).unwrap_or_default();
    assert!(
        pebble_log.contains("set VALID") && !pebble_log.contains("validate w/ HTTP"),
        "validated without HTTP:\n{pebble_log}"
    );
    let cache_dir = dhow_proxy::acme::cache_dir(&cache.display().to_string(), &directory);
    assert!(cache_dir.join(HOST).is_file());
    drop(pebble);
    server.shutdown().await;
}

/// Accepts any server certificate: the probe above only asks whether a handshake completes.
#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
