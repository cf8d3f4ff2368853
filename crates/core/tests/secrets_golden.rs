//! Golden tests: every case under `secrets_golden/cases` was recorded from the real Kamal 2.11
//! (dotenv 3.2.0) by `secrets_golden/record`; dhow must resolve the same secrets in the same
//! order, fail where Kamal fails, and give the same lookup answers. Cases that show a deliberate
//! improvement say so in `case.json` (`dhow_secrets` / `dhow_error`, with `dhow_reason`).

#![expect(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::print_stdout,
    reason = "a test: it reads its fixture files, panics on malformed ones and prints the count"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dhow_core::secrets::{
    Invocation, Output, RunError, Runner, Secrets, SecretsFile, secrets_filenames,
};
use serde_json::Value;

/// Answers `sh -c COMMAND` from the case's table; every other program is missing.
struct TableRunner {
    commands: serde_json::Map<String, Value>,
    reverse_unknown: bool,
}

impl Runner for TableRunner {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        if invocation.program != "sh" || invocation.args.first().map(String::as_str) != Some("-c") {
            return Err(RunError::NotFound {
                program: invocation.program.clone(),
            });
        }
        let command = &invocation.args[1];
        match self.commands.get(command) {
            Some(Value::String(stdout)) => Ok(Output::ok(stdout.clone())),
            Some(entry) => Ok(Output::failed(
                i32::try_from(entry["status"].as_i64().unwrap_or(0)).unwrap(),
                entry["stdout"].as_str().unwrap(),
            )),
            None if self.reverse_unknown => Ok(Output::ok(format!(
                "{}\n",
                command.chars().rev().collect::<String>().replace('$', "%")
            ))),
            None => Err(RunError::Failed {
                program: "sh".into(),
                message: format!("unexpected command: {command}"),
            }),
        }
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" / ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn run_case(dir: &Path) -> Result<(), String> {
    let case: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let env: BTreeMap<String, String> = serde_json::from_value(case["env"].clone()).unwrap();
    let runner = TableRunner {
        commands: case["commands"].as_object().cloned().unwrap_or_default(),
        reverse_unknown: case["default_command_output"] == "reverse",
    };
    let files: Vec<SecretsFile> = secrets_filenames("secrets", case["destination"].as_str())
        .into_iter()
        .map(|path| SecretsFile {
            contents: fs::read_to_string(dir.join(&path)).ok(),
            path,
        })
        .collect();
    let result = Secrets::load(&files, &env, &runner);

    if let Some(dhow_error) = case["dhow_error"].as_str() {
        let error = result.err().ok_or("dhow should fail here")?;
        let text = chain(&error);
        return if text.contains(dhow_error) {
            Ok(())
        } else {
            Err(format!("error {text:?} lacks {dhow_error:?}"))
        };
    }
    if let Some(ruby_error) = expected["error"].as_str() {
        let error = match result {
            Ok(secrets) => {
                return Err(format!(
                    "Kamal fails with {ruby_error:?}, dhow resolved {secrets:?}"
                ));
            }
            Err(error) => error,
        };
        let message = ruby_error.split_once(": ").map_or(ruby_error, |(_, m)| m);
        let text = chain(&error);
        return if text.contains(message) {
            Ok(())
        } else {
            Err(format!("error {text:?} lacks Kamal's {message:?}"))
        };
    }
    let secrets = result.map_err(|e| format!("Kamal resolves this, dhow fails: {}", chain(&e)))?;
    let got: Vec<(String, String)> = secrets
        .iter()
        .map(|(k, v)| (k.to_owned(), v.expose().clone()))
        .collect();
    let want = if case["dhow_secrets"].is_array() {
        let kamal = pairs(&expected["secrets"]);
        let dhow = pairs(&case["dhow_secrets"]);
        if kamal == dhow {
            return Err("the recorded improvement no longer differs from Kamal".into());
        }
        dhow
    } else {
        pairs(&expected["secrets"])
    };
    if got != want {
        return Err(format!(
            "secrets differ\n  kamal: {want:?}\n  dhow:  {got:?}"
        ));
    }
    for lookup in expected["lookups"].as_array().unwrap() {
        let key = lookup[0].as_str().unwrap();
        match (secrets.get(key), &lookup[1]) {
            (Ok(value), want) if want["value"].as_str() == Some(value.expose().as_str()) => {}
            (Err(error), want) if want["error"].as_str() == Some(error.to_string().as_str()) => {}
            (got, want) => {
                return Err(format!(
                    "lookup {key}: kamal {want}, dhow {got:?} / {:?}",
                    got.as_ref().map(|v| v.expose())
                ));
            }
        }
    }
    Ok(())
}

fn case_dirs(group: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/secrets_golden")
        .join(group);
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("expected.json").exists())
        .collect();
    dirs.sort();
    dirs
}

fn check_all(group: &str, minimum: usize) {
    let dirs = case_dirs(group);
    assert!(
        dirs.len() >= minimum,
        "expected at least {minimum} {group}, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case(dir)
                .err()
                .map(|e| format!("{}: {e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    let improvements = dirs
        .iter()
        .filter(|dir| {
            fs::read_to_string(dir.join("case.json"))
                .unwrap()
                .contains("\"dhow_reason\"")
        })
        .count();
    println!(
        "{group}: {} of {} golden cases pass ({improvements} of them documented improvements on Kamal, the rest identical)",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn syntax_cases_match_kamal() {
    check_all("cases", 39);
}

/// Every secrets file in the shared corpus (real projects and Kamal's own fixtures), with every
/// referenced `$NAME` set to `env-NAME` and each `$(...)` answering its own text reversed (with
/// `$` turned into `%`, since dhow deliberately leaves command output alone).
#[test]
fn corpus_files_match_kamal() {
    check_all("corpus", 74);
}
