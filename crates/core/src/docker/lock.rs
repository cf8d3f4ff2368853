//! The deploy lock (Kamal's `commands/lock.rb`): a directory `.kamal/lock-<svc>[-<dest>]` made
//! atomically with `mkdir` on the primary host, holding base64-encoded details.

use base64::Engine as _;

use super::scope::{RUN_DIRECTORY, Scope};
use crate::cmd::Command;

/// Who took the lock, when, for which version and why. `recorded_at` is UTC ISO 8601.
/// `run_url` (the CI run that holds the lock) adds a fourth line, `Run: <url>`, after Kamal's
/// three; Kamal's `lock status` prints it like the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockDetails {
    pub locked_by: String,
    pub recorded_at: String,
    pub version: String,
    pub message: String,
    pub run_url: Option<String>,
}

impl LockDetails {
    /// The decoded text Kamal writes (and `lock status` prints).
    pub fn text(&self) -> String {
        let mut text = format!(
            "Locked by: {} at {}\nVersion: {}\nMessage: {}",
            self.locked_by, self.recorded_at, self.version, self.message
        )
        .trim()
        .to_owned();
        if let Some(url) = &self.run_url {
            text.push_str("\nRun: ");
            text.push_str(url);
        }
        text
    }
}

/// `.kamal/lock-<svc>[-<dest>]`.
pub fn lock_dir(scope: &Scope) -> String {
    let mut name = format!("lock-{}", scope.service);
    if let Some(destination) = &scope.destination {
        name.push('-');
        name.push_str(destination);
    }
    format!("{RUN_DIRECTORY}/{name}")
}

fn details_file(scope: &Scope) -> String {
    format!("{}/details", lock_dir(scope))
}

/// `mkdir -p .kamal`, run on every targeted host before the lock is taken.
pub fn ensure_locks_directory() -> Command {
    Command::from_words(["mkdir", "-p", RUN_DIRECTORY])
}

/// `mkdir <lockdir> && echo "<base64>" > <lockdir>/details`.
pub fn acquire(scope: &Scope, details: &LockDetails) -> Command {
    Command::combine(
        [
            Command::from_words(["mkdir".to_owned(), lock_dir(scope)]),
            Command::combine(
                [
                    Command::from_words([
                        "echo".to_owned(),
                        format!("\"{}\"", encode64(details.text().as_bytes())),
                    ]),
                    Command::new(details_file(scope)),
                ],
                ">",
            ),
        ],
        "&&",
    )
}

/// `rm <lockdir>/details && rm -r <lockdir>`.
pub fn release(scope: &Scope) -> Command {
    Command::combine(
        [
            Command::from_words(["rm".to_owned(), details_file(scope)]),
            Command::from_words(["rm".to_owned(), "-r".to_owned(), lock_dir(scope)]),
        ],
        "&&",
    )
}

/// `stat <lockdir> > /dev/null && cat <lockdir>/details | base64 -d`.
pub fn status(scope: &Scope) -> Command {
    Command::combine(
        [
            Command::combine(
                [
                    Command::from_words(["stat".to_owned(), lock_dir(scope)]),
                    Command::new("/dev/null"),
                ],
                ">",
            ),
            Command::combine(
                [
                    Command::from_words(["cat".to_owned(), details_file(scope)]),
                    Command::from_words(["base64", "-d"]),
                ],
                "|",
            ),
        ],
        "&&",
    )
}

/// Ruby's `Base64.encode64`: standard alphabet, a newline after every 60 characters and at the
/// end. Kamal writes exactly this, newlines included, inside the double quotes.
pub fn encode64(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for (index, chunk) in encoded.as_bytes().chunks(60).enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;

    fn scope() -> Scope {
        Scope::new("app", Some("production"), "dhh/app")
    }

    #[test]
    fn release_and_status_match_kamal() {
        assert_eq!(
            for_exec(&release(&scope())),
            "rm .kamal/lock-app-production/details && rm -r .kamal/lock-app-production"
        );
        assert_eq!(
            for_exec(&status(&scope())),
            "stat .kamal/lock-app-production > /dev/null && cat .kamal/lock-app-production/details | base64 -d"
        );
        assert_eq!(for_exec(&ensure_locks_directory()), "mkdir -p .kamal");
    }

    #[test]
    fn acquire_writes_base64_details_and_stays_ascii() {
        let details = LockDetails {
            locked_by: "Дэвид".to_owned(),
            recorded_at: "2026-11-25T13:00:00Z".to_owned(),
            version: "123".to_owned(),
            message: "Automatic deploy lock \"quoted\"".to_owned(),
            run_url: None,
        };
        let rendered = for_exec(&acquire(&scope(), &details));
        assert!(rendered.is_ascii(), "{rendered}");
        assert!(rendered.starts_with("mkdir .kamal/lock-app-production && echo \""));
        assert!(rendered.ends_with("\n\" > .kamal/lock-app-production/details"));
        let encoded = rendered
            .split('"')
            .nth(1)
            .expect("quoted base64")
            .replace('\n', "");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(
            String::from_utf8(decoded).expect("utf-8"),
            "Locked by: Дэвид at 2026-11-25T13:00:00Z\nVersion: 123\nMessage: Automatic deploy lock \"quoted\""
        );
    }

    #[test]
    fn a_ci_run_url_is_a_fourth_line() {
        let details = LockDetails {
            locked_by: "octocat".to_owned(),
            recorded_at: "2026-11-25T13:00:00Z".to_owned(),
            version: "abc".to_owned(),
            message: "Automatic deploy lock".to_owned(),
            run_url: Some("https://github.com/o/r/actions/runs/42".to_owned()),
        };
        assert_eq!(
            details.text(),
            "Locked by: octocat at 2026-11-25T13:00:00Z\nVersion: abc\nMessage: Automatic deploy lock\nRun: https://github.com/o/r/actions/runs/42"
        );
    }

    #[test]
    fn encode64_wraps_at_60_like_ruby() {
        // The real Ruby: Base64.encode64("a" * 50)
        assert_eq!(
            encode64(&[b'a'; 50]),
            "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh\nYWFhYWE=\n"
        );
        assert_eq!(encode64(b""), "");
    }

    #[test]
    fn lock_dir_without_destination() {
        assert_eq!(
            lock_dir(&Scope::new("app", None, "dhh/app")),
            ".kamal/lock-app"
        );
    }
}
