//! `dhow prune all|images|containers`: Kamal's prune group on every selected host, under the
//! deploy lock with its audit lines: stopped app containers beyond `retain_containers` (or
//! `--retain`), dangling images of the service, and tagged images no container uses (the
//! `latest` tag is kept).

use dhow_core::docker::{audit, prune};
use dhow_core::plan::{Action, Phase, Stage};

use super::groups::{self, step};
use super::server::Run;
use crate::cli::{GlobalArgs, PruneArgs, PruneCommand};
use crate::error::Error;
use crate::printer::Printer;

pub fn run(args: &PruneArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (subcommand, retain) = match args.command {
        PruneCommand::All => ("all", None),
        PruneCommand::Images => ("images", None),
        PruneCommand::Containers { retain } => ("containers", retain),
    };
    let run = Run::prepare(global, printer, "prune", Some(subcommand), false)?;
    let retain = match retain {
        Some(retain) => i64::from(retain),
        None => run.config.retain_containers,
    };
    if retain < 1 {
        return Err(Error::Usage {
            message: "retain must be at least 1".to_owned(),
        });
    }
    let retain = u32::try_from(retain).unwrap_or(u32::MAX);
    let stages = match args.command {
        PruneCommand::All => vec![containers_stage(&run, retain), images_stage(&run)],
        PruneCommand::Images => vec![images_stage(&run)],
        PruneCommand::Containers { .. } => vec![containers_stage(&run, retain)],
    };
    let version = run.version.clone().unwrap_or_default();
    groups::execute(
        &run,
        &format!("prune {subcommand}"),
        &groups::locked_plan(&run, &version, stages),
        args.dry_run,
        None,
    )
}

/// Stopped containers of the service beyond the newest `retain`, on every selected host.
pub fn containers_stage(run: &Run, retain: u32) -> Stage {
    let scope = run.scope();
    let hosts = run
        .selection
        .hosts
        .iter()
        .map(|host| {
            let steps = vec![
                step(
                    "audit",
                    Action::Run(audit::record(&scope, &run.tags, "Pruned containers")),
                ),
                step(
                    "prune containers",
                    Action::Run(prune::app_containers(&scope, retain)),
                ),
            ];
            (host.clone(), steps)
        })
        .collect();
    groups::stage("Prune old containers", Phase::Prune, hosts)
}

/// Dangling images of the service, then tagged images no container uses, on every selected host.
pub fn images_stage(run: &Run) -> Stage {
    let scope = run.scope();
    let hosts = run
        .selection
        .hosts
        .iter()
        .map(|host| {
            let steps = vec![
                step(
                    "audit",
                    Action::Run(audit::record(&scope, &run.tags, "Pruned images")),
                ),
                step(
                    "prune dangling images",
                    Action::Run(prune::dangling_images(&scope)),
                ),
                step(
                    "prune tagged images",
                    Action::Run(prune::tagged_images(&scope)),
                ),
            ];
            (host.clone(), steps)
        })
        .collect();
    groups::stage("Prune unused images", Phase::Prune, hosts)
}
