//! JSON lines: one event per line on stdout, for machines.

use dhow_core::event::Event;

use super::Reporter;
use crate::printer::Printer;

#[derive(Debug)]
pub struct JsonReporter {
    printer: Printer,
}

impl JsonReporter {
    pub fn new(printer: Printer) -> Self {
        Self { printer }
    }
}

impl Reporter for JsonReporter {
    fn report(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            self.printer.data(&line);
        }
    }
}
