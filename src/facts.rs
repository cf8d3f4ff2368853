//! The outside world as plain values: git state and random suffixes (later: the clock and the
//! user). The only module of the binary that asks git; the core receives what it finds here.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs `git ARGS` in `dir` and returns its trimmed stdout, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether `dir` is inside a git work tree (`git rev-parse`).
pub fn git_used(dir: &Path) -> bool {
    git(dir, &["rev-parse"]).is_some()
}

/// `git rev-parse HEAD`: the full SHA.
pub fn git_revision(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "HEAD"]).filter(|sha| !sha.is_empty())
}

/// Whether `git status --porcelain` reports anything.
pub fn git_uncommitted_changes(dir: &Path) -> bool {
    git(dir, &["status", "--porcelain"]).is_some_and(|status| !status.is_empty())
}

/// `n` random bytes as lowercase hex (Ruby's `SecureRandom.hex(n)`), from the OS.
pub fn random_hex(n: usize) -> String {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .is_ok();
    if !filled {
        // No /dev/urandom: derive bytes from the clock and the process id; uniqueness, not
        // secrecy, is what the suffixes need.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = seed.to_le_bytes()[index % 16] ^ u8::try_from(index % 256).unwrap_or(0);
        }
    }
    bytes
        .iter()
        .fold(String::with_capacity(n * 2), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_the_requested_length() {
        let hex = random_hex(8);
        assert_eq!(hex.len(), 16);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(random_hex(8), random_hex(8));
    }
}
