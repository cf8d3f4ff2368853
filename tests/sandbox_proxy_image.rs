//! dhow's own proxy image as the default, on sandbox host 27 (`scripts/sandbox up`). A web app
//! whose config has no `proxy.run` is deployed with `dhow deploy --skip-push`: the host has no
//! proxy image and cannot pull `ghcr.io/dhow-deploy/kamal-proxy` (the sandbox has no internet),
//! so dhow sends the local docker's copy (`docker save` here, `docker load` there) and says so;
//! the proxy container runs that image (`org.opencontainers.image.title=kamal-proxy`) and the
//! app answers through it on the host's published 127.0.0.1 port. A second deploy finds the image
//! there and sends nothing. A reboot onto an image that is neither on the host, pullable nor
//! here fails before the running proxy is stopped, naming the host, the image and the way out.
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the test fails under CI (`CI=true`) and
//! prints a notice otherwise.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{http_when_up, ok, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-proxyimage";
/// The sandbox host of this test (1-based).
const HOST: usize = 27;
/// dhow's default proxy image (`dhow_core::docker::proxy::default_image()`).
const DEFAULT_PROXY_IMAGE: &str = "ghcr.io/dhow-deploy/kamal-proxy:v0.9.2";
/// The tag `scripts/build-proxy-image` gives the same image.
const BUILT_PROXY_IMAGE: &str = "dhow/kamal-proxy:v0.9.2";
/// An image no registry and no docker has.
const MISSING_PROXY_IMAGE: &str = "ghcr.io/dhow-deploy/no-such-proxy:v0.9.2";

/// Runs `cmd` as `deploy` on the test's host.
fn on_host(cmd: &str) -> String {
    common::on_host(HOST, cmd)
}

/// No proxy, no proxy image, no app container or image, no `.kamal` state on the host.
fn clean_host() {
    on_host(&format!(
        "docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
         docker rm -f kamal-proxy >/dev/null 2>&1; \
         docker image rm -f {DEFAULT_PROXY_IMAGE} >/dev/null 2>&1; \
         docker images -q --filter 'reference=*/{SERVICE}' | xargs -r docker image rm -f >/dev/null 2>&1; \
         docker volume rm kamal-proxy-config >/dev/null 2>&1; \
         rm -rf .kamal; true"
    ));
}

/// The default proxy image in the local docker: `scripts/build-proxy-image` tags it; an image
/// the script built before it learnt the default tag is tagged as it.
fn local_default_proxy_image() {
    let present = |image: &str| {
        Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .expect("docker image inspect")
            .status
            .success()
    };
    if present(DEFAULT_PROXY_IMAGE) {
        return;
    }
    if present(BUILT_PROXY_IMAGE) {
        ok(&Command::new("docker")
            .args(["tag", BUILT_PROXY_IMAGE, DEFAULT_PROXY_IMAGE])
            .output()
            .expect("docker tag"));
    } else {
        ok(&Command::new(repo().join("scripts/build-proxy-image"))
            .output()
            .expect("scripts/build-proxy-image"));
    }
    assert!(present(DEFAULT_PROXY_IMAGE), "{DEFAULT_PROXY_IMAGE} here");
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    /// config/deploy.yml: a web role on the host behind the proxy, `proxy_extra` lines under
    /// `proxy:` (none: no `proxy.run`).
    fn new(json: &Value, proxy_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let config = format!(
            "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  web:\n    - 127.0.0.1:{}\nproxy:\n  \
             app_port: 80\n{proxy_extra}registry:\n  server: {registry}\n  username: ci\n  \
             password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\nreadiness_delay: 0\nssh:\n  \
             user: deploy\n  keys: [{}]\n  keys_only: true\n",
            json["hosts"][HOST - 1]["ssh_port"],
            json["ssh"]["key"].as_str().expect("key"),
        );
        for sub in ["config", ".kamal", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
        }
        std::fs::write(dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::write(
            dir.path().join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
        Self {
            dir,
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        }
    }

    fn output(&self, version: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dhow"))
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
            .stderr(Stdio::piped())
            .output()
            .expect("dhow")
    }

    /// Runs dhow, which must succeed; returns its stdout and stderr.
    fn dhow(&self, version: &str, args: &[&str]) -> String {
        let output = self.output(version, args);
        ok(&output);
        text(&output.stdout) + &text(&output.stderr)
    }
}

#[test]
fn the_default_proxy_image_is_sent_to_a_host_that_cannot_pull_it() {
    let Some(json) = sandbox(HOST) else { return };
    local_default_proxy_image();
    for version in ["v1", "v2"] {
        ok(&Command::new(repo().join("scripts/sandbox"))
            .args(["image", SERVICE, version, "--kind", "web", "--push"])
            .output()
            .expect("scripts/sandbox image"));
    }
    clean_host();
    let host = format!("127.0.0.1:{}", json["hosts"][HOST - 1]["ssh_port"]);
    let port = json["hosts"][HOST - 1]["http_port"].to_string();
    let app = App::new(&json, "");

    // The plan says what will happen to the image.
    let plan = app.dhow("v1", &["plan"]);
    assert!(
        plan.contains("if the pull fails: docker save <proxy-image> (here) | docker load"),
        "{plan}"
    );

    // v1: no proxy image on the host, and ghcr.io is out of reach: sent from here.
    let pull = Command::new(repo().join("scripts/sandbox"))
        .args([
            "ssh",
            &HOST.to_string(),
            "deploy",
            &format!("docker pull {DEFAULT_PROXY_IMAGE}"),
        ])
        .output()
        .expect("scripts/sandbox ssh");
    assert!(!pull.status.success(), "the host cannot pull from ghcr.io");
    let out = app.dhow("v1", &["deploy", "-P"]);
    assert!(
        out.contains(&format!(
            "Sent {DEFAULT_PROXY_IMAGE} to {host} from the local docker ("
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{host} could not pull it")), "{out}");
    assert_eq!(
        on_host("docker inspect kamal-proxy --format '{{.Config.Image}}'").trim(),
        DEFAULT_PROXY_IMAGE
    );
    assert_eq!(
        on_host(&format!(
            "docker image inspect {DEFAULT_PROXY_IMAGE} --format '{{{{index .Config.Labels \"org.opencontainers.image.title\"}}}}'"
        ))
        .trim(),
        "kamal-proxy"
    );
    // The image title label is what Kamal's `proxy remove` prunes by.
    assert_eq!(
        on_host(
            "docker ps --filter label=org.opencontainers.image.title=kamal-proxy --format '{{.Names}}'"
        )
        .trim(),
        "kamal-proxy"
    );
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));

    // v2: the image is there now; nothing is sent.
    let out = app.dhow("v2", &["deploy", "-P"]);
    assert!(!out.contains("from the local docker"), "{out}");
    assert_eq!(http_when_up(&port, "/version"), (200, "v2\n".to_owned()));

    // A reboot onto an image nobody has fails before the running proxy is touched.
    let missing = App::new(
        &json,
        "  run:\n    registry: ghcr.io\n    repository: dhow-deploy/no-such-proxy\n",
    );
    let before = on_host("docker inspect kamal-proxy --format '{{.Id}}'");
    let failed = missing.output("v2", &["proxy", "reboot", "-y"]);
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains(&format!(
            "the proxy image {MISSING_PROXY_IMAGE} is not on {host}, {host} could not pull it ("
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "and the local docker has no copy of it either; build it here with scripts/build-proxy-image"
        ),
        "{stderr}"
    );
    assert_eq!(
        on_host("docker inspect kamal-proxy --format '{{.Id}}'"),
        before,
        "the running proxy was not stopped"
    );
    assert_eq!(http_when_up(&port, "/version"), (200, "v2\n".to_owned()));

    clean_host();
}
