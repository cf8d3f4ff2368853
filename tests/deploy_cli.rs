//! `dhow plan`, `dhow deploy --dry-run` and `dhow deploy` argument handling, end to end without
//! any host: the plan lists the hosts, roles and exact commands in Kamal's order, with every
//! secret redacted.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const ENV_CANARY: &str = "plan-env-canary-0b7d";
const REGISTRY_CANARY: &str = "plan-registry-canary-5e21";

fn dhow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("VERSION", "v7")
        .output()
        .expect("run dhow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("config");
    fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1, 10.0.0.2]\n  jobs:\n    hosts: \
         [10.0.0.2]\n    cmd: bin/jobs\nproxy:\n  app_port: 3000\nregistry:\n  server: ghcr.io\n  \
         username: acme\n  password: [REGISTRY_PASSWORD]\nbuilder: {arch: amd64}\nenv:\n  secret: \
         [DATABASE_URL]\n",
    )
    .expect("deploy.yml");
    fs::write(
        dir.path().join(".kamal/secrets"),
        format!("REGISTRY_PASSWORD={REGISTRY_CANARY}\nDATABASE_URL={ENV_CANARY}\n"),
    )
    .expect("secrets");
    dir
}

fn plan_text(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(
        !all.contains(ENV_CANARY) && !all.contains(REGISTRY_CANARY),
        "{all}"
    );
    text(&output.stdout)
}

#[test]
fn plan_lists_hosts_roles_and_commands_in_kamals_order_with_secrets_redacted() {
    let dir = app();
    let plan = plan_text(&dhow(dir.path(), &["plan"]));
    assert!(
        plan.starts_with("Deploy shop version v7\nHosts: "),
        "{plan}"
    );
    assert!(
        plan.contains("\nRoles: web, jobs\nPrimary role: web\n"),
        "{plan}"
    );
    let order = [
        "docker login ghcr.io -u [REDACTED] --password-stdin",
        "docker pull ghcr.io/acme/shop:v7",
        "mkdir .kamal/lock-shop",
        "docker network create kamal",
        "docker container start kamal-proxy || ",
        "upload .kamal/apps/shop/env/roles/web.env (mode 0600, [REDACTED])",
        "docker run --detach --restart unless-stopped --name shop-web-v7",
        "docker exec kamal-proxy kamal-proxy deploy shop-web --target=\"<container-id>:3000\"",
        "docker run --detach --restart unless-stopped --name shop-jobs-v7",
        "docker tag ghcr.io/acme/shop:v7 ghcr.io/acme/shop:latest",
        "docker image prune --force --filter label=service=shop",
        "rm .kamal/lock-shop/details && rm -r .kamal/lock-shop",
    ];
    let mut from = 0;
    for step in order {
        let at = plan[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (or out of order) in\n{plan}"));
        from += at + step.len();
    }
}

#[test]
fn deploy_dry_run_prints_the_plan_and_deploy_checks_image_references() {
    let dir = app();
    let dry = plan_text(&dhow(dir.path(), &["deploy", "-P", "--dry-run"]));
    let plan = plan_text(&dhow(dir.path(), &["plan"]));
    // Times, the clash-rename suffix and the container hostname differ per run: compare the
    // stages and the line count.
    let headers = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with("== ") || line.ends_with(':'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(headers(&dry), headers(&plan));
    assert_eq!(dry.lines().count(), plan.lines().count());
    assert!(dry.contains("docker pull ghcr.io/acme/shop:v7"));

    // `--image` adopts an image built elsewhere: it cannot go with --skip-push, and a reference
    // docker would not accept is refused before anything runs.
    let output = dhow(dir.path(), &["deploy", "-P", "--image", "acme/shop:v1"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--skip-push"));
    let output = dhow(dir.path(), &["deploy", "--image", "acme/shop:v1;reboot"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("not an image reference: \"acme/shop:v1;reboot\""),
        "{}",
        text(&output.stderr)
    );
}

/// Asserts that `steps` appear in `plan` in this order.
fn in_order(plan: &str, steps: &[&str]) {
    let mut from = 0;
    for step in steps {
        let at = plan[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (or out of order) in\n{plan}"));
        from += at + step.len();
    }
}

#[test]
fn lifecycle_dry_runs_print_their_plans_with_secrets_redacted() {
    let dir = app();
    let setup = plan_text(&dhow(dir.path(), &["setup", "--dry-run"]));
    assert!(setup.starts_with("Setup shop version v7\n"), "{setup}");
    in_order(
        &setup,
        &[
            "mkdir .kamal/lock-shop",
            "== Ensure Docker is installed",
            "docker -v",
            "docker pull ghcr.io/acme/shop:v7",
            "docker container start kamal-proxy || ",
            "docker run --detach --restart unless-stopped --name shop-web-v7",
            "docker image prune --force --filter label=service=shop",
            "rm -r .kamal/lock-shop",
        ],
    );

    let redeploy = plan_text(&dhow(dir.path(), &["redeploy", "--dry-run"]));
    assert!(
        redeploy.starts_with("Redeploy shop version v7\n"),
        "{redeploy}"
    );
    assert!(!redeploy.contains("kamal-proxy ||") && !redeploy.contains("prune"));

    let rollback = plan_text(&dhow(dir.path(), &["rollback", "v3", "--dry-run"]));
    assert!(
        rollback.starts_with("Rollback shop to version v3\n"),
        "{rollback}"
    );
    in_order(
        &rollback,
        &[
            "mkdir .kamal/lock-shop",
            "docker container ls --all --filter 'name=^shop-web-v3$' --quiet  (must print an id",
            "docker run --detach --restart unless-stopped --name shop-web-v3",
            "docker tag ghcr.io/acme/shop:v3 ghcr.io/acme/shop:latest",
        ],
    );
    assert!(!rollback.contains("docker pull"));

    let remove = plan_text(&dhow(dir.path(), &["remove", "--dry-run"]));
    in_order(
        &remove,
        &[
            "docker exec kamal-proxy kamal-proxy remove shop-web",
            "docker image prune --all --force --filter label=service=shop",
            "rm -r .kamal/apps/shop",
            "ls .kamal/apps | wc -l",
            "docker volume rm kamal-proxy-config",
            "docker logout ghcr.io",
        ],
    );

    let lock = plan_text(&dhow(
        dir.path(),
        &["lock", "acquire", "-m", "hold", "--dry-run"],
    ));
    assert!(lock.starts_with("Acquire the deploy lock\n"), "{lock}");
    assert!(lock.contains("mkdir .kamal/lock-shop && echo \""), "{lock}");
}

#[test]
fn remove_without_confirmation_and_a_bad_lock_wait_are_usage_errors() {
    let dir = app();
    let output = dhow(dir.path(), &["remove"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("-y"),
        "{}",
        text(&output.stderr)
    );

    let output = dhow(dir.path(), &["deploy", "-P", "--lock-wait", "5 minutes"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--lock-wait"));
}
