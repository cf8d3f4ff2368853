//! Host bootstrap and host-level checks (Kamal's `commands/docker.rb` and `commands/server.rb`).

use super::scope::{RUN_DIRECTORY, Scope};
use crate::cmd::Command;

/// `sh -c 'curl -fsSL https://get.docker.com || wget -O - https://get.docker.com || echo "exit 1"' | sh`.
pub fn install_docker() -> Command {
    Command::from_words([
        "sh",
        "-c",
        "'curl -fsSL https://get.docker.com || wget -O - https://get.docker.com || echo \"exit 1\"'",
        "|",
        "sh",
    ])
}

/// `docker -v`: fails when the Docker client is missing.
pub fn docker_installed() -> Command {
    Command::from_words(["docker", "-v"])
}

/// `docker version`: fails when the daemon is not running or not reachable.
pub fn docker_running() -> Command {
    Command::from_words(["docker", "version"])
}

/// Root, or passwordless sudo that may run usermod.
pub fn superuser() -> Command {
    Command::new("[ \"${EUID:-$(id -u)}\" -eq 0 ] || sudo -nl usermod >/dev/null")
}

/// `[ "${EUID:-$(id -u)}" -eq 0 ]`.
pub fn root() -> Command {
    Command::new("[ \"${EUID:-$(id -u)}\" -eq 0 ]")
}

/// `id -nG "${USER:-$(id -un)}" | grep -qw docker`.
pub fn in_docker_group() -> Command {
    Command::new("id -nG \"${USER:-$(id -un)}\" | grep -qw docker")
}

/// `sudo -n usermod -aG docker "${USER:-$(id -un)}"`.
pub fn add_to_docker_group() -> Command {
    Command::new("sudo -n usermod -aG docker \"${USER:-$(id -un)}\"")
}

/// `kill -HUP $PPID`: ends the SSH session so a new group membership applies.
pub fn refresh_session() -> Command {
    Command::new("kill -HUP $PPID")
}

/// `docker network create kamal`.
pub fn create_network() -> Command {
    Command::from_words(["docker", "network", "create", "kamal"])
}

/// `mkdir -p .kamal`.
pub fn ensure_run_directory() -> Command {
    Command::from_words(["mkdir", "-p", RUN_DIRECTORY])
}

/// `rm -r .kamal/apps/<svc>[-<dest>]`.
pub fn remove_app_directory(scope: &Scope) -> Command {
    Command::from_words(["rm".to_owned(), "-r".to_owned(), scope.app_directory()])
}

/// `ls .kamal/apps | wc -l`: how many apps still use this host's proxy.
pub fn app_directory_count() -> Command {
    Command::combine(
        [
            Command::from_words(["ls".to_owned(), Scope::apps_directory()]),
            Command::from_words(["wc", "-l"]),
        ],
        "|",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;

    #[test]
    fn exact_strings_from_kamal_docker_test() {
        assert_eq!(
            for_exec(&install_docker()),
            "sh -c 'curl -fsSL https://get.docker.com || wget -O - https://get.docker.com || echo \"exit 1\"' | sh"
        );
        assert_eq!(for_exec(&docker_installed()), "docker -v");
        assert_eq!(for_exec(&docker_running()), "docker version");
        assert_eq!(
            for_exec(&superuser()),
            "[ \"${EUID:-$(id -u)}\" -eq 0 ] || sudo -nl usermod >/dev/null"
        );
        assert_eq!(for_exec(&root()), "[ \"${EUID:-$(id -u)}\" -eq 0 ]");
        assert_eq!(
            for_exec(&in_docker_group()),
            "id -nG \"${USER:-$(id -un)}\" | grep -qw docker"
        );
        assert_eq!(
            for_exec(&add_to_docker_group()),
            "sudo -n usermod -aG docker \"${USER:-$(id -un)}\""
        );
        assert_eq!(for_exec(&refresh_session()), "kill -HUP $PPID");
        assert_eq!(for_exec(&create_network()), "docker network create kamal");
    }

    #[test]
    fn app_directories() {
        let scope = Scope::new("app", Some("staging"), "dhh/app");
        assert_eq!(for_exec(&ensure_run_directory()), "mkdir -p .kamal");
        assert_eq!(
            for_exec(&remove_app_directory(&scope)),
            "rm -r .kamal/apps/app-staging"
        );
        assert_eq!(for_exec(&app_directory_count()), "ls .kamal/apps | wc -l");
    }
}
