//! Conformance with real Kamal 2.11.0: every case in `tests/conformance/cases.tsv` is loaded in
//! the same world Kamal ran in (README there), twice: through the library (`kamal_config_view`)
//! and through the real binary (`dhow config`). Both must equal Kamal's `kamal config` output as
//! YAML values, or fail where Kamal failed (with Kamal's message as the first error, and exit
//! code 3 from the binary). Deliberate differences are listed, with reasons, in
//! `tests/conformance/deliberate-differences.md`.
#![expect(
    clippy::unwrap_used,
    reason = "in this harness a world that cannot be built is a failure"
)]
#![expect(
    clippy::too_many_lines,
    clippy::case_sensitive_file_extension_comparisons,
    clippy::single_match_else,
    reason = "one linear test that walks every case; corpus file names are lower case"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use dhow_core::config::{self, ErbTemplates, LoadInput, Node, SourceFile, Value};
use dhow_core::erb::ErbHost;

const KAMAL_VERSION: &str = "2.11.0";
const WORLD_SHA: &str = "f0fbae0e18c6f93b366b041083aa99ca9e50f011";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

fn shared_dir(repo: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("DHOW_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    for candidate in [repo.join("../shared"), PathBuf::from("/work/shared")] {
        if candidate.join("corpus").is_dir() {
            return candidate;
        }
    }
    panic!("the shared corpus is not at ../shared (set DHOW_SHARED_DIR)");
}

struct Case {
    name: String,
    config: String,
    destination: Option<String>,
    ok: bool,
}

fn cases(conformance: &Path) -> Vec<Case> {
    let text = fs::read_to_string(conformance.join("cases.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                name: f[0].to_string(),
                config: f[1].to_string(),
                destination: (f[2] != "-").then(|| f[2].to_string()),
                ok: f[3] == "ok",
            }
        })
        .collect()
}

fn world_env(conformance: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(conformance.join("env")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Lays out a case directory the way `scripts/kamal-expected` does.
fn build_world(dir: &Path, config_dir: &Path, conformance: &Path) {
    fs::create_dir_all(dir.join("config")).unwrap();
    fs::create_dir_all(dir.join(".kamal")).unwrap();
    for entry in fs::read_dir(config_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        if name.ends_with(".yml") {
            fs::copy(entry.path(), dir.join("config").join(&name)).unwrap();
        } else if name.starts_with("secrets") {
            fs::copy(entry.path(), dir.join(".kamal").join(&name)).unwrap();
        }
    }
    if config_dir.join("files").is_dir() && config_dir.ends_with("kamal-fixtures") {
        copy_dir(&config_dir.join("files"), &dir.join("test/fixtures/files"));
    }
    let folder = config_dir.file_name().unwrap();
    let world = conformance.join("world").join(folder);
    if world.is_dir() {
        copy_dir(&world, dir);
    }
    fs::write(dir.join("README"), "dhow conformance world\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Dhow Conformance")
            .env("GIT_AUTHOR_EMAIL", "conformance@dhow.invalid")
            .env("GIT_COMMITTER_NAME", "Dhow Conformance")
            .env("GIT_COMMITTER_EMAIL", "conformance@dhow.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "conformance world"]);
    assert_eq!(
        git(&["rev-parse", "HEAD"]),
        WORLD_SHA,
        "the world commit must be reproducible"
    );
}

/// The process side of ERB in the world: commands run with the fixed environment and the fake
/// `docker`/`aws`/`date` first on `PATH`.
struct WorldHost {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl ErbHost for WorldHost {
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
        let out = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.dir)
            .env_clear()
            .envs(&self.env)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        let p = self.dir.join(path);
        if !p.is_file() {
            return Ok(None);
        }
        fs::read_to_string(p).map(Some).map_err(|e| e.to_string())
    }

    fn current_dir(&self) -> String {
        self.dir.to_string_lossy().to_string()
    }
}

fn substitute(node: &mut Node, from: &[(String, &str)]) {
    match &mut node.value {
        Value::Str(s) => {
            for (a, b) in from {
                if s.contains(a.as_str()) {
                    *s = s.replace(a.as_str(), b);
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| substitute(i, from)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| substitute(v, from)),
        _ => {}
    }
}

fn kamal_error_message(text: &str) -> Option<String> {
    let stdout = text
        .split("--- stdout")
        .nth(1)?
        .split("--- stderr")
        .next()?;
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("ERROR ("))?;
    let (_, message) = line.split_once("): ")?;
    Some(message.trim().to_string())
}

fn deliberate_differences(conformance: &Path) -> BTreeMap<String, String> {
    let Ok(text) = fs::read_to_string(conformance.join("deliberate-differences.md")) else {
        return BTreeMap::new();
    };
    // Lines of the form "| `case-name` | reason |".
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), cells.get(2).unwrap_or(&"").to_string()))
        })
        .collect()
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: kamal `{e}` / dhow `{a}`", i + 1);
        }
    }
    format!(
        "lengths differ: kamal {} lines, dhow {} lines",
        expected.lines().count(),
        actual.lines().count()
    )
}

/// One case as the binary sees it.
struct BinaryCase<'a> {
    dir: &'a Path,
    home: &'a Path,
    config_file: &'a str,
    destination: Option<&'a str>,
    env: &'a BTreeMap<String, String>,
    expected: &'a Path,
    ok: bool,
}

/// Runs `dhow config [-c FILE] [-d DEST]` in the case's world and compares its stdout (parsed as
/// YAML) with Kamal's, or its exit code and first error with Kamal's failure.
fn binary_matches(case: &BinaryCase<'_>) -> Result<(), String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
    command.args(["config", "-c", case.config_file]);
    if let Some(destination) = case.destination {
        command.args(["-d", destination]);
    }
    let out = command
        .current_dir(case.dir)
        .env_clear()
        .envs(case.env)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .map_err(|e| format!("dhow config could not run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected_text = fs::read_to_string(case.expected).map_err(|e| e.to_string())?;
    if case.ok {
        if !out.status.success() {
            return Err(format!(
                "dhow config exits {:?}: {stderr}",
                out.status.code()
            ));
        }
        let mut printed = config::yaml::parse(&stdout, "dhow config", None)
            .map_err(|e| format!("dhow config printed invalid YAML: {e}"))?
            .ok_or("dhow config printed nothing")?;
        substitute(
            &mut printed,
            &[
                (case.dir.to_string_lossy().to_string(), "<world>"),
                (case.home.to_string_lossy().to_string(), "<home>"),
            ],
        );
        let expected = config::yaml::parse(&expected_text, "expected", None)
            .map_err(|e| e.to_string())?
            .ok_or("empty expectation")?;
        if expected.same_value(&printed) {
            Ok(())
        } else {
            Err(format!(
                "dhow config: {}",
                first_difference(&expected_text, &stdout)
            ))
        }
    } else {
        if out.status.code() != Some(3) {
            return Err(format!(
                "dhow config exits {:?} where Kamal fails (expected 3)",
                out.status.code()
            ));
        }
        match kamal_error_message(&expected_text) {
            Some(message) if !stderr.contains(&message) => Err(format!(
                "dhow config's errors lack Kamal's `{message}`: {stderr}"
            )),
            _ => Ok(()),
        }
    }
}

#[test]
fn conformance_with_kamal() {
    let repo = repo_root();
    let conformance = repo.join("tests/conformance");
    let shared = shared_dir(&repo);
    let base_env = world_env(&conformance);
    let version = base_env.get("VERSION").cloned().unwrap();
    let allowed = deliberate_differences(&conformance);
    let scratch = std::env::temp_dir().join(format!("dhow-conformance-{}", std::process::id()));
    let home = scratch.join("home");
    fs::create_dir_all(&home).unwrap();
    let fake_bin = conformance.join("fake-bin").canonicalize().unwrap();

    let all = cases(&conformance);
    let mut matched = 0;
    let mut mismatches: Vec<(String, String)> = Vec::new();
    for (index, case) in all.iter().enumerate() {
        let dir = scratch.join(format!("case-{index}"));
        let config_path = shared.join(&case.config);
        build_world(&dir, config_path.parent().unwrap(), &conformance);
        let dir = dir.canonicalize().unwrap();
        let config_file = format!(
            "config/{}",
            config_path.file_name().unwrap().to_string_lossy()
        );
        let mut env = base_env.clone();
        env.insert(
            "PATH".into(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display()),
        );
        env.insert("HOME".into(), home.to_string_lossy().to_string());
        let host = WorldHost {
            dir: dir.clone(),
            env: env.clone(),
        };
        let renderer = ErbTemplates::new(&host);
        let base_text = fs::read_to_string(dir.join(&config_file)).ok();
        let dest_name = case
            .destination
            .as_deref()
            .map(|d| config::destination_file_name(&config_file, d));
        let dest_text = dest_name
            .as_ref()
            .and_then(|n| fs::read_to_string(dir.join(n)).ok());
        let input = LoadInput {
            base: SourceFile {
                name: &config_file,
                text: base_text.as_deref(),
            },
            destination: case
                .destination
                .as_deref()
                .zip(dest_name.as_deref())
                .map(|(d, n)| {
                    (
                        d,
                        SourceFile {
                            name: n,
                            text: dest_text.as_deref(),
                        },
                    )
                }),
            env: &env,
            running_version: KAMAL_VERSION,
            local_arch: Some("amd64"),
            renderer: &renderer,
        };
        let result = config::load(&input);
        let expected_path = conformance.join("expected").join(format!(
            "{}.{}",
            case.name,
            if case.ok { "yml" } else { "error" }
        ));
        let outcome: Result<(), String> = if !expected_path.is_file() {
            Err("no expectation recorded".into())
        } else if case.ok {
            let expected_text = fs::read_to_string(
                conformance
                    .join("expected")
                    .join(format!("{}.yml", case.name)),
            )
            .unwrap_or_else(|_| panic!("no expectation recorded for {}", case.name));
            let expected = config::yaml::parse(&expected_text, "expected", None)
                .unwrap()
                .unwrap();
            match result {
                Err(e) => Err(format!(
                    "dhow rejects: {}",
                    e.errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" | ")
                )),
                Ok(cfg) => {
                    let mut view = cfg.kamal_config_view(&version);
                    substitute(
                        &mut view,
                        &[
                            (dir.to_string_lossy().to_string(), "<world>"),
                            (home.to_string_lossy().to_string(), "<home>"),
                        ],
                    );
                    let emitted = config::to_yaml(&view);
                    let reparsed = config::yaml::parse(&emitted, "dhow", None)
                        .unwrap()
                        .unwrap();
                    if !reparsed.same_value(&view) {
                        Err("dhow's YAML does not parse back to its own view".into())
                    } else if expected.same_value(&view) {
                        Ok(())
                    } else {
                        Err(first_difference(&expected_text, &emitted))
                    }
                }
            }
        } else {
            let expected_text = fs::read_to_string(
                conformance
                    .join("expected")
                    .join(format!("{}.error", case.name)),
            )
            .unwrap_or_else(|_| panic!("no expectation recorded for {}", case.name));
            match (result, kamal_error_message(&expected_text)) {
                (Ok(_), _) => Err("dhow accepts a config Kamal rejects".into()),
                (Err(_), None) => Ok(()),
                (Err(e), Some(message)) => {
                    if e.errors.first().is_some_and(|x| x.to_string() == message) {
                        Ok(())
                    } else {
                        Err(format!(
                            "kamal says `{message}`, dhow says `{}`",
                            e.errors
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ))
                    }
                }
            }
        };
        let outcome = outcome.and_then(|()| {
            binary_matches(&BinaryCase {
                dir: &dir,
                home: &home,
                config_file: &config_file,
                destination: case.destination.as_deref(),
                env: &env,
                expected: &expected_path,
                ok: case.ok,
            })
        });
        match outcome {
            Ok(()) => matched += 1,
            Err(why) => mismatches.push((case.name.clone(), why)),
        }
    }
    let _ = fs::remove_dir_all(&scratch);

    println!(
        "conformance: {matched}/{} cases match (library view and `dhow config`)",
        all.len()
    );
    let mut unexpected = Vec::new();
    for (name, why) in &mismatches {
        match allowed.get(name) {
            Some(reason) => println!("  deliberate difference: {name}: {why} ({reason})"),
            None => {
                println!("  MISMATCH {name}: {why}");
                unexpected.push(name.clone());
            }
        }
    }
    let stale: Vec<&String> = allowed
        .keys()
        .filter(|name| !mismatches.iter().any(|(m, _)| m == *name))
        .collect();
    for name in &stale {
        println!("  STALE deliberate difference (the case now matches): {name}");
    }
    assert!(!all.is_empty(), "no conformance cases found");
    assert!(
        stale.is_empty(),
        "deliberate-differences.md lists cases that now match: {stale:?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected mismatches: {}",
        unexpected.len(),
        unexpected.join(", ")
    );
}
