//! `dhow setup`: the image built (or adopted) and pushed unless `-P`, then Kamal's setup in one
//! plan under one lock taken first: `server bootstrap`
//! (Docker where missing, then the docker-setup hook), pull, pre-deploy hook, proxy boot,
//! accessories, stale containers, app boot, prune, and the post-deploy hook while the lock is
//! still held.

use dhow_core::plan;
use dhow_core::plan::accessory::Operation;

use super::deploy::{input, lock_wait, prepare_for};
use super::lifecycle::{self, APP_BOOT_HOOKS, Execution, PostDeploy};
use crate::cli::{DeployArgs, GlobalArgs, OutputFormat};
use crate::error::Error;
use crate::printer::Printer;

/// `dhow setup`.
pub fn setup(args: &DeployArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (run, resolved) = prepare_for(global, printer, "setup", "Automatic deploy lock")?;
    let accessories = super::accessory::all_stages(&run, Operation::Boot)?;
    let plan = plan::setup(&input(&run, &resolved), accessories);
    if args.dry_run {
        printer.data(plan::render(&plan).trim_end());
        return Ok(());
    }
    super::build::deliver_for(&run, args, printer)?;
    lifecycle::execute(
        &run,
        &plan,
        Execution {
            command: "setup",
            shown_hosts: None,
            output: args.output.unwrap_or(OutputFormat::Text),
            lock_wait: lock_wait(args.lock_wait.as_deref())?,
            pre_deploy: true,
            post_deploy: PostDeploy::BeforeRelease,
            stage_hooks: Some(APP_BOOT_HOOKS),
        },
        printer,
    )
}
