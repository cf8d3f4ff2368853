//! The outside world as plain values: git state, the user, the UTC clock and random suffixes. The only module of the binary that asks git; the core receives what it finds here.

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

/// `git rev-parse --show-toplevel`: the root of the work tree.
pub fn git_root(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "--show-toplevel"]).filter(|root| !root.is_empty())
}

/// `git status --porcelain`, trimmed (empty when clean).
pub fn git_status(dir: &Path) -> String {
    git(dir, &["status", "--porcelain"]).unwrap_or_default()
}

/// `git ls-files --modified` (`Kamal::Git.uncommitted_files`), relative to `dir`.
pub fn git_modified_files(dir: &Path) -> Vec<String> {
    lines(git(dir, &["ls-files", "--modified"]))
}

/// `git ls-files --others` (`Kamal::Git.untracked_files`, git-ignored files included),
/// relative to `dir`.
pub fn git_untracked_files(dir: &Path) -> Vec<String> {
    lines(git(dir, &["ls-files", "--others"]))
}

fn lines(output: Option<String>) -> Vec<String> {
    output
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `git status --porcelain` reports anything.
pub fn git_uncommitted_changes(dir: &Path) -> bool {
    git(dir, &["status", "--porcelain"]).is_some_and(|status| !status.is_empty())
}

/// git's `user.name` and `user.email` (each empty when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GitUser {
    name: String,
    email: String,
}

impl GitUser {
    /// From `git config --get-regexp` output: `<key> <value>` lines, the last value of a key
    /// winning, as `git config <key>` answers.
    fn parse(listing: &str) -> Self {
        let mut user = Self::default();
        for line in listing.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "user.name" => value.clone_into(&mut user.name),
                "user.email" => value.clone_into(&mut user.email),
                _ => {}
            }
        }
        user
    }
}

/// `git config user.name` and `user.email`, asked of git once per run and directory.
fn git_user(dir: &Path) -> GitUser {
    static ASKED: std::sync::Mutex<Vec<(std::path::PathBuf, GitUser)>> =
        std::sync::Mutex::new(Vec::new());
    if let Ok(asked) = ASKED.lock()
        && let Some((_, user)) = asked.iter().find(|(asked_dir, _)| asked_dir == dir)
    {
        return user.clone();
    }
    let user = GitUser::parse(
        &git(dir, &["config", "--get-regexp", r"^user\.(name|email)$"]).unwrap_or_default(),
    );
    if let Ok(mut asked) = ASKED.lock() {
        asked.push((dir.to_path_buf(), user.clone()));
    }
    user
}

/// `git config user.name`, empty when unset.
pub fn git_user_name(dir: &Path) -> String {
    git_user(dir).name
}

/// `git config user.email`, empty when unset.
pub fn git_email(dir: &Path) -> String {
    git_user(dir).email
}

/// Who holds a lock, as Kamal records it: `git config user.name`, else `Unknown`.
pub fn locked_by(dir: &Path) -> String {
    let name = git_user_name(dir);
    if name.is_empty() {
        "Unknown".to_owned()
    } else {
        name
    }
}

/// Who is deploying, as Kamal records it: the git email, else the login name.
pub fn performer(dir: &Path) -> String {
    let email = git_email(dir);
    if !email.is_empty() {
        return email;
    }
    std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .or_else(|| {
            let output = Command::new("whoami").output().ok()?;
            Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The current UTC time as ISO 8601 (`2026-11-25T13:00:00Z`), as Ruby's `Time#iso8601` prints it.
pub fn now_iso8601() -> String {
    iso8601(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
    )
}

/// Seconds since the Unix epoch, now.
pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

    #[test]
    fn git_user_reads_both_keys_last_value_winning() {
        let user = GitUser::parse(
            "user.name Ada Lovelace\nuser.email a@example.com\nuser.email b@example.com\n",
        );
        assert_eq!(user.name, "Ada Lovelace");
        assert_eq!(user.email, "b@example.com");
        assert_eq!(GitUser::parse(""), GitUser::default());
    }

    #[test]
    fn git_user_answers_as_git_config_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git_in = |args: &[&str]| {
            let output = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("git");
            assert!(output.status.success(), "git {args:?}");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        git_in(&["init", "-q"]);
        git_in(&["config", "user.name", "Ada  Lovelace (ops)"]);
        git_in(&["config", "--add", "user.email", "first@example.com"]);
        git_in(&["config", "--add", "user.email", "last@example.com"]);
        assert_eq!(git_user_name(dir.path()), git_in(&["config", "user.name"]));
        assert_eq!(git_email(dir.path()), git_in(&["config", "user.email"]));
        assert_eq!(git_email(dir.path()), "last@example.com");
    }

    #[test]
    fn iso8601_like_ruby() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }
}
