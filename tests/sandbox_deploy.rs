//! End-to-end `dhow deploy --skip-push` on the sandbox (`scripts/sandbox up`). A workers-only
//! app (primary role `workers`, no proxy) built with `scripts/sandbox image --kind worker --push`
//! is deployed as v1 then v2 on two hosts: Kamal's container names and labels, the old version
//! stopped, the env file (mode 0600, the secret inside the container), Kamal's audit lines, the
//! lock gone afterwards, the env secret never in dhow's output or any process's argv; then a v3
//! whose health check fails leaves v2 running and prints its log tail. A web role behind
//! kamal-proxy (the image of `scripts/build-proxy-image`) plus a worker role answer v1 then v2
//! through the proxy on 127.0.0.1. `DHOW_SANDBOX` points at `sandbox.json`; without it the tests
//! fail under CI (`CI=true`) and print a notice otherwise.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{http_get, ok, on_host, push_proxy_image, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-deploy";
const CANARY: &str = "canary-deploy-env-83b2e";
/// Sandbox hosts used (1-based, as `scripts/sandbox ssh` counts them).
const HOSTS: [usize; 2] = [5, 6];

fn build_image(version: &str) {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["image", SERVICE, version, "--kind", "worker", "--push"])
        .output()
        .expect("scripts/sandbox image");
    ok(&output);
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    fn new(json: &Value) -> Self {
        let app = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        };
        app.configure(json, "");
        app
    }

    /// Writes config/deploy.yml (with `role_extra` lines under the workers role) and the secrets.
    fn configure(&self, json: &Value, role_extra: &str) {
        let dir = &self.dir;
        let mut servers = String::new();
        for index in HOSTS {
            servers.push_str("      - 127.0.0.1:");
            servers.push_str(&json["hosts"][index - 1]["ssh_port"].to_string());
            servers.push('\n');
        }
        let key = json["ssh"]["key"].as_str().expect("key");
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let config = format!(
            "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  workers:\n    hosts:\n{servers}    \
             proxy: false\n{role_extra}primary_role: workers\nreadiness_delay: 0\nregistry:\n  server: \
             {registry}\n  username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: \
             amd64\nenv:\n  clear:\n    MODE: batch\n  secret:\n    - CANARY_SECRET\nssh:\n  user: \
             deploy\n  keys: [{key}]\n  keys_only: true\n"
        );
        std::fs::create_dir_all(dir.path().join("config")).expect("config");
        std::fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::write(
            dir.path().join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nCANARY_SECRET={CANARY}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Deploys `version`, sampling `ps` while it runs; returns dhow's stdout and stderr.
    fn deploy(&self, version: &str) -> String {
        let (output, all) = self.try_deploy(version);
        ok(&output);
        all
    }

    /// Deploys `version`, sampling `ps` while it runs; returns how it ended and its output.
    fn try_deploy(&self, version: &str) -> (Output, String) {
        let mut child = self
            .dhow(version, &["deploy", "-P"])
            .spawn()
            .expect("spawn dhow");
        // Bounded: at most 600 samples, 50 ms apart, stopping when dhow exits.
        for _ in 0..600 {
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
                "the env secret appeared in a process's argv:\n{listing}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wait");
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(
            !all.contains(CANARY),
            "the env secret appeared in the output:\n{all}"
        );
        (output, all)
    }
}

fn clean_hosts() {
    for index in HOSTS {
        on_host(
            index,
            &format!(
                "docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
                 rm -rf .kamal/apps/{SERVICE} .kamal/{SERVICE}-audit.log .kamal/lock-{SERVICE}"
            ),
        );
    }
}

#[test]
fn workers_only_deploy_v1_then_v2() {
    let Some(json) = sandbox(6) else { return };
    build_image("v1");
    build_image("v2");
    clean_hosts();
    let app = App::new(&json);

    let plan = app.dhow("v1", &["plan"]).output().expect("plan");
    let plan = ok(&plan);
    assert!(
        plan.contains(&format!("--name {SERVICE}-workers-v1")),
        "{plan}"
    );
    assert!(!plan.contains(CANARY));

    let out = app.deploy("v1");
    assert!(out.contains("Finished in"), "{out}");
    for index in HOSTS {
        let running = on_host(
            index,
            &format!(
                "docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}} \
                 {{{{.Label \"role\"}}}} {{{{.Label \"service\"}}}}'"
            ),
        );
        assert_eq!(
            running.trim(),
            format!("{SERVICE}-workers-v1 workers {SERVICE}")
        );
    }

    let out = app.deploy("v2");
    assert!(out.contains("Finished in"), "{out}");
    for index in HOSTS {
        check_v2(index);
    }

    // v3's health check always fails: its boot fails, v2 keeps running, the lock is released,
    // and the container's last log lines and health state are printed.
    build_image("v3");
    app.configure(
        &json,
        "    options:\n      health-cmd: \"exit 1\"\n      health-interval: 1s\n      health-retries: 1\n",
    );
    let config = std::fs::read_to_string(app.dir.path().join("config/deploy.yml")).expect("yml");
    std::fs::write(
        app.dir.path().join("config/deploy.yml"),
        config.replace(
            "readiness_delay: 0\n",
            "readiness_delay: 0\ndeploy_timeout: 3\n",
        ),
    )
    .expect("yml");
    let (output, all) = app.try_deploy("v3");
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("worker v3 started"),
        "the log tail is printed:\n{all}"
    );
    assert!(
        all.contains("\"Status\":\"unhealthy\""),
        "the health state is printed:\n{all}"
    );
    assert!(
        all.contains("container not ready after 3 seconds (unhealthy)"),
        "{all}"
    );
    assert!(all.contains("failed on 2 of 2 hosts"), "{all}");
    for index in HOSTS {
        let running = on_host(
            index,
            &format!("docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}}'"),
        );
        assert_eq!(
            running.trim(),
            format!("{SERVICE}-workers-v2"),
            "host {index}"
        );
        let lock = on_host(
            index,
            &format!("test -e .kamal/lock-{SERVICE} && echo held || echo free"),
        );
        assert_eq!(lock.trim(), "free");
    }
    clean_hosts();
}

/// After v2: v2 runs, v1 is stopped, the env file, the audit lines, no lock.
fn check_v2(index: usize) {
    let containers = on_host(
        index,
        &format!(
            "docker ps -a --filter label=service={SERVICE} --format '{{{{.Names}}}} {{{{.State}}}}' | sort"
        ),
    );
    assert_eq!(
        containers.trim(),
        format!("{SERVICE}-workers-v1 exited\n{SERVICE}-workers-v2 running"),
        "host {index}"
    );
    let mode = on_host(
        index,
        &format!("stat -c %a .kamal/apps/{SERVICE}/env/roles/workers.env"),
    );
    assert_eq!(mode.trim(), "600");
    let env = on_host(
        index,
        &format!(
            "docker exec {SERVICE}-workers-v2 sh -c 'echo \"$CANARY_SECRET\"; echo \"$MODE\"; \
             echo \"$KAMAL_VERSION\"'"
        ),
    );
    assert_eq!(env, format!("{CANARY}\nbatch\nv2\n"));
    let audit = on_host(index, &format!("cat .kamal/{SERVICE}-audit.log"));
    let lines: Vec<&str> = audit
        .lines()
        .map(|line| line.split_once("] ").map_or(line, |(_, rest)| rest))
        .map(|rest| rest.split_once("] ").map_or(rest, |(_, rest)| rest))
        .collect();
    for expected in [
        "Pulled image with version v1",
        "[workers] Booted app version v1",
        "Pruned containers",
        "Pruned images",
        "[workers] Booted app version v2",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} missing from\n{audit}"
        );
    }
    assert!(audit.contains(&format!(
        "Tagging 172.17.0.1:5000/{SERVICE}:v2 as the latest image"
    )));
    let lock = on_host(
        index,
        &format!("test -e .kamal/lock-{SERVICE} && echo held || echo free"),
    );
    assert_eq!(lock.trim(), "free");
}

const WEB_SERVICE: &str = "dhow-e2e-web";
/// Sandbox hosts of the web test (1-based): both run `web`, the second also `workers`.
const WEB_HOSTS: [usize; 2] = [8, 9];

#[test]
fn web_behind_the_proxy_and_a_worker_v1_then_v2() {
    let Some(json) = sandbox(6) else { return };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    for version in ["v1", "v2"] {
        ok(&Command::new(repo().join("scripts/sandbox"))
            .args(["image", WEB_SERVICE, version, "--kind", "web", "--push"])
            .output()
            .expect("scripts/sandbox image"));
    }
    for index in WEB_HOSTS {
        on_host(
            index,
            &format!(
                "docker ps -aq --filter label=service={WEB_SERVICE} | xargs -r docker rm -f >/dev/null; \
                 rm -rf .kamal/apps/{WEB_SERVICE} .kamal/{WEB_SERVICE}-audit.log .kamal/lock-{WEB_SERVICE}"
            ),
        );
    }
    let host = |index: usize| format!("127.0.0.1:{}", json["hosts"][index - 1]["ssh_port"]);
    let config = format!(
        "service: {WEB_SERVICE}\nimage: {WEB_SERVICE}\nservers:\n  web:\n    - {}\n    - {}\n  \
         workers:\n    hosts:\n      - {}\n    cmd: sleep 3600\nproxy:\n  app_port: 80\n  run:\n    \
         registry: {registry}\n    repository: dhow/kamal-proxy\nregistry:\n  server: {registry}\n  \
         username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\nenv:\n  secret:\n    \
         - CANARY_SECRET\nssh:\n  user: deploy\n  keys: [{}]\n  keys_only: true\n",
        host(WEB_HOSTS[0]),
        host(WEB_HOSTS[1]),
        host(WEB_HOSTS[1]),
        json["ssh"]["key"].as_str().expect("key"),
    );
    let app = App {
        dir: tempfile::tempdir().expect("tempdir"),
        known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
    };
    app.configure(&json, "");
    std::fs::write(app.dir.path().join("config/deploy.yml"), config).expect("deploy.yml");

    for version in ["v1", "v2"] {
        let out = app.deploy(version);
        assert!(out.contains("Finished in"), "{out}");
        for index in WEB_HOSTS {
            let port = json["hosts"][index - 1]["http_port"].to_string();
            assert_eq!(
                http_get(&port, "/version").trim(),
                version,
                "host {index} serves {version} through the proxy"
            );
        }
        let running = on_host(
            WEB_HOSTS[1],
            &format!(
                "docker ps --filter label=service={WEB_SERVICE} --format '{{{{.Names}}}}' | sort"
            ),
        );
        assert_eq!(
            running.trim(),
            format!("{WEB_SERVICE}-web-{version}\n{WEB_SERVICE}-workers-{version}"),
            "the old version is stopped"
        );
    }
}
