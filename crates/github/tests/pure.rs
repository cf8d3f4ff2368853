//! Pure parts of the client: retry decisions, pagination links, encoding, request bodies, the
//! release record and sticky comment bodies.

use std::time::Duration;

use dhow_github::client::{
    RetryPolicy, RetryReason, encode, has_next_page, retry_delay, truncate_chars,
};
use dhow_github::comments::{COMMENT_LIMIT, sticky_body, sticky_marker};
use dhow_github::deployments::{DeploymentState, NewDeployment, NewStatus, ReleaseRecord};
use http::{HeaderMap, HeaderValue};
use serde_json::json;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(*k, HeaderValue::from_str(v).expect("header"));
    }
    map
}

const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(90),
};

#[test]
fn server_errors_back_off_exponentially_and_stop() {
    let none = HeaderMap::new();
    let delays: Vec<_> = (1..=4)
        .map(|attempt| retry_delay(&POLICY, attempt, 502, &none, "", 0))
        .collect();
    assert_eq!(
        delays,
        [
            Some((Duration::from_secs(1), RetryReason::ServerError)),
            Some((Duration::from_secs(2), RetryReason::ServerError)),
            Some((Duration::from_secs(4), RetryReason::ServerError)),
            None,
        ]
    );
    for status in [500, 503, 504] {
        assert!(
            retry_delay(&POLICY, 1, status, &none, "", 0).is_some(),
            "{status}"
        );
    }
    for status in [400, 401, 404, 409, 422, 501] {
        assert_eq!(
            retry_delay(&POLICY, 1, status, &none, "", 0),
            None,
            "{status}"
        );
    }
    let capped = RetryPolicy {
        max_attempts: 20,
        ..POLICY
    };
    assert_eq!(
        retry_delay(&capped, 15, 502, &none, "", 0).map(|d| d.0),
        Some(Duration::from_secs(90))
    );
}

#[test]
fn rate_limits_wait_for_what_github_says() {
    let limited = RetryReason::RateLimited;
    assert_eq!(
        retry_delay(&POLICY, 1, 403, &headers(&[("retry-after", "7")]), "", 0),
        Some((Duration::from_secs(7), limited))
    );
    assert_eq!(
        retry_delay(
            &POLICY,
            1,
            429,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1030")
            ]),
            "",
            1000
        ),
        Some((Duration::from_secs(30), limited))
    );
    assert_eq!(
        retry_delay(
            &POLICY,
            1,
            403,
            &HeaderMap::new(),
            "You have exceeded a secondary rate limit",
            0
        ),
        Some((Duration::from_secs(60), limited))
    );
    // A plain 403 is a permission problem, not a rate limit.
    assert_eq!(
        retry_delay(
            &POLICY,
            1,
            403,
            &HeaderMap::new(),
            "Resource not accessible by integration",
            0
        ),
        None
    );
    // A reset further away than max_delay fails now instead of hanging the deploy.
    assert_eq!(
        retry_delay(&POLICY, 1, 429, &headers(&[("retry-after", "3600")]), "", 0),
        None
    );
    assert_eq!(
        retry_delay(&POLICY, 4, 429, &headers(&[("retry-after", "1")]), "", 0),
        None,
        "attempts are bounded for rate limits too"
    );
}

#[test]
fn link_headers_encoding_and_truncation() {
    assert!(has_next_page(&headers(&[(
        "link",
        "<http://x/r?page=2>; rel=\"next\", <http://x/r?page=5>; rel=\"last\""
    )])));
    assert!(!has_next_page(&headers(&[(
        "link",
        "<http://x/r?page=1>; rel=\"first\""
    )])));
    assert!(!has_next_page(&HeaderMap::new()));
    assert_eq!(encode("preview/pr 7&x=é"), "preview%2Fpr%207%26x%3D%C3%A9");
    assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    assert_eq!(truncate_chars("héllo", 10), "héllo");
    assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
}

#[test]
fn deployment_body_pins_the_safe_defaults() {
    let record = ReleaseRecord {
        digest: Some("sha256:abc".into()),
        hosts: vec!["10.0.0.1".into()],
        ..ReleaseRecord::new("v1")
    };
    let new = NewDeployment {
        task: "deploy:preview".into(),
        transient_environment: true,
        description: Some("d".repeat(200)),
        ..NewDeployment::new("ec26c3e57ca3a959ca5aad62de7213c562f8c821", "pr-7")
    }
    .with_record(&record);
    let body = new.body();
    assert_eq!(
        body,
        json!({
            "ref": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "task": "deploy:preview",
            "auto_merge": false,
            "required_contexts": [],
            "payload": {"tool": "dhow", "version": "v1", "digest": "sha256:abc", "hosts": ["10.0.0.1"], "roles": []},
            "environment": "pr-7",
            "transient_environment": true,
            "production_environment": false,
            "description": format!("{}…", "d".repeat(139)),
        })
    );
    assert!(NewDeployment::new("x", "production").production_environment);
    assert!(!NewDeployment::new("x", "staging").production_environment);
}

#[test]
fn status_body_has_only_what_was_set() {
    assert_eq!(
        NewStatus::new(DeploymentState::Queued).body(),
        json!({"state": "queued"})
    );
    let status = NewStatus::new(DeploymentState::InProgress)
        .log_url("https://github.com/a/b/actions/runs/1/job/2")
        .environment_url("https://app.example.com")
        .description("deploying")
        .auto_inactive(false);
    assert_eq!(
        status.body(),
        json!({
            "state": "in_progress",
            "log_url": "https://github.com/a/b/actions/runs/1/job/2",
            "environment_url": "https://app.example.com",
            "description": "deploying",
            "auto_inactive": false,
        })
    );
    for state in [
        "queued",
        "pending",
        "in_progress",
        "success",
        "failure",
        "error",
        "inactive",
    ] {
        assert_eq!(
            DeploymentState::parse(state).map(DeploymentState::as_str),
            Some(state)
        );
    }
    assert_eq!(DeploymentState::parse("done"), None);
}

#[test]
fn release_records_round_trip_and_foreign_payloads_are_ignored() {
    let record = ReleaseRecord {
        image: Some("ghcr.io/acme/shop".into()),
        digest: Some("sha256:abc".into()),
        ..ReleaseRecord::new("v2")
    };
    let value = serde_json::to_value(&record).expect("json");
    assert_eq!(ReleaseRecord::from_payload(&value), Some(record.clone()));
    assert_eq!(
        ReleaseRecord::from_payload(&json!(value.to_string())),
        Some(record),
        "payload sent as a JSON string"
    );
    assert_eq!(ReleaseRecord::from_payload(&json!({})), None);
    assert_eq!(
        ReleaseRecord::from_payload(&json!({"tool": "other", "version": "1"})),
        None
    );
    assert_eq!(ReleaseRecord::from_payload(&json!("not json")), None);
}

#[test]
fn sticky_bodies_carry_the_marker_and_fit_the_limit() {
    assert_eq!(sticky_marker("preview"), "<!-- dhow:sticky:preview -->");
    assert_eq!(
        sticky_marker("pr 7 --> <b>"),
        "<!-- dhow:sticky:pr7-b -->",
        "cannot close the comment"
    );
    assert_eq!(
        sticky_body("preview", "hi"),
        "<!-- dhow:sticky:preview -->\nhi"
    );
    let huge = sticky_body("preview", &"x".repeat(70_000));
    assert_eq!(huge.chars().count(), COMMENT_LIMIT);
    assert!(huge.starts_with("<!-- dhow:sticky:preview -->\nxxx"));
    assert!(huge.ends_with("_Comment truncated: it exceeded GitHub's size limit._"));
}
