//! The plan of `rollback VERSION` (Kamal's `Cli::Main#rollback`): under the lock, every selected
//! role on every app host must still have a container of VERSION (Kamal only prints a message and
//! exits 0 when one is missing; here the hosts lacking it fail the run); then the pre-deploy
//! hook, `app boot` of VERSION (the stopped container is renamed aside and a fresh one is created
//! from the retained image, with the env file rebuilt from the current config) and the `latest`
//! tag. No pull, no proxy boot, no stale-container step, no prune.

use super::{
    Action, DeployInput, Parts, Phase, Plan, Stage, Stages, Step, boot_stages, host_steps,
};
use crate::docker::app::App;

/// What a host lacking the version reports.
pub fn missing_version_message(version: &str, role: &str) -> String {
    format!("the app version '{version}' is not available as a container of role {role}")
}

/// Builds the plan of `rollback VERSION` (`input.version` is VERSION).
pub fn rollback(input: &DeployInput<'_>) -> Plan {
    let parts = Parts::new(input);
    let config = input.config;
    let version = input.version;
    let check = Stage::new(
        format!("Check that version {version} is available on every host"),
        Phase::Boot,
        parts
            .app_hosts
            .iter()
            .map(|host| {
                let steps = input
                    .selection
                    .roles_on(config, host)
                    .into_iter()
                    .map(|role| {
                        let app = App::new(config, role, version);
                        Step::new(
                            format!("container of {} {version}", role.name),
                            Action::Require {
                                probe: app.container_id_for_version(version, false),
                                missing: missing_version_message(version, &role.name),
                            },
                        )
                    })
                    .collect();
                host_steps(host, steps)
            })
            .collect(),
    );
    let mut locked = boot_stages(input, &parts.scope, &parts.app_hosts);
    locked.push(super::tag_stage(input, &parts));
    parts.plan(
        input,
        format!("Rollback {} to version {version}", config.service),
        &format!("rollback to version {version}"),
        Stages {
            before_lock: Vec::new(),
            checks: vec![check],
            locked,
        },
    )
}

/// The digest in a rollback target written as `sha256:<hex>` or `<repo>@sha256:<hex>`; `None`
/// for a plain version.
pub fn digest_of(target: &str) -> Option<&str> {
    let digest = target.rsplit_once('@').map_or(target, |(_, digest)| digest);
    let hex = digest.strip_prefix("sha256:")?;
    (!hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(digest)
}

/// Lists the service's image tags with their repository digest and image id, one
/// `<tag> <digest> <id>` line each, to find the version of a digest.
pub fn image_versions(config: &crate::config::Config) -> crate::cmd::Command {
    crate::cmd::Command::from_words([
        "docker".to_owned(),
        "image".to_owned(),
        "ls".to_owned(),
        "--digests".to_owned(),
        "--no-trunc".to_owned(),
        "--filter".to_owned(),
        format!("label=service={}", config.service),
        "--format".to_owned(),
        "'{{.Tag}} {{.Digest}} {{.ID}}'".to_owned(),
        config.repository(),
    ])
}

/// The versions (tags other than `latest*` and `<none>`) whose digest or image id is `digest`,
/// from the output of [`image_versions`].
pub fn versions_with_digest(listing: &str, digest: &str) -> Vec<String> {
    let mut versions: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let tag = fields.next()?;
            let matches = fields.any(|field| field == digest);
            (matches && tag != "<none>" && tag != "latest" && !tag.starts_with("latest-"))
                .then(|| tag.to_owned())
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions
}
