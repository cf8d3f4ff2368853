//! End-to-end local registry on the sandbox (`scripts/sandbox up`), sandbox hosts 29 and 30
//! only. `registry: {server: localhost:5729}`: `dhow registry setup` starts Kamal's
//! `kamal-docker-registry` container on this machine (image `registry:3`, built here from the
//! sandbox's `docker-registry` binary: nothing comes from Docker Hub); `dhow build dev` builds
//! the working tree with `-dirty` tags and names the uncommitted and untracked files the build
//! context takes in (not those `.dockerignore` leaves out); `dhow deploy` builds, pushes to
//! `localhost:5729` here and pulls on both hosts through SSH remote port forwarding, host 30
//! (whose dockerd has a registry mirror) pulling first to seed it; the workers run there and
//! the forwarded port is closed afterwards; `dhow registry remove` leaves no registry
//! container. `DHOW_SANDBOX` points at `sandbox.json`; without it the test fails under CI
//! (`CI=true`) and prints a notice otherwise.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{git, ok, on_host, on_host_as, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-localreg";
/// The local registry's port (no other test uses it).
const PORT: u16 = 5729;
/// Sandbox hosts used (1-based, as `scripts/sandbox ssh` counts them).
const HOSTS: [usize; 2] = [29, 30];
/// The host whose dockerd gets a registry mirror (it seeds the mirror: it pulls first).
const MIRROR_HOST: usize = 30;
const REGISTRY_CONTAINER: &str = "kamal-docker-registry";

/// Runs a shell command here.
fn local(cmd: &str) -> String {
    ok(&Command::new("sh").args(["-c", cmd]).output().expect("sh"))
}

/// `registry:3` for this machine's docker, built from the `docker-registry` binary that
/// `scripts/sandbox` installs (Debian's `docker-registry`) with the libraries `ldd` names, on
/// `busybox:local`; it serves plain HTTP on :5000 without authentication, like the Docker Hub
/// image Kamal runs.
fn build_registry_image() {
    let binary = local("command -v docker-registry");
    let binary = binary.trim();
    assert!(
        !binary.is_empty(),
        "docker-registry is not installed (scripts/sandbox up installs it)"
    );
    let context = tempfile::tempdir().expect("tempdir");
    let rootfs = context.path().join("rootfs");
    let copy = |from: &str| {
        let to = rootfs.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, &to).unwrap_or_else(|error| panic!("copy {from}: {error}"));
    };
    copy(binary);
    for line in local(&format!("ldd {binary}")).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|path| path.starts_with('/')) {
            copy(path);
        }
    }
    std::fs::create_dir_all(rootfs.join("etc/docker/registry")).expect("mkdir");
    std::fs::write(
        rootfs.join("etc/docker/registry/config.yml"),
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    \
         enabled: true\nhttp:\n  addr: :5000\n",
    )
    .expect("config.yml");
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM busybox:local\nCOPY rootfs/ /\nENTRYPOINT [\"{binary}\", \"serve\", \
             \"/etc/docker/registry/config.yml\"]\n"
        ),
    )
    .expect("Dockerfile");
    ok(&Command::new("docker")
        .args(["build", "-q", "-t", "registry:3"])
        .arg(context.path())
        .output()
        .expect("docker build"));
}

/// Removes the local registry container and this test's images here.
fn clean_local() {
    local(&format!(
        "docker rm -f {REGISTRY_CONTAINER} >/dev/null 2>&1; docker images -q --filter \
         reference='localhost:{PORT}/{SERVICE}' | xargs -r docker rmi -f >/dev/null 2>&1; true"
    ));
}

/// Removes this test's containers, images, files and the registry mirror from the hosts.
fn clean_hosts() {
    for index in HOSTS {
        on_host(
            index,
            &format!(
                "docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
                 docker images -q --filter reference='localhost:{PORT}/{SERVICE}' | xargs -r docker \
                 rmi -f >/dev/null 2>&1; rm -rf .kamal/apps/{SERVICE} .kamal/{SERVICE}-audit.log \
                 .kamal/lock-{SERVICE}; true"
            ),
        );
    }
    set_mirror(false);
}

/// Gives (or takes back) the mirror host's dockerd a registry mirror: `/etc/docker/daemon.json`
/// then SIGHUP (the daemon reloads `registry-mirrors`). Mirrors serve Docker Hub images only, so
/// the pull from `localhost:PORT` never contacts it.
fn set_mirror(on: bool) {
    // The reload only changes what the file sets: an empty list takes the mirror away; the
    // file then goes (the sandbox's dockerd has none).
    let mirrors = if on { "\"http://127.0.0.1:9\"" } else { "" };
    on_host_as(
        MIRROR_HOST,
        "root",
        &format!(
            "echo '{{\"registry-mirrors\": [{mirrors}]}}' >/etc/docker/daemon.json && kill -HUP \
             $(pgrep -x dockerd)"
        ),
    );
    let expected = if on { "http://127.0.0.1:9/" } else { "" };
    // Bounded: the reload is quick; at most 50 looks, 100 ms apart.
    let mut found = String::new();
    for _ in 0..50 {
        found = on_host(
            MIRROR_HOST,
            "docker info --format '{{range .RegistryConfig.Mirrors}}{{.}}{{end}}'",
        );
        if found.trim() == expected {
            if !on {
                on_host_as(MIRROR_HOST, "root", "rm -f /etc/docker/daemon.json");
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("host {MIRROR_HOST}: mirrors {found:?}, expected {expected:?}");
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    fn new(json: &Value) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("config")).expect("config");
        std::fs::create_dir_all(app.join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        let mut servers = String::new();
        for index in HOSTS {
            servers.push_str("      - 127.0.0.1:");
            servers.push_str(&json["hosts"][index - 1]["ssh_port"].to_string());
            servers.push('\n');
        }
        let key = json["ssh"]["key"].as_str().expect("key");
        std::fs::write(
            app.join("config/deploy.yml"),
            format!(
                "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  workers:\n    hosts:\n{servers}    \
                 proxy: false\nprimary_role: workers\nreadiness_delay: 0\nregistry:\n  server: \
                 localhost:{PORT}\nbuilder:\n  arch: amd64\nssh:\n  user: deploy\n  keys: [{key}]\n  \
                 keys_only: true\n"
            ),
        )
        .expect("deploy.yml");
        std::fs::copy(
            repo().join("tests/images/worker/start.sh"),
            app.join("start.sh"),
        )
        .expect("start.sh");
        std::fs::copy(
            repo().join("tests/images/worker/Dockerfile"),
            app.join("Dockerfile"),
        )
        .expect("Dockerfile");
        std::fs::write(app.join(".dockerignore"), ".kamal\nnotes.txt\n").expect(".dockerignore");
        Self {
            dir,
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        }
    }

    fn app_dir(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    fn dhow(&self, version: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dhow"))
            .args(args)
            .current_dir(self.app_dir())
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", version)
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run dhow")
    }

    /// Runs dhow; it must succeed; returns stdout and stderr together.
    fn run(&self, version: &str, args: &[&str]) -> String {
        let output = self.dhow(version, args);
        ok(&output);
        text(&output.stdout) + &text(&output.stderr)
    }
}

/// What the host's `127.0.0.1:PORT` answers for the registry API (`000`: nothing listens).
fn registry_from_host(index: usize) -> String {
    on_host(
        index,
        &format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://127.0.0.1:{PORT}/v2/ || true"
        ),
    )
}

/// `build dev`: the working tree as it is, `-dirty` tags in the local image store, warnings
/// for the changed files the context takes in (not those `.dockerignore` leaves out). Leaves a
/// git repository with one commit (and the changes) in the app directory.
fn check_build_dev(app: &App) {
    let dir = app.app_dir();
    git(&dir, &["init", "-q"]);
    std::fs::write(dir.join(".gitignore"), ".kamal/secrets\n").expect(".gitignore");
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "worker app"]);
    let start = std::fs::read_to_string(dir.join("start.sh")).expect("start.sh");
    std::fs::write(dir.join("start.sh"), format!("{start}# changed\n")).expect("start.sh");
    std::fs::write(dir.join("extra.txt"), "untracked\n").expect("extra.txt");
    std::fs::write(dir.join("notes.txt"), "ignored by .dockerignore\n").expect("notes.txt");
    let out = app.run("v1", &["build", "dev"]);
    assert!(
        out.contains(
            "Files with uncommitted changes will be present in the dev container:\n  start.sh"
        ),
        "{out}"
    );
    assert!(
        out.contains("Untracked files will be present in the dev container:\n  extra.txt"),
        "{out}"
    );
    assert!(!out.contains("notes.txt"), "{out}");
    let dirty = local(&format!(
        "docker run --rm --entrypoint cat localhost:{PORT}/{SERVICE}:v1-dirty /start.sh"
    ));
    assert!(dirty.ends_with("# changed\n"), "{dirty}");
    local(&format!(
        "docker image inspect localhost:{PORT}/{SERVICE}:latest-dirty >/dev/null"
    ));
}

#[test]
fn local_registry_setup_build_dev_deploy_through_forwarded_port_and_remove() {
    let Some(json) = sandbox(30) else { return };
    build_registry_image();
    clean_local();
    clean_hosts();
    let app = App::new(&json);

    // registry setup: Kamal's container, published on loopback only.
    let out = app.run("v1", &["registry", "setup"]);
    assert!(
        out.contains(&format!(
            "Local registry {REGISTRY_CONTAINER} is running on 127.0.0.1:{PORT}"
        )),
        "{out}"
    );
    let ports = local(&format!(
        "docker ps --filter name=^{REGISTRY_CONTAINER}$ --format '{{{{.Image}}}} {{{{.Ports}}}}'"
    ));
    assert_eq!(
        ports.trim(),
        format!("registry:3 127.0.0.1:{PORT}->5000/tcp")
    );
    // A second setup starts the existing container (`docker start ... || docker run ...`).
    app.run("v1", &["registry", "setup"]);

    check_build_dev(&app);

    // deploy: build from the git clone, push to localhost:PORT here, pull on both hosts
    // through the forwarded port; the mirror host pulls first.
    set_mirror(true);
    let out = app.run("v1", &["deploy"]);
    let hosts: Vec<String> = HOSTS
        .iter()
        .map(|index| format!("127.0.0.1:{}", json["hosts"][index - 1]["ssh_port"]))
        .collect();
    assert!(
        out.contains(&format!(
            "Setting up local registry port forwarding to {}...",
            hosts.join(", ")
        )),
        "{out}"
    );
    let seed = format!(
        "Pulling image on 127.0.0.1:{} to seed the mirror...",
        json["hosts"][MIRROR_HOST - 1]["ssh_port"]
    );
    let seeded = out
        .find(&seed)
        .unwrap_or_else(|| panic!("{seed:?} in\n{out}"));
    let rest = out
        .find("Pulling image on remaining hosts...")
        .unwrap_or_else(|| panic!("no remaining-hosts line in\n{out}"));
    assert!(seeded < rest, "{out}");
    assert!(out.contains("Finished in"), "{out}");
    for index in HOSTS {
        let running = on_host(
            index,
            &format!(
                "docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}} {{{{.Image}}}}'"
            ),
        );
        assert_eq!(
            running.trim(),
            format!("{SERVICE}-workers-v1 localhost:{PORT}/{SERVICE}:v1"),
            "host {index}"
        );
        let logs = on_host(index, &format!("docker logs {SERVICE}-workers-v1 2>&1"));
        assert!(logs.contains("worker dev started"), "{logs}");
        let audit = on_host(index, &format!("cat .kamal/{SERVICE}-audit.log"));
        assert!(audit.contains("Pulled image with version v1"), "{audit}");
        // The forward ended with the pull: nothing listens on the host's port any more.
        assert_eq!(registry_from_host(index).trim(), "000", "host {index}");
    }
    // deploy built from the git clone: the uncommitted change stayed out of the image.
    let deployed = on_host(
        HOSTS[0],
        &format!("docker exec {SERVICE}-workers-v1 cat /start.sh"),
    );
    assert!(!deployed.contains("# changed"), "{deployed}");

    // registry remove: no registry container left.
    let out = app.run("v1", &["registry", "remove"]);
    assert!(out.contains("Removed the local registry"), "{out}");
    let left = local(&format!(
        "docker ps -a --filter name=^{REGISTRY_CONTAINER}$ --format '{{{{.Names}}}}'"
    ));
    assert_eq!(left.trim(), "");
    // Removing again finds nothing and still succeeds, as Kamal ignores the failure.
    app.run("v1", &["registry", "remove"]);

    clean_hosts();
    clean_local();
}
