//! `dhow secrets fetch` against fake vault CLIs (bash scripts in `secrets_fakes/bin`, put first
//! on PATH): for every line of `secrets_fakes/scenarios`, dhow must print exactly what Kamal 2.11
//! printed with the same fakes (`secrets_fakes/record`), fail with Kamal's message where Kamal
//! failed, and call the CLIs with the same arguments in the same order.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fakes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/secrets_fakes")
}

struct Scenario {
    name: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

fn scenarios() -> Vec<Scenario> {
    fs::read_to_string(fakes().join("scenarios"))
        .expect("scenarios file")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, '|');
            let name = parts.next().expect("name").to_owned();
            let env = parts
                .next()
                .expect("environment")
                .split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("NAME=value");
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            let args = parts
                .next()
                .expect("arguments")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            Scenario { name, env, args }
        })
        .collect()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    log: String,
}

fn run_dhow(scenario: &Scenario, work: &Path) -> Run {
    let log = work.join("log");
    let state = work.join("state");
    fs::write(&log, "").expect("log");
    let _ = fs::remove_file(&state);
    let mut path = format!("{}:/usr/bin:/bin", fakes().join("bin").display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
    command
        .env_clear()
        .env("HOME", work)
        .env("FAKE_LOG", &log)
        .env("FAKE_STATE", &state)
        .current_dir(work);
    for (key, value) in &scenario.env {
        match key.as_str() {
            "FAKES" => "/usr/bin:/bin".clone_into(&mut path),
            "BW_STATE" => fs::write(&state, format!("{value}\n")).expect("state"),
            _ => {
                command.env(key, value);
            }
        }
    }
    let output = command
        .env("PATH", path)
        .arg("secrets")
        .arg("fetch")
        .args(&scenario.args)
        .output()
        .expect("run dhow");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        log: fs::read_to_string(&log).expect("log"),
    }
}

fn expected(name: &str, ext: &str) -> String {
    fs::read_to_string(fakes().join("expected").join(format!("{name}.{ext}")))
        .expect("expected file")
}

fn check(scenario: &Scenario, work: &Path) -> Result<(), String> {
    let run = run_dhow(scenario, work);
    let kamal_error = expected(&scenario.name, "err");
    let kamal_error = kamal_error.trim_end();
    if kamal_error.is_empty() {
        if run.code != Some(0) {
            return Err(format!("exit {:?}, stderr {}", run.code, run.stderr));
        }
        let want = expected(&scenario.name, "out");
        if run.stdout != want {
            return Err(format!(
                "stdout\n  kamal: {want:?}\n  dhow:  {:?}",
                run.stdout
            ));
        }
    } else {
        if run.code != Some(4) {
            return Err(format!(
                "exit {:?} (want 4), stdout {:?}",
                run.code, run.stdout
            ));
        }
        if !run.stderr.contains(&format!("error: {kamal_error}")) {
            return Err(format!(
                "stderr {:?} lacks Kamal's {kamal_error:?}",
                run.stderr
            ));
        }
        if !run.stdout.is_empty() {
            return Err(format!(
                "stdout should be empty on failure: {:?}",
                run.stdout
            ));
        }
    }
    // Kamal passes `op signin --raw`'s output with its newline escaped as `\n` to `--session`;
    // dhow passes the token itself.
    let want_log =
        expected(&scenario.name, "log").replace("[op-session-token\\n]", "[op-session-token]");
    if run.log != want_log {
        return Err(format!(
            "CLI calls differ\n  kamal:\n{want_log}  dhow:\n{}",
            run.log
        ));
    }
    Ok(())
}

#[test]
fn every_adapter_matches_kamal_with_fake_clis() {
    let work = tempfile::tempdir().expect("tempdir");
    let scenarios = scenarios();
    assert!(scenarios.len() >= 29, "scenarios: {}", scenarios.len());
    let failures: Vec<String> = scenarios
        .iter()
        .filter_map(|s| {
            check(s, work.path())
                .err()
                .map(|e| format!("{}: {e}", s.name))
        })
        .collect();
    let adapters: std::collections::BTreeSet<&str> = scenarios
        .iter()
        .filter_map(|s| {
            s.args
                .iter()
                .enumerate()
                .find_map(|(i, a)| match a.strip_prefix("--adapter=") {
                    Some(name) => Some(name),
                    None => (a == "-a").then(|| s.args[i + 1].as_str()),
                })
        })
        .filter(|name| *name != "nope")
        .collect();
    eprintln!(
        "{} of {} adapter scenarios match Kamal ({} adapters: {})",
        scenarios.len() - failures.len(),
        scenarios.len(),
        adapters.len(),
        adapters.into_iter().collect::<Vec<_>>().join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn missing_account_is_an_error_not_a_success() {
    // Kamal prints the message on stdout and exits 0; dhow fails with exit code 4.
    let work = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario {
        name: "no_account".into(),
        env: Vec::new(),
        args: ["-a", "1password", "--from", "Vault/Item", "X"]
            .map(str::to_owned)
            .to_vec(),
    };
    let run = run_dhow(&scenario, work.path());
    assert_eq!(run.code, Some(4));
    assert_eq!(
        run.stderr,
        "error: No value provided for required options '--account'\n"
    );
    assert_eq!(run.stdout, "");
    assert_eq!(run.log, "", "no CLI may run without an account");
}

#[test]
fn inline_output_is_shell_escaped_json() {
    let work = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario {
        name: "inline".into(),
        env: Vec::new(),
        args: ["-a", "test", "--account", "x", "--inline", "A B", "b'c"]
            .map(str::to_owned)
            .to_vec(),
    };
    let run = run_dhow(&scenario, work.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "\\{\\\"A\\ B\\\":\\\"B\\ A\\\",\\\"b\\'c\\\":\\\"c\\'b\\\"\\}\n"
    );
}
