//! Accessory plans (Kamal 2.11's `cli/accessory.rb`): the stages of `accessory boot`, `reboot`,
//! `start`, `stop`, `restart`, `remove` and `upgrade` for one accessory or all, in Kamal's step
//! order, on the accessory's hosts cut to the selection; wrapped in the deploy lock by
//! [`plan`], or handed to `setup`/`remove` as bare stages by [`boot_all`] and [`remove_all`].
//!
//! Secrets reach the hosts only as the 0600 env file (and the registry password on stdin);
//! uploaded files travel as [`Action::UploadFile`] contents, never on a command line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Action, HostSteps, LockPlan, Phase, Plan, Stage, Step, render_stage};
use crate::Secret;
use crate::cmd::{Command, for_log};
use crate::config::{self, Config};
use crate::docker::accessory::{Accessory, chmod, chown, make_directory, make_directory_for};
use crate::docker::audit::{self, Tags};
use crate::docker::lock::{self, LockDetails};
use crate::docker::{Scope, registry, server};
use crate::selection::Selection;

/// A registry user name and password, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret<String>,
}

/// Everything accessory stages are built from.
#[derive(Debug, Clone, Copy)]
pub struct AccessoryInput<'a> {
    pub config: &'a Config,
    pub selection: &'a Selection,
    pub tags: &'a Tags,
    /// The root registry's credentials; `None` for a local registry or none configured.
    pub registry: Option<&'a Credentials>,
    /// Credentials of the accessories that have their own `registry`, by accessory name.
    pub accessory_registries: &'a BTreeMap<String, Credentials>,
    /// Every secret the accessories' envs name, resolved (only boot and reboot need them).
    pub secrets: &'a BTreeMap<String, Secret<String>>,
    /// The contents of each accessory's `files`, in [`Accessory::files`] order, by accessory
    /// name (ERB templates already rendered; only boot and reboot need them).
    pub files: &'a BTreeMap<String, Vec<Secret<Vec<u8>>>>,
    /// The app version (names the error pages of a proxied accessory).
    pub version: &'a str,
}

/// An accessory subcommand that changes the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Boot,
    Reboot,
    Start,
    Stop,
    Restart,
    Remove,
    /// Kamal's 1.x → 2.0 upgrade: a reboot onto the `kamal` network, one host at a time when
    /// `rolling`.
    Upgrade {
        rolling: bool,
    },
}

impl Operation {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Boot => "boot",
            Operation::Reboot => "reboot",
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Restart => "restart",
            Operation::Remove => "remove",
            Operation::Upgrade { .. } => "upgrade",
        }
    }
}

/// The selected hosts of an accessory, in the accessory's order.
pub fn accessory_hosts(selection: &Selection, accessory: &config::Accessory) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for host in &accessory.hosts {
        if selection.hosts.contains(host) && !out.contains(host) {
            out.push(host.clone());
        }
    }
    out
}

/// The selected hosts of every accessory, in configuration order (Kamal's `accessory_hosts`).
pub fn all_accessory_hosts(config: &Config, selection: &Selection) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for accessory in &config.accessories {
        for host in accessory_hosts(selection, accessory) {
            if !out.contains(&host) {
                out.push(host);
            }
        }
    }
    out
}

fn stage(label: String, phase: Phase, hosts: Vec<HostSteps>) -> Stage {
    Stage {
        label,
        phase,
        hosts,
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: None,
    }
}

fn per_host(hosts: &[String], mut steps: impl FnMut(&str) -> Vec<Step>) -> Vec<HostSteps> {
    hosts
        .iter()
        .map(|host| HostSteps {
            host: host.clone(),
            steps: steps(host),
            roles: Vec::new(),
        })
        .collect()
}

struct Ctx<'a> {
    input: &'a AccessoryInput<'a>,
    scope: Scope,
    accessory: Accessory<'a>,
    hosts: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a AccessoryInput<'a>, accessory: &'a config::Accessory) -> Self {
        let config = input.config;
        Self {
            input,
            scope: Scope::new(
                &config.service,
                config.destination.as_deref(),
                &config.repository(),
            ),
            accessory: Accessory::new(config, accessory),
            hosts: accessory_hosts(input.selection, accessory),
        }
    }

    fn name(&self) -> &str {
        self.accessory.name()
    }

    fn audit(&self, message: &str) -> Step {
        Step::new(
            "audit",
            Action::Run(audit::record(&self.scope, self.input.tags, message)),
        )
    }

    /// Kamal's `registry.login(registry_config: accessory.registry)`: the accessory's own
    /// registry, else the root one; nothing for a local registry.
    fn login(&self) -> Option<Command> {
        let accessory = self.accessory.accessory;
        if let Some(own) = &accessory.registry {
            if own.is_local() {
                return None;
            }
            let credentials = self.input.accessory_registries.get(&accessory.name)?;
            return Some(registry::login(
                own.server.as_deref(),
                &credentials.username,
                &credentials.password,
            ));
        }
        let credentials = self.input.registry?;
        Some(registry::login(
            self.input.config.registry.server.as_deref(),
            &credentials.username,
            &credentials.password,
        ))
    }

    /// Kamal's `prepare`: registry login and the `kamal` network ("already exists" is fine).
    fn prepare(&self) -> Stage {
        let login = self.login();
        stage(
            format!("Prepare {} accessory", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                let mut steps = Vec::new();
                if let Some(login) = &login {
                    steps.push(Step::new("registry login", Action::Run(login.clone())));
                }
                steps.push(Step::new(
                    "network",
                    Action::RunAllowing {
                        command: server::create_network(),
                        allowed: "already exists".to_owned(),
                    },
                ));
                steps
            }),
        )
    }

    /// `mkdir -p`, `chmod`, `chown` of each directory.
    fn directories(&self) -> Stage {
        let directories = self.accessory.directories();
        stage(
            format!("Create {} accessory directories", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                let mut steps = Vec::new();
                for directory in &directories {
                    steps.push(Step::new(
                        "directory",
                        Action::Run(make_directory(&directory.path)),
                    ));
                    if let Some(mode) = &directory.mode {
                        steps.push(Step::new(
                            "chmod",
                            Action::Run(chmod(mode, &directory.path)),
                        ));
                    }
                    if let Some(owner) = &directory.owner {
                        steps.push(Step::new(
                            "chown",
                            Action::Run(chown(owner, &directory.path)),
                        ));
                    }
                }
                steps
            }),
        )
    }

    /// `mkdir -p <dir>`, the upload, `chmod`, `chown` of each file.
    fn upload(&self) -> Stage {
        let files = self.accessory.files();
        let contents = self.input.files.get(self.name());
        stage(
            format!("Upload {} accessory files", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                let mut steps = Vec::new();
                for (index, file) in files.iter().enumerate() {
                    steps.push(Step::new(
                        "directory",
                        Action::Run(make_directory_for(&file.host_path)),
                    ));
                    steps.push(Step::new(
                        "upload",
                        Action::UploadFile {
                            source: file.local.clone(),
                            path: file.host_path.clone(),
                            mode: 0o600,
                            contents: contents
                                .and_then(|all| all.get(index))
                                .cloned()
                                .unwrap_or_default(),
                        },
                    ));
                    if let Some(mode) = &file.mode {
                        steps.push(Step::new(
                            "chmod",
                            Action::Run(chmod(mode, &file.host_path)),
                        ));
                    }
                    if let Some(owner) = &file.owner {
                        steps.push(Step::new(
                            "chown",
                            Action::Run(chown(owner, &file.host_path)),
                        ));
                    }
                }
                steps
            }),
        )
    }

    /// The proxy deploy of a proxied accessory: its running container's id is the target.
    fn proxy_deploy(&self) -> Option<Step> {
        let deploy = self
            .accessory
            .proxy_deploy(super::CONTAINER_ID, self.input.version)?;
        Some(Step::new(
            "proxy deploy",
            Action::ProxyDeploy {
                probe: self.accessory.running_container_id(),
                deploy,
            },
        ))
    }

    /// Kamal's `boot`: [prepare], directories, files, then on the hosts without a container of
    /// the accessory: audit, env directory, env file (0600), `docker run`, proxy deploy.
    fn boot(&self, prepare: bool) -> Vec<Stage> {
        let mut stages = Vec::new();
        if prepare {
            stages.push(self.prepare());
        }
        stages.push(self.directories());
        stages.push(self.upload());
        let env_file = self.accessory.env_file_contents(self.input.secrets);
        stages.push(stage(
            format!("Boot {} accessory", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |host| {
                let mut steps = vec![
                    Step::new(
                        "existing container",
                        Action::SkipIfPresent {
                            probe: self.accessory.info(true, true),
                            message: format!(
                                "Skipping booting `{}` on {host}, a container already exists",
                                self.name()
                            ),
                        },
                    ),
                    self.audit(&format!("Booted {} accessory", self.name())),
                    Step::new(
                        "env directory",
                        Action::Run(self.accessory.ensure_env_directory()),
                    ),
                    Step::new(
                        "env file",
                        Action::Upload {
                            path: self.accessory.env_file(),
                            mode: 0o600,
                            contents: env_file.clone(),
                        },
                    ),
                ];
                let run = self.accessory.run(Some(host));
                match self.proxy_deploy() {
                    Some(deploy) => {
                        steps.push(Step::new("run", Action::RunContainer(run)));
                        steps.push(deploy);
                    }
                    None => steps.push(Step::new("run", Action::Run(run))),
                }
                steps
            }),
        ));
        stages
    }

    fn pull_image(&self) -> Stage {
        stage(
            format!("Pull {} accessory image", self.name()),
            Phase::Pull,
            per_host(&self.hosts, |_| {
                vec![
                    self.audit(&format!("Pull {} accessory image", self.name())),
                    Step::new("pull", Action::Run(self.accessory.pull_image())),
                ]
            }),
        )
    }

    fn start(&self) -> Stage {
        stage(
            format!("Start {} accessory", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                let mut steps = vec![
                    self.audit(&format!("Started {} accessory", self.name())),
                    Step::new("start", Action::Run(self.accessory.start())),
                ];
                steps.extend(self.proxy_deploy());
                steps
            }),
        )
    }

    /// Kamal's `stop`: a failing `docker container stop` is ignored; a proxied accessory is
    /// removed from the proxy (a failure there is ignored too: Kamal aborts on it, which keeps
    /// `accessory remove` from finishing when the proxy no longer knows the service).
    fn stop(&self) -> Stage {
        stage(
            format!("Stop {} accessory", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                let mut steps = vec![
                    self.audit(&format!("Stopped {} accessory", self.name())),
                    Step::new("stop", Action::Try(self.accessory.stop())),
                ];
                if self.accessory.running_proxy() {
                    steps.push(Step::new(
                        "proxy remove",
                        Action::Try(self.accessory.proxy_remove()),
                    ));
                }
                steps
            }),
        )
    }

    fn remove_container(&self) -> Stage {
        stage(
            format!("Remove {} accessory container", self.name()),
            Phase::Boot,
            per_host(&self.hosts, |_| {
                vec![
                    self.audit(&format!("Remove {} accessory container", self.name())),
                    Step::new(
                        "remove container",
                        Action::Run(self.accessory.remove_container()),
                    ),
                ]
            }),
        )
    }

    fn remove_image(&self) -> Stage {
        stage(
            format!("Remove {} accessory image", self.name()),
            Phase::Prune,
            per_host(&self.hosts, |_| {
                vec![
                    self.audit(&format!("Removed {} accessory image", self.name())),
                    Step::new("remove image", Action::Run(self.accessory.remove_image())),
                ]
            }),
        )
    }

    /// `rm -rf <service>`, then (dhow only) the env file with the accessory's secrets.
    fn remove_service_directory(&self) -> Stage {
        stage(
            format!("Remove {} accessory directory", self.name()),
            Phase::Prune,
            per_host(&self.hosts, |_| {
                vec![
                    Step::new(
                        "remove service directory",
                        Action::Run(self.accessory.remove_service_directory()),
                    ),
                    Step::new(
                        "remove env file",
                        Action::Run(self.accessory.remove_env_file()),
                    ),
                ]
            }),
        )
    }

    fn reboot(&self) -> Vec<Stage> {
        let mut stages = vec![self.prepare(), self.pull_image(), self.stop()];
        stages.push(self.remove_container());
        stages.extend(self.boot(false));
        stages
    }

    fn remove(&self) -> Vec<Stage> {
        vec![
            self.stop(),
            self.remove_container(),
            self.remove_image(),
            self.remove_service_directory(),
        ]
    }

    fn stages(&self, operation: Operation) -> Vec<Stage> {
        match operation {
            Operation::Boot => self.boot(true),
            Operation::Reboot | Operation::Upgrade { .. } => self.reboot(),
            Operation::Start => vec![self.start()],
            Operation::Stop => vec![self.stop()],
            Operation::Restart => vec![self.stop(), self.start()],
            Operation::Remove => self.remove(),
        }
    }
}

/// The stages of `operation` for `accessories`, one accessory after another (unlocked: for
/// commands that already hold the lock).
pub fn stages(
    input: &AccessoryInput<'_>,
    accessories: &[&config::Accessory],
    operation: Operation,
) -> Vec<Stage> {
    match operation {
        Operation::Upgrade { rolling: true } => {
            // One host at a time: every accessory on that host is rebooted before the next host.
            let mut out = Vec::new();
            for host in all_accessory_hosts(input.config, input.selection) {
                let selection = Selection {
                    hosts: vec![host.clone()],
                    ..input.selection.clone()
                };
                let narrowed = AccessoryInput {
                    selection: &selection,
                    ..*input
                };
                for accessory in accessories {
                    let ctx = Ctx::new(&narrowed, accessory);
                    if ctx.hosts.is_empty() {
                        continue;
                    }
                    out.extend(ctx.stages(operation).into_iter().map(|mut stage| {
                        stage.label = format!("{} on {host}", stage.label);
                        stage
                    }));
                }
            }
            out
        }
        _ => accessories
            .iter()
            .flat_map(|accessory| Ctx::new(input, accessory).stages(operation))
            .filter(|stage| !stage.hosts.is_empty())
            .collect(),
    }
}

/// Every accessory booted, in configuration order: what `setup` runs under its lock after the
/// proxy (Kamal's `accessory boot all` inside `deploy(boot_accessories: true)`).
pub fn boot_all(input: &AccessoryInput<'_>) -> Vec<Stage> {
    let all: Vec<&config::Accessory> = input.config.accessories.iter().collect();
    stages(input, &all, Operation::Boot)
}

/// Every accessory removed (stop, container, image, service directory, env file), in
/// configuration order: what `remove` runs under its lock (Kamal's `accessory remove all`).
pub fn remove_all(input: &AccessoryInput<'_>) -> Vec<Stage> {
    let all: Vec<&config::Accessory> = input.config.accessories.iter().collect();
    stages(input, &all, Operation::Remove)
}

/// A whole accessory command: the deploy lock around [`stages`].
pub fn plan(
    input: &AccessoryInput<'_>,
    lock_details: &LockDetails,
    accessories: &[&config::Accessory],
    operation: Operation,
) -> Plan {
    let config = input.config;
    let selection = input.selection;
    let scope = Scope::new(
        &config.service,
        config.destination.as_deref(),
        &config.repository(),
    );
    let locked = stages(input, accessories, operation);
    // Every host contacted: the lock's `mkdir -p .kamal` runs on all selected hosts.
    let mut hosts: Vec<String> = selection.hosts.clone();
    for stage in &locked {
        for host in &stage.hosts {
            if !hosts.contains(&host.host) {
                hosts.push(host.host.clone());
            }
        }
    }
    Plan {
        title: format!("Accessory {} of {}", operation.name(), config.service),
        service: config.service.clone(),
        version: input.version.to_owned(),
        hosts,
        roles: Vec::new(),
        primary_role: None,
        before_lock: Vec::new(),
        lock: LockPlan {
            hosts: selection.hosts.clone(),
            ensure: server::ensure_run_directory(),
            primary: selection.primary_host.clone(),
            acquire: lock::acquire(&scope, lock_details),
            status: lock::status(&scope),
            release: lock::release(&scope),
        },
        checks: Vec::new(),
        locked,
        interrupted: audit::record(
            &scope,
            input.tags,
            &format!("Interrupted accessory {} by a signal", operation.name()),
        ),
    }
}

/// The hosts the accessory stages act on, in order.
pub fn stage_hosts(plan: &Plan) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for host in plan.locked.iter().flat_map(|stage| &stage.hosts) {
        if !hosts.contains(&host.host) {
            hosts.push(host.host.clone());
        }
    }
    hosts
}

/// The redacted plan as `dhow accessory ... --dry-run` prints it.
pub fn render(plan: &Plan, operation: Operation, names: &[&str]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Accessory {} {} ({})",
        operation.name(),
        names.join(", "),
        plan.service
    );
    let _ = writeln!(out, "Hosts: {}", stage_hosts(plan).join(", "));
    let _ = writeln!(out, "\n== Acquire the deploy lock");
    for host in &plan.lock.hosts {
        let _ = writeln!(out, "  {host}:\n    {}", for_log(&plan.lock.ensure));
    }
    let _ = writeln!(
        out,
        "  {}:\n    {}",
        plan.lock.primary,
        for_log(&plan.lock.acquire)
    );
    for stage in &plan.locked {
        render_stage(&mut out, stage);
    }
    let _ = writeln!(out, "\n== Release the deploy lock (also on failure)");
    let _ = writeln!(
        out,
        "  {}:\n    {}",
        plan.lock.primary,
        for_log(&plan.lock.release)
    );
    out
}

#[cfg(test)]
mod tests;
