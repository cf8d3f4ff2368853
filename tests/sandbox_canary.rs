//! The canary secrets watched through full deploys on sandbox host 31 (`scripts/sandbox up`).
//! Three secrets are used for real: the sandbox registry's password (`docker login` here and on
//! the host), an env secret (the role's env file) and a build secret (`RUN --mount=type=secret`
//! in a build from Kamal's git clone). Hooks in `.kamal/hooks` record their argv and the *names*
//! of their environment (and the lock details while the pre-deploy hook runs under the lock).
//! While `dhow deploy` builds, pushes and deploys v1 (text output), v2 (`--output json`) and v3
//! (`--output github`), a bounded sampler records `ps -eo args` on the host (inside its
//! container) and another one here. None of the three values may appear in dhow's output (apart
//! from GitHub's `::add-mask::` lines, which must register all three), in `GITHUB_OUTPUT` or the
//! job summary, in `dhow plan`, in the audit log or any other file of the host's deploy user
//! except the 0600 env file (which must hold the env secret), in the hooks' argv, in the `ps`
//! samples (here: the registry password in dhow's own process tree, as other tests log in to the
//! same registry) or in the lock details. The values did reach their places: the container sees
//! the env secret, the build saw the build secret's length, the pre-deploy hook got the secrets
//! in its environment. `DHOW_SANDBOX` points at `sandbox.json`; without it the test fails under
//! CI (`CI=true`) and prints a notice otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{buildkit_docker, git, http_get, ok, push_proxy_image, repo, text};

const SERVICE: &str = "dhow-e2e-canary";
const ENV_CANARY: &str = "canary-e2e-env-7d3f0a";
const BUILD_CANARY: &str = "canary-e2e-build-2b8e4c";
/// The sandbox host this test owns (1-based, as `scripts/sandbox ssh` counts them).
const HOST: usize = 31;
/// The host sampler's files, inside the host's container.
const SAMPLES: &str = "/tmp/dhow-canary-ps";

/// Runs `cmd` as `deploy` on the host.
fn on_host(cmd: &str) -> String {
    common::on_host(HOST, cmd)
}

/// Runs `script` with `sh -c` as root inside the host's container.
fn in_container(container: &str, script: &str) -> String {
    ok(&Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker exec"))
}

/// Every hook records how it was called: its name and argv, then the names (never the values)
/// of its environment; the pre-deploy hook, which runs under the deploy lock, also records the
/// lock details as they are on the host (raw and base64-decoded).
const HOOK: &str = r#"#!/bin/sh
{
  printf 'hook %s argv:' "$(basename "$0")"
  for arg in "$0" "$@"; do printf ' [%s]' "$arg"; done
  printf '\nenv:'
  awk 'BEGIN { for (name in ENVIRON) printf " %s", name }'
  printf '\n'
  if [ "$(basename "$0")" = pre-deploy ]; then
    details=$(docker exec "$CANARY_TEST_CONTAINER" cat "/home/deploy/.kamal/lock-$KAMAL_SERVICE/details")
    printf 'lock details: %s\n' "$details"
    printf 'lock details decoded: %s\n' "$(printf '%s' "$details" | base64 -d | tr '\n' ' ')"
  fi
} >>"$CANARY_TEST_RECORD"
"#;

const HOOKS: [&str; 4] = ["pre-connect", "pre-build", "pre-deploy", "post-deploy"];

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
    /// A directory put first on PATH (holds `docker` when another CLI must be used).
    shim: PathBuf,
    container: String,
    password: String,
}

impl App {
    fn new(json: &Value, docker: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let shim = dir.path().join("shim");
        std::fs::create_dir_all(&shim).expect("shim");
        if docker.is_absolute() {
            std::os::unix::fs::symlink(docker, shim.join("docker")).expect("symlink docker");
        }
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("config")).expect("config");
        std::fs::create_dir_all(app.join(".kamal/hooks")).expect("hooks");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        let password = json["registry"]["password"]
            .as_str()
            .expect("password")
            .to_owned();
        std::fs::write(
            app.join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={password}\nCANARY_SECRET={ENV_CANARY}\nBUILD_CANARY={BUILD_CANARY}\n"
            ),
        )
        .expect("secrets");
        for hook in HOOKS {
            let path = app.join(".kamal/hooks").join(hook);
            std::fs::write(&path, HOOK).expect("hook");
            let mut permissions = std::fs::metadata(&path).expect("hook").permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).expect("chmod hook");
        }
        std::fs::copy(
            repo().join("tests/images/web/start.sh"),
            app.join("start.sh"),
        )
        .expect("cp start.sh");
        std::fs::write(
            app.join("Dockerfile"),
            "FROM busybox:local\nARG VERSION=dev\nRUN --mount=type=secret,id=BUILD_CANARY mkdir -p \
             /www && echo ok >/www/up && echo \"$VERSION\" >/www/version && wc -c \
             </run/secrets/BUILD_CANARY >/www/secret_length\nCOPY start.sh /start.sh\nEXPOSE 80\n\
             CMD [\"/start.sh\"]\n",
        )
        .expect("Dockerfile");
        std::fs::write(app.join(".gitignore"), ".kamal/secrets\n").expect(".gitignore");
        let this = Self {
            dir,
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
            shim,
            container: json["hosts"][HOST - 1]["container"]
                .as_str()
                .expect("container")
                .to_owned(),
            password,
        };
        this.configure(json, "v1");
        git(&app, &["init", "-q"]);
        git(&app, &["add", "."]);
        git(&app, &["commit", "-qm", "sample app"]);
        this
    }

    fn app_dir(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("hooks.record")
    }

    /// The three canaries, by what they are.
    fn canaries(&self) -> [(&'static str, &str); 3] {
        [
            ("the registry password", self.password.as_str()),
            ("the env secret", ENV_CANARY),
            ("the build secret", BUILD_CANARY),
        ]
    }

    /// Fails when any canary is in `haystack` (`what` says where it was looked for).
    fn assert_clean(&self, what: &str, haystack: &str) {
        for (name, value) in self.canaries() {
            assert!(
                !haystack.contains(value),
                "{name} appeared in {what}:\n{haystack}"
            );
        }
    }

    /// config/deploy.yml: `web` behind the proxy on the host, the env secret, the build
    /// secret and the version as a build argument, the registry login with the password secret.
    fn configure(&self, json: &Value, version: &str) {
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let config = format!(
            "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  web:\n    - 127.0.0.1:{port}\n\
             proxy:\n  app_port: 80\n  run:\n    registry: {registry}\n    repository: \
             dhow/kamal-proxy\nregistry:\n  server: {registry}\n  username: ci\n  password:\n    \
             - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\n  args:\n    VERSION: {version}\n  \
             secrets:\n    - BUILD_CANARY\nenv:\n  clear:\n    MODE: canary\n  secret:\n    - \
             CANARY_SECRET\nssh:\n  user: deploy\n  keys: [{key}]\n  keys_only: true\n",
            port = json["hosts"][HOST - 1]["ssh_port"],
            key = json["ssh"]["key"].as_str().expect("key"),
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
            .env("CANARY_TEST_RECORD", self.record())
            .env("CANARY_TEST_CONTAINER", &self.container)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GITHUB_TOKEN")
            .env_remove("DHOW_GITHUB_TOKEN")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_RUN_ATTEMPT")
            .env_remove("GITHUB_ENV")
            .env_remove("GITHUB_STATE")
            .env_remove("DHOW_ENVIRONMENT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the host's sampler: `ps -eo args` inside the host's container every 50 ms until
    /// told to stop (bounded: 4000 samples).
    fn start_host_sampler(&self) {
        in_container(
            &self.container,
            &format!("rm -f {SAMPLES}.samples {SAMPLES}.stop {SAMPLES}.done"),
        );
        ok(&Command::new("docker")
            .args([
                "exec",
                "-d",
                &self.container,
                "sh",
                "-c",
                &format!(
                    "i=0; while [ $i -lt 4000 ] && [ ! -e {SAMPLES}.stop ]; do \
                     echo \"-- sample $i\" >>{SAMPLES}.samples; ps -eo args >>{SAMPLES}.samples; \
                     i=$((i+1)); sleep 0.05; done; touch {SAMPLES}.done"
                ),
            ])
            .output()
            .expect("docker exec -d"));
    }

    /// Stops the host's sampler and returns its samples.
    fn stop_host_sampler(&self) -> String {
        in_container(&self.container, &format!("touch {SAMPLES}.stop"));
        // Bounded: 100 checks, 100 ms apart (a sample takes a few milliseconds).
        for _ in 0..100 {
            if in_container(
                &self.container,
                &format!("test -e {SAMPLES}.done && echo done || true"),
            )
            .trim()
                == "done"
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        in_container(
            &self.container,
            &format!(
                "cat {SAMPLES}.samples; rm -f {SAMPLES}.samples {SAMPLES}.stop {SAMPLES}.done"
            ),
        )
    }

    /// Runs dhow while both samplers watch; returns how it ended and its stdout and stderr.
    /// Checks every local sample: no env or build canary in any process's argv, no registry
    /// password in the argv of dhow or its descendants; and every host sample: none of the
    /// three anywhere.
    fn run_watched(&self, mut command: Command) -> (Output, String, String) {
        self.start_host_sampler();
        let mut child = command.spawn().expect("spawn dhow");
        let dhow = child.id();
        let mut local_samples = 0;
        // Bounded: at most 4000 samples, 50 ms apart, stopping when dhow exits.
        for _ in 0..4000 {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let ps = Command::new("ps")
                .args(["-eo", "pid=,ppid=,args="])
                .output()
                .expect("ps");
            let listing = text(&ps.stdout);
            self.check_local_sample(dhow, &listing);
            local_samples += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("wait");
        let host_samples = self.stop_host_sampler();
        assert!(local_samples > 0, "dhow was sampled while it ran");
        self.assert_clean("a process's argv on the host", &host_samples);
        // The sampler saw the host's processes, those in the app's containers included.
        assert!(
            host_samples.contains("httpd -f -p 80 -h /www"),
            "the host sampler sees the app's processes:\n{host_samples}"
        );
        let stdout = text(&output.stdout);
        let stderr = text(&output.stderr);
        (output, stdout, stderr)
    }

    /// One local `ps -eo pid=,ppid=,args=` listing.
    fn check_local_sample(&self, dhow: u32, listing: &str) {
        let mut parents: BTreeMap<u32, u32> = BTreeMap::new();
        let mut lines: BTreeMap<u32, &str> = BTreeMap::new();
        for line in listing.lines() {
            let mut fields = line.split_whitespace();
            let (Some(pid), Some(parent)) = (
                fields.next().and_then(|f| f.parse().ok()),
                fields.next().and_then(|f| f.parse().ok()),
            ) else {
                continue;
            };
            parents.insert(pid, parent);
            lines.insert(pid, line);
        }
        for (name, value) in [
            ("the env secret", ENV_CANARY),
            ("the build secret", BUILD_CANARY),
        ] {
            assert!(
                !listing.contains(value),
                "{name} appeared in a process's argv here:\n{listing}"
            );
        }
        let in_dhow_tree = |mut pid: u32| {
            // Bounded walk up the process tree.
            for _ in 0..64 {
                if pid == dhow {
                    return true;
                }
                match parents.get(&pid) {
                    Some(&parent) if parent != pid && parent != 0 => pid = parent,
                    _ => return false,
                }
            }
            false
        };
        for (pid, line) in &lines {
            if in_dhow_tree(*pid) {
                assert!(
                    !line.contains(&self.password),
                    "the registry password appeared in the argv of a process of dhow:\n{line}"
                );
            }
        }
    }
}

/// The host's deploy user's files that hold `value`, relative to its home.
fn files_holding(value: &str) -> Vec<String> {
    on_host(&format!(
        "grep -rlF -- '{value}' . 2>/dev/null | sed 's|^\\./||' | sort; true"
    ))
    .lines()
    .map(str::to_owned)
    .collect()
}

fn clean_host() {
    on_host(&format!(
        "docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
         docker images -q --filter reference='*/{SERVICE}' | xargs -r docker rmi -f >/dev/null 2>&1; \
         docker rm -f kamal-proxy >/dev/null 2>&1; docker volume rm kamal-proxy-config >/dev/null 2>&1; \
         rm -rf .kamal .docker; true"
    ));
}

/// The hook records of one run, as `(hook, argv, environment names)`.
fn hook_calls(record: &str) -> Vec<(String, String, BTreeSet<String>)> {
    let mut calls = Vec::new();
    let mut lines = record.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("hook ") else {
            continue;
        };
        let (hook, argv) = rest.split_once(" argv:").expect("argv");
        let names = lines
            .next()
            .and_then(|line| line.strip_prefix("env:"))
            .expect("env line")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        calls.push((hook.to_owned(), argv.trim().to_owned(), names));
    }
    calls
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one watched scenario: plan, three deploys, then every place a secret could land"
)]
fn no_canary_secret_escapes_a_full_deploy() {
    let Some(json) = common::sandbox(HOST) else {
        return;
    };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    clean_host();
    let docker = buildkit_docker();
    let app = App::new(&json, &docker);

    // The plan: the env file upload and the login are there, their values are not.
    let plan = app.dhow("v1", &["plan"]).output().expect("dhow plan");
    let plan_text = ok(&plan) + &text(&plan.stderr);
    app.assert_clean("dhow plan", &plan_text);
    assert!(
        plan_text.contains(&format!(
            "upload .kamal/apps/{SERVICE}/env/roles/web.env (mode 0600, [REDACTED])"
        )),
        "{plan_text}"
    );
    assert!(plan_text.contains("--password-stdin"), "{plan_text}");

    // v1, text output, verbose (every command dhow runs is printed).
    let (output, stdout, stderr) = app.run_watched(app.dhow("v1", &["deploy", "-v"]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    app.assert_clean("dhow deploy's output", &(stdout.clone() + &stderr));
    let all = stdout.clone() + &stderr;
    assert!(all.contains("Finished in"), "{all}");
    assert!(
        all.contains("docker login 172.17.0.1:5000 -u [REDACTED] --password-stdin"),
        "the verbose output shows the commands:\n{all}"
    );

    // v2, JSON lines.
    app.configure(&json, "v2");
    let (output, stdout, stderr) = app.run_watched(app.dhow("v2", &["deploy", "--output", "json"]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    app.assert_clean("dhow deploy --output json", &(stdout.clone() + &stderr));
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|event| event["event"] == "run_finished" && event["succeeded"] == true),
        "{stdout}"
    );

    // v3, GitHub Actions output: the three values are registered with ::add-mask:: first, and
    // appear nowhere else (log, GITHUB_OUTPUT, job summary).
    app.configure(&json, "v3");
    let github_output = app.dir.path().join("github_output");
    let summary = app.dir.path().join("step_summary");
    std::fs::write(&github_output, "").expect("GITHUB_OUTPUT");
    std::fs::write(&summary, "").expect("GITHUB_STEP_SUMMARY");
    let mut command = app.dhow("v3", &["deploy", "--output", "github"]);
    // A push run of a repository, without a token (so no Deployments ledger is opened), the
    // server and API addresses on loopback.
    command
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_SHA", "3f1c9d2e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_SERVER_URL", "http://127.0.0.1:9")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("DHOW_DEPLOYMENT", "false")
        .env("GITHUB_OUTPUT", &github_output)
        .env("GITHUB_STEP_SUMMARY", &summary);
    let (output, stdout, stderr) = app.run_watched(command);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let (masks, rest): (Vec<&str>, Vec<&str>) = stdout
        .lines()
        .partition(|line| line.starts_with("::add-mask::"));
    for (name, value) in app.canaries() {
        assert!(
            masks.iter().any(|line| line.contains(value)),
            "{name} is masked: {masks:?}"
        );
    }
    let first_other = stdout
        .lines()
        .position(|line| !line.starts_with("::add-mask::"))
        .unwrap_or(0);
    assert!(
        stdout
            .lines()
            .skip(first_other)
            .all(|line| !line.starts_with("::add-mask::")),
        "every mask comes before any other line:\n{stdout}"
    );
    app.assert_clean(
        "dhow deploy --output github (apart from ::add-mask::)",
        &(rest.join("\n") + &stderr),
    );
    assert!(
        rest.iter().any(|line| line.starts_with("::group::")),
        "{stdout}"
    );
    for file in [&github_output, &summary] {
        let written = std::fs::read_to_string(file).expect("runner file");
        assert!(!written.trim().is_empty(), "{} is written", file.display());
        app.assert_clean(&file.display().to_string(), &written);
    }

    // The app runs v3, through the proxy; the secrets reached their places.
    let port = json["hosts"][HOST - 1]["http_port"].to_string();
    assert_eq!(http_get(&port, "/version").trim(), "v3");
    let env_file = format!(".kamal/apps/{SERVICE}/env/roles/web.env");
    assert_eq!(on_host(&format!("stat -c %a {env_file}")).trim(), "600");
    assert!(
        on_host(&format!("cat {env_file}")).contains(&format!("CANARY_SECRET={ENV_CANARY}\n")),
        "the env file holds the env secret"
    );
    assert_eq!(
        on_host(&format!(
            "docker exec {SERVICE}-web-v3 sh -c 'echo \"$CANARY_SECRET\"; cat /www/secret_length'"
        )),
        format!("{ENV_CANARY}\n{}\n", BUILD_CANARY.len())
    );
    let history = on_host(&format!(
        "docker history --no-trunc {registry}/{SERVICE}:v3"
    ));
    app.assert_clean("the image's history", &history);

    // On the host: the audit log is clean, and only the env file holds a secret at all.
    let audit = on_host(&format!("cat .kamal/{SERVICE}-audit.log"));
    assert_eq!(
        audit.matches("Booted app version").count(),
        3,
        "three deploys:\n{audit}"
    );
    app.assert_clean("the audit log", &audit);
    assert_eq!(files_holding(ENV_CANARY), [env_file]);
    assert_eq!(files_holding(BUILD_CANARY), Vec::<String>::new());
    assert_eq!(files_holding(&app.password), Vec::<String>::new());

    // The hooks: called by path with no arguments, the secrets in the environment of the hooks
    // that get them (pre-connect, pre-deploy, post-deploy) and not of pre-build; the lock
    // details read under the lock name the deploy and hold no secret.
    let record = std::fs::read_to_string(app.record()).expect("hooks record");
    app.assert_clean(
        "the hooks' record (argv, environment names, lock details)",
        &record,
    );
    let calls = hook_calls(&record);
    for hook in ["pre-connect", "pre-build", "pre-deploy", "post-deploy"] {
        let of_hook: Vec<_> = calls.iter().filter(|(name, ..)| name == hook).collect();
        assert_eq!(of_hook.len(), 3, "{hook} ran once per deploy:\n{record}");
        for (_, argv, names) in of_hook {
            assert_eq!(argv, &format!("[.kamal/hooks/{hook}]"), "{record}");
            let with_secrets = hook != "pre-build";
            for secret in ["CANARY_SECRET", "BUILD_CANARY", "REGISTRY_PASSWORD"] {
                assert_eq!(
                    names.contains(secret),
                    with_secrets,
                    "{hook} and {secret}:\n{record}"
                );
            }
            assert!(names.contains("KAMAL_VERSION"), "{record}");
        }
    }
    let decoded: Vec<&str> = record
        .lines()
        .filter_map(|line| line.strip_prefix("lock details decoded: "))
        .collect();
    assert_eq!(decoded.len(), 3, "{record}");
    for details in decoded {
        assert!(
            details.contains("Locked by:") && details.contains("Automatic deploy lock"),
            "{details}"
        );
    }

    clean_host();
}
