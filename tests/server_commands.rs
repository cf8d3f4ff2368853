//! The `dhow` binary's `server exec`, `server bootstrap` and `check` against in-process SSH
//! servers on 127.0.0.1: output per host, audit lines, every failing host listed, host-key
//! verification (unknown, changed, pins, trust-on-first-use) with its exit code, refused
//! connections, the CI private key, hooks and the deploy lock.

use std::path::PathBuf;
use std::process::Output;

use dhow_test_support::{SshServer, SshServerConfig, generate_key, private_key_openssh};

struct Fixture {
    dir: tempfile::TempDir,
    key: dhow_test_support::SshPrivateKey,
    servers: Vec<SshServer>,
}

impl Fixture {
    /// `count` servers, a config listing them, and a `known_hosts` file trusting them.
    async fn new(count: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = generate_key();
        let mut servers = Vec::new();
        for index in 0..count {
            let workdir = dir.path().join(format!("host{index}"));
            std::fs::create_dir_all(&workdir).expect("workdir");
            servers.push(
                SshServer::start(SshServerConfig {
                    authorized_keys: vec![key.public_key().clone()],
                    workdir,
                    allow_forwarding: false,
                    host_key: None,
                    extra_host_keys: Vec::new(),
                })
                .await,
            );
        }
        let fixture = Self { dir, key, servers };
        dhow_test_support::write_private_key(&fixture.key, &fixture.path("id_ed25519"));
        fixture.write_config("  keys: [KEY]\n  keys_only: true\n");
        let lines: Vec<String> = fixture
            .servers
            .iter()
            .map(SshServer::known_hosts_line)
            .collect();
        std::fs::write(fixture.path("known_hosts"), lines.join("\n") + "\n").expect("known_hosts");
        std::fs::create_dir_all(fixture.path("home")).expect("home");
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn host(&self, index: usize) -> String {
        format!("127.0.0.1:{}", self.servers[index].port())
    }

    fn workdir(&self, index: usize) -> PathBuf {
        self.path(&format!("host{index}"))
    }

    /// Writes config/deploy.yml with `ssh_extra` under `ssh:` (KEY is the key path).
    fn write_config(&self, ssh_extra: &str) {
        let servers: Vec<String> = (0..self.servers.len())
            .map(|index| format!("  - {}\n", self.host(index)))
            .collect();
        let config = format!(
            "service: app\nimage: app\nservers:\n{}registry:\n  server: localhost:5000\n\
             builder:\n  arch: amd64\nssh:\n  user: root\n{}",
            servers.concat(),
            ssh_extra.replace("KEY", &self.path("id_ed25519").to_string_lossy())
        );
        std::fs::create_dir_all(self.path("config")).expect("config dir");
        std::fs::write(self.path("config/deploy.yml"), config).expect("deploy.yml");
    }

    fn hook(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = self.path(".kamal/hooks");
        std::fs::create_dir_all(&dir).expect("hooks dir");
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("hook");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Runs dhow in the fixture's directory with a clean SSH environment.
    async fn dhow(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhow"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("VERSION", "v1")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_KNOWN_HOSTS")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().await.expect("run dhow")
    }

    async fn dhow_trusted(&self, args: &[&str]) -> Output {
        let known = self.path("known_hosts");
        let mut all = vec!["--known-hosts", known.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        self.dhow(&all, &[]).await
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_runs_on_every_host_with_headers_and_audit_lines() {
    let fx = Fixture::new(3).await;
    let output = fx
        .dhow_trusted(&["server", "exec", "echo", "hello;", "basename", "$PWD"])
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = stdout(&output);
    for index in 0..3 {
        assert!(
            out.contains(&format!(
                "App Host: {}\nhello\nhost{index}\n\n",
                fx.host(index)
            )),
            "{out}"
        );
        let audit = std::fs::read_to_string(fx.workdir(index).join(".kamal/app-audit.log"))
            .expect("audit log");
        assert!(
            audit.ends_with(&format!(
                "Executed cmd 'echo hello; basename $PWD' on {}\n",
                fx.host(index)
            )),
            "{audit}"
        );
    }
    let hosts: Vec<String> = (0..3).map(|index| fx.host(index)).collect();
    assert!(
        stderr(&output).contains(&format!(
            "Running 'echo hello; basename $PWD' on {}...",
            hosts.join(", ")
        )),
        "{}",
        stderr(&output)
    );

    // -q drops the headers; -h selects hosts.
    let output = fx
        .dhow_trusted(&["-q", "-h", &fx.host(1), "server", "exec", "basename $PWD"])
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "host1\n\n");
    assert_eq!(stderr(&output), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failing_host_is_listed_with_its_stderr() {
    let fx = Fixture::new(3).await;
    for index in [1, 2] {
        std::fs::write(fx.workdir(index).join("broken"), "").expect("marker");
    }
    let output = fx
        .dhow_trusted(&[
            "server",
            "exec",
            "if [ -f broken ]; then echo disk on fire >&2; exit 3; fi; echo fine",
        ])
        .await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stdout(&output).contains(&format!("App Host: {}\nfine\n", fx.host(0))));
    let err = stderr(&output);
    assert!(err.contains("error: failed on 2 of 3 hosts:"), "{err}");
    for index in [1, 2] {
        assert!(
            err.contains(&format!(
                "{host}: `if [ -f broken ]; then echo disk on fire >&2; exit 3; fi; echo fine` \
                 failed on {host} with exit status 3: disk on fire",
                host = fx.host(index)
            )),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_host_key_fails_with_the_line_to_add_and_exit_6() {
    let fx = Fixture::new(2).await;
    std::fs::write(fx.path("empty_known_hosts"), "").expect("empty");
    let empty = fx.path("empty_known_hosts");
    let output = fx
        .dhow(
            &["server", "exec", "touch reached"],
            &[("DHOW_KNOWN_HOSTS", empty.to_str().expect("utf-8"))],
        )
        .await;
    assert_eq!(code(&output), 6, "{}", stderr(&output));
    let err = stderr(&output);
    for (index, server) in fx.servers.iter().enumerate() {
        assert!(
            err.contains(&format!(
                "host key for {}:{} is not known: the server presented ssh-ed25519 {}",
                "127.0.0.1",
                server.port(),
                server.fingerprint()
            )),
            "{err}"
        );
        assert!(err.contains(&server.known_hosts_line()), "{err}");
        assert!(!fx.workdir(index).join("reached").exists());
    }
    assert!(err.contains("hint: add the line shown"), "{err}");
    assert!(server_commands_ran(&fx).is_empty());
}

fn server_commands_ran(fx: &Fixture) -> Vec<String> {
    fx.servers
        .iter()
        .flat_map(|server| server.commands().into_iter().map(|c| c.command))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_host_key_fails_with_exit_6() {
    let fx = Fixture::new(1).await;
    let other = generate_key();
    let line = format!(
        "[127.0.0.1]:{} {}\n",
        fx.servers[0].port(),
        dhow_test_support::public_key_openssh(other.public_key())
    );
    std::fs::write(fx.path("known_hosts"), line).expect("known_hosts");
    let output = fx.dhow_trusted(&["server", "exec", "true"]).await;
    assert_eq!(code(&output), 6, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("has changed"), "{err}");
    assert!(err.contains(&fx.servers[0].fingerprint()), "{err}");
    assert!(err.contains(&fx.servers[0].known_hosts_line()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pinned_fingerprints_from_the_flag_or_the_environment() {
    let fx = Fixture::new(2).await;
    let pins: Vec<String> = fx
        .servers
        .iter()
        .map(|server| format!("[127.0.0.1]:{}={}", server.port(), server.fingerprint()))
        .collect();
    let output = fx
        .dhow(
            &[
                "--ssh-fingerprint",
                &pins.join(","),
                "server",
                "exec",
                "true",
            ],
            &[],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));

    let output = fx
        .dhow(
            &["server", "exec", "true"],
            &[("DHOW_SSH_FINGERPRINTS", &pins[0])],
        )
        .await;
    assert_eq!(code(&output), 6, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("failed on 1 of 2 hosts"), "{err}");
    assert!(err.contains(&fx.host(1)), "{err}");

    let output = fx
        .dhow(
            &["--ssh-fingerprint", "MD5:nope", "server", "exec", "true"],
            &[],
        )
        .await;
    assert_eq!(code(&output), 2, "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trust_on_first_use_writes_the_file_and_says_so() {
    let fx = Fixture::new(2).await;
    let file = fx.path("learned_hosts");
    let output = fx
        .dhow(
            &[
                "--trust-new-host-keys",
                file.to_str().expect("utf-8"),
                "server",
                "exec",
                "true",
            ],
            &[],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let written = std::fs::read_to_string(&file).expect("learned file");
    for server in &fx.servers {
        assert!(written.contains(&server.known_hosts_line()), "{written}");
        assert!(
            stderr(&output).contains(&format!(
                "trusted new host key {} for 127.0.0.1:{}",
                server.fingerprint(),
                server.port()
            )),
            "{}",
            stderr(&output)
        );
    }
    // The file now verifies the hosts on its own.
    let output = fx
        .dhow(
            &[
                "--known-hosts",
                file.to_str().expect("utf-8"),
                "server",
                "exec",
                "true",
            ],
            &[],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_connection_exits_5_and_names_the_host() {
    let fx = Fixture::new(1).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let config = std::fs::read_to_string(fx.path("config/deploy.yml")).expect("config");
    let config = config.replace("servers:\n", &format!("servers:\n  - 127.0.0.1:{port}\n"));
    std::fs::write(fx.path("config/deploy.yml"), config).expect("config");
    let output = fx.dhow_trusted(&["server", "exec", "true"]).await;
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("failed on 1 of 2 hosts"), "{err}");
    assert!(
        err.contains(&format!("connection to 127.0.0.1:{port} refused")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_key_from_the_environment_never_shows() {
    let fx = Fixture::new(1).await;
    fx.write_config("  keys_only: true\n");
    let key = private_key_openssh(&fx.key);
    let known = fx.path("known_hosts");
    let output = fx
        .dhow(
            &["-v", "server", "exec", "echo", "ran"],
            &[
                ("DHOW_SSH_PRIVATE_KEY", key.trim_end()),
                ("DHOW_KNOWN_HOSTS", known.to_str().expect("utf-8")),
            ],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("ran"));
    let body = key.lines().nth(1).expect("key body");
    assert!(!stdout(&output).contains(body));
    assert!(!stderr(&output).contains(body));

    // Without it, authentication fails: exit 5.
    let output = fx
        .dhow(
            &["server", "exec", "true"],
            &[("DHOW_KNOWN_HOSTS", known.to_str().expect("utf-8"))],
        )
        .await;
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("authentication as root"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pre_connect_hook_gets_kamal_env_and_secrets_and_can_stop_the_run() {
    let fx = Fixture::new(2).await;
    std::fs::create_dir_all(fx.path(".kamal")).expect(".kamal");
    std::fs::write(fx.path(".kamal/secrets"), "API_TOKEN=hook-canary\n").expect("secrets");
    let out = fx.path("hook.out");
    fx.hook(
        "pre-connect",
        &format!(
            "echo \"$KAMAL_COMMAND $KAMAL_SUBCOMMAND $KAMAL_HOSTS $KAMAL_LOCK $KAMAL_SERVICE \
             $KAMAL_VERSION $API_TOKEN\" > {}",
            out.display()
        ),
    );
    let output = fx.dhow_trusted(&["server", "exec", "true"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&out).expect("hook ran"),
        format!(
            "server exec {},{} false app v1 hook-canary\n",
            fx.host(0),
            fx.host(1)
        )
    );
    assert!(!stdout(&output).contains("hook-canary"));
    assert!(!stderr(&output).contains("hook-canary"));

    // -H skips hooks.
    std::fs::remove_file(&out).expect("rm");
    let output = fx.dhow_trusted(&["-H", "server", "exec", "true"]).await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(!out.exists());

    // A failing hook stops the command before any connection.
    fx.hook("pre-connect", "echo vpn is down >&2; exit 1");
    let before = server_commands_ran(&fx).len();
    let output = fx.dhow_trusted(&["server", "exec", "true"]).await;
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("error: Hook `pre-connect` failed:"), "{err}");
    assert!(err.contains("vpn is down"), "{err}");
    assert_eq!(server_commands_ran(&fx).len(), before);
}

/// Whether `docker <arg>` succeeds on the fake hosts, which are this machine: `-v` (what
/// `server bootstrap` checks) needs only the CLI, `version` (what `check` runs) the daemon too.
fn docker_succeeds(arg: &str) -> bool {
    std::process::Command::new("docker")
        .arg(arg)
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_takes_and_releases_the_lock_and_runs_docker_setup() {
    let fx = Fixture::new(2).await;
    let out = fx.path("hook.out");
    fx.hook(
        "docker-setup",
        &format!(
            "echo \"$KAMAL_LOCK $KAMAL_SUBCOMMAND\" > {}; ls .kamal >/dev/null 2>&1; ls {}/.kamal >> {}",
            out.display(),
            fx.workdir(0).display(),
            out.display()
        ),
    );
    let output = fx.dhow_trusted(&["server", "bootstrap"]).await;
    let commands = server_commands_ran(&fx);
    if docker_succeeds("-v") {
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        // The hook ran while the lock directory existed on the primary host.
        assert_eq!(
            std::fs::read_to_string(&out).expect("hook ran"),
            "true bootstrap\nlock-app\n"
        );
    } else {
        // The servers run as this user: no docker and no root here means the message.
        assert_eq!(code(&output), 1, "{}", stderr(&output));
        assert!(stderr(&output).contains("Docker is not installed on"));
    }
    assert!(commands.iter().any(|c| c == "docker -v"), "{commands:?}");
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("mkdir .kamal/lock-app && echo \"")),
        "{commands:?}"
    );
    assert!(!fx.workdir(0).join(".kamal/lock-app").exists());
    assert!(stderr(&output).contains("Acquiring the deploy lock..."));
    assert!(stderr(&output).contains("Releasing the deploy lock..."));

    // A held lock: exit 7, the details shown, nothing installed.
    std::fs::create_dir_all(fx.workdir(0).join(".kamal/lock-app")).expect("lock dir");
    std::fs::write(
        fx.workdir(0).join(".kamal/lock-app/details"),
        "TG9ja2VkIGJ5OiBhbGljZQ==\n",
    )
    .expect("details");
    let output = fx.dhow_trusted(&["server", "bootstrap"]).await;
    assert_eq!(code(&output), 7, "{}", stderr(&output));
    assert!(stderr(&output).contains("Deploy lock already in place!"));
    assert!(
        stdout(&output).contains("Locked by: alice"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).contains("Deploy lock found."));
    assert!(fx.workdir(0).join(".kamal/lock-app").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_prints_a_row_per_host_and_lists_failing_hosts() {
    let fx = Fixture::new(2).await;
    std::fs::create_dir_all(fx.path(".kamal")).expect(".kamal");
    std::fs::write(fx.path(".kamal/secrets"), "DB_PASSWORD=s3cret\n").expect("secrets");
    let config = std::fs::read_to_string(fx.path("config/deploy.yml")).expect("config");
    std::fs::write(
        fx.path("config/deploy.yml"),
        format!("{config}env:\n  secret:\n    - DB_PASSWORD\n    - MISSING_ONE\n"),
    )
    .expect("config");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let config = std::fs::read_to_string(fx.path("config/deploy.yml")).expect("config");
    std::fs::write(
        fx.path("config/deploy.yml"),
        config.replace("servers:\n", &format!("servers:\n  - 127.0.0.1:{port}\n")),
    )
    .expect("config");

    let output = fx.dhow_trusted(&["check"]).await;
    let out = stdout(&output);
    assert!(out.starts_with("HOST "), "{out}");
    assert!(out.contains("REGISTRY"), "{out}");
    let row = |host: &str| {
        out.lines()
            .find(|line| line.starts_with(host))
            .unwrap_or_else(|| panic!("no row for {host} in {out}"))
            .to_owned()
    };
    let refused = row(&format!("127.0.0.1:{port}"));
    assert!(refused.contains("FAILED: connection to"), "{refused}");
    for index in 0..2 {
        let line = row(&fx.host(index));
        assert!(line.contains("skipped (local registry)"), "{line}");
        assert!(line.contains("FAILED: "), "{line}");
        assert!(line.contains("MISSING_ONE"), "{line}");
        let docker = if docker_succeeds("version") {
            "ok"
        } else {
            "FAILED"
        };
        let cells: Vec<&str> = line.split("  ").filter(|c| !c.is_empty()).collect();
        assert_eq!(cells[1].trim(), "ok", "{line}");
        assert_eq!(cells[2].trim(), "ok", "{line}");
        assert!(cells[3].trim().starts_with(docker), "{line}");
    }
    assert!(!out.contains("s3cret"));
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("check failed on 3 of 3 host(s)"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interactive_exec_replaces_dhow_with_ssh_on_the_primary_host() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new(2).await;
    let bin = fx.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    // A stand-in `ssh` that prints its argv, one argument per line.
    std::fs::write(
        bin.join("ssh"),
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
    )
    .expect("fake ssh");
    std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let known = fx.path("known_hosts");
    let output = fx
        .dhow(
            &[
                "--known-hosts",
                known.to_str().expect("utf-8"),
                "server",
                "exec",
                "-i",
                "bin/rails",
                "console",
                "--sandbox",
            ],
            &[("PATH", &path)],
        )
        .await;
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let key = fx.path("id_ed25519");
    let expected = [
        "-i",
        key.to_str().expect("utf-8"),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        &format!("UserKnownHostsFile={}", known.display()),
        "-o",
        "StrictHostKeyChecking=yes",
        "-t",
        "root@127.0.0.1",
        "-p",
        &fx.servers[0].port().to_string(),
        "bin/rails console --sandbox",
    ]
    .join("\n")
        + "\n";
    assert_eq!(stdout(&output), expected);
    assert!(
        stderr(&output).contains(&format!(
            "Running 'bin/rails console --sandbox' on {} interactively...",
            fx.host(0)
        )),
        "{}",
        stderr(&output)
    );
    // Nothing ran through the SSH layer.
    assert!(server_commands_ran(&fx).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_bootstrap_releases_the_lock() {
    let fx = Fixture::new(1).await;
    let started = fx.path("hook.started");
    let release = fx.path("hook.release");
    fx.hook(
        "docker-setup",
        &format!(
            "touch {}; i=0; while [ ! -e {} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
            started.display(),
            release.display()
        ),
    );
    let known = fx.path("known_hosts");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args([
            "--known-hosts",
            known.to_str().expect("utf-8"),
            "server",
            "bootstrap",
        ])
        .current_dir(fx.dir.path())
        .env("HOME", fx.path("home"))
        .env("VERSION", "v1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("KAMAL_LOCK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Bounded wait for the hook, which runs while the lock is held.
    for _ in 0..400 {
        if started.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    if !started.exists() {
        let output = child.wait_with_output().await.expect("wait");
        panic!("the hook never started: {}", stderr(&output));
    }
    assert!(fx.workdir(0).join(".kamal/lock-app").exists());
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    std::fs::write(&release, "").expect("release hook");
    let output = child.wait_with_output().await.expect("wait");
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted by a signal"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("Releasing the deploy lock..."));
    assert!(!fx.workdir(0).join(".kamal/lock-app").exists());
}
