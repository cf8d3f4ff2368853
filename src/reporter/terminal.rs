//! Lines for a person at a terminal: what runs where, each host's output prefixed by the host,
//! each finished step with its elapsed time, and a timing breakdown at the end.

use std::fmt::Write as _;
use std::time::Duration;

use dhow_core::event::{Event, Outcome, Stream};

use super::Reporter;
use crate::printer::Printer;

#[derive(Debug)]
pub struct TerminalReporter {
    printer: Printer,
}

impl TerminalReporter {
    pub fn new(printer: Printer) -> Self {
        Self { printer }
    }
}

/// `1.2s`, `850ms`.
pub fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The text a terminal shows for an event, if any. Output lines go to stdout (they are the
/// data the user asked for); everything else goes to stderr.
pub fn render(event: &Event) -> (bool, String) {
    let on = |host: &Option<String>| {
        host.as_deref()
            .map_or_else(String::new, |h| format!(" on {h}"))
    };
    match event {
        Event::RunStarted { command, hosts } => (
            false,
            format!(
                "dhow {command}: {} host(s): {}",
                hosts.len(),
                hosts.join(", ")
            ),
        ),
        Event::StepStarted { step, host } => (false, format!("  {step}{}...", on(host))),
        Event::CommandStarted { host, command } => (false, format!("    ${} {command}", on(host))),
        Event::Output { host, stream, line } => {
            let prefix = host
                .as_deref()
                .map_or_else(String::new, |h| format!("{h}: "));
            (*stream == Stream::Stdout, format!("{prefix}{line}"))
        }
        Event::StepFinished {
            step,
            host,
            elapsed,
            outcome,
        } => {
            let status = match outcome {
                Outcome::Succeeded => "done".to_owned(),
                Outcome::Failed { message } => format!("FAILED: {message}"),
                Outcome::Skipped { reason } => format!("skipped: {reason}"),
            };
            (
                false,
                format!("  {step}{} {status} ({})", on(host), seconds(*elapsed)),
            )
        }
        Event::Warning { message } => (false, format!("warning: {message}")),
        Event::ImagePushed { image, digest, .. } => (
            false,
            match digest {
                Some(digest) => format!("Pushed {image} ({digest})"),
                None => format!("Pushed {image}"),
            },
        ),
        Event::ImageSent { host, image, bytes } => (false, image_sent(host, image, *bytes)),
        Event::RunFinished {
            succeeded,
            elapsed,
            timings,
        } => {
            let mut text = format!(
                "{} in {}",
                if *succeeded { "Finished" } else { "Failed" },
                seconds(*elapsed)
            );
            if !timings.is_empty() {
                text.push_str(" (");
                for (index, timing) in timings.iter().enumerate() {
                    if index > 0 {
                        text.push_str(", ");
                    }
                    let _ = write!(text, "{} {}", timing.phase, seconds(timing.elapsed));
                }
                text.push(')');
            }
            (false, text)
        }
    }
}

/// `Sent <image> to <host> from the local docker (<size>): <host> could not pull it`.
pub fn image_sent(host: &str, image: &str, bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size shown with one decimal")]
    let megabytes = bytes as f64 / 1_000_000.0;
    format!(
        "Sent {image} to {host} from the local docker ({megabytes:.1} MB): {host} could not pull it"
    )
}

impl Reporter for TerminalReporter {
    fn report(&mut self, event: &Event) {
        let (is_data, text) = render(event);
        if is_data {
            self.printer.data(&text);
        } else if matches!(event, Event::CommandStarted { .. }) {
            self.printer.debug(&text);
        } else if matches!(event, Event::Warning { .. }) {
            self.printer.warn(&text["warning: ".len()..]);
        } else {
            self.printer.info(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhow_core::event::Timing;

    #[test]
    fn renders_steps_and_timings() {
        let finished = Event::StepFinished {
            step: "boot web".to_owned(),
            host: Some("1.1.1.1".to_owned()),
            elapsed: Duration::from_millis(1234),
            outcome: Outcome::Succeeded,
        };
        assert_eq!(
            render(&finished),
            (false, "  boot web on 1.1.1.1 done (1.2s)".to_owned())
        );
        let run = Event::RunFinished {
            succeeded: true,
            elapsed: Duration::from_secs(3),
            timings: vec![
                Timing {
                    phase: "pull".to_owned(),
                    elapsed: Duration::from_millis(800),
                },
                Timing {
                    phase: "boot".to_owned(),
                    elapsed: Duration::from_millis(2100),
                },
            ],
        };
        assert_eq!(
            render(&run),
            (false, "Finished in 3.0s (pull 800ms, boot 2.1s)".to_owned())
        );
    }

    #[test]
    fn output_lines_are_data_prefixed_by_host() {
        let line = Event::Output {
            host: Some("h1".to_owned()),
            stream: Stream::Stdout,
            line: "Docker version 28".to_owned(),
        };
        assert_eq!(render(&line), (true, "h1: Docker version 28".to_owned()));
    }
}
