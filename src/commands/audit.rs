//! `dhow audit`: the last 50 lines of the app's audit log on every selected host, under
//! `App Host: …` headings, as Kamal's `audit`.

use dhow_core::docker::audit;

use super::groups::{self, HostQueries, Query};
use super::server::Run;
use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::printer::Printer;

pub fn run(global: &GlobalArgs, printer: Printer, dry_run: bool) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "audit", None, false)?;
    let reveal = audit::reveal(&run.scope());
    let hosts = run
        .selection
        .hosts
        .iter()
        .map(|host| HostQueries {
            host: host.clone(),
            queries: vec![Query::Show(reveal.clone())],
        })
        .collect();
    groups::show(&run, "App", "audit", hosts, dry_run)
}
