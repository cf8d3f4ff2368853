//! The `dhow` binary end to end: version, help, docs (against Kamal's own `kamal docs` output),
//! init, config errors and exit codes, and a secrets canary for `dhow config`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dhow(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
    command.args(args).current_dir(dir).env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run dhow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_prints_dhow_version_and_version_flag_selects_the_app_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dhow(dir.path(), &["version"], &[]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), env!("CARGO_PKG_VERSION"));

    // `--version VER` is Kamal's app version, not a request for dhow's version.
    fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\n",
    )
    .expect("write");
    let out = dhow(dir.path(), &["config", "--version", "abc123"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(":version: abc123"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [&["--help"][..], &["help"][..]] {
        let out = dhow(dir.path(), args, &[]);
        assert!(out.status.success());
        let help = text(&out.stdout);
        for needle in [
            "config",
            "docs",
            "init",
            "secrets",
            "version",
            "--config-file",
            "--destination",
            "--hosts",
            "--roles",
            "--primary",
            "--skip-hooks",
            "Exit codes",
        ] {
            assert!(help.contains(needle), "help lacks {needle}:\n{help}");
        }
    }
    let out = dhow(dir.path(), &["help", "secrets", "fetch"], &[]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--adapter"));
    // `-h` after a command is --hosts, as in Kamal; an unknown command is a usage error.
    let out = dhow(dir.path(), &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn docs_match_kamal_docs_for_every_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected_dir = repo().join("tests/conformance/docs");
    let mut compared = 0;
    for entry in fs::read_dir(&expected_dir).expect("docs dir") {
        let path = entry.expect("entry").path();
        let section = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        let out = dhow(dir.path(), &["docs", &section], &[]);
        assert!(
            out.status.success(),
            "docs {section}: {}",
            text(&out.stderr)
        );
        let expected = fs::read_to_string(&path).expect("expected docs");
        if section == "configuration" {
            // Kamal's `docs configuration` finds nothing (its root document is printed by a
            // bare `kamal docs`); dhow prints the root document for both.
            assert_eq!(
                expected.trim_end(),
                "No documentation found for configuration"
            );
            let bare = dhow(dir.path(), &["docs"], &[]);
            assert_eq!(text(&bare.stdout), text(&out.stdout));
            assert!(text(&out.stdout).starts_with("# Kamal Configuration"));
        } else {
            assert_eq!(
                text(&out.stdout).trim_end(),
                expected.trim_end(),
                "docs {section}"
            );
        }
        compared += 1;
    }
    assert_eq!(compared, 13, "every kamal docs section is compared");
    let out = dhow(dir.path(), &["docs", "nonsense"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("sections: accessory, alias"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn init_writes_kamal_layout_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dhow(dir.path(), &["init"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deploy = dir.path().join("config/deploy.yml");
    assert!(deploy.is_file());
    assert!(dir.path().join(".kamal/secrets").is_file());
    for hook in [
        "pre-connect",
        "pre-build",
        "pre-deploy",
        "post-deploy",
        "docker-setup",
        "pre-app-boot",
        "post-app-boot",
        "pre-proxy-reboot",
        "post-proxy-reboot",
    ] {
        let path = dir.path().join(format!(".kamal/hooks/{hook}.sample"));
        let mode = fs::metadata(&path).expect("sample hook").permissions();
        assert_eq!(mode.mode() & 0o111, 0o111, "{hook} is executable");
    }
    // The template is a valid configuration.
    let out = dhow(dir.path(), &["config"], &[("VERSION", "1")]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    fs::write(&deploy, "service: mine\n").expect("edit");
    let out = dhow(dir.path(), &["init"], &[]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("Config file already exists in config/deploy.yml"));
    assert_eq!(
        fs::read_to_string(&deploy).expect("read"),
        "service: mine\n"
    );
}

#[test]
fn config_errors_exit_3_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dhow(dir.path(), &["config"], &[("VERSION", "1")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("Configuration file not found in config/deploy.yml"),
        "{}",
        text(&out.stderr)
    );

    fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nproxyy: {host: a.com}\n",
    )
    .expect("write");
    let out = dhow(dir.path(), &["config"], &[("VERSION", "1")]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("config/deploy.yml:6:1"), "{stderr}");
    assert!(stderr.contains("proxy"), "did you mean proxy: {stderr}");

    // No version anywhere: not a git repository, no VERSION, no --version.
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\n",
    )
    .expect("write");
    let out = dhow(
        dir.path(),
        &["config"],
        &[(
            "GIT_CEILING_DIRECTORIES",
            dir.path().to_str().expect("utf-8"),
        )],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Can't use commit hash as version"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn erb_commands_see_the_template_env_and_the_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "<% ENV[\"APP_NAME\"] = \"from-erb\" %>\nservice: <%= `printf %s \"$APP_NAME-$KAMAL_DESTINATION\"` %>\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("config/deploy.staging.yml"),
        "image: app2\n",
    )
    .expect("write");
    let out = dhow(
        dir.path(),
        &["config", "-d", "staging"],
        &[("VERSION", "1")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(":service_with_version: from-erb-staging-1"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn traefik_hook_files_are_refused_like_kamal() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    fs::create_dir_all(dir.path().join(".kamal/hooks")).expect("mkdir");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\n",
    )
    .expect("write");
    fs::write(
        dir.path().join(".kamal/hooks/pre-traefik-reboot"),
        "#!/bin/sh\n",
    )
    .expect("write");
    let out = dhow(dir.path(), &["config"], &[("VERSION", "1")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("pre-traefik-reboot"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("(pre|post)-proxy-reboot"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_never_shows_secret_values() {
    const CANARY: &str = "canary-5f1d2e9a";
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    fs::create_dir_all(dir.path().join(".kamal")).expect("mkdir");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nimage: app\nservers: [1.1.1.1]\nregistry: {username: u, password: [REGISTRY_PASSWORD]}\nbuilder: {arch: amd64, secrets: [BUILD_TOKEN]}\nssh: {key_data: [SSH_KEY]}\nenv: {secret: [DB_PASSWORD]}\naccessories: {db: {image: mysql, host: 1.1.1.2, env: {secret: [DB_PASSWORD]}}}\n",
    )
    .expect("write");
    fs::write(
        dir.path().join(".kamal/secrets"),
        format!("REGISTRY_PASSWORD={CANARY}\nBUILD_TOKEN={CANARY}\nSSH_KEY={CANARY}\nDB_PASSWORD={CANARY}\n"),
    )
    .expect("write");
    let out = dhow(
        dir.path(),
        &["config"],
        &[("VERSION", "1"), ("DB_PASSWORD", CANARY)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(CANARY), "{all}");
    assert!(all.contains("SSH_KEY"), "key_data is shown by name: {all}");

    // An invalid config next to the same secrets: the errors carry no secret value either.
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: app\nservers: {web: oops}\nssh: {key_data: [SSH_KEY]}\n",
    )
    .expect("write");
    let out = dhow(
        dir.path(),
        &["config"],
        &[("VERSION", "1"), ("DB_PASSWORD", CANARY)],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(!text(&out.stderr).contains(CANARY), "{}", text(&out.stderr));
}
