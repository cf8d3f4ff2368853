//! The secrets file syntax: dotenv 3.2.0's parser (`Dotenv::Parser` with `overwrite: true`, as
//! Kamal calls it) and its variable substitution, with Kamal's own command substitution
//! (`Kamal::Secrets::Dotenv::InlineCommandSubstitution`) in place of dotenv's.
//!
//! The line grammar is dotenv's regular expression, run with leftmost-first semantics (the same
//! matches Ruby's backtracking engine finds), and every later step follows the Ruby code:
//! strip, unquote, expand `\n` in double quotes, unescape, then command and variable
//! substitution, each on the result of the one before.

use std::sync::LazyLock;

use regex::Regex;

use super::error::SecretsError;
use super::shell::inspect;
use crate::Secret;

/// dotenv's `LINE`, with Ruby's ASCII `\s` and `\w` spelled out.
static LINE: LazyLock<Regex> = LazyLock::new(|| {
    let s = r"[ \t\r\n\x0B\x0C]";
    let pattern = format!(
        r#"(?m)(?:^|\A){s}*(?P<export>export{s}+)?(?P<key>[A-Za-z0-9_.]+)(?:(?:{s}*={s}*?|:{s}+?)(?P<value>{s}*'(?:\\'|[^'])*'|{s}*"(?:\\"|[^"])*"|[^\#\n]+)?)?{s}*(?:\#.*)?(?:$|\z)"#
    );
    Regex::new(&pattern).expect("the dotenv line pattern is valid")
});

/// How `$(...)` commands are evaluated: the caller decides between the local shell and
/// in-process `kamal secrets` / `dhow secrets` calls.
pub(crate) trait CommandSubstitution {
    /// Runs `command` (already `$VAR`-expanded) and returns its output without the trailing
    /// newline.
    fn substitute(&self, command: &str) -> Result<String, SecretsError>;
}

/// Where `$NAME` looks after the file's own earlier lines.
pub(crate) trait VariableSource {
    fn variable(&self, name: &str) -> Option<String>;

    /// The process environment alone (dotenv reads `DOTENV_LINEBREAK_MODE` from `ENV`).
    fn environment(&self, name: &str) -> Option<String>;
}

/// One `KEY=value` assignment, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Secret<String>,
    /// The 1-based line where the key is written.
    pub line: usize,
}

/// Parses one secrets file. `file` names it in errors; `vars` answers `$NAME` for names the file
/// has not defined yet; `commands` runs `$(...)`.
pub(crate) fn parse(
    file: &str,
    contents: &str,
    vars: &dyn VariableSource,
    commands: &dyn CommandSubstitution,
) -> Result<Vec<Entry>, SecretsError> {
    let contents = contents.strip_prefix('\u{feff}').unwrap_or(contents);
    let text = normalize_newlines(contents);
    let mut parser = Parser {
        file,
        entries: Vec::new(),
        vars,
        commands,
    };
    for caps in LINE.captures_iter(&text) {
        let whole = caps.get(0).expect("group 0 always matches");
        let key_match = caps.name("key").expect("the key group always matches");
        let key = key_match.as_str();
        let line = text[..key_match.start()].matches('\n').count() + 1;
        let value = caps.name("value");
        if caps.name("export").is_some() && value.is_none() {
            if parser.get(key).is_none() {
                return Err(SecretsError::UnsetVariable {
                    file: file.to_owned(),
                    line,
                    text: inspect(whole.as_str()),
                });
            }
            continue;
        }
        let raw = value.map_or("", |m| m.as_str());
        let parsed = parser
            .parse_value(raw)
            .map_err(|error| locate(error, file, line, key))?;
        parser.set(key, parsed, line);
    }
    Ok(parser.entries)
}

/// Fills in file, line and key on errors raised while evaluating a command.
fn locate(error: SecretsError, file: &str, line: usize, key: &str) -> SecretsError {
    match error {
        SecretsError::Command {
            command, source, ..
        } => SecretsError::Command {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            command,
            source,
        },
        SecretsError::CommandFailed { command, code, .. } => SecretsError::CommandFailed {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            command,
            code,
        },
        other => other,
    }
}

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

struct Parser<'a> {
    file: &'a str,
    entries: Vec<Entry>,
    vars: &'a dyn VariableSource,
    commands: &'a dyn CommandSubstitution,
}

impl Parser<'_> {
    fn get(&self, key: &str) -> Option<&Secret<String>> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// Ruby `Hash#[]=`: a redefined key keeps its first position and takes the new value.
    fn set(&mut self, key: &str, value: String, line: usize) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            entry.value = Secret::new(value);
            entry.line = line;
        } else {
            self.entries.push(Entry {
                key: key.to_owned(),
                value: Secret::new(value),
                line,
            });
        }
    }

    fn variable(&self, name: &str) -> String {
        self.get(name)
            .map(|v| v.expose().clone())
            .or_else(|| self.vars.variable(name))
            .unwrap_or_default()
    }

    fn parse_value(&self, raw: &str) -> Result<String, SecretsError> {
        let stripped = ruby_strip(raw);
        let (mut value, quote) = unquote(stripped);
        if quote == Some('"') {
            value = self.expand_newlines(&value);
        }
        if quote != Some('\'') {
            value = unescape_characters(&value);
            let segments = substitute_commands(&value, &|command| {
                let expanded = substitute_variables(command, &|name| self.variable(name));
                self.commands
                    .substitute(&expanded)
                    .map_err(|source| match source {
                        SecretsError::CommandFailed { code, .. } => SecretsError::CommandFailed {
                            file: self.file.to_owned(),
                            line: 0,
                            key: String::new(),
                            command: command.to_owned(),
                            code,
                        },
                        other => SecretsError::Command {
                            file: self.file.to_owned(),
                            line: 0,
                            key: String::new(),
                            command: command.to_owned(),
                            source: Box::new(other),
                        },
                    })
            })?;
            value = segments
                .into_iter()
                .map(|segment| {
                    if segment.output {
                        segment.text
                    } else {
                        substitute_variables(&segment.text, &|name| self.variable(name))
                    }
                })
                .collect();
        }
        Ok(value)
    }

    fn expand_newlines(&self, value: &str) -> String {
        let mode = self
            .get("DOTENV_LINEBREAK_MODE")
            .map(|v| v.expose().clone())
            .or_else(|| self.vars.environment("DOTENV_LINEBREAK_MODE"));
        if mode.as_deref() == Some("legacy") {
            value.replace("\\n", "\n").replace("\\r", "\r")
        } else {
            value.replace("\\n", "\\\\n").replace("\\r", "\\\\r")
        }
    }
}

/// Ruby `String#strip`: leading whitespace, trailing whitespace and NULs.
fn ruby_strip(text: &str) -> &str {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r');
    text.trim_start_matches(is_ws)
        .trim_end_matches(|c| is_ws(c) || c == '\0')
}

/// `sub(/\A(['"])(.*)\1\z/m, '\2')`, returning the quote that was removed.
fn unquote(text: &str) -> (String, Option<char>) {
    let mut chars = text.chars();
    match (chars.next(), chars.next_back()) {
        (Some(first), Some(last)) if first == last && (first == '\'' || first == '"') => {
            (text[1..text.len() - 1].to_owned(), Some(first))
        }
        _ => (text.to_owned(), None),
    }
}

/// `gsub(/\\([^$])/, '\1')`: drops a backslash before anything but `$`.
fn unescape_characters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&next) if next != '$' => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// dotenv's `Substitutions::Variable`: `$NAME` and `${NAME}` (names `[A-Za-z0-9_]+`) become
/// `lookup(NAME)`; `\$NAME` loses its backslash and stays literal; `$(` is left alone.
pub(crate) fn substitute_variables(text: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let escaped = bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'$');
        let dollar = if escaped { i + 1 } else { i };
        if bytes[dollar] != b'$' || bytes.get(dollar + 1) == Some(&b'(') {
            i += 1;
            continue;
        }
        let mut end = dollar + 1;
        if bytes.get(end) == Some(&b'{') {
            end += 1;
        }
        let name_start = end;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[name_start..end];
        if bytes.get(end) == Some(&b'}') {
            end += 1;
        }
        out.push_str(&text[copied..i]);
        if escaped {
            out.push_str(&text[dollar..end]);
        } else if name.is_empty() {
            out.push_str(&text[i..end]);
        } else {
            out.push_str(&lookup(name));
        }
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Kamal's `INTERPOLATED_SHELL_COMMAND`: the end (exclusive) of a balanced `( ... )` starting at
/// `open`, where the contents may hold nested balanced parentheses and backslash escapes.
fn command_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut j = open + 1;
    let mut items = 0;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if j + 1 < bytes.len() && bytes[j + 1] != b'\n' => {
                // `\\.`: the escaped character may be several bytes long; the remaining bytes
                // of it are ordinary characters to the loop, which is the same thing.
                j += 2;
            }
            b'\\' | b')' => break,
            b'(' => match command_end(bytes, j) {
                Some(end) => j = end,
                None => break,
            },
            _ => j += 1,
        }
        items += 1;
    }
    (items > 0 && bytes.get(j) == Some(&b')')).then_some(j + 1)
}

/// A piece of a value after command substitution: text from the file, or a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    text: String,
    output: bool,
}

/// Replaces each unescaped `$(command)` with `run(command)`; `\$(command)` loses its backslash.
/// Outputs are kept apart from the file's own text, so that `$NAME` substitution (which Kamal
/// also runs over command output, corrupting secrets that contain `$`) only touches the file's
/// text.
fn substitute_commands(
    text: &str,
    run: &dyn Fn(&str) -> Result<String, SecretsError>,
) -> Result<Vec<Segment>, SecretsError> {
    let bytes = text.as_bytes();
    let mut segments: Vec<Segment> = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let escaped = bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'$');
        let dollar = if escaped { i + 1 } else { i };
        if bytes[dollar] == b'$'
            && bytes.get(dollar + 1) == Some(&b'(')
            && let Some(end) = command_end(bytes, dollar + 1)
        {
            literal.push_str(&text[copied..i]);
            if escaped {
                literal.push_str(&text[dollar..end]);
            } else {
                segments.push(Segment {
                    text: std::mem::take(&mut literal),
                    output: false,
                });
                segments.push(Segment {
                    text: run(&text[dollar + 2..end - 1])?,
                    output: true,
                });
            }
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    literal.push_str(&text[copied..]);
    segments.push(Segment {
        text: literal,
        output: false,
    });
    segments.retain(|s| s.output || !s.text.is_empty());
    Ok(segments)
}

/// Ruby `String#chomp`: one trailing `\n`, `\r\n` or `\r`.
pub(crate) fn chomp(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .or_else(|| text.strip_suffix('\r'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables() {
        let lookup = |name: &str| format!("<{name}>");
        assert_eq!(
            substitute_variables("a $B ${C}d $ \\$E $(x)", &lookup),
            "a <B> <C>d $ $E $(x)"
        );
        assert_eq!(substitute_variables("${} $} ${x", &lookup), "${} $} <x>");
        assert_eq!(substitute_variables("\\${F} é$G", &lookup), "${F} é<G>");
    }

    #[test]
    fn commands() {
        let run = |c: &str| Ok(format!("[{c}]"));
        let text = |segments: Vec<Segment>| -> Vec<(String, bool)> {
            segments.into_iter().map(|s| (s.text, s.output)).collect()
        };
        assert_eq!(
            text(substitute_commands("$(a) \\$(b) $(c (d) \\) e)", &run).unwrap()),
            [
                ("[a]".to_owned(), true),
                (" $(b) ".to_owned(), false),
                ("[c (d) \\) e]".to_owned(), true)
            ]
        );
        assert_eq!(
            text(substitute_commands("$() $(a $(b", &run).unwrap()),
            [("$() $(a $(b".to_owned(), false)]
        );
        assert_eq!(
            text(substitute_commands("$(a\\\n)", &run).unwrap()),
            [("$(a\\\n)".to_owned(), false)]
        );
    }

    #[test]
    fn strip_and_unquote() {
        assert_eq!(ruby_strip("\t a \0\n"), "a");
        assert_eq!(unquote("'a'"), ("a".to_owned(), Some('\'')));
        assert_eq!(unquote("\"a\"b\""), ("a\"b".to_owned(), Some('"')));
        assert_eq!(unquote("'"), ("'".to_owned(), None));
        assert_eq!(unescape_characters("a\\b\\$c\\\\d"), "ab\\$c\\d");
        assert_eq!(chomp("a\n\n"), "a\n");
    }
}
