//! Property tests: no template, however malformed, makes the ERB renderer panic.

use dhow_core::erb::{ErbHost, render};
use proptest::prelude::*;

struct Host;

impl ErbHost for Host {
    fn env(&self, name: &str) -> Option<String> {
        name.len().is_multiple_of(2).then(|| format!("v-{name}"))
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        vec![("A".into(), "\"a\"".into()), ("BB".into(), "b".into())]
    }
    fn run(&self, command: &str) -> Result<String, String> {
        if command.contains('!') {
            Err("cannot start".into())
        } else {
            Ok(format!("{command}\n"))
        }
    }
    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        Ok((path == ".env").then(|| "A=1\nexport B=\"x $A $(echo y)\"\n".to_owned()))
    }
    fn current_dir(&self) -> String {
        "/app".into()
    }
}

/// Fragments that exercise the scanner, lexer, parser and evaluator together.
const FRAGMENTS: &[&str] = &[
    "<%",
    "<%=",
    "<%#",
    "<%-",
    "-%>",
    "%>",
    "<%%",
    "%%>",
    "\n",
    " ",
    "\t",
    "\r\n",
    "ENV",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    "|",
    "\"",
    "'",
    "`",
    "%x(",
    "%w[",
    "#{",
    "#",
    ".",
    "fetch",
    "strip",
    "each",
    "do",
    "end",
    "if",
    "elsif",
    "else",
    "unless",
    "begin",
    "rescue",
    "then",
    "||",
    "&&",
    "==",
    "!=",
    "?",
    ":",
    "::",
    ",",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "..",
    "...",
    "1",
    "0",
    "-1",
    "\"A\"",
    "'BB'",
    "x",
    "y",
    "nil",
    "true",
    "Kamal::Utils.docker_arch",
    "File.read",
    "Dotenv",
    "require \"dotenv\"",
    "Dotenv.load",
    "raise",
    "next",
    "break",
    "&:strip",
    "é",
    "\\",
    "$",
    "@",
    "<<~E",
    "YAML.load",
    "[1, 2]",
    "{ 'a' => 1 }",
    "x = ",
    ".map",
    ".to_json",
    ".inspect",
    "(1..3)",
    "!",
    "not",
    "and",
    "or",
    "defined?",
    "__dir__",
];

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<String>(),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn fragments_never_panic(source in template()) {
        let _ = render(&source, "deploy.yml", &Host);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let source = String::from_utf8_lossy(&bytes);
        let _ = render(&source, "deploy.yml", &Host);
    }

    #[test]
    fn text_without_tags_is_unchanged(text in "[^<]*") {
        let rendered = render(&text, "deploy.yml", &Host).unwrap();
        prop_assert_eq!(rendered.text, text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("<%= {}1{} %>", "(".repeat(20), ")".repeat(20));
    assert!(render(&deep, "deploy.yml", &Host).is_ok());
    let deep = format!("<%= {}1{} %>", "(".repeat(5000), ")".repeat(5000));
    assert!(render(&deep, "deploy.yml", &Host).is_err());
    let deep = format!("<%= \"{}\" %>", "#{\"".repeat(200));
    assert!(render(&deep, "deploy.yml", &Host).is_err());
    let deep = format!("<%= {}1{} %>", "[".repeat(5000), "]".repeat(5000));
    assert!(render(&deep, "deploy.yml", &Host).is_err());
}
