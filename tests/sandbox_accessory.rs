//! `dhow accessory` end to end on sandbox hosts 17 and 18 (`scripts/sandbox up`). Two
//! accessories built from `tests/images/kv` (`scripts/sandbox image ... --kind kv --push`): `kv`
//! on host 17 with its own registry, a secret, an ERB file and a data directory; `cache` placed
//! on host 18 through `roles:`. Boot gives Kamal's names and labels, a 0600 env file holding the
//! secret, the directories and the rendered file; details, logs and exec (new and reused
//! container) work; a second boot skips the hosts that have the container; reboot keeps the
//! data directory; remove leaves no container, image, directory or env file. A canary secret
//! appears in no output and no process's argv. `DHOW_SANDBOX` points at `sandbox.json`; without
//! it the test fails under CI (`CI=true`) and prints a notice otherwise.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{ok, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-accessory";
const IMAGE: &str = "dhow-e2e-accessory-kv";
const CANARY: &str = "canary-accessory-env-5c7a1";
/// Sandbox hosts used (1-based, as `scripts/sandbox ssh` counts them): kv, cache.
const KV_HOST: usize = 17;
const CACHE_HOST: usize = 18;

/// Runs `cmd` as `deploy` on sandbox host `index` (1-based); its output, trimmed.
fn on_host(index: usize, cmd: &str) -> String {
    common::on_host(index, cmd).trim().to_owned()
}

fn build_image() -> String {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["image", IMAGE, "1", "--kind", "kv", "--push"])
        .output()
        .expect("scripts/sandbox image");
    ok(&output).trim().to_owned()
}

fn clean_hosts(image: &str) {
    for index in [KV_HOST, CACHE_HOST] {
        on_host(
            index,
            &format!(
                "docker ps -aq --filter label=service={SERVICE}-kv --filter label=service={SERVICE}-cache \
                 | xargs -r docker rm -f >/dev/null; \
                 for s in {SERVICE}-kv {SERVICE}-cache; do docker ps -aq --filter label=service=$s | xargs -r docker rm -f >/dev/null; done; \
                 docker image rm --force {image} >/dev/null 2>&1; \
                 rm -rf {SERVICE}-kv {SERVICE}-cache .kamal/apps/{SERVICE} .kamal/{SERVICE}-audit.log .kamal/lock-{SERVICE}"
            ),
        );
    }
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    fn new(json: &Value) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = |index: usize| {
            format!(
                "127.0.0.1:{}",
                json["hosts"][index - 1]["ssh_port"].as_u64().expect("port")
            )
        };
        let key = json["ssh"]["key"].as_str().expect("key");
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let config = format!(
            "service: {SERVICE}
image: {SERVICE}
servers:
  web:
    hosts: [{kv}]
  jobs:
    hosts: [{cache}]
registry:
  server: {registry}
  username: ci
  password: [REGISTRY_PASSWORD]
builder:
  arch: amd64
ssh:
  user: deploy
  keys: [{key}]
  keys_only: true
accessories:
  kv:
    image: {IMAGE}:1
    registry:
      server: {registry}
      username: ci
      password: [REGISTRY_PASSWORD]
    host: {kv}
    port: \"127.0.0.1:18099:80\"
    env:
      clear:
        KV_MODE: test
      secret:
        - KV_TOKEN
    files:
      - local: config/kv.conf.erb
        remote: /etc/kv.conf
        mode: \"0600\"
    directories:
      - data:/data
    labels:
      tier: storage
  cache:
    image: {registry}/{IMAGE}:1
    roles: [jobs]
    cmd: /start.sh
    directories:
      - data:/data
",
            kv = host(KV_HOST),
            cache = host(CACHE_HOST),
        );
        std::fs::create_dir_all(dir.path().join("config")).expect("config");
        std::fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::write(
            dir.path().join("config/kv.conf.erb"),
            "mode=<%= ENV[\"KV_MODE\"] %>\ntoken=<%= ENV.fetch(\"KV_TOKEN\") %>\n",
        )
        .expect("kv.conf.erb");
        std::fs::write(
            dir.path().join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nKV_TOKEN={CANARY}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
        Self {
            dir,
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        }
    }

    /// Runs dhow with `args`, sampling `ps` while it runs (the canary must never be in an
    /// argv); returns how it ended and its stdout and stderr together.
    fn dhow(&self, args: &[&str]) -> (Output, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dhow"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", "v1")
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dhow");
        // Bounded: at most 1200 samples, 50 ms apart, stopping when dhow exits.
        for _ in 0..1200 {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let ps = Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .expect("ps");
            let listing = text(&ps.stdout);
            assert!(
                !listing.contains(CANARY),
                "the accessory secret appeared in a process's argv:\n{listing}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wait");
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(
            !all.contains(CANARY),
            "the accessory secret appeared in dhow's output:\n{all}"
        );
        (output, all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (output, all) = self.dhow(args);
        ok(&output);
        all
    }
}

fn kv_container(index: usize) -> String {
    on_host(
        index,
        &format!("docker ps -aq --filter label=service={SERVICE}-kv"),
    )
}

fn check_booted(image: &str) {
    // kv on host 17: Kamal's name, labels and env, the 0600 env file, the rendered file.
    let kv = on_host(
        KV_HOST,
        &format!(
            "docker inspect {SERVICE}-kv --format '{{{{.Name}}}} {{{{.State.Status}}}} {{{{.Config.Image}}}} {{{{index .Config.Labels \"service\"}}}} {{{{index .Config.Labels \"tier\"}}}}'"
        ),
    );
    assert_eq!(
        kv,
        format!("/{SERVICE}-kv running {image} {SERVICE}-kv storage")
    );
    let env_file = format!(".kamal/apps/{SERVICE}/env/accessories/kv.env");
    assert_eq!(on_host(KV_HOST, &format!("stat -c %a {env_file}")), "600");
    assert_eq!(
        on_host(KV_HOST, &format!("cat {env_file}")),
        format!("KV_TOKEN={CANARY}")
    );
    assert_eq!(
        on_host(
            KV_HOST,
            &format!("docker exec {SERVICE}-kv sh -c 'echo $KV_TOKEN $KV_MODE $KAMAL_HOST'")
        ),
        format!("{CANARY} test 127.0.0.1:{}", 2200 + KV_HOST)
    );
    assert_eq!(
        on_host(
            KV_HOST,
            &format!(
                "stat -c %a {SERVICE}-kv/etc/kv.conf && cat {SERVICE}-kv/etc/kv.conf && test -d {SERVICE}-kv/data && echo dir"
            )
        ),
        format!("600\nmode=test\ntoken={CANARY}\ndir")
    );
    assert_eq!(
        on_host(
            KV_HOST,
            &format!("docker exec {SERVICE}-kv cat /etc/kv.conf")
        ),
        format!("mode=test\ntoken={CANARY}")
    );
    // cache on host 18 (through `roles: [jobs]`), and each accessory only where it belongs.
    assert_eq!(
        on_host(
            CACHE_HOST,
            &format!(
                "docker inspect {SERVICE}-cache --format '{{{{.State.Status}}}}' && stat -c %a .kamal/apps/{SERVICE}/env/accessories/cache.env && test -d {SERVICE}-cache/data && echo dir"
            )
        ),
        "running\n600\ndir"
    );
    assert_eq!(kv_container(CACHE_HOST), "");
    assert_eq!(
        on_host(
            KV_HOST,
            &format!("docker ps -aq --filter label=service={SERVICE}-cache")
        ),
        ""
    );
    let audit = on_host(KV_HOST, &format!("cat .kamal/{SERVICE}-audit.log"));
    assert!(audit.contains("Booted kv accessory"), "{audit}");
    assert!(!audit.contains(CANARY));
}

fn check_removed(image: &str) {
    for (index, name) in [(KV_HOST, "kv"), (CACHE_HOST, "cache")] {
        assert_eq!(
            on_host(
                index,
                &format!("docker ps -aq --filter label=service={SERVICE}-{name}")
            ),
            "",
            "a container is left on host {index}"
        );
        assert_eq!(
            on_host(index, &format!("docker image ls -q {image}")),
            "",
            "the image is left on host {index}"
        );
        assert_eq!(
            on_host(
                index,
                &format!(
                    "ls -d {SERVICE}-{name} .kamal/apps/{SERVICE}/env/accessories/{name}.env .kamal/lock-{SERVICE} 2>/dev/null; true"
                )
            ),
            "",
            "a directory, env file or the lock is left on host {index}"
        );
    }
}

#[test]
fn accessories_boot_work_reboot_and_go_away() {
    let Some(json) = sandbox(CACHE_HOST) else {
        return;
    };
    let image = build_image();
    clean_hosts(&image);
    let app = App::new(&json);

    let plan = app.ok(&["accessory", "boot", "all", "--dry-run"]);
    assert!(
        plan.contains(
            "upload .kamal/apps/dhow-e2e-accessory/env/accessories/kv.env (mode 0600, [REDACTED])"
        ),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "docker run --name {SERVICE}-kv --detach --restart unless-stopped --network kamal"
        )),
        "{plan}"
    );
    assert_eq!(kv_container(KV_HOST), "", "--dry-run changed nothing");

    app.ok(&["accessory", "boot", "all"]);
    check_booted(&image);

    let details = app.ok(&["accessory", "details", "all"]);
    assert!(
        details.contains(&format!("Accessory kv Host: 127.0.0.1:{}", 2200 + KV_HOST)),
        "{details}"
    );
    assert!(
        details.contains(&format!(
            "Accessory cache Host: 127.0.0.1:{}",
            2200 + CACHE_HOST
        )),
        "{details}"
    );
    assert!(details.contains(&format!("{SERVICE}-kv")), "{details}");

    let logs = app.ok(&["accessory", "logs", "kv"]);
    assert!(logs.contains("kv 1 started mode=test conf=yes"), "{logs}");

    // Exec in the running container writes a key; a new container sees it through the volume.
    app.ok(&[
        "accessory",
        "exec",
        "kv",
        "--reuse",
        "sh -c 'echo persisted > /data/key'",
    ]);
    let read = app.ok(&["accessory", "exec", "kv", "cat /data/key"]);
    assert!(read.contains("persisted"), "{read}");
    assert!(read.contains("App Host: "), "{read}");
    // The key/value store answers over HTTP on the host.
    assert_eq!(
        on_host(
            KV_HOST,
            "wget -qO- http://127.0.0.1:18099/key 2>/dev/null || curl -fsS http://127.0.0.1:18099/key"
        ),
        "persisted"
    );

    // A second boot skips the hosts that have the container.
    let again = app.ok(&["accessory", "boot", "kv"]);
    assert!(
        again.contains(&format!(
            "Skipping booting `kv` on 127.0.0.1:{}, a container already exists",
            2200 + KV_HOST
        )),
        "{again}"
    );

    // Reboot: a new container, the data kept.
    let before = kv_container(KV_HOST);
    app.ok(&["accessory", "reboot", "kv"]);
    let after = kv_container(KV_HOST);
    assert!(!after.is_empty() && after != before, "{before} -> {after}");
    let read = app.ok(&["accessory", "exec", "kv", "--reuse", "cat /data/key"]);
    assert!(read.contains("persisted"), "{read}");
    check_booted(&image);

    // Without -y and without a terminal, remove refuses and changes nothing.
    let (refused, message) = app.dhow(&["accessory", "remove", "all"]);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(!kv_container(KV_HOST).is_empty());

    app.ok(&["accessory", "remove", "all", "-y"]);
    check_removed(&image);
    let audit = on_host(KV_HOST, &format!("cat .kamal/{SERVICE}-audit.log"));
    for line in [
        "Stopped kv accessory",
        "Remove kv accessory container",
        "Removed kv accessory image",
    ] {
        assert!(audit.contains(line), "{line} missing from:\n{audit}");
    }
    clean_hosts(&image);
}
