//! Context parsing against every event payload in shared/github-events.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dhow_github::context::{
    ActionsContext, ContextError, Event, event_path, in_actions, parse_event, shell_word,
};

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/github-events")
}

fn payload(file: &str) -> String {
    let path = events_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

const MERGE_SHA: &str = "1111111111111111111111111111111111111111";

fn env(event: &str, repo: &str) -> BTreeMap<String, String> {
    [
        ("GITHUB_ACTIONS", "true"),
        ("CI", "true"),
        ("GITHUB_REPOSITORY", repo),
        ("GITHUB_SHA", MERGE_SHA),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_EVENT_NAME", event),
        (
            "GITHUB_EVENT_PATH",
            "/home/runner/work/_temp/_github_workflow/event.json",
        ),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_NUMBER", "17"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", "https://api.github.com"),
        ("GITHUB_WORKFLOW", "Deploy"),
        (
            "GITHUB_WORKFLOW_REF",
            &format!("{repo}/.github/workflows/deploy.yml@refs/heads/main"),
        ),
        ("GITHUB_JOB", "deploy"),
        ("GITHUB_ACTOR", "octocat"),
        ("RUNNER_OS", "Linux"),
        ("RUNNER_ARCH", "X64"),
        ("RUNNER_NAME", "GitHub Actions 2"),
        ("RUNNER_ENVIRONMENT", "github-hosted"),
        ("RUNNER_TEMP", "/home/runner/work/_temp"),
        (
            "GITHUB_OUTPUT",
            "/home/runner/work/_temp/_runner_file_commands/set_output_x",
        ),
        (
            "GITHUB_STEP_SUMMARY",
            "/home/runner/work/_temp/_runner_file_commands/step_summary_x",
        ),
        (
            "GITHUB_ENV",
            "/home/runner/work/_temp/_runner_file_commands/set_env_x",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn context(file: &str, event: &str, repo: &str) -> ActionsContext {
    ActionsContext::from_env(&env(event, repo), Some(&payload(file))).expect("context parses")
}

#[test]
fn every_event_file_is_covered_and_parses() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "json")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 13, "{files:?}");
    for file in &files {
        let event = file.split('.').next().expect("event name");
        let parsed = parse_event(event, &payload(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            !matches!(parsed, Event::Other(_)),
            "{file} fell through to Other"
        );
    }
}

#[test]
fn push_uses_github_sha_and_builds_urls() {
    let ctx = context("push.json", "push", "ailisp/gcbapp-buildconfig-example");
    let Event::Push(push) = &ctx.event else {
        panic!("not a push: {:?}", ctx.event)
    };
    assert_eq!(push.git_ref, "refs/heads/master");
    assert_eq!(push.after, "a21683865c088b5fe1906cf6552d15a285a4986d");
    assert_eq!(push.commit_count, 5);
    assert!(!push.created && !push.deleted && !push.forced);
    assert_eq!(
        push.head_commit.as_ref().map(|c| c.id.as_str()),
        Some("a21683865c088b5fe1906cf6552d15a285a4986d")
    );
    assert_eq!(ctx.default_version(), MERGE_SHA);
    assert_eq!(ctx.deploy_sha(), MERGE_SHA);
    assert!(!ctx.is_fork_pull_request());
    assert_eq!(
        ctx.run_url(),
        "https://github.com/ailisp/gcbapp-buildconfig-example/actions/runs/4242"
    );
    assert_eq!(
        ctx.attempt_url(),
        "https://github.com/ailisp/gcbapp-buildconfig-example/actions/runs/4242/attempts/2"
    );
    assert_eq!(ctx.log_url(), ctx.attempt_url());
    assert_eq!(
        ctx.workflow_path().as_deref(),
        Some(".github/workflows/deploy.yml")
    );
    assert_eq!(ctx.workflow_file().as_deref(), Some("deploy.yml"));
    assert_eq!(
        ctx.workflow_page_url("deploy.yml"),
        "https://github.com/ailisp/gcbapp-buildconfig-example/actions/workflows/deploy.yml"
    );
    assert_eq!(ctx.dispatch_ref().as_deref(), Some("main"));
    assert_eq!(ctx.run_number, Some(17));
    assert_eq!(ctx.runner.os.as_deref(), Some("Linux"));
    assert!(!ctx.runner.debug);
    assert_eq!(
        ctx.files.step_summary.as_deref(),
        Some(std::path::Path::new(
            "/home/runner/work/_temp/_runner_file_commands/step_summary_x"
        ))
    );
}

#[test]
fn push_new_branch_and_tag_deletion() {
    let ctx = context("push.new-branch.json", "push", "Codertocat/Hello-World");
    let Event::Push(push) = &ctx.event else {
        panic!()
    };
    assert!(push.created);
    assert_eq!(push.before, "0000000000000000000000000000000000000000");
    assert_eq!(push.commit_count, 1);

    let ctx = context("push.tag-deleted.json", "push", "Codertocat/Hello-World");
    let Event::Push(push) = &ctx.event else {
        panic!()
    };
    assert!(push.deleted);
    assert_eq!(push.git_ref, "refs/tags/simple-tag");
    assert!(push.head_commit.is_none());
    assert_eq!(push.commit_count, 0);
}

#[test]
fn pull_request_version_is_the_head_sha_not_the_merge_commit() {
    for file in [
        "pull_request.opened.json",
        "pull_request.synchronize.json",
        "pull_request.reopened.json",
        "pull_request.closed.json",
    ] {
        let ctx = context(file, "pull_request", "Codertocat/Hello-World");
        let pr = ctx.pull_request().expect("pull request");
        assert_eq!(pr.number, 2, "{file}");
        assert_eq!(
            pr.head_sha, "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "{file}"
        );
        assert_eq!(pr.head_ref, "changes");
        assert_eq!(pr.base_ref, "master");
        assert_eq!(pr.base_sha, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
        assert_eq!(pr.labels, vec!["bug".to_owned()]);
        assert_eq!(pr.author.as_deref(), Some("Codertocat"));
        assert!(!pr.from_fork, "{file}");
        assert_eq!(
            ctx.default_version(),
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
        );
        assert_eq!(ctx.deploy_sha(), "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
        assert_ne!(ctx.default_version(), ctx.sha);
        assert_eq!(ctx.dispatch_ref().as_deref(), Some("master"));
    }
    let actions: Vec<String> = [
        "pull_request.opened.json",
        "pull_request.synchronize.json",
        "pull_request.reopened.json",
        "pull_request.closed.json",
    ]
    .iter()
    .map(|f| {
        context(f, "pull_request", "Codertocat/Hello-World")
            .pull_request()
            .expect("pr")
            .action
            .clone()
    })
    .collect();
    assert_eq!(actions, ["opened", "synchronize", "reopened", "closed"]);
}

#[test]
fn closed_pull_requests_report_merged_or_not() {
    let ctx = context(
        "pull_request.closed.json",
        "pull_request",
        "Codertocat/Hello-World",
    );
    let pr = ctx.pull_request().expect("pr");
    assert_eq!(pr.state, "closed");
    assert!(!pr.merged);

    let ctx = context(
        "pull_request.closed.merged.json",
        "pull_request",
        "sish8075/statistics-source",
    );
    let pr = ctx.pull_request().expect("pr");
    assert_eq!(pr.number, 17);
    assert!(pr.merged);
    assert_eq!(
        pr.merge_commit_sha.as_deref(),
        Some("18936fb4b760b985e35fae9aa953a349703a4c53")
    );
    assert_eq!(pr.head_sha, "f359e26935437fa800e73cd5e4cf69b1c26c5b5c");
    assert!(!pr.from_fork);
}

#[test]
fn fork_pull_request_is_detected() {
    let ctx = context(
        "pull_request.synchronize.from-fork.json",
        "pull_request",
        "ailisp/gcbapp-buildconfig-example",
    );
    let pr = ctx.pull_request().expect("pr");
    assert!(pr.from_fork);
    assert!(ctx.is_fork_pull_request());
    assert_eq!(
        pr.head_repo.as_deref(),
        Some("byao1276/gcbapp-buildconfig-example")
    );
    assert_eq!(pr.base_repo, "ailisp/gcbapp-buildconfig-example");
    assert_eq!(
        ctx.default_version(),
        "7d1b24db3fde2747f9dadfb0f8abf0c8e6f40cad"
    );
}

#[test]
fn deleted_fork_counts_as_fork() {
    let text = payload("pull_request.opened.json");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["pull_request"]["head"]["repo"] = serde_json::Value::Null;
    let event = parse_event("pull_request_target", &value.to_string()).expect("parses");
    let Event::PullRequest(pr) = event else {
        panic!()
    };
    assert!(pr.from_fork);
    assert!(pr.head_repo.is_none());
}

#[test]
fn workflow_dispatch_inputs_are_strings() {
    let ctx = context(
        "workflow_dispatch.json",
        "workflow_dispatch",
        "octo-org/octo-repo",
    );
    let Event::WorkflowDispatch(d) = &ctx.event else {
        panic!()
    };
    assert_eq!(
        d.inputs.get("name").map(String::as_str),
        Some("Mona the Octocat")
    );
    assert_eq!(d.git_ref, "refs/heads/master");
    assert_eq!(
        d.workflow.as_deref(),
        Some(".github/workflows/hello-world-workflow.yml")
    );
    assert_eq!(ctx.default_version(), MERGE_SHA);

    let typed = r#"{"ref":"refs/heads/main","inputs":{"dry":true,"n":3,"v":"abc"}}"#;
    let Event::WorkflowDispatch(d) = parse_event("workflow_dispatch", typed).expect("parses")
    else {
        panic!()
    };
    assert_eq!(d.inputs.get("dry").map(String::as_str), Some("true"));
    assert_eq!(d.inputs.get("n").map(String::as_str), Some("3"));
}

#[test]
fn deployment_and_deployment_status_events() {
    let ctx = context("deployment.json", "deployment", "Codertocat/Hello-World");
    let Event::Deployment(d) = &ctx.event else {
        panic!()
    };
    assert_eq!(d.id, 145_988_746);
    assert_eq!(d.task, "deploy");
    assert_eq!(d.environment, "production");
    assert_eq!(ctx.deploy_sha(), "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");

    let ctx = context(
        "deployment_status.json",
        "deployment_status",
        "Codertocat/Hello-World",
    );
    let Event::DeploymentStatus(s) = &ctx.event else {
        panic!()
    };
    assert_eq!(s.state, "success");
    assert_eq!(s.environment, "production");
    assert_eq!(s.log_url, None);
    assert_eq!(s.workflow_run_id, None);

    let ctx = context(
        "deployment_status.in_progress.from-actions.json",
        "deployment_status",
        "Codertocat/Hello-World",
    );
    let Event::DeploymentStatus(s) = &ctx.event else {
        panic!()
    };
    assert_eq!(s.state, "in_progress");
    assert_eq!(s.environment, "github-pages");
    assert_eq!(
        s.log_url.as_deref(),
        Some("https://github.com/CorsixTH/CorsixTH/runs/4687056418?check_suite_focus=true")
    );
    assert_eq!(s.workflow_run_id, Some(289_782_451));
    assert_eq!(s.deployment.production_environment, Some(false));
}

#[test]
fn job_url_and_ghes_urls() {
    let mut vars = env("push", "acme/shop");
    vars.insert(
        "GITHUB_SERVER_URL".into(),
        "https://ghe.example.com/".into(),
    );
    vars.insert(
        "GITHUB_API_URL".into(),
        "https://ghe.example.com/api/v3".into(),
    );
    vars.insert("DHOW_JOB_CHECK_RUN_ID".into(), "987654".into());
    vars.insert("RUNNER_DEBUG".into(), "1".into());
    let ctx = ActionsContext::from_env(&vars, None).expect("parses");
    assert_eq!(ctx.event, Event::Other("push".into()));
    assert_eq!(ctx.api_url, "https://ghe.example.com/api/v3");
    assert_eq!(
        ctx.log_url(),
        "https://ghe.example.com/acme/shop/actions/runs/4242/job/987654"
    );
    assert_eq!(
        ctx.commit_url("abc"),
        "https://ghe.example.com/acme/shop/commit/abc"
    );
    assert!(ctx.runner.debug);
}

#[test]
fn missing_and_invalid_variables_are_named() {
    let mut vars = env("push", "acme/shop");
    assert!(in_actions(&vars));
    assert_eq!(
        event_path(&vars).as_deref(),
        Some(std::path::Path::new(
            "/home/runner/work/_temp/_github_workflow/event.json"
        ))
    );
    vars.remove("GITHUB_RUN_ID");
    assert_eq!(
        ActionsContext::from_env(&vars, None),
        Err(ContextError::Missing("GITHUB_RUN_ID"))
    );
    let mut vars = env("push", "acme");
    vars.remove("GITHUB_ACTIONS");
    assert!(!in_actions(&vars));
    let err = ActionsContext::from_env(&vars, None).expect_err("bad repository");
    assert!(err.to_string().contains("GITHUB_REPOSITORY"), "{err}");
    let mut vars = env("push", "acme/shop");
    vars.insert("GITHUB_RUN_ATTEMPT".into(), "two".into());
    let err = ActionsContext::from_env(&vars, None).expect_err("bad attempt");
    assert!(err.to_string().contains("GITHUB_RUN_ATTEMPT"), "{err}");
    let err = ActionsContext::from_env(&env("pull_request", "acme/shop"), Some("{\"action\":1}"))
        .expect_err("bad payload");
    assert!(matches!(err, ContextError::Event { .. }), "{err}");
}

#[test]
fn rollback_hint_links_the_dispatch_page_and_gives_the_command() {
    let ctx = context("push.json", "push", "acme/shop");
    let hint = ctx.rollback_hint("rollback.yml", "a21683865c08");
    assert_eq!(
        hint.page_url,
        "https://github.com/acme/shop/actions/workflows/rollback.yml"
    );
    assert_eq!(
        hint.command,
        "gh workflow run rollback.yml --repo acme/shop --ref main -f version=a21683865c08"
    );
    let ctx = context(
        "pull_request.opened.json",
        "pull_request",
        "Codertocat/Hello-World",
    );
    let hint = ctx.rollback_hint("deploy.yml", "v1.2; rm -rf /");
    assert_eq!(
        hint.command,
        "gh workflow run deploy.yml --repo Codertocat/Hello-World --ref master -f version='v1.2; rm -rf /'"
    );
    assert_eq!(shell_word("it's"), "'it'\\''s'");
    assert_eq!(shell_word(""), "''");
}
