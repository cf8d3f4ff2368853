//! `--hosts`, `--roles`, `--primary` on a loaded configuration, as Kamal's commander tests pin.

use std::collections::BTreeMap;

use dhow_core::config::{self, Config, LoadInput, NoTemplates, SourceFile};
use dhow_core::selection::{SelectionError, select};

const YAML: &str = "
service: app
image: dhh/app
registry: {username: u, password: p}
builder: {arch: amd64}
servers:
  web: [1.1.1.1, 1.1.1.2]
  workers:
    hosts: [1.1.1.3, 1.1.1.4]
  jobs: [1.1.1.2, 1.1.1.5]
accessories:
  db:
    image: mysql
    host: 1.1.1.9
";

fn load(yaml: &str) -> Config {
    let env = BTreeMap::new();
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(yaml),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    config::load(&input).expect("valid config")
}

#[test]
fn everything_by_default_primary_first() {
    let config = load(YAML);
    let selection = select(&config, None, None, false).expect("selection");
    assert_eq!(selection.roles, ["web", "jobs", "workers"]);
    // Kamal's all_hosts walks roles sorted by name (jobs, web, workers), then accessories;
    // a stable sort then puts the primary role's hosts first.
    assert_eq!(
        selection.hosts,
        [
            "1.1.1.2", "1.1.1.1", "1.1.1.5", "1.1.1.3", "1.1.1.4", "1.1.1.9"
        ]
    );
    assert_eq!(selection.primary_host, "1.1.1.1");
    assert_eq!(selection.primary_role.as_deref(), Some("web"));
    assert_eq!(
        selection.app_hosts(&config),
        ["1.1.1.2", "1.1.1.1", "1.1.1.5", "1.1.1.3", "1.1.1.4"]
    );
    assert_eq!(selection.accessory_hosts(&config), ["1.1.1.9"]);
}

#[test]
fn braces_may_hold_commas_unlike_kamal() {
    // Kamal splits -h on every comma first, so `{3,4}` can never match there.
    let config = load(YAML);
    let selection = select(&config, Some("1.1.1.{3,4},1.1.1.9"), None, false).expect("selection");
    assert_eq!(selection.hosts, ["1.1.1.3", "1.1.1.4", "1.1.1.9"]);
}

#[test]
fn hosts_filter_with_wildcards_and_lock_host() {
    let config = load(YAML);
    let selection = select(&config, Some("1.1.1.{3,4}"), None, false).expect("selection");
    assert_eq!(selection.hosts, ["1.1.1.3", "1.1.1.4"]);
    assert_eq!(selection.roles, ["workers"]);
    // The lock goes to the first selected host, as in Kamal.
    assert_eq!(selection.primary_host, "1.1.1.3");
    assert_eq!(selection.primary_role.as_deref(), Some("workers"));
}

#[test]
fn roles_filter_cuts_hosts() {
    let config = load(YAML);
    let selection = select(&config, None, Some("jobs"), false).expect("selection");
    assert_eq!(selection.roles, ["jobs"]);
    assert_eq!(selection.hosts, ["1.1.1.2", "1.1.1.5"]);
    assert_eq!(selection.primary_host, "1.1.1.2");
    let roles_on = selection.roles_on(&config, "1.1.1.2");
    assert_eq!(
        roles_on.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["jobs"]
    );
}

#[test]
fn primary_of_config_or_of_first_role() {
    let config = load(YAML);
    let selection = select(&config, None, None, true).expect("selection");
    assert_eq!(selection.hosts, ["1.1.1.1"]);
    let selection = select(&config, None, Some("workers"), true).expect("selection");
    assert_eq!(selection.hosts, ["1.1.1.3"]);
}

#[test]
fn no_match_errors_name_the_filter() {
    let config = load(YAML);
    assert_eq!(
        select(&config, Some("9.9.9.9,8.8.*"), None, false),
        Err(SelectionError::NoHosts("9.9.9.9,8.8.*".to_owned()))
    );
    assert_eq!(
        select(&config, None, Some("api"), false).map_err(|e| e.to_string()),
        Err("No --roles match for api".to_owned())
    );
}
