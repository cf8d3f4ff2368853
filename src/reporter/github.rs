//! GitHub Actions log output: every secret registered with `::add-mask::` before any other line,
//! one `::group::` per step (host lines prefixed by the host), `::error`/`::warning` annotations
//! for failed hosts, warnings and configuration errors (with file, line and column), and the
//! facts of the run (per-host status and output tail, timings, audit lines) that the job summary
//! is written from.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use dhow_core::config::ConfigErrors;
use dhow_core::event::{Event, Outcome, Timing};
use dhow_github::workflow::{Annotation, WorkflowLog};

use super::Reporter;
use super::terminal::seconds;
use crate::printer::{Printer, Verbosity};

/// The most output lines kept per host for the summary's diagnostics.
const TAIL_LINES: usize = 40;

/// Actions keeps at most this many error annotations per step.
const MAX_ERROR_ANNOTATIONS: usize = 10;

/// How a host fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostStatus {
    #[default]
    Pending,
    Succeeded,
    Failed,
}

/// What happened on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub status: HostStatus,
    /// Failure messages (step: message), in order.
    pub failures: Vec<String>,
    /// The last output lines (diagnostics of a failed boot: log tail, health state).
    pub output: VecDeque<String>,
    /// Time spent in this host's steps.
    pub elapsed: Duration,
}

/// What the reporter saw of a run, for the job summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    pub hosts: BTreeMap<String, HostFacts>,
    pub timings: Vec<Timing>,
    pub elapsed: Duration,
    pub finished: Option<bool>,
    /// Audit lines dhow wrote on the hosts (each once).
    pub audit: Vec<String>,
    pub warnings: Vec<String>,
    /// Failures not tied to a host (the lock, a hook).
    pub failures: Vec<String>,
}

/// Writes lines to stdout through the printer (the runner reads workflow commands from stdout).
#[derive(Debug)]
struct PrinterSink {
    printer: Printer,
    pending: Vec<u8>,
}

impl Write for PrinterSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.printer
                .data(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.printer.data(String::from_utf8_lossy(&line).as_ref());
        }
        Ok(())
    }
}

/// The reporter for `--output github` (the default inside Actions).
#[derive(Debug)]
pub struct GitHubReporter {
    log: WorkflowLog<PrinterSink>,
    verbose: bool,
    facts: RunFacts,
    errors_annotated: usize,
}

impl GitHubReporter {
    /// Registers `secrets` with `::add-mask::` before anything else is written.
    pub fn new<I, S>(printer: Printer, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let sink = PrinterSink {
            printer,
            pending: Vec::new(),
        };
        let mut reporter = Self {
            log: WorkflowLog::unmasked(sink),
            verbose: printer.verbosity() == Verbosity::Verbose,
            facts: RunFacts::default(),
            errors_annotated: 0,
        };
        reporter.mask(secrets);
        reporter
    }

    /// Registers more secret values (resolved after the reporter was made).
    pub fn mask<I, S>(&mut self, secrets: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for secret in secrets {
            let _ = self.log.add_mask(secret.as_ref());
        }
    }

    /// Replaces every registered secret in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.log.redact(text)
    }

    /// What the run looked like so far.
    pub fn facts(&self) -> &RunFacts {
        &self.facts
    }

    /// A plain log line (masked; wrapped in stop-commands if it could start a command).
    pub fn line(&mut self, text: &str) {
        let _ = self.log.info(text);
    }

    /// An `::error` annotation, not tied to a file (at most ten per step are kept by Actions).
    pub fn error(&mut self, title: &str, message: &str) {
        self.facts.failures.push(message.to_owned());
        self.annotate_error(message, &Annotation::default().titled(title));
    }

    /// A `::warning` annotation.
    pub fn warning(&mut self, message: &str) {
        let _ = self.log.warning(message, &Annotation::default());
    }

    fn annotate_error(&mut self, message: &str, at: &Annotation) {
        let _ = self.log.end_group();
        if self.errors_annotated < MAX_ERROR_ANNOTATIONS {
            self.errors_annotated += 1;
            let _ = self.log.error(message, at);
        } else {
            let _ = self.log.info(&format!("error: {message}"));
        }
    }

    /// One `::error file=…,line=…,col=…::` annotation per configuration error.
    pub fn config_errors(&mut self, errors: &ConfigErrors) {
        for error in &errors.errors {
            let message = error.to_string();
            self.facts.failures.push(message.clone());
            let at = match &error.span {
                Some(span) => Annotation::at(
                    span.file.to_string(),
                    u32::try_from(span.line).unwrap_or(u32::MAX),
                    Some(u32::try_from(span.col).unwrap_or(u32::MAX)),
                ),
                None => Annotation::default(),
            }
            .titled("dhow: configuration error");
            let mut text = message;
            if let Some(hint) = &error.hint {
                text.push_str("\nhint: ");
                text.push_str(hint);
            }
            self.annotate_error(&text, &at);
        }
    }

    /// Closes the open group and flushes.
    pub fn close(&mut self) {
        let _ = self.log.end_group();
    }

    fn host(&mut self, host: &str) -> &mut HostFacts {
        self.facts.hosts.entry(host.to_owned()).or_default()
    }

    fn step_finished(
        &mut self,
        step: &str,
        host: Option<&str>,
        elapsed: Duration,
        outcome: &Outcome,
    ) {
        let status = match outcome {
            Outcome::Succeeded => "done".to_owned(),
            Outcome::Failed { message } => format!("FAILED: {message}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        };
        let Some(host) = host else {
            if let Outcome::Failed { message } = outcome {
                self.facts.failures.push(format!("{step}: {message}"));
            }
            self.line(&format!("{step} {status} ({})", seconds(elapsed)));
            return;
        };
        let facts = self.host(host);
        facts.elapsed += elapsed;
        match outcome {
            Outcome::Failed { message } => {
                facts.status = HostStatus::Failed;
                facts.failures.push(format!("{step}: {message}"));
            }
            _ if facts.status == HostStatus::Pending => facts.status = HostStatus::Succeeded,
            _ => {}
        }
        self.line(&format!("{host}: {step} {status} ({})", seconds(elapsed)));
    }

    fn remember_audit(&mut self, command: &str) {
        if let Some(line) = audit_line(command)
            && !self.facts.audit.contains(&line)
        {
            self.facts.audit.push(line);
        }
    }
}

/// The line of an audit record command (`… echo "<line>" >> .kamal/<svc>-audit.log`).
pub fn audit_line(command: &str) -> Option<String> {
    if !command.contains("-audit.log") {
        return None;
    }
    let start = command.find("echo \"")? + "echo \"".len();
    let rest = &command[start..];
    let mut line = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => line.push(chars.next()?),
            '"' => return Some(line),
            other => line.push(other),
        }
    }
    None
}

impl Reporter for GitHubReporter {
    fn report(&mut self, event: &Event) {
        match event {
            Event::RunStarted { command, hosts } => {
                for host in hosts {
                    self.host(host);
                }
                self.line(&format!(
                    "dhow {command}: {} host(s): {}",
                    hosts.len(),
                    hosts.join(", ")
                ));
            }
            Event::StepStarted { step, host: None } => {
                let _ = self.log.group(step);
            }
            Event::StepStarted {
                step,
                host: Some(host),
            } => self.line(&format!("{host}: {step}...")),
            Event::CommandStarted { host, command } => {
                self.remember_audit(command);
                let text = match host {
                    Some(host) => format!("{host}: $ {command}"),
                    None => format!("$ {command}"),
                };
                if self.verbose {
                    self.line(&text);
                } else {
                    let _ = self.log.debug(&text);
                }
            }
            Event::Output { host, line, .. } => {
                let text = match host {
                    Some(host) => {
                        let redacted = self.redact(line);
                        let facts = self.host(host);
                        facts.output.push_back(redacted);
                        if facts.output.len() > TAIL_LINES {
                            facts.output.pop_front();
                        }
                        format!("{host}: {line}")
                    }
                    None => line.clone(),
                };
                self.line(&text);
            }
            Event::StepFinished {
                step,
                host,
                elapsed,
                outcome,
            } => self.step_finished(step, host.as_deref(), *elapsed, outcome),
            // The terminal's line: `Pushed <image> (<digest>)`, `Sent <image> to <host> ...`.
            Event::ImagePushed { .. } | Event::ImageSent { .. } => {
                self.line(&super::terminal::render(event).1);
            }
            Event::Warning { message } => {
                self.facts.warnings.push(self.redact(message));
                let _ = self.log.warning(message, &Annotation::default());
            }
            Event::RunFinished {
                succeeded,
                elapsed,
                timings,
            } => {
                let _ = self.log.end_group();
                self.facts.finished = Some(*succeeded);
                self.facts.elapsed = *elapsed;
                self.facts.timings.clone_from(timings);
                if !*succeeded {
                    let failed: Vec<(String, String)> = self
                        .facts
                        .hosts
                        .iter()
                        .filter(|(_, facts)| facts.status == HostStatus::Failed)
                        .map(|(host, facts)| (host.clone(), facts.failures.join("; ")))
                        .collect();
                    for (host, message) in failed {
                        self.annotate_error(
                            &message,
                            &Annotation::default().titled(format!("dhow: deploy failed on {host}")),
                        );
                    }
                }
                let mut text = format!(
                    "{} in {}",
                    if *succeeded { "Finished" } else { "Failed" },
                    seconds(*elapsed)
                );
                if !timings.is_empty() {
                    let parts: Vec<String> = timings
                        .iter()
                        .map(|t| format!("{} {}", t.phase, seconds(t.elapsed)))
                        .collect();
                    let _ = write!(text, " ({})", parts.join(", "));
                }
                self.line(&text);
            }
        }
    }
}

impl Drop for GitHubReporter {
    fn drop(&mut self) {
        let _ = self.log.end_group();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines_are_read_back_from_the_record_command() {
        assert_eq!(
            audit_line(
                "mkdir -p .kamal && echo \"[2026-01-01T00:00:00Z] [ci] Pushed \\\"v1\\\"\" >> .kamal/app-audit.log"
            ),
            Some("[2026-01-01T00:00:00Z] [ci] Pushed \"v1\"".to_owned())
        );
        assert_eq!(audit_line("docker ps"), None);
    }

    #[test]
    fn host_failures_and_output_are_collected() {
        let mut reporter = GitHubReporter::new(Printer::new(Verbosity::Quiet), ["s3cret"]);
        reporter.report(&Event::RunStarted {
            command: "deploy".to_owned(),
            hosts: vec!["h1".to_owned(), "h2".to_owned()],
        });
        reporter.report(&Event::Output {
            host: Some("h2".to_owned()),
            stream: dhow_core::event::Stream::Stderr,
            line: "boom s3cret".to_owned(),
        });
        for (host, outcome) in [
            ("h1", Outcome::Succeeded),
            (
                "h2",
                Outcome::Failed {
                    message: "unhealthy".to_owned(),
                },
            ),
        ] {
            reporter.report(&Event::StepFinished {
                step: "Boot".to_owned(),
                host: Some(host.to_owned()),
                elapsed: Duration::from_millis(5),
                outcome,
            });
        }
        let facts = reporter.facts();
        assert_eq!(facts.hosts["h1"].status, HostStatus::Succeeded);
        assert_eq!(facts.hosts["h2"].status, HostStatus::Failed);
        assert_eq!(facts.hosts["h2"].failures, ["Boot: unhealthy"]);
        assert_eq!(facts.hosts["h2"].output, ["boom ***"]);
    }
}
