//! The plan of `redeploy --skip-push` (Kamal's `Cli::Main#redeploy`): `deploy` without the proxy
//! boot and without the prune: pull, lock, pre-deploy hook, stale containers, app boot, tag.

use super::{DeployInput, Parts, Plan, Stages, boot_stages, pull_stage, stale_stage, tag_stage};

/// Builds the plan of `redeploy --skip-push`.
pub fn redeploy(input: &DeployInput<'_>) -> Plan {
    let parts = Parts::new(input);
    let mut locked = vec![stale_stage(input, &parts.app_hosts)];
    locked.extend(boot_stages(input, &parts.scope, &parts.app_hosts));
    locked.push(tag_stage(input, &parts));
    parts.plan(
        input,
        format!(
            "Redeploy {} version {}",
            input.config.service, input.version
        ),
        &format!("redeploy of version {}", input.version),
        Stages {
            before_lock: vec![pull_stage(
                input,
                &parts.scope,
                &parts.app_hosts,
                parts.login.as_ref(),
                &parts.image,
            )],
            checks: Vec::new(),
            locked,
        },
    )
}
