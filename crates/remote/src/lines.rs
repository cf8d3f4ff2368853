//! Turns streamed output chunks into the core's line events (`Event::Output`), per stream,
//! with partial lines held until their newline (or the end) and secret values scrubbed.

use dhow_core::event::{Event, Stream};

use crate::transport::{OutputStream, RemoteCommand};

/// Longest line kept whole; longer runs without a newline are emitted in pieces of this size.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Splits chunks into lines and hands each to `emit` as an [`Event::Output`].
pub struct OutputLines<'a, F: FnMut(Event)> {
    host: Option<String>,
    command: &'a RemoteCommand,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    emit: F,
}

impl<F: FnMut(Event)> std::fmt::Debug for OutputLines<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputLines")
            .field("host", &self.host)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl<'a, F: FnMut(Event)> OutputLines<'a, F> {
    /// Lines of `command` running on `host` (`None` for local commands).
    pub fn new(host: Option<String>, command: &'a RemoteCommand, emit: F) -> Self {
        Self {
            host,
            command,
            stdout: Vec::new(),
            stderr: Vec::new(),
            emit,
        }
    }

    /// Takes the next chunk of a stream.
    pub fn push(&mut self, stream: OutputStream, chunk: &[u8]) {
        let buffer = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        buffer.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=newline).collect();
            lines.push(line);
        }
        while buffer.len() > MAX_LINE_BYTES {
            let piece: Vec<u8> = buffer.drain(..MAX_LINE_BYTES).collect();
            lines.push(piece);
        }
        for line in lines {
            self.emit_line(stream, &line);
        }
    }

    /// Emits what is left of both streams (output that did not end with a newline).
    pub fn finish(mut self) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let rest = match stream {
                OutputStream::Stdout => std::mem::take(&mut self.stdout),
                OutputStream::Stderr => std::mem::take(&mut self.stderr),
            };
            if !rest.is_empty() {
                self.emit_line(stream, &rest);
            }
        }
    }

    fn emit_line(&mut self, stream: OutputStream, bytes: &[u8]) {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = self.command.scrub(&String::from_utf8_lossy(bytes));
        (self.emit)(Event::Output {
            host: self.host.clone(),
            stream: match stream {
                OutputStream::Stdout => Stream::Stdout,
                OutputStream::Stderr => Stream::Stderr,
            },
            line,
        });
    }
}

#[cfg(test)]
mod tests {
    use dhow_core::Secret;

    use super::*;

    fn collect(chunks: &[(OutputStream, &[u8])], command: &RemoteCommand) -> Vec<(Stream, String)> {
        let mut events = Vec::new();
        let mut lines = OutputLines::new(Some("web1".into()), command, |event| events.push(event));
        for (stream, chunk) in chunks {
            lines.push(*stream, chunk);
        }
        lines.finish();
        events
            .into_iter()
            .map(|event| match event {
                Event::Output { host, stream, line } => {
                    assert_eq!(host.as_deref(), Some("web1"));
                    (stream, line)
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_are_split_per_stream_across_chunks() {
        let command = RemoteCommand::plain("x");
        let events = collect(
            &[
                (OutputStream::Stdout, b"one\ntw"),
                (OutputStream::Stderr, b"warn"),
                (OutputStream::Stdout, b"o\r\nthree"),
                (OutputStream::Stderr, b"ing\n"),
            ],
            &command,
        );
        assert_eq!(
            events,
            vec![
                (Stream::Stdout, "one".to_owned()),
                (Stream::Stdout, "two".to_owned()),
                (Stream::Stderr, "warning".to_owned()),
                (Stream::Stdout, "three".to_owned()),
            ]
        );
    }

    #[test]
    fn secrets_are_scrubbed_and_long_lines_cut() {
        let command = RemoteCommand::plain("env").with_scrubbed([Secret::from("hunter2")]);
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        let events = collect(
            &[
                (OutputStream::Stdout, b"DB_PASSWORD=hunter2\n"),
                (OutputStream::Stdout, &long),
            ],
            &command,
        );
        assert_eq!(events[0].1, "DB_PASSWORD=[REDACTED]");
        assert_eq!(events[1].1.len(), MAX_LINE_BYTES);
        assert_eq!(events[2].1.len(), 10);
    }
}
