//! An Actions run simulated end to end on the GitHub side: context from an env map and an event
//! payload from shared/github-events, the client pointed at the fake API through
//! `GITHUB_API_URL`, masked log, outputs and summary in temporary files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dhow_core::Secret;
use dhow_github::comments::sticky_marker;
use dhow_github::context::ActionsContext;
use dhow_github::deployments::{DeploymentState, NewDeployment, NewStatus, ReleaseRecord};
use dhow_github::workflow::{Annotation, EnvFile, Summary, WorkflowLog, md_link};
use dhow_github::{GitHub, RetryPolicy};
use dhow_test_support::github::FakeGitHub;

const TOKEN: &str = "ghs_flowTOKEN0123456789";
const CANARY: &str = "canary-db-password-42";
const HEAD_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const MERGE_SHA: &str = "3333333333333333333333333333333333333333";

fn event(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/github-events")
        .join(file);
    std::fs::read_to_string(path).expect("event file")
}

fn actions_env(
    api_url: &str,
    output: &std::path::Path,
    summary_path: &std::path::Path,
) -> BTreeMap<String, String> {
    [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "Codertocat/Hello-World"),
        ("GITHUB_SHA", MERGE_SHA),
        ("GITHUB_REF", "refs/pull/2/merge"),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_RUN_ID", "555"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", api_url),
        (
            "GITHUB_WORKFLOW_REF",
            "Codertocat/Hello-World/.github/workflows/preview.yml@refs/pull/2/merge",
        ),
        ("DHOW_JOB_CHECK_RUN_ID", "777"),
        ("GITHUB_OUTPUT", output.to_str().expect("utf-8")),
        ("GITHUB_STEP_SUMMARY", summary_path.to_str().expect("utf-8")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The reporting steps of a preview deploy: a transient deployment on the head SHA and its
/// statuses, inside a log group.
async fn deploy_preview(
    gh: &GitHub,
    ctx: &ActionsContext,
    log: &mut WorkflowLog<Vec<u8>>,
    environment: &str,
    url: &str,
) -> u64 {
    let record = ReleaseRecord {
        digest: Some("sha256:feed".into()),
        ..ReleaseRecord::new(ctx.default_version())
    };
    let new = NewDeployment {
        task: "deploy:preview".into(),
        transient_environment: true,
        ..NewDeployment::new(ctx.deploy_sha(), environment).with_record(&record)
    };
    log.group(&format!("deploy preview {environment}"))
        .expect("group");
    log.info(&format!("using password {CANARY}")).expect("info");
    let deployment = gh.create_deployment(&new).await.expect("deployment");
    for state in [
        DeploymentState::Queued,
        DeploymentState::InProgress,
        DeploymentState::Success,
    ] {
        let mut status = NewStatus::new(state).log_url(ctx.log_url());
        if state == DeploymentState::Success {
            status = status.environment_url(url);
        }
        gh.create_deployment_status(deployment.id, &status)
            .await
            .expect("status");
    }
    log.end_group().expect("endgroup");
    deployment.id
}

#[tokio::test]
async fn pull_request_preview_reports_to_github() {
    let fake = FakeGitHub::start("Codertocat", "Hello-World", Some(TOKEN)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("output");
    let summary_path = dir.path().join("summary.md");
    let env = actions_env(&fake.api_url(), &output, &summary_path);
    let ctx = ActionsContext::from_env(&env, Some(&event("pull_request.synchronize.json")))
        .expect("context");
    let pr = ctx.pull_request().expect("pull request").clone();
    assert!(!ctx.is_fork_pull_request());

    let mut log = WorkflowLog::new(Vec::new(), [TOKEN, CANARY]).expect("log");
    let gh = GitHub::new(
        &ctx.api_url,
        Secret::new(TOKEN.to_owned()),
        ctx.repository.clone(),
    )
    .expect("client")
    .with_retry(RetryPolicy {
        base_delay: std::time::Duration::from_millis(1),
        ..RetryPolicy::default()
    });

    let environment = format!("pr-{}", pr.number);
    let url = format!("https://pr-{}.example.com", pr.number);
    let deployment_id = deploy_preview(&gh, &ctx, &mut log, &environment, &url).await;
    let comment = format!(
        "Preview of `{}` is live at {url} — {}",
        &pr.head_sha[..7],
        md_link("run log", &ctx.run_url())
    );
    gh.upsert_sticky_comment(pr.number, "preview", &comment)
        .await
        .expect("comment");
    log.notice(&format!("preview live at {url}"), &Annotation::default())
        .expect("notice");

    EnvFile::new(ctx.files.output.clone().expect("GITHUB_OUTPUT"))
        .set_all(&[
            ("deployment-id", &deployment_id.to_string()),
            ("url", &url),
            ("version", ctx.default_version()),
        ])
        .expect("outputs");
    let mut summary = Summary::new();
    summary.heading(2, &format!("Preview {environment}")).table(
        &["Version", "URL"],
        &[vec![ctx.default_version(), url.as_str()]],
    );
    dhow_github::workflow::append_summary(
        ctx.files.step_summary.as_deref().expect("summary path"),
        &summary,
    )
    .expect("summary");

    // The deployment is on the PR head, not the merge commit, with the job as log.
    let created = &fake.deployments()[0];
    assert_eq!(created["ref"], HEAD_SHA);
    assert_eq!(created["environment"], "pr-2");
    assert_eq!(created["transient_environment"], true);
    assert_eq!(created["payload"]["version"], HEAD_SHA);
    assert_eq!(
        fake.status_states(deployment_id),
        ["queued", "in_progress", "success"]
    );
    let statuses = fake.statuses(deployment_id);
    assert_eq!(
        statuses[0]["log_url"],
        "https://github.com/Codertocat/Hello-World/actions/runs/555/job/777"
    );
    assert_eq!(statuses[2]["environment_url"], url);
    let comments = fake.comment_bodies(2);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].starts_with(&sticky_marker("preview")));
    assert!(comments[0].contains("https://github.com/Codertocat/Hello-World/actions/runs/555"));

    let outputs = std::fs::read_to_string(&output).expect("outputs");
    assert!(
        outputs.contains("\nhttps://pr-2.example.com\n"),
        "{outputs}"
    );
    assert!(outputs.contains(&format!("\n{HEAD_SHA}\n")), "{outputs}");
    let summary_text = std::fs::read_to_string(&summary_path).expect("summary");
    assert!(
        summary_text
            .contains("| ec26c3e57ca3a959ca5aad62de7213c562f8c821 | https://pr-2.example.com |")
    );

    let stdout = String::from_utf8(log.finish().expect("finish")).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            format!("::add-mask::{TOKEN}"),
            format!("::add-mask::{CANARY}")
        ]
    );
    let after_masks = lines[2..].join("\n");
    for secret in [TOKEN, CANARY] {
        assert!(!after_masks.contains(secret), "{after_masks}");
        assert!(!outputs.contains(secret));
        assert!(!summary_text.contains(secret));
        fake.assert_not_sent(secret);
    }
    assert!(after_masks.contains("using password ***"));
    fake.assert_no_violations();
}
