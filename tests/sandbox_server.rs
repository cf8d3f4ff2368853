//! `dhow server exec`, `server bootstrap` and `check` against the real SSH hosts of
//! `scripts/sandbox up --min-hosts 4` (OpenSSH servers running docker). `DHOW_SANDBOX` points at
//! the sandbox's `sandbox.json`; without it the tests fail under CI (`CI=true`) and print a
//! notice otherwise. Covers four hosts, a jump host, refused connections, a wrong key, an
//! unknown host key, bootstrap, check with the registry login, and a canary: the CI private key
//! and a secret never appear in output, errors or any process's argv during a run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Sandbox {
    json: Value,
    dir: tempfile::TempDir,
}

/// The sandbox, or `None` (with a notice) on a local run without one.
fn sandbox() -> Option<Sandbox> {
    let Some(path) = std::env::var_os("DHOW_SANDBOX").filter(|p| !p.is_empty()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "DHOW_SANDBOX is not set under CI: scripts/test runs `scripts/sandbox up --min-hosts 4` \
             and exports it"
        );
        #[expect(
            clippy::print_stderr,
            reason = "the notice says why nothing was checked"
        )]
        {
            eprintln!(
                "notice: DHOW_SANDBOX is not set; skipping the sandbox test (run `scripts/sandbox up \
             --min-hosts 4` and source .sandbox/sandbox.env)"
            );
        }
        return None;
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", Path::new(&path).display()));
    let sandbox = Sandbox {
        json: serde_json::from_str(&text).expect("sandbox.json"),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    assert!(
        sandbox.hosts().len() >= 4,
        "the sandbox has fewer than 4 hosts: run `scripts/sandbox up --min-hosts 4`"
    );
    std::fs::create_dir_all(sandbox.dir.path().join("home")).expect("home");
    Some(sandbox)
}

impl Sandbox {
    fn str(&self, pointer: &str) -> String {
        self.json
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer} missing from sandbox.json"))
            .to_owned()
    }

    fn hosts(&self) -> Vec<Value> {
        self.json["hosts"].as_array().expect("hosts").clone()
    }

    /// `127.0.0.1:<port>` of host `index` (0-based).
    fn host(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.hosts()[index]["ssh_port"])
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// config/deploy.yml for `servers` with extra top-level YAML.
    /// Each test has its own service, so audit logs and locks on the shared hosts stay apart.
    fn config(&self, service: &str, servers: &[String], ssh_extra: &str, extra: &str) {
        let servers: String = servers.iter().map(|s| ["  - ", s, "\n"].concat()).collect();
        let registry = self.str("/registry/from_hosts");
        let config = format!(
            "service: {service}\nimage: {service}\nservers:\n{servers}registry:\n  server: {registry}\n  \
             username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\n\
             ssh:\n  user: deploy\n{ssh_extra}{extra}"
        );
        std::fs::create_dir_all(self.path("config")).expect("config dir");
        std::fs::write(self.path("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::create_dir_all(self.path(".kamal")).expect(".kamal");
        std::fs::write(
            self.path(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nAPP_SECRET=canary-secret-4f1e9\n",
                self.str("/registry/password")
            ),
        )
        .expect("secrets");
    }

    fn key_ssh(&self) -> String {
        format!("  keys: [{}]\n  keys_only: true\n", self.str("/ssh/key"))
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("VERSION", "v1")
            .env("DHOW_KNOWN_HOSTS", self.str("/ssh/known_hosts"))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK");
        for (name, value) in env {
            command.env(name, value);
        }
        command
    }

    fn dhow(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("run dhow")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn exec_on_four_hosts_with_audit_lines() {
    let Some(sb) = sandbox() else { return };
    let servers: Vec<String> = (0..4).map(|i| sb.host(i)).collect();
    sb.config("sandbox-four", &servers, &sb.key_ssh(), "");
    let output = sb.dhow(&["server", "exec", "hostname"], &[]);
    assert_code(&output, 0);
    let out = text(&output.stdout);
    for (index, server) in servers.iter().enumerate() {
        let name = sb.hosts()[index]["name"].as_str().expect("name").to_owned();
        assert!(
            out.contains(&format!("App Host: {server}\n{name}\n\n")),
            "{out}"
        );
    }
    let output = sb.dhow(
        &[
            "-q",
            "server",
            "exec",
            "tail -n 2 .kamal/sandbox-four-audit.log | head -n 1",
        ],
        &[],
    );
    assert_code(&output, 0);
    let out = text(&output.stdout);
    for server in &servers {
        assert!(
            out.contains(&format!("Executed cmd 'hostname' on {server}\n")),
            "{out}"
        );
    }
}

#[test]
fn jump_host_through_host1_to_another_host_by_container_ip() {
    let Some(sb) = sandbox() else { return };
    let target = sb.hosts()[1]["ip"].as_str().expect("ip").to_owned();
    let jump = format!("  proxy: deploy@{}\n", sb.host(0));
    sb.config(
        "sandbox-jump",
        std::slice::from_ref(&target),
        &format!("{}{jump}", sb.key_ssh()),
        "",
    );
    let output = sb.dhow(&["server", "exec", "hostname"], &[]);
    assert_code(&output, 0);
    assert!(
        text(&output.stdout).contains(&format!("App Host: {target}\nhost2\n")),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn refused_connection_and_wrong_key_exit_5_unknown_host_key_exits_6() {
    let Some(sb) = sandbox() else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    sb.config(
        "sandbox-errors",
        &[format!("127.0.0.1:{port}")],
        &sb.key_ssh(),
        "",
    );
    let output = sb.dhow(&["server", "exec", "true"], &[]);
    assert_code(&output, 5);
    assert!(
        text(&output.stderr).contains(&format!("connection to 127.0.0.1:{port} refused")),
        "{}",
        text(&output.stderr)
    );

    let wrong = dhow_test_support::generate_key();
    let wrong_path = sb.path("wrong_key");
    dhow_test_support::write_private_key(&wrong, &wrong_path);
    sb.config(
        "sandbox-errors",
        &[sb.host(0)],
        &format!("  keys: [{}]\n  keys_only: true\n", wrong_path.display()),
        "",
    );
    let output = sb.dhow(&["server", "exec", "true"], &[]);
    assert_code(&output, 5);
    assert!(
        text(&output.stderr).contains(&format!(
            "authentication as deploy on {} failed",
            sb.host(0)
        )),
        "{}",
        text(&output.stderr)
    );

    sb.config("sandbox-errors", &[sb.host(0)], &sb.key_ssh(), "");
    std::fs::write(sb.path("empty_known_hosts"), "").expect("empty");
    let empty = sb.path("empty_known_hosts");
    let output = sb.dhow(
        &["server", "exec", "true"],
        &[("DHOW_KNOWN_HOSTS", empty.to_str().expect("utf-8"))],
    );
    assert_code(&output, 6);
    let err = text(&output.stderr);
    assert!(err.contains("is not known: the server presented"), "{err}");
    assert!(
        err.contains(&format!("[127.0.0.1]:{}", sb.hosts()[0]["ssh_port"])),
        "{err}"
    );
}

#[test]
fn bootstrap_on_hosts_with_docker_then_check_is_all_ok() {
    let Some(sb) = sandbox() else { return };
    let servers: Vec<String> = (0..4).map(|i| sb.host(i)).collect();
    sb.config(
        "sandbox-boot",
        &servers,
        &sb.key_ssh(),
        "env:\n  secret:\n    - APP_SECRET\n",
    );
    std::fs::write(
        sb.path("config/deploy.boot.yml"),
        "servers:\n".to_owned()
            + &servers
                .iter()
                .map(|s| ["  - ", s.as_str(), "\n"].concat())
                .collect::<String>(),
    )
    .expect("destination");
    let output = sb.dhow(&["-d", "boot", "server", "bootstrap"], &[]);
    assert_code(&output, 0);
    let err = text(&output.stderr);
    assert!(err.contains("Acquiring the deploy lock..."), "{err}");
    assert!(err.contains("Releasing the deploy lock..."), "{err}");
    assert!(!err.contains("Installing"), "{err}");
    let output = sb.dhow(
        &[
            "-d",
            "boot",
            "-p",
            "server",
            "exec",
            "test ! -e .kamal/lock-sandbox-boot-boot && echo free",
        ],
        &[],
    );
    assert_code(&output, 0);
    assert!(text(&output.stdout).contains("free"));

    let output = sb.dhow(&["check"], &[]);
    assert_code(&output, 0);
    let out = text(&output.stdout);
    assert!(out.starts_with("HOST"), "{out}");
    for server in &servers {
        let row = out
            .lines()
            .find(|line| line.starts_with(server.as_str()))
            .unwrap_or_else(|| panic!("no row for {server}: {out}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [server.as_str(), "ok", "ok", "ok", "ok", "ok"],
            "{out}"
        );
    }
    assert!(!out.contains("canary-secret"));

    // A wrong registry password is reported per host, without the password.
    std::fs::write(
        sb.path(".kamal/secrets"),
        "REGISTRY_PASSWORD=wrong-pass-canary\nAPP_SECRET=x\n",
    )
    .expect("secrets");
    let output = sb.dhow(&["check"], &[]);
    assert_code(&output, 1);
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(all.contains("FAILED: docker login"), "{all}");
    assert!(!all.contains("wrong-pass-canary"), "{all}");
}

#[test]
fn canary_private_key_and_secret_never_in_output_errors_or_argv() {
    let Some(sb) = sandbox() else { return };
    let servers: Vec<String> = (0..4).map(|i| sb.host(i)).collect();
    // No key files: the key arrives only through DHOW_SSH_PRIVATE_KEY.
    sb.config(
        "sandbox-canary",
        &servers,
        "  keys_only: true\n",
        "env:\n  secret:\n    - APP_SECRET\n",
    );
    let key = std::fs::read_to_string(sb.str("/ssh/key")).expect("sandbox key");
    let key_body: Vec<String> = key
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() > 20)
        .map(str::to_owned)
        .collect();
    assert!(!key_body.is_empty());
    // A pre-connect hook receives the secrets (as Kamal's does) and runs while we watch.
    let hooks = sb.path(".kamal/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks");
    std::fs::write(
        hooks.join("pre-connect"),
        "#!/bin/sh\ntest -n \"$APP_SECRET\"\n",
    )
    .expect("hook");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            hooks.join("pre-connect"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }

    let mut child = sb
        .command(
            &["-v", "server", "exec", "sleep 3; echo finished"],
            &[("DHOW_SSH_PRIVATE_KEY", &key)],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dhow");
    let canaries: Vec<String> = key_body
        .iter()
        .cloned()
        .chain(["canary-secret-4f1e9".to_owned()])
        .collect();
    let mut samples = 0;
    let mut saw_dhow = false;
    // Bounded: at most 200 samples, 50 ms apart, stopping when dhow exits.
    for _ in 0..200 {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        let ps = Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .expect("ps");
        let listing = text(&ps.stdout);
        samples += 1;
        saw_dhow |= listing.contains("sleep 3; echo finished");
        for canary in &canaries {
            assert!(
                !listing.contains(canary.as_str()),
                "a canary appeared in ps output:\n{listing}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("wait");
    assert_code(&output, 0);
    assert!(samples > 5 && saw_dhow, "ps was sampled {samples} times");
    assert_eq!(text(&output.stdout).matches("\nfinished\n").count(), 4);
    let all = text(&output.stdout) + &text(&output.stderr);
    for canary in &canaries {
        assert!(
            !all.contains(canary.as_str()),
            "a canary appeared in the output:\n{all}"
        );
    }

    // Errors too: a failing command on every host, and check's table.
    let output = sb.dhow(
        &["-v", "server", "exec", "echo oops >&2; exit 4"],
        &[("DHOW_SSH_PRIVATE_KEY", &key)],
    );
    assert_code(&output, 1);
    let output2 = sb.dhow(&["-v", "check"], &[("DHOW_SSH_PRIVATE_KEY", &key)]);
    assert_code(&output2, 0);
    let all = text(&output.stdout)
        + &text(&output.stderr)
        + &text(&output2.stdout)
        + &text(&output2.stderr);
    assert!(all.contains("failed on 4 of 4 hosts"), "{all}");
    for canary in &canaries {
        assert!(
            !all.contains(canary.as_str()),
            "a canary appeared in an error:\n{all}"
        );
    }
}
