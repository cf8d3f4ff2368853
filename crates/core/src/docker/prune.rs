//! Pruning old containers and images (Kamal's `commands/prune.rb`).

use super::scope::Scope;
use crate::cmd::Command;

fn service_filter(scope: &Scope) -> [String; 2] {
    [
        "--filter".to_owned(),
        format!("label=service={}", scope.service),
    ]
}

/// `docker image prune --force --filter label=service=<svc>`.
pub fn dangling_images(scope: &Scope) -> Command {
    Command::from_words(["docker", "image", "prune", "--force"]).args(service_filter(scope))
}

/// Removes tagged images of the service that no container uses, keeping `latest[-dest]`.
pub fn tagged_images(scope: &Scope) -> Command {
    let active = format!(
        "$(docker container ls -a --format '{{{{.Image}}}}\\|' --filter label=service={} | tr -d '\\n'){}\\|{}:<none>",
        scope.service,
        scope.latest_image(),
        scope.repository
    );
    Command::combine(
        [
            Command::from_words(["docker", "image", "ls"])
                .args(service_filter(scope))
                .args(["--format", "'{{.ID}} {{.Repository}}:{{.Tag}}'"]),
            Command::from_words(["grep".to_owned(), format!("-v -w \"{active}\"")]),
            Command::new("while read image tag; do docker rmi $tag; done"),
        ],
        "|",
    )
}

/// Removes stopped containers of the service beyond the newest `retain`.
pub fn app_containers(scope: &Scope, retain: u32) -> Command {
    Command::combine(
        [
            Command::from_words(["docker", "ps", "-q", "-a"])
                .args(service_filter(scope))
                .args([
                    "--filter",
                    "status=created",
                    "--filter",
                    "status=exited",
                    "--filter",
                    "status=dead",
                ]),
            Command::new(format!("tail -n +{}", retain + 1)),
            Command::new("while read container_id; do docker rm $container_id; done"),
        ],
        "|",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::for_exec;

    #[test]
    fn prune_commands_like_kamal() {
        let scope = Scope::new("app", None, "dhh/app");
        assert_eq!(
            for_exec(&dangling_images(&scope)),
            "docker image prune --force --filter label=service=app"
        );
        assert_eq!(
            for_exec(&tagged_images(&scope)),
            "docker image ls --filter label=service=app --format '{{.ID}} {{.Repository}}:{{.Tag}}' | grep -v -w \"$(docker container ls -a --format '{{.Image}}\\|' --filter label=service=app | tr -d '\\n')dhh/app:latest\\|dhh/app:<none>\" | while read image tag; do docker rmi $tag; done"
        );
        assert_eq!(
            for_exec(&app_containers(&scope, 5)),
            "docker ps -q -a --filter label=service=app --filter status=created --filter status=exited --filter status=dead | tail -n +6 | while read container_id; do docker rm $container_id; done"
        );
        assert!(for_exec(&app_containers(&scope, 3)).contains("tail -n +4"));
    }

    #[test]
    fn tagged_images_keep_the_destination_latest_tag() {
        let scope = Scope::new("app", Some("staging"), "dhh/app");
        assert!(
            for_exec(&tagged_images(&scope)).contains("dhh/app:latest-staging\\|dhh/app:<none>")
        );
    }
}
