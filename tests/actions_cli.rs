//! `dhow deploy` under GitHub Actions without any host: a configuration error becomes one
//! `::error file=…,line=…,col=…::` annotation per problem, after the token's `::add-mask::`, with
//! `status=error` in `GITHUB_OUTPUT` (and, on a `pull_request` event, the PR head SHA as the
//! version) and the error in the job summary; `dhow rollback` without a
//! version outside Actions says what it needs.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "ghs_cliCanaryToken0123456789";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The PR head of shared/github-events/pull_request.synchronize.json.
const PR_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
/// The merge commit the runner checks out for that pull request (`GITHUB_SHA`).
const MERGE_SHA: &str = "3333333333333333333333333333333333333333";

fn in_actions(dir: &Path, args: &[&str]) -> Output {
    let events = dhow_test_support::github::event_file("pull_request.synchronize.json");
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "Codertocat/Hello-World")
        .env("GITHUB_SHA", MERGE_SHA)
        .env("GITHUB_REF", "refs/pull/2/merge")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", events)
        .env("GITHUB_RUN_ID", "99")
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_SERVER_URL", "https://github.com")
        // Nothing answers here: a configuration error stops the run before any API call.
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"))
        .output()
        .expect("run dhow")
}

/// One output (`name=value` or the `name<<DELIM` form) of a `GITHUB_OUTPUT` file.
fn output_value(outputs: &str, name: &str) -> Option<String> {
    let mut lines = outputs.lines();
    while let Some(line) = lines.next() {
        if let Some(value) = line.strip_prefix(&format!("{name}=")) {
            return Some(value.to_owned());
        }
        if let Some(delimiter) = line.strip_prefix(&format!("{name}<<")) {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            return Some(value.join("\n"));
        }
    }
    None
}

#[test]
fn configuration_errors_are_annotated_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("config");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1]\nregistry:\n  server: ghcr.io\n  \
         username: acme\n  password: [REGISTRY_PASSWORD]\nbuilder:\n  arch: amd64\nhealthcheck:\n  \
         path: /up\n",
    )
    .expect("deploy.yml");
    let output = in_actions(dir.path(), &["deploy", "-P"]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, format!("::add-mask::{TOKEN}"));
    let annotation = stdout
        .lines()
        .find(|line| line.starts_with("::error "))
        .unwrap_or_else(|| panic!("no ::error annotation in\n{stdout}"));
    assert!(
        annotation.starts_with("::error file=config/deploy.yml,line=11,col=1,"),
        "{annotation}"
    );
    assert!(annotation.contains("healthcheck"), "{annotation}");
    let outputs = fs::read_to_string(dir.path().join("output")).expect("outputs");
    assert_eq!(
        output_value(&outputs, "status").as_deref(),
        Some("error"),
        "{outputs}"
    );
    // On pull_request the version defaults to the head SHA, not the merge commit.
    assert_eq!(
        output_value(&outputs, "version").as_deref(),
        Some(PR_HEAD),
        "{outputs}"
    );
    let summary = fs::read_to_string(dir.path().join("summary")).expect("summary");
    assert!(summary.contains("healthcheck"), "{summary}");
    assert!(summary.contains("Deploy stopped"), "{summary}");
    for content in [&stdout, &text(&output.stderr), &outputs, &summary] {
        let unmasked = content.replace(&format!("::add-mask::{TOKEN}"), "");
        assert!(!unmasked.contains(TOKEN), "{content}");
    }
}

#[test]
fn rollback_without_a_version_needs_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(["rollback"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .output()
        .expect("run dhow");
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("GitHub Deployments"), "{stderr}");
    assert!(stderr.contains("GITHUB_TOKEN"), "{stderr}");
}
