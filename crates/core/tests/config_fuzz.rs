//! Property tests: arbitrary bytes and arbitrary YAML trees never panic the loader, and the YAML
//! emitter's output always parses back to the same value.

use std::collections::BTreeMap;

use dhow_core::config::yaml::Key;
use dhow_core::config::{self, LoadInput, NoTemplates, Node, SourceFile, Span, Value};
use proptest::prelude::*;

fn load(text: &str, overlay: Option<&str>) {
    let env = BTreeMap::new();
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(text),
        },
        destination: overlay.map(|t| {
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
        local_arch: None,
        renderer: &NoTemplates,
    };
    match config::load(&input) {
        Ok(c) => {
            let view = c.kamal_config_view("v1");
            let _ = config::to_yaml(&view);
        }
        Err(e) => {
            assert!(!e.errors.is_empty());
            let _ = e.render();
        }
    }
}

fn node(value: Value) -> Node {
    Node {
        value,
        span: Span::synthetic(),
        tag: None,
    }
}

/// Keys Kamal knows (so trees reach deep into validation) mixed with arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "service", "image", "servers", "registry", "builder", "arch", "env", "clear", "secret", "tags",
            "proxy", "ssl", "host", "hosts", "run", "publish", "http_port", "accessories", "roles", "role",
            "tag", "files", "directories", "options", "restart", "labels", "ssh", "config", "proxy_command",
            "boot", "limit", "aliases", "hooks_output", "logging", "username", "password", "server", "web",
            "workers", "primary_role", "minimum_version", "retain_containers", "healthcheck", "x-anchor",
            "local", "remote", "cache", "type", "pack", "sshkit", "volumes", "<<",
        ]).prop_map(str::to_string),
        1 => "[a-z_:-]{1,12}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1.0e6f64..1.0e6).prop_map(Value::Float),
        ".{0,20}".prop_map(Value::Str),
        prop::sample::select(vec![
            "yes",
            "no",
            "~",
            "22:22",
            "0600",
            "1,000",
            ":sym",
            "localhost:5000",
            "25%",
            "2024-01-01",
            "amd64",
            "ssh://x",
            "a: b",
            "#x",
            "- y"
        ])
        .prop_map(|s| Value::Str(s.to_string())),
        "[a-z]{1,8}".prop_map(Value::Symbol),
    ]
}

fn tree() -> impl Strategy<Value = Node> {
    scalar().prop_map(node).prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|items| node(Value::Seq(items))),
            prop::collection::vec((key(), inner), 0..6).prop_map(|entries| {
                let mut map: Vec<(Key, Node)> = Vec::new();
                for (k, v) in entries {
                    Node::map_set(
                        &mut map,
                        Key {
                            name: k,
                            span: Span::synthetic(),
                        },
                        v,
                    );
                }
                node(Value::Map(map))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        load(&text, None);
        load("service: a\n", Some(&text));
    }

    #[test]
    fn arbitrary_yaml_text_never_panics(text in "([a-z_:\\-\\[\\]{},&*!|>'\"#%@` ~0-9.]|\n|\r\n|  ){0,200}") {
        load(&text, None);
    }

    #[test]
    fn arbitrary_trees_never_panic(root in prop::collection::vec((key(), tree()), 0..10)) {
        let mut map: Vec<(Key, Node)> = Vec::new();
        for (k, v) in root {
            Node::map_set(&mut map, Key { name: k, span: Span::synthetic() }, v);
        }
        let text = config::to_yaml(&node(Value::Map(map)));
        load(&text, None);
        load("service: app\nservers: [a]\n", Some(&text));
    }

    #[test]
    fn emitted_yaml_parses_back_to_the_same_value(t in tree()) {
        let text = config::to_yaml(&t);
        let back = config::yaml::parse(&text, "t", None).unwrap();
        let back = back.unwrap_or_else(|| node(Value::Null));
        prop_assert!(t.same_value(&back), "{}", text);
    }
}
