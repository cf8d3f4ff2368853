//! The files an app boot prepares on every app host before any container starts (Kamal's
//! `Cli::App::ErrorPages`, `Assets` and `SslCertificates`, run by `app boot` before the boot
//! groups): the proxy's error pages of the version, each proxy role's assets extracted from the
//! image and synced with the running version's, and each role's custom TLS certificate and key.
//! The key is uploaded over stdin with mode 0600 and handed to the proxy's user (Kamal writes it
//! 0644); only when the SSH user may not do that does it fall back to Kamal's 0644.

use crate::Secret;
use crate::config::Role;
use crate::docker::app::App;
use crate::docker::app_files::{
    PROXY_UID, clean_up_error_pages, create_error_pages_directory,
    create_error_pages_version_directory, error_pages_directory,
};

use super::{Action, DeployInput, HostSteps, OLD_VERSION, Phase, Stage, Step, host_steps};

/// One local error page (`<error_pages_path>/4??.html` or `5??.html`), read by the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    /// The file name, e.g. `503.html`.
    pub name: String,
    /// The local path, as plans show it (e.g. `public/503.html`).
    pub source: String,
    /// The local file's permission bits, which Kamal's upload keeps.
    pub mode: u32,
    pub contents: Secret<Vec<u8>>,
}

/// The preparation stage, or `None` when nothing in the config needs files on the hosts.
pub(super) fn prepare_stage(input: &DeployInput<'_>, app_hosts: &[String]) -> Option<Stage> {
    let hosts: Vec<HostSteps> = app_hosts
        .iter()
        .map(|host| host_steps(host, host_files(input, host)))
        .collect();
    hosts.iter().any(|host| !host.steps.is_empty()).then(|| {
        Stage::new(
            "Prepare error pages, assets and certificates",
            Phase::Boot,
            hosts,
        )
    })
}

fn host_files(input: &DeployInput<'_>, host: &str) -> Vec<Step> {
    let config = input.config;
    let mut steps = Vec::new();
    if config.error_pages_path.is_some() && !input.error_pages.is_empty() {
        steps.push(Step::new(
            "error pages directory",
            Action::Run(create_error_pages_directory(config)),
        ));
        steps.push(Step::new(
            "error pages of the version",
            Action::Run(create_error_pages_version_directory(config, input.version)),
        ));
        let directory = format!("{}/{}", error_pages_directory(config), input.version);
        for page in input.error_pages {
            steps.push(Step::new(
                format!("error page {}", page.name),
                Action::UploadFile {
                    source: page.source.clone(),
                    path: format!("{directory}/{}", page.name),
                    mode: page.mode,
                    contents: page.contents.clone(),
                },
            ));
        }
    }
    for role in input.selection.roles_on(config, host) {
        let app = App::new(config, role, input.version);
        if let Some(extract) = app.extract_assets() {
            steps.push(Step::new(
                format!("extract assets of {}", role.name),
                Action::Run(extract),
            ));
            steps.push(Step::new(
                format!("sync asset volumes of {}", role.name),
                Action::SyncAssets {
                    current: app.current_running_version(),
                    sync: app.sync_asset_volumes(None),
                    sync_with_old: app.sync_asset_volumes(Some(OLD_VERSION)),
                },
            ));
        }
        steps.extend(certificate_steps(input, &app, role));
    }
    steps
}

fn certificate_steps(input: &DeployInput<'_>, app: &App<'_>, role: &Role) -> Vec<Step> {
    let Some((certificate, key)) = app.custom_certificate() else {
        return Vec::new();
    };
    let secret = |name: &str| {
        input
            .secrets
            .get(name)
            .cloned()
            .unwrap_or_else(|| Secret::new(String::new()))
    };
    vec![
        Step::new(
            format!("TLS directory of {}", role.name),
            Action::Run(app.create_ssl_directory()),
        ),
        Step::new(
            format!("TLS certificate of {}", role.name),
            Action::Upload {
                path: app.host_tls_cert(),
                mode: 0o644,
                contents: secret(&certificate),
            },
        ),
        Step::new(
            format!("TLS private key of {}", role.name),
            Action::Upload {
                path: app.host_tls_key(),
                mode: 0o600,
                contents: secret(&key),
            },
        ),
        Step::new(
            format!("TLS private key owner of {}", role.name),
            Action::Fallback {
                command: app.hand_key_to_proxy(),
                otherwise: app.key_readable_by_all(),
                warning: format!(
                    "could not give {} to the proxy's user (uid {PROXY_UID}); it is readable by every user on the host (mode 0644, as Kamal writes it)",
                    app.host_tls_key()
                ),
            },
        ),
    ]
}

/// What follows the old version's stop in a role's boot when one ran (Kamal's
/// `stop_old_version`): the other versions' assets and error pages removed.
pub(super) fn clean_up_steps(app: &App<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    if app.assets() {
        steps.push(Step::new(
            "clean up assets",
            Action::IfOldVersion(app.clean_up_assets()),
        ));
    }
    if app.config.error_pages_path.is_some() {
        steps.push(Step::new(
            "clean up error pages",
            Action::IfOldVersion(clean_up_error_pages(app.config, app.version)),
        ));
    }
    steps
}
