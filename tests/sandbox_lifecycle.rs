//! End-to-end lifecycle on the sandbox (`scripts/sandbox up`). Hosts 14 and 15: one config with
//! a web role behind kamal-proxy (the image of `scripts/build-proxy-image`) on both hosts, a
//! worker role on the second and a `kv` accessory (`tests/images/kv`, a data directory) on the
//! first. `dhow setup` boots the accessory and deploys v1, which answers through the proxy on
//! 127.0.0.1; `deploy` v2 → v2; `rollback v1` → v1; `rollback` of an unknown version fails naming
//! the hosts and changes nothing; a v3 whose health check fails leaves v1 serving and prints its
//! log tail; `app logs` shows the running containers' output, `app exec --reuse` runs in them;
//! `accessory reboot` replaces the accessory's container and keeps its data; `prune all` with
//! `retain_containers: 1` keeps the running and the newest stopped container and their images and
//! removes the rest; `remove` leaves no container (the accessory's too), image, volume, env
//! file, accessory directory, proxy or lock. Host 16: a held lock makes a deploy fail with the
//! holder's details (exit 7), `--lock-wait` waits for the release, and SIGTERM during the boot
//! stops the new container, keeps the old one, writes the audit line and releases the lock.
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the tests fail under CI (`CI=true`) and
//! print a notice otherwise.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{http_get, ok, on_host, push_proxy_image, sandbox_image, text};

const SERVICE: &str = "dhow-e2e-life";
const LOCK_SERVICE: &str = "dhow-e2e-lock";
/// The accessory's image (`tests/images/kv`) and its container (`<service>-kv`).
const KV_IMAGE: &str = "dhow-e2e-life-kvimage";
const KV: &str = "dhow-e2e-life-kv";
const CANARY: &str = "canary-lifecycle-env-5a1d";
/// Sandbox hosts (1-based, as `scripts/sandbox ssh` counts them).
const HOSTS: [usize; 2] = [14, 15];
const LOCK_HOST: usize = 16;

/// Leaves host `index` as the sandbox made it: no containers, images, volumes or `.kamal`.
fn wipe(index: usize) {
    on_host(
        index,
        "docker ps -aq | xargs -r docker rm -f >/dev/null; \
         docker images -q | sort -u | xargs -r docker rmi -f >/dev/null 2>&1; \
         docker volume ls -q | xargs -r docker volume rm >/dev/null; rm -rf .kamal",
    );
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    fn new(json: &Value, config: &str) -> Self {
        let app = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        };
        std::fs::create_dir_all(app.dir.path().join("config")).expect("config");
        std::fs::create_dir_all(app.dir.path().join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(app.dir.path().join("home")).expect("home");
        app.write_config(config);
        std::fs::write(
            app.dir.path().join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nCANARY_SECRET={CANARY}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
        app
    }

    fn write_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
    }

    fn dhow(&self, version: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", version)
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .env_remove("GITHUB_ACTOR")
            .env_remove("GITHUB_RUN_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs dhow to the end; returns how it ended and everything it printed (never the canary).
    fn run(&self, version: &str, args: &[&str]) -> (Output, String) {
        let output = self.dhow(version, args).output().expect("dhow");
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(!all.contains(CANARY), "the env secret was printed:\n{all}");
        (output, all)
    }

    fn ok(&self, version: &str, args: &[&str]) -> String {
        let (output, all) = self.run(version, args);
        assert!(output.status.success(), "dhow {args:?}: {all}");
        all
    }

    /// Starts dhow with its output going to files in the app directory.
    fn spawn(&self, version: &str, args: &[&str], name: &str) -> std::process::Child {
        let out = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        let err = out.try_clone().expect("log");
        self.dhow(version, args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn dhow")
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

fn host_spec(json: &Value, index: usize) -> String {
    format!("127.0.0.1:{}", json["hosts"][index - 1]["ssh_port"])
}

/// The lifecycle's config: `web` behind the proxy on both hosts (`proxy_extra` lines under
/// `proxy:`), `workers` on the second (logging `worker up` and its version, stopping at once on
/// SIGTERM), the `kv` accessory with a secret and a data directory on the first, and `tail`
/// lines at the root.
fn web_config(json: &Value, registry: &str, proxy_extra: &str, tail: &str) -> String {
    format!(
        "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  web:\n    - {h1}\n    - {h2}\n  \
         workers:\n    hosts:\n      - {h2}\n    cmd: \"sh -c 'trap exit TERM; echo worker up; cat \
         /www/version; while true; do sleep 1; done'\"\nproxy:\n  app_port: 80\n{proxy_extra}  \
         run:\n    registry: {registry}\n    repository: dhow/kamal-proxy\nregistry:\n  server: \
         {registry}\n  username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\n\
         env:\n  secret:\n    - CANARY_SECRET\nssh:\n  user: deploy\n  keys: [{key}]\n  keys_only: true\n\
         accessories:\n  kv:\n    image: {registry}/{KV_IMAGE}:1\n    host: {h1}\n    env:\n      \
         clear:\n        KV_MODE: life\n      secret:\n        - CANARY_SECRET\n    directories:\n      \
         - data:/data\n{tail}",
        h1 = host_spec(json, HOSTS[0]),
        h2 = host_spec(json, HOSTS[1]),
        key = json["ssh"]["key"].as_str().expect("key"),
    )
}

fn serves(json: &Value, version: &str) {
    for index in HOSTS {
        let port = json["hosts"][index - 1]["http_port"].to_string();
        assert_eq!(
            http_get(&port, "/version").trim(),
            version,
            "host {index} serves {version} through the proxy"
        );
    }
    let running = on_host(
        HOSTS[1],
        &format!("docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}}' | sort"),
    );
    assert_eq!(
        running.trim(),
        format!("{SERVICE}-web-{version}\n{SERVICE}-workers-{version}"),
        "only {version} runs on host {}",
        HOSTS[1]
    );
}

fn lock_free(index: usize, service: &str) {
    let lock = on_host(
        index,
        &format!("test -e .kamal/lock-{service} && echo held || echo free"),
    );
    assert_eq!(lock.trim(), "free", "the lock on host {index}");
}

/// `docker ps -a` names of the app's containers on host `index`, sorted, with their state.
fn app_containers(index: usize) -> Vec<String> {
    on_host(
        index,
        &format!(
            "docker ps -a --filter label=service={SERVICE} --format '{{{{.Names}}}} {{{{.State}}}}' | sort"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The tags of the app's image on host `index`, sorted.
fn app_tags(index: usize, registry: &str) -> Vec<String> {
    on_host(
        index,
        &format!("docker image ls {registry}/{SERVICE} --format '{{{{.Tag}}}}' | sort"),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The accessory on the first host: running from its image, the 0600 env file holding the
/// secret, its data directory; nothing of it on the second host. Returns its container id.
fn kv_running(registry: &str) -> String {
    let state = on_host(
        HOSTS[0],
        &format!(
            "docker inspect {KV} --format '{{{{.State.Status}}}} {{{{.Config.Image}}}} \
             {{{{index .Config.Labels \"service\"}}}} {{{{.Id}}}}'"
        ),
    );
    let fields: Vec<&str> = state.split_whitespace().collect();
    assert_eq!(
        fields[..3],
        ["running", &format!("{registry}/{KV_IMAGE}:1"), KV],
        "{state}"
    );
    let env_file = format!(".kamal/apps/{SERVICE}/env/accessories/kv.env");
    assert_eq!(
        on_host(
            HOSTS[0],
            &format!("stat -c %a {env_file} && cat {env_file} && test -d {KV}/data && echo dir")
        ),
        format!("600\nCANARY_SECRET={CANARY}\ndir\n")
    );
    assert_eq!(
        on_host(
            HOSTS[1],
            &format!("docker ps -aq --filter label=service={KV}; ls -d {KV} 2>/dev/null; true")
        ),
        "",
        "the accessory is only on host {}",
        HOSTS[0]
    );
    fields[3].to_owned()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one lifecycle on the same hosts, step by step in order"
)]
fn setup_deploy_rollback_failed_boot_logs_exec_reboot_prune_and_remove() {
    let Some(json) = common::sandbox(LOCK_HOST) else {
        return;
    };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    for version in ["v1", "v2", "v3"] {
        sandbox_image(SERVICE, version, "web");
    }
    sandbox_image(KV_IMAGE, "1", "kv");
    for index in HOSTS {
        wipe(index);
        on_host(index, &format!("rm -rf {KV}"));
    }
    let app = App::new(&json, &web_config(&json, &registry, "", ""));

    // setup: Docker is there, the proxy and the accessory are booted, v1 deployed.
    let out = app.ok("v1", &["setup", "-P"]);
    assert!(out.contains("Ensure Docker is installed"), "{out}");
    serves(&json, "v1");
    let kv = kv_running(&registry);
    for index in HOSTS {
        lock_free(index, SERVICE);
    }

    app.ok("v2", &["deploy", "-P"]);
    serves(&json, "v2");

    let out = app.ok("v2", &["rollback", "v1"]);
    assert!(out.contains("Finished in"), "{out}");
    serves(&json, "v1");
    let audit = on_host(HOSTS[0], &format!("cat .kamal/{SERVICE}-audit.log"));
    let booted: Vec<&str> = audit
        .lines()
        .filter_map(|line| line.split("Booted app version ").nth(1))
        .collect();
    assert_eq!(booted, ["v1", "v2", "v1"], "{audit}");
    // Rolling back to v1 renamed its old container and booted a new one (Kamal's boot).
    let containers = app_containers(HOSTS[1]);
    assert_eq!(containers.len(), 6, "{containers:?}");
    for expected in [
        format!("{SERVICE}-web-v1 running"),
        format!("{SERVICE}-web-v2 exited"),
        format!("{SERVICE}-workers-v1 running"),
        format!("{SERVICE}-workers-v2 exited"),
    ] {
        assert!(containers.contains(&expected), "{expected}: {containers:?}");
    }
    for role in ["web", "workers"] {
        let prefix = format!("{SERVICE}-{role}-v1_replaced_");
        assert!(
            containers
                .iter()
                .any(|c| c.starts_with(&prefix) && c.ends_with(" exited")),
            "{prefix}: {containers:?}"
        );
    }

    // An unknown version: exit 1, every host named, nothing changed.
    let (output, all) = app.run("v1", &["rollback", "v9"]);
    assert_eq!(output.status.code(), Some(1), "{all}");
    for index in HOSTS {
        assert!(all.contains(&host_spec(&json, index)), "{all}");
    }
    assert!(
        all.contains("the app version 'v9' is not available as a container"),
        "{all}"
    );
    serves(&json, "v1");
    for index in HOSTS {
        lock_free(index, SERVICE);
    }

    // v3 never passes the proxy's health check: v1 keeps serving, the log tail is printed.
    app.write_config(&web_config(
        &json,
        &registry,
        "  healthcheck:\n    path: /missing\n    interval: 1\n    timeout: 1\n",
        "deploy_timeout: 4\n",
    ));
    let (output, all) = app.run("v3", &["deploy", "-P"]);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("web v3 listening on :80"), "log tail:\n{all}");
    assert!(
        all.contains("Last log lines of the new web container"),
        "{all}"
    );
    assert!(
        all.contains("Health state of the new web container"),
        "{all}"
    );
    serves(&json, "v1");
    for index in HOSTS {
        lock_free(index, SERVICE);
    }
    app.write_config(&web_config(&json, &registry, "", ""));

    // app logs: the running containers' own output, per host; nothing of v2 or v3.
    let logs = app.ok("v1", &["app", "logs", "-n", "20", "-T"]);
    assert_eq!(logs.matches("web v1 listening on :80").count(), 2, "{logs}");
    assert_eq!(logs.matches("worker up\nv1").count(), 1, "{logs}");
    assert!(!logs.contains("v2") && !logs.contains("v3"), "{logs}");
    for index in HOSTS {
        assert!(
            logs.contains(&format!("App Host: {}", host_spec(&json, index))),
            "{logs}"
        );
    }

    // app exec --reuse: the command runs in the running v1 container on each host.
    let exec = app.ok(
        "v1",
        &["app", "exec", "--reuse", "cat /www/version /etc/hostname"],
    );
    for index in HOSTS {
        let hostname = on_host(
            index,
            &format!("docker exec {SERVICE}-web-v1 cat /etc/hostname"),
        );
        assert!(
            exec.contains(&format!(
                "App Host: {}\nv1\n{}\n",
                host_spec(&json, index),
                hostname.trim()
            )),
            "host {index}: {exec}"
        );
    }
    // ... and in a new container of v1 (removed afterwards), on the workers role only.
    let exec = app.ok("v1", &["app", "exec", "-r", "workers", "cat /www/version"]);
    assert_eq!(
        exec.matches("App Host: ").count(),
        1,
        "only the workers' host: {exec}"
    );
    assert!(
        exec.contains(&format!("App Host: {}\nv1\n", host_spec(&json, HOSTS[1]))),
        "{exec}"
    );
    assert!(
        app_containers(HOSTS[1])
            .iter()
            .all(|name| !name.contains("-exec-")),
        "exec containers are removed"
    );

    // accessory reboot: a new kv container, the data in its directory kept.
    app.ok(
        "v1",
        &[
            "accessory",
            "exec",
            "kv",
            "--reuse",
            "sh -c 'echo persisted > /data/key'",
        ],
    );
    app.ok("v1", &["accessory", "reboot", "kv"]);
    let rebooted = kv_running(&registry);
    assert_ne!(rebooted, kv, "a new accessory container");
    assert_eq!(
        on_host(HOSTS[0], &format!("docker exec {KV} cat /data/key")),
        "persisted\n"
    );
    let logs = app.ok("v1", &["accessory", "logs", "kv"]);
    assert!(logs.contains("kv 1 started mode=life"), "{logs}");
    serves(&json, "v1");

    // prune all with retain_containers: 1 keeps the running containers and the newest stopped
    // one (v3's web, stopped after its failed boot) with their images and `latest`; the other
    // stopped containers (v2, the replaced v1) and the v2 image go. The accessory stays.
    app.write_config(&web_config(&json, &registry, "", "retain_containers: 1\n"));
    app.ok("v1", &["prune", "all"]);
    assert_eq!(
        app_containers(HOSTS[0]),
        [
            format!("{SERVICE}-web-v1 running"),
            format!("{SERVICE}-web-v3 exited")
        ]
    );
    assert_eq!(
        app_containers(HOSTS[1]),
        [
            format!("{SERVICE}-web-v1 running"),
            format!("{SERVICE}-web-v3 exited"),
            format!("{SERVICE}-workers-v1 running")
        ]
    );
    for index in HOSTS {
        assert_eq!(
            app_tags(index, &registry),
            ["latest", "v1", "v3"],
            "host {index}"
        );
    }
    assert_eq!(
        kv_running(&registry),
        rebooted,
        "prune leaves the accessory"
    );
    serves(&json, "v1");

    // remove: nothing of the app, the accessory or the proxy is left.
    app.ok("v1", &["remove", "-y"]);
    for index in HOSTS {
        assert_eq!(
            on_host(index, "docker ps -a --format '{{.Names}}'").trim(),
            ""
        );
        assert_eq!(
            on_host(index, "docker images --format '{{.Repository}}:{{.Tag}}'").trim(),
            ""
        );
        assert_eq!(on_host(index, "docker volume ls -q").trim(), "");
        // No env file, lock, proxy directory or accessory directory: only the audit log (and
        // the emptied `.kamal/apps`, which Kamal leaves too).
        let files = on_host(index, "find .kamal -mindepth 1 | sort");
        assert_eq!(
            files.trim(),
            format!(".kamal/apps\n.kamal/{SERVICE}-audit.log"),
            "only the audit log is left on host {index}"
        );
        assert_eq!(
            on_host(index, &format!("ls -d {KV} 2>/dev/null; true")),
            "",
            "the accessory's directory is gone from host {index}"
        );
        let audit = on_host(index, &format!("cat .kamal/{SERVICE}-audit.log"));
        for line in ["Removed all app containers", "Removed all app images"] {
            assert!(audit.contains(line), "{line:?} missing from\n{audit}");
        }
    }
    let audit = on_host(HOSTS[0], &format!("cat .kamal/{SERVICE}-audit.log"));
    // Booted by setup and again by the reboot (stop, remove the container, boot).
    assert_eq!(audit.matches("Booted kv accessory").count(), 2, "{audit}");
    for line in [
        "Stopped kv accessory",
        "Remove kv accessory container",
        "Removed kv accessory image",
        "Pruned containers",
        "Pruned images",
    ] {
        assert!(audit.contains(line), "{line:?} missing from\n{audit}");
    }
    for index in HOSTS {
        wipe(index);
    }
}

fn lock_config(json: &Value, registry: &str, readiness_delay: u32) -> String {
    format!(
        "service: {LOCK_SERVICE}\nimage: {LOCK_SERVICE}\nservers:\n  workers:\n    hosts:\n      - {}\n    \
         proxy: false\nprimary_role: workers\nreadiness_delay: {readiness_delay}\ndeploy_timeout: 60\n\
         registry:\n  server: {registry}\n  username: ci\n  password:\n    - REGISTRY_PASSWORD\n\
         builder:\n  arch: amd64\nenv:\n  secret:\n    - CANARY_SECRET\nssh:\n  user: deploy\n  keys: \
         [{}]\n  keys_only: true\n",
        host_spec(json, LOCK_HOST),
        json["ssh"]["key"].as_str().expect("key"),
    )
}

/// Waits (bounded: 600 × 100 ms) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn held_lock_lock_wait_and_sigterm_during_the_boot() {
    let Some(json) = common::sandbox(LOCK_HOST) else {
        return;
    };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    sandbox_image(LOCK_SERVICE, "v1", "worker");
    sandbox_image(LOCK_SERVICE, "v2", "worker");
    wipe(LOCK_HOST);
    let app = App::new(&json, &lock_config(&json, &registry, 0));

    app.ok("v1", &["lock", "acquire", "-m", "maintenance window"]);
    let status = app.ok("v1", &["lock", "status"]);
    assert!(status.contains("Message: maintenance window"), "{status}");
    assert!(status.contains("Version: v1"), "{status}");

    // A deploy while the lock is held: exit 7 with the holder's details.
    let (output, all) = app.run("v1", &["deploy", "-P"]);
    assert_eq!(output.status.code(), Some(7), "{all}");
    assert!(all.contains("Locked by: "), "{all}");
    assert!(all.contains("Message: maintenance window"), "{all}");
    assert!(all.contains("Deploy lock found"), "{all}");

    // With --lock-wait it waits, showing the holder, and deploys once the lock is released.
    let mut waiting = app.spawn("v1", &["deploy", "-P", "--lock-wait", "2m"], "wait");
    eventually("the deploy to wait for the lock", || {
        app.log("wait").contains("Waiting for the deploy lock (")
    });
    assert!(app.log("wait").contains("maintenance window"));
    app.ok("v1", &["lock", "release"]);
    let status = waiting.wait().expect("wait");
    assert!(status.success(), "{}", app.log("wait"));
    assert!(!app.log("wait").contains(CANARY));
    let running = on_host(
        LOCK_HOST,
        &format!("docker ps --filter label=service={LOCK_SERVICE} --format '{{{{.Names}}}}'"),
    );
    assert_eq!(running.trim(), format!("{LOCK_SERVICE}-workers-v1"));
    let status = app.ok("v1", &["lock", "status"]);
    assert!(status.contains("There is no deploy lock"), "{status}");

    // SIGTERM while v2 boots (its readiness delay keeps the boot going): v1 keeps running,
    // v2 is stopped, the audit line is written and the lock released.
    app.write_config(&lock_config(&json, &registry, 60));
    let mut deploy = app.spawn("v2", &["deploy", "-P"], "term");
    eventually("v2 to start", || {
        on_host(
            LOCK_HOST,
            &format!(
                "docker ps --filter name=^{LOCK_SERVICE}-workers-v2$ --filter status=running -q"
            ),
        )
        .trim()
        .len()
            > 1
    });
    ok(&Command::new("kill")
        .args(["-TERM", &deploy.id().to_string()])
        .output()
        .expect("kill"));
    let status = deploy.wait().expect("wait");
    let log = app.log("term");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("interrupted"), "{log}");
    lock_free(LOCK_HOST, LOCK_SERVICE);
    let running = on_host(
        LOCK_HOST,
        &format!("docker ps --filter label=service={LOCK_SERVICE} --format '{{{{.Names}}}}'"),
    );
    assert_eq!(running.trim(), format!("{LOCK_SERVICE}-workers-v1"));
    let audit = on_host(LOCK_HOST, &format!("cat .kamal/{LOCK_SERVICE}-audit.log"));
    assert!(
        audit.contains("Interrupted deploy of version v2 by a signal"),
        "{audit}"
    );
    wipe(LOCK_HOST);
}
