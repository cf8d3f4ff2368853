//! Several commands of one host sent as one remote script (one SSH round trip instead of one
//! per command): they run in order, a failing required command ends the script with its exit
//! status, and a marker line after each finished command tells how far the script got, so a
//! failure is reported against the command that failed.

use super::script::{Command, Token};

/// The line the script prints after each command that finished (and did not end the script).
pub const BATCH_MARKER: &str = "dhow-batch-step-done";

/// One command of a batch: `must` ends the script on a non-zero exit; otherwise the exit status
/// is ignored (Kamal's `raise_on_non_zero_exit: false`).
#[derive(Debug, Clone, Copy)]
pub struct BatchPart<'a> {
    pub command: &'a Command,
    pub must: bool,
}

/// The script of `parts`: `{ c1 ; } || exit $? ; echo <marker> ; { c2 ; } ; echo <marker> ;`…
/// Only the first part may carry stdin (it reads it to its end; the later commands of a deploy
/// never read stdin); the script's stdin is that part's.
pub fn batch(parts: &[BatchPart<'_>]) -> Command {
    let mut tokens = Vec::new();
    for part in parts {
        tokens.push(Token::Plain("{".to_owned()));
        tokens.extend(part.command.as_tokens().iter().cloned());
        tokens.extend(["; }"].map(|text| Token::Plain(text.to_owned())));
        if part.must {
            tokens.push(Token::Plain("|| exit $? ;".to_owned()));
        } else {
            tokens.push(Token::Plain(";".to_owned()));
        }
        tokens.push(Token::Plain(format!("echo {BATCH_MARKER} ;")));
    }
    let script = Command::default().tokens(tokens);
    match parts.first().and_then(|part| part.command.stdin()) {
        Some(stdin) => script.with_stdin(stdin.clone()),
        None => script,
    }
}

/// How many parts of a batch finished, from the script's stdout: after a failure, the index of
/// the part that failed.
pub fn batch_progress(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|line| line.trim_end().ends_with(BATCH_MARKER))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::cmd::{for_exec, for_log};

    #[test]
    fn renders_required_and_ignored_parts_with_markers() {
        let audit = Command::combine(
            [
                Command::from_words(["mkdir", "-p", ".kamal"]),
                Command::from_words(["echo", "\"line\"", ">>", ".kamal/app-audit.log"]),
            ],
            "&&",
        );
        let rm = Command::from_words(["docker", "image", "rm", "--force", "img:v1"]);
        let script = batch(&[
            BatchPart {
                command: &audit,
                must: true,
            },
            BatchPart {
                command: &rm,
                must: false,
            },
        ]);
        assert_eq!(
            for_exec(&script),
            "{ mkdir -p .kamal && echo \"line\" >> .kamal/app-audit.log ; } || exit $? ; \
             echo dhow-batch-step-done ; { docker image rm --force img:v1 ; } ; \
             echo dhow-batch-step-done ;"
        );
        assert!(script.stdin().is_none());
    }

    #[test]
    fn keeps_the_first_parts_stdin_and_redactions() {
        let login = Command::from_words(["docker", "login", "reg", "-u"])
            .sensitive("ci", "[REDACTED]")
            .arg("--password-stdin")
            .with_stdin(Secret::new("pw".to_owned()));
        let pull = Command::from_words(["docker", "pull", "reg/app:v1"]);
        let script = batch(&[
            BatchPart {
                command: &login,
                must: true,
            },
            BatchPart {
                command: &pull,
                must: true,
            },
        ]);
        assert_eq!(script.stdin().map(|s| s.expose().as_str()), Some("pw"));
        assert!(for_exec(&script).starts_with("{ docker login reg -u ci --password-stdin ; }"));
        assert!(
            for_log(&script).starts_with("{ docker login reg -u [REDACTED] --password-stdin ; }")
        );
    }

    #[test]
    fn progress_counts_the_finished_parts() {
        assert_eq!(batch_progress(""), 0);
        assert_eq!(
            batch_progress("dhow-batch-step-done\nLogin Succeeded\ndhow-batch-step-done\n"),
            2
        );
        // A command whose output does not end with a newline.
        assert_eq!(batch_progress("abcdhow-batch-step-done\n"), 1);
    }
}
