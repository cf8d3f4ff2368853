//! `Dotenv.load` for ERB templates: dotenv 3.2.0's parser (its `LINE` expression matched with
//! the same backtracking choices Ruby makes), quote handling, `$VAR`/`${VAR}` and `$(command)`
//! substitution, as `Dotenv::Parser` does it.

use std::fmt;

/// A failure while reading a dotenv file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DotenvError {
    /// `export KEY` without a value for a key the file has not set (`Dotenv::FormatError`).
    UnsetVariable { line_text: String },
    /// A `$(command)` could not be started.
    Command { command: String, message: String },
}

impl DotenvError {
    /// The Ruby exception class dotenv raises.
    pub fn class(&self) -> &'static str {
        match self {
            DotenvError::UnsetVariable { .. } => "Dotenv::FormatError",
            DotenvError::Command { .. } => "Errno::ENOENT",
        }
    }
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DotenvError::UnsetVariable { line_text } => {
                write!(
                    f,
                    "Line {} has an unset variable",
                    super::value::inspect_str(line_text)
                )
            }
            DotenvError::Command { command, message } => {
                write!(f, "No such file or directory - {command} ({message})")
            }
        }
    }
}

/// Ruby's `\s`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn is_key(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

/// One match of dotenv's `LINE`.
struct LineMatch {
    start: usize,
    end: usize,
    export: bool,
    key: (usize, usize),
    value: Option<(usize, usize)>,
}

#[expect(
    clippy::many_single_char_names,
    reason = "short names mirror the regex steps"
)]
/// `\s*(?:\#.*)?(?:$|\z)` at `t`: the end of the (greedy) match, if any.
fn tail(b: &[u8], t: usize) -> Option<usize> {
    let mut w = t;
    while w < b.len() && is_space(b[w]) {
        w += 1;
    }
    let mut x = w;
    loop {
        if x < b.len() && b[x] == b'#' {
            let mut e = x;
            while e < b.len() && b[e] != b'\n' {
                e += 1;
            }
            return Some(e);
        }
        if x == b.len() || b[x] == b'\n' {
            return Some(x);
        }
        if x == t {
            return None;
        }
        x -= 1;
    }
}

/// Candidate ends (exclusive, after the closing quote) of `\s*Q(?:\\Q|[^Q])*Q` at `e`, longest
/// first.
#[expect(
    clippy::many_single_char_names,
    reason = "short names mirror the regex steps"
)]
fn quoted_ends(b: &[u8], e: usize, q: u8) -> Vec<usize> {
    let mut i = e;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if i >= b.len() || b[i] != q {
        return Vec::new();
    }
    let mut optional = Vec::new();
    let mut j = i + 1;
    let mut mandatory = None;
    while j < b.len() {
        if b[j] == q {
            if b[j - 1] == b'\\' && j - 1 > i {
                optional.push(j + 1);
            } else {
                mandatory = Some(j + 1);
                break;
            }
        }
        j += 1;
    }
    let mut out: Vec<usize> = mandatory.into_iter().collect();
    out.extend(optional.into_iter().rev());
    out
}

/// Tries the separator-and-value group at `k_end` (after the key); returns `(value, end)`.
fn with_separator(b: &[u8], k_end: usize) -> Option<(Option<(usize, usize)>, usize)> {
    // The separator's lazy tail: candidate value starts, shortest first.
    let mut starts = Vec::new();
    let mut i = k_end;
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    if i < b.len() && b[i] == b'=' {
        let mut e = i + 1;
        starts.push(e);
        while e < b.len() && is_space(b[e]) {
            e += 1;
            starts.push(e);
        }
    }
    let mut colon = Vec::new();
    if k_end < b.len() && b[k_end] == b':' {
        let mut e = k_end + 1;
        while e < b.len() && is_space(b[e]) {
            e += 1;
            colon.push(e);
        }
    }
    for e in starts.into_iter().chain(colon) {
        for q in [b'\'', b'"'] {
            for end in quoted_ends(b, e, q) {
                if let Some(t) = tail(b, end) {
                    return Some((Some((e, end)), t));
                }
            }
        }
        let mut r = e;
        while r < b.len() && b[r] != b'#' && b[r] != b'\n' {
            r += 1;
        }
        let mut end = r;
        while end > e {
            if let Some(t) = tail(b, end) {
                return Some((Some((e, end)), t));
            }
            end -= 1;
        }
        if let Some(t) = tail(b, e) {
            return Some((None, t));
        }
    }
    None
}

fn match_at(b: &[u8], p: usize) -> Option<LineMatch> {
    let mut q = p;
    while q < b.len() && is_space(b[q]) {
        q += 1;
    }
    for export in [true, false] {
        let mut k = q;
        if export {
            if !b[q..].starts_with(b"export") {
                continue;
            }
            k = q + 6;
            if k >= b.len() || !is_space(b[k]) {
                continue;
            }
            while k < b.len() && is_space(b[k]) {
                k += 1;
            }
        }
        let mut k_end = k;
        while k_end < b.len() && is_key(b[k_end]) {
            k_end += 1;
        }
        if k_end == k {
            continue;
        }
        if let Some((value, end)) = with_separator(b, k_end) {
            return Some(LineMatch {
                start: p,
                end,
                export,
                key: (k, k_end),
                value,
            });
        }
        if let Some(end) = tail(b, k_end) {
            return Some(LineMatch {
                start: p,
                end,
                export,
                key: (k, k_end),
                value: None,
            });
        }
    }
    None
}

/// `String#scan(LINE)`.
fn scan_lines(text: &str) -> Vec<LineMatch> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos <= b.len() {
        let mut p = pos;
        let found = loop {
            if p > b.len() {
                break None;
            }
            if (p == 0 || b[p - 1] == b'\n')
                && let Some(m) = match_at(b, p)
            {
                break Some(m);
            }
            p += 1;
        };
        let Some(m) = found else { break };
        pos = if m.end == m.start { m.end + 1 } else { m.end };
        out.push(m);
    }
    out
}

/// Ruby's `strip`.
fn ruby_strip(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0'))
}

/// Parses a dotenv file like `Dotenv::Parser.call(text, overwrite:)`. `env` reads the process
/// environment (with earlier changes); `run` runs `$(command)` and returns its output.
pub fn parse_dotenv(
    text: &str,
    overwrite: bool,
    env: &dyn Fn(&str) -> Option<String>,
    run: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut hash: Vec<(String, String)> = Vec::new();
    for m in scan_lines(&text) {
        let key = &text[m.key.0..m.key.1];
        let existing = !overwrite && key != "DOTENV_LINEBREAK_MODE" && env(key).is_some();
        let value = if existing {
            env(key).unwrap_or_default()
        } else if m.export && m.value.is_none() {
            if hash.iter().any(|(k, _)| k == key) {
                continue;
            }
            return Err(DotenvError::UnsetVariable {
                line_text: text[m.start..m.end].to_owned(),
            });
        } else {
            let raw = m.value.map_or("", |(s, e)| &text[s..e]);
            parse_value(raw, &hash, env, run)?
        };
        if let Some(slot) = hash.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            hash.push((key.to_owned(), value));
        }
    }
    Ok(hash)
}

fn lookup(hash: &[(String, String)], key: &str) -> Option<String> {
    hash.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn parse_value(
    raw: &str,
    hash: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    run: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, DotenvError> {
    let stripped = ruby_strip(raw);
    let mut quote = None;
    let mut value = stripped.to_owned();
    for q in ['\'', '"'] {
        if stripped.len() >= 2 && stripped.starts_with(q) && stripped.ends_with(q) {
            quote = Some(q);
            stripped[1..stripped.len() - 1].clone_into(&mut value);
            break;
        }
    }
    if quote == Some('"') {
        let legacy = lookup(hash, "DOTENV_LINEBREAK_MODE").or_else(|| env("DOTENV_LINEBREAK_MODE"))
            == Some("legacy".to_owned());
        value = if legacy {
            value.replace("\\n", "\n").replace("\\r", "\r")
        } else {
            value.replace("\\n", "\\\\n").replace("\\r", "\\\\r")
        };
    }
    if quote != Some('\'') {
        value = unescape(&value);
        value = substitute_commands(&value, hash, env, run)?;
        value = substitute_variables(&value, hash, env);
    }
    Ok(value)
}

/// `gsub(/\\([^$])/, '\1')`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && n != '$'
        {
            out.push(n);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// dotenv's `Substitutions::Command`: `$(...)` with balanced parentheses, `\$(...)` kept.
fn substitute_commands(
    s: &str,
    hash: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    run: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, DotenvError> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let escaped = b[i] == b'\\' && b.get(i + 1) == Some(&b'$');
        let dollar = if escaped { i + 1 } else { i };
        if b[dollar] == b'$' && b.get(dollar + 1) == Some(&b'(') {
            // Balanced, non-empty parentheses.
            let mut depth = 0usize;
            let mut j = dollar + 1;
            let mut close = None;
            while j < b.len() {
                match b[j] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if let Some(close) = close
                && close > dollar + 2
                && !s[dollar + 2..close].contains("()")
            {
                out.push_str(&s[copied..i]);
                if escaped {
                    out.push_str(&s[dollar..=close]);
                } else {
                    let command = substitute_variables(&s[dollar + 2..close], hash, env);
                    let output = run(&command).map_err(|message| DotenvError::Command {
                        command: command.clone(),
                        message,
                    })?;
                    let output = output
                        .strip_suffix("\r\n")
                        .or_else(|| output.strip_suffix('\n'))
                        .or_else(|| output.strip_suffix('\r'))
                        .unwrap_or(&output);
                    out.push_str(output);
                }
                i = close + 1;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    Ok(out)
}

/// dotenv's `Substitutions::Variable`: `$NAME`, `${NAME}`, `\$NAME` kept literally.
fn substitute_variables(
    s: &str,
    hash: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let escaped = b[i] == b'\\' && b.get(i + 1) == Some(&b'$');
        let dollar = if escaped { i + 1 } else { i };
        if b[dollar] == b'$' && b.get(dollar + 1) != Some(&b'(') {
            let mut j = dollar + 1;
            if b.get(j) == Some(&b'{') {
                j += 1;
            }
            let name_start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            let name_end = j;
            if b.get(j) == Some(&b'}') {
                j += 1;
            }
            out.push_str(&s[copied..i]);
            if escaped {
                out.push_str(&s[dollar..j]);
            } else if name_end > name_start {
                let name = &s[name_start..name_end];
                out.push_str(&lookup(hash, name).or_else(|| env(name)).unwrap_or_default());
            } else {
                out.push_str(&s[dollar..j]);
            }
            i = j;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}
