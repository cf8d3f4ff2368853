//! `dhow redeploy`: the image built and pushed unless `-P`, then deploy's plan without the proxy
//! boot and the prune (Kamal's order: pull,
//! lock, pre-deploy hook, stale containers, app boot, unlock, post-deploy hook).

use dhow_core::plan;

use super::deploy::{input, lock_wait, prepare_for};
use super::lifecycle::{self, APP_BOOT_HOOKS, Execution, PostDeploy};
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat};
use crate::error::Error;
use crate::printer::Printer;

/// `dhow redeploy`.
pub fn redeploy(args: &DeployArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (run, resolved) = prepare_for(global, printer, "redeploy", "Automatic deploy lock")?;
    let plan = plan::redeploy(&input(&run, &resolved));
    if args.dry_run {
        printer.data(plan::render(&plan).trim_end());
        return Ok(());
    }
    super::build::deliver_for(&run, args, printer)?;
    lifecycle::execute(
        &run,
        &plan,
        Execution {
            command: "redeploy",
            shown_hosts: None,
            output: args.output.unwrap_or(OutputFormat::Text),
            lock_wait: lock_wait(args.lock_wait.as_deref())?,
            pre_deploy: true,
            post_deploy: PostDeploy::AfterRelease,
            stage_hooks: Some(APP_BOOT_HOOKS),
        },
        printer,
    )
}
