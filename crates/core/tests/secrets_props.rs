//! Property tests: no secrets file, `$(...)` output or `secrets extract` input can panic the
//! parser, and values written in single quotes come back unchanged.

use std::collections::BTreeMap;

use dhow_core::secrets::{Invocation, Output, RunError, Runner, Secrets, SecretsFile, extract};
use proptest::prelude::*;

/// Every command prints its own text back, so substituted output is arbitrary too.
struct Echo;

impl Runner for Echo {
    fn run(&self, invocation: &Invocation) -> Result<Output, RunError> {
        Ok(Output::ok(
            invocation.args.last().cloned().unwrap_or_default(),
        ))
    }
}

fn load(text: &str) -> Result<Secrets, dhow_core::secrets::SecretsError> {
    let env: BTreeMap<String, String> = [("HOME".to_owned(), "/home/u".to_owned())].into();
    let files = vec![SecretsFile {
        path: ".kamal/secrets".into(),
        contents: Some(text.to_owned()),
    }];
    Secrets::load(&files, &env, &Echo)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = load(&text);
    }

    #[test]
    fn dotenv_shaped_text_never_panics(
        lines in prop::collection::vec(
            r##"(export )?[A-Za-z_.]{1,6}[ ]?[=:][ ]?(['"]?)[ -~é\n\\$(){}'"#]{0,24}"##,
            0..8,
        )
    ) {
        let _ = load(&lines.join("\n"));
    }

    #[test]
    fn single_quoted_values_are_literal(value in r"[^'\n\r\x00]{0,40}") {
        let trimmed_ends = value.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
        prop_assume!(trimmed_ends == value);
        let secrets = load(&format!("A='{value}'\n")).unwrap();
        prop_assert_eq!(secrets.get("A").unwrap().expose(), &value);
    }

    #[test]
    fn extract_never_panics(name in any::<String>(), json in any::<String>()) {
        let _ = extract(&name, &json);
    }
}
