//! Edge cases recorded from real Kamal 2.11.0 (`tests/config_kamal_edges/`): dhow must print
//! the same `config` view, or fail with Kamal's first message, except where Kamal crashes or
//! prints a nil host (listed below with the reason).
#![expect(
    clippy::disallowed_methods,
    reason = "the test reads its recorded cases"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use dhow_core::config::{self, LoadInput, NoTemplates, SourceFile};

/// Cases where dhow deliberately differs from Kamal 2.11.0.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "c04",
        "`tags:` on an accessory with a list-form `servers` finds no hosts; Kamal then puts a nil \
         host into `hosts`, dhow adds none",
    ),
    (
        "c37",
        "Kamal crashes (`match?` on an Integer) on `registry.server: 5`; dhow reads it as \"5\"",
    ),
    (
        "c48",
        "Kamal crashes (`=~` on an Integer) on `service: 1`; dhow reports the service-name rule",
    ),
    (
        "c60",
        "Kamal's `config` crashes without `servers` (`keys` for nil); dhow prints `:roles: []`",
    ),
    (
        "e01",
        "two proxy roles on one host with the same root `proxy.run`: Kamal compares the run \
         objects by identity, so identical settings count as \"conflicting\"; dhow compares values",
    ),
    (
        "e02",
        "a proxied accessory with the same `proxy.run` as the app on its host: same identity bug",
    ),
];

fn kamal_message(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("ERROR ("))?;
    Some(line.split_once("): ")?.1.trim().to_string())
}

#[test]
fn edge_cases_match_kamal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config_kamal_edges");
    let mut names: Vec<String> = fs::read_dir(dir.join("cases"))
        .expect("cases")
        .map(|e| {
            e.expect("entry")
                .path()
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    let env = BTreeMap::new();
    let mut mismatches = Vec::new();
    for name in &names {
        let text = fs::read_to_string(dir.join("cases").join(format!("{name}.yml"))).expect("case");
        let overlay = fs::read_to_string(dir.join("cases").join(format!("{name}.dest"))).ok();
        let input = LoadInput {
            base: SourceFile {
                name: "config/deploy.yml",
                text: Some(&text),
            },
            destination: overlay.as_deref().map(|t| {
                (
                    "staging",
                    SourceFile {
                        name: "config/deploy.staging.yml",
                        text: Some(t),
                    },
                )
            }),
            env: &env,
            running_version: "2.11.0",
            local_arch: Some("amd64"),
            renderer: &NoTemplates,
        };
        let result = config::load(&input);
        let yml = dir.join("expected").join(format!("{name}.yml"));
        let outcome = if let Ok(expected_text) = fs::read_to_string(&yml) {
            let expected = config::yaml::parse(&expected_text, "kamal", None)
                .expect("yaml")
                .expect("doc");
            match result {
                Ok(c) if c.kamal_config_view("v1").same_value(&expected) => Ok(()),
                Ok(c) => Err(format!(
                    "view differs:\n{}",
                    config::to_yaml(&c.kamal_config_view("v1"))
                )),
                Err(e) => Err(format!("dhow rejects: {}", e.errors[0])),
            }
        } else {
            let error = fs::read_to_string(dir.join("expected").join(format!("{name}.error")))
                .expect("error");
            match (result, kamal_message(&error)) {
                (Ok(_), _) => Err("dhow accepts".to_string()),
                (Err(e), Some(message))
                    if e.errors[0].to_string() != message
                        && !message.starts_with("(<unknown>)") =>
                {
                    Err(format!("kamal `{message}`, dhow `{}`", e.errors[0]))
                }
                (Err(_), _) => Ok(()),
            }
        };
        if let Err(why) = outcome {
            mismatches.push((name.clone(), why));
        }
    }
    println!(
        "kamal edge cases: {}/{} match",
        names.len() - mismatches.len(),
        names.len()
    );
    let unexpected: Vec<&(String, String)> = mismatches
        .iter()
        .filter(|(n, _)| !DIFFERENCES.iter().any(|(d, _)| d == n))
        .collect();
    for (name, why) in &unexpected {
        println!("  MISMATCH {name}: {why}");
    }
    let stale: Vec<&str> = DIFFERENCES
        .iter()
        .map(|(d, _)| *d)
        .filter(|d| !mismatches.iter().any(|(n, _)| n == d))
        .collect();
    assert!(names.len() >= 112, "the recorded cases are missing");
    assert!(
        unexpected.is_empty(),
        "{} cases differ from Kamal",
        unexpected.len()
    );
    assert!(
        stale.is_empty(),
        "listed differences that now match: {stale:?}"
    );
}
