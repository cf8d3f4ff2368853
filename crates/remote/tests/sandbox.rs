//! The SSH transport against the real hosts of `scripts/sandbox up` (OpenSSH servers running
//! docker). Compiled only with `--features sandbox-tests`; `DHOW_SANDBOX` must point at the
//! sandbox's `sandbox.json`, and the tests fail loudly when it does not.
#![cfg(feature = "sandbox-tests")]
#![expect(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use dhow_core::Secret;
use dhow_remote::{
    CancellationToken, ConnectError, FingerprintPins, HostKeyError, HostKeyPolicy, JumpHost,
    KnownHosts, Pool, PoolLimits, Proxy, RemoteCommand, RemoteError, SshOptions, Transport,
};
use serde_json::Value;

struct Sandbox {
    json: Value,
}

struct Host {
    name: String,
    ip: String,
    ssh_port: u16,
    fingerprints: Vec<String>,
}

impl Sandbox {
    fn load() -> Self {
        let path = std::env::var_os("DHOW_SANDBOX").unwrap_or_else(|| {
            panic!(
                "DHOW_SANDBOX is not set: run `scripts/sandbox up` and export \
                 DHOW_SANDBOX=<state dir>/sandbox.json (the sandbox-tests feature needs it)"
            )
        });
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", Path::new(&path).display()));
        Self {
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    fn path(&self, pointer: &str) -> PathBuf {
        PathBuf::from(self.json.pointer(pointer).and_then(Value::as_str).unwrap())
    }

    fn hosts(&self) -> Vec<Host> {
        let hosts = self.json["hosts"].as_array().unwrap();
        assert!(!hosts.is_empty(), "the sandbox has no hosts");
        hosts
            .iter()
            .map(|host| Host {
                name: host["name"].as_str().unwrap().to_owned(),
                ip: host["ip"].as_str().unwrap().to_owned(),
                ssh_port: u16::try_from(host["ssh_port"].as_u64().unwrap()).unwrap(),
                fingerprints: host["host_keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|key| key["fingerprint"].as_str().unwrap().to_owned())
                    .collect(),
            })
            .collect()
    }

    fn known_hosts(&self, pointer: &str) -> KnownHosts {
        let mut known = KnownHosts::new();
        known.add_file(&self.path(pointer)).unwrap();
        assert!(known.warnings().is_empty(), "{:?}", known.warnings());
        known
    }

    fn options(&self, user: &str) -> SshOptions {
        SshOptions {
            user: user.to_owned(),
            keys: vec![self.path("/ssh/key")],
            keys_only: true,
            connect_timeout: Duration::from_secs(30),
            ..SshOptions::default()
        }
    }
}

fn local(host: &Host) -> String {
    format!("127.0.0.1:{}", host.ssh_port)
}

#[tokio::test]
async fn docker_version_on_every_host_as_deploy_and_root() {
    let sandbox = Sandbox::load();
    let hosts: Vec<String> = sandbox.hosts().iter().map(local).collect();
    for user in ["deploy", "root"] {
        let pool = Pool::new(
            sandbox.options(user),
            HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts")),
            PoolLimits::default(),
        );
        let results = pool
            .run_on_hosts(&hosts, &CancellationToken::new(), |session| async move {
                let output = session
                    .run(&RemoteCommand::plain(
                        "docker version --format '{{.Server.Version}}'",
                    ))
                    .await?;
                Ok(output.stdout_text())
            })
            .await
            .into_result()
            .unwrap_or_else(|error| panic!("as {user}: {error}"));
        assert_eq!(results.len(), hosts.len());
        for (host, version) in results {
            assert!(
                version
                    .trim()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit()),
                "{host} as {user}: docker version {version:?}"
            );
        }
        pool.close().await;
    }
}

#[tokio::test]
async fn hashed_known_hosts_and_pinned_fingerprints_verify_real_hosts() {
    let sandbox = Sandbox::load();
    let hosts = sandbox.hosts();
    let host = &hosts[0];
    let hashed = Pool::new(
        sandbox.options("deploy"),
        HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts_hashed")),
        PoolLimits::default(),
    );
    let output = hashed
        .session(&local(host))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("hostname"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text().trim(), host.name);

    let pins = FingerprintPins::parse(&host.fingerprints.join(",")).unwrap();
    let pinned = Pool::new(
        sandbox.options("deploy"),
        HostKeyPolicy::Pinned(pins),
        PoolLimits::default(),
    );
    assert!(pinned.session(&local(host)).await.is_ok());

    let unknown = Pool::new(
        sandbox.options("deploy"),
        HostKeyPolicy::KnownHosts(KnownHosts::new()),
        PoolLimits::default(),
    );
    match unknown.session(&local(host)).await.unwrap_err() {
        ConnectError::HostKey(error) => match *error {
            HostKeyError::Unknown {
                fingerprint,
                add_line,
                ..
            } => {
                assert!(host.fingerprints.contains(&fingerprint), "{fingerprint}");
                assert!(add_line.starts_with(&format!("[127.0.0.1]:{} ", host.ssh_port)));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn jump_through_host1_to_host2_by_container_ip() {
    let sandbox = Sandbox::load();
    let hosts = sandbox.hosts();
    assert!(hosts.len() >= 2, "the jump test needs two sandbox hosts");
    let (first, last) = (&hosts[0], &hosts[hosts.len() - 1]);
    let mut options = sandbox.options("deploy");
    options.proxy = Some(Proxy::Jump(
        JumpHost::parse(&format!("root@127.0.0.1:{}", first.ssh_port)).unwrap(),
    ));
    let pool = Pool::new(
        options,
        HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts")),
        PoolLimits::default(),
    );
    let output = pool
        .session(&last.ip)
        .await
        .unwrap()
        .run(&RemoteCommand::plain("hostname"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text().trim(), last.name);
    pool.close().await;
}

#[tokio::test]
async fn upload_mode_and_content_are_checked_on_the_host() {
    let sandbox = Sandbox::load();
    let hosts = sandbox.hosts();
    let pool = Pool::new(
        sandbox.options("deploy"),
        HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts")),
        PoolLimits::default(),
    );
    let session = pool.session(&local(&hosts[0])).await.unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = format!(".dhow-test-{nanos}");
    session
        .run(&RemoteCommand::plain(format!("mkdir -p {dir}")))
        .await
        .unwrap();
    let contents = b"DB_PASSWORD=sandbox-upload-canary\nQUOTE=it's \"here\"\n";
    let path = format!("{dir}/app.env");
    session.upload(contents, &path, 0o600).await.unwrap();
    let stat = session
        .run(&RemoteCommand::plain(format!("stat -c '%a %U' {path}")))
        .await
        .unwrap();
    assert_eq!(stat.stdout_text().trim(), "600 deploy");
    let cat = session
        .run(&RemoteCommand::plain(format!("cat {path}")))
        .await
        .unwrap();
    assert_eq!(cat.stdout, contents);
    let listing = session
        .run(&RemoteCommand::plain(format!("ls -A {dir}")))
        .await
        .unwrap();
    assert_eq!(listing.stdout_text(), "app.env\n");
    session
        .upload(b"#!/bin/sh\necho hi\n", &format!("{dir}/hook"), 0o700)
        .await
        .unwrap();
    let hook = session
        .run(&RemoteCommand::plain(format!(
            "stat -c '%a' {dir}/hook && {dir}/hook"
        )))
        .await
        .unwrap();
    assert_eq!(hook.stdout_text(), "700\nhi\n");
    session
        .run(&RemoteCommand::plain(format!("rm -rf {dir}")))
        .await
        .unwrap();
}

#[tokio::test]
async fn refused_connection_and_wrong_key_are_typed_errors() {
    let sandbox = Sandbox::load();
    let hosts = sandbox.hosts();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pool = Pool::new(
        sandbox.options("deploy"),
        HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts")),
        PoolLimits::default(),
    );
    let refused = format!("127.0.0.1:{port}");
    let results = pool
        .run_on_hosts(
            &[local(&hosts[0]), refused.clone()],
            &CancellationToken::new(),
            |session| async move { session.run(&RemoteCommand::plain("true")).await },
        )
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(results.failures.len(), 1);
    assert_eq!(results.failures[0].host, refused);
    assert!(matches!(
        results.failures[0].error,
        RemoteError::Connect(ConnectError::Refused { .. })
    ));

    let stranger = dhow_test_support::generate_key();
    let wrong = SshOptions {
        user: "deploy".into(),
        key_data: vec![Secret::new(dhow_test_support::private_key_openssh(
            &stranger,
        ))],
        keys_only: true,
        ..SshOptions::default()
    };
    let pool = Pool::new(
        wrong,
        HostKeyPolicy::KnownHosts(sandbox.known_hosts("/ssh/known_hosts")),
        PoolLimits::default(),
    );
    let error = pool.session(&local(&hosts[0])).await.unwrap_err();
    let ConnectError::Auth { user, tried, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(user, "deploy");
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert!(
        tried[0].starts_with("key_data[0] (ssh-ed25519 SHA256:"),
        "{tried:?}"
    );
}
