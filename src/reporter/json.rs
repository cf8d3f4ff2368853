//! JSON lines: one event per line on stdout, for machines, each stamped with `at_ms`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dhow_core::event::Event;

use super::Reporter;
use crate::printer::Printer;

#[derive(Debug)]
pub struct JsonReporter {
    printer: Printer,
    started: Instant,
}

impl JsonReporter {
    pub fn new(printer: Printer) -> Self {
        Self {
            printer,
            started: Instant::now(),
        }
    }
}

impl Reporter for JsonReporter {
    fn report(&mut self, event: &Event) {
        if let Some(line) = line_at(event, self.started.elapsed()) {
            self.printer.data(&line);
        }
    }
}

/// The event's JSON object with `at_ms` (milliseconds since the output started) added as its
/// last field, so a consumer can time what happened between any two lines.
fn line_at(event: &Event, at: Duration) -> Option<String> {
    let mut line = serde_json::to_string(event).ok()?;
    let millis = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
    if line.ends_with('}') {
        line.pop();
        let separator = if line.ends_with('{') { "" } else { "," };
        let _ = write!(line, "{separator}\"at_ms\":{millis}}}");
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ends_with_the_time_since_the_output_started() {
        let event = Event::RunStarted {
            command: "deploy".to_owned(),
            hosts: vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()],
        };
        let line = line_at(&event, Duration::from_micros(1_234_567)).expect("serializes");
        assert_eq!(
            line,
            r#"{"event":"run_started","command":"deploy","hosts":["10.0.0.1","10.0.0.2"],"at_ms":1234}"#
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(value["at_ms"], 1234);
    }
}
