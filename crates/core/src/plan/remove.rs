//! The plan of `remove` (Kamal's `Cli::Main#remove`), under one lock: `app remove` (stop, with
//! proxy roles taken out of the proxy first; remove the role's containers; the service's images
//! and the app directories where every role of the host is removed), `proxy remove` where no
//! other app directory is left (and, unlike Kamal, the proxy's state volume with it), the
//! accessories' stages, and `registry logout` on every host (none for a local registry).

use super::{Action, DeployInput, Parts, Phase, Plan, Stage, Stages, Step, host_steps};
use crate::cmd::Command;
use crate::config::Config;
use crate::docker::app::App;
use crate::docker::{audit, proxy, registry, server};
use crate::selection::Selection;

/// Builds the plan of `remove`; `accessories` are the stages that remove the accessories.
pub fn remove(input: &DeployInput<'_>, accessories: Vec<Stage>) -> Plan {
    let parts = Parts::new(input);
    let config = input.config;
    let selection = input.selection;
    let scope = &parts.scope;
    let per_role = |label: &str, steps: &dyn Fn(&App<'_>, &str) -> Vec<Step>| {
        Stage::new(
            label,
            Phase::Remove,
            parts
                .app_hosts
                .iter()
                .map(|host| {
                    let steps = selection
                        .roles_on(config, host)
                        .into_iter()
                        .flat_map(|role| steps(&App::new(config, role, input.version), &role.name))
                        .collect();
                    host_steps(host, steps)
                })
                .collect(),
        )
    };
    let stop = per_role("Stop the app", &|app, role| {
        let mut steps = vec![Step::new(
            "audit",
            Action::Run(audit::record(
                scope,
                &input.tags.with(&[("role", role)]),
                "Stopped app",
            )),
        )];
        if config
            .role(role)
            .is_some_and(crate::config::Role::running_proxy)
        {
            steps.push(Step::new(
                format!("remove {role} from the proxy"),
                Action::Try(app.proxy_remove()),
            ));
        }
        steps.push(Step::new(
            format!("stop {role}"),
            Action::Try(app.stop(None)),
        ));
        steps
    });
    let containers = per_role("Remove the app containers", &|app, role| {
        vec![
            Step::new(
                "audit",
                Action::Run(audit::record(
                    scope,
                    &input.tags.with(&[("role", role)]),
                    "Removed all app containers",
                )),
            ),
            Step::new(
                format!("remove {role} containers"),
                Action::Run(app.remove_containers()),
            ),
        ]
    });
    let whole_hosts = hosts_removing_all_roles(config, selection, &parts.app_hosts);
    let (images, directories) = image_and_directory_stages(input, &parts, &whole_hosts);
    let proxy_stage = proxy_removal_stage(input, &parts);
    let mut locked = vec![stop, containers, images, directories, proxy_stage];
    locked.extend(accessories);
    if !config.registry.is_local() {
        locked.push(logout_stage(input));
    }
    parts.plan(
        input,
        format!("Remove {} from the hosts", config.service),
        "remove",
        Stages {
            before_lock: Vec::new(),
            checks: Vec::new(),
            locked,
        },
    )
}

/// The images and the app directories, on hosts where every role is removed.
fn image_and_directory_stages(
    input: &DeployInput<'_>,
    parts: &Parts<'_>,
    whole_hosts: &[String],
) -> (Stage, Stage) {
    let config = input.config;
    let scope = &parts.scope;
    let images = Stage::new(
        "Remove the app images",
        Phase::Remove,
        whole_hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![
                        Step::new(
                            "audit",
                            Action::Run(audit::record(scope, input.tags, "Removed all app images")),
                        ),
                        Step::new("remove images", Action::Run(remove_images(config))),
                    ],
                )
            })
            .collect(),
    );
    let directories = Stage::new(
        "Remove the app directories",
        Phase::Remove,
        whole_hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![
                        Step::new(
                            "app directory",
                            Action::Try(server::remove_app_directory(scope)),
                        ),
                        Step::new(
                            "audit",
                            Action::Run(audit::record(
                                scope,
                                input.tags,
                                &format!("Removed {}", scope.app_directory()),
                            )),
                        ),
                        Step::new(
                            "proxy app directory",
                            Action::Try(proxy::remove_app_directory(
                                &scope.service_and_destination(),
                            )),
                        ),
                    ],
                )
            })
            .collect(),
    );
    (images, directories)
}

/// `docker logout <server>` on every selected host.
fn logout_stage(input: &DeployInput<'_>) -> Stage {
    Stage::new(
        "Log out of the registry",
        Phase::Remove,
        input
            .selection
            .hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![Step::new(
                        "registry logout",
                        Action::Run(registry::logout(input.config.registry.server.as_deref())),
                    )],
                )
            })
            .collect(),
    )
}

/// `proxy remove` on the proxy hosts where no other app directory is left.
fn proxy_removal_stage(input: &DeployInput<'_>, parts: &Parts<'_>) -> Stage {
    Stage::new(
        "Remove kamal-proxy where no other app uses it",
        Phase::Remove,
        parts
            .proxy_hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![Step::new(
                        "proxy",
                        Action::IfZero {
                            count: server::app_directory_count(),
                            then: remove_proxy_steps(input),
                            otherwise: "Not removing the proxy, as other apps are installed"
                                .to_owned(),
                        },
                    )],
                )
            })
            .collect(),
    )
}

/// Kamal's `proxy remove` steps (stop, container, image, directory), plus the state volume.
fn remove_proxy_steps(input: &DeployInput<'_>) -> Vec<Step> {
    let scope = Parts::new(input).scope;
    let record = |line: &str| {
        Step::new(
            "audit",
            Action::Run(audit::record(&scope, input.tags, line)),
        )
    };
    vec![
        record("Stopped proxy"),
        Step::new("stop proxy", Action::Try(proxy::stop())),
        record("Removed proxy container"),
        Step::new(
            "remove proxy container",
            Action::Run(proxy::remove_container()),
        ),
        record("Removed proxy image"),
        Step::new("remove proxy image", Action::Run(proxy::remove_image())),
        Step::new(
            "proxy directory",
            Action::Try(proxy::remove_proxy_directory()),
        ),
        Step::new(
            "proxy state volume",
            Action::Try(proxy::remove_config_volume()),
        ),
    ]
}

/// `docker image prune --all --force --filter label=service=<svc>`.
fn remove_images(config: &Config) -> Command {
    match config.roles.first() {
        Some(role) => App::new(config, role, "").remove_images(),
        None => Command::from_words([
            "docker".to_owned(),
            "image".to_owned(),
            "prune".to_owned(),
            "--all".to_owned(),
            "--force".to_owned(),
            "--filter".to_owned(),
            format!("label=service={}", config.service),
        ]),
    }
}

/// Kamal's `hosts_removing_all_roles`: app hosts where every role of the host is selected.
fn hosts_removing_all_roles(
    config: &Config,
    selection: &Selection,
    app_hosts: &[String],
) -> Vec<String> {
    app_hosts
        .iter()
        .filter(|host| {
            let mut selected: Vec<&str> = selection
                .roles_on(config, host)
                .iter()
                .map(|role| role.name.as_str())
                .collect();
            let mut all: Vec<&str> = config
                .host_roles(host)
                .iter()
                .map(|role| role.name.as_str())
                .collect();
            selected.sort_unstable();
            all.sort_unstable();
            selected == all
        })
        .cloned()
        .collect()
}
