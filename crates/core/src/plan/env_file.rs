//! The env file of a role on a host (Kamal's `EnvFile`): the role's merged secrets, one
//! `KEY=value` line each, values escaped as Ruby's `String#dump` does with double quotes and
//! `#` left literal, non-ASCII text kept as is; an empty set gives a single newline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Secret;
use crate::config::{Config, Role};

/// The contents of `.kamal/apps/<svc>/env/roles/<role>.env` for `host`. A secret missing from
/// `secrets` is written empty (the binary resolves every secret before planning).
pub fn env_file_contents(
    config: &Config,
    role: &Role,
    host: &str,
    secrets: &BTreeMap<String, Secret<String>>,
) -> Secret<String> {
    let env = config.env_for(&role.name, host);
    let mut out = String::new();
    for reference in env.secrets() {
        let value = secrets
            .get(&reference.secret)
            .map(|value| value.expose().as_str())
            .unwrap_or_default();
        out.push_str(&reference.name);
        out.push('=');
        out.push_str(&escape_env_file_value(value));
        out.push('\n');
    }
    if out.is_empty() {
        out.push('\n');
    }
    Secret::new(out)
}

/// Kamal's `escape_docker_env_file_value`.
pub fn escape_env_file_value(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '"' => out.push('"'),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            '\u{8}' => out.push_str("\\b"),
            '\u{7}' => out.push_str("\\a"),
            '\u{1b}' => out.push_str("\\e"),
            '#' => out.push('#'),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    // `dump` writes `\"` and `\#` where Kamal's gsubs turn them back into `"` and `#`: both
    // are written bare here, which gives the same text.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_kamal() {
        assert_eq!(escape_env_file_value("plain"), "plain");
        assert_eq!(escape_env_file_value("a\"b"), "a\"b");
        assert_eq!(escape_env_file_value("a#{b}"), "a#{b}");
        assert_eq!(escape_env_file_value("line\nnext"), "line\\nnext");
        assert_eq!(escape_env_file_value("back\\slash"), "back\\\\slash");
        assert_eq!(escape_env_file_value("x\u{1}y"), "x\\x01y");
        assert_eq!(escape_env_file_value("é ü"), "é ü");
        assert_eq!(escape_env_file_value("tab\tend"), "tab\\tend");
        assert_eq!(escape_env_file_value("\\\""), "\\\\\"");
    }
}
