//! The real binary never lets a secret value reach stderr: not from a vault CLI's output, a
//! secrets file, the environment or an extract miss. `secrets print` and `secrets fetch` put
//! values on stdout only, because that is what they are for.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

const CANARY: &str = "canary-5be0d2-never-on-stderr";

fn write_script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn dhow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", dir.join("bin").display()),
        )
        .env("HOME", dir)
        .env("CANARY_FROM_ENV", CANARY)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run dhow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("bin")).expect("bin");
    fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
    fs::create_dir_all(dir.path().join("config")).expect("config");
    fs::write(dir.path().join("config/deploy.yml"), CONFIG).expect("deploy.yml");
    for destination in ["staging", "production"] {
        fs::write(
            dir.path().join(format!("config/deploy.{destination}.yml")),
            "servers: [10.0.0.2]\n",
        )
        .expect("destination config");
    }
    dir
}

const CONFIG: &str = "service: app\nimage: app\nservers: [10.0.0.1]\n\
                      registry: {username: u, password: p}\nbuilder: {arch: amd64}\n";

#[test]
fn fetch_prints_values_on_stdout_only() {
    let dir = setup();
    write_script(
        &dir.path().join("bin"),
        "aws",
        &format!(
            r#"[ "$1" = --version ] && exit 0
echo '{{"SecretValues":[{{"Name":"db","SecretString":"{CANARY}"}}],"Errors":[]}}'"#
        ),
    );
    let out = dhow(
        dir.path(),
        &["secrets", "fetch", "-a", "aws_secrets_manager", "db"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{{\"db\":\"{CANARY}\"}}\n"));
    assert!(!text(&out.stderr).contains(CANARY));
}

#[test]
fn failing_vault_output_never_reaches_stderr() {
    let dir = setup();
    write_script(
        &dir.path().join("bin"),
        "aws",
        &format!(
            r#"[ "$1" = --version ] && exit 0
echo '{{"SecretValues":[{{"Name":"db","SecretString":"{CANARY}"}}]}}'
exit 255"#
        ),
    );
    write_script(
        &dir.path().join("bin"),
        "bws",
        &format!("[ \"$1\" = --version ] && exit 0\necho '{CANARY} not json'"),
    );
    for args in [
        &["secrets", "fetch", "-a", "aws_secrets_manager", "db"][..],
        &["secrets", "fetch", "-a", "bitwarden-sm", "all"][..],
    ] {
        let out = dhow(dir.path(), args);
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains(CANARY), "{stderr}");
        assert!(!text(&out.stdout).contains(CANARY));
    }
}

#[test]
fn secrets_file_errors_name_the_place_not_the_value() {
    let dir = setup();
    fs::write(
        dir.path().join(".kamal/secrets"),
        format!(
            "A={CANARY}\nSECRETS=$(dhow secrets fetch -a test --account x {CANARY})\n\
             X=$(kamal secrets extract MISSING $SECRETS)\n"
        ),
    )
    .expect("write secrets");
    let out = dhow(dir.path(), &["secrets", "print"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(".kamal/secrets:3"), "{stderr}");
    assert!(stderr.contains("Could not find secret MISSING"), "{stderr}");
    assert!(!stderr.contains(CANARY), "{stderr}");
    assert!(!stderr.contains("5be0d2"), "{stderr}");

    fs::write(
        dir.path().join(".kamal/secrets"),
        "A=$CANARY_FROM_ENV\nB=$(echo $A; exit 3)\n",
    )
    .expect("write");
    let out = dhow(dir.path(), &["secrets", "print"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`echo $A; exit 3` (for B) exited with status 3"),
        "{stderr}"
    );
    assert!(!stderr.contains(CANARY), "{stderr}");
}

#[test]
fn extract_misses_do_not_echo_the_json() {
    let dir = setup();
    let json = format!("{{\"A\":\"{CANARY}\"}}");
    let out = dhow(dir.path(), &["secrets", "extract", "B", &json]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(text(&out.stderr), "error: Could not find secret B\n");
    let out = dhow(
        dir.path(),
        &["secrets", "extract", "B", &format!("{json} trailing")],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(!text(&out.stderr).contains(CANARY));
    let out = dhow(dir.path(), &["secrets", "extract", "A", &json]);
    assert_eq!(text(&out.stdout), format!("{CANARY}\n"));
}

#[test]
fn print_reads_common_then_main_or_destination() {
    let dir = setup();
    fs::write(
        dir.path().join(".kamal/secrets-common"),
        "A=common\nB=common\n",
    )
    .expect("write");
    fs::write(
        dir.path().join(".kamal/secrets"),
        "B=main\nC=$(printf '%s' \"$CANARY_FROM_ENV\" | wc -c)\n",
    )
    .expect("write");
    fs::write(dir.path().join(".kamal/secrets.staging"), "B=staging\n").expect("write");
    let out = dhow(dir.path(), &["secrets", "print"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("A=common\nB=main\nC={}\n", CANARY.len())
    );
    let out = dhow(dir.path(), &["-d", "staging", "secrets", "print"]);
    assert_eq!(text(&out.stdout), "A=common\nB=staging\n");
    let out = dhow(dir.path(), &["-d", "production", "secrets", "print"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "A=common\nB=common\n".to_owned())
    );
}

#[test]
fn print_follows_secrets_path_from_the_configuration() {
    let dir = setup();
    fs::write(
        dir.path().join("config/deploy.yml"),
        format!("{CONFIG}secrets_path: config/vault\n"),
    )
    .expect("deploy.yml");
    fs::write(dir.path().join(".kamal/secrets"), "IGNORED=1\n").expect("write");
    fs::write(
        dir.path().join("config/vault"),
        "FROM_VAULT=$CANARY_FROM_ENV\n",
    )
    .expect("write");
    let out = dhow(dir.path(), &["secrets", "print"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("FROM_VAULT={CANARY}\n"));
    assert_eq!(text(&out.stderr), "");

    fs::remove_file(dir.path().join("config/deploy.yml")).expect("remove");
    let out = dhow(dir.path(), &["secrets", "print"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "no configuration, as with kamal secrets print"
    );
    assert!(!text(&out.stderr).contains(CANARY));
}
