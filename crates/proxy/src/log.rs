//! JSON log lines on stdout in kamal-proxy's shape (`time`, `level`, `msg`, then fields).
//!
//! Lines are built straight into one buffer (no intermediate JSON values) and written to stdout
//! whole, one line per `write`, as kamal-proxy's slog handler does; each thread writes through
//! its own handle on stdout, so the serving threads do not wait for each other.

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

static ENABLED: AtomicBool = AtomicBool::new(false);
static DEBUG: AtomicBool = AtomicBool::new(false);
static CAPTURING: AtomicBool = AtomicBool::new(false);
static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Starts collecting log lines in memory (for tests of the log format).
pub fn capture_start() {
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some(Vec::new());
        CAPTURING.store(true, Ordering::SeqCst);
    }
}

/// Returns and clears the captured lines.
pub fn capture_take() -> Vec<String> {
    CAPTURE
        .lock()
        .ok()
        .and_then(|mut c| c.as_mut().map(std::mem::take))
        .unwrap_or_default()
}

/// Turns logging on (the server does; library users and tests stay quiet by default).
pub fn enable(debug: bool) {
    ENABLED.store(true, Ordering::SeqCst);
    DEBUG.store(debug, Ordering::SeqCst);
}

/// Whether a line at INFO would go anywhere (stdout or the test capture).
pub fn active() -> bool {
    ENABLED.load(Ordering::Relaxed) || CAPTURING.load(Ordering::Relaxed)
}

/// One log line under construction: `time`, `level` and `msg` first, then fields in the order
/// they are added.
#[derive(Debug)]
pub struct Line {
    buf: Vec<u8>,
}

impl Line {
    pub fn new(level: &str, msg: &str) -> Self {
        let mut line = Self {
            buf: Vec::with_capacity(512),
        };
        line.buf.extend_from_slice(b"{\"time\":\"");
        write_rfc3339(&mut line.buf, SystemTime::now());
        line.buf.extend_from_slice(b"\",\"level\":");
        line.push_str(level);
        line.buf.extend_from_slice(b",\"msg\":");
        line.push_str(msg);
        line
    }

    /// A JSON string, escaped as `serde_json` escapes it. Text with nothing to escape (nearly all)
    /// is copied in one piece.
    fn push_str(&mut self, s: &str) {
        if needs_escape(s.as_bytes()) {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.buf, s);
        } else {
            self.buf.reserve(s.len() + 2);
            self.buf.push(b'"');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(b'"');
        }
    }

    fn key(&mut self, key: &str) {
        self.buf.push(b',');
        self.push_str(key);
        self.buf.push(b':');
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        self.push_str(value);
        self
    }

    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.buf, value);
        self
    }

    /// The finished line, without a newline.
    pub fn finish(mut self) -> String {
        self.buf.push(b'}');
        String::from_utf8(self.buf).unwrap_or_default()
    }
}

/// Whether JSON needs any of these bytes escaped (a control character, `"` or `\\`). Eight
/// bytes at a time with the bit tricks for "has a byte less than n" and "has a zero byte": exact
/// as a yes/no answer, and a handful of instructions per word instead of three compares a byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    // Some byte of `word` is below `n` (n <= 128).
    let has_less = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0;
    let has_byte = |word: u64, b: u8| has_less(word ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        if has_less(word, 0x20) || has_byte(word, b'"') || has_byte(word, b'\\') {
            return true;
        }
    }
    words.remainder().iter().copied().any(is_special)
}

/// A byte JSON escapes: a control character, `"` or `\\`.
fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `2026-11-25T13:40:00.123456789Z`, as `timefmt::rfc3339` renders it.
fn write_rfc3339(buf: &mut Vec<u8>, t: SystemTime) {
    fn digits(buf: &mut Vec<u8>, value: u64, width: usize) {
        let mut text = [b'0'; 20];
        let mut v = value;
        for slot in text[..width].iter_mut().rev() {
            *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
        buf.extend_from_slice(&text[..width]);
    }
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (y, m, day) = crate::timefmt::civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400).unsigned_abs();
    digits(buf, y.unsigned_abs(), 4);
    buf.push(b'-');
    digits(buf, u64::from(m), 2);
    buf.push(b'-');
    digits(buf, u64::from(day), 2);
    buf.push(b'T');
    digits(buf, rem / 3600, 2);
    buf.push(b':');
    digits(buf, (rem / 60) % 60, 2);
    buf.push(b':');
    digits(buf, rem % 60, 2);
    buf.push(b'.');
    digits(buf, u64::from(d.subsec_nanos()), 9);
    buf.push(b'Z');
}

pub fn line(level: &str, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut line = Line::new(level, msg);
    for (key, value) in fields {
        line.value(key, value);
    }
    line.finish()
}

/// Sends a finished line to the test capture (when on) and to stdout (when enabled).
pub fn emit_line(line: String) {
    if CAPTURING.load(Ordering::Relaxed)
        && let Ok(mut capture) = CAPTURE.lock()
        && let Some(lines) = capture.as_mut()
    {
        lines.push(line.clone());
    }
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    write_out(&bytes);
}

/// Lines up to this size reach a pipe in one piece, whoever else writes (POSIX `PIPE_BUF`); a
/// `write` to a regular file is never split by another.
const ATOMIC_WRITE: usize = 4096;

/// Held shared while a line of at most [`ATOMIC_WRITE`] bytes is written, exclusively while a
/// longer one is (it may take several writes, which nothing may come between).
static LONG_LINES: RwLock<()> = RwLock::new(());

thread_local! {
    /// This thread's own handle on stdout (a duplicate of fd 1), so that threads writing lines
    /// do not queue on the process-wide stdout lock.
    static OUT: Option<std::fs::File> = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::fs::File::from);
}

/// Writes one whole line to stdout.
fn write_out(bytes: &[u8]) {
    let write = || {
        OUT.with(|out| {
            if let Some(file) = out {
                let _ = (&*file).write_all(bytes);
            } else {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(bytes);
                let _ = stdout.flush();
            }
        });
    };
    if bytes.len() <= ATOMIC_WRITE {
        let _shared = LONG_LINES.read();
        write();
    } else {
        let _exclusive = LONG_LINES.write();
        write();
    }
}

fn emit(level: &str, msg: &str, fields: &[(&str, Value)]) {
    if active() {
        emit_line(line(level, msg, fields));
    }
}

pub fn info(msg: &str, fields: &[(&str, Value)]) {
    emit("INFO", msg, fields);
}

pub fn debug(msg: &str, fields: &[(&str, Value)]) {
    if DEBUG.load(Ordering::Relaxed) {
        emit("DEBUG", msg, fields);
    }
}

pub fn error(msg: &str, fields: &[(&str, Value)]) {
    emit("ERROR", msg, fields);
}

/// `req_<name>` / `resp_<name>`: lower case, `-` → `_`.
pub fn header_field(prefix: &str, name: &str) -> String {
    format!("{prefix}_{}", name.to_ascii_lowercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn line_escapes_as_serde_json_in_field_order() {
        let mut line = Line::new("INFO", "Request");
        line.str("plain", "a b/c")
            .str("quoted", "say \"hi\"\n\\")
            .uint("n", 42)
            .int("neg", -1)
            .value("v", &Value::from(vec!["x"]));
        let text = line.finish();
        assert!(
            text.ends_with(
                r#","level":"INFO","msg":"Request","plain":"a b/c","quoted":"say \"hi\"\n\\","n":42,"neg":-1,"v":["x"]}"#
            ),
            "{text}"
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["quoted"], "say \"hi\"\n\\");
    }

    #[test]
    fn line_time_is_rfc3339_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_764_078_000_000_000_789);
        let mut buf = Vec::new();
        write_rfc3339(&mut buf, t);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "2025-11-25T13:40:00.000000789Z"
        );
        assert_eq!(crate::timefmt::rfc3339(t), "2025-11-25T13:40:00.000000789Z");
    }

    #[test]
    fn needs_escape_finds_a_special_byte_anywhere() {
        for len in 0..40 {
            let plain = "é".repeat(len / 2) + &"a".repeat(len % 2);
            assert!(!needs_escape(plain.as_bytes()), "{plain:?}");
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x01, 0x1f] {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = special;
                    assert!(needs_escape(&bytes), "{len} {at} {special}");
                }
            }
        }
        assert!(!needs_escape(b" !#~\x7f"));
        // Every byte value, alone among plain bytes, at every offset of a word and its tail.
        for value in 0..=255u8 {
            let special = is_special(value);
            for at in 0..19 {
                let mut bytes = [b'a'; 19];
                bytes[at] = value;
                assert_eq!(needs_escape(&bytes), special, "{value:#x} at {at}");
            }
        }
        // Bytes on either side of the thresholds, next to each other (borrows between lanes).
        assert!(!needs_escape(&[
            0x20, 0xff, 0x21, 0x5b, 0x5d, 0x23, 0x80, 0x7f
        ]));
        assert!(needs_escape(&[
            0x20, 0xff, 0x21, 0x5b, 0x5d, 0x23, 0x80, 0x1f
        ]));
        // Pseudo-random words drawn mostly from the bytes around the thresholds, against the
        // byte-by-byte definition.
        let near = [
            0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bytes: Vec<u8> = state
                .to_le_bytes()
                .iter()
                .map(|&r| {
                    if r & 0x80 == 0 {
                        near[usize::from(r) % near.len()]
                    } else {
                        r.rotate_left(3)
                    }
                })
                .collect();
            let expected = bytes.iter().copied().any(is_special);
            assert_eq!(needs_escape(&bytes), expected, "{bytes:x?}");
        }
    }
}
