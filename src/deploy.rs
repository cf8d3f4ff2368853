//! Runs a deploy plan over connected hosts: stages one after another, the hosts of a stage in
//! parallel, the steps of a host in order; the deploy lock around the locked stages, released
//! on failure too; Kamal's primary-role barrier (a failed primary-role boot keeps the other
//! roles from booting); a failed boot stops the new container and reports its last log lines
//! and health state; `--lock-wait` polls a held lock; a signal stops the run before its next
//! step, writes an audit line on every host and releases the lock; a proxy image a host lacks
//! and cannot pull is streamed to it from the local docker. Everything observable goes out as
//! events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhow_core::Secret;
use dhow_core::cmd::{BatchPart, Command, Token, batch, batch_progress, for_log};
use dhow_core::docker::proxy;
use dhow_core::event::{Event, Outcome, Stream, Timing};
use dhow_core::plan::{
    Action, Bootstrap, CONTAINER_ID, HostSteps, Mirror, OLD_VERSION, PROXY_IMAGE, PULL_STEP, Plan,
    ProxyImage, RoleBoot, STALE_VERSION, Stage, Step, mirror_seed_hosts, substitute,
};
use dhow_remote::{CancellationToken, InputStream, Output, RemoteCommand, Transport};
use tokio::sync::watch;

/// One host's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub host: String,
    pub message: String,
}

/// Why a deploy stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployError {
    /// A stage failed on these hosts (every failing host is listed).
    Hosts {
        stage: String,
        failures: Vec<Failure>,
        total: usize,
    },
    /// Someone else holds the lock; `details` is what they recorded.
    LockHeld { details: String },
    /// SIGINT/SIGTERM.
    Cancelled,
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Hosts {
                stage,
                failures,
                total,
            } => {
                write!(
                    f,
                    "{stage} failed on {} of {total} host{}:",
                    failures.len(),
                    if *total == 1 { "" } else { "s" }
                )?;
                for failure in failures {
                    write!(f, "\n  {}: {}", failure.host, failure.message)?;
                }
                Ok(())
            }
            DeployError::LockHeld { details } => {
                write!(
                    f,
                    "Deploy lock found. Run 'dhow lock help' for more information"
                )?;
                if !details.is_empty() {
                    write!(f, "\n{details}")?;
                }
                Ok(())
            }
            DeployError::Cancelled => f.write_str("interrupted; the deploy lock was released"),
        }
    }
}

/// What to do when another holder's lock is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockHeld {
    /// The holder is gone: remove its lock, run `audit` (a line saying why) and take it.
    TakeOver { reason: String, audit: Command },
    /// Ask again after this long (the decision maker bounds the total wait).
    Wait { reason: String, retry_in: Duration },
    /// Give up: the deploy fails with the lock held.
    GiveUp,
}

/// A boxed future of the CI hooks.
pub type HookFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What a CI run adds to the executor: a decision about a held lock (given its details), and a
/// call once the lock is held and the image pulled (the deployment ledger starts there).
pub struct CiHooks<'a> {
    pub lock_held: &'a (dyn Fn(String) -> HookFuture<'a, LockHeld> + Send + Sync),
    pub locked: &'a (dyn Fn() -> HookFuture<'a, ()> + Send + Sync),
}

/// How long a command already running on a host may go on after SIGINT/SIGTERM before it is
/// abandoned, so the lock release and the final status fit in the runner's cancellation window.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// The most times one run takes over a stale lock.
const MAX_TAKEOVERS: u32 = 3;

/// Runs a local hook by name for these hosts.
pub type HookRunner<'a> = dyn Fn(&str, &[String]) -> Result<(), String> + Send + Sync + 'a;

/// A sink for events, shared by the hosts of a stage.
pub type Emit<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// The state of the primary-role barrier: `None` until the first primary-role container is
/// ready (`Some(true)`) or the first one failed (`Some(false)`).
type Barrier = watch::Sender<Option<bool>>;

/// A local image archive being produced (`docker save`): its bytes, and how it ended.
pub struct LocalArchive {
    pub output: Box<InputStream<'static>>,
    /// Resolves once the producer has exited: `Err` with its message when it failed.
    pub finished: HookFuture<'static, Result<(), String>>,
}

/// The local docker, where a host that cannot pull an image gets it from.
pub trait LocalImages: Send + Sync {
    /// Whether the local docker has `image`.
    fn has<'a>(&'a self, image: &'a str) -> HookFuture<'a, Result<bool, String>>;
    /// Starts `save` (`docker save <image>`) locally.
    fn save(&self, save: &Command) -> Result<LocalArchive, String>;
}

/// What a host's steps learn as they run and later steps of the same host use.
#[derive(Debug, Default)]
struct HostState {
    /// The running version [`Action::CaptureOldVersion`] found.
    old_version: Option<String>,
    /// The new container's short id, as [`Action::RunContainer`]'s `docker run` printed it.
    container_id: Option<String>,
    /// [`Action::CheckProxyVersion`] found a proxy container.
    proxy_found: bool,
}

/// Answers remembered for the rest of one run: `(host, command)` → what it printed. Filled by
/// [`Action::StopStale`] (the running version), read by [`Action::CaptureOldVersion`], dropped
/// for a host whose containers are renamed.
#[derive(Debug, Default)]
pub struct Known(Mutex<BTreeMap<(String, String), String>>);

impl Known {
    fn remember(&self, host: &str, command: &Command, answer: &str) {
        if let Ok(mut known) = self.0.lock() {
            known.insert((host.to_owned(), for_log(command)), answer.to_owned());
        }
    }

    fn take(&self, host: &str, command: &Command) -> Option<String> {
        self.0
            .lock()
            .ok()?
            .remove(&(host.to_owned(), for_log(command)))
    }

    fn forget_host(&self, host: &str) {
        if let Ok(mut known) = self.0.lock() {
            known.retain(|(known_host, _), _| known_host != host);
        }
    }

    fn clear(&self) {
        if let Ok(mut known) = self.0.lock() {
            known.clear();
        }
    }
}

/// The mirror probe a pull stage over `hosts` hosts runs (only with more than one host).
fn mirror_probe(stage: &Stage, hosts: usize) -> Option<&Command> {
    stage
        .pull
        .as_ref()
        .and_then(|pull| pull.mirror_probe.as_ref())
        .filter(|_| hosts > 1)
}

/// Each host's steps split before its [`PULL_STEP`]: the steps that do not depend on the
/// order of the pulls, and the rest (with the host's role boots).
fn split_at_pull(hosts: &[&HostSteps]) -> (Vec<HostSteps>, Vec<HostSteps>) {
    hosts
        .iter()
        .map(|host| {
            let at = host
                .steps
                .iter()
                .position(|step| step.label == PULL_STEP)
                .unwrap_or(0);
            let (before, after) = host.steps.split_at(at);
            (
                HostSteps {
                    host: host.host.clone(),
                    steps: before.to_vec(),
                    roles: Vec::new(),
                },
                HostSteps {
                    host: host.host.clone(),
                    steps: after.to_vec(),
                    roles: host.roles.clone(),
                },
            )
        })
        .unzip()
}

/// The 12-character id `docker container ls --quiet` prints, from `docker run --detach`'s full
/// one (`None` for anything else).
fn short_container_id(printed: &str) -> Option<String> {
    let id = printed.trim();
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.get(..12).map(str::to_owned))
        .flatten()
}

/// Runs plans over a set of connected hosts.
pub struct Executor<'a, T: Transport> {
    pub sessions: &'a BTreeMap<String, Arc<T>>,
    pub emit: Emit<'a>,
    pub cancel: &'a CancellationToken,
    /// Runs once the lock is held, before the locked stages (the pre-deploy hook).
    pub after_lock: Option<&'a (dyn Fn() -> Result<(), String> + Send + Sync)>,
    /// Runs a hook for a boot group: `(name, hosts)` (`pre-app-boot`, `post-app-boot`), and a
    /// stage's `after_hook` (`docker-setup`).
    pub hook: Option<&'a HookRunner<'a>>,
    /// Stale-lock takeover, lock waits and the deployment ledger, in CI.
    pub ci: Option<&'a CiHooks<'a>>,
    /// Runs after a successful run while the lock is still held (setup's post-deploy hook).
    pub before_release: Option<&'a (dyn Fn() -> Result<(), String> + Send + Sync)>,
    /// How long to wait for a held lock (`--lock-wait`), polling every `lock_poll`; in CI
    /// the CI hooks decide instead.
    pub lock_wait: Option<Duration>,
    pub lock_poll: Duration,
    /// Where a proxy image a host lacks and cannot pull comes from (`None`: nowhere).
    pub local_images: Option<&'a dyn LocalImages>,
    /// Answers a run remembers (start with `Known::default()`; each run clears it).
    pub known: Known,
}

impl<T: Transport> Executor<'_, T> {
    /// Runs `plan`; returns the timing breakdown.
    pub async fn run(&self, plan: &Plan) -> Result<Vec<Timing>, DeployError> {
        self.known.clear();
        let timings = Mutex::new(Vec::<Timing>::new());
        let health = Mutex::new(Duration::ZERO);
        for stage in &plan.before_lock {
            self.stage(stage, &timings, &health).await?;
        }
        let lock_started = Instant::now();
        self.acquire(plan).await?;
        add(&timings, "lock", lock_started.elapsed());
        if let Some(ci) = self.ci {
            (ci.locked)().await;
        }
        let mut result = Ok(());
        for stage in &plan.checks {
            result = self.stage(stage, &timings, &health).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok()
            && let Some(hook) = self.after_lock
            && let Err(message) = hook()
        {
            result = Err(local_failure("pre-deploy hook", message));
        }
        if result.is_ok() {
            for stage in &plan.locked {
                result = self.stage(stage, &timings, &health).await;
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok()
            && let Some(hook) = self.before_release
            && let Err(message) = hook()
        {
            result = Err(local_failure("post-deploy hook", message));
        }
        if self.cancel.is_cancelled() {
            result = Err(DeployError::Cancelled);
            self.record_interruption(plan).await;
        }
        let release = self.release(plan).await;
        match (&result, release) {
            (Ok(()), Err(error)) => return Err(error),
            (Err(_), Err(error)) => (self.emit)(Event::Warning {
                message: format!("Error releasing the deploy lock: {error}"),
            }),
            _ => {}
        }
        result?;
        let mut timings = timings
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = health
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !health.is_zero() {
            timings.push(Timing {
                phase: "health".to_owned(),
                elapsed: health,
            });
        }
        Ok(timings)
    }

    /// Runs `stages` one after another without the deploy lock (Kamal's `build pull`); returns
    /// the timing breakdown.
    pub async fn run_stages(&self, stages: &[Stage]) -> Result<Vec<Timing>, DeployError> {
        self.known.clear();
        let timings = Mutex::new(Vec::<Timing>::new());
        let health = Mutex::new(Duration::ZERO);
        for stage in stages {
            self.stage(stage, &timings, &health).await?;
        }
        Ok(timings
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn session(&self, host: &str) -> Result<&Arc<T>, String> {
        self.sessions
            .get(host)
            .ok_or_else(|| format!("no connection to {host}"))
    }

    /// Writes the interruption audit line on every host (errors become warnings).
    async fn record_interruption(&self, plan: &Plan) {
        let results = futures_all(plan.hosts.iter().map(|host| async move {
            let session = self.session(host)?;
            self.command_to_end(session.as_ref(), host, &plan.interrupted, true)
                .await
                .map(|_| ())
        }))
        .await;
        for (host, result) in plan.hosts.iter().zip(results) {
            if let Err(message) = result {
                (self.emit)(Event::Warning {
                    message: format!("Could not record the interruption on {host}: {message}"),
                });
            }
        }
    }

    /// One `--lock-wait` poll: shows the holder (when it changed) and the time left, then
    /// pauses.
    async fn wait_for_lock(
        &self,
        host: &str,
        details: String,
        left: Duration,
        last_details: &mut Option<String>,
    ) -> Result<(), DeployError> {
        if last_details.as_ref() != Some(&details) {
            (self.emit)(Event::Output {
                host: Some(host.to_owned()),
                stream: Stream::Stdout,
                line: format!("Deploy lock already in place, waiting:\n{details}"),
            });
            *last_details = Some(details);
        }
        (self.emit)(Event::Output {
            host: Some(host.to_owned()),
            stream: Stream::Stdout,
            line: format!("Waiting for the deploy lock ({}s left)", left.as_secs()),
        });
        self.pause(left.min(self.lock_poll))
            .await
            .map_err(|_| DeployError::Cancelled)
    }

    async fn acquire(&self, plan: &Plan) -> Result<(), DeployError> {
        let lock = &plan.lock;
        let started = Instant::now();
        self.started("Acquire the deploy lock", None);
        let ensure = futures_all(lock.hosts.iter().map(|host| async move {
            let session = self.session(host)?;
            self.command(session.as_ref(), host, &lock.ensure, true)
                .await
                .map(|_| ())
        }))
        .await;
        collect_failures("Acquire the deploy lock", &lock.hosts, ensure)?;
        let host = &lock.primary;
        let session = self
            .session(host)
            .map_err(|message| single(host, message))?;
        let mut takeovers = 0;
        let deadline = self.lock_wait.map(|wait| Instant::now() + wait);
        let mut last_details = None;
        loop {
            if self.cancel.is_cancelled() {
                return Err(DeployError::Cancelled);
            }
            let output = self
                .command(session.as_ref(), host, &lock.acquire, false)
                .await
                .map_err(|message| single(host, message))?;
            if output.status.success() {
                break;
            }
            let stderr = output.stderr_text();
            if !(stderr.contains("File exists") || stderr.contains("cannot create directory")) {
                return Err(single(host, failed(host, &lock.acquire, output)));
            }
            let details = self
                .command(session.as_ref(), host, &lock.status, false)
                .await
                .map(|output| output.stdout_text().trim_end().to_owned())
                .unwrap_or_default();
            let verdict = match self.ci {
                Some(ci) if !self.cancel.is_cancelled() => (ci.lock_held)(details.clone()).await,
                _ => match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                    Some(left) if !left.is_zero() => {
                        self.wait_for_lock(host, details, left, &mut last_details)
                            .await?;
                        continue;
                    }
                    _ => LockHeld::GiveUp,
                },
            };
            match verdict {
                LockHeld::TakeOver { reason, audit } if takeovers < MAX_TAKEOVERS => {
                    takeovers += 1;
                    (self.emit)(Event::Warning {
                        message: format!("Taking over a stale deploy lock: {reason}"),
                    });
                    self.command(session.as_ref(), host, &lock.release, false)
                        .await
                        .map_err(|message| single(host, message))?;
                    self.command(session.as_ref(), host, &audit, false)
                        .await
                        .map_err(|message| single(host, message))?;
                }
                LockHeld::Wait { reason, retry_in } => {
                    (self.emit)(Event::Output {
                        host: None,
                        stream: Stream::Stderr,
                        line: format!(
                            "Deploy lock held ({reason}); asking again in {}s",
                            retry_in.as_secs()
                        ),
                    });
                    if self.pause(retry_in).await.is_err() {
                        return Err(DeployError::Cancelled);
                    }
                }
                _ => {
                    self.finished(
                        "Acquire the deploy lock",
                        None,
                        started,
                        Outcome::Failed {
                            message: "Deploy lock already in place!".to_owned(),
                        },
                    );
                    return Err(DeployError::LockHeld { details });
                }
            }
        }
        self.finished("Acquire the deploy lock", None, started, Outcome::Succeeded);
        Ok(())
    }

    async fn release(&self, plan: &Plan) -> Result<(), DeployError> {
        let started = Instant::now();
        self.started("Release the deploy lock", None);
        let host = &plan.lock.primary;
        let session = self
            .session(host)
            .map_err(|message| single(host, message))?;
        let result = self
            .command_to_end(session.as_ref(), host, &plan.lock.release, true)
            .await
            .map(|_| ())
            .map_err(|message| single(host, message));
        self.finished(
            "Release the deploy lock",
            None,
            started,
            match &result {
                Ok(()) => Outcome::Succeeded,
                Err(error) => Outcome::Failed {
                    message: error.to_string(),
                },
            },
        );
        result
    }

    async fn stage(
        &self,
        stage: &Stage,
        timings: &Mutex<Vec<Timing>>,
        health: &Mutex<Duration>,
    ) -> Result<(), DeployError> {
        let hosts: Vec<&HostSteps> = stage
            .hosts
            .iter()
            .filter(|host| !host.steps.is_empty() || !host.roles.is_empty())
            .collect();
        if hosts.is_empty() {
            return Ok(());
        }
        if self.cancel.is_cancelled() {
            return Err(DeployError::Cancelled);
        }
        let names: Vec<String> = hosts.iter().map(|host| host.host.clone()).collect();
        self.app_boot_hook(stage, "pre-app-boot", &names)?;
        let started = Instant::now();
        self.started(&stage.label, None);
        let forward_port = stage.pull.as_ref().and_then(|pull| pull.forward_port);
        let mut outcome = match forward_port {
            Some(port) => self.forward(&stage.label, &names, port).await,
            None => Ok(()),
        };
        if outcome.is_ok() {
            // With a mirror probe, each host's steps before the pull run beside the probes.
            let probing = mirror_probe(stage, hosts.len()).is_some();
            let (before, after) = if probing {
                split_at_pull(&hosts)
            } else {
                (Vec::new(), Vec::new())
            };
            let before: Vec<&HostSteps> = before.iter().filter(|h| !h.steps.is_empty()).collect();
            let rest: Vec<&HostSteps> = if probing {
                after.iter().collect()
            } else {
                hosts.clone()
            };
            let (waves, first) = tokio::join!(
                self.waves(stage, &rest),
                self.hosts_quietly(stage, &before, health)
            );
            outcome = match first.and(waves) {
                Ok(waves) => {
                    let mut result = Ok(());
                    for (index, wave) in waves.into_iter().enumerate() {
                        if index > 0 && !wave.is_empty() {
                            (self.emit)(Event::Output {
                                host: None,
                                stream: Stream::Stdout,
                                line: "Pulling image on remaining hosts...".to_owned(),
                            });
                        }
                        result = self
                            .hosts(stage, &wave, health, probing.then_some(started))
                            .await;
                        if result.is_err() || self.cancel.is_cancelled() {
                            break;
                        }
                    }
                    result
                }
                Err(error) => Err(error),
            };
            if let Some(port) = forward_port {
                self.stop_forwarding(&names, port).await;
            }
        }
        add(timings, stage.phase.name(), started.elapsed());
        if self.cancel.is_cancelled() {
            return Err(DeployError::Cancelled);
        }
        outcome?;
        self.app_boot_hook(stage, "post-app-boot", &names)?;
        if let (Some(hook), Some(name)) = (self.hook, &stage.after_hook) {
            hook(name, &names)
                .map_err(|message| local_failure(&format!("{name} hook"), message))?;
        }
        if stage.pause_after > 0 {
            self.pause(Duration::from_secs(stage.pause_after))
                .await
                .map_err(|_| DeployError::Cancelled)?;
        }
        Ok(())
    }

    /// Kamal's local registry port forwarding: every host of the stage listens on
    /// `127.0.0.1:<port>`, reaching `127.0.0.1:<port>` here; a host that refuses fails the
    /// stage (and the forwards already open are closed).
    async fn forward(&self, label: &str, names: &[String], port: u16) -> Result<(), DeployError> {
        (self.emit)(Event::Output {
            host: None,
            stream: Stream::Stdout,
            line: format!(
                "Setting up local registry port forwarding to {}...",
                names.join(", ")
            ),
        });
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let results = futures_all(names.iter().map(|host| async move {
            let session = self.session(host)?;
            session
                .forward_port(port, local)
                .await
                .map_err(|error| error.to_string())
        }))
        .await;
        if results.iter().any(Result::is_err) {
            let opened: Vec<String> = names
                .iter()
                .zip(&results)
                .filter(|(_, result)| result.is_ok())
                .map(|(host, _)| host.clone())
                .collect();
            self.stop_forwarding(&opened, port).await;
        }
        collect_failures(label, names, results)
    }

    /// Ends the forwards of [`Executor::forward`]; a failure is only a warning (the connection
    /// closing ends the forward anyway).
    async fn stop_forwarding(&self, names: &[String], port: u16) {
        let results = futures_all(names.iter().map(|host| async move {
            let session = self.session(host)?;
            session
                .stop_forward(port)
                .await
                .map_err(|error| error.to_string())
        }))
        .await;
        for result in results {
            if let Err(message) = result {
                (self.emit)(Event::Warning { message });
            }
        }
    }

    /// Runs the hosts' steps like [`Executor::hosts`], reporting only the hosts that fail (the
    /// rest of their stage reports them).
    async fn hosts_quietly(
        &self,
        stage: &Stage,
        hosts: &[&HostSteps],
        health: &Mutex<Duration>,
    ) -> Result<(), DeployError> {
        let names: Vec<String> = hosts.iter().map(|host| host.host.clone()).collect();
        let results = futures_all(hosts.iter().map(|host| async move {
            let started = Instant::now();
            let mut health_wait = Duration::ZERO;
            let result = self.host(host, None, &mut health_wait).await;
            if let Ok(mut total) = health.lock() {
                *total = (*total).max(health_wait);
            }
            if let Err(message) = &result {
                self.finished(
                    &stage.label,
                    Some(&host.host),
                    started,
                    Outcome::Failed {
                        message: message.clone(),
                    },
                );
            }
            result
        }))
        .await;
        collect_failures(&stage.label, &names, results)
    }

    /// The hosts of a stage in the order they run: all at once, or, for a pull stage with a
    /// mirror probe and more than one host, first one host per registry mirror (Kamal's
    /// `mirror_hosts`, in host order), then the rest.
    async fn waves<'h>(
        &self,
        stage: &Stage,
        hosts: &[&'h HostSteps],
    ) -> Result<Vec<Vec<&'h HostSteps>>, DeployError> {
        let Some(probe) = mirror_probe(stage, hosts.len()) else {
            return Ok(vec![hosts.to_vec()]);
        };
        let names: Vec<String> = hosts.iter().map(|host| host.host.clone()).collect();
        let results = futures_all(names.iter().map(|host| async move {
            let session = self.session(host)?;
            let output = self.command(session.as_ref(), host, probe, false).await?;
            match Mirror::from_probe(
                output.status.success(),
                &output.stdout_text(),
                &output.stderr_text(),
            ) {
                Mirror::First(mirror) => Ok(Some(mirror)),
                Mirror::None => Ok(None),
                Mirror::Failed => Err(failed(host, probe, output)),
            }
        }))
        .await;
        let mut mirrors = Vec::new();
        let mut outcomes = Vec::new();
        for (host, result) in names.iter().zip(results) {
            match result {
                Ok(mirror) => {
                    mirrors.push((host.clone(), mirror));
                    outcomes.push(Ok(()));
                }
                Err(message) => outcomes.push(Err(message)),
            }
        }
        collect_failures(&stage.label, &names, outcomes)?;
        let seeds = mirror_seed_hosts(&mirrors);
        if seeds.is_empty() {
            return Ok(vec![hosts.to_vec()]);
        }
        (self.emit)(Event::Output {
            host: None,
            stream: Stream::Stdout,
            line: format!(
                "Pulling image on {} to seed the {}...",
                seeds.join(", "),
                if seeds.len() == 1 {
                    "mirror"
                } else {
                    "mirrors"
                }
            ),
        });
        let (first, rest): (Vec<&HostSteps>, Vec<&HostSteps>) =
            hosts.iter().partition(|host| seeds.contains(&host.host));
        Ok(vec![first, rest])
    }

    /// Runs the hosts of one wave of a stage in parallel.
    /// Runs the hosts' steps at once; each host's finish is reported with its time since
    /// `since` (the stage's start, when its earlier steps ran beside the mirror probe), else
    /// since it started here.
    async fn hosts(
        &self,
        stage: &Stage,
        hosts: &[&HostSteps],
        health: &Mutex<Duration>,
        since: Option<Instant>,
    ) -> Result<(), DeployError> {
        if hosts.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = hosts.iter().map(|host| host.host.clone()).collect();
        // The barrier is only kept when some host boots the primary role.
        let gated = hosts
            .iter()
            .any(|host| host.roles.iter().any(|role| role.primary));
        let (barrier, _) = watch::channel(None);
        let barrier = &barrier;
        let results = futures_all(hosts.iter().map(|host| async move {
            let host_started = since.unwrap_or_else(Instant::now);
            let mut health_wait = Duration::ZERO;
            let result = self
                .host(host, gated.then_some(barrier), &mut health_wait)
                .await;
            if let Ok(mut total) = health.lock() {
                *total = (*total).max(health_wait);
            }
            self.finished(
                &stage.label,
                Some(&host.host),
                host_started,
                match &result {
                    Ok(()) => Outcome::Succeeded,
                    Err(message) => Outcome::Failed {
                        message: message.clone(),
                    },
                },
            );
            result
        }))
        .await;
        collect_failures(&stage.label, &names, results)
    }

    /// Kamal's `run_hook "pre-app-boot"/"post-app-boot", hosts:` around a boot group.
    fn app_boot_hook(
        &self,
        stage: &Stage,
        name: &str,
        hosts: &[String],
    ) -> Result<(), DeployError> {
        match self.hook {
            Some(hook) if stage.app_boot_hooks => {
                hook(name, hosts).map_err(|message| DeployError::Hosts {
                    stage: format!("{name} hook"),
                    failures: vec![Failure {
                        host: "localhost".to_owned(),
                        message,
                    }],
                    total: 1,
                })
            }
            _ => Ok(()),
        }
    }

    /// Kamal's `server bootstrap` on one host.
    async fn ensure_docker(
        &self,
        session: &T,
        host: &str,
        bootstrap: &Bootstrap,
    ) -> Result<(), String> {
        if self.succeeds(session, host, &bootstrap.installed).await? {
            return Ok(());
        }
        if !self.succeeds(session, host, &bootstrap.superuser).await? {
            return Err(format!(
                "Docker is not installed on {host} and can't be automatically installed without \
                 having root access and either `wget` or `curl`. Install Docker manually: \
                 https://docs.docker.com/engine/install/"
            ));
        }
        (self.emit)(Event::Output {
            host: Some(host.to_owned()),
            stream: Stream::Stdout,
            line: format!("Missing Docker on {host}. Installing…"),
        });
        self.command(session, host, &bootstrap.install, true)
            .await?;
        if self.succeeds(session, host, &bootstrap.root).await?
            || self
                .succeeds(session, host, &bootstrap.in_docker_group)
                .await?
        {
            return Ok(());
        }
        self.command(session, host, &bootstrap.add_to_docker_group, true)
            .await?;
        let _ = self
            .command(session, host, &bootstrap.refresh_session, false)
            .await;
        Err(format!(
            "Docker was installed on {host} and the SSH user was added to the docker group; \
             the group applies to new SSH sessions only: run the command again"
        ))
    }

    async fn host(
        &self,
        host: &HostSteps,
        barrier: Option<&Barrier>,
        health: &mut Duration,
    ) -> Result<(), String> {
        let session = self.session(&host.host)?.as_ref();
        let mut state = HostState::default();
        let mut index = 0;
        while let Some(step) = host.steps.get(index) {
            if let Action::SkipIfPresent { probe, message } = &step.action {
                let output = self.command(session, &host.host, probe, true).await?;
                if output.stdout_text().trim().is_empty() {
                    index += 1;
                    continue;
                }
                (self.emit)(Event::Warning {
                    message: message.clone(),
                });
                break;
            }
            let rest = host.steps.get(index..).unwrap_or_default();
            index += self
                .next_steps(session, &host.host, rest, &mut state, health)
                .await?;
        }
        for role in &host.roles {
            self.boot(session, &host.host, role, barrier, health)
                .await?;
        }
        Ok(())
    }

    /// Kamal's `App::Boot#run` for one role on one host.
    async fn boot(
        &self,
        session: &T,
        host: &str,
        role: &RoleBoot,
        barrier: Option<&Barrier>,
        health: &mut Duration,
    ) -> Result<(), String> {
        let mut state = HostState::default();
        let prepared = async {
            self.steps(session, host, &role.prepare, &mut state, health)
                .await?;
            Ok::<(), String>(())
        }
        .await;
        if let Err(message) = prepared {
            if role.primary {
                settle(barrier, false);
            }
            return Err(message);
        }
        if let (Some(barrier), false) = (barrier, role.primary) {
            let mut receiver = barrier.subscribe();
            let opened = tokio::select! {
                value = receiver.wait_for(Option::is_some) => value.is_ok_and(|v| *v == Some(true)),
                () = self.cancel.cancelled() => return Err("cancelled".to_owned()),
            };
            if !opened {
                return Err(format!(
                    "the first primary-role container is unhealthy, not booting {} on {host}",
                    role.role
                ));
            }
        }
        let started = async {
            self.steps(session, host, &role.start, &mut state, health)
                .await?;
            Ok::<(), String>(())
        }
        .await;
        if let Err(message) = started {
            if role.primary {
                settle(barrier, false);
            }
            let _ = self
                .command_to_end(session, host, &role.stop_new, false)
                .await;
            let diagnostics = if self.cancel.is_cancelled() {
                &[][..]
            } else {
                &role.diagnostics[..]
            };
            let headings = [
                format!(
                    "Last log lines of the new {} container on {host}:",
                    role.role
                ),
                format!("Health state of the new {} container on {host}:", role.role),
            ];
            for (index, command) in diagnostics.iter().enumerate() {
                if let Some(heading) = headings.get(index) {
                    (self.emit)(Event::Output {
                        host: Some(host.to_owned()),
                        stream: Stream::Stderr,
                        line: heading.clone(),
                    });
                }
                match self.command(session, host, command, false).await {
                    Ok(output) => {
                        for line in output
                            .stdout_text()
                            .lines()
                            .chain(output.stderr_text().lines())
                        {
                            (self.emit)(Event::Output {
                                host: Some(host.to_owned()),
                                stream: Stream::Stderr,
                                line: line.to_owned(),
                            });
                        }
                    }
                    Err(error) => (self.emit)(Event::Warning {
                        message: format!("Could not fetch logs on {host}: {error}"),
                    }),
                }
            }
            return Err(format!("Failed to boot {} on {host}: {message}", role.role));
        }
        if role.primary {
            settle(barrier, true);
        }
        self.steps(session, host, &role.finish, &mut state, health)
            .await?;
        Ok(())
    }

    /// Runs `steps` in order, each run of plain commands as one remote script.
    async fn steps(
        &self,
        session: &T,
        host: &str,
        steps: &[Step],
        state: &mut HostState,
        health: &mut Duration,
    ) -> Result<(), String> {
        let mut index = 0;
        while let Some(rest) = steps.get(index..).filter(|rest| !rest.is_empty()) {
            index += self.next_steps(session, host, rest, state, health).await?;
        }
        Ok(())
    }

    /// Runs the next step of `steps`, or the run of plain commands that starts there as one
    /// remote script ([`batch`]); returns how many steps it took.
    async fn next_steps(
        &self,
        session: &T,
        host: &str,
        steps: &[Step],
        state: &mut HostState,
        health: &mut Duration,
    ) -> Result<usize, String> {
        let parts: Vec<BatchPart<'_>> = steps
            .iter()
            .enumerate()
            .map_while(|(index, step)| match &step.action {
                Action::Run(command) if index == 0 || command.stdin().is_none() => {
                    Some(BatchPart {
                        command,
                        must: true,
                    })
                }
                Action::Try(command) if index == 0 || command.stdin().is_none() => {
                    Some(BatchPart {
                        command,
                        must: false,
                    })
                }
                _ => None,
            })
            .collect();
        if parts.len() < 2 {
            if let Some(step) = steps.first() {
                self.step(session, host, step, state, health).await?;
            }
            return Ok(1);
        }
        self.run_batch(session, host, &parts).await?;
        Ok(parts.len())
    }

    /// Runs `parts` as one remote script; a failure names the command that failed.
    async fn run_batch(
        &self,
        session: &T,
        host: &str,
        parts: &[BatchPart<'_>],
    ) -> Result<(), String> {
        if self.cancel.is_cancelled() {
            return Err("cancelled".to_owned());
        }
        for part in parts {
            (self.emit)(Event::CommandStarted {
                host: Some(host.to_owned()),
                command: for_log(part.command),
            });
        }
        let script = batch(parts);
        let remote = RemoteCommand::from(&script);
        let output = tokio::select! {
            result = session.capture(&remote) => result.map_err(|error| error.to_string())?,
            () = async {
                self.cancel.cancelled().await;
                tokio::time::sleep(CANCEL_GRACE).await;
            } => return Err("cancelled".to_owned()),
        };
        if output.status.success() {
            return Ok(());
        }
        let failing = parts
            .get(batch_progress(&output.stdout_text()))
            .map_or(&script, |part| part.command);
        let scrubbed = RemoteCommand::from(failing).with_scrubbed(secrets_of(&script));
        Err(match output.ensure_success(host, &scrubbed) {
            Ok(_) => String::new(),
            Err(error) => error.to_string(),
        })
    }

    #[expect(clippy::too_many_lines, reason = "one arm per plan action")]
    async fn step(
        &self,
        session: &T,
        host: &str,
        step: &Step,
        state: &mut HostState,
        health: &mut Duration,
    ) -> Result<(), String> {
        if self.cancel.is_cancelled() {
            return Err("cancelled".to_owned());
        }
        match &step.action {
            // A probe met outside `host` (which skips the rest on a hit) only has to succeed.
            Action::Run(command) | Action::SkipIfPresent { probe: command, .. } => {
                self.command(session, host, command, true).await.map(|_| ())
            }
            Action::Try(command) => self
                .command(session, host, command, false)
                .await
                .map(|_| ()),
            Action::RunAllowing { command, allowed } => {
                let output = self.command(session, host, command, false).await?;
                if output.status.success() || output.stderr_text().contains(allowed.as_str()) {
                    Ok(())
                } else {
                    Err(failed(host, command, output))
                }
            }
            Action::Upload {
                path,
                mode,
                contents,
            } => {
                self.upload(session, host, path, *mode, contents.expose().as_bytes())
                    .await
            }
            Action::UploadFile {
                path,
                mode,
                contents,
                ..
            } => {
                self.upload(session, host, path, *mode, contents.expose())
                    .await
            }
            Action::RunContainer(command) => {
                let output = self.command(session, host, command, true).await?;
                state.container_id = short_container_id(&output.stdout_text());
                Ok(())
            }
            Action::RenameIfClashing {
                probe,
                audit,
                rename,
            } => {
                let output = self.command(session, host, probe, false).await?;
                if !output.stdout_text().trim().is_empty() {
                    self.known.forget_host(host);
                    self.command(session, host, audit, true).await?;
                    self.command(session, host, rename, true).await?;
                }
                Ok(())
            }
            Action::CaptureOldVersion(command) => {
                let version = if let Some(version) = self.known.take(host, command) {
                    version
                } else {
                    self.capture_text(session, host, command).await?
                };
                state.old_version = (!version.is_empty()).then_some(version);
                Ok(())
            }
            Action::CheckProxyVersion(command) => {
                let found = self.check_proxy_version(session, host, command).await?;
                state.proxy_found = found;
                Ok(())
            }
            Action::ProxyDeploy { probe, deploy } => {
                let known = state.container_id.take();
                self.proxy_deploy(session, host, known, probe, deploy).await
            }
            Action::WaitHealthy {
                status,
                readiness_delay,
                timeout,
            } => {
                let started = Instant::now();
                let result = self
                    .wait_healthy(session, host, status, *readiness_delay, *timeout)
                    .await;
                *health += started.elapsed();
                result
            }
            Action::StopOld(command) => {
                if let Some(version) = state.old_version.as_deref() {
                    let stop_old = substitute(command, OLD_VERSION, version);
                    self.command(session, host, &stop_old, false).await?;
                }
                Ok(())
            }
            Action::IfOldVersion(command) => {
                if state.old_version.is_some() {
                    self.command(session, host, command, true).await?;
                }
                Ok(())
            }
            Action::SyncAssets {
                current,
                sync,
                sync_with_old,
            } => {
                let running = self.capture_text(session, host, current).await?;
                let command = if running.is_empty() {
                    sync.clone()
                } else {
                    substitute(sync_with_old, OLD_VERSION, &running)
                };
                self.command(session, host, &command, true)
                    .await
                    .map(|_| ())
            }
            Action::Fallback {
                command,
                otherwise,
                warning,
            } => {
                if !self.succeeds(session, host, command).await? {
                    (self.emit)(Event::Warning {
                        message: format!("{warning} on {host}"),
                    });
                    self.command(session, host, otherwise, true).await?;
                }
                Ok(())
            }
            Action::StopStale {
                list,
                current,
                stop,
            } => self.stop_stale(session, host, list, current, stop).await,
            Action::TryIfFound { .. } => self.try_if_found(session, host, &step.action).await,
            Action::Require { probe, missing } => {
                let found = self.capture_text(session, host, probe).await?;
                if found.is_empty() {
                    Err(missing.clone())
                } else {
                    Ok(())
                }
            }
            Action::IfZero {
                count,
                then,
                otherwise,
            } => {
                Box::pin(self.if_zero(session, host, (count, then, otherwise), state, health)).await
            }
            Action::EnsureDocker(bootstrap) => self.ensure_docker(session, host, bootstrap).await,
            Action::EnsureProxyImage(image) => {
                self.ensure_proxy_image(session, host, image, state.proxy_found)
                    .await
            }
        }
    }

    /// [`Action::EnsureProxyImage`]: nothing when a proxy container exists (boot) or the host
    /// has the image; else `docker pull`; else the local docker's copy streamed to `docker load`
    /// on the host; else an error naming the host, the image and the way out.
    async fn ensure_proxy_image(
        &self,
        session: &T,
        host: &str,
        proxy_image: &ProxyImage,
        proxy_found: bool,
    ) -> Result<(), String> {
        if let Some(existing) = &proxy_image.existing
            && (proxy_found || !self.capture_text(session, host, existing).await?.is_empty())
        {
            return Ok(());
        }
        let image = match &proxy_image.resolve {
            Some(resolve) => {
                let output = self.command(session, host, resolve, true).await?;
                output.stdout_text().trim().to_owned()
            }
            None => proxy_image.image.clone(),
        };
        let on_host = |command: &Command| substitute(command, PROXY_IMAGE, &image);
        if self
            .succeeds(session, host, &on_host(&proxy_image.present))
            .await?
        {
            return Ok(());
        }
        let pull = on_host(&proxy_image.pull);
        let pulled = self.command(session, host, &pull, false).await?;
        if pulled.status.success() {
            return Ok(());
        }
        let pull_error = pulled.stderr_text().trim().to_owned();
        let way_out = "build it here with scripts/build-proxy-image (it tags dhow's default image), or point proxy.run (registry, repository, version) at an image the hosts can pull";
        let missing = |why: &str| {
            format!(
                "the proxy image {image} is not on {host}, {host} could not pull it ({}), and {why}; {way_out}",
                if pull_error.is_empty() {
                    "no message"
                } else {
                    pull_error.as_str()
                }
            )
        };
        let Some(local) = self.local_images else {
            return Err(missing("there is no local docker to send it from"));
        };
        if !local.has(&image).await.map_err(|error| missing(&error))? {
            return Err(missing("the local docker has no copy of it either"));
        }
        let save = on_host(&proxy_image.save);
        let load = on_host(&proxy_image.load);
        (self.emit)(Event::CommandStarted {
            host: Some(host.to_owned()),
            command: format!("{} (here) | {}", for_log(&save), for_log(&load)),
        });
        let archive = local.save(&save)?;
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut input = Counting {
            inner: archive.output,
            count: Arc::clone(&counted),
        };
        let mut stderr = Vec::new();
        let remote = RemoteCommand::from(&load);
        let mut on_output = |stream, chunk: &[u8]| {
            if stream == dhow_remote::OutputStream::Stderr {
                stderr.extend_from_slice(chunk);
            }
        };
        let loaded = tokio::select! {
            result = session.exec_with_input(&remote, &mut input, &mut on_output) => {
                result.map_err(|error| error.to_string())
            }
            () = self.cancel.cancelled() => Err("cancelled".to_owned()),
        };
        drop(input);
        let saved = archive.finished.await;
        let status = loaded?;
        if !status.success() {
            return Err(format!(
                "sending {image} to {host}: {} failed ({status}): {}{}",
                for_log(&load),
                dhow_remote::transport::tail(&stderr, 1024).trim(),
                saved
                    .err()
                    .map(|error| format!("; {}: {error}", for_log(&save)))
                    .unwrap_or_default()
            ));
        }
        saved.map_err(|error| format!("sending {image} to {host}: {}: {error}", for_log(&save)))?;
        self.command(session, host, &on_host(&proxy_image.present), true)
            .await?;
        (self.emit)(Event::ImageSent {
            host: host.to_owned(),
            image,
            bytes: counted.load(std::sync::atomic::Ordering::Relaxed),
        });
        Ok(())
    }

    /// Writes `contents` to `path` on the host with permission bits `mode`.
    async fn upload(
        &self,
        session: &T,
        host: &str,
        path: &str,
        mode: u32,
        contents: &[u8],
    ) -> Result<(), String> {
        (self.emit)(Event::CommandStarted {
            host: Some(host.to_owned()),
            command: format!("upload {path} (mode {mode:04o})"),
        });
        session
            .upload(contents, path, mode)
            .await
            .map_err(|error| error.to_string())
    }

    /// [`Action::TryIfFound`]: runs `command` (its failure ignored) when `probe` prints something.
    async fn try_if_found(&self, session: &T, host: &str, action: &Action) -> Result<(), String> {
        let Action::TryIfFound { probe, command } = action else {
            return Ok(());
        };
        if !self.capture_text(session, host, probe).await?.is_empty() {
            self.command(session, host, command, false).await?;
        }
        Ok(())
    }

    /// Fails when the running proxy is older than the minimum version.
    async fn check_proxy_version(
        &self,
        session: &T,
        host: &str,
        command: &Command,
    ) -> Result<bool, String> {
        let version = self.capture_text(session, host, command).await?;
        if !version.is_empty() && proxy::older_than_minimum(&version) {
            return Err(format!(
                "kamal-proxy version {version} is too old, run `dhow proxy reboot` in order to update to at least {}",
                proxy::MINIMUM_VERSION
            ));
        }
        Ok(!version.is_empty())
    }

    /// Deploys the new container to the proxy: by the id `docker run` printed (`known`), else
    /// by the one `probe` finds.
    async fn proxy_deploy(
        &self,
        session: &T,
        host: &str,
        known: Option<String>,
        probe: &Command,
        deploy: &Command,
    ) -> Result<(), String> {
        let endpoint = if let Some(id) = known {
            id
        } else {
            let output = self.command(session, host, probe, true).await?;
            output.stdout_text().trim().to_owned()
        };
        if endpoint.is_empty() {
            return Err(format!(
                "Failed to get endpoint on {host}, did the container boot?"
            ));
        }
        let deploy = substitute(deploy, CONTAINER_ID, &endpoint);
        self.command(session, host, &deploy, true).await.map(|_| ())
    }

    /// Runs `then` when `count` prints 0, else reports `otherwise`.
    async fn if_zero(
        &self,
        session: &T,
        host: &str,
        (count, then, otherwise): (&Command, &[Step], &str),
        state: &mut HostState,
        health: &mut Duration,
    ) -> Result<(), String> {
        let counted = self.capture_text(session, host, count).await?;
        if counted.parse::<u64>().unwrap_or(0) == 0 {
            for inner in then {
                self.step(session, host, inner, state, health).await?;
            }
        } else {
            (self.emit)(Event::Output {
                host: Some(host.to_owned()),
                stream: Stream::Stdout,
                line: format!("{otherwise} ({counted} on {host})"),
            });
        }
        Ok(())
    }

    /// Kamal's `app stale_containers --stop`: every listed version but the running one.
    async fn stop_stale(
        &self,
        session: &T,
        host: &str,
        list: &Command,
        current: &Command,
        stop: &Command,
    ) -> Result<(), String> {
        let listed = self.command(session, host, list, false).await?;
        let running = self.capture_text(session, host, current).await?;
        self.known.remember(host, current, &running);
        for version in listed.stdout_text().lines().map(str::trim) {
            if version.is_empty() || version == running {
                continue;
            }
            (self.emit)(Event::Output {
                host: Some(host.to_owned()),
                stream: Stream::Stdout,
                line: format!("Stopping stale container with version {version}"),
            });
            let stop_stale = substitute(stop, STALE_VERSION, version);
            self.command(session, host, &stop_stale, false).await?;
        }
        Ok(())
    }

    /// Kamal's `Healthcheck::Poller.wait_for_healthy`: `running` or `healthy` passes (after the
    /// readiness delay, a `running` container is checked again); otherwise it retries until the
    /// deploy timeout. Kamal pauses 1 s, 2 s, 3 s, ...; the pauses here start at 100 ms and
    /// double up to Kamal's (a container that gets healthy within a second is seen at once).
    /// See [`health_pause`].
    async fn wait_healthy(
        &self,
        session: &T,
        host: &str,
        status: &Command,
        readiness_delay: u64,
        timeout: u64,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let mut attempt = 1u64;
        loop {
            let mut state = self.capture_text(session, host, status).await?;
            if state == "running" && readiness_delay > 0 {
                self.pause(Duration::from_secs(readiness_delay)).await?;
                state = self.capture_text(session, host, status).await?;
            }
            if state == "running" || state == "healthy" {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "container not ready after {timeout} seconds ({state})"
                ));
            }
            self.pause(left.min(health_pause(attempt))).await?;
            attempt += 1;
        }
    }

    async fn pause(&self, duration: Duration) -> Result<(), String> {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.cancel.cancelled() => Err("cancelled".to_owned()),
        }
    }

    async fn succeeds(&self, session: &T, host: &str, command: &Command) -> Result<bool, String> {
        self.command(session, host, command, false)
            .await
            .map(|output| output.status.success())
    }

    async fn capture_text(
        &self,
        session: &T,
        host: &str,
        command: &Command,
    ) -> Result<String, String> {
        let output = self.command(session, host, command, false).await?;
        Ok(output.stdout_text().trim().to_owned())
    }

    /// Runs one command; `must` turns a non-zero exit into an error. After SIGINT/SIGTERM a
    /// running command gets [`CANCEL_GRACE`] to end before it is abandoned.
    async fn command(
        &self,
        session: &T,
        host: &str,
        command: &Command,
        must: bool,
    ) -> Result<Output, String> {
        tokio::select! {
            result = self.command_to_end(session, host, command, must) => result,
            () = async {
                self.cancel.cancelled().await;
                tokio::time::sleep(CANCEL_GRACE).await;
            } => Err("cancelled".to_owned()),
        }
    }

    /// Runs one command to its end, whatever signals arrive (the lock release, stopping the
    /// new container).
    async fn command_to_end(
        &self,
        session: &T,
        host: &str,
        command: &Command,
        must: bool,
    ) -> Result<Output, String> {
        (self.emit)(Event::CommandStarted {
            host: Some(host.to_owned()),
            command: for_log(command),
        });
        let remote = RemoteCommand::from(command);
        let output = session
            .capture(&remote)
            .await
            .map_err(|error| error.to_string())?;
        if must && !output.status.success() {
            return Err(failed(host, command, output));
        }
        Ok(output)
    }

    fn started(&self, step: &str, host: Option<&str>) {
        (self.emit)(Event::StepStarted {
            step: step.to_owned(),
            host: host.map(str::to_owned),
        });
    }

    fn finished(&self, step: &str, host: Option<&str>, started: Instant, outcome: Outcome) {
        (self.emit)(Event::StepFinished {
            step: step.to_owned(),
            host: host.map(str::to_owned),
            elapsed: started.elapsed(),
            outcome,
        });
    }
}

/// Counts the bytes read through it (the size of a streamed image archive).
struct Counting {
    inner: Box<InputStream<'static>>,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl tokio::io::AsyncRead for Counting {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let polled = std::pin::Pin::new(&mut *self.inner).poll_read(context, buffer);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let read = buffer.filled().len() - before;
            self.count
                .fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }
}

/// The pause before health check `attempt + 1`: 100 ms doubling each time (100, 200, 400, 800
/// ms, ...) but never longer than Kamal's `attempt` seconds.
fn health_pause(attempt: u64) -> Duration {
    let doubling =
        Duration::from_millis(100).saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    doubling.min(Duration::from_secs(attempt))
}

/// Opens (`true`) or closes the barrier, unless it is already settled.
fn settle(barrier: Option<&Barrier>, open: bool) {
    if let Some(barrier) = barrier {
        barrier.send_if_modified(|value| {
            if value.is_none() {
                *value = Some(open);
                true
            } else {
                false
            }
        });
    }
}

fn collect_failures(
    stage: &str,
    hosts: &[String],
    results: Vec<Result<(), String>>,
) -> Result<(), DeployError> {
    let failures: Vec<Failure> = hosts
        .iter()
        .zip(results)
        .filter_map(|(host, result)| {
            result.err().map(|message| Failure {
                host: host.clone(),
                message,
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Hosts {
            stage: stage.to_owned(),
            failures,
            total: hosts.len(),
        })
    }
}

fn failed(host: &str, command: &Command, output: Output) -> String {
    let remote = RemoteCommand::from(command);
    match output.ensure_success(host, &remote) {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    }
}

fn local_failure(stage: &str, message: String) -> DeployError {
    DeployError::Hosts {
        stage: stage.to_owned(),
        failures: vec![Failure {
            host: "localhost".to_owned(),
            message,
        }],
        total: 1,
    }
}

fn single(host: &str, message: String) -> DeployError {
    DeployError::Hosts {
        stage: "deploy lock".to_owned(),
        failures: vec![Failure {
            host: host.to_owned(),
            message,
        }],
        total: 1,
    }
}

fn add(timings: &Mutex<Vec<Timing>>, phase: &str, elapsed: Duration) {
    if let Ok(mut timings) = timings.lock() {
        match timings.iter_mut().find(|timing| timing.phase == phase) {
            Some(timing) => timing.elapsed += elapsed,
            None => timings.push(Timing {
                phase: phase.to_owned(),
                elapsed,
            }),
        }
    }
}

/// The sensitive values of `command` (its sensitive tokens and stdin), to scrub from the stderr
/// of a batch whose failing part is reported on its own.
fn secrets_of(command: &Command) -> Vec<Secret<String>> {
    command
        .as_tokens()
        .iter()
        .filter_map(|token| match token {
            Token::Sensitive { text, .. } => Some(Secret::new(text.clone())),
            Token::Plain(_) => None,
        })
        .chain(
            command
                .stdin()
                .map(|stdin| Secret::new(stdin.expose().trim().to_owned()))
                .filter(|stdin| !stdin.expose().is_empty()),
        )
        .collect()
}

/// Polls every future to completion concurrently, results in the given order.
async fn futures_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> =
        futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(index, future)| match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => {
                results[*index] = Some(output);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
