//! Kamal's quoting rules, byte for byte: `escape_shell_value` (Ruby `String#dump` on ASCII runs,
//! backticks escaped, `$` escaped unless it opens `${...}`), `argumentize`, `optionize`, and the
//! single-quote wrapping used for `sh -c '...'`.

use std::fmt::Write as _;

use super::script::Token;

/// Escapes a value for the shell the way `Kamal::Utils.escape_shell_value` does: each run of ASCII
/// characters is written as a Ruby `String#dump` (double quotes, C-like escapes), each run of
/// non-ASCII characters is left bare. `${NAME}` is left for the remote shell to expand.
pub fn escape_shell_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let mut rest = value;
    while let Some(first) = rest.chars().next() {
        let ascii = first.is_ascii();
        let end = rest
            .find(|c: char| c.is_ascii() != ascii)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        if ascii {
            out.push_str(&escape_ascii(run));
        } else {
            out.push_str(run);
        }
        rest = tail;
    }
    out
}

/// `String#dump` of an ASCII string, then backticks and `$` (not opening `${...}`) escaped.
fn escape_ascii(run: &str) -> String {
    let bytes = run.as_bytes();
    let mut out = String::with_capacity(run.len() + 2);
    out.push('"');
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0c' => out.push_str("\\f"),
            b'\x0b' => out.push_str("\\v"),
            b'\x08' => out.push_str("\\b"),
            b'\x07' => out.push_str("\\a"),
            b'\x1b' => out.push_str("\\e"),
            b'#' if matches!(bytes.get(index + 1), Some(b'{' | b'$' | b'@')) => out.push_str("\\#"),
            b'`' => out.push_str("\\`"),
            b'$' if !opens_braced_variable(&bytes[index + 1..]) => out.push_str("\\$"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02X}");
            }
        }
    }
    out.push('"');
    out
}

/// Kamal's `/\$(?!{[^\}]*\})/`: a `$` followed by `{`, then anything but `}`, then `}`.
fn opens_braced_variable(after_dollar: &[u8]) -> bool {
    after_dollar.first() == Some(&b'{') && after_dollar[1..].contains(&b'}')
}

/// Kamal's `argumentize(flag, pairs)`: `flag key="value"` per pair; a blank value (empty or only
/// whitespace, Ruby's `blank?`) gives a bare `flag key`. Sensitive pairs render as
/// `key=[REDACTED]` in logs.
pub fn argumentize<'a>(
    flag: &str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    sensitive: bool,
) -> Vec<Token> {
    let mut tokens = Vec::new();
    for (key, value) in pairs {
        tokens.push(Token::Plain(flag.to_owned()));
        if value.chars().all(char::is_whitespace) {
            tokens.push(Token::Plain(key.to_owned()));
        } else {
            let text = format!("{key}={}", escape_shell_value(value));
            if sensitive {
                tokens.push(Token::Sensitive {
                    text,
                    redaction: format!("{key}=[REDACTED]"),
                });
            } else {
                tokens.push(Token::Plain(text));
            }
        }
    }
    tokens
}

/// Kamal's `optionize(options)`: `--key "value"`, or a bare `--key` for `None` (Ruby `true`).
pub fn optionize<'a>(options: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Vec<String> {
    let mut words = Vec::new();
    for (key, value) in options {
        words.push(format!("--{key}"));
        if let Some(value) = value {
            words.push(escape_shell_value(value));
        }
    }
    words
}

/// Kamal's `optionize(options, with: "=")`: `--key="value"`, or a bare `--key` for `None`.
pub fn optionize_with<'a>(
    options: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    separator: &str,
) -> Vec<String> {
    options
        .into_iter()
        .map(|(key, value)| match value {
            Some(value) => format!("--{key}{separator}{}", escape_shell_value(value)),
            None => format!("--{key}"),
        })
        .collect()
}

/// Wraps text in single quotes for `sh -c '...'`, a single quote becoming `'\''`.
pub fn shell_single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs produced by the real `Kamal::Utils.escape_shell_value` (Kamal 2.11.0).
    const RUBY_GOLDEN: &[(&str, &str)] = &[
        ("plain", "\"plain\""),
        ("with space", "\"with space\""),
        ("quote\"s", "\"quote\\\"s\""),
        ("back\\slash", "\"back\\\\slash\""),
        ("new\nline", "\"new\\nline\""),
        ("tab\tx", "\"tab\\tx\""),
        ("dollar $HOME", "\"dollar \\$HOME\""),
        ("brace ${HOME}", "\"brace ${HOME}\""),
        ("${A}b$c", "\"${A}b\\$c\""),
        ("back`tick`", "\"back\\`tick\\`\""),
        ("hash #{x} #$y #@z #x", "\"hash \\#{x} \\#\\$y \\#@z #x\""),
        (
            "ctl\x01\x7f\x1b\x07\x08\x0c\x0b\r",
            "\"ctl\\x01\\x7F\\e\\a\\b\\f\\v\\r\"",
        ),
        ("ünïcode \"q\" é$X", "ü\"n\"ï\"code \\\"q\\\" \"é\"\\$X\""),
        ("single'quote", "\"single'quote\""),
        ("", ""),
        ("${unclosed", "\"\\${unclosed\""),
        ("$", "\"\\$\""),
        ("a\x00b", "\"a\\x00b\""),
        ("${a}${b", "\"${a}\\${b\""),
        ("x$(cmd)", "\"x\\$(cmd)\""),
    ];

    #[test]
    fn matches_kamal_escape_shell_value() {
        for (input, expected) in RUBY_GOLDEN {
            assert_eq!(escape_shell_value(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn argumentize_like_kamal() {
        let tokens = argumentize(
            "--env",
            [
                ("A", "1"),
                ("EMPTY", ""),
                ("B", "x y"),
                ("BLANK", " \t\u{3000}"),
            ],
            false,
        );
        let words: Vec<String> = tokens
            .iter()
            .map(|token| match token {
                Token::Plain(text) | Token::Sensitive { text, .. } => text.clone(),
            })
            .collect();
        assert_eq!(
            words,
            [
                "--env",
                "A=\"1\"",
                "--env",
                "EMPTY",
                "--env",
                "B=\"x y\"",
                "--env",
                "BLANK"
            ]
        );
    }

    #[test]
    fn argumentize_sensitive_redacts() {
        let tokens = argumentize("--build-arg", [("TOKEN", "canary")], true);
        assert_eq!(
            tokens[1],
            Token::Sensitive {
                text: "TOKEN=\"canary\"".to_owned(),
                redaction: "TOKEN=[REDACTED]".to_owned()
            }
        );
    }

    #[test]
    fn optionize_like_kamal() {
        assert_eq!(
            optionize([("memory", Some("2g")), ("cap-add", None)]),
            ["--memory", "\"2g\"", "--cap-add"]
        );
        assert_eq!(
            optionize_with([("target", Some("abc:80")), ("tls", None)], "="),
            ["--target=\"abc:80\"", "--tls"]
        );
    }

    #[test]
    fn single_quotes_for_sh_c() {
        assert_eq!(
            shell_single_quote("echo 'hi' there"),
            "'echo '\\''hi'\\'' there'"
        );
    }
}
