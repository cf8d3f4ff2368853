//! What the sandbox tests share: the sandbox's description, commands on its hosts, test images,
//! the proxy image in the sandbox registry, and HTTP probes on 127.0.0.1.
#![allow(dead_code, reason = "every test binary uses its own subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

/// dhow's proxy image, as `scripts/build-proxy-image` tags it.
pub const PROXY_IMAGE: &str = "dhow/kamal-proxy:v0.9.2";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `None` (and a notice naming `what`) when the test cannot run here; a panic under CI, where
/// `scripts/test` always provides what the test needs.
pub fn skip<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} under CI: scripts/test brings up the sandbox (and installs what the tests need)"
    );
    #[expect(
        clippy::print_stderr,
        reason = "the notice says why nothing was checked"
    )]
    {
        eprintln!("notice: {what}; skipping this sandbox test");
    }
    None
}

/// The sandbox's `sandbox.json` (`DHOW_SANDBOX`), which must describe at least `min_hosts`
/// hosts; `None` outside CI when the sandbox is not up.
pub fn sandbox(min_hosts: usize) -> Option<Value> {
    let Some(path) = std::env::var_os("DHOW_SANDBOX").filter(|p| !p.is_empty()) else {
        return skip(&format!(
            "DHOW_SANDBOX is not set (run `scripts/sandbox up --min-hosts {min_hosts}` and source \
             .sandbox/sandbox.env)"
        ));
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", Path::new(&path).display()));
    let json: Value = serde_json::from_str(&text).expect("sandbox.json");
    assert!(
        json["hosts"].as_array().map_or(0, Vec::len) >= min_hosts,
        "the sandbox has fewer than {min_hosts} hosts: run `scripts/sandbox up --min-hosts {min_hosts}`"
    );
    Some(json)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a command that must have succeeded (else a panic with its exit and output).
pub fn ok(output: &Output) -> String {
    ok_for("command", output)
}

/// [`ok`], naming what ran in the panic message.
pub fn ok_for(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs `cmd` as `deploy` on sandbox host `index` (1-based); it must succeed.
pub fn on_host(index: usize, cmd: &str) -> String {
    on_host_as(index, "deploy", cmd)
}

/// Runs `cmd` as `user` on sandbox host `index` (1-based); it must succeed.
pub fn on_host_as(index: usize, user: &str, cmd: &str) -> String {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["ssh", &index.to_string(), user, cmd])
        .output()
        .expect("scripts/sandbox ssh");
    ok_for(&format!("on host {index} as {user}: {cmd}"), &output)
}

/// Builds a test image with `scripts/sandbox image SERVICE VERSION --kind KIND --push` and
/// returns what the script printed (its reference on the last line).
pub fn sandbox_image(service: &str, version: &str, kind: &str) -> String {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["image", service, version, "--kind", kind, "--push"])
        .output()
        .expect("scripts/sandbox image");
    ok_for("scripts/sandbox image", &output)
}

/// Pushes the proxy image (built by `scripts/build-proxy-image` when missing) to the sandbox
/// registry as `<registry>/dhow/kamal-proxy:v0.9.2`, where the hosts pull it from.
pub fn push_proxy_image(registry: &str) {
    let present = Command::new("docker")
        .args(["image", "inspect", PROXY_IMAGE])
        .output()
        .expect("docker image inspect")
        .status
        .success();
    if !present {
        ok_for(
            "scripts/build-proxy-image",
            &Command::new(repo().join("scripts/build-proxy-image"))
                .output()
                .expect("scripts/build-proxy-image"),
        );
    }
    let target = format!("{registry}/{PROXY_IMAGE}");
    ok_for(
        "docker tag",
        &Command::new("docker")
            .args(["tag", PROXY_IMAGE, &target])
            .output()
            .expect("docker tag"),
    );
    ok_for(
        "docker push",
        &Command::new("docker")
            .args(["push", "-q", &target])
            .output()
            .expect("docker push"),
    );
}

/// `(status, body)` of `GET http://127.0.0.1:<port><path>` (status 0 when nothing answers).
pub fn http(port: &str, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl");
    let out = text(&output.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The body of `GET http://127.0.0.1:<port><path>` (empty when nothing answers).
pub fn http_get(port: &str, path: &str) -> String {
    http(port, path).1
}

/// `GET path` once something answers on the port: a started or rebooted proxy takes a moment to
/// restore its state and bind. Bounded: 50 tries, 200 ms apart.
pub fn http_when_up(port: &str, path: &str) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..50 {
        last = http(port, path);
        if last.0 != 0 {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

/// A docker CLI that can build with `BuildKit` (for `RUN --mount=type=secret`): the one on
/// PATH when its buildx plugin answers, else Debian's `/usr/bin/docker` (20.10, whose CLI embeds
/// `BuildKit`) that `scripts/sandbox` installs with `docker.io`.
pub fn buildkit_docker() -> PathBuf {
    let answers = |program: &str, args: &[&str], buildkit: bool, needle: &str| {
        let mut command = Command::new(program);
        command.args(args);
        if buildkit {
            command.env("DOCKER_BUILDKIT", "1");
        }
        command
            .output()
            .is_ok_and(|output| output.status.success() && text(&output.stdout).contains(needle))
    };
    if answers("docker", &["buildx", "version"], false, "") {
        return PathBuf::from("docker");
    }
    for candidate in ["/usr/bin/docker", "/usr/local/bin/docker"] {
        if answers(candidate, &["build", "--help"], true, "--secret") {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "no docker CLI here can build with BuildKit (no buildx plugin, no CLI with embedded \
         BuildKit); scripts/sandbox installs docker.io, whose /usr/bin/docker has it"
    );
}

/// Runs `git ARGS` in `dir` as a fixed test identity; it must succeed.
pub fn git(dir: &Path, args: &[&str]) {
    ok(&Command::new("git")
        .args([
            "-c",
            "user.name=dhow test",
            "-c",
            "user.email=test@dhow.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git"));
}
