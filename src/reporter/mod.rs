//! Reporters turn run events into output: lines for a terminal, JSON lines, or GitHub Actions
//! log groups and annotations. They decide what text to show; the printer writes it.

pub mod github;
mod json;
pub mod terminal;

use dhow_core::event::Event;

use crate::printer::Printer;

pub use json::JsonReporter;
pub use terminal::TerminalReporter;

/// Something that renders events.
pub trait Reporter: Send {
    fn report(&mut self, event: &Event);
}

/// The output format chosen with `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// GitHub Actions (rendered by [`github::GitHubReporter`], which the deploy owns).
    Github,
}

/// The reporter for a format.
pub fn for_format(format: Format, printer: Printer) -> Box<dyn Reporter> {
    match format {
        Format::Text | Format::Github => Box::new(TerminalReporter::new(printer)),
        Format::Json => Box::new(JsonReporter::new(printer)),
    }
}
