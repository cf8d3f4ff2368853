//! The one place that writes to the terminal. stdout carries data (config YAML, JSON, command
//! output); stderr carries everything else (progress, warnings, errors). Verbosity travels as a
//! value, never as a global.

use std::io::{self, Write};

/// How much the user asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// A verbosity-aware handle on stdout and stderr.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    verbosity: Verbosity,
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Self {
        Self { verbosity }
    }

    /// Data for stdout, printed whatever the verbosity (it is what the user asked for).
    #[expect(
        clippy::unused_self,
        reason = "all output goes through the printer handle"
    )]
    pub fn data(self, text: &str) {
        let mut out = io::stdout().lock();
        // A closed pipe (`dhow config | head`) is not an error worth reporting.
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// A progress or status line on stderr; hidden with `--quiet`.
    pub fn info(self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            Self::to_stderr(text);
        }
    }

    /// Detail on stderr, shown only with `--verbose`.
    pub fn debug(self, text: &str) {
        if self.verbosity == Verbosity::Verbose {
            Self::to_stderr(text);
        }
    }

    /// `warning: …` on stderr; shown even with `--quiet`.
    #[expect(
        clippy::unused_self,
        reason = "all output goes through the printer handle"
    )]
    pub fn warn(self, text: &str) {
        Self::to_stderr(&format!("warning: {text}"));
    }

    /// Asks a y/N question on the terminal: `Some(true)` for "y", `Some(false)` for anything
    /// else, `None` when stdin is not a terminal (nobody to ask).
    #[expect(
        clippy::unused_self,
        reason = "all output goes through the printer handle"
    )]
    pub fn confirm(self, question: &str) -> Option<bool> {
        use std::io::{BufRead as _, IsTerminal as _};
        if !io::stdin().is_terminal() {
            return None;
        }
        {
            let mut err = io::stderr().lock();
            let _ = write!(err, "{question} [y/N] ");
            let _ = err.flush();
        }
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer.trim() == "y")
    }

    /// The verbosity the user asked for.
    pub fn verbosity(self) -> Verbosity {
        self.verbosity
    }

    /// An already rendered error report on stderr.
    #[expect(
        clippy::unused_self,
        reason = "all output goes through the printer handle"
    )]
    pub fn error(self, rendered: &str) {
        Self::to_stderr(rendered);
    }

    fn to_stderr(text: &str) {
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = err.write_all(b"\n");
        }
        let _ = err.flush();
    }
}
