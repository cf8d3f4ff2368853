//! The client against the fake GitHub API, which validates every request and response against
//! the API description (openapi-subset.json).

use std::time::Duration;

use dhow_core::Secret;
use dhow_github::client::{ApiError, GitHub, RetryPolicy};
use dhow_github::comments::{StickyOutcome, sticky_marker};
use dhow_github::context::Repository;
use dhow_github::deployments::{
    DeploymentFilter, DeploymentState, NewDeployment, NewStatus, ReleaseRecord,
};
use dhow_test_support::github::{FakeGitHub, Fault, JobSeed, PullSeed, RunSeed};
use http::Method;
use serde_json::json;

const TOKEN: &str = "ghs_TOKENcanary0123456789abcdefABCDEF";
const CANARY: &str = "s3cret-canary-value";
const SHA1: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const SHA2: &str = "a21683865c088b5fe1906cf6552d15a285a4986d";

async fn setup() -> (FakeGitHub, GitHub) {
    let fake = FakeGitHub::start("acme", "shop", Some(TOKEN)).await;
    let gh = GitHub::new(
        &fake.api_url(),
        Secret::new(TOKEN.to_owned()),
        Repository::parse("acme/shop").expect("repo"),
    )
    .expect("client")
    .with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(2),
    });
    (fake, gh)
}

fn record(version: &str, digest: &str) -> ReleaseRecord {
    ReleaseRecord {
        image: Some("ghcr.io/acme/shop".into()),
        digest: Some(digest.into()),
        destination: Some("staging".into()),
        hosts: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        roles: vec!["web".into()],
        config_hash: Some("cfg-1".into()),
        ..ReleaseRecord::new(version)
    }
}

async fn deploy(gh: &GitHub, sha: &str, env: &str, digest: &str, end: DeploymentState) -> u64 {
    let new = NewDeployment {
        description: Some(format!("dhow deploy {sha}")),
        ..NewDeployment::new(sha, env).with_record(&record(sha, digest))
    };
    let deployment = gh.create_deployment(&new).await.expect("create deployment");
    for state in [DeploymentState::Queued, DeploymentState::InProgress, end] {
        let mut status = NewStatus::new(state)
            .log_url("https://github.com/acme/shop/actions/runs/42/job/7")
            .description(format!("{} {sha}", state.as_str()));
        if state == DeploymentState::Success {
            status = status.environment_url(format!("https://{env}.example.com"));
        }
        let posted = gh
            .create_deployment_status(deployment.id, &status)
            .await
            .expect("status");
        assert_eq!(posted.state, state.as_str());
    }
    deployment.id
}

#[tokio::test]
async fn deployment_lifecycle_and_previous_success_lookup() {
    let (fake, gh) = setup().await;
    let first = deploy(&gh, SHA1, "staging", "sha256:aaa", DeploymentState::Success).await;
    assert_eq!(
        fake.status_states(first),
        ["queued", "in_progress", "success"]
    );
    let statuses = fake.statuses(first);
    assert_eq!(
        statuses[2]["environment_url"],
        "https://staging.example.com"
    );
    assert_eq!(
        statuses[2]["log_url"],
        "https://github.com/acme/shop/actions/runs/42/job/7"
    );
    assert_eq!(statuses[2]["target_url"], statuses[2]["log_url"]);

    let created = &fake.deployments()[0];
    assert_eq!(created["ref"], SHA1);
    assert_eq!(created["sha"], SHA1);
    assert_eq!(created["environment"], "staging");
    assert_eq!(created["production_environment"], false);
    assert_eq!(created["transient_environment"], false);
    assert_eq!(created["payload"]["digest"], "sha256:aaa");
    assert_eq!(created["payload"]["tool"], "dhow");

    let second = deploy(&gh, SHA2, "staging", "sha256:bbb", DeploymentState::Success).await;
    // GitHub's auto_inactive retired the first (non-production) deployment.
    assert_eq!(
        fake.status_states(first),
        ["queued", "in_progress", "success", "inactive"]
    );
    let failed = deploy(&gh, SHA1, "staging", "sha256:ccc", DeploymentState::Failure).await;
    let _other_env = deploy(
        &gh,
        SHA2,
        "production",
        "sha256:ddd",
        DeploymentState::Success,
    )
    .await;

    let listed = gh
        .list_deployments(&DeploymentFilter::environment("staging"))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [failed, second, first],
        "newest first, one environment"
    );
    let statuses = gh.list_deployment_statuses(first).await.expect("statuses");
    assert_eq!(
        statuses
            .iter()
            .map(|s| s.state.as_str())
            .collect::<Vec<_>>(),
        ["inactive", "success", "in_progress", "queued"]
    );

    let previous = gh
        .previous_successful_deployment("staging", Some(failed))
        .await
        .expect("lookup")
        .expect("a previous success");
    assert_eq!(previous.deployment.id, second);
    let rec = previous.deployment.record().expect("dhow record");
    assert_eq!(rec.digest.as_deref(), Some("sha256:bbb"));
    assert_eq!(rec.hosts, ["10.0.0.1", "10.0.0.2"]);

    // Excluding the latest success finds the one before it, although it is inactive now.
    let before = gh
        .previous_successful_deployment("staging", Some(second))
        .await
        .expect("lookup")
        .expect("older success");
    assert_eq!(before.deployment.id, first);
    assert_eq!(
        before.deployment.record().and_then(|r| r.digest).as_deref(),
        Some("sha256:aaa")
    );
    assert!(
        gh.previous_successful_deployment("review", None)
            .await
            .expect("lookup")
            .is_none(),
        "no deployments in that environment"
    );

    fake.assert_no_violations();
    fake.assert_not_sent(TOKEN);
}

#[tokio::test]
async fn every_request_carries_version_token_and_accept_headers() {
    let (fake, gh) = setup().await;
    deploy(
        &gh,
        SHA1,
        "production",
        "sha256:aaa",
        DeploymentState::Success,
    )
    .await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    for request in &requests {
        let values = |name: &str| -> Vec<&str> {
            request
                .headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(values("x-github-api-version"), ["2022-11-28"]);
        assert_eq!(
            values("authorization"),
            [format!("Bearer {TOKEN}").as_str()]
        );
        assert_eq!(values("accept"), ["application/vnd.github+json"]);
    }
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("json");
    assert_eq!(body["auto_merge"], false);
    assert_eq!(body["required_contexts"], json!([]));
    assert_eq!(body["production_environment"], true);
    assert_eq!(body["task"], "deploy");
    fake.assert_no_violations();
}

#[tokio::test]
async fn sticky_comment_is_created_once_then_updated_never_duplicated() {
    let (fake, gh) = setup().await;
    // More than one page of other people's comments first.
    for i in 0..120 {
        fake.add_comment(7, &format!("comment {i}"));
    }
    let first = gh
        .upsert_sticky_comment(7, "preview", "Preview: deploying `abc`")
        .await
        .expect("create");
    let StickyOutcome::Created(id) = first else {
        panic!("{first:?}")
    };
    let again = gh
        .upsert_sticky_comment(7, "preview", "Preview: deploying `abc`")
        .await
        .expect("unchanged");
    assert_eq!(again, StickyOutcome::Unchanged(id));
    let updated = gh
        .upsert_sticky_comment(7, "preview", "Preview: live at https://pr-7.example.com")
        .await
        .expect("update");
    assert_eq!(updated, StickyOutcome::Updated(id));
    let marker = sticky_marker("preview");
    let ours: Vec<String> = fake
        .comment_bodies(7)
        .into_iter()
        .filter(|b| b.contains(&marker))
        .collect();
    assert_eq!(
        ours,
        [format!(
            "{marker}\nPreview: live at https://pr-7.example.com"
        )]
    );
    assert_eq!(fake.comment_bodies(7).len(), 121);

    // Another key is another comment; another PR is untouched.
    let badge = gh
        .upsert_sticky_comment(7, "badge", "b")
        .await
        .expect("other key");
    assert!(matches!(badge, StickyOutcome::Created(other) if other != id));
    assert!(fake.comment_bodies(8).is_empty());

    let ops = fake.operation_log();
    assert_eq!(
        ops.iter().filter(|o| *o == "issues/create-comment").count(),
        2
    );
    assert_eq!(
        ops.iter().filter(|o| *o == "issues/update-comment").count(),
        1
    );
    // Pagination was followed: two pages per lookup.
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.operation_id.as_deref() == Some("issues/list-comments"))
        .map(|r| r.query)
        .collect();
    assert_eq!(lists[..2], ["per_page=100&page=1", "per_page=100&page=2"]);

    gh.delete_issue_comment(id).await.expect("delete");
    assert!(
        gh.find_sticky_comment(7, "preview")
            .await
            .expect("find")
            .is_none()
    );
    fake.assert_no_violations();
    fake.assert_not_sent(TOKEN);
}

#[tokio::test]
async fn bad_gateway_then_success_is_retried() {
    let (fake, gh) = setup().await;
    fake.push_fault(Fault::bad_gateway("repos/create-deployment"));
    let deployment = gh
        .create_deployment(&NewDeployment::new(SHA1, "production"))
        .await
        .expect("retried");
    assert_eq!(fake.deployments().len(), 1);
    assert_eq!(fake.deployments()[0]["id"], deployment.id);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 201]);
    fake.assert_no_violations();
}

#[tokio::test]
async fn secondary_and_primary_rate_limits_are_waited_out() {
    let (fake, gh) = setup().await;
    fake.push_fault(Fault::secondary_rate_limit("issues/create-comment", 0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    fake.push_fault(Fault::rate_limited(
        "issues/create-comment",
        now.saturating_sub(5),
    ));
    gh.create_issue_comment(3, "hello")
        .await
        .expect("retried twice");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 429, 201]);
    assert_eq!(fake.comment_bodies(3), ["hello"]);
    fake.assert_no_violations();
}

#[tokio::test]
async fn a_rate_limit_that_resets_too_late_fails_at_once() {
    let (fake, gh) = setup().await;
    fake.push_fault(Fault::secondary_rate_limit("repos/get-deployment", 3600));
    let err = gh.get_deployment(1).await.expect_err("not retried");
    assert_eq!(err.status(), Some(403));
    assert!(
        err.to_string()
            .contains("GET /repos/acme/shop/deployments/1"),
        "{err}"
    );
    assert!(err.to_string().contains("secondary rate limit"), "{err}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (fake, gh) = setup().await;
    for _ in 0..5 {
        fake.push_fault(Fault::bad_gateway("pulls/get"));
    }
    let err = gh.get_pull_request(1).await.expect_err("gives up");
    assert_eq!(err.status(), Some(502));
    assert_eq!(fake.requests().len(), 3, "max_attempts is 3");
}

#[tokio::test]
async fn errors_name_the_endpoint_and_never_carry_the_token() {
    let (fake, gh) = setup().await;
    fake.push_fault(Fault {
        operation_id: Some("repos/create-deployment-status".into()),
        status: 403,
        headers: vec![(
            "x-accepted-github-permissions".into(),
            "deployments=write".into(),
        )],
        body: json!({"message": format!("Resource not accessible by integration (token {TOKEN})")}),
    });
    let id = gh
        .create_deployment(&NewDeployment::new(SHA1, "production"))
        .await
        .expect("deployment")
        .id;
    let err = gh
        .create_deployment_status(id, &NewStatus::new(DeploymentState::InProgress))
        .await
        .expect_err("forbidden");
    assert!(err.is_forbidden_for_integration(), "{err}");
    let ApiError::Status {
        endpoint,
        status,
        body,
        accepted_permissions,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        endpoint,
        &format!("POST /repos/acme/shop/deployments/{id}/statuses")
    );
    assert_eq!(*status, 403);
    assert_eq!(accepted_permissions.as_deref(), Some("deployments=write"));
    assert!(body.contains("[REDACTED]"), "{body}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    let debug = format!("{gh:?}");
    assert!(!debug.contains(TOKEN), "client Debug leaks the token");
}

#[tokio::test]
async fn schema_invalid_requests_are_caught_by_the_fake() {
    let (fake, gh) = setup().await;
    let id = gh
        .create_deployment(&NewDeployment::new(SHA1, "production"))
        .await
        .expect("deployment")
        .id;
    fake.assert_no_violations();

    let path = format!("/repos/acme/shop/deployments/{id}/statuses");
    let response = gh
        .send(
            Method::POST,
            &path,
            Some(&json!({"state": "done", "log_url": 5})),
        )
        .await
        .expect("answered");
    assert_eq!(response.status, 422);
    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations
            .iter()
            .any(|v| v.contains("body.state: \"done\" is not one of")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("body.log_url: expected string, got number")),
        "{violations:?}"
    );

    for (method, uri, body) in [
        (
            Method::POST,
            "/repos/acme/shop/deployments".to_owned(),
            Some(json!({"environment": "x"})),
        ),
        (
            Method::GET,
            "/repos/acme/shop/deployments?colour=red".to_owned(),
            None,
        ),
        (
            Method::GET,
            "/repos/acme/shop/deployments?per_page=500".to_owned(),
            None,
        ),
        (
            Method::GET,
            "/repos/acme/shop/deployments/abc".to_owned(),
            None,
        ),
        (
            Method::PUT,
            "/repos/acme/shop/deployments".to_owned(),
            Some(json!({})),
        ),
        (Method::GET, "/repos/acme/shop/nowhere".to_owned(), None),
        (
            Method::DELETE,
            "/repos/acme/shop/issues/comments/3".to_owned(),
            Some(json!({"x": 1})),
        ),
    ] {
        let before = fake.violations().len();
        gh.send(method.clone(), &uri, body.as_ref())
            .await
            .expect("answered");
        let after = fake.violations();
        assert!(after.len() > before, "{method} {uri} was not flagged");
    }
    let all = fake.take_violations().join("\n");
    for expected in [
        "required property `ref` is missing",
        "query parameter `colour` is not in the description",
        "per_page: 500 is outside 1..=100",
        "path.deployment_id: expected integer",
        "PUT /repos/acme/shop/deployments: method not in the description",
        "no operation in the description matches",
        "this operation takes no request body",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
}

#[tokio::test]
async fn github_defaults_would_break_deploys_and_the_fake_models_them() {
    let (fake, gh) = setup().await;
    let path = "/repos/acme/shop/deployments";
    let merged = gh
        .send(
            Method::POST,
            path,
            Some(&json!({"ref": "topic", "required_contexts": []})),
        )
        .await
        .expect("answered");
    assert_eq!(merged.status, 202);
    let conflict = gh
        .send(
            Method::POST,
            path,
            Some(&json!({"ref": "topic", "auto_merge": false})),
        )
        .await
        .expect("answered");
    assert_eq!(conflict.status, 409);
    assert!(fake.deployments().is_empty());
    let long = "x".repeat(141);
    let id = gh
        .create_deployment(&NewDeployment::new(SHA1, "qa"))
        .await
        .expect("ok")
        .id;
    let raw = gh
        .send(
            Method::POST,
            &format!("{path}/{id}/statuses"),
            Some(&json!({"state": "success", "description": long})),
        )
        .await
        .expect("answered");
    assert_eq!(raw.status, 422, "GitHub caps descriptions at 140");
    // The typed call cuts descriptions itself.
    let status = gh
        .create_deployment_status(
            id,
            &NewStatus::new(DeploymentState::Success).description(long),
        )
        .await
        .expect("cut to 140");
    assert_eq!(status.description.map(|d| d.chars().count()), Some(140));
    fake.assert_no_violations();
}

#[tokio::test]
async fn adopt_deactivate_and_delete() {
    let (fake, gh) = setup().await;
    // What Actions creates for a job's `environment:`: a deployment with in_progress.
    let actions = gh
        .create_deployment(&NewDeployment::new(SHA1, "production"))
        .await
        .expect("d");
    gh.create_deployment_status(actions.id, &NewStatus::new(DeploymentState::InProgress))
        .await
        .expect("s");
    let adopted = gh
        .find_open_deployment("production", SHA1)
        .await
        .expect("find");
    assert_eq!(adopted.map(|d| d.id), Some(actions.id));
    assert!(
        gh.find_open_deployment("production", SHA2)
            .await
            .expect("find")
            .is_none()
    );
    gh.create_deployment_status(actions.id, &NewStatus::new(DeploymentState::Success))
        .await
        .expect("s");
    assert!(
        gh.find_open_deployment("production", SHA1)
            .await
            .expect("find")
            .is_none()
    );

    let newer = deploy(
        &gh,
        SHA2,
        "production",
        "sha256:b",
        DeploymentState::Success,
    )
    .await;
    let err = gh.delete_deployment(actions.id).await.expect_err("active");
    assert_eq!(err.status(), Some(422));
    let deactivated = gh
        .deactivate_others("production", Some(newer))
        .await
        .expect("deactivate");
    assert_eq!(deactivated, [actions.id]);
    assert_eq!(
        gh.deactivate_others("production", Some(newer))
            .await
            .expect("again"),
        Vec::<u64>::new()
    );
    gh.delete_deployment(actions.id)
        .await
        .expect("inactive can go");
    assert_eq!(fake.deployments().len(), 1);
    fake.assert_no_violations();
}

#[tokio::test]
async fn workflow_runs_and_pull_requests() {
    let (fake, gh) = setup().await;
    fake.add_run(RunSeed {
        id: 900,
        status: "completed".into(),
        conclusion: Some("cancelled".into()),
        run_attempt: 2,
        head_sha: SHA1.into(),
    });
    fake.add_run(RunSeed {
        id: 901,
        status: "in_progress".into(),
        conclusion: None,
        run_attempt: 1,
        head_sha: SHA2.into(),
    });
    let done = gh.get_workflow_run(900).await.expect("run");
    assert!(done.is_finished());
    assert_eq!(done.conclusion.as_deref(), Some("cancelled"));
    assert_eq!(done.run_attempt, Some(2));
    assert!(!gh.get_workflow_run(901).await.expect("run").is_finished());
    assert_eq!(
        gh.get_workflow_run(5).await.expect_err("unknown").status(),
        Some(404)
    );

    for (number, state) in [(7, "open"), (8, "closed"), (9, "open")] {
        fake.add_pull(PullSeed {
            number,
            state: state.into(),
            title: format!("PR {number}"),
            head_sha: SHA1.into(),
            head_ref: format!("feature-{number}"),
            base_ref: "main".into(),
            merged: state == "closed",
            draft: false,
            labels: vec!["preview".into()],
            user: "octocat".into(),
            updated_at: "2026-01-02T03:04:05Z".into(),
        });
    }
    let pr = gh.get_pull_request(8).await.expect("pull");
    assert_eq!(pr.state, "closed");
    assert_eq!(pr.merged, Some(true));
    assert_eq!(pr.head.sha, SHA1);
    assert_eq!(pr.head.git_ref, "feature-8");
    assert_eq!(
        pr.labels
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["preview"]
    );
    let open: Vec<u64> = gh
        .list_pull_requests("open")
        .await
        .expect("list")
        .iter()
        .map(|p| p.number)
        .collect();
    assert_eq!(open, [9, 7]);
    assert_eq!(gh.list_pull_requests("all").await.expect("list").len(), 3);
    fake.assert_no_violations();
}

#[tokio::test]
async fn the_token_and_a_canary_never_reach_request_bodies() {
    let (fake, gh) = setup().await;
    let mut rec = record("v1", "sha256:abc");
    rec.config_hash = Some("hash-of-config-without-secrets".into());
    let new = NewDeployment::new(SHA1, "production").with_record(&rec);
    let id = gh.create_deployment(&new).await.expect("d").id;
    gh.create_deployment_status(
        id,
        &NewStatus::new(DeploymentState::Success).description("ok"),
    )
    .await
    .expect("s");
    gh.upsert_sticky_comment(1, "deploy", "Deployed v1")
        .await
        .expect("c");
    let requests = fake.requests();
    assert!(requests.iter().any(|r| !r.body.is_empty()));
    for request in &requests {
        assert!(!request.body.contains(TOKEN));
        assert!(!request.body.contains(CANARY));
    }
    fake.assert_not_sent(TOKEN);
    fake.assert_not_sent(CANARY);
    fake.assert_no_violations();
}

#[tokio::test]
async fn a_wrong_token_is_rejected_and_flagged() {
    let fake = FakeGitHub::start("acme", "shop", Some(TOKEN)).await;
    let gh = GitHub::new(
        &fake.api_url(),
        Secret::new("wrong".to_owned()),
        Repository::parse("acme/shop").expect("repo"),
    )
    .expect("client");
    let err = gh.get_deployment(1).await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert_eq!(fake.take_violations().len(), 1);
}

#[tokio::test]
#[should_panic(expected = "violations nobody took")]
async fn a_fake_dropped_with_violations_fails_the_test() {
    let (fake, gh) = setup().await;
    gh.send(Method::GET, "/repos/acme/shop/deployments?colour=red", None)
        .await
        .expect("answered");
    drop(fake);
}

#[tokio::test]
async fn the_current_job_is_found_by_runner_or_name() {
    let (fake, gh) = setup().await;
    fake.add_run(RunSeed {
        id: 50,
        status: "in_progress".into(),
        conclusion: None,
        run_attempt: 2,
        head_sha: SHA1.into(),
    });
    let job = |id: u64, name: &str, runner: &str, status: &str, attempt: u64| JobSeed {
        id,
        run_id: 50,
        name: name.into(),
        runner_name: Some(runner.into()),
        status: status.into(),
        conclusion: None,
        run_attempt: attempt,
    };
    fake.add_job(job(1, "deploy", "GitHub Actions 1", "in_progress", 1));
    fake.add_job(job(2, "build", "GitHub Actions 2", "completed", 2));
    fake.add_job(job(3, "deploy", "GitHub Actions 3", "in_progress", 2));
    fake.add_job(job(4, "deploy", "GitHub Actions 4", "in_progress", 2));
    let jobs = gh.list_run_jobs(50).await.expect("jobs");
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [2, 3, 4],
        "latest attempt only"
    );
    let found = gh
        .find_current_job(50, Some("GitHub Actions 4"), Some("deploy"))
        .await
        .expect("find");
    assert_eq!(found.as_ref().map(|j| j.id), Some(4));
    assert_eq!(
        found.and_then(|j| j.html_url).as_deref(),
        Some("https://github.com/acme/shop/actions/runs/50/job/4")
    );
    // Two in-progress `deploy` jobs and an unknown runner: ambiguous, so no guess.
    let none = gh
        .find_current_job(50, Some("other"), Some("deploy"))
        .await
        .expect("find");
    assert_eq!(none, None);
    fake.assert_no_violations();
}

#[tokio::test]
async fn files_are_published_through_the_contents_api() {
    use dhow_github::contents::PutOutcome;
    let (fake, gh) = setup().await;
    let main_head = fake.branches()["main"].clone();
    assert!(
        gh.ensure_branch("badges", &main_head)
            .await
            .expect("create branch")
    );
    assert!(
        !gh.ensure_branch("badges", &main_head)
            .await
            .expect("exists")
    );
    assert_eq!(
        gh.branch_head("badges").await.expect("head"),
        Some(main_head)
    );
    assert_eq!(gh.branch_head("nope").await.expect("head"), None);

    let path = "badges/production.json";
    assert_eq!(gh.get_file(path, Some("badges")).await.expect("read"), None);
    let v1 = br#"{"schemaVersion":1,"label":"production","message":"abc123","color":"green"}"#;
    let created = gh
        .put_file(path, "badges", v1, "badge: production")
        .await
        .expect("create");
    assert!(matches!(created, PutOutcome::Created { .. }), "{created:?}");
    let read = gh
        .get_file(path, Some("badges"))
        .await
        .expect("read")
        .expect("file");
    assert_eq!(read.content, v1);
    assert_eq!(
        gh.put_file(path, "badges", v1, "badge: production")
            .await
            .expect("same"),
        PutOutcome::Unchanged
    );
    let v2 = "x".repeat(300);
    let updated = gh
        .put_file(path, "badges", v2.as_bytes(), "badge: production")
        .await
        .expect("update");
    assert!(matches!(updated, PutOutcome::Updated { .. }), "{updated:?}");
    assert_eq!(fake.file("badges", path).as_deref(), Some(v2.as_bytes()));
    assert_eq!(fake.file("main", path), None, "other branches untouched");

    // A concurrent writer makes our SHA stale once: re-read and retry.
    fake.push_fault(Fault::status(
        "repos/create-or-update-file-contents",
        409,
        "badges/production.json does not match",
    ));
    let v3 = b"third";
    let retried = gh
        .put_file(path, "badges", v3, "badge")
        .await
        .expect("retried");
    assert!(matches!(retried, PutOutcome::Updated { .. }), "{retried:?}");
    assert_eq!(fake.file("badges", path).as_deref(), Some(&v3[..]));
    let err = gh
        .put_file(path, "gone", v3, "badge")
        .await
        .expect_err("no branch");
    assert_eq!(err.status(), Some(404));
    fake.assert_no_violations();
}

#[tokio::test]
async fn environments_and_commit_statuses() {
    let (fake, gh) = setup().await;
    assert!(!gh.environment_exists("pr-7").await.expect("get"));
    gh.create_deployment(&NewDeployment::new(SHA1, "pr-7"))
        .await
        .expect("d");
    assert!(gh.environment_exists("pr-7").await.expect("get"));
    // GITHUB_TOKEN cannot delete environments: a 403 the caller turns into a warning.
    let err = gh.delete_environment("pr-7").await.expect_err("forbidden");
    assert!(err.is_forbidden_for_integration(), "{err}");
    fake.set_admin(true);
    gh.delete_environment("pr-7").await.expect("admin token");
    assert!(fake.environments().is_empty());

    gh.create_commit_status(
        SHA1,
        "pending",
        "dhow/preview",
        Some("https://x/run"),
        Some("deploying"),
    )
    .await
    .expect("status");
    gh.create_commit_status(
        SHA1,
        "success",
        "dhow/preview",
        None,
        Some(&"d".repeat(300)),
    )
    .await
    .expect("status");
    assert_eq!(
        fake.commit_statuses(SHA1),
        [
            ("pending".to_owned(), "dhow/preview".to_owned()),
            ("success".to_owned(), "dhow/preview".to_owned())
        ]
    );
    let err = gh
        .create_commit_status(SHA1, "in_progress", "dhow/preview", None, None)
        .await
        .expect_err("not a commit status state");
    assert_eq!(err.status(), Some(422));
    let violations = fake.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("body.state"), "{violations:?}");
}
