//! The schema: Kamal's own configuration documentation files (vendored in `crates/core/schema/`),
//! which are both the reference text for `dhow docs [SECTION]` and, through their example values,
//! the types the validator checks against.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::yaml::{self, Node};

/// The documentation sections, in `kamal docs` naming.
pub const SECTIONS: &[&str] = &[
    "accessory",
    "alias",
    "boot",
    "builder",
    "configuration",
    "env",
    "logging",
    "proxy",
    "registry",
    "role",
    "servers",
    "ssh",
    "sshkit",
];

fn text(section: &str) -> Option<&'static str> {
    Some(match section {
        "accessory" => include_str!("../../schema/accessory.yml"),
        "alias" => include_str!("../../schema/alias.yml"),
        "boot" => include_str!("../../schema/boot.yml"),
        "builder" => include_str!("../../schema/builder.yml"),
        "configuration" => include_str!("../../schema/configuration.yml"),
        "env" => include_str!("../../schema/env.yml"),
        "logging" => include_str!("../../schema/logging.yml"),
        "proxy" => include_str!("../../schema/proxy.yml"),
        "registry" => include_str!("../../schema/registry.yml"),
        "role" => include_str!("../../schema/role.yml"),
        "servers" => include_str!("../../schema/servers.yml"),
        "ssh" => include_str!("../../schema/ssh.yml"),
        "sshkit" => include_str!("../../schema/sshkit.yml"),
        _ => return None,
    })
}

/// The documentation text of a section (`None` gives the root `configuration` document, like
/// `kamal docs` without an argument). Unknown sections give `None`.
pub fn docs(section: Option<&str>) -> Option<&'static str> {
    match section {
        None => text("configuration"),
        Some(name) => text(&name.to_lowercase()),
    }
}

/// The parsed example document of a section.
pub(crate) fn example(section: &str) -> &'static Node {
    static EXAMPLES: OnceLock<HashMap<&'static str, Node>> = OnceLock::new();
    static EMPTY: OnceLock<Node> = OnceLock::new();
    let all = EXAMPLES.get_or_init(|| {
        SECTIONS
            .iter()
            .filter_map(|s| {
                let node = yaml::parse(text(s)?, s, None).ok()??;
                Some((*s, node))
            })
            .collect()
    });
    all.get(section)
        .unwrap_or_else(|| EMPTY.get_or_init(|| Node::synthetic(yaml::Value::Map(Vec::new()))))
}

/// The example value for `path` in the section's document (e.g. `("role", &["servers", "workers"])`).
pub(crate) fn example_at(section: &str, path: &[&str]) -> &'static Node {
    static EMPTY: OnceLock<Node> = OnceLock::new();
    let mut node = example(section);
    for key in path {
        match node.get(key) {
            Some(n) => node = n,
            None => return EMPTY.get_or_init(|| Node::synthetic(yaml::Value::Map(Vec::new()))),
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_parses_and_has_docs() {
        for s in SECTIONS {
            assert!(docs(Some(s)).is_some(), "{s}");
            assert!(example(s).as_map().is_some_and(|m| !m.is_empty()), "{s}");
        }
        assert!(docs(None).unwrap().contains("service: myapp"));
        assert!(docs(Some("nope")).is_none());
    }

    #[test]
    fn examples_take_the_last_duplicate() {
        assert_eq!(
            example_at("builder", &["builder", "driver"]).as_str(),
            Some("cloud org-name/builder-name")
        );
        assert!(
            example_at("configuration", &["hooks_output"])
                .as_map()
                .is_some()
        );
        assert!(
            example_at("role", &["servers", "workers", "hosts"])
                .as_seq()
                .is_some()
        );
    }
}
