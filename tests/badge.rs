//! `dhow badge` and `dhow status` against the fake GitHub API (every request checked against
//! shared/github-api/openapi-subset.json): the badges of each environment are drawn from the
//! ledger, the endpoint JSON validates against shields.io's endpoint schema, the SVG renders
//! with a real renderer (rsvg-convert) at its declared size, `--publish` commits both to a
//! branch through the contents API, and `status` names the live version, digest and deployer.
//! The token never appears in the output or in a request body.

use std::path::Path;
use std::process::{Command, Output};

use dhow_core::Secret;
use dhow_github::client::GitHub;
use dhow_github::context::Repository;
use dhow_github::deployments::{DeploymentState, NewDeployment, NewStatus, ReleaseRecord};
use dhow_test_support::github::{FakeGitHub, spec};
use serde_json::{Value, json};

const TOKEN: &str = "ghs_badgeCanaryToken0123456789";

/// shields.io's endpoint schema (<https://shields.io/badges/endpoint-badge>): the fields a
/// response must and may have.
fn shields_endpoint_schema() -> Value {
    json!({
        "type": "object",
        "required": ["schemaVersion", "label", "message"],
        "properties": {
            "schemaVersion": { "type": "integer", "enum": [1] },
            "label": { "type": "string" },
            "message": { "type": "string", "minLength": 1 },
            "color": { "type": "string" },
            "labelColor": { "type": "string" },
            "isError": { "type": "boolean" },
            "namedLogo": { "type": "string" },
            "logoSvg": { "type": "string" },
            "logoColor": { "type": "string" },
            "logoWidth": { "type": "integer" },
            "style": { "type": "string" },
            "cacheSeconds": { "type": "integer" }
        },
        "additionalProperties": false
    })
}

fn sha(n: u8) -> String {
    format!("{n:x}").repeat(40)[..40].to_owned()
}

async fn seed(fake: &FakeGitHub) {
    let github = GitHub::new(
        &fake.api_url(),
        Secret::new(TOKEN.to_owned()),
        Repository::parse("acme/shop").expect("repo"),
    )
    .expect("client");
    let deploy = |environment: &'static str, version: String, digest: &'static str| {
        let mut record = ReleaseRecord::new(version.clone());
        record.digest = Some(digest.to_owned());
        record.hosts = vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()];
        NewDeployment::new(version, environment).with_record(&record)
    };
    let states = |s: DeploymentState| NewStatus::new(s);
    for (environment, version, digest, final_state) in [
        (
            "production",
            sha(1),
            "sha256:aaaa",
            DeploymentState::Success,
        ),
        (
            "production",
            sha(2),
            "sha256:bbbb",
            DeploymentState::Success,
        ),
        ("staging", sha(3), "sha256:cccc", DeploymentState::Failure),
    ] {
        let d = github
            .create_deployment(&deploy(environment, version, digest))
            .await
            .expect("create deployment");
        github
            .create_deployment_status(d.id, &states(DeploymentState::InProgress))
            .await
            .expect("in progress");
        github
            .create_deployment_status(
                d.id,
                &states(final_state).environment_url("https://shop.example.com"),
            )
            .await
            .expect("final");
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_are_drawn_from_the_ledger_validated_rendered_and_published() {
    let fake = FakeGitHub::start("acme", "shop", Some(TOKEN)).await;
    seed(&fake).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let api = fake.api_url();
    let output = {
        let root = root.clone();
        let fake_url = api.clone();
        tokio::task::spawn_blocking(move || {
            let fake = FakeUrl(fake_url);
            dhow_at(&root, &fake, &["badge", "--publish", "dhow-badges"])
        })
        .await
        .expect("join")
    };
    let out = text(&output);
    assert!(output.status.success(), "dhow badge failed:\n{out}");
    assert!(!out.contains(TOKEN), "token in output:\n{out}");

    // One JSON and one SVG per environment, valid for shields.
    let schema = shields_endpoint_schema();
    let mut badges = Vec::new();
    for environment in ["production", "staging"] {
        let json_text = std::fs::read_to_string(root.join(format!("badges/{environment}.json")))
            .expect("badge json");
        let value: Value = serde_json::from_str(&json_text).expect("badge json parses");
        let mut errors = Vec::new();
        spec().validate(&schema, &value, environment, &mut errors);
        assert!(errors.is_empty(), "{environment}: {errors:?}\n{json_text}");
        assert_eq!(value["label"], environment);
        badges.push(value);
    }
    let short = &sha(2)[..7];
    assert_eq!(badges[0]["color"], "brightgreen");
    let message = badges[0]["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!("{short} · ")) && message.ends_with(" ago"),
        "{message}"
    );
    assert_eq!(badges[1]["color"], "red");
    assert_eq!(badges[1]["message"], format!("{} failed", &sha(3)[..7]));

    // Published to the branch, byte for byte.
    for environment in ["production", "staging"] {
        for ext in ["json", "svg"] {
            let local = std::fs::read(root.join(format!("badges/{environment}.{ext}")))
                .expect("local badge");
            let published = fake
                .file("dhow-badges", &format!("badges/{environment}.{ext}"))
                .unwrap_or_else(|| panic!("{environment}.{ext} not published"));
            assert_eq!(published, local, "{environment}.{ext}");
        }
    }
    assert!(
        out.contains(
            "![production](https://raw.githubusercontent.com/acme/shop/dhow-badges/badges/production.svg)"
        ),
        "{out}"
    );
    assert!(out.contains("https://img.shields.io/endpoint?url=https%3A%2F%2Fraw.githubusercontent.com%2Facme%2Fshop%2Fdhow-badges%2Fbadges%2Fproduction.json"), "{out}");

    // The SVGs render with a real renderer at their declared size (twice it at zoom 2).
    for environment in ["production", "staging"] {
        render(&root, environment);
    }

    // Nothing sent carried the token in a body; every request matched the schema.
    fake.assert_not_sent(TOKEN);
    fake.assert_no_violations();
}

/// Renders `badges/<environment>.svg` to PNG with rsvg-convert and checks the size; with
/// `DHOW_BADGE_PNG_DIR` set, keeps the PNG there (docs/ holds one made this way).
fn render(root: &Path, environment: &str) {
    let svg_path = root.join(format!("badges/{environment}.svg"));
    let svg = std::fs::read_to_string(&svg_path).expect("svg");
    let width: u32 = svg
        .split("width=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|w| w.parse().ok())
        .expect("svg width");
    let png_path = root.join(format!("{environment}.png"));
    match Command::new("rsvg-convert")
        .args(["--zoom", "2", "-o"])
        .arg(&png_path)
        .arg(&svg_path)
        .output()
    {
        Ok(render) => {
            assert!(render.status.success(), "{}", text(&render));
            let png = std::fs::read(&png_path).expect("png");
            assert!(
                png.len() > 200,
                "PNG suspiciously small: {} bytes",
                png.len()
            );
            assert_eq!(png_size(&png), (width * 2, 40));
            if let Some(keep) = std::env::var_os("DHOW_BADGE_PNG_DIR") {
                std::fs::copy(
                    &png_path,
                    Path::new(&keep).join(format!("badge-{environment}.png")),
                )
                .expect("keep png");
            }
        }
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "rsvg-convert is missing under CI (scripts/test installs librsvg2-bin): {error}"
            );
            #[expect(clippy::print_stderr, reason = "says what was not checked")]
            {
                eprintln!("notice: rsvg-convert not found ({error}); the SVG was not rendered");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_live_version_digest_and_deployer() {
    let fake = FakeGitHub::start("acme", "shop", Some(TOKEN)).await;
    seed(&fake).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let url = fake.api_url();
    let output = tokio::task::spawn_blocking(move || {
        dhow_at(&root, &FakeUrl(url), &["status", "--no-hosts"])
    })
    .await
    .expect("join");
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    let production = out.split("staging:").next().expect("production part");
    assert!(production.starts_with("production:"), "{out}");
    assert!(
        production.contains(&format!("live:     {} (deployment ", &sha(2)[..7])),
        "{out}"
    );
    assert!(production.contains("by github-actions[bot]"), "{out}");
    assert!(production.contains("digest:   sha256:bbbb"), "{out}");
    assert!(
        production.contains("url:      https://shop.example.com"),
        "{out}"
    );
    assert!(production.contains("hosts:    10.0.0.1, 10.0.0.2"), "{out}");
    let staging = out.split("staging:").nth(1).expect("staging part");
    assert!(staging.contains("live:     nothing"), "{out}");
    assert!(
        staging.contains(&format!("latest:   {} failure", &sha(3)[..7])),
        "{out}"
    );
    assert!(!out.contains(TOKEN));
    fake.assert_no_violations();
}

#[test]
fn badge_without_a_token_explains_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_dhow"))
        .arg("badge")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run dhow");
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output);
    assert!(
        out.contains("error: the deployments ledger needs GITHUB_TOKEN"),
        "{out}"
    );
}

/// The fake's URL, for the blocking half of a test.
struct FakeUrl(String);

fn dhow_at(dir: &Path, fake: &FakeUrl, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "acme/shop")
        .env("GITHUB_API_URL", &fake.0)
        .env("GITHUB_SHA", sha(2))
        .output()
        .expect("run dhow")
}
