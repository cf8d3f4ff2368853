//! A GitHub Actions run simulated end to end on sandbox hosts 21 and 22 (`scripts/sandbox up`):
//! the runner's environment variables and a `push` event payload from shared/github-events,
//! temporary `GITHUB_OUTPUT`/`GITHUB_STEP_SUMMARY` files, and the fake GitHub API (which checks
//! every request against shared/github-api/openapi-subset.json) as `GITHUB_API_URL`. A deploy
//! records one deployment with its statuses in order and the job URL, sets the outputs and
//! writes a summary with hosts, timings and the rollback link; a failing health check posts
//! `failure` with the container's log tail in the summary and an `::error` line; SIGTERM in the
//! middle of a deploy releases the lock and posts `error` within 7 seconds; a lock left by a run
//! the API reports completed is taken over with an audit line (a live one is not); `dhow
//! rollback` without a version runs the previous success's digest again after its image was
//! pruned from the hosts and its tag moved; the deployment Actions makes for an `environment:`
//! job is adopted, not duplicated; a read-only token (forks, Dependabot) costs a warning, not the
//! deploy. A canary secret and the token never appear unmasked in
//! stdout, the summary, the outputs or any request body.
//!
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the tests fail under CI (`CI=true`) and
//! print a notice otherwise. The tests share the two hosts, so they take turns.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dhow_test_support::github::{FakeGitHub, Fault, RunSeed, event_file};
use serde_json::Value;

mod common;
use common::{ok, on_host, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-actions";
const CANARY: &str = "canary-actions-env-5d1f0";
const TOKEN: &str = "ghs_actionsCanaryToken0123456789";
const OWNER: &str = "ailisp";
const REPO: &str = "gcbapp-buildconfig-example";
/// `after` of shared/github-events/push.json.
const PUSH_SHA: &str = "a21683865c088b5fe1906cf6552d15a285a4986d";
const RUN_ID: u64 = 4_242_001;
const JOB_ID: u64 = 77_001;
/// Sandbox hosts used (1-based, as `scripts/sandbox ssh` counts them).
const HOSTS: [usize; 2] = [21, 22];

/// The tests share hosts 21 and 22: one at a time.
static HOSTS_IN_USE: Mutex<()> = Mutex::new(());

fn take_hosts() -> MutexGuard<'static, ()> {
    HOSTS_IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn build_image(version: &str) {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["image", SERVICE, version, "--kind", "worker", "--push"])
        .output()
        .expect("scripts/sandbox image");
    ok(&output);
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

fn lock_state(index: usize) -> String {
    on_host(
        index,
        &format!("test -e .kamal/lock-{SERVICE} && echo held || echo free"),
    )
    .trim()
    .to_owned()
}

fn running(index: usize) -> String {
    on_host(
        index,
        &format!("docker ps --filter label=service={SERVICE} --format '{{{{.Names}}}}'"),
    )
    .trim()
    .to_owned()
}

/// A runtime that keeps the fake GitHub API answering while the test waits for dhow.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// One simulated Actions job: the app, the runner's files, the fake API.
struct Job {
    dir: tempfile::TempDir,
    known_hosts: String,
    fake: FakeGitHub,
    runtime: tokio::runtime::Runtime,
}

/// What a dhow run left behind.
struct Ran {
    output: Output,
    stdout: String,
    all: String,
    outputs: String,
    summary: String,
}

impl Job {
    fn new(json: &Value) -> Self {
        let runtime = runtime();
        let fake = runtime.block_on(FakeGitHub::start(OWNER, REPO, Some(TOKEN)));
        let job = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
            fake,
            runtime,
        };
        job.configure(json, "", "");
        job
    }

    /// Writes config/deploy.yml (with `role_extra` under the workers role and `root_extra` at
    /// the root) and the secrets.
    fn configure(&self, json: &Value, role_extra: &str, root_extra: &str) {
        let dir = self.dir.path();
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
             proxy: false\n{role_extra}primary_role: workers\nreadiness_delay: 0\n{root_extra}\
             registry:\n  server: {registry}\n  username: ci\n  password:\n    - REGISTRY_PASSWORD\n\
             builder:\n  arch: amd64\nenv:\n  clear:\n    MODE: batch\n  secret:\n    - CANARY_SECRET\n\
             ssh:\n  user: deploy\n  keys: [{key}]\n  keys_only: true\n"
        );
        std::fs::create_dir_all(dir.join("config")).expect("config");
        std::fs::create_dir_all(dir.join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(dir.join("home")).expect("home");
        std::fs::create_dir_all(dir.join("runner")).expect("runner");
        std::fs::write(dir.join("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::write(
            dir.join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nCANARY_SECRET={CANARY}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
    }

    fn runner_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("runner").join(name)
    }

    /// `dhow` with the runner's environment (run `RUN_ID`, `attempt`, a push event).
    fn dhow(&self, version: &str, attempt: u32, args: &[&str]) -> Command {
        let output = self.runner_file("output");
        let summary = self.runner_file("summary");
        std::fs::write(&output, "").expect("GITHUB_OUTPUT");
        std::fs::write(&summary, "").expect("GITHUB_STEP_SUMMARY");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .env_remove("VERSION")
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
            .env("GITHUB_REPOSITORY_OWNER", OWNER)
            .env("GITHUB_SHA", PUSH_SHA)
            .env("GITHUB_REF", "refs/heads/master")
            .env("GITHUB_REF_NAME", "master")
            .env("GITHUB_REF_TYPE", "branch")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_EVENT_PATH", event_file("push.json"))
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_API_URL", self.fake.api_url())
            .env("GITHUB_RUN_ID", RUN_ID.to_string())
            .env("GITHUB_RUN_NUMBER", "17")
            .env("GITHUB_RUN_ATTEMPT", attempt.to_string())
            .env("GITHUB_WORKFLOW", "deploy")
            .env(
                "GITHUB_WORKFLOW_REF",
                format!("{OWNER}/{REPO}/.github/workflows/deploy.yml@refs/heads/master"),
            )
            .env("GITHUB_JOB", "deploy")
            .env("GITHUB_ACTOR", "octocat")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("RUNNER_NAME", "sandbox-runner")
            .env("RUNNER_TEMP", self.dir.path().join("runner"))
            .env("DHOW_JOB_CHECK_RUN_ID", JOB_ID.to_string())
            .env("GITHUB_TOKEN", TOKEN)
            .env("DHOW_ENVIRONMENT", "production")
            .env("DHOW_ENVIRONMENT_URL", "https://app.example.test")
            .env("DHOW_LOCK_WAIT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !version.is_empty() {
            command.env("VERSION", version);
        }
        command
    }

    fn collect(&self, output: Output) -> Ran {
        let stdout = text(&output.stdout);
        let all = stdout.clone() + &text(&output.stderr);
        let outputs = std::fs::read_to_string(self.runner_file("output")).expect("outputs");
        let summary = std::fs::read_to_string(self.runner_file("summary")).expect("summary");
        // `::add-mask::` lines are how secrets get masked (the runner never shows them).
        let unmasked = all
            .lines()
            .filter(|line| !line.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        for (what, content) in [
            ("stdout/stderr", &unmasked),
            ("GITHUB_OUTPUT", &outputs),
            ("GITHUB_STEP_SUMMARY", &summary),
        ] {
            assert!(
                !content.contains(CANARY),
                "the secret leaked into {what}:\n{content}"
            );
            assert!(
                !content.contains(TOKEN),
                "the token leaked into {what}:\n{content}"
            );
        }
        self.fake.assert_not_sent(CANARY);
        self.fake.assert_not_sent(TOKEN);
        self.fake.assert_no_violations();
        Ran {
            output,
            stdout,
            all,
            outputs,
            summary,
        }
    }

    fn deploy(&self, version: &str, attempt: u32) -> Ran {
        let output = self
            .dhow(version, attempt, &["deploy", "-P"])
            .output()
            .expect("dhow");
        self.collect(output)
    }

    fn spawn_deploy(&self, version: &str, attempt: u32) -> Child {
        self.dhow(version, attempt, &["deploy", "-P"])
            .spawn()
            .expect("spawn dhow")
    }

    /// The deployments the fake holds, newest first.
    fn deployments(&self) -> Vec<Value> {
        self.fake.deployments()
    }
}

/// Reads one output (`name=value` or the `name<<DELIM` form) from a `GITHUB_OUTPUT` file.
fn output_value(outputs: &str, name: &str) -> Option<String> {
    let mut lines = outputs.lines();
    while let Some(line) = lines.next() {
        if let Some(value) = line.strip_prefix(&format!("{name}=")) {
            return Some(value.to_owned());
        }
        if let Some(delimiter) = line.strip_prefix(&format!("{name}<<")) {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    return Some(value.join("\n"));
                }
                value.push(line);
            }
        }
    }
    None
}

fn job_url() -> String {
    format!("https://github.com/{OWNER}/{REPO}/actions/runs/{RUN_ID}/job/{JOB_ID}")
}

#[test]
fn deploy_records_statuses_outputs_and_summary() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    build_image("v2");
    clean_hosts();
    let job = Job::new(&json);

    let first = job.deploy("v1", 1);
    ok(&first.output);
    let second = job.deploy("v2", 1);
    ok(&second.output);
    for index in HOSTS {
        assert_eq!(running(index), format!("{SERVICE}-workers-v2"));
        assert_eq!(lock_state(index), "free");
    }

    // One deployment per run, newest first, with dhow's record in the payload.
    let deployments = job.deployments();
    assert_eq!(deployments.len(), 2, "{deployments:#?}");
    let newest = &deployments[0];
    let id = newest["id"].as_u64().expect("id");
    assert_eq!(newest["sha"], PUSH_SHA);
    assert_eq!(newest["ref"], PUSH_SHA);
    assert_eq!(newest["environment"], "production");
    assert_eq!(newest["production_environment"], true);
    assert_eq!(newest["transient_environment"], false);
    let payload = &newest["payload"];
    assert_eq!(payload["tool"], "dhow");
    assert_eq!(payload["version"], "v2");
    let digest = payload["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:"), "{payload}");
    assert_eq!(payload["hosts"].as_array().map(Vec::len), Some(2));
    assert!(
        payload["config_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    );
    let create = job
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/deployments"))
        .expect("create deployment request");
    let body: Value = serde_json::from_str(&create.body).expect("body");
    assert_eq!(body["auto_merge"], false);
    assert_eq!(body["required_contexts"], serde_json::json!([]));
    assert!(
        create
            .headers
            .iter()
            .any(|(k, v)| k == "x-github-api-version" && v == "2022-11-28"),
        "{:?}",
        create.headers
    );

    // Statuses in order, with the job page and the environment URL.
    assert_eq!(
        job.fake.status_states(id),
        ["queued", "in_progress", "success"]
    );
    for status in job.fake.statuses(id) {
        assert_eq!(status["log_url"], job_url(), "{status}");
        assert_eq!(status["environment_url"], "https://app.example.test");
    }
    let older = deployments[1]["id"].as_u64().expect("id");
    assert_eq!(
        job.fake.status_states(older),
        ["queued", "in_progress", "success", "inactive"],
        "the superseded deployment is inactive"
    );

    // Outputs.
    let outputs = &second.outputs;
    assert_eq!(output_value(outputs, "deployment-id"), Some(id.to_string()));
    assert_eq!(output_value(outputs, "version").as_deref(), Some("v2"));
    assert_eq!(output_value(outputs, "digest"), Some(digest.clone()));
    assert_eq!(output_value(outputs, "status").as_deref(), Some("success"));
    assert_eq!(
        output_value(outputs, "url").as_deref(),
        Some("https://app.example.test")
    );
    assert_eq!(
        output_value(outputs, "previous-version").as_deref(),
        Some("v1")
    );
    assert_eq!(
        output_value(outputs, "rollback-command").as_deref(),
        Some(
            format!(
                "gh workflow run rollback.yml --repo {OWNER}/{REPO} --ref master -f version=v1"
            )
            .as_str()
        )
    );

    // The log: masks first, groups, no secret.
    let first_line = second.stdout.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with("::add-mask::"),
        "masks come first:\n{}",
        second.stdout
    );
    assert!(second.stdout.contains("::group::"), "{}", second.stdout);
    assert!(second.stdout.contains("::endgroup::"));

    check_summary(&json, &second.summary, &digest);
    clean_hosts();
}

/// The summary of the v2 deploy: hosts with roles and status, timings, the digest, audit lines,
/// the rollback link and command.
fn check_summary(json: &Value, summary: &str, digest: &str) {
    for index in HOSTS {
        let port = json["hosts"][index - 1]["ssh_port"].to_string();
        assert!(
            summary.contains(&format!("`127.0.0.1:{port}` | workers | ✅ ok")),
            "{summary}"
        );
    }
    assert!(summary.contains("### Timing"), "{summary}");
    assert!(summary.contains("| pull |"), "{summary}");
    assert!(summary.contains("| boot |"), "{summary}");
    assert!(summary.contains(digest), "{summary}");
    assert!(
        summary.contains("[workers] Booted app version v2"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "(https://github.com/{OWNER}/{REPO}/actions/workflows/rollback.yml)"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "gh workflow run rollback.yml --repo {OWNER}/{REPO} --ref master -f version=v1"
        )),
        "{summary}"
    );
}

#[test]
fn failing_health_check_posts_failure_with_the_log_tail() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    build_image("v3");
    clean_hosts();
    let job = Job::new(&json);
    ok(&job.deploy("v1", 1).output);

    job.configure(
        &json,
        "    options:\n      health-cmd: \"exit 1\"\n      health-interval: 1s\n      health-retries: 1\n",
        "deploy_timeout: 3\n",
    );
    let failed = job.deploy("v3", 2);
    assert_eq!(failed.output.status.code(), Some(1), "{}", failed.all);
    let deployments = job.deployments();
    let id = deployments[0]["id"].as_u64().expect("id");
    assert_eq!(
        job.fake.status_states(id),
        ["queued", "in_progress", "failure"]
    );
    let last = job.fake.statuses(id).pop().expect("status");
    assert_eq!(last["log_url"], job_url());
    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with("::error ") || l.starts_with("::error::")),
        "{}",
        failed.stdout
    );
    assert!(
        failed.summary.contains("worker v3 started"),
        "the container's log tail is in the summary:\n{}",
        failed.summary
    );
    assert!(failed.summary.contains("unhealthy"), "{}", failed.summary);
    assert!(failed.summary.contains("### Diagnostics"));
    assert_eq!(
        output_value(&failed.outputs, "status").as_deref(),
        Some("failure")
    );
    assert_eq!(
        output_value(&failed.outputs, "previous-version").as_deref(),
        Some("v1")
    );
    for index in HOSTS {
        assert_eq!(running(index), format!("{SERVICE}-workers-v1"));
        assert_eq!(lock_state(index), "free");
    }
    clean_hosts();
}

#[test]
fn sigterm_releases_the_lock_and_posts_error_within_seven_seconds() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v4");
    clean_hosts();
    let job = Job::new(&json);
    // A health check that never passes keeps the deploy waiting under the lock.
    job.configure(
        &json,
        "    options:\n      health-cmd: \"exit 1\"\n      health-interval: 1s\n      health-retries: 1000\n",
        "deploy_timeout: 120\n",
    );
    let mut child = job.spawn_deploy("v4", 1);
    // Bounded: at most 1200 polls, 100 ms apart, until the deployment is in progress and the
    // new container runs.
    let mut deployment = None;
    for _ in 0..1200 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "dhow ended before it was signalled"
        );
        deployment = job.deployments().first().and_then(|d| d["id"].as_u64());
        if let Some(id) = deployment
            && job.fake.status_states(id).last().map(String::as_str) == Some("in_progress")
            && running(HOSTS[0]).contains("-v4")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = deployment.expect("a deployment was created");
    assert_eq!(lock_state(HOSTS[0]), "held");
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    // Bounded wait for the exit: at most 30 s.
    let mut exited = None;
    for _ in 0..300 {
        if child.try_wait().expect("try_wait").is_some() {
            exited = Some(signalled.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = exited.expect("dhow exits after SIGTERM");
    let ran = job.collect(child.wait_with_output().expect("wait"));
    assert!(
        took <= Duration::from_secs(7),
        "SIGTERM to exit (lock released, error posted) took {took:?}, more than 7 s\n{}",
        ran.all
    );
    assert_eq!(ran.output.status.code(), Some(130), "{}", ran.all);
    assert_eq!(lock_state(HOSTS[0]), "free");
    assert_eq!(
        job.fake.status_states(id).last().map(String::as_str),
        Some("error"),
        "{:?}",
        job.fake.status_states(id)
    );
    assert_eq!(
        output_value(&ran.outputs, "status").as_deref(),
        Some("error")
    );
    eprintln!("SIGTERM → lock released, error posted, exit: {took:?}");
    clean_hosts();
}

#[test]
fn a_lock_left_by_a_completed_run_is_taken_over() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    clean_hosts();
    let job = Job::new(&json);
    let stale_run = RUN_ID - 5;
    job.fake.add_run(RunSeed {
        id: stale_run,
        status: "completed".to_owned(),
        conclusion: Some("cancelled".to_owned()),
        run_attempt: 1,
        head_sha: PUSH_SHA.to_owned(),
    });
    // The lock a cancelled run left behind, as dhow writes it.
    let details = format!(
        "Locked by: ci at 2026-01-01T00:00:00Z\nVersion: v0\nMessage: Automatic deploy lock by \
         GitHub Actions run {stale_run} attempt 1 \
         (https://github.com/{OWNER}/{REPO}/actions/runs/{stale_run}/attempts/1)"
    );
    on_host(
        HOSTS[0],
        &format!(
            "mkdir -p .kamal/lock-{SERVICE} && printf '%s' '{details}' | base64 -w0 > \
             .kamal/lock-{SERVICE}/details"
        ),
    );
    assert_eq!(lock_state(HOSTS[0]), "held");
    let ran = job.deploy("v1", 1);
    ok(&ran.output);
    assert!(
        ran.all.contains(&format!(
            "Taking over a stale deploy lock: run {stale_run} is cancelled"
        )),
        "{}",
        ran.all
    );
    let audit = on_host(HOSTS[0], &format!("cat .kamal/{SERVICE}-audit.log"));
    assert!(
        audit.contains(&format!(
            "Took over the deploy lock of a finished run: run {stale_run} is cancelled"
        )),
        "{audit}"
    );
    assert!(
        job.fake
            .operation_log()
            .iter()
            .any(|op| op == "actions/get-workflow-run"),
        "{:?}",
        job.fake.operation_log()
    );
    assert!(ran.summary.contains("Took over a stale deploy lock"));
    for index in HOSTS {
        assert_eq!(running(index), format!("{SERVICE}-workers-v1"));
        assert_eq!(lock_state(index), "free");
    }

    // A lock of a run that is still going is waited for (here: not at all, DHOW_LOCK_WAIT=0),
    // and the deploy ends with the lock held.
    let live_run = RUN_ID - 1;
    job.fake.add_run(RunSeed {
        id: live_run,
        status: "in_progress".to_owned(),
        conclusion: None,
        run_attempt: 1,
        head_sha: PUSH_SHA.to_owned(),
    });
    let details = details.replace(&stale_run.to_string(), &live_run.to_string());
    on_host(
        HOSTS[0],
        &format!(
            "mkdir -p .kamal/lock-{SERVICE} && printf '%s' '{details}' | base64 -w0 > \
             .kamal/lock-{SERVICE}/details"
        ),
    );
    let held = job.deploy("v1", 1);
    assert_eq!(held.output.status.code(), Some(7), "{}", held.all);
    assert_eq!(lock_state(HOSTS[0]), "held");
    assert_eq!(
        output_value(&held.outputs, "status").as_deref(),
        Some("error")
    );
    clean_hosts();
}

/// The container's image digest (`sha256:…` of the registry) on host `index`.
fn running_digest(index: usize, container: &str) -> String {
    on_host(
        index,
        &format!(
            "docker image inspect --format '{{{{json .RepoDigests}}}}' \
             $(docker inspect --format '{{{{.Image}}}}' {container})"
        ),
    )
}

/// v1 is pruned from the hosts, and its tag in the registry now names v2's image: only a pull by
/// digest brings the real v1 back.
fn prune_v1_and_move_its_tag(json: &Value, digest: &str) {
    for index in HOSTS {
        on_host(
            index,
            &format!(
                "docker ps -aq --filter label=service={SERVICE} --filter name=-v1 | xargs -r docker rm -f \
                 >/dev/null; docker image inspect --format '{{{{.Id}}}}' \
                 {registry}/{SERVICE}:v1 | xargs -r docker image rm -f >/dev/null",
                registry = json["registry"]["from_hosts"].as_str().expect("registry")
            ),
        );
        let images = on_host(
            index,
            &format!("docker image ls --digests --filter label=service={SERVICE}"),
        );
        assert!(
            !images.contains(digest),
            "v1 is still on host {index}:\n{images}"
        );
    }
    let registry = json["registry"]["from_hosts"].as_str().expect("registry");
    for args in [
        vec![
            "tag".to_owned(),
            format!("{registry}/{SERVICE}:v2"),
            format!("{registry}/{SERVICE}:v1"),
        ],
        vec!["push".to_owned(), format!("{registry}/{SERVICE}:v1")],
    ] {
        let output = Command::new("docker").args(&args).output().expect("docker");
        ok(&output);
    }
}

#[test]
fn rollback_without_a_version_runs_the_previous_digest_again() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    build_image("v2");
    clean_hosts();
    let job = Job::new(&json);
    ok(&job.deploy("v1", 1).output);
    ok(&job.deploy("v2", 1).output);
    let deployments = job.deployments();
    let v1 = &deployments[1];
    assert_eq!(v1["payload"]["version"], "v1");
    let digest = v1["payload"]["digest"].as_str().expect("digest").to_owned();

    prune_v1_and_move_its_tag(&json, &digest);

    let rolled = {
        let output = job
            .dhow("", 1, &["rollback"])
            .output()
            .expect("dhow rollback");
        job.collect(output)
    };
    ok(&rolled.output);
    for index in HOSTS {
        let container = format!("{SERVICE}-workers-v1");
        assert_eq!(running(index), container);
        assert!(
            running_digest(index, &container).contains(&digest),
            "host {index} runs another image than {digest}"
        );
        let logs = on_host(index, &format!("docker logs {container} 2>&1"));
        assert!(logs.contains("worker v1 started"), "{logs}");
        assert_eq!(lock_state(index), "free");
    }
    let deployments = job.deployments();
    assert_eq!(deployments.len(), 3);
    let rollback = &deployments[0];
    assert_eq!(rollback["task"], "deploy:rollback");
    assert_eq!(rollback["payload"]["version"], "v1");
    assert_eq!(rollback["payload"]["digest"], digest.as_str());
    assert_eq!(rollback["sha"], v1["sha"]);
    let id = rollback["id"].as_u64().expect("id");
    assert_eq!(
        job.fake.status_states(id),
        ["queued", "in_progress", "success"]
    );
    assert_eq!(
        output_value(&rolled.outputs, "version").as_deref(),
        Some("v1")
    );
    assert_eq!(
        output_value(&rolled.outputs, "digest").as_deref(),
        Some(digest.as_str())
    );
    assert!(
        rolled.summary.contains("Rolled back to"),
        "{}",
        rolled.summary
    );
    // `--version` (the action's `version` input) names what to go back to: v2 again, by the
    // digest its deployment recorded.
    let v2_digest = deployments[1]["payload"]["digest"]
        .as_str()
        .expect("v2 digest")
        .to_owned();
    assert_eq!(deployments[1]["payload"]["version"], "v2");
    let again = {
        let output = job
            .dhow("", 1, &["--version", "v2", "rollback"])
            .output()
            .expect("dhow rollback");
        job.collect(output)
    };
    ok(&again.output);
    for index in HOSTS {
        let container = format!("{SERVICE}-workers-v2");
        assert_eq!(running(index), container);
        assert!(running_digest(index, &container).contains(&v2_digest));
    }
    assert_eq!(
        output_value(&again.outputs, "previous-version").as_deref(),
        Some("v1")
    );
    // The registry's v1 tag is restored for the other tests.
    build_image("v1");
    clean_hosts();
}

#[test]
fn the_deployment_of_an_environment_job_is_adopted() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    clean_hosts();
    let job = Job::new(&json);
    // What Actions does for a job with `environment: production`: a deployment of the commit,
    // without dhow's payload, already in progress.
    let seeded = job.runtime.block_on(async {
        let github = dhow_github::GitHub::new(
            &job.fake.api_url(),
            dhow_core::Secret::new(TOKEN.to_owned()),
            dhow_github::Repository::parse(&format!("{OWNER}/{REPO}")).expect("repo"),
        )
        .expect("client");
        let deployment = github
            .create_deployment(&dhow_github::deployments::NewDeployment::new(
                PUSH_SHA,
                "production",
            ))
            .await
            .expect("create");
        github
            .create_deployment_status(
                deployment.id,
                &dhow_github::deployments::NewStatus::new(
                    dhow_github::deployments::DeploymentState::InProgress,
                ),
            )
            .await
            .expect("status");
        deployment.id
    });
    let ran = job.deploy("v1", 1);
    ok(&ran.output);
    let deployments = job.deployments();
    assert_eq!(
        deployments.len(),
        1,
        "no second deployment: {deployments:#?}"
    );
    assert_eq!(
        job.fake.status_states(seeded),
        ["in_progress", "in_progress", "success"]
    );
    assert_eq!(
        output_value(&ran.outputs, "deployment-id"),
        Some(seeded.to_string())
    );
    let last = job.fake.statuses(seeded).pop().expect("status");
    assert!(
        last["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Deployed v1 (sha256:")),
        "{last}"
    );
    clean_hosts();
}

#[test]
fn a_read_only_token_degrades_to_a_warning() {
    let Some(json) = sandbox(22) else { return };
    let _hosts = take_hosts();
    build_image("v1");
    clean_hosts();
    let job = Job::new(&json);
    // What a fork's pull request or Dependabot gets: a token that may not write deployments.
    job.fake.push_fault(Fault::status(
        "repos/create-deployment",
        403,
        "Resource not accessible by integration",
    ));
    let ran = job.deploy("v1", 1);
    ok(&ran.output);
    assert!(job.deployments().is_empty());
    let warning = ran
        .stdout
        .lines()
        .find(|line| line.starts_with("::warning") && line.contains("deployments: write"))
        .unwrap_or_else(|| panic!("no warning about the permission:\n{}", ran.stdout));
    assert!(
        warning.contains("Resource not accessible by integration"),
        "{warning}"
    );
    let creates = job
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
        .count();
    assert_eq!(creates, 1, "no second try after a 403");
    assert_eq!(
        output_value(&ran.outputs, "status").as_deref(),
        Some("success")
    );
    assert!(
        output_value(&ran.outputs, "digest").is_some_and(|d| d.starts_with("sha256:")),
        "{}",
        ran.outputs
    );
    assert!(ran.summary.contains("Deployed"), "{}", ran.summary);
    for index in HOSTS {
        assert_eq!(running(index), format!("{SERVICE}-workers-v1"));
    }
    clean_hosts();
}
