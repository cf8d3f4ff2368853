//! The plan of `setup --skip-push` (Kamal's `Cli::Main#setup`): the lock is taken first and held
//! throughout; `server bootstrap` (Docker where missing, then the docker-setup hook) and the
//! pull run under it before the pre-deploy hook; then deploy's stages with the accessories booted
//! between the proxy boot and the stale-container step.

use super::{
    Action, Bootstrap, DeployInput, Parts, Phase, Plan, Stage, Stages, Step, boot_stages,
    host_steps, proxy_stage, prune_stage, pull_stage, stale_stage, tag_stage,
};
use crate::docker::server;

/// Kamal's `server bootstrap` for one host, as data.
pub fn bootstrap() -> Bootstrap {
    Bootstrap {
        installed: server::docker_installed(),
        superuser: server::superuser(),
        install: server::install_docker(),
        root: server::root(),
        in_docker_group: server::in_docker_group(),
        add_to_docker_group: server::add_to_docker_group(),
        refresh_session: server::refresh_session(),
    }
}

/// Builds the plan of `setup --skip-push`; `accessories` are the stages that boot the
/// accessories (empty when the config has none).
pub fn setup(input: &DeployInput<'_>, accessories: Vec<Stage>) -> Plan {
    let parts = Parts::new(input);
    let mut bootstrap_stage = Stage::new(
        "Ensure Docker is installed",
        Phase::Bootstrap,
        input
            .selection
            .hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![Step::new("docker", Action::EnsureDocker(bootstrap()))],
                )
            })
            .collect(),
    );
    bootstrap_stage.after_hook = Some("docker-setup".to_owned());
    let mut locked = vec![proxy_stage(input, &parts, &parts.app_hosts)];
    locked.extend(accessories);
    locked.push(stale_stage(input, &parts.app_hosts));
    locked.extend(boot_stages(input, &parts.scope, &parts.app_hosts));
    locked.push(tag_stage(input, &parts));
    locked.push(prune_stage(input, &parts.scope));
    parts.plan(
        input,
        format!("Setup {} version {}", input.config.service, input.version),
        &format!("setup of version {}", input.version),
        Stages {
            before_lock: Vec::new(),
            checks: vec![
                bootstrap_stage,
                pull_stage(
                    input,
                    &parts.scope,
                    &parts.app_hosts,
                    parts.login.as_ref(),
                    &parts.image,
                ),
            ],
            locked,
        },
    )
}
