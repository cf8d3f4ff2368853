//! Snapshot tests of configuration error renderings (location, caret snippet, expected, hint).

use std::collections::BTreeMap;

use dhow_core::config::{self, LoadInput, NoTemplates, SourceFile};

fn render(base: &str, destination: Option<(&str, &str)>) -> String {
    let env = BTreeMap::new();
    let dest_name = destination.map(|(d, _)| config::destination_file_name("config/deploy.yml", d));
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(base),
        },
        destination: destination.zip(dest_name.as_deref()).map(|((d, t), n)| {
            (
                d,
                SourceFile {
                    name: n,
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
        Ok(_) => panic!("expected the config to be rejected"),
        Err(e) => e.render(),
    }
}

#[test]
fn misspelt_keys_wrong_types_and_reserved_labels() {
    let text = "service: app\nimage: dhh/app\nservrs:\n  - 1.1.1.1\nregistry:\n  username: user\n  password: [PASSWORD]\nbuilder:\n  arch: amd64\nretain_containers: \"3\"\nservers:\n  web:\n    hosts: [1.1.1.1]\n    labels:\n      service: other\n    proxy:\n      app-port: 3000\n";
    insta::assert_snapshot!(render(text, None));
}

#[test]
fn missing_requirements_and_destination_overlay() {
    let base =
        "service: my app\nimage: dhh/app\nregistry:\n  server: ghcr.io\nservers: [1.1.1.1]\n";
    let overlay = "builder:\n  local: false\n";
    insta::assert_snapshot!(render(base, Some(("staging", overlay))));
}

#[test]
fn yaml_syntax_errors_point_at_the_file() {
    insta::assert_snapshot!(render("service: app\nservers: [a, b\nimage: x\n", None));
}

#[test]
fn hooks_output_and_accessory_selectors() {
    let text = "service: app\nimage: i\nregistry: {username: u, password: p}\nbuilder: {arch: amd64}\nservers: [a]\nhooks_output:\n  pre-deploy: loud\naccessories:\n  db:\n    image: mysql\n    host: a\n    roles: [web]\n";
    insta::assert_snapshot!(render(text, None));
}

#[test]
fn template_errors_underline_the_expression() {
    let refuse = |_: &str, source: &str, _: &BTreeMap<String, String>| {
        let line = source.lines().position(|l| l.contains("<%")).unwrap_or(0) + 1;
        let col = source
            .lines()
            .nth(line - 1)
            .and_then(|l| l.find("<%="))
            .unwrap_or(0)
            + 5;
        Err(config::TemplateFailure {
            message: "`ENV.fetch(\"NOPE\")` raised KeyError: key not found: \"NOPE\"".into(),
            line,
            col: Some(col),
            hint: Some("set NOPE in the environment".into()),
        })
    };
    let env = BTreeMap::new();
    let text = "service: app\nregistry:\n  password: <%= ENV.fetch(\"NOPE\") %>\n";
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(text),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: None,
        renderer: &refuse,
    };
    insta::assert_snapshot!(config::load(&input).unwrap_err().render());
}
