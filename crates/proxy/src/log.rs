//! JSON log lines on stdout in kamal-proxy's shape (`time`, `level`, `msg`, then fields).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde_json::Value;

static ENABLED: AtomicBool = AtomicBool::new(false);
static DEBUG: AtomicBool = AtomicBool::new(false);
static CAPTURE: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Starts collecting log lines in memory (for tests of the log format).
pub fn capture_start() {
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some(Vec::new());
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

pub fn line(level: &str, msg: &str, fields: &[(&str, Value)]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"time\":");
    out.push_str(&Value::from(crate::timefmt::rfc3339(SystemTime::now())).to_string());
    out.push_str(",\"level\":");
    out.push_str(&Value::from(level).to_string());
    out.push_str(",\"msg\":");
    out.push_str(&Value::from(msg).to_string());
    for (key, value) in fields {
        out.push(',');
        out.push_str(&Value::from(*key).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

fn emit(level: &str, msg: &str, fields: &[(&str, Value)]) {
    if let Ok(mut capture) = CAPTURE.lock()
        && let Some(lines) = capture.as_mut()
    {
        lines.push(line(level, msg, fields));
    }
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let mut text = line(level, msg, fields);
    text.push('\n');
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = lock.write_all(text.as_bytes());
    let _ = lock.flush();
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
