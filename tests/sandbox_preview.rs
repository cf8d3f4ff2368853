//! Pull-request previews end to end on the sandbox (hosts 25 and 26), driven by the payloads in
//! shared/github-events and the fake GitHub API: production (web on both hosts behind the proxy)
//! keeps serving v1 while two previews live side by side on host 25 (the only preview host),
//! each answering its own version on `pr-<N>.preview.test`; a `synchronize` updates one and edits
//! the same sticky comment; a third preview is refused by the cap; a fork's pull request is
//! skipped; the sweep removes the preview of a closed pull request and keeps an open one; a
//! `closed` event leaves no container, env file, proxy service or image of that preview.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dhow_test_support::github::{FakeGitHub, PullSeed};
use serde_json::Value;

mod common;
use common::{push_proxy_image, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-preview";
const HOSTS: [usize; 2] = [25, 26];
const TOKEN: &str = "ghs_previewCanaryToken0123456789";
const CANARY: &str = "preview-env-canary-6c1f";
const OWNER: &str = "Codertocat";
const REPO: &str = "Hello-World";

/// Stdout and stderr of a command that must have succeeded (notices go to stderr).
fn ok(output: &Output) -> String {
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(output.status.success(), "failed:\n{all}");
    all
}

/// The stdout of `cmd` as `deploy` on host `index`; a failure gives what it printed (the
/// cleanup's commands may find nothing to remove).
fn on_host(index: usize, cmd: &str) -> String {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["ssh", &index.to_string(), "deploy", cmd])
        .output()
        .expect("scripts/sandbox ssh");
    text(&output.stdout)
}

fn image(version: &str, service: &str) {
    ok(&Command::new(repo().join("scripts/sandbox"))
        .args([
            "image",
            SERVICE,
            version,
            "--kind",
            "web",
            "--service",
            service,
            "--push",
        ])
        .output()
        .expect("scripts/sandbox image"));
}

/// `GET /version` through host `index`'s published HTTP port with `Host: host`.
fn version_at(json: &Value, index: usize, host: &str) -> String {
    let port = json["hosts"][index - 1]["http_port"].to_string();
    let output = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:{port}/version"),
        ])
        .output()
        .expect("curl");
    text(&output.stdout).trim().to_owned()
}

fn event_file(name: &str) -> PathBuf {
    repo().join("../shared/github-events").join(name)
}

struct Bed {
    dir: tempfile::TempDir,
    known_hosts: String,
    fake: FakeGitHub,
    runtime: tokio::runtime::Runtime,
}

impl Bed {
    /// A payload from shared/github-events with the pull request's number, head SHA and
    /// labels replaced.
    fn event(&self, name: &str, number: u64, head: &str) -> PathBuf {
        let mut payload: Value =
            serde_json::from_str(&std::fs::read_to_string(event_file(name)).expect("event"))
                .expect("event json");
        payload["number"] = number.into();
        payload["pull_request"]["number"] = number.into();
        payload["pull_request"]["head"]["sha"] = head.into();
        let path = self
            .dir
            .path()
            .join(format!("event-{name}-{number}-{head}.json"));
        std::fs::write(&path, payload.to_string()).expect("write event");
        path
    }

    fn dhow(&self, args: &[&str], version: &str, event: Option<&Path>) -> Output {
        let runner = self.dir.path().join("runner");
        std::fs::create_dir_all(&runner).expect("runner");
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
            .env_remove("DHOW_PREVIEW_PR")
            .env_remove("GITHUB_ACTIONS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(event) = event {
            std::fs::write(runner.join("output"), "").expect("output");
            std::fs::write(runner.join("summary"), "").expect("summary");
            command
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
                .env("GITHUB_REPOSITORY_OWNER", OWNER)
                .env("GITHUB_SHA", "1".repeat(40))
                .env("GITHUB_REF", "refs/pull/2/merge")
                .env("GITHUB_EVENT_NAME", "pull_request")
                .env("GITHUB_EVENT_PATH", event)
                .env("GITHUB_SERVER_URL", "https://github.com")
                .env("GITHUB_API_URL", self.fake.api_url())
                .env("GITHUB_RUN_ID", "4242")
                .env("GITHUB_RUN_NUMBER", "7")
                .env("GITHUB_RUN_ATTEMPT", "1")
                .env("GITHUB_WORKFLOW", "previews")
                .env("GITHUB_JOB", "preview")
                .env("GITHUB_ACTOR", "octocat")
                .env("GITHUB_OUTPUT", runner.join("output"))
                .env("GITHUB_STEP_SUMMARY", runner.join("summary"))
                .env("RUNNER_TEMP", &runner)
                .env("GITHUB_TOKEN", TOKEN)
                .env("DHOW_LOCK_WAIT", "0");
        } else {
            command
                .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
                .env("GITHUB_API_URL", self.fake.api_url())
                .env("GITHUB_TOKEN", TOKEN);
        }
        let output = command.output().expect("run dhow");
        let all = text(&output.stdout) + &text(&output.stderr);
        let unmasked: String = all
            .lines()
            .filter(|line| !line.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!unmasked.contains(TOKEN), "the token leaked:\n{all}");
        assert!(!unmasked.contains(CANARY), "the env secret leaked:\n{all}");
        let summary = std::fs::read_to_string(runner.join("summary")).unwrap_or_default();
        assert!(
            !summary.contains(CANARY) && !summary.contains(TOKEN),
            "a secret in the job summary:\n{summary}"
        );
        output
    }

    fn comments(&self, pr: u64) -> Vec<String> {
        self.fake.comment_bodies(pr)
    }
}

fn preview_containers(index: usize, pr: u64) -> String {
    on_host(
        index,
        &format!("docker ps -a --filter label=service={SERVICE}-pr-{pr} --format '{{{{.Names}}}}'"),
    )
}

fn clean(index: usize) {
    on_host(
        index,
        &format!(
            "docker ps -aq --filter label=dhow.preview | xargs -r docker rm -f >/dev/null; \
             docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
             docker rm -f kamal-proxy >/dev/null 2>&1; docker volume rm kamal-proxy-config >/dev/null 2>&1; \
             docker volume ls -q --filter name={SERVICE} | xargs -r docker volume rm >/dev/null 2>&1; \
             rm -rf .kamal/apps/{SERVICE}* .kamal/{SERVICE}*-audit.log .kamal/lock-{SERVICE}* .kamal/proxy; true"
        ),
    );
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, step by step")]
fn previews_live_beside_production_and_leave_nothing_behind() {
    let Some(json) = sandbox(26) else { return };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    image("v1", SERVICE);
    image("pa1", &format!("{SERVICE}-pr-2"));
    image("pa2", &format!("{SERVICE}-pr-2"));
    image("pb1", &format!("{SERVICE}-pr-3"));
    for index in HOSTS {
        clean(index);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = runtime.block_on(FakeGitHub::start(OWNER, REPO, Some(TOKEN)));
    let host = |index: usize| format!("127.0.0.1:{}", json["hosts"][index - 1]["ssh_port"]);
    let bed = Bed {
        dir: tempfile::tempdir().expect("tempdir"),
        known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        fake,
        runtime,
    };
    let dir = bed.dir.path();
    std::fs::create_dir_all(dir.join("config")).expect("config");
    std::fs::create_dir_all(dir.join(".kamal")).expect(".kamal");
    std::fs::create_dir_all(dir.join("home")).expect("home");
    std::fs::write(
        dir.join("config/deploy.yml"),
        format!(
            "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  web:\n    - {}\n    - {}\nproxy:\n  \
             host: shop.test\n  app_port: 80\n  run:\n    registry: {registry}\n    repository: \
             dhow/kamal-proxy\nregistry:\n  server: {registry}\n  username: ci\n  password:\n    - \
             REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\nenv:\n  secret:\n    - PREVIEW_CANARY\nvolumes:\n  - {SERVICE}-data:/data\nreadiness_delay: 0\nssh:\n  user: deploy\n  \
             keys: [{}]\n  keys_only: true\nx-dhow-preview:\n  domain: preview.test\n  hosts: [{}]\n  \
             max: 2\n",
            host(HOSTS[0]),
            host(HOSTS[1]),
            json["ssh"]["key"].as_str().expect("key"),
            host(HOSTS[0]),
        ),
    )
    .expect("deploy.yml");
    std::fs::write(
        dir.join(".kamal/secrets"),
        format!(
            "REGISTRY_PASSWORD={}\nPREVIEW_CANARY={CANARY}\n",
            json["registry"]["password"].as_str().expect("password")
        ),
    )
    .expect("secrets");

    // Production v1 on both hosts.
    ok(&bed.dhow(&["deploy", "-P"], "v1", None));
    for index in HOSTS {
        assert_eq!(version_at(&json, index, "shop.test"), "v1", "host {index}");
    }
    let production_id = on_host(
        HOSTS[0],
        &format!("docker ps -q --filter name=^{SERVICE}-web-v1$"),
    );
    assert!(!production_id.trim().is_empty());

    // Two previews side by side on host 25 only.
    let opened = |pr: u64, head: &str| bed.event("pull_request.opened.json", pr, head);
    let out = ok(&bed.dhow(&["preview", "auto", "-P"], "pa1", Some(&opened(2, "pa1"))));
    assert!(out.contains("http://pr-2.preview.test"), "{out}");
    let reopened = bed.event("pull_request.reopened.json", 3, "pb1");
    ok(&bed.dhow(&["preview", "auto", "-P"], "pb1", Some(&reopened)));
    assert_eq!(version_at(&json, HOSTS[0], "pr-2.preview.test"), "pa1");
    assert_eq!(version_at(&json, HOSTS[0], "pr-3.preview.test"), "pb1");
    assert_eq!(version_at(&json, HOSTS[0], "shop.test"), "v1");
    assert!(
        preview_containers(HOSTS[1], 2).trim().is_empty(),
        "a preview runs only on the preview hosts"
    );
    let comments = bed.comments(2);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("— live"), "{}", comments[0]);
    assert!(comments[0].contains("http://pr-2.preview.test"));
    assert!(comments[0].contains("`pa1`"));

    // synchronize: the same comment, edited.
    let sync = bed.event("pull_request.synchronize.json", 2, "pa2");
    ok(&bed.dhow(&["preview", "auto", "-P"], "pa2", Some(&sync)));
    assert_eq!(version_at(&json, HOSTS[0], "pr-2.preview.test"), "pa2");
    let comments = bed.comments(2);
    assert_eq!(comments.len(), 1, "never duplicated: {comments:?}");
    assert!(comments[0].contains("`pa2`"), "{}", comments[0]);
    // The preview has its secret (from its 0600 env file).
    assert_eq!(
        on_host(
            HOSTS[0],
            &format!("docker exec {SERVICE}-pr-2-web-pa2 sh -c 'echo \"$PREVIEW_CANARY\"'")
        )
        .trim(),
        CANARY
    );
    assert_eq!(
        on_host(
            HOSTS[0],
            &format!("stat -c %a .kamal/apps/{SERVICE}-pr-2/env/roles/web.env")
        )
        .trim(),
        "600"
    );

    // The cap (max 2): a third is refused and leaves nothing.
    let refused = bed.dhow(&["preview", "auto", "-P"], "pa1", Some(&opened(4, "pa1")));
    assert!(!refused.status.success());
    let all = text(&refused.stdout) + &text(&refused.stderr);
    assert!(
        all.contains("the preview of #4 was refused: 2 previews are live (#2, #3)"),
        "{all}"
    );
    assert!(preview_containers(HOSTS[0], 4).trim().is_empty());

    // A fork's pull request is skipped with a notice.
    let fork = bed.event("pull_request.synchronize.from-fork.json", 5, "pa1");
    let out = ok(&bed.dhow(&["preview", "auto", "-P"], "pa1", Some(&fork)));
    assert!(out.contains("comes from a fork"), "{out}");
    assert!(preview_containers(HOSTS[0], 5).trim().is_empty());

    // The sweep: #3's pull request is closed, #2's open and fresh.
    let now = "2099-01-01T00:00:00Z".to_owned();
    for (number, state) in [(2, "open"), (3, "closed")] {
        bed.fake.add_pull(PullSeed {
            number,
            state: state.to_owned(),
            title: format!("PR {number}"),
            head_sha: "a".repeat(40),
            head_ref: format!("feature-{number}"),
            base_ref: "master".to_owned(),
            merged: false,
            draft: false,
            labels: Vec::new(),
            user: "octocat".to_owned(),
            updated_at: now.clone(),
        });
    }
    let out = ok(&bed.dhow(&["preview", "sweep"], "v1", None));
    assert!(
        out.contains("removed #3: the pull request is closed"),
        "{out}"
    );
    assert!(out.contains("kept #2"), "{out}");
    assert!(preview_containers(HOSTS[0], 3).trim().is_empty());
    assert_eq!(version_at(&json, HOSTS[0], "pr-2.preview.test"), "pa2");

    // closed: nothing of #2 is left on any host.
    let closed = bed.event("pull_request.closed.json", 2, "pa2");
    ok(&bed.dhow(&["preview", "auto", "-P"], "pa2", Some(&closed)));
    for index in HOSTS {
        assert!(
            preview_containers(index, 2).trim().is_empty(),
            "host {index}"
        );
        let leftovers = on_host(
            index,
            &format!(
                "ls -d .kamal/apps/{SERVICE}-pr-2 .kamal/lock-{SERVICE}-pr-2 2>/dev/null; \
                 docker images -q --filter label=service={SERVICE}-pr-2; \
                 docker volume ls -q | grep -- -pr-2 ; \
                 docker exec kamal-proxy kamal-proxy list 2>/dev/null | grep -- -pr-2; true"
            ),
        );
        assert!(leftovers.trim().is_empty(), "host {index}: {leftovers}");
    }
    let comments = bed.comments(2);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("— removed"), "{}", comments[0]);
    let deployments: Vec<Value> = bed
        .fake
        .deployments()
        .into_iter()
        .filter(|d| d["environment"] == "pr-2")
        .collect();
    assert_eq!(
        deployments.len(),
        2,
        "one per run (opened, synchronize): {deployments:?}"
    );
    for d in &deployments {
        assert_eq!(d["transient_environment"], true, "{d}");
        assert_eq!(d["production_environment"], false, "{d}");
        let states = bed.fake.status_states(d["id"].as_u64().expect("id"));
        assert!(states.contains(&"success".to_owned()), "{states:?}");
        assert_eq!(
            states.last().map(String::as_str),
            Some("inactive"),
            "{states:?}"
        );
    }
    // The preview's own volume went with it; production's stays.
    for index in HOSTS {
        assert_eq!(
            on_host(
                index,
                &format!("docker volume ls -q --filter name=^{SERVICE}-data")
            )
            .trim(),
            format!("{SERVICE}-data"),
            "host {index}"
        );
    }

    // Production was never touched: its container, and its latest tag still on v1.
    let image_id = |tag: &str| {
        on_host(
            HOSTS[0],
            &format!("docker image inspect --format '{{{{.Id}}}}' {registry}/{SERVICE}:{tag}"),
        )
    };
    assert_eq!(image_id("latest"), image_id("v1"));
    assert_eq!(version_at(&json, HOSTS[0], "shop.test"), "v1");
    assert_eq!(version_at(&json, HOSTS[1], "shop.test"), "v1");
    assert_eq!(
        on_host(
            HOSTS[0],
            &format!("docker ps -q --filter name=^{SERVICE}-web-v1$")
        ),
        production_id
    );
    bed.fake.assert_not_sent(TOKEN);
    bed.fake.assert_not_sent(CANARY);
    for pr in [2, 3, 4, 5] {
        for body in bed.comments(pr) {
            assert!(!body.contains(CANARY) && !body.contains(TOKEN), "{body}");
        }
    }

    bed.fake.assert_no_violations();
    drop(bed.runtime);
}
