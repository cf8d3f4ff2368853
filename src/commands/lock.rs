//! `dhow lock status|acquire -m MESSAGE|release` (Kamal's `Cli::Lock`): the deploy lock on the
//! primary host, in Kamal's directory and details format (plus the CI run's URL when there is
//! one). A held lock makes `acquire` exit with code 7 after printing the holder's details.

use std::sync::Arc;

use dhow_core::cmd::Command;
use dhow_core::plan::{self, LockAction, LockPlan};
use dhow_remote::{Pool, RemoteCommand, Transport as _};

use super::lifecycle::lock_details;
use super::server::{Run, cancel_on_signals, host_error, runtime};
use crate::cli::{GlobalArgs, LockCommand};
use crate::error::Error;
use crate::printer::Printer;

/// `dhow lock ...`.
pub fn run(command: &LockCommand, global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let (action, message, dry_run) = match command {
        LockCommand::Status => (LockAction::Status, None, false),
        LockCommand::Acquire { message, dry_run } => {
            (LockAction::Acquire, Some(message.as_str()), *dry_run)
        }
        LockCommand::Release { dry_run } => (LockAction::Release, None, *dry_run),
    };
    let subcommand = match action {
        LockAction::Status => "status",
        LockAction::Acquire => "acquire",
        LockAction::Release => "release",
    };
    let run = Run::prepare(global, printer, "lock", Some(subcommand), false)?;
    let version = run.version.clone().unwrap_or_default();
    let details = lock_details(&run, &version, message.unwrap_or_default());
    let lock = plan::lock_plan(&run.config, &run.selection, &details);
    if dry_run {
        printer.data(plan::render_lock(&lock, action).trim_end());
        return Ok(());
    }
    run.pre_connect()?;
    let pool = run.pool()?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let result = match action {
            LockAction::Status => status(&run, &pool, &lock).await,
            LockAction::Acquire => acquire(&run, &pool, &lock).await,
            LockAction::Release => release(&run, &pool, &lock).await,
        };
        pool.close().await;
        result
    });
    run.report_learned(&pool);
    result
}

/// Runs `command` on the primary host; `Ok(Err(stderr))` when it exits non-zero.
async fn on_primary(
    pool: &Pool,
    lock: &LockPlan,
    command: &Command,
) -> Result<Result<String, String>, Error> {
    let host = &lock.primary;
    let session = pool
        .session(host)
        .await
        .map_err(|error| host_error(host, error.into()))?;
    let output = session
        .capture(&RemoteCommand::from(command))
        .await
        .map_err(|error| host_error(host, error))?;
    if output.status.success() {
        Ok(Ok(output.stdout_text()))
    } else {
        Ok(Err(output.stderr_text()))
    }
}

fn missing(stderr: &str) -> bool {
    stderr.contains("No such file or directory")
}

async fn status(run: &Run, pool: &Pool, lock: &LockPlan) -> Result<(), Error> {
    match on_primary(pool, lock, &lock.status).await? {
        Ok(details) => {
            run.printer.data(details.trim_end());
            Ok(())
        }
        Err(stderr) if missing(&stderr) => {
            run.printer.data("There is no deploy lock");
            Ok(())
        }
        Err(stderr) => Err(failed(lock, &lock.status, &stderr)),
    }
}

async fn acquire(run: &Run, pool: &Pool, lock: &LockPlan) -> Result<(), Error> {
    let ensure = Arc::new(RemoteCommand::from(&lock.ensure));
    let cancel = cancel_on_signals();
    pool.run_on_hosts(&lock.hosts, &cancel, move |session| {
        let ensure = Arc::clone(&ensure);
        async move { session.run(&ensure).await.map(|_| ()) }
    })
    .await
    .into_result()?;
    match on_primary(pool, lock, &lock.acquire).await? {
        Ok(_) => {
            run.printer.info("Acquired the deploy lock");
            Ok(())
        }
        Err(stderr)
            if stderr.contains("cannot create directory") || stderr.contains("File exists") =>
        {
            run.printer.info("Deploy lock already in place!");
            if let Ok(details) = on_primary(pool, lock, &lock.status).await? {
                run.printer.data(details.trim_end());
            }
            Err(Error::LockHeld)
        }
        Err(stderr) => Err(failed(lock, &lock.acquire, &stderr)),
    }
}

async fn release(run: &Run, pool: &Pool, lock: &LockPlan) -> Result<(), Error> {
    match on_primary(pool, lock, &lock.release).await? {
        Ok(_) => {
            run.printer.info("Released the deploy lock");
            Ok(())
        }
        Err(stderr) if missing(&stderr) => {
            run.printer.info("There is no deploy lock");
            Ok(())
        }
        Err(stderr) => Err(failed(lock, &lock.release, &stderr)),
    }
}

fn failed(lock: &LockPlan, command: &Command, stderr: &str) -> Error {
    Error::Failed {
        message: format!(
            "`{}` failed on {}: {}",
            dhow_core::cmd::for_log(command),
            lock.primary,
            stderr.trim()
        ),
    }
}
