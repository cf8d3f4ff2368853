//! The files a boot puts on the hosts, as `dhow plan` and the lifecycle dry runs show them, end to
//! end without any host: the local error pages of `error_pages_path` (Kamal's glob), the asset
//! extraction and volume sync of a proxy role with `asset_path`, the custom TLS certificate and
//! its 0600 key with their PEMs redacted, each at Kamal's point of the boot; a missing
//! error pages directory is an error naming the key.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const CERT_CANARY: &str = "cert-pem-canary-91c4";
const KEY_CANARY: &str = "key-pem-canary-7a0e";
const PAGE_CANARY: &str = "page-canary-2f6d";

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
    for sub in ["config", ".kamal", "public/errors"] {
        fs::create_dir_all(dir.path().join(sub)).expect(sub);
    }
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1]\n  jobs:\n    hosts: \
         [10.0.0.1]\n    cmd: bin/jobs\nasset_path: /rails/public/assets\nerror_pages_path: \
         public/errors\nproxy:\n  app_port: 3000\n  host: shop.example.com\n  ssl:\n    \
         certificate_pem: CERT_PEM\n    private_key_pem: KEY_PEM\nregistry:\n  server: ghcr.io\n  \
         username: acme\n  password: [REGISTRY_PASSWORD]\nbuilder: {arch: amd64}\n",
    )
    .expect("deploy.yml");
    fs::write(
        dir.path().join(".kamal/secrets"),
        format!(
            "REGISTRY_PASSWORD=pw\nCERT_PEM=\"-----BEGIN CERTIFICATE-----\n{CERT_CANARY}\n-----END CERTIFICATE-----\"\nKEY_PEM=\"-----BEGIN PRIVATE KEY-----\n{KEY_CANARY}\n-----END PRIVATE KEY-----\"\n"
        ),
    )
    .expect("secrets");
    for name in [
        "502.html",
        "404.html",
        "index.html",
        "50x.html",
        "5000.html",
    ] {
        fs::write(
            dir.path().join("public/errors").join(name),
            format!("{PAGE_CANARY} {name}"),
        )
        .expect(name);
    }
    dir
}

fn plan_text(output: &Output) -> String {
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(output.status.success(), "{all}");
    for canary in [CERT_CANARY, KEY_CANARY, PAGE_CANARY] {
        assert!(!all.contains(canary), "{canary} in\n{all}");
    }
    text(&output.stdout)
}

fn in_order(plan: &str, steps: &[&str]) {
    let mut from = 0;
    for step in steps {
        let at = plan[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing (or out of order) in\n{plan}"));
        from += at + step.len();
    }
}

/// The preparation of version `v` and the clean-up after the old version stopped.
fn files_steps(v: &str) -> Vec<String> {
    vec![
        "== Prepare error pages, assets and certificates".to_owned(),
        "mkdir -p .kamal/proxy/apps-config/shop/error_pages\n".to_owned(),
        format!("mkdir -p .kamal/proxy/apps-config/shop/error_pages/{v}\n"),
        format!("upload public/errors/404.html to .kamal/proxy/apps-config/shop/error_pages/{v}/404.html (mode 0"),
        format!("upload public/errors/502.html to .kamal/proxy/apps-config/shop/error_pages/{v}/502.html (mode 0"),
        format!("upload public/errors/50x.html to .kamal/proxy/apps-config/shop/error_pages/{v}/50x.html (mode 0"),
        format!("mkdir -p .kamal/apps/shop/assets/extracted/web-{v} && docker container rm shop-web-assets 2> /dev/null || true && docker container create --name shop-web-assets ghcr.io/acme/shop:{v} && docker container cp -L shop-web-assets:/rails/public/assets/. .kamal/apps/shop/assets/extracted/web-{v} && docker container rm shop-web-assets\n"),
        format!("      if a version runs: mkdir -p .kamal/apps/shop/assets/volumes/web-{v} ; cp -rnT .kamal/apps/shop/assets/extracted/web-{v} .kamal/apps/shop/assets/volumes/web-{v} ; cp -rnT .kamal/apps/shop/assets/extracted/web-{v} .kamal/apps/shop/assets/volumes/web-<old-version> || true ; cp -rnT .kamal/apps/shop/assets/extracted/web-<old-version> .kamal/apps/shop/assets/volumes/web-{v} || true\n"),
        format!("      otherwise: mkdir -p .kamal/apps/shop/assets/volumes/web-{v} ; cp -rnT .kamal/apps/shop/assets/extracted/web-{v} .kamal/apps/shop/assets/volumes/web-{v}\n"),
        "mkdir -p .kamal/proxy/apps-config/shop/tls/web\n".to_owned(),
        "upload .kamal/proxy/apps-config/shop/tls/web/cert.pem (mode 0644, [REDACTED])".to_owned(),
        "upload .kamal/proxy/apps-config/shop/tls/web/key.pem (mode 0600, [REDACTED])".to_owned(),
        "chown 1000 .kamal/proxy/apps-config/shop/tls/web/key.pem\n".to_owned(),
        format!("== Start container with version {v}"),
        format!("--volume $PWD/.kamal/apps/shop/assets/volumes/web-{v}:/rails/public/assets --label"),
        format!("--tls --tls-certificate-path=\"/home/kamal-proxy/.apps-config/shop/tls/web/cert.pem\" --tls-private-key-path=\"/home/kamal-proxy/.apps-config/shop/tls/web/key.pem\""),
        format!("--error-pages=\"/home/kamal-proxy/.apps-config/shop/error_pages/{v}\""),
        "docker container ls --all --filter 'name=^shop-web-<old-version>$' --quiet | xargs docker stop  (if a version was running)".to_owned(),
        format!("find .kamal/apps/shop/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-{v} -exec rm -rf \"{{}}\" + ; find .kamal/apps/shop/assets/volumes -maxdepth 1 -name 'web-*' ! -name web-{v} -exec rm -rf \"{{}}\" +  (if a version was running)"),
        format!("find .kamal/proxy/apps-config/shop/error_pages -mindepth 1 -maxdepth 1 ! -name {v} -exec rm -rf {{}} +  (if a version was running)"),
    ]
}

#[test]
fn plan_prepares_error_pages_assets_and_certificate_before_the_boot() {
    let dir = app();
    let plan = plan_text(&dhow(dir.path(), &["plan"]));
    let steps = files_steps("v7");
    in_order(&plan, &steps.iter().map(String::as_str).collect::<Vec<_>>());
    // Kamal's glob is {4??.html,5??.html} (`?`: any one character): other files stay local.
    assert!(
        !plan.contains("index.html") && !plan.contains("5000.html"),
        "{plan}"
    );
    // The jobs role runs no proxy: no assets, no certificate of its own.
    assert!(
        !plan.contains("assets/extracted/jobs-") && !plan.contains("tls/jobs"),
        "{plan}"
    );
    // After the stale containers, before the boot.
    in_order(
        &plan,
        &[
            "== Detect stale containers",
            "== Prepare error pages, assets and certificates",
            "== Start container with version v7",
        ],
    );
}

#[test]
fn redeploy_rollback_and_app_boot_prepare_the_files_too() {
    let dir = app();
    for (args, version) in [
        (&["redeploy", "--dry-run"][..], "v7"),
        (&["rollback", "v3", "--dry-run"][..], "v3"),
        // Without --version, `app boot` boots the image tagged latest, as Kamal's does.
        (&["app", "boot", "--dry-run"][..], "latest"),
    ] {
        let plan = plan_text(&dhow(dir.path(), args));
        let steps = files_steps(version);
        in_order(&plan, &steps.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[test]
fn an_error_pages_path_without_pages_is_an_error() {
    let dir = app();
    fs::remove_dir_all(dir.path().join("public/errors")).expect("rm");
    let output = dhow(dir.path(), &["plan"]);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error_pages_path") && stderr.contains("public/errors"),
        "{stderr}"
    );
    // `remove` boots nothing and needs no pages.
    let remove = plan_text(&dhow(dir.path(), &["remove", "--dry-run"]));
    assert!(
        remove.contains("rm -r .kamal/proxy/apps-config/shop"),
        "{remove}"
    );
}
