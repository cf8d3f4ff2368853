//! `dhow remove`: after a y/N question (or with `-y`), under one lock: the app's containers,
//! images and directories, the proxy where no other app is left (and its state volume), the
//! accessories, and the registry login on every host.

use dhow_core::plan;
use dhow_core::plan::accessory::Operation;

use super::deploy::{input, lock_wait, resolve};
use super::lifecycle::{self, APP_BOOT_HOOKS, Execution, PostDeploy};
use super::server::Run;
use crate::cli::{GlobalArgs, RemoveArgs};
use crate::error::Error;
use crate::printer::Printer;

/// `dhow remove`.
pub fn remove(args: &RemoveArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let mut run = Run::prepare(global, printer, "remove", None, true)?;
    // Removing needs no version; the lock and the audit lines record the one known, if any.
    if run.version.is_none() {
        run.version = Some(String::new());
    }
    let resolved = resolve(&run, "Automatic deploy lock")?;
    let accessories = super::accessory::all_stages(&run, Operation::Remove)?;
    let plan = plan::remove(&input(&run, &resolved), accessories);
    if args.dry_run {
        printer.data(plan::render(&plan).trim_end());
        return Ok(());
    }
    if !args.confirmed {
        match printer.confirm("This will remove all containers and images. Are you sure?") {
            Some(true) => {}
            Some(false) => {
                printer.info("Aborted");
                return Ok(());
            }
            None => {
                return Err(Error::Usage {
                    message: "dhow remove deletes the app's containers and images on every host: confirm with -y (--confirmed)".to_owned(),
                });
            }
        }
    }
    lifecycle::execute(
        &run,
        &plan,
        Execution {
            command: "remove",
            shown_hosts: None,
            output: args.output.unwrap_or(crate::cli::OutputFormat::Text),
            lock_wait: lock_wait(args.lock_wait.as_deref())?,
            pre_deploy: false,
            post_deploy: PostDeploy::Never,
            stage_hooks: Some(APP_BOOT_HOOKS),
        },
        printer,
    )
}
