//! Configuration errors as data: each carries Kamal's message, the key path, the `file:line:col` of
//! the offending node, what was expected and a hint; plus the caret-snippet rendering.

use std::fmt;
use std::fmt::Write as _;

use super::yaml::Span;

/// What kind of problem an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A configuration or destination file is missing.
    FileNotFound,
    /// The ERB step failed.
    Template,
    /// The YAML is not well formed, or its root is not a map.
    Syntax,
    /// A key that the schema does not know.
    UnknownKey,
    /// A value of the wrong type.
    Type,
    /// A required key is missing.
    Missing,
    /// A value that breaks a rule (format, cross-field check).
    Invalid,
}

/// One configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// Kamal's context prefix (`servers/web/labels/service`); empty for whole-config rules.
    pub context: String,
    /// Kamal's message without the context prefix.
    pub message: String,
    /// The slash key path of the offending node (often the same as `context`).
    pub key_path: String,
    /// Where the offending node was written, when it was written somewhere.
    pub span: Option<Span>,
    /// What was expected, when that can be said.
    pub expected: Option<String>,
    /// A hint, e.g. "did you mean `servers`?".
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error with Kamal's context prefix and message.
    pub fn new(kind: ErrorKind, context: impl Into<String>, message: impl Into<String>) -> Self {
        let context = context.into();
        Self {
            kind,
            key_path: context.clone(),
            context,
            message: message.into(),
            span: None,
            expected: None,
            hint: None,
        }
    }

    /// Sets where the offending node was written.
    #[must_use]
    pub fn at(mut self, span: Option<&Span>) -> Self {
        self.span = span.filter(|s| s.line > 0).cloned();
        self
    }

    /// Sets the key path shown to the user (when it differs from Kamal's context).
    #[must_use]
    pub fn path(mut self, key_path: impl Into<String>) -> Self {
        self.key_path = key_path.into();
        self
    }

    /// Sets what was expected.
    #[must_use]
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.context, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found while loading a configuration, with the source texts needed to show them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.errors))]
pub struct ConfigErrors {
    /// The errors, in the order Kamal would meet them (the first is the one Kamal reports).
    pub errors: Vec<ConfigError>,
    /// `(file name, original text)` of every file read, for snippets.
    pub sources: Vec<(String, String)>,
}

fn summary(errors: &[ConfigError]) -> String {
    match errors {
        [] => "invalid configuration".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl ConfigErrors {
    /// Renders every error with its location, a caret snippet of the source line, what was
    /// expected and the hint. The binary prints the result.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&render_error(e, &self.sources));
        }
        out
    }
}

/// Renders one error (see [`ConfigErrors::render`]).
pub fn render_error(error: &ConfigError, sources: &[(String, String)]) -> String {
    let mut out = format!("error: {error}\n");
    if let Some(span) = &error.span {
        let line_text = sources
            .iter()
            .find(|(name, _)| *name == *span.file)
            .and_then(|(_, text)| text.lines().nth(span.line.saturating_sub(1)))
            .map(|l| l.trim_end_matches('\r'));
        let number = span.line.to_string();
        let pad = " ".repeat(number.len());
        let _ = writeln!(out, "{pad}--> {span}");
        if let Some(line_text) = line_text {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {line_text}");
            let start = span.col.saturating_sub(1);
            let width = if error.kind == ErrorKind::Template {
                template_width(line_text, start)
            } else {
                caret_width(line_text, start)
            };
            let lead: String = line_text
                .chars()
                .take(start)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{pad} | {lead}{}", "^".repeat(width));
        }
    }
    if !error.key_path.is_empty() && error.key_path != error.context {
        let _ = writeln!(out, "  key: {}", error.key_path);
    }
    if let Some(expected) = &error.expected {
        let _ = writeln!(out, "  expected: {expected}");
    }
    if let Some(hint) = &error.hint {
        let _ = writeln!(out, "  hint: {hint}");
    }
    out
}

/// An ERB expression runs to the closing `%>` of its tag.
fn template_width(line: &str, start: usize) -> usize {
    let rest: String = line.chars().skip(start).collect();
    let body = rest.find("%>").map_or(rest.as_str(), |end| &rest[..end]);
    let body = body.trim_end().trim_end_matches('-').trim_end();
    body.chars().count().max(1)
}

fn caret_width(line: &str, start: usize) -> usize {
    let rest: String = line.chars().skip(start).collect();
    let token: String = if let Some(stripped) = rest.strip_prefix(['"', '\'']) {
        let quote = rest.chars().next().unwrap_or('"');
        match stripped.find(quote) {
            Some(end) => rest.chars().take(end + 2).collect(),
            None => rest.clone(),
        }
    } else {
        rest.chars()
            .take_while(|c| !matches!(c, ':' | ',' | ']' | '}' | '#'))
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    token.chars().count().max(1)
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| {
            *d <= (c.chars().count().max(word.chars().count()) / 3).max(1)
                || is_separator_variant(&lower, c)
                || is_affix_variant(&lower, c)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `service_name` for `service`, `ssh_user` for `user`: one name starts or ends with the other.
fn is_affix_variant(word: &str, candidate: &str) -> bool {
    let candidate = candidate.to_lowercase();
    let (short, long) = if word.len() < candidate.len() {
        (word, candidate.as_str())
    } else {
        (candidate.as_str(), word)
    };
    short.len() >= 4
        && (long.starts_with(&format!("{short}_")) || long.ends_with(&format!("_{short}")))
}

fn is_separator_variant(word: &str, candidate: &str) -> bool {
    let norm = |s: &str| s.to_lowercase().replace(['-', '_', ' '], "");
    norm(word) == norm(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("servrs", "servers"), 1);
        assert_eq!(
            did_you_mean("servrs", ["service", "servers", "image"]),
            Some("servers")
        );
        assert_eq!(did_you_mean("zzz", ["service", "servers"]), None);
        assert_eq!(
            did_you_mean("app-port", ["app_port", "host"]),
            Some("app_port")
        );
    }

    #[test]
    fn display_uses_kamal_context() {
        let e = ConfigError::new(ErrorKind::Invalid, "builder", "Builder arch not set");
        assert_eq!(e.to_string(), "builder: Builder arch not set");
        let e = ConfigError::new(
            ErrorKind::Missing,
            "",
            "Missing required configuration for service",
        );
        assert_eq!(e.to_string(), "Missing required configuration for service");
    }
}
