//! Ruby's `Shellwords` (`shellsplit`, `shellescape`) and `String#inspect`, reproduced exactly where
//! Kamal's secrets code relies on them: splitting `$(kamal secrets ...)` lines, the shell-escaped
//! JSON of `secrets fetch --inline`, and the quoted names in Passbolt filters.

use std::fmt::Write as _;

/// A quote that is never closed, as `Shellwords.split` reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unmatched quote: {}", inspect(line))]
pub struct UnmatchedQuote {
    line: String,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `Shellwords.split`: words, with single quotes literal, double quotes unescaping `$`, `` ` ``,
/// `"`, `\` and newline, and a bare backslash escaping the next character.
pub fn shellsplit(line: &str) -> Result<Vec<String>, UnmatchedQuote> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut field = String::new();
    let mut pos = 0;
    loop {
        let mut p = pos;
        while p < chars.len() && is_space(chars[p]) {
            p += 1;
        }
        if p >= chars.len() {
            break;
        }
        let c = chars[p];
        if c == '\'' {
            let Some(close) = chars[p + 1..].iter().position(|&c| c == '\'') else {
                return Err(UnmatchedQuote {
                    line: line.to_owned(),
                });
            };
            field.extend(&chars[p + 1..p + 1 + close]);
            p += close + 2;
        } else if c == '"' {
            let mut q = p + 1;
            let mut text = String::new();
            let mut closed = false;
            while q < chars.len() {
                match chars[q] {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' if q + 1 < chars.len() => {
                        let next = chars[q + 1];
                        if !matches!(next, '$' | '`' | '"' | '\\' | '\n') {
                            text.push('\\');
                        }
                        text.push(next);
                        q += 2;
                    }
                    '\\' => break,
                    other => {
                        text.push(other);
                        q += 1;
                    }
                }
            }
            if !closed {
                return Err(UnmatchedQuote {
                    line: line.to_owned(),
                });
            }
            field.push_str(&text);
            p = q + 1;
        } else if c == '\\' {
            match chars.get(p + 1) {
                Some('\n') => {
                    field.push_str("\\\n");
                    p += 2;
                }
                Some(&next) => {
                    field.push(next);
                    p += 2;
                }
                None => {
                    field.push('\\');
                    p += 1;
                }
            }
        } else {
            while p < chars.len() && !is_space(chars[p]) && !matches!(chars[p], '\\' | '\'' | '"') {
                field.push(chars[p]);
                p += 1;
            }
        }
        if p >= chars.len() {
            words.push(std::mem::take(&mut field));
        } else if is_space(chars[p]) {
            words.push(std::mem::take(&mut field));
            p += 1;
        }
        pos = p;
    }
    Ok(words)
}

/// `Shellwords.escape`: `''` for the empty string, otherwise a backslash before every character
/// outside `[A-Za-z0-9_\-.,:+/@\n]`, and each newline wrapped as `'\n'`.
pub fn shellescape(text: &str) -> String {
    if text.is_empty() {
        return "''".to_owned();
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c == '\n' {
            out.push_str("'\n'");
        } else if c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | ',' | ':' | '+' | '/' | '@')
        {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// Ruby's `String#inspect` for UTF-8 text: double quotes, backslash escapes for quotes,
/// backslashes, control characters and `#{`, `#$`, `#@`.
pub fn inspect(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x0C' => out.push_str("\\f"),
            '\x0B' => out.push_str("\\v"),
            '\x08' => out.push_str("\\b"),
            '\x07' => out.push_str("\\a"),
            '\x1B' => out.push_str("\\e"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_shellwords() {
        assert_eq!(shellsplit("a b  c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            shellsplit("a 'b c' \"d \\\" e\"").unwrap(),
            ["a", "b c", "d \" e"]
        );
        assert_eq!(shellsplit("a\\ b c").unwrap(), ["a b", "c"]);
        assert_eq!(shellsplit("x'y'\"z\" w").unwrap(), ["xyz", "w"]);
        assert_eq!(shellsplit("\"a\\nb\"").unwrap(), ["a\\nb"]);
        assert_eq!(shellsplit("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shellsplit("a ''").unwrap(), ["a", ""]);
        assert!(shellsplit("a 'b").is_err());
        assert!(shellsplit("a \"b").is_err());
        assert_eq!(
            shellsplit("a 'b").unwrap_err().to_string(),
            "Unmatched quote: \"a 'b\""
        );
    }

    #[test]
    fn escape_round_trips_through_split() {
        for text in [
            "",
            "plain",
            "{\"a\":\"b c\"}",
            "new\nline",
            "ünï",
            "'\"$`\\",
        ] {
            let escaped = shellescape(text);
            assert_eq!(shellsplit(&escaped).unwrap(), [text], "{escaped}");
        }
        assert_eq!(shellescape("{\"a\":1}"), "\\{\\\"a\\\":1\\}");
        assert_eq!(shellescape("a\nb"), "a'\n'b");
    }

    #[test]
    fn inspects_like_ruby() {
        assert_eq!(inspect("a\"b\\c\n#{x} #y"), "\"a\\\"b\\\\c\\n\\#{x} #y\"");
        assert_eq!(inspect("\u{1}é"), "\"\\u0001é\"");
    }
}
