//! The `lock` group (Kamal's `Cli::Lock`): `status`, `acquire -m MESSAGE` and `release` as a
//! [`LockPlan`], and the redacted rendering `--dry-run` prints.

use std::fmt::Write as _;

use super::LockPlan;
use crate::cmd::for_log;
use crate::config::Config;
use crate::docker::lock::{self, LockDetails};
use crate::docker::server;
use crate::selection::Selection;

/// A command of the `lock` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    Status,
    Acquire,
    Release,
}

/// The lock commands of the selected hosts (the lock lives on the primary host).
pub fn lock_plan(config: &Config, selection: &Selection, details: &LockDetails) -> LockPlan {
    let scope = config.scope();
    LockPlan {
        hosts: selection.hosts.clone(),
        ensure: server::ensure_run_directory(),
        primary: selection.primary_host.clone(),
        acquire: lock::acquire(&scope, details),
        status: lock::status(&scope),
        release: lock::release(&scope),
    }
}

/// What `lock <action> --dry-run` prints.
pub fn render_lock(plan: &LockPlan, action: LockAction) -> String {
    let mut out = String::new();
    match action {
        LockAction::Status => {
            let _ = writeln!(out, "Show the deploy lock\n  {}:", plan.primary);
            let _ = writeln!(out, "    {}", for_log(&plan.status));
        }
        LockAction::Acquire => {
            let _ = writeln!(out, "Acquire the deploy lock");
            for host in &plan.hosts {
                let _ = writeln!(out, "  {host}:\n    {}", for_log(&plan.ensure));
            }
            let _ = writeln!(out, "  {}:\n    {}", plan.primary, for_log(&plan.acquire));
        }
        LockAction::Release => {
            let _ = writeln!(out, "Release the deploy lock\n  {}:", plan.primary);
            let _ = writeln!(out, "    {}", for_log(&plan.release));
        }
    }
    out
}
