//! End-to-end builds on the sandbox (`scripts/sandbox up`), sandbox host 13 only. `dhow deploy`
//! without `--skip-push` builds a sample web app from Kamal's git clone of a fresh repository
//! (a Dockerfile that reads a build secret through `RUN --mount=type=secret`), pushes it to the
//! sandbox registry and deploys v1 then v2: the pulled image carries the service label, the new
//! version runs, the `image_pushed` event's digest is the registry's, the timing breakdown has
//! `build` and `push`, and the build secret's canary is in no output and no process's argv (`ps`
//! is sampled during the run) while its length reached the build. Without the buildx plugin the
//! build runs as plain `docker build` (with the embedded `BuildKit` of a docker CLI that has one,
//! for the secret). Then `dhow deploy --image <digest>` adopts an image built and pushed by hand
//! without the label: it is relabelled, tagged as the version and latest, pushed, deployed.
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the tests fail under CI (`CI=true`) and
//! print a notice otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{buildkit_docker, git, ok, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-build";
const ADOPT_SERVICE: &str = "dhow-e2e-adopt";
const BUILD_CANARY: &str = "canary-build-secret-4f9c1";
/// The sandbox host these tests use (1-based, as `scripts/sandbox ssh` counts them).
const HOST: usize = 13;

/// Runs `cmd` as `deploy` on the sandbox host.
fn on_host(cmd: &str) -> String {
    common::on_host(HOST, cmd)
}

/// Both tests use the one host: they take turns, so neither races the other's `docker network
/// create kamal` (two concurrent creates can leave two networks of that name).
static HOST_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn clean_host(service: &str) {
    on_host(&format!(
        "docker ps -aq --filter label=service={service} | xargs -r docker rm -f >/dev/null; \
         docker images -q --filter reference='*/{service}' | xargs -r docker rmi -f >/dev/null 2>&1; \
         rm -rf .kamal/apps/{service} .kamal/{service}-audit.log .kamal/lock-{service}; \
         kamal=$(docker network ls -q --filter name='^kamal$'); \
         if [ $(echo $kamal | wc -w) -gt 1 ]; then docker network rm $kamal >/dev/null 2>&1; fi; true"
    ));
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
    /// A directory put first on PATH (holds `docker` when another CLI must be used).
    shim: PathBuf,
}

impl App {
    fn new(json: &Value, docker: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = dir.path().join("shim");
        std::fs::create_dir_all(&shim).expect("shim");
        if let Some(docker) = docker.filter(|docker| docker.is_absolute()) {
            std::os::unix::fs::symlink(docker, shim.join("docker")).expect("symlink docker");
        }
        std::fs::create_dir_all(dir.path().join("app/config")).expect("config");
        std::fs::create_dir_all(dir.path().join("app/.kamal")).expect(".kamal");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(
            dir.path().join("app/.kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nBUILD_CANARY={BUILD_CANARY}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
        Self {
            dir,
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
            shim,
        }
    }

    fn app_dir(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    /// config/deploy.yml: one `web` host (no proxy), the sandbox registry, `builder_extra`
    /// lines under `builder:`.
    fn configure(&self, json: &Value, service: &str, builder_extra: &str) {
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let config = format!(
            "service: {service}\nimage: {service}\nservers:\n  web:\n    hosts:\n      - \
             127.0.0.1:{}\n    proxy: false\nreadiness_delay: 0\nregistry:\n  server: {registry}\n  \
             username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\n{builder_extra}\
             ssh:\n  user: deploy\n  keys: [{}]\n  keys_only: true\n",
            json["hosts"][HOST - 1]["ssh_port"],
            json["ssh"]["key"].as_str().expect("key"),
        );
        std::fs::write(self.app_dir().join("config/deploy.yml"), config).expect("deploy.yml");
    }

    fn dhow(&self, version: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.shim.clone()];
        paths.extend(std::env::split_paths(&path));
        command
            .args(args)
            .current_dir(self.app_dir())
            .env("PATH", std::env::join_paths(paths).expect("PATH"))
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", version)
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .env_remove("BUILD_CANARY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs dhow, sampling `ps` while it runs; the canary must be in no argv and no output.
    fn run_watched(&self, version: &str, args: &[&str]) -> (Output, String) {
        let mut child = self.dhow(version, args).spawn().expect("spawn dhow");
        // Bounded: at most 2400 samples, 50 ms apart, stopping when dhow exits.
        for _ in 0..2400 {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let ps = Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .expect("ps");
            let listing = text(&ps.stdout);
            assert!(
                !listing.contains(BUILD_CANARY),
                "the build secret appeared in a process's argv:\n{listing}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wait");
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(
            !all.contains(BUILD_CANARY),
            "the build secret appeared in the output:\n{all}"
        );
        (output, all)
    }
}

/// The JSON events of a `--output json` run.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event.get("event").is_some())
        .collect()
}

/// The registry digest of `image` as host 13 pulled it.
fn host_digest(image: &str) -> String {
    on_host(&format!(
        "docker image inspect -f '{{{{index .RepoDigests 0}}}}' {image}"
    ))
    .trim()
    .rsplit_once('@')
    .map(|(_, digest)| digest.to_owned())
    .unwrap_or_default()
}

#[test]
fn deploy_builds_from_the_git_clone_pushes_and_runs_each_version() {
    let Some(json) = sandbox(HOST) else { return };
    let _turn = HOST_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    clean_host(SERVICE);
    let docker = buildkit_docker();
    let app = App::new(&json, Some(&docker));
    let dir = app.app_dir();
    std::fs::copy(
        repo().join("tests/images/web/start.sh"),
        dir.join("start.sh"),
    )
    .expect("cp");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nARG VERSION=dev\nRUN --mount=type=secret,id=BUILD_CANARY mkdir -p /www \
         && echo ok >/www/up && echo \"$VERSION\" >/www/version && wc -c \
         </run/secrets/BUILD_CANARY >/www/secret_length\nCOPY start.sh /start.sh\nEXPOSE 80\nCMD \
         [\"/start.sh\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(dir.join(".gitignore"), ".kamal/secrets\n").expect(".gitignore");
    app.configure(
        &json,
        SERVICE,
        "  args:\n    VERSION: v1\n  secrets:\n    - BUILD_CANARY\n",
    );
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "sample app"]);

    for version in ["v1", "v2"] {
        app.configure(
            &json,
            SERVICE,
            &format!("  args:\n    VERSION: {version}\n  secrets:\n    - BUILD_CANARY\n"),
        );
        let (output, all) = app.run_watched(version, &["deploy", "--output", "json"]);
        let stdout = ok(&output);
        // v2's config differs from the committed one: the clone build says it ignores that.
        assert_eq!(
            all.contains("Building from a local git clone, so ignoring these uncommitted changes"),
            version == "v2",
            "{all}"
        );
        let events = events(&stdout);
        let pushed = events
            .iter()
            .find(|event| event["event"] == "image_pushed")
            .unwrap_or_else(|| panic!("no image_pushed event:\n{stdout}"));
        let image = format!("{registry}/{SERVICE}:{version}");
        assert_eq!(pushed["image"], image.as_str());
        assert_eq!(
            pushed["tags"],
            serde_json::json!([image, format!("{registry}/{SERVICE}:latest")])
        );
        let digest = pushed["digest"].as_str().expect("a digest").to_owned();
        assert!(digest.starts_with("sha256:"), "{digest}");
        let finished = events
            .iter()
            .find(|event| event["event"] == "run_finished")
            .expect("run_finished");
        assert_eq!(finished["succeeded"], true);
        let phases: Vec<&str> = finished["timings"]
            .as_array()
            .expect("timings")
            .iter()
            .filter_map(|timing| timing["phase"].as_str())
            .collect();
        for phase in ["clone", "build", "push", "pull", "boot"] {
            assert!(phases.contains(&phase), "{phase} missing from {phases:?}");
        }

        // What the host pulled from the registry: the label, the digest, the version inside,
        // and the build secret's length (it reached the build; its value is nowhere).
        assert_eq!(
            on_host(&format!(
                "docker image inspect -f '{{{{.Config.Labels.service}}}}' {image}"
            ))
            .trim(),
            SERVICE
        );
        assert_eq!(host_digest(&image), digest);
        let container = format!("{SERVICE}-web-{version}");
        let running = on_host(&format!(
            "docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}}'"
        ));
        assert_eq!(running.trim(), container);
        let inside = on_host(&format!(
            "docker exec {container} sh -c 'cat /www/version /www/secret_length'"
        ));
        assert_eq!(
            inside.split_whitespace().collect::<Vec<_>>(),
            [version.to_owned(), BUILD_CANARY.len().to_string()]
        );
        let history = on_host(&format!("docker history --no-trunc {image}"));
        assert!(!history.contains(BUILD_CANARY), "{history}");
    }
    clean_host(SERVICE);
}

#[test]
fn deploy_adopts_an_image_built_elsewhere_by_digest() {
    let Some(json) = sandbox(HOST) else { return };
    let _turn = HOST_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    clean_host(ADOPT_SERVICE);
    // An image built and pushed outside dhow, without the service label.
    let context = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo().join("tests/images/web/start.sh"),
        context.path().join("start.sh"),
    )
    .expect("cp");
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM busybox:local\nRUN mkdir -p /www && echo ok >/www/up && echo adopted >/www/version\n\
         COPY start.sh /start.sh\nCMD [\"/start.sh\"]\n",
    )
    .expect("Dockerfile");
    let source = format!("{registry}/{ADOPT_SERVICE}-src:ci");
    ok(&Command::new("docker")
        .args(["build", "-q", "-t", &source])
        .arg(context.path())
        .output()
        .expect("docker build"));
    let pushed = ok(&Command::new("docker")
        .args(["push", &source])
        .output()
        .expect("docker push"));
    let digest = pushed
        .lines()
        .find_map(|line| line.split_once(": digest: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("push digest")
        .to_owned();
    let label = ok(&Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{.Config.Labels.service}}",
            &source,
        ])
        .output()
        .expect("inspect"));
    assert_ne!(label.trim(), ADOPT_SERVICE, "the source image has no label");

    let app = App::new(&json, None);
    app.configure(&json, ADOPT_SERVICE, "");
    let reference = format!("{registry}/{ADOPT_SERVICE}-src@{digest}");
    let (output, all) = app.run_watched("a1", &["deploy", "--image", &reference]);
    ok(&output);
    let image = format!("{registry}/{ADOPT_SERVICE}:a1");
    let adopted_digest = host_digest(&image);
    assert!(
        all.contains(&format!("Pushed {image} ({adopted_digest})")),
        "{all}"
    );
    assert_eq!(
        on_host(&format!(
            "docker image inspect -f '{{{{.Config.Labels.service}}}} {{{{.Config.Cmd}}}}' {image}"
        ))
        .trim(),
        format!("{ADOPT_SERVICE} [/start.sh]")
    );
    let running = on_host(&format!(
        "docker ps --filter label=service={ADOPT_SERVICE} --format '{{{{.Names}}}}'"
    ));
    assert_eq!(running.trim(), format!("{ADOPT_SERVICE}-web-a1"));
    assert_eq!(
        on_host(&format!(
            "docker exec {ADOPT_SERVICE}-web-a1 cat /www/version"
        ))
        .trim(),
        "adopted"
    );

    // `dhow build adopt` ends its output with `<repository>@<digest>`; an image that has the
    // label is only tagged, so the digest stays the same.
    let output = app
        .dhow("a2", &["build", "adopt", &image])
        .output()
        .expect("build adopt");
    let printed = ok(&output);
    assert_eq!(
        printed.lines().last().unwrap_or_default(),
        format!("{registry}/{ADOPT_SERVICE}@{adopted_digest}"),
        "{}",
        text(&output.stderr)
    );
    clean_host(ADOPT_SERVICE);
}
