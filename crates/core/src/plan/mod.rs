//! Deploy plans as data: the ordered steps per host of `deploy --skip-push` in Kamal 2.11's
//! order (pull, lock, proxy boot, stale containers, per-role app boot with the primary-role
//! barrier, tag latest, prune, unlock), built from a validated config and resolved values, and
//! their redacted rendering for `dhow plan` / `--dry-run`. The other lifecycle commands
//! (`setup`, `redeploy`, `rollback`, `remove`, the `lock` group) build theirs in sibling files
//! from the same stages.
//!
//! Some commands depend on what an earlier command printed on the host (the container id for
//! the proxy, the version that was running before). They hold a placeholder
//! ([`CONTAINER_ID`], [`OLD_VERSION`], [`STALE_VERSION`]) that the executor fills with
//! [`substitute`]; the plan shows the placeholder.

pub mod accessory;
mod env_file;
mod files;
mod lock_group;
mod redeploy;
mod remove;
mod rollback;
mod setup;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use env_file::{env_file_contents, escape_env_file_value};
pub use files::ErrorPage;
pub use lock_group::{LockAction, lock_plan, render_lock};
pub use redeploy::redeploy;
pub use remove::remove;
pub use rollback::{
    digest_of, image_versions, missing_version_message, rollback, versions_with_digest,
};
pub use setup::setup;

use crate::Secret;
use crate::cmd::{Command, Token, for_log};
use crate::config::{Config, Role};
use crate::docker::app::{App, container_id_for};
use crate::docker::audit::{self, Tags};
use crate::docker::lock::{self, LockDetails};
use crate::docker::{Scope, proxy, prune, registry, server};
use crate::selection::Selection;

/// Placeholder for the id of the new container, captured on the host.
pub const CONTAINER_ID: &str = "<container-id>";
/// Placeholder for the version that was running before the boot.
pub const OLD_VERSION: &str = "<old-version>";
/// Placeholder for a stale version found on the host.
pub const STALE_VERSION: &str = "<stale-version>";
/// Placeholder for the proxy image named by the legacy boot files, read on the host.
pub const PROXY_IMAGE: &str = "<proxy-image>";

/// Which part of the timing breakdown a stage counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pull,
    Lock,
    Proxy,
    Boot,
    Prune,
    Bootstrap,
    Remove,
}

impl Phase {
    /// The name in the timing breakdown.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pull => "pull",
            Phase::Lock => "lock",
            Phase::Proxy => "proxy",
            Phase::Boot => "boot",
            Phase::Prune => "prune",
            Phase::Bootstrap => "bootstrap",
            Phase::Remove => "remove",
        }
    }
}

/// What one step does on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run; a non-zero exit fails the host.
    Run(Command),
    /// Run; a non-zero exit is ignored (Kamal's `raise_on_non_zero_exit: false`).
    Try(Command),
    /// Run `docker run --detach`; a non-zero exit fails the host. The id it prints (shortened
    /// to the 12 characters `docker container ls --quiet` prints) names the new container to a
    /// following [`Action::ProxyDeploy`] on the host, which then skips its probe.
    RunContainer(Command),
    /// Run; a failure whose stderr contains `allowed` is ignored (`docker network create`).
    RunAllowing { command: Command, allowed: String },
    /// Write `contents` to `path` with permission bits `mode`.
    Upload {
        path: String,
        mode: u32,
        contents: Secret<String>,
    },
    /// Write a local file's bytes (`source` names it in plans) to `path` with bits `mode`.
    UploadFile {
        source: String,
        path: String,
        mode: u32,
        contents: Secret<Vec<u8>>,
    },
    /// Run `probe`; when it prints anything, report `message` and skip the rest of this host's
    /// steps in the stage (an accessory boot on a host that already has its container).
    SkipIfPresent { probe: Command, message: String },
    /// When `probe` prints something, record `audit` and run `rename`.
    RenameIfClashing {
        probe: Command,
        audit: Command,
        rename: Command,
    },
    /// Capture the running version of the role (for [`Action::StopOld`]). When the same
    /// command answered on the host earlier in the run ([`Action::StopStale`]'s `current`) and
    /// no container was renamed there since, that answer is used instead of asking again.
    CaptureOldVersion(Command),
    /// Fail when the running proxy is older than the minimum version.
    CheckProxyVersion(Command),
    /// Capture the new container's id with `probe` (unless [`Action::RunContainer`] printed
    /// it), then run `deploy` with it.
    ProxyDeploy { probe: Command, deploy: Command },
    /// Poll `status` until it prints `running` or `healthy` (Kamal's poller).
    WaitHealthy {
        status: Command,
        readiness_delay: u64,
        timeout: u64,
    },
    /// Stop the version captured by [`Action::CaptureOldVersion`], if any.
    StopOld(Command),
    /// Run when [`Action::CaptureOldVersion`] found a version; a non-zero exit fails the host
    /// (the asset and error page clean-up after the old version stopped).
    IfOldVersion(Command),
    /// Capture the running version with `current`; run `sync_with_old` with it in place of
    /// [`OLD_VERSION`], or `sync` when none runs (Kamal's asset volume sync).
    SyncAssets {
        current: Command,
        sync: Command,
        sync_with_old: Command,
    },
    /// Run `command`; when it fails, report `warning` and run `otherwise`, which must succeed.
    Fallback {
        command: Command,
        otherwise: Command,
        warning: String,
    },
    /// List versions with `list`, drop the running one (`current`), stop the rest with `stop`.
    StopStale {
        list: Command,
        current: Command,
        stop: Command,
    },
    /// When `probe` prints something, run `command`; its failure is ignored (`app stop` takes
    /// the role out of the proxy only when a container is running).
    TryIfFound { probe: Command, command: Command },
    /// Fail the host with `missing` when `probe` prints nothing (rollback's version check).
    Require { probe: Command, missing: String },
    /// Run `then` when `count` prints 0; otherwise report `otherwise` and go on (the proxy is
    /// removed only when no other app uses it).
    IfZero {
        count: Command,
        then: Vec<Step>,
        otherwise: String,
    },
    /// Kamal's `server bootstrap` on one host: Docker installed where it is missing.
    EnsureDocker(Bootstrap),
    /// The proxy image on the host before a proxy container is created from it: present, else
    /// pulled, else sent from the local docker (`docker save` here, `docker load` there).
    EnsureProxyImage(ProxyImage),
}

/// How [`Action::EnsureProxyImage`] gets the proxy image onto a host. `present`, `pull` and
/// `load` name the image, or [`PROXY_IMAGE`] when `resolve` reads it on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyImage {
    /// Prints an id when a proxy container exists: boot starts it as it is, nothing to do.
    pub existing: Option<Command>,
    /// Prints the image the legacy boot files name (no `proxy.run`).
    pub resolve: Option<Command>,
    /// The image, or [`PROXY_IMAGE`].
    pub image: String,
    /// Succeeds when the host has the image.
    pub present: Command,
    /// Pulls it on the host.
    pub pull: Command,
    /// Runs locally: the image archive, streamed to `load`.
    pub save: Command,
    /// Reads the archive on stdin, on the host.
    pub load: Command,
}

impl ProxyImage {
    /// For a proxy booted from `run` (`proxy.run`) or the legacy boot files (`None`); with
    /// `boot`, nothing is done when a proxy container already exists (boot starts it).
    pub fn new(run: Option<&crate::config::ProxyRun>, boot: bool) -> Self {
        let (resolve, image) = match run {
            Some(run) => (None, run.image()),
            None => (Some(proxy::boot_image()), PROXY_IMAGE.to_owned()),
        };
        Self {
            existing: boot.then(proxy::container_exists),
            resolve,
            present: proxy::image_present(&image),
            pull: proxy::pull_image(&image),
            save: proxy::save_image(&image),
            load: proxy::load_image(),
            image,
        }
    }
}

/// The commands of `server bootstrap` (Kamal's `commands/docker.rb`), in the order they may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// `docker -v`: success means nothing to do.
    pub installed: Command,
    /// Root or passwordless sudo.
    pub superuser: Command,
    /// The get.docker.com installer.
    pub install: Command,
    pub root: Command,
    pub in_docker_group: Command,
    pub add_to_docker_group: Command,
    /// Drops the SSH session so the new group applies.
    pub refresh_session: Command,
}

impl Action {
    /// The commands of this action, in the order they may run.
    pub fn commands(&self) -> Vec<&Command> {
        match self {
            Action::Run(command)
            | Action::Try(command)
            | Action::RunContainer(command)
            | Action::CaptureOldVersion(command)
            | Action::CheckProxyVersion(command)
            | Action::StopOld(command)
            | Action::IfOldVersion(command)
            | Action::RunAllowing { command, .. }
            | Action::SkipIfPresent { probe: command, .. }
            | Action::WaitHealthy {
                status: command, ..
            } => vec![command],
            Action::Upload { .. } | Action::UploadFile { .. } => Vec::new(),
            Action::RenameIfClashing {
                probe,
                audit,
                rename,
            } => vec![probe, audit, rename],
            Action::ProxyDeploy { probe, deploy } => vec![probe, deploy],
            Action::SyncAssets {
                current,
                sync,
                sync_with_old,
            } => vec![current, sync, sync_with_old],
            Action::Fallback {
                command, otherwise, ..
            } => vec![command, otherwise],
            Action::TryIfFound { probe, command } => vec![probe, command],
            Action::StopStale {
                list,
                current,
                stop,
            } => vec![list, current, stop],
            Action::Require { probe, .. } => vec![probe],
            Action::IfZero { count, then, .. } => std::iter::once(count)
                .chain(then.iter().flat_map(|step| step.action.commands()))
                .collect(),
            Action::EnsureProxyImage(image) => image
                .existing
                .iter()
                .chain(image.resolve.iter())
                .chain([&image.present, &image.pull, &image.load])
                .collect(),
            Action::EnsureDocker(bootstrap) => vec![
                &bootstrap.installed,
                &bootstrap.superuser,
                &bootstrap.install,
                &bootstrap.root,
                &bootstrap.in_docker_group,
                &bootstrap.add_to_docker_group,
                &bootstrap.refresh_session,
            ],
        }
    }
}

/// One step: a label and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub label: String,
    pub action: Action,
}

impl Step {
    fn new(label: impl Into<String>, action: Action) -> Self {
        Self {
            label: label.into(),
            action,
        }
    }
}

/// The boot of one role on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBoot {
    pub role: String,
    /// The primary role opens (or, failing, closes) the barrier the other roles wait at.
    pub primary: bool,
    /// Steps before the new version starts (clash rename, old version capture).
    pub prepare: Vec<Step>,
    /// Starting the new version up to readiness.
    pub start: Vec<Step>,
    /// After a successful start: stopping the old version.
    pub finish: Vec<Step>,
    /// When the start fails: stop the new container (its output ignored).
    pub stop_new: Command,
    /// When the start fails: the new container's last 50 log lines and health state.
    pub diagnostics: Vec<Command>,
}

/// What one host does in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSteps {
    pub host: String,
    pub steps: Vec<Step>,
    /// Role boots (boot stage only), primary role first.
    pub roles: Vec<RoleBoot>,
}

/// A stage: hosts in parallel, steps in order on each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub label: String,
    pub phase: Phase,
    pub hosts: Vec<HostSteps>,
    /// Seconds to wait after the stage succeeded (`boot.wait` between boot groups).
    pub pause_after: u64,
    /// A boot group: the `pre-app-boot` and `post-app-boot` hooks run around it.
    pub app_boot_hooks: bool,
    /// A local hook to run after the stage succeeded (`docker-setup` after the bootstrap).
    pub after_hook: Option<String>,
    /// How an app image pull reaches the registry and orders its hosts (Kamal's `build pull`).
    pub pull: Option<PullSetup>,
}

/// What Kamal's `build pull` does around the per-host pull steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSetup {
    /// A `localhost:<port>` registry: while the stage runs, each host listens on
    /// `127.0.0.1:<port>` and its connections reach `localhost:<port>` on the deploying machine
    /// through the SSH connection (remote port forwarding).
    pub forward_port: Option<u16>,
    /// With more than one host: `docker info --format '{{index .RegistryConfig.Mirrors 0}}'`
    /// on every host; the first host of each registry mirror pulls before the others (it seeds
    /// the mirror), see [`mirror_seed_hosts`]. A host's steps before its [`PULL_STEP`] (login,
    /// audit line, old image removal) do not depend on that order: they run beside the probe.
    pub mirror_probe: Option<Command>,
}

/// The label of a pull stage's `docker pull` step.
pub const PULL_STEP: &str = "pull";

/// What `docker info` prints when the daemon has no registry mirror (Kamal's
/// `mirror_hosts` ignores this failure of the probe and no other).
pub const NO_MIRRORS: &str = "error calling index: reflect: slice index out of range";

/// Kamal's `mirror_hosts`: the first host (in the given order) of each distinct registry
/// mirror, from `(host, first mirror or None)` pairs. Hosts without a mirror seed nothing.
pub fn mirror_seed_hosts(mirrors: &[(String, Option<String>)]) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut seeds = Vec::new();
    for (host, mirror) in mirrors {
        let Some(mirror) = mirror.as_deref().map(str::trim).filter(|m| !m.is_empty()) else {
            continue;
        };
        if !seen.contains(&mirror) {
            seen.push(mirror);
            seeds.push(host.clone());
        }
    }
    seeds
}

/// What a pull stage's mirror probe tells about one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// The daemon's first registry mirror.
    First(String),
    /// No mirror: empty output, or Kamal's tolerated [`NO_MIRRORS`] failure.
    None,
    /// Any other failure, which fails the host as in Kamal.
    Failed,
}

impl Mirror {
    /// Reads the probe's exit and output.
    pub fn from_probe(succeeded: bool, stdout: &str, stderr: &str) -> Self {
        if succeeded {
            let mirror = stdout.trim();
            // `docker info` prints `<no value>` for a missing field with some templates.
            if mirror.is_empty() || mirror == "<no value>" {
                Mirror::None
            } else {
                Mirror::First(mirror.to_owned())
            }
        } else if stderr.contains(NO_MIRRORS) || stdout.contains(NO_MIRRORS) {
            Mirror::None
        } else {
            Mirror::Failed
        }
    }
}

impl Stage {
    fn new(label: impl Into<String>, phase: Phase, hosts: Vec<HostSteps>) -> Self {
        Self {
            label: label.into(),
            phase,
            hosts,
            pause_after: 0,
            app_boot_hooks: false,
            after_hook: None,
            pull: None,
        }
    }
}

/// The deploy lock around the locked stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockPlan {
    /// `mkdir -p .kamal` on every host.
    pub hosts: Vec<String>,
    pub ensure: Command,
    /// The host holding the lock.
    pub primary: String,
    pub acquire: Command,
    pub status: Command,
    pub release: Command,
}

/// A whole deploy (or setup, redeploy, rollback, remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The first line of the rendering, e.g. `Deploy app version v1`.
    pub title: String,
    pub service: String,
    pub version: String,
    pub hosts: Vec<String>,
    pub roles: Vec<String>,
    pub primary_role: Option<String>,
    /// Stages before the lock (pull).
    pub before_lock: Vec<Stage>,
    pub lock: LockPlan,
    /// Stages under the lock that run before the pre-deploy hook (rollback's version check,
    /// setup's bootstrap and pull).
    pub checks: Vec<Stage>,
    /// Stages under the lock.
    pub locked: Vec<Stage>,
    /// The audit line written on every host when a signal interrupts the run.
    pub interrupted: Command,
}

/// Everything a deploy plan is built from.
#[derive(Debug, Clone, Copy)]
pub struct DeployInput<'a> {
    pub config: &'a Config,
    pub selection: &'a Selection,
    pub version: &'a str,
    pub tags: &'a Tags,
    pub lock: &'a LockDetails,
    /// Registry user and password, resolved; `None` for a local registry (no login).
    pub registry: Option<(&'a str, &'a Secret<String>)>,
    /// Every secret the roles' envs name, resolved.
    pub secrets: &'a BTreeMap<String, Secret<String>>,
    /// Random hex (at least 16 characters) for the clash rename and the container hostname.
    pub nonce: &'a str,
    /// The local error pages (`error_pages_path`), read by the binary; empty without one.
    pub error_pages: &'a [ErrorPage],
}

/// What every lifecycle plan derives from its input.
struct Parts<'a> {
    scope: Scope,
    roles: Vec<&'a Role>,
    /// Selected hosts that run some selected role.
    app_hosts: Vec<String>,
    /// Selected hosts that run the proxy.
    proxy_hosts: Vec<String>,
    login: Option<Command>,
    image: String,
}

impl<'a> Parts<'a> {
    fn new(input: &DeployInput<'a>) -> Self {
        let config = input.config;
        let selection = input.selection;
        Self {
            scope: config.scope(),
            roles: selection
                .roles
                .iter()
                .filter_map(|name| config.role(name))
                .collect(),
            app_hosts: selection
                .hosts
                .iter()
                .filter(|host| !selection.roles_on(config, host).is_empty())
                .cloned()
                .collect(),
            proxy_hosts: config
                .proxy_hosts()
                .into_iter()
                .filter(|host| selection.hosts.contains(host))
                .collect(),
            login: input.registry.map(|(user, password)| {
                registry::login(config.registry.server.as_deref(), user, password)
            }),
            image: config.absolute_image(input.version),
        }
    }

    /// The lock: `mkdir -p .kamal` on every selected host, the lock on the primary one.
    fn lock(&self, input: &DeployInput<'_>) -> LockPlan {
        LockPlan {
            hosts: input.selection.hosts.clone(),
            ensure: server::ensure_run_directory(),
            primary: input.selection.primary_host.clone(),
            acquire: lock::acquire(&self.scope, input.lock),
            status: lock::status(&self.scope),
            release: lock::release(&self.scope),
        }
    }

    /// The audit line written when a signal stops `what` (e.g. `deploy of version v2`).
    fn interrupted(&self, input: &DeployInput<'_>, what: &str) -> Command {
        audit::record(
            &self.scope,
            input.tags,
            &format!("Interrupted {what} by a signal"),
        )
    }

    fn plan(
        &self,
        input: &DeployInput<'_>,
        title: String,
        interrupted: &str,
        stages: Stages,
    ) -> Plan {
        Plan {
            title,
            service: input.config.service.clone(),
            version: input.version.to_owned(),
            hosts: input.selection.hosts.clone(),
            roles: input.selection.roles.clone(),
            primary_role: input.selection.primary_role.clone(),
            before_lock: stages.before_lock,
            lock: self.lock(input),
            checks: stages.checks,
            locked: stages.locked,
            interrupted: self.interrupted(input, interrupted),
        }
    }
}

/// The stages of a plan, by where they run relative to the lock and the pre-deploy hook.
#[derive(Default)]
struct Stages {
    before_lock: Vec<Stage>,
    checks: Vec<Stage>,
    locked: Vec<Stage>,
}

/// Builds the plan of `deploy --skip-push`.
pub fn deploy(input: &DeployInput<'_>) -> Plan {
    let parts = Parts::new(input);
    let mut locked = vec![
        proxy_stage(input, &parts, &parts.app_hosts),
        stale_stage(input, &parts.app_hosts),
    ];
    locked.extend(boot_stages(input, &parts.scope, &parts.app_hosts));
    locked.push(tag_stage(input, &parts));
    locked.push(prune_stage(input, &parts.scope));
    parts.plan(
        input,
        format!("Deploy {} version {}", input.config.service, input.version),
        &format!("deploy of version {}", input.version),
        Stages {
            before_lock: vec![pull_stage(
                input,
                &parts.scope,
                &parts.app_hosts,
                parts.login.as_ref(),
                &parts.image,
            )],
            checks: Vec::new(),
            locked,
        },
    )
}

/// Kamal's last step of `app boot`: tag the booted version as `latest[-dest]` on every app host.
fn tag_stage(input: &DeployInput<'_>, parts: &Parts<'_>) -> Stage {
    let config = input.config;
    Stage::new(
        "Tag the latest image",
        Phase::Boot,
        parts
            .app_hosts
            .iter()
            .map(|host| {
                let app = parts
                    .roles
                    .iter()
                    .find(|role| role.hosts.iter().any(|h| &h.name == host))
                    .map(|role| App::new(config, role, input.version));
                let mut steps = vec![Step::new(
                    "audit",
                    Action::Run(audit::record(
                        &parts.scope,
                        input.tags,
                        &format!("Tagging {} as the latest image", parts.image),
                    )),
                )];
                if let Some(app) = app {
                    steps.push(Step::new("tag latest", Action::Run(app.tag_latest_image())));
                }
                host_steps(host, steps)
            })
            .collect(),
    )
}

fn pull_stage(
    input: &DeployInput<'_>,
    scope: &Scope,
    app_hosts: &[String],
    login: Option<&Command>,
    image: &str,
) -> Stage {
    let config = input.config;
    Stage {
        label: "Pull app image".to_owned(),
        phase: Phase::Pull,
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: Some(pull_setup(config, app_hosts)),
        hosts: app_hosts
            .iter()
            .map(|host| {
                let mut steps = Vec::new();
                if let Some(login) = login {
                    steps.push(Step::new("registry login", Action::Run(login.clone())));
                }
                steps.push(Step::new(
                    "audit",
                    Action::Run(audit::record(
                        scope,
                        input.tags,
                        &format!("Pulled image with version {}", input.version),
                    )),
                ));
                steps.push(Step::new(
                    "remove old image",
                    Action::Try(
                        Command::from_words(["docker", "image", "rm", "--force"]).arg(image),
                    ),
                ));
                steps.push(Step::new(
                    PULL_STEP,
                    Action::Run(Command::from_words(["docker", "pull"]).arg(image)),
                ));
                steps.push(Step::new(
                    "check service label",
                    Action::Run(validate_image(config, image)),
                ));
                host_steps(host, steps)
            })
            .collect(),
    }
}

/// Kamal's `build pull` around the pulls: the local registry's port forwarded to every pulling
/// host, and the mirror probe when more than one host pulls.
pub fn pull_setup(config: &Config, hosts: &[String]) -> PullSetup {
    PullSetup {
        forward_port: config.registry.local_port(),
        mirror_probe: (hosts.len() > 1).then(crate::docker::builder::Builder::first_mirror),
    }
}

fn prune_stage(input: &DeployInput<'_>, scope: &Scope) -> Stage {
    let config = input.config;
    let selection = input.selection;
    let retain = u32::try_from(config.retain_containers.max(1)).unwrap_or(5);
    Stage {
        label: "Prune old containers and images".to_owned(),
        phase: Phase::Prune,
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: None,
        hosts: selection
            .hosts
            .iter()
            .map(|host| {
                host_steps(
                    host,
                    vec![
                        Step::new(
                            "audit",
                            Action::Run(audit::record(scope, input.tags, "Pruned containers")),
                        ),
                        Step::new(
                            "prune containers",
                            Action::Run(prune::app_containers(scope, retain)),
                        ),
                        Step::new(
                            "audit",
                            Action::Run(audit::record(scope, input.tags, "Pruned images")),
                        ),
                        Step::new(
                            "prune dangling images",
                            Action::Run(prune::dangling_images(scope)),
                        ),
                        Step::new(
                            "prune tagged images",
                            Action::Run(prune::tagged_images(scope)),
                        ),
                    ],
                )
            })
            .collect(),
    }
}

/// Kamal's `proxy boot`. Kamal logs in to the registry again here; a host that logged in during
/// this run's pull (`logged_in`) already holds the same credentials, so the second login, which
/// would leave the host exactly as it is, is skipped there.
fn proxy_stage(input: &DeployInput<'_>, parts: &Parts<'_>, logged_in: &[String]) -> Stage {
    let config = input.config;
    let selection = input.selection;
    let proxy_hosts = &parts.proxy_hosts;
    Stage {
        label: "Ensure kamal-proxy is running".to_owned(),
        phase: Phase::Proxy,
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: None,
        hosts: selection
            .hosts
            .iter()
            .map(|host| {
                let mut steps = vec![Step::new(
                    "network",
                    Action::RunAllowing {
                        command: server::create_network(),
                        allowed: "already exists".to_owned(),
                    },
                )];
                if proxy_hosts.contains(host) {
                    if let Some(login) = parts.login.as_ref().filter(|_| !logged_in.contains(host))
                    {
                        steps.push(Step::new("registry login", Action::Run(login.clone())));
                    }
                    steps.push(Step::new(
                        "proxy version",
                        Action::CheckProxyVersion(proxy::version()),
                    ));
                    steps.push(Step::new(
                        "proxy config directory",
                        Action::Run(proxy::ensure_apps_config_directory()),
                    ));
                    steps.push(Step::new(
                        "proxy image",
                        Action::EnsureProxyImage(ProxyImage::new(
                            config.proxy_run(host).as_ref(),
                            true,
                        )),
                    ));
                    steps.push(Step::new(
                        "proxy start",
                        Action::Run(proxy::start_or_run(config.proxy_run(host).as_ref())),
                    ));
                }
                host_steps(host, steps)
            })
            .collect(),
    }
}

fn stale_stage(input: &DeployInput<'_>, app_hosts: &[String]) -> Stage {
    let config = input.config;
    let selection = input.selection;
    Stage {
        label: "Detect stale containers".to_owned(),
        phase: Phase::Boot,
        pause_after: 0,
        app_boot_hooks: false,
        after_hook: None,
        pull: None,
        hosts: app_hosts
            .iter()
            .map(|host| {
                let steps = selection
                    .roles_on(config, host)
                    .into_iter()
                    .map(|role| {
                        let app = App::new(config, role, input.version);
                        Step::new(
                            format!("stale containers of {}", role.name),
                            Action::StopStale {
                                list: app.list_versions(&[], &[]),
                                current: app.current_running_version(),
                                stop: app.stop(Some(STALE_VERSION)),
                            },
                        )
                    })
                    .collect();
                host_steps(host, steps)
            })
            .collect(),
    }
}

/// The boot stages: one per group of `boot.limit` hosts, `boot.wait` seconds between groups.
fn boot_stages(input: &DeployInput<'_>, scope: &Scope, app_hosts: &[String]) -> Vec<Stage> {
    let config = input.config;
    let selection = input.selection;
    let primary_role = selection.primary_role.as_deref();
    let mut locked = Vec::new();
    // Kamal's `host_boot_groups`: `boot.limit` hosts at a time, `boot.wait` seconds between.
    let group_size = config
        .boot
        .limit_for(config.all_hosts().len())
        .and_then(|limit| usize::try_from(limit).ok())
        .filter(|&limit| limit > 0)
        .unwrap_or(app_hosts.len().max(1));
    let groups: Vec<&[String]> = app_hosts.chunks(group_size).collect();
    // Kamal prepares the files of every app host before the first boot group.
    locked.extend(files::prepare_stage(input, app_hosts));
    for (index, group) in groups.iter().enumerate() {
        let last = index + 1 == groups.len();
        locked.push(Stage {
            label: if groups.len() == 1 {
                format!("Start container with version {}", input.version)
            } else {
                format!(
                    "Start container with version {} on {}",
                    input.version,
                    group.join(", ")
                )
            },
            phase: Phase::Boot,
            hosts: group
                .iter()
                .map(|host| HostSteps {
                    host: host.clone(),
                    steps: Vec::new(),
                    roles: selection
                        .roles_on(config, host)
                        .into_iter()
                        .map(|role| role_boot(input, scope, role, host, primary_role))
                        .collect(),
                })
                .collect(),
            app_boot_hooks: true,
            after_hook: None,
            pull: None,
            pause_after: if last {
                0
            } else {
                config
                    .boot
                    .wait
                    .and_then(|wait| u64::try_from(wait).ok())
                    .unwrap_or(0)
            },
        });
    }

    locked
}

fn host_steps(host: &str, steps: Vec<Step>) -> HostSteps {
    HostSteps {
        host: host.to_owned(),
        steps,
        roles: Vec::new(),
    }
}

/// Kamal's `validate_image`: the image must carry `service=<svc>`.
fn validate_image(config: &Config, image: &str) -> Command {
    Command::combine(
        [
            Command::from_words([
                "docker",
                "inspect",
                "-f",
                "'{{ .Config.Labels.service }}'",
                image,
            ]),
            Command::combine(
                [
                    Command::from_words(["grep", "-x", &config.service]),
                    Command::new(format!(
                        "(echo \"Image {image} is missing the 'service' label\" && exit 1)"
                    )),
                ],
                "||",
            ),
        ],
        "|",
    )
}

/// Kamal's `App::Boot` for one role on one host.
fn role_boot(
    input: &DeployInput<'_>,
    scope: &Scope,
    role: &Role,
    host: &str,
    primary_role: Option<&str>,
) -> RoleBoot {
    let config = input.config;
    let version = input.version;
    let app = App::new(config, role, version);
    let tags = input.tags.with(&[("role", &role.name)]);
    let nonce = input.nonce;
    let renamed = format!("{version}_replaced_{}", nonce.get(..16).unwrap_or(nonce));
    let prepare = vec![
        Step::new(
            "rename clashing container",
            Action::RenameIfClashing {
                probe: app.container_id_for_version(version, false),
                audit: audit::record(
                    scope,
                    &tags,
                    &format!("Renaming container {version} to {renamed}"),
                ),
                rename: app.rename_container(version, &renamed),
            },
        ),
        Step::new(
            "current version",
            Action::CaptureOldVersion(app.current_running_version()),
        ),
    ];
    let short_host: String = ssh_hostname(host).chars().take(51).collect();
    let hostname = format!(
        "{}-{}",
        short_host.strip_suffix('.').unwrap_or(&short_host),
        nonce.get(..12).unwrap_or(nonce)
    );
    let mut start = vec![
        Step::new(
            "audit",
            Action::Run(audit::record(
                scope,
                &tags,
                &format!("Booted app version {version}"),
            )),
        ),
        Step::new("env directory", Action::Run(app.ensure_env_directory())),
        Step::new(
            "env file",
            Action::Upload {
                path: app.env_file(),
                mode: 0o600,
                contents: env_file_contents(config, role, host, input.secrets),
            },
        ),
    ];
    let run = app.run(host, Some(&hostname));
    match app.proxy_deploy(CONTAINER_ID) {
        Some(deploy) if role.running_proxy() => {
            start.push(Step::new("run", Action::RunContainer(run)));
            start.push(Step::new(
                "proxy deploy",
                Action::ProxyDeploy {
                    probe: app.container_id_for_version(version, true),
                    deploy,
                },
            ));
        }
        _ => {
            start.push(Step::new("run", Action::Run(run)));
            start.push(Step::new(
                "wait for readiness",
                Action::WaitHealthy {
                    status: app.status(version),
                    readiness_delay: u64::try_from(config.readiness_delay).unwrap_or(0),
                    timeout: u64::try_from(config.deploy_timeout).unwrap_or(30),
                },
            ));
        }
    }
    let mut finish = vec![Step::new(
        "stop old version",
        Action::StopOld(app.stop(Some(OLD_VERSION))),
    )];
    finish.extend(files::clean_up_steps(&app));
    let name = app.container_name(None);
    RoleBoot {
        role: role.name.clone(),
        primary: primary_role == Some(role.name.as_str()),
        prepare,
        start,
        finish,
        stop_new: app.stop(Some(version)),
        diagnostics: vec![
            Command::combine(
                [
                    container_id_for(&name, false),
                    Command::new("xargs docker logs --tail 50 2>&1"),
                ],
                "|",
            ),
            app.container_health_log(version),
        ],
    }
}

/// The host name of a host spec as `SSHKit`'s `Host#to_s` gives it: no `user@`, no `:port`.
fn ssh_hostname(host: &str) -> &str {
    let host = host.rsplit_once('@').map_or(host, |(_, rest)| rest);
    if let Some(inner) = host.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

/// `command` with every `placeholder` in its plain tokens replaced by `value`.
pub fn substitute(command: &Command, placeholder: &str, value: &str) -> Command {
    let tokens = command.as_tokens().iter().map(|token| match token {
        Token::Plain(text) => Token::Plain(text.replace(placeholder, value)),
        Token::Sensitive { .. } => token.clone(),
    });
    let mut out = Command::default().tokens(tokens);
    if let Some(stdin) = command.stdin() {
        out = out.with_stdin(stdin.clone());
    }
    out
}

/// The lines of [`Action::EnsureProxyImage`].
fn render_proxy_image(out: &mut String, image: &ProxyImage) {
    if let Some(existing) = &image.existing {
        let _ = writeln!(
            out,
            "    {}  (a proxy container there, or found by the version check: nothing to do)",
            for_log(existing)
        );
    }
    if let Some(resolve) = &image.resolve {
        let _ = writeln!(out, "    {}  (prints {PROXY_IMAGE})", for_log(resolve));
    }
    let _ = writeln!(out, "    {}", for_log(&image.present));
    let _ = writeln!(out, "      if missing: {}", for_log(&image.pull));
    let _ = writeln!(
        out,
        "      if the pull fails: {} (here) | {}",
        for_log(&image.save),
        for_log(&image.load)
    );
}

#[expect(clippy::too_many_lines, reason = "one arm per plan action")]
fn render_step(out: &mut String, step: &Step) {
    match &step.action {
        Action::Upload { path, mode, .. } => {
            let _ = writeln!(out, "    upload {path} (mode {mode:04o}, [REDACTED])");
        }
        Action::UploadFile {
            source, path, mode, ..
        } => {
            let _ = writeln!(out, "    upload {source} to {path} (mode {mode:04o})");
        }
        Action::SkipIfPresent { probe, .. } => {
            let _ = writeln!(
                out,
                "    {}  (a container already there: skip the rest on this host)",
                for_log(probe)
            );
        }
        Action::Try(command) => {
            let _ = writeln!(out, "    {}  (failure ignored)", for_log(command));
        }
        Action::RunContainer(command) => {
            let _ = writeln!(
                out,
                "    {}  (prints the proxy target's id: the probe below is skipped)",
                for_log(command)
            );
        }
        Action::CaptureOldVersion(command) => {
            let _ = writeln!(
                out,
                "    {}  (unless the stale-container check answered it)",
                for_log(command)
            );
        }

        Action::RenameIfClashing {
            probe,
            audit,
            rename,
        } => {
            let _ = writeln!(out, "    {}", for_log(probe));
            let _ = writeln!(out, "      if a container exists: {}", for_log(audit));
            let _ = writeln!(out, "      if a container exists: {}", for_log(rename));
        }
        Action::WaitHealthy {
            status,
            readiness_delay,
            timeout,
        } => {
            let _ = writeln!(
                out,
                "    {}  (until running or healthy; readiness delay {readiness_delay}s, timeout {timeout}s)",
                for_log(status)
            );
        }
        Action::StopOld(command) | Action::IfOldVersion(command) => {
            let _ = writeln!(out, "    {}  (if a version was running)", for_log(command));
        }
        Action::SyncAssets {
            current,
            sync,
            sync_with_old,
        } => {
            let _ = writeln!(out, "    {}", for_log(current));
            let _ = writeln!(out, "      if a version runs: {}", for_log(sync_with_old));
            let _ = writeln!(out, "      otherwise: {}", for_log(sync));
        }
        Action::Fallback {
            command, otherwise, ..
        } => {
            let _ = writeln!(out, "    {}", for_log(command));
            let _ = writeln!(out, "      if it fails: {}", for_log(otherwise));
        }
        Action::TryIfFound { probe, command } => {
            let _ = writeln!(out, "    {}", for_log(probe));
            let _ = writeln!(
                out,
                "      if it prints something: {}  (failure ignored)",
                for_log(command)
            );
        }
        Action::StopStale {
            list,
            current,
            stop,
        } => {
            let _ = writeln!(out, "    {}", for_log(list));
            let _ = writeln!(out, "    {}", for_log(current));
            let _ = writeln!(out, "      for each stale version: {}", for_log(stop));
        }
        Action::Require { probe, missing } => {
            let _ = writeln!(out, "    {}  (must print an id: {missing})", for_log(probe));
        }
        Action::IfZero {
            count,
            then,
            otherwise,
        } => {
            let _ = writeln!(out, "    {}", for_log(count));
            let mut inner = String::new();
            for step in then {
                render_step(&mut inner, step);
            }
            for line in inner.lines() {
                let _ = writeln!(out, "      if 0: {}", line.trim_start());
            }
            let _ = writeln!(out, "      otherwise: {otherwise}");
        }
        Action::EnsureProxyImage(image) => render_proxy_image(out, image),
        Action::EnsureDocker(bootstrap) => {
            let _ = writeln!(out, "    {}", for_log(&bootstrap.installed));
            let _ = writeln!(out, "      if missing: {}", for_log(&bootstrap.superuser));
            let _ = writeln!(out, "      if allowed: {}", for_log(&bootstrap.install));
            let _ = writeln!(
                out,
                "      unless {} || {}: {}; {}",
                for_log(&bootstrap.root),
                for_log(&bootstrap.in_docker_group),
                for_log(&bootstrap.add_to_docker_group),
                for_log(&bootstrap.refresh_session)
            );
        }
        action => {
            for command in action.commands() {
                let _ = writeln!(out, "    {}", for_log(command));
            }
        }
    }
}

/// The redacted plan as `dhow plan` and `--dry-run` print it.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", plan.title);
    let _ = writeln!(out, "Hosts: {}", plan.hosts.join(", "));
    let _ = writeln!(out, "Roles: {}", plan.roles.join(", "));
    if let Some(primary) = &plan.primary_role {
        let _ = writeln!(out, "Primary role: {primary}");
    }
    for stage in &plan.before_lock {
        render_stage(&mut out, stage);
    }
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
    for stage in &plan.checks {
        render_stage(&mut out, stage);
    }
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

fn render_stage(out: &mut String, stage: &Stage) {
    let _ = writeln!(out, "\n== {}", stage.label);
    if stage.pause_after > 0 {
        let _ = writeln!(out, "  (then wait {}s: boot.wait)", stage.pause_after);
    }
    if let Some(hook) = &stage.after_hook {
        let _ = writeln!(out, "  (then the {hook} hook runs locally)");
    }
    if let Some(pull) = &stage.pull {
        if let Some(port) = pull.forward_port {
            let _ = writeln!(
                out,
                "  (while it runs, each host's 127.0.0.1:{port} is forwarded over SSH to localhost:{port} here)"
            );
        }
        if let Some(probe) = &pull.mirror_probe {
            let _ = writeln!(
                out,
                "  (on each host, beside the steps before the pull: {}; one host per registry mirror pulls before the others)",
                for_log(probe)
            );
        }
    }
    for host in &stage.hosts {
        if host.steps.is_empty() && host.roles.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {}:", host.host);
        for step in &host.steps {
            render_step(out, step);
        }
        for role in &host.roles {
            let gate = if role.primary {
                "primary role: opens the barrier when ready"
            } else {
                "waits for the primary role's barrier"
            };
            let _ = writeln!(out, "   role {} ({gate}):", role.role);
            for step in role.prepare.iter().chain(&role.start).chain(&role.finish) {
                render_step(out, step);
            }
            let _ = writeln!(
                out,
                "    on failure: {}  (failure ignored)",
                for_log(&role.stop_new)
            );
            for command in &role.diagnostics {
                let _ = writeln!(out, "    on failure: {}", for_log(command));
            }
        }
    }
}

#[cfg(test)]
mod tests;
