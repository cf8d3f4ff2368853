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
///
/// The bytes go into a buffer that each thread reuses from line to line (kept at its size, `len`
/// marking the end), copied eight at a time: the short strings of a line cost a few moves each
/// rather than a call to `memcpy` (musl's copies short unaligned runs byte by byte).
#[derive(Debug)]
pub struct Line {
    buf: Vec<u8>,
    len: usize,
}

thread_local! {
    /// The buffer of this thread's last line, for its next one.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The size a line buffer starts at (an access-log line is about 450 bytes).
const LINE_CAPACITY: usize = 1024;

impl Line {
    pub fn new(level: &str, msg: &str) -> Self {
        let mut buf = SPARE.try_with(std::cell::Cell::take).unwrap_or_default();
        if buf.len() < LINE_CAPACITY {
            buf.resize(LINE_CAPACITY, 0);
        }
        let mut line = Self { buf, len: 0 };
        line.raw(b"{\"time\":\"");
        line.raw(&rfc3339(SystemTime::now()));
        line.raw(b"\",\"level\":");
        line.push_str(level);
        line.raw(b",\"msg\":");
        line.push_str(msg);
        line
    }

    /// Room for `n` more bytes.
    fn reserve(&mut self, n: usize) {
        let needed = self.len + n;
        if needed > self.buf.len() {
            self.buf.resize(needed.max(self.buf.len() * 2), 0);
        }
    }

    /// Appends `bytes`: eight at a time, the last eight overlapping the ones before; a shorter
    /// run as two overlapping halves (fixed-size moves, never a loop the compiler could turn back
    /// into a `memcpy` call).
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.reserve(n);
        let at = self.len;
        let out = &mut self.buf[at..at + n];
        overlapping_copy(out, bytes);
        self.len = at + n;
    }

    /// A JSON string, escaped as `serde_json` escapes it. Text with nothing to escape (nearly all)
    /// is checked and copied in the same pass, eight bytes at a time.
    #[inline]
    fn push_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let n = bytes.len();
        self.reserve(n + 2);
        let at = self.len;
        let out = &mut self.buf[at..at + n + 2];
        out[0] = b'"';
        if copy_plain(&mut out[1..=n], bytes) {
            out[n + 1] = b'"';
            self.len = at + n + 2;
        } else {
            self.push_escaped(s);
        }
    }

    #[cold]
    fn push_escaped(&mut self, s: &str) {
        let mut escaped = Vec::with_capacity(s.len() + 8);
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut escaped, s);
        self.put(&escaped);
    }

    /// Bytes of a size known when compiling (a rendered key such as `,"host":`): a few moves.
    #[inline]
    fn raw<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.reserve(N);
        let at = self.len;
        self.buf[at..at + N].copy_from_slice(bytes);
        self.len = at + N;
    }

    /// A string field whose key comes rendered, `,"name":` (a name with nothing to escape): the
    /// fields of the access log, written without looking at their keys.
    #[inline]
    pub fn str_at<const N: usize>(&mut self, key: &[u8; N], value: &str) -> &mut Self {
        debug_assert!(rendered_key(key));
        self.raw(key);
        self.push_str(value);
        self
    }

    /// A number field (any integer type) whose key comes rendered, as for [`Line::str_at`].
    #[inline]
    pub fn int_at<const N: usize>(
        &mut self,
        key: &[u8; N],
        value: impl itoa::Integer,
    ) -> &mut Self {
        debug_assert!(rendered_key(key));
        self.raw(key);
        self.put(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    #[inline]
    fn key(&mut self, key: &str) {
        self.raw(b",");
        self.push_str(key);
        self.raw(b":");
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        self.push_str(value);
        self
    }

    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.put(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        self.put(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        self.key(key);
        // Writing to a Vec cannot fail.
        if let Ok(text) = serde_json::to_vec(value) {
            self.put(&text);
        }
        self
    }

    /// The finished line, without a newline.
    pub fn finish(mut self) -> String {
        self.raw(b"}");
        String::from_utf8(self.buf[..self.len].to_vec()).unwrap_or_default()
    }

    /// Finishes the line and sends it where [`emit_line`] would, without making a `String` of it
    /// unless the test capture is on.
    pub fn emit(mut self) {
        self.raw(b"}\n");
        let text = &self.buf[..self.len];
        if CAPTURING.load(Ordering::Relaxed)
            && let Ok(mut capture) = CAPTURE.lock()
            && let Some(lines) = capture.as_mut()
        {
            lines.push(String::from_utf8_lossy(&text[..text.len() - 1]).into_owned());
        }
        if ENABLED.load(Ordering::Relaxed) {
            write_out(text);
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let _ = SPARE.try_with(|spare| spare.set(buf));
    }
}

/// Whether JSON needs any of these bytes escaped (a control character, `"` or `\\`): what
/// [`copy_plain`] finds, eight bytes at a time with the bit tricks for "has a byte less than n"
/// and "has a zero byte" (exact as a yes/no answer).
fn needs_escape(bytes: &[u8]) -> bool {
    let mut scratch = [0u8; 64];
    bytes
        .chunks(64)
        .any(|chunk| !copy_plain(&mut scratch[..chunk.len()], chunk))
}

/// Copies `from` into `to` (the same length) with fixed-size moves: eight bytes at a time and
/// the last eight overlapping, or for fewer than eight two overlapping halves of 4, 2 or 1.
#[inline]
fn overlapping_copy(to: &mut [u8], from: &[u8]) {
    let n = from.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            copy_fixed::<8>(&mut to[at..], &from[at..]);
            at += 8;
        }
        copy_fixed::<8>(&mut to[n - 8..], &from[n - 8..]);
    } else if n >= 4 {
        copy_fixed::<4>(to, from);
        copy_fixed::<4>(&mut to[n - 4..], &from[n - 4..]);
    } else if n >= 2 {
        copy_fixed::<2>(to, from);
        copy_fixed::<2>(&mut to[n - 2..], &from[n - 2..]);
    } else if n == 1 {
        to[0] = from[0];
    }
}

/// Whether some byte of `word` is one JSON escapes (a control character, `"` or `\\`).
#[inline]
fn special_word(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    // Some byte of `word` is below `n` (n <= 128).
    let has_less = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0;
    let has_byte = |word: u64, b: u8| has_less(word ^ (ONES * u64::from(b)), 1);
    has_less(word, 0x20) || has_byte(word, b'"') || has_byte(word, b'\\')
}

/// Copies `from` into `to` (the same length) if it has nothing JSON escapes, checking each word
/// as it is copied; `false` (and `to` partly written) if it has.
#[inline]
fn copy_plain(to: &mut [u8], from: &[u8]) -> bool {
    let n = from.len();
    if n >= 8 {
        let mut at = 0;
        loop {
            let start = at.min(n - 8);
            let mut word = [0u8; 8];
            word.copy_from_slice(&from[start..start + 8]);
            if special_word(u64::from_ne_bytes(word)) {
                return false;
            }
            to[start..start + 8].copy_from_slice(&word);
            if start + 8 == n {
                return true;
            }
            at = start + 8;
        }
    }
    // Fewer than eight: the string's own bytes (two overlapping halves) padded with a plain one.
    let mut word = [b'a'; 8];
    if n >= 4 {
        copy_fixed::<4>(&mut word, from);
        copy_fixed::<4>(&mut word[4..], &from[n - 4..]);
    } else if n >= 2 {
        copy_fixed::<2>(&mut word, from);
        copy_fixed::<2>(&mut word[2..], &from[n - 2..]);
    } else if n == 1 {
        word[0] = from[0];
    }
    if special_word(u64::from_ne_bytes(word)) {
        return false;
    }
    overlapping_copy(to, from);
    true
}

/// `,"name":` with a name that needs no escaping (checked in debug builds).
fn rendered_key(key: &[u8]) -> bool {
    key.len() >= 4
        && key.starts_with(b",\"")
        && key.ends_with(b"\":")
        && !needs_escape(&key[2..key.len() - 2])
}

/// The first `N` bytes of `from` over the first `N` of `to`.
#[inline]
fn copy_fixed<const N: usize>(to: &mut [u8], from: &[u8]) {
    let mut word = [0u8; N];
    word.copy_from_slice(&from[..N]);
    to[..N].copy_from_slice(&word);
}

/// A byte JSON escapes: a control character, `"` or `\\`.
#[cfg(test)]
fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `2026-11-25T13:40:00.123456789Z`, as `timefmt::rfc3339` renders it.
fn rfc3339(t: SystemTime) -> [u8; 30] {
    fn digits(out: &mut [u8], value: u64) {
        let mut v = value;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
    }
    let mut text = *b"0000-00-00T00:00:00.000000000Z";
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (y, m, day) = crate::timefmt::civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400).unsigned_abs();
    digits(&mut text[0..4], y.unsigned_abs());
    digits(&mut text[5..7], u64::from(m));
    digits(&mut text[8..10], u64::from(day));
    digits(&mut text[11..13], rem / 3600);
    digits(&mut text[14..16], (rem / 60) % 60);
    digits(&mut text[17..19], rem % 60);
    digits(&mut text[20..29], u64::from(d.subsec_nanos()));
    text
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
    fn line_strings_of_every_length_are_copied_and_escaped_as_serde_json() {
        for len in 0..70 {
            let plain: String = (b'a'..=b'z').cycle().take(len).map(char::from).collect();
            let mut variants = vec![plain.clone(), "é".repeat(len / 2)];
            for at in [0, len / 2, len.saturating_sub(1)] {
                if at < len {
                    let mut bytes = plain.clone().into_bytes();
                    bytes[at] = b'"';
                    variants.push(String::from_utf8(bytes).unwrap());
                }
            }
            for text in variants {
                let mut line = Line::new("INFO", "m");
                line.str(&text, &text)
                    .uint("n", 1_234_567_890_123)
                    .int("i", -7);
                let finished = line.finish();
                let key = serde_json::to_string(&text).unwrap();
                let expected = format!(",{key}:{key},\"n\":1234567890123,\"i\":-7}}");
                assert!(finished.ends_with(&expected), "{finished} {expected}");
                let parsed: Value = serde_json::from_str(&finished).unwrap();
                assert_eq!(parsed[&text], Value::from(text.as_str()));
            }
        }
    }

    #[test]
    fn fields_with_rendered_keys_read_as_those_with_plain_keys() {
        for value in [
            "",
            "a",
            "abc",
            "host.example",
            "a \"quoted\" value\n",
            "é/ü?x=1&y=2",
        ] {
            let mut plain = Line::new("INFO", "m");
            plain.str("key", value).uint("n", 7).int("i", -3);
            let mut rendered = Line::new("INFO", "m");
            rendered
                .str_at(b",\"key\":", value)
                .int_at(b",\"n\":", 7)
                .int_at(b",\"i\":", -3);
            let (plain, rendered) = (plain.finish(), rendered.finish());
            // The times differ; everything after them is the same.
            assert_eq!(plain[40..], rendered[40..], "{value:?}");
        }
        assert!(rendered_key(b",\"host\":"));
        assert!(!rendered_key(b"\"host\":"));
        assert!(!rendered_key(b",\"ho\"st\":"));
    }

    #[test]
    fn a_line_longer_than_the_buffer_grows_it_and_the_next_line_starts_afresh() {
        let long = "x".repeat(3 * LINE_CAPACITY);
        let mut line = Line::new("INFO", "long");
        line.str("a", &long);
        let first = line.finish();
        assert!(first.ends_with(&format!(",\"a\":\"{long}\"}}")));
        let mut line = Line::new("INFO", "short");
        line.str("b", "c");
        let second = line.finish();
        assert!(
            second.ends_with(r#","level":"INFO","msg":"short","b":"c"}"#),
            "{second}"
        );
        assert_eq!(
            second.len(),
            r#"{"time":"2025-11-25T13:40:00.000000789Z","level":"INFO","msg":"short","b":"c"}"#
                .len()
        );
    }

    #[test]
    fn an_emitted_line_is_captured_as_finish_renders_it() {
        capture_start();
        let mut line = Line::new("INFO", "Request");
        line.str("k", "v").uint("status", 200);
        line.emit();
        let lines = capture_take();
        CAPTURING.store(false, Ordering::SeqCst);
        let line = lines
            .iter()
            .find(|l| l.contains(r#""msg":"Request","k":"v""#))
            .unwrap();
        assert!(line.ends_with(r#","k":"v","status":200}"#), "{line}");
        assert!(!line.contains('\n'));
        let _: Value = serde_json::from_str(line).unwrap();
    }

    #[test]
    fn line_time_is_rfc3339_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_764_078_000_000_000_789);
        assert_eq!(&rfc3339(t), b"2025-11-25T13:40:00.000000789Z");
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
