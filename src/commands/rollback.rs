//! `dhow rollback VERSION`: boots a version whose containers are still on the hosts again
//! (Kamal's order: lock, check every role's container of VERSION on every app host, pre-deploy
//! hook, app boot of VERSION, unlock, post-deploy hook). Unlike Kamal, which prints a message and
//! exits 0, a version missing on some host fails the run (exit 1) and names those hosts.
//!
//! VERSION may also be an image digest (`sha256:…` or `REPO@sha256:…`, a repository digest or an
//! image id): it is looked up among the service's images on the app hosts and must name the same
//! version on all of them. This is the entry point the GitHub Actions runtime calls.

use std::sync::Arc;

use dhow_core::config::Config;
use dhow_core::plan;
use dhow_remote::{RemoteCommand, Transport as _};

use super::deploy::{input, lock_wait, resolve};
use super::lifecycle::{self, APP_BOOT_HOOKS, Execution, PostDeploy};
use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::error::Error;
use crate::printer::Printer;

/// `dhow rollback [VERSION|DIGEST]`: without one, the previous successful deployment in
/// GitHub Deployments.
pub fn rollback(args: &RollbackArgs, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let Some(target) = &args.version else {
        return super::deploy::rollback_from_ledger(
            args.output,
            args.lock_wait.clone(),
            global,
            printer,
        );
    };
    let mut run = Run::prepare(global, printer, "rollback", None, true)?;
    let version = match plan::digest_of(target) {
        Some(digest) => version_of_digest(&run, digest)?,
        None => target.clone(),
    };
    run.version = Some(version.clone());
    run.tags.version = Some(version.clone());
    run.tags.service_version = Some(format!(
        "{}@{}",
        run.config.service,
        Config::abbreviated_version(&version)
    ));
    let resolved = resolve(&run, "Automatic deploy lock")?;
    let plan = plan::rollback(&input(&run, &resolved));
    if args.dry_run {
        printer.data(plan::render(&plan).trim_end());
        return Ok(());
    }
    lifecycle::execute(
        &run,
        &plan,
        Execution {
            command: "rollback",
            shown_hosts: None,
            output: args.output.unwrap_or(crate::cli::OutputFormat::Text),
            lock_wait: lock_wait(args.lock_wait.as_deref())?,
            pre_deploy: true,
            post_deploy: PostDeploy::AfterRelease,
            stage_hooks: Some(APP_BOOT_HOOKS),
        },
        printer,
    )
    .map_err(|error| match error {
        Error::Failed { message } if message.contains("is not available as a container") => {
            Error::Failed {
                message: format!(
                    "{message}\n(nothing was changed; `dhow app containers` lists the versions on each host)"
                ),
            }
        }
        error => error,
    })
}

/// The version whose image has `digest` on every app host.
fn version_of_digest(run: &Run, digest: &str) -> Result<String, Error> {
    let hosts: Vec<String> = run
        .selection
        .hosts
        .iter()
        .filter(|host| !run.selection.roles_on(&run.config, host).is_empty())
        .cloned()
        .collect();
    run.pre_connect()?;
    let pool = run.pool()?;
    let listing = Arc::new(RemoteCommand::from(&plan::image_versions(&run.config)));
    let runtime = runtime()?;
    let listings = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let results = pool
            .run_on_hosts(&hosts, &cancel, move |session| {
                let listing = Arc::clone(&listing);
                async move {
                    let host = session.host().to_owned();
                    let output = session.capture(&listing).await?;
                    let output = output.ensure_success(&host, &listing)?;
                    Ok::<String, dhow_remote::RemoteError>(output.stdout_text())
                }
            })
            .await;
        pool.close().await;
        results
    });
    run.report_learned(&pool);
    let listings = listings.into_result()?;
    let mut found: Vec<(String, Vec<String>)> = listings
        .into_iter()
        .map(|(host, listing)| {
            let versions = plan::versions_with_digest(&listing, digest);
            (host, versions)
        })
        .collect();
    found.sort();
    let lacking: Vec<&str> = found
        .iter()
        .filter(|(_, versions)| versions.is_empty())
        .map(|(host, _)| host.as_str())
        .collect();
    if !lacking.is_empty() {
        return Err(Error::Failed {
            message: format!(
                "no image of {} with digest {digest} on {} (nothing was changed)",
                run.config.service,
                lacking.join(", ")
            ),
        });
    }
    let mut common: Vec<String> = found.first().map(|(_, v)| v.clone()).unwrap_or_default();
    common.retain(|version| found.iter().all(|(_, versions)| versions.contains(version)));
    match common.as_slice() {
        [version] => Ok(version.clone()),
        [] => Err(Error::Failed {
            message: format!(
                "the digest {digest} names different versions on different hosts: {}",
                found
                    .iter()
                    .map(|(host, versions)| format!("{host}: {}", versions.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
        several => Err(Error::Failed {
            message: format!(
                "the digest {digest} names several versions ({}); roll back to one of them by name",
                several.join(", ")
            ),
        }),
    }
}
