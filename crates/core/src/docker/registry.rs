//! Registry login and logout (Kamal's `commands/registry.rb`), and the local registry container.
//!
//! Unlike Kamal, the password never appears on a command line: it is fed to
//! `docker login --password-stdin`, so `ps` on the host shows nothing secret.

use crate::Secret;
use crate::cmd::{Command, escape_shell_value};

/// `docker login <server> -u "<user>" --password-stdin`, the password on standard input. The
/// user name is redacted in logs, as Kamal does.
pub fn login(server: Option<&str>, username: &str, password: &Secret<String>) -> Command {
    let mut command = Command::from_words(["docker", "login"]);
    if let Some(server) = server {
        command = command.arg(server);
    }
    command
        .arg("-u")
        .sensitive(escape_shell_value(username), "[REDACTED]")
        .arg("--password-stdin")
        .with_stdin(password.clone())
}

/// `docker logout [<server>]`.
pub fn logout(server: Option<&str>) -> Command {
    let command = Command::from_words(["docker", "logout"]);
    match server {
        Some(server) => command.arg(server),
        None => command,
    }
}

/// `docker start kamal-docker-registry || docker run --detach -p 127.0.0.1:<port>:5000 --name
/// kamal-docker-registry registry:3`, for a `localhost:<port>` registry.
pub fn setup_local(port: u16) -> Command {
    Command::combine(
        [
            Command::from_words(["docker", "start", "kamal-docker-registry"]),
            Command::from_words([
                "docker".to_owned(),
                "run".to_owned(),
                "--detach".to_owned(),
                "-p".to_owned(),
                format!("127.0.0.1:{port}:5000"),
                "--name".to_owned(),
                "kamal-docker-registry".to_owned(),
                "registry:3".to_owned(),
            ]),
        ],
        "||",
    )
}

/// `docker stop kamal-docker-registry && docker rm kamal-docker-registry`.
pub fn remove_local() -> Command {
    Command::combine(
        [
            Command::from_words(["docker", "stop", "kamal-docker-registry"]),
            Command::from_words(["docker", "rm", "kamal-docker-registry"]),
        ],
        "&&",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{for_exec, for_log};

    #[test]
    fn login_keeps_the_password_off_the_command_line() {
        let password = Secret::from("more-secret'\"canary");
        let command = login(Some("hub.docker.com"), "dhh", &password);
        assert_eq!(
            for_exec(&command),
            "docker login hub.docker.com -u \"dhh\" --password-stdin"
        );
        assert_eq!(
            for_log(&command),
            "docker login hub.docker.com -u [REDACTED] --password-stdin"
        );
        assert_eq!(
            command.stdin().map(Secret::expose).map(String::as_str),
            Some("more-secret'\"canary")
        );
        assert!(!format!("{command:?}").contains("canary"));
    }

    #[test]
    fn logout_and_local_registry_like_kamal() {
        assert_eq!(
            for_exec(&logout(Some("hub.docker.com"))),
            "docker logout hub.docker.com"
        );
        assert_eq!(
            for_exec(&setup_local(5000)),
            "docker start kamal-docker-registry || docker run --detach -p 127.0.0.1:5000:5000 --name kamal-docker-registry registry:3"
        );
        assert_eq!(
            for_exec(&remove_local()),
            "docker stop kamal-docker-registry && docker rm kamal-docker-registry"
        );
    }
}
