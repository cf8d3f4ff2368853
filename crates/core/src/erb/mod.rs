//! ERB rendering of Kamal config files: a documented subset of Ruby, rendered byte-for-byte like
//! Ruby's `ERB.new(template, trim_mode: "-").result`; anything outside the subset is rejected with
//! `file:line:column` and the expression, never passed through.
//!
//! Kamal renders every config file (`deploy.yml`, `deploy.<dest>.yml`) as ERB before parsing the
//! YAML. dhow cannot run Ruby, so it interprets the part of Ruby that real configs use. The whole
//! template is compiled into one program exactly as ERB does, so `if`/`each` may span tags.
//!
//! # Template syntax (identical to Ruby ERB, trim mode `-`)
//! * `<%= expr %>` inserts `expr.to_s` (`nil` inserts nothing); `<% code %>` runs code;
//!   `<%# comment %>` is dropped; `<%%` is a literal `<%` and `%%>` inside a tag a literal `%>`.
//! * `-%>` swallows the line break after the tag; `<%-` swallows the spaces and tabs before it
//!   when only indentation precedes it on its line.
//! * Differences, on purpose: a tag that is never closed is an error (Ruby prints its code as
//!   text), and a `#` comment that runs to the `%>` of a `<% %>` tag is an error (Ruby silently
//!   drops the template text after it on the same line). Templates are read as UTF-8.
//!
//! # The Ruby subset
//! * **Literals:** strings (`'..'`, `".."` with escapes and `#{}` interpolation, `%q()`, `%Q()`),
//!   integers, floats, `nil`, `true`, `false`, symbols, arrays, hashes, `%w[]`, `%i[]`, ranges.
//! * **ENV:** `ENV["X"]` (`nil` when unset), `ENV.fetch("X")` (an error naming the variable when
//!   unset, like Ruby's `KeyError`), `ENV.fetch("X", default)` with any default value,
//!   `ENV.fetch("X") { block }`, `ENV.key?`/`has_key?`/`include?`/`member?`, `ENV.to_h`,
//!   `ENV.keys`, `ENV.each`/`each_pair`, `ENV["X"] = value` (seen by later tags and by the next
//!   file of the same load), `ENV.delete("X")`.
//! * **Control flow:** local variables, `if`/`elsif`/`else`/`unless`/`end`, statement modifiers
//!   (`x if cond`), the ternary `?:`, `&&`, `||`, `and`, `or`, `!`, `not`, `==`, `!=`, `<`, `>`,
//!   `<=`, `>=`, `+`, `-`, `*`, `/`, `%`, `x ||= v`, blocks (`do |x| .. end`, `{ |x| .. }`,
//!   `&:name`) for
//!   `each`, `each_with_index`, `map`, `select`, `reject`, `flat_map`, `find`, `any?`, `all?`;
//!   `next`, `break`, `begin`/`rescue`/`else`/`ensure`/`end`, `rescue` modifiers, `raise`.
//! * **Methods:** on strings: `strip`, `lstrip`, `rstrip`, `chomp`, `chop`, `upcase`,
//!   `downcase`, `capitalize`, `to_s`, `to_str`, `to_i`, `to_f`, `to_sym`, `empty?`, `nil?`,
//!   `length`, `size`, `start_with?`, `end_with?`, `include?`, `tr`, `delete`, `sub`, `gsub`,
//!   `split`, `scan`, `match?`, `=~`, `!~` (string or regular expression patterns: `/re/imx` and
//!   `%r{}` with Ruby's line anchors and ASCII classes), `lines`, `chars`, `[]` (index, range,
//!   start+length, substring, pattern),
//!   `+`, `*`, `inspect`, `to_json`, `is_a?`/`kind_of?`, `freeze`, `dup`, `itself`;
//!   `ActiveSupport`'s `presence`, `blank?`, `present?`; on arrays and hashes the usual readers
//!   (`first`, `last`, `join`, `compact`, `flatten`, `uniq`, `include?`, `keys`, `values`,
//!   `fetch`, `dig`, `[]`, ...); on integers arithmetic, `to_s`, `to_i`, `zero?`.
//! * **Commands:** `` `cmd` `` and `%x(cmd)` (with interpolation) run through the host and give
//!   the command's standard output.
//! * **Kamal and the standard library:** `Kamal::Utils.docker_arch` (runs
//!   `docker info --format '{{.Architecture}}'` and maps `x86_64` to `amd64`, `aarch64` to
//!   `arm64`, like Kamal), `require` of `dotenv` (and `dotenv/load`), `json`, `yaml`, `erb`,
//!   `English`,
//!   `Dotenv.load`/`load!`/`overload`/`overwrite`/`parse` (dotenv 3 rules, missing files
//!   ignored by `load`), `File.read`, `File.exist?`/`file?`, `File.expand_path`, `File.join`,
//!   `File.basename`, `File.dirname`, `Dir.pwd`, `YAML.load_file`/`YAML.load` (through the
//!   config YAML reader), `JSON.generate`, `__dir__` (`"."`, as in Kamal), `__FILE__`
//!   (`"(erb)"`), `RUBY_ENGINE` (`"ruby"`) and `RUBY_VERSION`/`RUBY_ENGINE_VERSION` (`"3.3.7"`,
//!   the Ruby inside Kamal 2.11.0's standalone build; they appear in the `kamal init` template).
//!
//! Anything else — application classes (`Rails`, `HetznerDeployConfig`), `require_relative`,
//! gems (`Gem::Specification`), look-around and back-references in patterns, heredocs, method
//! and class definitions, instance and global variables — fails with an [`ErbError`] that names the file, line, column
//! and expression. `docs/erb.md` holds the same list for users.

#![expect(
    clippy::result_large_err,
    reason = "an error carries the whole diagnostic (file, position, expression, hint); it is \
              built once per failed render"
)]

mod dotenv;
mod eval;
mod lex;
mod parse;
mod pattern;
mod scan;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use dotenv::{DotenvError, parse_dotenv};

/// The hint attached to every "unsupported" error.
pub(crate) const SUPPORTED_HINT: &str = "dhow renders a documented subset of Ruby in ERB: ENV \
    lookups (ENV[\"X\"], ENV.fetch), string/number/array literals and \"#{...}\" interpolation, \
    local variables, if/elsif/else/unless, ternaries, ||, &&, ==, !=, .each blocks, common \
    String/Array methods (strip, presence, ...), backticks and %x(), File.read, Dotenv.load and \
    Kamal::Utils.docker_arch; see docs/erb.md";

/// What the template may reach outside itself. The `dhow` binary implements it over the real
/// process; tests use fakes. Relative paths are relative to the directory Kamal runs in.
pub trait ErbHost {
    /// A process environment variable (the binary passes a snapshot; `KAMAL_DESTINATION` is set
    /// by the loader).
    fn env(&self, name: &str) -> Option<String>;
    /// Every environment variable, for `ENV.each`, `ENV.to_h` and `ENV.keys`.
    fn env_vars(&self) -> Vec<(String, String)>;
    /// Runs a local shell command (backticks, `%x()`, `Kamal::Utils.docker_arch`, dotenv's
    /// `$(...)`) and returns its standard output whatever the exit status, as Ruby does; the
    /// command's stderr stays attached to the user's terminal. Ruby hands the command to
    /// `/bin/sh -c` when it contains shell metacharacters and executes it directly otherwise, so
    /// running everything through `sh -c` only differs for a missing program (empty output and a
    /// shell message instead of an error). `Err` means the command could not be started at all
    /// (Ruby raises `Errno::ENOENT`).
    fn run(&self, command: &str) -> Result<String, String>;
    /// Like [`ErbHost::run`], with the template's changes to `ENV` so far (`Some` sets, `None`
    /// removes), which a Ruby child process would inherit. The default ignores them; the binary
    /// should apply them to the child's environment.
    fn run_with_env(
        &self,
        command: &str,
        env_changes: &BTreeMap<String, Option<String>>,
    ) -> Result<String, String> {
        let _ = env_changes;
        self.run(command)
    }
    /// Reads a file: `Ok(None)` when it does not exist (or is a directory), `Err` for other
    /// failures. Used by `File.read`, `File.exist?` and `Dotenv.load`.
    fn read_file(&self, path: &str) -> Result<Option<String>, String>;
    /// The working directory (`Dir.pwd`, `File.expand_path`).
    fn current_dir(&self) -> String;
}

/// The process state templates change: `ENV` (assignments, `Dotenv.load`), layered over the
/// host's environment, and the libraries loaded with `require`. Share one overlay between the
/// files of one load (base file, then destination file), as they share one Ruby process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvOverlay {
    changes: BTreeMap<String, Option<String>>,
    pub(crate) required: BTreeSet<String>,
}

impl EnvOverlay {
    /// An overlay with no changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The variables set (`Some`) or removed (`None`) by templates so far.
    pub fn changes(&self) -> &BTreeMap<String, Option<String>> {
        &self.changes
    }

    pub(crate) fn get(&self, host: &dyn ErbHost, name: &str) -> Option<String> {
        match self.changes.get(name) {
            Some(value) => value.clone(),
            None => host.env(name),
        }
    }

    pub(crate) fn set(&mut self, name: &str, value: Option<String>) {
        self.changes.insert(name.to_owned(), value);
    }

    pub(crate) fn all(&self, host: &dyn ErbHost) -> Vec<(String, String)> {
        let mut vars: BTreeMap<String, String> = host.env_vars().into_iter().collect();
        for (name, value) in &self.changes {
            match value {
                Some(v) => {
                    vars.insert(name.clone(), v.clone());
                }
                None => {
                    vars.remove(name);
                }
            }
        }
        vars.into_iter().collect()
    }
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The output text, byte-for-byte what Ruby's ERB produces.
    pub text: String,
    /// The 1-based source line each output line (as `str::lines` counts them) came from, so YAML
    /// errors in the output can point at the template.
    pub line_map: Vec<usize>,
}

impl Rendered {
    /// The template line that produced 1-based output line `line` (the line itself when the map
    /// does not cover it).
    pub fn source_line(&self, line: usize) -> usize {
        line.checked_sub(1)
            .and_then(|i| self.line_map.get(i).copied())
            .unwrap_or(line)
    }
}

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The template uses Ruby that dhow does not interpret.
    Unsupported,
    /// The template is not valid ERB/Ruby (or not in a form dhow can read).
    Syntax,
    /// The template's Ruby raised an exception, as it would under Kamal (`KeyError` from
    /// `ENV.fetch`, `raise "..."`, a missing file, ...). Holds the Ruby exception class.
    Raised(String),
}

/// A rendering error with its position in the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ErbError {
    /// The template's file name, as given to [`render`].
    pub origin: String,
    /// 1-based line of the expression.
    pub line: usize,
    /// 1-based column (in characters) of the expression.
    pub column: usize,
    /// The source text of the expression that failed.
    pub expression: String,
    pub kind: ErrorKind,
    /// What went wrong (without position).
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ErbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        match &self.kind {
            ErrorKind::Unsupported => {
                write!(
                    f,
                    "unsupported ERB expression `{}`: {}",
                    self.expression, self.message
                )
            }
            ErrorKind::Syntax => {
                write!(f, "invalid ERB in `{}`: {}", self.expression, self.message)
            }
            ErrorKind::Raised(class) => {
                write!(f, "`{}` raised {class}: {}", self.expression, self.message)
            }
        }
    }
}

/// The template text plus what is needed to turn byte offsets into positions.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str, origin: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            text,
            origin,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    fn snippet(&self, start: usize, end: usize) -> String {
        let end = end.clamp(start, self.text.len());
        let mut s = self.text.get(start..end).unwrap_or("").trim().to_owned();
        if s.is_empty() {
            s = self
                .text
                .get(start..)
                .unwrap_or("")
                .chars()
                .take(20)
                .collect::<String>();
            s = s.lines().next().unwrap_or("").trim().to_owned();
        }
        if s.chars().count() > 200 {
            s = s.chars().take(197).collect::<String>() + "...";
        }
        s
    }

    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        start: usize,
        end: usize,
        message: String,
        hint: Option<String>,
    ) -> ErbError {
        let (line, column) = self.position(start);
        ErbError {
            origin: self.origin.to_owned(),
            line,
            column,
            expression: self.snippet(start, end),
            kind,
            message,
            hint,
        }
    }
}

/// Renders `source` (the contents of the file named `origin`) with a fresh environment overlay.
pub fn render(source: &str, origin: &str, host: &dyn ErbHost) -> Result<Rendered, ErbError> {
    render_with(source, origin, host, &mut EnvOverlay::new())
}

/// Renders `source` with `env` holding earlier changes to `ENV`; the template's own changes are
/// added to it (also when rendering fails part-way, as in Ruby).
pub fn render_with(
    source: &str,
    origin: &str,
    host: &dyn ErbHost,
    env: &mut EnvOverlay,
) -> Result<Rendered, ErbError> {
    let src = Source::new(source, origin);
    let pieces = scan::scan(&src)?;
    let tokens = parse::tokenize(&src, &pieces)?;
    let program = parse::Parser::new(&src, tokens).parse_program()?;
    eval::run(&src, &pieces, &program, host, env)
}
