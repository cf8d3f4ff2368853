//! Actions workflow commands (`::add-mask::`, groups, annotations, stop-commands) written to an
//! injected writer, the `GITHUB_OUTPUT`/`GITHUB_ENV` file format with random delimiters, and the
//! `GITHUB_STEP_SUMMARY` markdown builder.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// Escapes a command message: `%`, `\r`, `\n` (percent first).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property value: the message escapes plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Where an annotation points. All fields are optional; without `file` it attaches to the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub col: Option<u32>,
    pub end_column: Option<u32>,
}

impl Annotation {
    /// An annotation on a file position.
    pub fn at(file: impl Into<String>, line: u32, col: Option<u32>) -> Self {
        Self {
            file: Some(file.into()),
            line: Some(line),
            col,
            ..Self::default()
        }
    }

    /// Sets the title.
    #[must_use]
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    fn properties(&self) -> String {
        let mut props = Vec::new();
        if let Some(file) = &self.file {
            props.push(format!("file={}", escape_property(file)));
        }
        if let Some(line) = self.line {
            props.push(format!("line={line}"));
        }
        if let Some(end_line) = self.end_line {
            props.push(format!("endLine={end_line}"));
        }
        if let Some(col) = self.col {
            props.push(format!("col={col}"));
        }
        if let Some(end_column) = self.end_column {
            props.push(format!("endColumn={end_column}"));
        }
        if let Some(title) = &self.title {
            props.push(format!("title={}", escape_property(title)));
        }
        props.join(",")
    }
}

/// Annotation severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

/// Renders an annotation command line (without the trailing newline).
pub fn annotation_command(level: Level, message: &str, at: &Annotation) -> String {
    let props = at.properties();
    if props.is_empty() {
        format!("::{}::{}", level.command(), escape_data(message))
    } else {
        format!("::{} {props}::{}", level.command(), escape_data(message))
    }
}

/// The values one secret registers with `::add-mask::`: the whole value and, for multi-line
/// secrets, each non-blank line on its own (the runner masks line by line).
pub fn mask_values(secret: &str) -> Vec<String> {
    let mut values = Vec::new();
    if secret.trim().is_empty() {
        return values;
    }
    values.push(secret.to_owned());
    if secret.contains('\n') || secret.contains('\r') {
        for line in secret.lines() {
            let line = line.trim_end_matches('\r');
            if !line.trim().is_empty() && !values.iter().any(|v| v == line) {
                values.push(line.to_owned());
            }
        }
    }
    values
}

/// The job log as the runner sees it. Creating it writes every `::add-mask::` line before
/// anything else, and every later line has the registered values replaced by `***` as well, so a
/// secret cannot reach the log even before the runner masks it.
#[derive(Debug)]
pub struct WorkflowLog<W: Write> {
    out: W,
    masks: Vec<String>,
    group_open: bool,
}

impl<W: Write> WorkflowLog<W> {
    /// Registers every secret value with `::add-mask::` first, then returns the log.
    pub fn new<I, S>(out: W, secrets: I) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut log = Self {
            out,
            masks: Vec::new(),
            group_open: false,
        };
        for secret in secrets {
            log.add_mask(secret.as_ref())?;
        }
        Ok(log)
    }

    /// A log with no masks yet: register every secret with [`WorkflowLog::add_mask`] before
    /// writing anything else.
    pub fn unmasked(out: W) -> Self {
        Self {
            out,
            masks: Vec::new(),
            group_open: false,
        }
    }

    /// Registers one more secret value (for values derived later, e.g. a minted token).
    pub fn add_mask(&mut self, secret: &str) -> io::Result<()> {
        for value in mask_values(secret) {
            if self.masks.contains(&value) {
                continue;
            }
            writeln!(self.out, "::add-mask::{}", escape_data(&value))?;
            self.masks.push(value);
        }
        // Longest first, so a value that contains another is replaced whole.
        self.masks.sort_by_key(|m| std::cmp::Reverse(m.len()));
        Ok(())
    }

    /// Replaces every registered value in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for mask in &self.masks {
            if text.contains(mask.as_str()) {
                text = text.replace(mask.as_str(), "***");
            }
        }
        text
    }

    fn emit(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")
    }

    /// Writes plain text. Text with a line that would start a workflow command (user-controlled
    /// text such as commit messages) is wrapped in a stop-commands block with a random token.
    pub fn info(&mut self, text: &str) -> io::Result<()> {
        let text = self.redact(text);
        if text.lines().any(|l| l.trim_start().starts_with("::")) {
            let token = format!("dhow-{}", uuid::Uuid::new_v4().simple());
            self.emit(&format!("::stop-commands::{token}"))?;
            self.emit(&text)?;
            self.emit(&format!("::{token}::"))
        } else {
            self.emit(&text)
        }
    }

    /// `::debug::` (shown only with step debug logging).
    pub fn debug(&mut self, message: &str) -> io::Result<()> {
        let line = format!("::debug::{}", escape_data(&self.redact(message)));
        self.emit(&line)
    }

    /// Opens a collapsible group, closing the previous one (groups do not nest).
    pub fn group(&mut self, title: &str) -> io::Result<()> {
        if self.group_open {
            self.end_group()?;
        }
        let line = format!("::group::{}", escape_data(&self.redact(title)));
        self.emit(&line)?;
        self.group_open = true;
        Ok(())
    }

    /// Closes the open group, if any.
    pub fn end_group(&mut self) -> io::Result<()> {
        if self.group_open {
            self.group_open = false;
            self.emit("::endgroup::")?;
        }
        Ok(())
    }

    /// An annotation of the given level.
    pub fn annotate(&mut self, level: Level, message: &str, at: &Annotation) -> io::Result<()> {
        let at = Annotation {
            title: at.title.as_deref().map(|t| self.redact(t)),
            file: at.file.as_deref().map(|f| self.redact(f)),
            ..at.clone()
        };
        let line = annotation_command(level, &self.redact(message), &at);
        self.emit(&line)
    }

    /// `::error …::message`. It does not fail the step: exit non-zero as well.
    pub fn error(&mut self, message: &str, at: &Annotation) -> io::Result<()> {
        self.annotate(Level::Error, message, at)
    }

    /// `::warning …::message`.
    pub fn warning(&mut self, message: &str, at: &Annotation) -> io::Result<()> {
        self.annotate(Level::Warning, message, at)
    }

    /// `::notice …::message`.
    pub fn notice(&mut self, message: &str, at: &Annotation) -> io::Result<()> {
        self.annotate(Level::Notice, message, at)
    }

    /// Closes an open group, flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_group()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Why an output or env entry cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvFileError {
    #[error(
        "invalid name {0:?}: names must be non-empty and contain no `=`, line breaks or delimiter"
    )]
    InvalidName(String),
    #[error("the value of {0} contains the delimiter")]
    DelimiterInValue(String),
}

/// A fresh `ghadelimiter_<uuid>` delimiter.
pub fn random_delimiter() -> String {
    format!("ghadelimiter_{}", uuid::Uuid::new_v4())
}

/// Formats one `name<<DELIM … DELIM` entry with the given delimiter. Fails if the name or value
/// contains it.
pub fn format_entry_with_delimiter(
    name: &str,
    value: &str,
    delimiter: &str,
) -> Result<String, EnvFileError> {
    if name.is_empty()
        || name.contains('=')
        || name.contains('\n')
        || name.contains('\r')
        || name.contains(delimiter)
    {
        return Err(EnvFileError::InvalidName(name.to_owned()));
    }
    if value.contains(delimiter) {
        return Err(EnvFileError::DelimiterInValue(name.to_owned()));
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Formats one entry with a random delimiter (regenerated when the value happens to contain
/// one). Every entry uses the heredoc form, so a value can never inject another entry.
pub fn format_entry(name: &str, value: &str) -> Result<String, EnvFileError> {
    let mut last = None;
    for _ in 0..8 {
        match format_entry_with_delimiter(name, value, &random_delimiter()) {
            Err(EnvFileError::DelimiterInValue(n)) => {
                last = Some(EnvFileError::DelimiterInValue(n));
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| EnvFileError::DelimiterInValue(name.to_owned())))
}

/// Appends entries to an environment file (`GITHUB_OUTPUT`, `GITHUB_ENV`).
#[derive(Debug, Clone)]
pub struct EnvFile {
    path: std::path::PathBuf,
}

/// An I/O or format failure while writing an env file.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileWriteError {
    #[error(transparent)]
    Format(#[from] EnvFileError),
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: io::Error },
}

impl EnvFile {
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `name` = `value`.
    pub fn set(&self, name: &str, value: &str) -> Result<(), EnvFileWriteError> {
        self.set_all(&[(name, value)])
    }

    /// Appends several entries in one write.
    pub fn set_all(&self, entries: &[(&str, &str)]) -> Result<(), EnvFileWriteError> {
        let mut text = String::new();
        for (name, value) in entries {
            text.push_str(&format_entry(name, value)?);
        }
        append(&self.path, &text).map_err(|source| EnvFileWriteError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// The most a step summary may hold; larger uploads fail.
pub const SUMMARY_LIMIT: usize = 1024 * 1024;

/// Escapes text for a markdown table cell or inline text: HTML specials, pipes, line breaks.
pub fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            _ => out.push(ch),
        }
    }
    out
}

/// A markdown table; cells are escaped.
pub fn md_table<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> String {
    let mut out = String::new();
    let head: Vec<String> = headers.iter().map(|h| md_escape(h)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        headers.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for row in rows {
        let cells: Vec<String> = (0..headers.len())
            .map(|i| {
                row.get(i)
                    .map_or_else(String::new, |c| md_escape(c.as_ref()))
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// A collapsible `<details>` block; `body` is markdown.
pub fn md_details(summary: &str, body: &str, open: bool) -> String {
    let open = if open { " open" } else { "" };
    format!(
        "<details{open}><summary>{}</summary>\n\n{}\n\n</details>\n",
        md_escape(summary),
        body.trim_end()
    )
}

/// A fenced code block whose fence is longer than any backtick run in `code`.
pub fn md_code_block(lang: &str, code: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for ch in code.chars() {
        if ch == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", code.trim_end_matches('\n'))
}

/// A markdown link with escaped text.
pub fn md_link(text: &str, url: &str) -> String {
    format!(
        "[{}]({})",
        md_escape(text).replace('[', "\\[").replace(']', "\\]"),
        url.replace(' ', "%20").replace(')', "%29")
    )
}

/// Builds a job summary in GitHub-flavoured markdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    markdown: String,
}

impl Summary {
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&mut self, text: &str) -> &mut Self {
        if !self.markdown.is_empty() && !self.markdown.ends_with("\n\n") {
            if !self.markdown.ends_with('\n') {
                self.markdown.push('\n');
            }
            self.markdown.push('\n');
        }
        self.markdown.push_str(text);
        if !self.markdown.ends_with('\n') {
            self.markdown.push('\n');
        }
        self
    }

    /// `#`…`######` heading.
    pub fn heading(&mut self, level: u8, text: &str) -> &mut Self {
        let hashes = "#".repeat(usize::from(level.clamp(1, 6)));
        self.block(&format!("{hashes} {}", md_escape(text)))
    }

    /// A paragraph of escaped text.
    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        self.block(&md_escape(text))
    }

    /// Markdown inserted as is (already built by the `md_*` functions).
    pub fn raw(&mut self, markdown: &str) -> &mut Self {
        self.block(markdown)
    }

    pub fn table<S: AsRef<str>>(&mut self, headers: &[&str], rows: &[Vec<S>]) -> &mut Self {
        self.block(&md_table(headers, rows))
    }

    /// A bullet list of markdown items.
    pub fn list<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        let text: String = items.iter().fold(String::new(), |mut acc, i| {
            let _ = writeln!(acc, "- {}", i.as_ref());
            acc
        });
        self.block(&text)
    }

    pub fn details(&mut self, summary: &str, body: &str, open: bool) -> &mut Self {
        self.block(&md_details(summary, body, open))
    }

    pub fn code_block(&mut self, lang: &str, code: &str) -> &mut Self {
        self.block(&md_code_block(lang, code))
    }

    pub fn as_str(&self) -> &str {
        &self.markdown
    }

    /// The markdown, cut to [`SUMMARY_LIMIT`] bytes (on a line boundary, with a note) so the upload
    /// never fails.
    pub fn render(&self) -> String {
        truncate_summary(&self.markdown, SUMMARY_LIMIT)
    }
}

/// Cuts markdown to at most `limit` bytes at a line boundary, adding a note when it cut.
pub fn truncate_summary(markdown: &str, limit: usize) -> String {
    if markdown.len() <= limit {
        return markdown.to_owned();
    }
    let note = "\n\n_Summary truncated: it exceeded GitHub's size limit._\n";
    let budget = limit.saturating_sub(note.len());
    let mut end = budget.min(markdown.len());
    while end > 0 && !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let cut = markdown[..end].rfind('\n').map_or(end, |i| i + 1);
    format!("{}{note}", &markdown[..cut])
}

/// Appends a summary to the `GITHUB_STEP_SUMMARY` file.
pub fn append_summary(path: &Path, summary: &Summary) -> io::Result<()> {
    append(path, &summary.render())
}

/// Replaces the `GITHUB_STEP_SUMMARY` file's content with this summary.
pub fn overwrite_summary(path: &Path, summary: &Summary) -> io::Result<()> {
    std::fs::write(path, summary.render())
}
