//! `dhow details`: Kamal's main `details`: the proxy container of each proxy host
//! (`Proxy Host: …`), the app containers of each role (`App Host: …`) and the containers of
//! each accessory (`Accessory Host: …`).

use dhow_core::cmd::Command;
use dhow_core::docker::app::App;
use dhow_core::docker::proxy;

use super::groups::{self, HostQueries, Query};
use super::server::Run;
use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::printer::Printer;

/// `docker ps --filter label=service=<accessory service>` (Kamal's accessory `info`).
pub fn accessory_info(service: &str) -> Command {
    Command::from_words([
        "docker".to_owned(),
        "ps".to_owned(),
        "--filter".to_owned(),
        format!("label=service={service}"),
    ])
}

pub fn run(global: &GlobalArgs, printer: Printer, dry_run: bool) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "details", None, false)?;
    let config = &run.config;
    let proxy_hosts: Vec<HostQueries> = run
        .selection
        .proxy_hosts(config)
        .into_iter()
        .map(|host| HostQueries {
            host,
            queries: vec![Query::Show(proxy::info())],
        })
        .collect();
    let version = run.version.clone().unwrap_or_else(|| config.latest_tag());
    let app_hosts: Vec<HostQueries> = run
        .selection
        .app_hosts(config)
        .into_iter()
        .map(|host| HostQueries {
            queries: run
                .selection
                .roles_on(config, &host)
                .into_iter()
                .map(|role| Query::Show(App::new(config, role, &version).info()))
                .collect(),
            host,
        })
        .collect();
    let accessory_hosts: Vec<HostQueries> = run
        .selection
        .accessory_hosts(config)
        .into_iter()
        .map(|host| HostQueries {
            queries: config
                .accessories
                .iter()
                .filter(|accessory| accessory.hosts.contains(&host))
                .map(|accessory| Query::Show(accessory_info(&accessory.service_name)))
                .collect(),
            host,
        })
        .collect();
    groups::show(&run, "Proxy", "proxy details", proxy_hosts, dry_run)?;
    groups::show(&run, "App", "app details", app_hosts, dry_run)?;
    groups::show(
        &run,
        "Accessory",
        "accessory details",
        accessory_hosts,
        dry_run,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhow_core::cmd::for_exec;

    #[test]
    fn accessory_info_like_kamal() {
        assert_eq!(
            for_exec(&accessory_info("app-mysql")),
            "docker ps --filter label=service=app-mysql"
        );
    }
}
