//! Ruby regular expressions for ERB templates: translates the Onigmo syntax configs use into the
//! `regex` crate's syntax with Ruby's meaning (`^`/`$` match at every line, ASCII `\s`, `\d`,
//! `\w`, `/m` is "dot matches newline"), and rejects what has no faithful translation
//! (look-around, back-references, possessive and atomic groups, `\Z`, `\G`).

use std::fmt::Write as _;

use regex::Regex;

/// Translates a Ruby pattern with its flags (`i`, `m`, `x`) into a compiled [`Regex`].
pub(super) fn compile(source: &str, flags: &str) -> Result<Regex, String> {
    let mut prefix = String::from("(?m");
    if flags.contains('i') {
        prefix.push('i');
    }
    if flags.contains('m') {
        prefix.push('s');
    }
    if flags.contains('x') {
        prefix.push('x');
    }
    prefix.push(')');
    let translated = translate(source)?;
    Regex::new(&format!("{prefix}{translated}"))
        .map_err(|e| format!("this regular expression is outside what dhow supports ({e})"))
}

fn unsupported(what: &str) -> String {
    format!("{what} in regular expressions are not supported")
}

#[expect(clippy::too_many_lines, reason = "one pass over the pattern syntax")]
fn translate(source: &str) -> Result<String, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 16);
    let mut in_class = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("a regular expression ends with a backslash".into());
                };
                i += 2;
                let class = in_class > 0;
                match n {
                    's' if class => out.push_str(" \\t\\n\\x0B\\x0C\\r"),
                    's' => out.push_str("[ \\t\\n\\x0B\\x0C\\r]"),
                    'S' if !class => out.push_str("[^ \\t\\n\\x0B\\x0C\\r]"),
                    'd' if class => out.push_str("0-9"),
                    'd' => out.push_str("[0-9]"),
                    'D' if !class => out.push_str("[^0-9]"),
                    'w' if class => out.push_str("a-zA-Z0-9_"),
                    'w' => out.push_str("[a-zA-Z0-9_]"),
                    'W' if !class => out.push_str("[^a-zA-Z0-9_]"),
                    'h' if class => out.push_str("0-9a-fA-F"),
                    'h' => out.push_str("[0-9a-fA-F]"),
                    'H' if !class => out.push_str("[^0-9a-fA-F]"),
                    'S' | 'D' | 'W' | 'H' => {
                        return Err(unsupported("negated classes inside brackets"));
                    }
                    'A' | 'z' | 'b' | 'B' if !class => {
                        out.push('\\');
                        out.push(n);
                    }
                    'b' => out.push_str("\\x08"),
                    'n' | 't' | 'r' | 'f' | 'v' | 'a' => {
                        out.push('\\');
                        out.push(n);
                    }
                    'e' => out.push_str("\\x1B"),
                    '0' => out.push_str("\\x00"),
                    'x' => {
                        let mut hex = String::new();
                        while hex.len() < 2 && chars.get(i).is_some_and(char::is_ascii_hexdigit) {
                            hex.push(chars[i]);
                            i += 1;
                        }
                        if hex.is_empty() {
                            return Err("invalid `\\x` escape in a regular expression".into());
                        }
                        let _ = write!(out, "\\x{{{hex}}}");
                    }
                    'u' => {
                        let mut hex = String::new();
                        if chars.get(i) == Some(&'{') {
                            i += 1;
                            while let Some(&h) = chars.get(i) {
                                i += 1;
                                if h == '}' {
                                    break;
                                }
                                hex.push(h);
                            }
                        } else {
                            while hex.len() < 4 && chars.get(i).is_some_and(char::is_ascii_hexdigit)
                            {
                                hex.push(chars[i]);
                                i += 1;
                            }
                        }
                        let _ = write!(out, "\\x{{{}}}", hex.trim());
                    }
                    '1'..='9' | 'k' | 'g' => return Err(unsupported("back-references")),
                    'Z' | 'G' | 'K' | 'R' | 'X' | 'p' | 'P' => {
                        return Err(unsupported(&format!("`\\{n}` escapes")));
                    }
                    n if n.is_ascii_alphanumeric() => {
                        return Err(unsupported(&format!("`\\{n}` escapes")));
                    }
                    n => {
                        // An escaped symbol stands for itself.
                        if n.is_ascii() {
                            out.push('\\');
                        }
                        out.push(n);
                    }
                }
                continue;
            }
            '[' => {
                if chars.get(i + 1) == Some(&':') {
                    // A POSIX class `[:alpha:]` (only valid inside brackets).
                    let end = chars[i..].iter().collect::<String>().find(":]");
                    if let Some(end) = end.filter(|_| in_class > 0) {
                        out.extend(&chars[i..i + end + 2]);
                        i += end + 2;
                        continue;
                    }
                }
                in_class += 1;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` right after `[` or `[^` is a literal in Ruby.
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if in_class > 0 => {
                in_class -= 1;
                out.push(']');
            }
            '&' if in_class > 0 && chars.get(i + 1) == Some(&'&') => {
                return Err(unsupported("class intersections (`&&`)"));
            }
            '(' if in_class == 0 && chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..].iter().take(2).collect();
                if rest.starts_with('=')
                    || rest.starts_with('!')
                    || rest.starts_with("<=")
                    || rest.starts_with("<!")
                {
                    return Err(unsupported("look-around groups"));
                }
                if rest.starts_with('>') || rest.starts_with('~') || rest.starts_with('(') {
                    return Err(unsupported("atomic, absent and conditional groups"));
                }
                if rest.starts_with('#') {
                    return Err(unsupported("`(?#...)` comments"));
                }
                out.push('(');
            }
            '*' | '+' | '?' | '}' if in_class == 0 && chars.get(i + 1) == Some(&'+') => {
                return Err(unsupported("possessive quantifiers"));
            }
            c if in_class > 0 && matches!(c, '-' | '^' | '[') => {
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// Expands a Ruby `sub`/`gsub` replacement string: `\0` and `\&` (the match), `\1`..`\9`,
/// `\k<name>`, `` \` `` (before the match), `\'` (after it), `\\` (a backslash).
pub(super) fn expand(replacement: &str, caps: &regex::Captures<'_>, haystack: &str) -> String {
    let whole = caps.get(0).map_or(0..0, |m| m.range());
    let mut out = String::new();
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        i += 2;
        match n {
            '0' | '&' => out.push_str(&haystack[whole.clone()]),
            '1'..='9' => {
                let group = n.to_digit(10).map_or(0, |d| d as usize);
                out.push_str(caps.get(group).map_or("", |m| m.as_str()));
            }
            '`' => out.push_str(&haystack[..whole.start]),
            '\'' => out.push_str(&haystack[whole.end..]),
            '\\' => out.push('\\'),
            'k' if chars.get(i) == Some(&'<') => {
                let name: String = chars[i + 1..].iter().take_while(|&&c| c != '>').collect();
                i += name.chars().count() + 2;
                out.push_str(caps.name(&name).map_or("", |m| m.as_str()));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// Ruby's `Regexp#to_s`: `(?flags-missing:source)`.
pub(super) fn to_s(source: &str, flags: &str) -> String {
    let on: String = ['m', 'i', 'x']
        .iter()
        .filter(|f| flags.contains(**f))
        .collect();
    let off: String = ['m', 'i', 'x']
        .iter()
        .filter(|f| !flags.contains(**f))
        .collect();
    if off.is_empty() {
        format!("(?{on}:{source})")
    } else {
        format!("(?{on}-{off}:{source})")
    }
}

/// Ruby's `Regexp#inspect`: `/source/flags` (flags in `mix` order).
pub(super) fn inspect(source: &str, flags: &str) -> String {
    let mut escaped = String::new();
    let mut prev_backslash = false;
    for c in source.chars() {
        if c == '/' && !prev_backslash {
            escaped.push('\\');
        }
        prev_backslash = c == '\\' && !prev_backslash;
        escaped.push(c);
    }
    let flags: String = ['m', 'i', 'x']
        .iter()
        .filter(|f| flags.contains(**f))
        .collect();
    format!("/{escaped}/{flags}")
}
