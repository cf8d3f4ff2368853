//! The only place that turns commands into shell text: [`for_exec`] for the remote or local
//! shell, [`for_log`] for everything a person or a log may see (sensitive tokens redacted).

use super::script::{Command, Token};

/// The command as the shell must receive it. Call only where the command is executed.
pub fn for_exec(command: &Command) -> String {
    join(command, |token| match token {
        Token::Plain(text) | Token::Sensitive { text, .. } => text,
    })
}

/// The command as logs, plans, summaries and errors show it.
pub fn for_log(command: &Command) -> String {
    join(command, |token| match token {
        Token::Plain(text) => text,
        Token::Sensitive { redaction, .. } => redaction,
    })
}

fn join<'a>(command: &'a Command, pick: impl Fn(&'a Token) -> &'a str) -> String {
    let mut out = String::new();
    for token in command.as_tokens() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pick(token));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_redacts() {
        let command = Command::new("docker")
            .arg("build")
            .sensitive(
                "--build-arg TOKEN=\"canary\"",
                "--build-arg TOKEN=[REDACTED]",
            )
            .arg(".");
        assert_eq!(
            for_exec(&command),
            "docker build --build-arg TOKEN=\"canary\" ."
        );
        assert_eq!(
            for_log(&command),
            "docker build --build-arg TOKEN=[REDACTED] ."
        );
        assert!(!format!("{command:?}").contains("canary"));
    }

    #[test]
    fn combines_like_kamal() {
        let command = Command::combine(
            [
                Command::from_words(["docker", "start", "kamal-docker-registry"]),
                Command::from_words(["docker", "run", "--detach", "registry:3"]),
            ],
            "||",
        );
        assert_eq!(
            for_exec(&command),
            "docker start kamal-docker-registry || docker run --detach registry:3"
        );
    }

    #[test]
    fn joins_every_token_with_one_space_like_ruby_join() {
        let command = Command::from_words(["echo", "", "x"]);
        assert_eq!(for_exec(&command), "echo  x");
    }
}
