//! The SSH transport against in-process russh servers on 127.0.0.1: host-key verification,
//! authentication, jump hosts, proxy commands, exec, streaming, uploads, the pool and fan-out.
#![expect(
    clippy::unwrap_used,
    clippy::format_collect,
    clippy::format_push_string,
    reason = "test helpers: setup failures should panic, strings are small"
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhow_core::Secret;
use dhow_remote::known_hosts::{entry_line, hash_name};
use dhow_remote::{
    CancellationToken, ConnectError, ExitStatus, FingerprintPins, HostKey, HostKeyError,
    HostKeyPolicy, JumpHost, KnownHosts, OutputStream, Pool, PoolLimits, Proxy, RemoteCommand,
    RemoteError, SshOptions, Transport,
};
use dhow_test_support::{
    SshPrivateKey, SshServer, SshServerConfig, TestAgent, generate_key, private_key_openssh,
    write_private_key,
};
use tempfile::TempDir;

struct Fixture {
    dir: TempDir,
    key: SshPrivateKey,
    key_path: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_key();
        let key_path = write_private_key(&key, &dir.path().join("id_ed25519"));
        Self { dir, key, key_path }
    }

    fn workdir(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    async fn server(&self, name: &str) -> SshServer {
        self.server_with(name, false).await
    }

    async fn server_with(&self, name: &str, allow_forwarding: bool) -> SshServer {
        SshServer::start(SshServerConfig {
            authorized_keys: vec![self.key.public_key().clone()],
            workdir: self.workdir(name),
            allow_forwarding,
            host_key: None,
            extra_host_keys: Vec::new(),
        })
        .await
    }

    fn options(&self) -> SshOptions {
        SshOptions {
            user: "deploy".into(),
            keys: vec![self.key_path.clone()],
            keys_only: true,
            connect_timeout: Duration::from_secs(20),
            ..SshOptions::default()
        }
    }
}

fn host(server: &SshServer) -> String {
    format!("127.0.0.1:{}", server.port())
}

fn known(servers: &[&SshServer]) -> KnownHosts {
    let text: String = servers
        .iter()
        .map(|server| format!("{}\n", server.known_hosts_line()))
        .collect();
    KnownHosts::parse(&text, "test_known_hosts")
}

fn new_pool(options: SshOptions, policy: HostKeyPolicy) -> Pool {
    Pool::new(options, policy, PoolLimits::default())
}

fn presented(server: &SshServer) -> HostKey {
    HostKey::from_public_key(server.host_key())
}

async fn connect_error(pool: &Pool, host: &str) -> ConnectError {
    match pool.session(host).await {
        Ok(session) => panic!("connected to {host}: {session:?}"),
        Err(error) => error,
    }
}

fn host_key_error(error: ConnectError) -> HostKeyError {
    match error {
        ConnectError::HostKey(error) => *error,
        other => panic!("expected a host key error, got {other:?}"),
    }
}

#[tokio::test]
async fn good_key_runs_a_command_and_streams_both_streams() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let mut events = Vec::new();
    let status = session
        .exec(
            &RemoteCommand::plain("echo out; echo err >&2; pwd"),
            &mut |stream, chunk| events.push((stream, chunk.to_vec())),
        )
        .await
        .unwrap();
    assert_eq!(status, ExitStatus::Code(0));
    let stdout: Vec<u8> = events
        .iter()
        .filter(|(s, _)| *s == OutputStream::Stdout)
        .flat_map(|(_, c)| c.clone())
        .collect();
    let stderr: Vec<u8> = events
        .iter()
        .filter(|(s, _)| *s == OutputStream::Stderr)
        .flat_map(|(_, c)| c.clone())
        .collect();
    let workdir = std::fs::canonicalize(fx.workdir("web1")).unwrap();
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        format!("out\n{}\n", workdir.display())
    );
    assert_eq!(stderr, b"err\n");
    let received = server.commands();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].user, "deploy");
    assert_eq!(received[0].command, "echo out; echo err >&2; pwd");
}

#[tokio::test]
async fn unknown_host_key_is_a_hard_error_with_the_line_to_add() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    // A bare `127.0.0.1` entry is for port 22 only: this server is still unknown.
    let bare = KnownHosts::parse(
        &entry_line("127.0.0.1", 22, &presented(&server)),
        "known_hosts",
    );
    for known in [KnownHosts::new(), bare] {
        let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known));
        let error = host_key_error(connect_error(&pool, &host(&server)).await);
        match &error {
            HostKeyError::Unknown {
                host,
                port,
                fingerprint,
                add_line,
                ..
            } => {
                assert_eq!(host, "127.0.0.1");
                assert_eq!(*port, server.port());
                assert_eq!(fingerprint, &server.fingerprint());
                assert_eq!(add_line, &server.known_hosts_line());
            }
            other => panic!("{other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(&server.known_hosts_line()), "{message}");
        assert!(message.contains(&server.fingerprint()), "{message}");
    }
    assert!(server.commands().is_empty());
    assert!(
        server.logins().is_empty(),
        "no authentication after a rejected host key"
    );
}

#[tokio::test]
async fn changed_host_key_is_a_hard_error_naming_both_fingerprints() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let old = HostKey::from_public_key(generate_key().public_key());
    let known = KnownHosts::parse(
        &format!("# old\n{}\n", entry_line("127.0.0.1", server.port(), &old)),
        "/home/ci/.ssh/known_hosts",
    );
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known));
    let error = host_key_error(connect_error(&pool, &host(&server)).await);
    let HostKeyError::Changed {
        fingerprint,
        expected,
        add_line,
        port,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*port, server.port());
    assert_eq!(fingerprint, &server.fingerprint());
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0].fingerprint, old.fingerprint());
    assert_eq!(expected[0].origin, "/home/ci/.ssh/known_hosts:2");
    assert_eq!(add_line, &server.known_hosts_line());
    assert!(error.to_string().contains("has changed"));
    assert!(server.logins().is_empty());
}

#[tokio::test]
async fn hashed_known_hosts_entry_is_accepted() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let name = format!("[127.0.0.1]:{}", server.port());
    let line = format!(
        "{} {} {}",
        hash_name(b"0123456789abcdefghij", &name),
        presented(&server).algorithm(),
        presented(&server).base64()
    );
    let pool = new_pool(
        fx.options(),
        HostKeyPolicy::KnownHosts(KnownHosts::parse(&line, "kh")),
    );
    let output = pool
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo hashed"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "hashed\n");
}

#[tokio::test]
async fn bracketed_port_entry_among_others_is_accepted() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let other = fx.server("web2").await;
    let text = format!(
        "{}\nweb9,10.9.9.9 {} {}\n{}\n",
        other.known_hosts_line(),
        presented(&other).algorithm(),
        presented(&other).base64(),
        server.known_hosts_line()
    );
    let pool = new_pool(
        fx.options(),
        HostKeyPolicy::KnownHosts(KnownHosts::parse(&text, "kh")),
    );
    assert!(pool.session(&host(&server)).await.is_ok());
    assert!(pool.session(&host(&other)).await.is_ok());
}

#[tokio::test]
async fn the_recorded_key_type_is_negotiated_when_a_server_has_several() {
    let fx = Fixture::new();
    let ecdsa = dhow_test_support::generate_ecdsa_key();
    let server = SshServer::start(SshServerConfig {
        authorized_keys: vec![fx.key.public_key().clone()],
        workdir: fx.workdir("web1"),
        allow_forwarding: false,
        host_key: None,
        extra_host_keys: vec![ecdsa.clone()],
    })
    .await;
    // known_hosts has only the server's ECDSA key (as `ssh-keyscan -t ecdsa` would write):
    // the client must ask for that type rather than report a changed Ed25519 key.
    let recorded = HostKey::from_public_key(ecdsa.public_key());
    assert_eq!(recorded.algorithm(), "ecdsa-sha2-nistp256");
    let text = entry_line("127.0.0.1", server.port(), &recorded);
    let pool = new_pool(
        fx.options(),
        HostKeyPolicy::KnownHosts(KnownHosts::parse(&text, "kh")),
    );
    let output = pool
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo ecdsa"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "ecdsa\n");
    // With the Ed25519 key recorded, Ed25519 is used.
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    assert!(pool.session(&host(&server)).await.is_ok());
}

#[tokio::test]
async fn revoked_host_key_is_refused() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let text = format!(
        "{}\n@revoked * {} {}\n",
        server.known_hosts_line(),
        presented(&server).algorithm(),
        presented(&server).base64()
    );
    let pool = new_pool(
        fx.options(),
        HostKeyPolicy::KnownHosts(KnownHosts::parse(&text, "kh")),
    );
    let error = host_key_error(connect_error(&pool, &host(&server)).await);
    assert!(
        matches!(&error, HostKeyError::Revoked { origin, .. } if origin == "kh:2"),
        "{error:?}"
    );
    assert!(error.to_string().contains("revoked"));
}

#[tokio::test]
async fn pinned_fingerprint_is_accepted_and_a_wrong_pin_refused() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pins = FingerprintPins::parse(&server.fingerprint()).unwrap();
    let pool_ok = new_pool(fx.options(), HostKeyPolicy::Pinned(pins));
    let output = pool_ok
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo pinned"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "pinned\n");

    let wrong = HostKey::from_public_key(generate_key().public_key()).fingerprint();
    let pins = FingerprintPins::parse(&format!("127.0.0.1={wrong}")).unwrap();
    let pool_bad = new_pool(fx.options(), HostKeyPolicy::Pinned(pins));
    let error = host_key_error(connect_error(&pool_bad, &host(&server)).await);
    let HostKeyError::Changed {
        expected,
        fingerprint,
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(expected[0].fingerprint, wrong);
    assert_eq!(fingerprint, server.fingerprint());
}

#[tokio::test]
async fn trust_on_first_use_writes_the_key_and_reports_it() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let file = fx.dir.path().join("learned_known_hosts");
    let pool1 = new_pool(
        fx.options(),
        HostKeyPolicy::TrustOnFirstUse {
            known_hosts: KnownHosts::new(),
            file: file.clone(),
        },
    );
    let session = pool1.session(&host(&server)).await.unwrap();
    let learned = session.learned_host_key().cloned().unwrap();
    assert_eq!(learned.fingerprint, server.fingerprint());
    assert_eq!(learned.file, file);
    assert_eq!(pool1.learned_host_keys(), vec![learned]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{}\n", server.known_hosts_line())
    );
    // The written file verifies the host on the next run, without trust-on-first-use.
    let mut reread = KnownHosts::new();
    reread.add_file(&file).unwrap();
    let pool2 = new_pool(fx.options(), HostKeyPolicy::KnownHosts(reread));
    let session2 = pool2.session(&host(&server)).await.unwrap();
    assert!(session2.learned_host_key().is_none());
    assert!(pool2.learned_host_keys().is_empty());
}

#[tokio::test]
async fn jump_host_forwards_to_the_target() {
    let fx = Fixture::new();
    let target = fx.server("web1").await;
    let bastion = fx.server_with("bastion", true).await;
    let mut options = fx.options();
    options.proxy = Some(Proxy::Jump(
        JumpHost::parse(&format!("ops@127.0.0.1:{}", bastion.port())).unwrap(),
    ));
    let pool = new_pool(
        options,
        HostKeyPolicy::KnownHosts(known(&[&target, &bastion])),
    );
    let output = pool
        .session(&host(&target))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo via jump"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "via jump\n");
    assert_eq!(bastion.forwards(), vec![host(&target)]);
    assert_eq!(bastion.logins(), vec!["ops".to_owned()]);
    assert!(bastion.commands().is_empty());
    assert_eq!(target.logins(), vec!["deploy".to_owned()]);
}

#[tokio::test]
async fn one_jump_connection_serves_every_host_behind_it() {
    let fx = Fixture::new();
    let targets = [
        fx.server("web1").await,
        fx.server("web2").await,
        fx.server("web3").await,
    ];
    let bastion = fx.server_with("bastion", true).await;
    let mut options = fx.options();
    options.proxy = Some(Proxy::Jump(
        JumpHost::parse(&format!("127.0.0.1:{}", bastion.port())).unwrap(),
    ));
    let mut all: Vec<&SshServer> = targets.iter().collect();
    all.push(&bastion);
    // One handshake at a time: the jump connection must not hold a start while targets wait.
    let pool = Pool::new(
        options,
        HostKeyPolicy::KnownHosts(known(&all)),
        PoolLimits {
            max_concurrent_starts: 1,
            max_parallel_hosts: 0,
        },
    );
    let hosts: Vec<String> = targets.iter().map(host).collect();
    let results = pool
        .run_on_hosts(&hosts, &CancellationToken::new(), |session| async move {
            Ok(session
                .run(&RemoteCommand::plain("echo ok"))
                .await?
                .stdout_text())
        })
        .await
        .into_result()
        .unwrap();
    assert!(results.iter().all(|(_, text)| text == "ok\n"));
    assert_eq!(bastion.logins().len(), 1, "the jump connection is shared");
    let mut forwards = bastion.forwards();
    forwards.sort();
    let mut expected = hosts.clone();
    expected.sort();
    assert_eq!(forwards, expected);
    pool.close().await;
}

#[tokio::test]
async fn jump_host_errors_name_the_jump_host() {
    let fx = Fixture::new();
    let target = fx.server("web1").await;
    // Forwarding refused by the jump host.
    let bastion = fx.server_with("bastion", false).await;
    let mut options = fx.options();
    options.proxy = Some(Proxy::Jump(
        JumpHost::parse(&format!("127.0.0.1:{}", bastion.port())).unwrap(),
    ));
    let pool1 = new_pool(
        options.clone(),
        HostKeyPolicy::KnownHosts(known(&[&target, &bastion])),
    );
    let error = connect_error(&pool1, &host(&target)).await;
    assert!(
        matches!(&error, ConnectError::JumpForward { via, .. } if via == &format!("root@127.0.0.1:{}", bastion.port())),
        "{error:?}"
    );
    // The jump host's own key is unknown: the error says so, wrapped in the jump context.
    let pool2 = new_pool(options, HostKeyPolicy::KnownHosts(known(&[&target])));
    let error = connect_error(&pool2, &host(&target)).await;
    let ConnectError::Jump { source, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(matches!(**source, ConnectError::HostKey(_)), "{source:?}");
}

#[tokio::test]
async fn proxy_command_carries_the_connection() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let mut options = fx.options();
    // The command first writes more to stderr than a pipe holds: it must not block on it.
    options.proxy = Some(Proxy::Command(
        "head -c 300000 /dev/zero | tr '\\0' x >&2; \
         exec bash -c 'exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3'"
            .into(),
    ));
    let pool = new_pool(options, HostKeyPolicy::KnownHosts(known(&[&server])));
    let output = pool
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo proxied"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "proxied\n");

    let mut failing = fx.options();
    failing.proxy = Some(Proxy::Command("echo no route to %h >&2; exit 7".into()));
    let pool = new_pool(failing, HostKeyPolicy::KnownHosts(known(&[&server])));
    let error = connect_error(&pool, &host(&server)).await;
    let ConnectError::ProxyCommand { reason, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("no route to 127.0.0.1"), "{reason}");
}

#[tokio::test]
async fn auth_failure_lists_methods_without_key_material() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let stranger = generate_key();
    let stranger_path = write_private_key(&stranger, &fx.dir.path().join("stranger"));
    let stranger_data = private_key_openssh(&generate_key());
    let options = SshOptions {
        user: "deploy".into(),
        keys: vec![stranger_path.clone(), fx.dir.path().join("missing_key")],
        key_data: vec![Secret::new(stranger_data.clone())],
        keys_only: true,
        ..SshOptions::default()
    };
    let pool = new_pool(options, HostKeyPolicy::KnownHosts(known(&[&server])));
    let error = connect_error(&pool, &host(&server)).await;
    let ConnectError::Auth { user, tried, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(user, "deploy");
    let stranger_fp = HostKey::from_public_key(stranger.public_key()).fingerprint();
    assert!(
        tried[0].contains(&stranger_path.display().to_string()),
        "{tried:?}"
    );
    assert!(tried[0].contains(&stranger_fp), "{tried:?}");
    assert!(tried[1].contains("missing_key (unreadable"), "{tried:?}");
    assert!(
        tried[2].starts_with("key_data[0] (ssh-ed25519 SHA256:"),
        "{tried:?}"
    );
    let shown = format!("{error} {error:?}");
    let body: String = private_key_openssh(&stranger)
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    for line in stranger_data.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "key_data leaked: {shown}");
    }
    assert!(!shown.contains(&body[..40]), "key file leaked: {shown}");
    assert!(server.logins().is_empty());
}

#[tokio::test]
async fn key_data_authenticates() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let options = SshOptions {
        user: "ci".into(),
        key_data: vec![Secret::new(private_key_openssh(&fx.key))],
        keys_only: true,
        ..SshOptions::default()
    };
    let pool = new_pool(options, HostKeyPolicy::KnownHosts(known(&[&server])));
    let output = pool
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo from key_data"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "from key_data\n");
    assert_eq!(server.logins(), vec!["ci".to_owned()]);
}

#[tokio::test]
async fn ssh_agent_authenticates_and_keys_only_filters_it() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let agent = TestAgent::start(fx.dir.path(), std::slice::from_ref(&fx.key)).await;
    let options = SshOptions {
        agent_socket: Some(agent.socket().to_owned()),
        ..SshOptions::default()
    };
    let pool1 = new_pool(
        options.clone(),
        HostKeyPolicy::KnownHosts(known(&[&server])),
    );
    let output = pool1
        .session(&host(&server))
        .await
        .unwrap()
        .run(&RemoteCommand::plain("echo agent"))
        .await
        .unwrap();
    assert_eq!(output.stdout_text(), "agent\n");
    assert_eq!(server.logins(), vec!["root".to_owned()]);

    // keys_only with another named key: the agent's key is not offered.
    let other = write_private_key(&generate_key(), &fx.dir.path().join("other"));
    let only = SshOptions {
        keys: vec![other],
        keys_only: true,
        ..options
    };
    let pool2 = new_pool(only, HostKeyPolicy::KnownHosts(known(&[&server])));
    let error = connect_error(&pool2, &host(&server)).await;
    let ConnectError::Auth { tried, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        tried
            .iter()
            .any(|t| t == "ssh-agent (no usable identities)"),
        "{tried:?}"
    );
}

#[tokio::test]
async fn exit_codes_and_command_failures() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    for code in [0u32, 1, 3, 127] {
        let output = session
            .capture(&RemoteCommand::plain(format!("exit {code}")))
            .await
            .unwrap();
        assert_eq!(output.status, ExitStatus::Code(code));
    }
    let missing = session
        .capture(&RemoteCommand::plain("no-such-command-xyz"))
        .await
        .unwrap();
    assert_eq!(missing.status, ExitStatus::Code(127));

    let command = RemoteCommand::new(
        "echo 'login failed for token s3cr3t-canary' >&2; exit 4",
        "echo [REDACTED] >&2; exit 4",
    )
    .with_scrubbed([Secret::from("s3cr3t-canary")]);
    let error = session.run(&command).await.unwrap_err();
    let RemoteError::CommandFailed(failed) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(failed.host, host(&server));
    assert_eq!(failed.status, ExitStatus::Code(4));
    assert_eq!(failed.command, "echo [REDACTED] >&2; exit 4");
    assert_eq!(failed.stderr, "login failed for token [REDACTED]\n");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("s3cr3t-canary"), "{shown}");
}

#[tokio::test]
async fn large_output_streams_in_order_in_many_chunks() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let mut chunks = 0usize;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let status = session
        .exec(
            &RemoteCommand::plain("seq 1 700000; seq 1 1000 >&2"),
            &mut |stream, chunk| match stream {
                OutputStream::Stdout => {
                    chunks += 1;
                    stdout.extend_from_slice(chunk);
                }
                OutputStream::Stderr => stderr.extend_from_slice(chunk),
            },
        )
        .await
        .unwrap();
    assert!(status.success());
    let expected: String = (1..=700_000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 4_000_000);
    assert_eq!(stdout.len(), expected.len());
    assert!(
        stdout == expected.as_bytes(),
        "stdout differs from seq output"
    );
    let expected_err: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(stderr).unwrap(), expected_err);
    assert!(chunks > 10, "{chunks} chunks");
}

#[tokio::test]
async fn streamed_input_reaches_the_command_as_it_is_read() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
    // A pipe written in pieces by another task, as `docker save`'s output would be.
    let (mut writer, mut reader) = tokio::io::duplex(64 * 1024);
    let sent = payload.clone();
    let producer = tokio::spawn(async move {
        for piece in sent.chunks(100_000) {
            tokio::io::AsyncWriteExt::write_all(&mut writer, piece)
                .await
                .unwrap();
        }
    });
    let mut stdout = Vec::new();
    let status = session
        .exec_with_input(
            &RemoteCommand::plain("wc -c"),
            &mut reader,
            &mut |stream, chunk| {
                if stream == OutputStream::Stdout {
                    stdout.extend_from_slice(chunk);
                }
            },
        )
        .await
        .unwrap();
    producer.await.unwrap();
    assert!(status.success());
    assert_eq!(String::from_utf8(stdout).unwrap().trim(), "5000000");
    assert_eq!(server.commands()[0].stdin, payload);
}

#[tokio::test]
async fn large_stdin_reaches_the_command() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let output = session
        .run(&RemoteCommand::plain("wc -c").with_stdin(Secret::new(payload.clone())))
        .await
        .unwrap();
    assert_eq!(output.stdout_text().trim(), "3000000");
    assert_eq!(server.commands()[0].stdin, payload);
    // A command that echoes its input while it is still being sent.
    let echoed = session
        .run(&RemoteCommand::plain("cat").with_stdin(Secret::new(payload.clone())))
        .await
        .unwrap();
    assert!(echoed.stdout == payload, "echoed stdin differs");
    // A command that ignores its stdin still reports its own exit status.
    let ignored = session
        .capture(&RemoteCommand::plain("exit 5").with_stdin(Secret::new(payload.clone())))
        .await
        .unwrap();
    assert_eq!(ignored.status, ExitStatus::Code(5));
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn upload_writes_content_with_mode_0600() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let workdir = fx.workdir("web1");
    std::fs::create_dir_all(workdir.join(".kamal/apps/app/env/roles")).unwrap();
    // A stale world-readable file is replaced, not rewritten in place.
    let target = workdir.join(".kamal/apps/app/env/roles/web.env");
    std::fs::write(&target, "OLD=1\n").unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let contents = b"SECRET_KEY_BASE=upload-canary\nDB_PASSWORD=it's \"quoted\"\n";
    session
        .upload(contents, ".kamal/apps/app/env/roles/web.env", 0o600)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), contents);
    assert_eq!(mode_of(&target), 0o600);
    let received = server.commands();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].stdin, contents);
    assert!(
        received[0].command.starts_with("umask 077 && cat > "),
        "{}",
        received[0].command
    );
    assert!(!received[0].command.contains("upload-canary"));
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["web.env".to_owned()]);

    session.upload(b"#!/bin/sh\n", "hook", 0o700).await.unwrap();
    assert_eq!(mode_of(&workdir.join("hook")), 0o700);

    let error = session
        .upload(b"x", "no/such/dir/file", 0o600)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RemoteError::Upload { path, .. } if path == "no/such/dir/file"),
        "{error:?}"
    );
}

#[tokio::test]
async fn concurrent_commands_share_one_connection() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let pool = pool.clone();
        let host = host(&server);
        tasks.spawn(async move {
            let session = pool.session(&host).await.unwrap();
            let output = session
                .run(&RemoteCommand::plain(format!("sleep 0.1; echo {i}")))
                .await
                .unwrap();
            (i, output.stdout_text())
        });
    }
    let mut seen = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, text) = joined.unwrap();
        assert_eq!(text, format!("{i}\n"));
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..16).collect::<Vec<_>>());
    assert_eq!(server.logins().len(), 1, "one connection for every command");
    assert_eq!(server.commands().len(), 16);
}

#[tokio::test]
async fn fan_out_reports_every_failing_host() {
    let fx = Fixture::new();
    let ok1 = fx.server("ok1").await;
    let bad = fx.server("bad").await;
    let ok2 = fx.server("ok2").await;
    std::fs::write(fx.workdir("bad").join("broken"), "").unwrap();
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused_host = format!("127.0.0.1:{refused}");
    let hosts = vec![host(&ok1), host(&bad), refused_host.clone(), host(&ok2)];
    let pool = Pool::new(
        fx.options(),
        HostKeyPolicy::KnownHosts(known(&[&ok1, &bad, &ok2])),
        PoolLimits {
            max_concurrent_starts: 2,
            max_parallel_hosts: 2,
        },
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let result = pool
        .run_on_hosts(&hosts, &CancellationToken::new(), move |session| {
            let seen = Arc::clone(&seen2);
            async move {
                seen.lock().unwrap().push(session.host().to_owned());
                let output = session
                    .run(&RemoteCommand::plain(
                        "if [ -e broken ]; then echo 'disk full' >&2; exit 2; fi; echo fine",
                    ))
                    .await?;
                Ok(output.stdout_text())
            }
        })
        .await;
    assert_eq!(result.results.len(), 4);
    let error = result.into_result().unwrap_err();
    assert_eq!(error.total, 4);
    let failed: Vec<&str> = error.failures.iter().map(|f| f.host.as_str()).collect();
    assert_eq!(failed, [host(&bad).as_str(), refused_host.as_str()]);
    assert!(matches!(
        &error.failures[0].error,
        RemoteError::CommandFailed(f) if f.status == ExitStatus::Code(2) && f.stderr == "disk full\n"
    ));
    assert!(matches!(
        &error.failures[1].error,
        RemoteError::Connect(ConnectError::Refused { port, .. }) if *port == refused
    ));
    let message = error.to_string();
    assert!(message.starts_with("failed on 2 of 4 hosts:"), "{message}");
    assert!(message.contains("disk full"), "{message}");
    assert!(message.contains("refused"), "{message}");
    let mut ran = seen.lock().unwrap().clone();
    ran.sort();
    let mut expected = vec![host(&ok1), host(&bad), host(&ok2)];
    expected.sort();
    assert_eq!(ran, expected);
}

#[tokio::test]
async fn cancelled_fan_out_reports_cancelled_hosts() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let result = pool
        .run_on_hosts(&[host(&server)], &cancel, |session| async move {
            session.run(&RemoteCommand::plain("echo never")).await
        })
        .await;
    assert!(matches!(
        &result.results[0].1,
        Err(RemoteError::Cancelled { .. })
    ));
    assert!(server.commands().is_empty());
}

#[tokio::test]
async fn refused_and_timed_out_connections_are_typed() {
    let fx = Fixture::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let pool1 = new_pool(fx.options(), HostKeyPolicy::KnownHosts(KnownHosts::new()));
    let error = connect_error(&pool1, &format!("127.0.0.1:{port}")).await;
    assert_eq!(
        error,
        ConnectError::Refused {
            host: "127.0.0.1".into(),
            port
        }
    );
    assert_eq!(
        error.to_string(),
        format!("connection to 127.0.0.1:{port} refused")
    );

    // A listener that never speaks SSH.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut options = fx.options();
    options.connect_timeout = Duration::from_millis(300);
    let pool2 = new_pool(options, HostKeyPolicy::KnownHosts(KnownHosts::new()));
    let error = connect_error(&pool2, &format!("127.0.0.1:{silent_port}")).await;
    assert!(
        matches!(&error, ConnectError::Timeout { port, .. } if *port == silent_port),
        "{error:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn canary_private_keys_and_secrets_never_appear_in_errors() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let canary_key = private_key_openssh(&generate_key());
    let canary_secret = "pw-canary-8d1f";
    let options = SshOptions {
        key_data: vec![
            Secret::new(canary_key.clone()),
            Secret::new(format!("not a key {canary_secret}")),
        ],
        keys_only: true,
        ..SshOptions::default()
    };
    let mut shown = format!("{options:?}");
    let pool1 = new_pool(
        options.clone(),
        HostKeyPolicy::KnownHosts(known(&[&server])),
    );
    shown.push_str(&format!("{pool1:?}"));
    let error = connect_error(&pool1, &host(&server)).await;
    shown.push_str(&format!("{error} {error:?}"));
    // Unknown host key, with the same secret options.
    let pool2 = new_pool(options, HostKeyPolicy::KnownHosts(KnownHosts::new()));
    let error = connect_error(&pool2, &host(&server)).await;
    shown.push_str(&format!("{error} {error:?}"));
    // A failing command that had a secret in its text and on stdin.
    let good = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = good.session(&host(&server)).await.unwrap();
    let command = RemoteCommand::new(
        format!("echo {canary_secret} >&2; cat >/dev/null; exit 1"),
        "echo [REDACTED] >&2; cat >/dev/null; exit 1",
    )
    .with_stdin(Secret::new(canary_secret.as_bytes().to_vec()))
    .with_scrubbed([Secret::from(canary_secret)]);
    shown.push_str(&format!("{command:?}"));
    let error = session.run(&command).await.unwrap_err();
    shown.push_str(&format!("{error} {error:?}"));
    assert!(shown.contains("[REDACTED]"));
    assert!(!shown.contains(canary_secret), "secret leaked: {shown}");
    for line in canary_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "private key leaked: {shown}");
    }
    assert!(!shown.contains("BEGIN OPENSSH PRIVATE KEY"), "{shown}");
}

/// Every process's argv on this machine (the test server runs commands here, so this covers
/// both the client side and what `ps` on the host would show).
#[cfg(target_os = "linux")]
fn all_command_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit()));
        if is_pid && let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
            lines.push(String::from_utf8_lossy(&bytes).replace('\0', " "));
        }
    }
    lines
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn canary_secrets_never_appear_in_any_process_argv_during_a_run() {
    let fx = Fixture::new();
    let server = fx.server("web1").await;
    let options = SshOptions {
        key_data: vec![Secret::new(private_key_openssh(&fx.key))],
        keys_only: true,
        ..SshOptions::default()
    };
    let pool = new_pool(options, HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let canary = "argv-canary-5f3e9a";
    // The command reads the secret from stdin, says it started, then waits for a go file.
    let command = RemoteCommand::plain(
        "read -r secret; echo started; i=0; \
         while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         umask 077; printf '%s' \"$secret\" > received",
    )
    .with_stdin(Secret::new(format!("{canary}\n").into_bytes()));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let running = {
        let session = Arc::clone(&session);
        tokio::spawn(async move {
            let mut stdout = Vec::new();
            let status = session
                .exec(&command, &mut |stream, chunk| {
                    if stream == OutputStream::Stdout {
                        stdout.extend_from_slice(chunk);
                        if stdout.starts_with(b"started\n") {
                            let _ = started_tx.send(());
                        }
                    }
                })
                .await
                .unwrap();
            (status, String::from_utf8(stdout).unwrap())
        })
    };
    started_rx.recv().await.unwrap();
    // While the remote command runs, with the secret in its shell: scan every argv.
    let key_lines: Vec<String> = private_key_openssh(&fx.key)
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    let command_lines = all_command_lines();
    assert!(!command_lines.is_empty());
    for line in &command_lines {
        assert!(!line.contains(canary), "secret in argv: {line}");
        for key_line in &key_lines {
            assert!(
                !line.contains(key_line.as_str()),
                "private key in argv: {line}"
            );
        }
    }
    std::fs::write(fx.workdir("web1").join("go"), "").unwrap();
    let (status, stdout) = running.await.unwrap();
    assert!(status.success());
    assert_eq!(stdout, "started\n");
    assert_eq!(
        std::fs::read_to_string(fx.workdir("web1").join("received")).unwrap(),
        canary
    );
    // Uploads pass content on stdin too.
    session
        .upload(canary.as_bytes(), "secret.env", 0o600)
        .await
        .unwrap();
    for received in server.commands() {
        assert!(!received.command.contains(canary), "{}", received.command);
    }
}

/// A TCP server on 127.0.0.1 that answers each connection with `reply:` and what it read.
async fn reply_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 64];
                let read = stream.read(&mut buffer).await.unwrap_or(0);
                let mut answer = b"reply:".to_vec();
                answer.extend_from_slice(&buffer[..read]);
                let _ = stream.write_all(&answer).await;
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to the host's end of a forward and returns what came back for `message`.
async fn through(port: u16, message: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(message).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn remote_port_forward_bridges_host_connections_to_a_local_port() {
    let fx = Fixture::new();
    let server = fx.server_with("web1", true).await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let local = reply_server().await;
    let port = free_port();

    Transport::forward_port(session.as_ref(), port, local)
        .await
        .unwrap();
    assert_eq!(server.remote_forwards(), [format!("127.0.0.1:{port}")]);
    // Several connections, one after another and at once, each on its own channel.
    assert_eq!(through(port, b"one").await.unwrap(), b"reply:one");
    let (a, b) = tokio::join!(through(port, b"two"), through(port, b"three"));
    assert_eq!(a.unwrap(), b"reply:two");
    assert_eq!(b.unwrap(), b"reply:three");

    Transport::stop_forward(session.as_ref(), port)
        .await
        .unwrap();
    assert_eq!(
        server.remote_forwards(),
        [
            format!("127.0.0.1:{port}"),
            format!("cancel:127.0.0.1:{port}")
        ]
    );
    // The host no longer listens: nothing reaches the local server.
    let after = through(port, b"four").await;
    assert!(after.as_ref().map_or(true, Vec::is_empty), "{after:?}");
    // Stopping twice is harmless; the same port can be forwarded again.
    Transport::stop_forward(session.as_ref(), port)
        .await
        .unwrap();
    Transport::forward_port(session.as_ref(), port, local)
        .await
        .unwrap();
    assert_eq!(through(port, b"five").await.unwrap(), b"reply:five");
    pool.close().await;
}

#[tokio::test]
async fn refused_remote_port_forward_is_a_typed_error_naming_host_and_port() {
    let fx = Fixture::new();
    let server = fx.server_with("web1", false).await;
    let pool = new_pool(fx.options(), HostKeyPolicy::KnownHosts(known(&[&server])));
    let session = pool.session(&host(&server)).await.unwrap();
    let local = reply_server().await;
    let port = free_port();
    let error = Transport::forward_port(session.as_ref(), port, local)
        .await
        .unwrap_err();
    match &error {
        RemoteError::Forward {
            host: name,
            port: refused,
            local: to,
            reason,
        } => {
            assert_eq!(name, &host(&server));
            assert_eq!(*refused, port);
            assert_eq!(to, &local.to_string());
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected a forward error, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with(&format!("port forwarding of 127.0.0.1:{port} on ")),
        "{error}"
    );
    // The connection still runs commands.
    let output = session.run(&RemoteCommand::plain("echo ok")).await.unwrap();
    assert_eq!(output.stdout_text(), "ok\n");
    pool.close().await;
}
