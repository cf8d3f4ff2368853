//! `--preview N` on the real binary, without any host: `dhow config` and `dhow plan` act on the
//! pull request's preview (service `<service>-pr-<N>`, its own lock, env files and proxy host),
//! and a configuration without `x-dhow-preview` is refused with the key to add.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn dhow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("VERSION", "0123abc")
        .output()
        .expect("run dhow")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn app(preview: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("config");
    fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
    fs::write(
        dir.path().join("config/deploy.yml"),
        format!(
            "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1, 10.0.0.2]\n  jobs:\n    \
             hosts: [10.0.0.2]\n    cmd: bin/jobs\nproxy:\n  host: shop.example.com\n  app_port: \
             3000\nregistry:\n  server: ghcr.io\n  username: acme\n  password: \
             [REGISTRY_PASSWORD]\nbuilder: {{arch: amd64}}\nenv:\n  secret: [DATABASE_URL]\n{preview}"
        ),
    )
    .expect("deploy.yml");
    fs::write(
        dir.path().join(".kamal/secrets"),
        "REGISTRY_PASSWORD=pw\nDATABASE_URL=db\n",
    )
    .expect("secrets");
    dir
}

const PREVIEW: &str = "x-dhow-preview:\n  domain: preview.example.com\n  hosts: [10.0.0.2]\n";

#[test]
fn plan_of_a_preview_uses_only_its_own_names() {
    let dir = app(PREVIEW);
    let output = dhow(dir.path(), &["plan", "--preview", "42"]);
    let plan = text(&output);
    assert!(output.status.success(), "{plan}");
    assert!(
        plan.starts_with("Deploy shop-pr-42 version 0123abc\n"),
        "{plan}"
    );
    assert!(plan.contains("\nRoles: web\n"), "{plan}");
    for expected in [
        "mkdir .kamal/lock-shop-pr-42",
        "upload .kamal/apps/shop-pr-42/env/roles/web.env (mode 0600, [REDACTED])",
        "--name shop-pr-42-web-0123abc",
        "--label dhow.preview=\"42\"",
        "docker exec kamal-proxy kamal-proxy deploy shop-pr-42-web",
        "--host=\"pr-42.preview.example.com\"",
        "docker image prune --force --filter label=service=shop-pr-42",
    ] {
        assert!(plan.contains(expected), "{expected:?} missing in\n{plan}");
    }
    // Nothing addresses production's names or the host outside the preview.
    for unexpected in [
        "lock-shop\n",
        "apps/shop/",
        "--name shop-web-",
        "label=service=shop\n",
        "10.0.0.1",
        "shop-jobs",
    ] {
        assert!(!plan.contains(unexpected), "{unexpected:?} in\n{plan}");
    }
}

#[test]
fn the_preview_number_can_come_from_the_environment() {
    let dir = app(PREVIEW);
    let output = Command::new(env!("CARGO_BIN_EXE_dhow"))
        .arg("config")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("VERSION", "0123abc")
        .env("DHOW_PREVIEW_PR", "9")
        .output()
        .expect("run dhow");
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(":service_with_version: shop-pr-9-0123abc\n"),
        "{out}"
    );
}

#[test]
fn a_preview_needs_the_block() {
    let dir = app("");
    let output = dhow(dir.path(), &["config", "--preview", "3"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let out = text(&output);
    assert!(out.contains("x-dhow-preview"), "{out}");
    assert!(out.contains("is not set"), "{out}");
}
