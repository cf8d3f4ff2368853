use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use dhow_core::Secret;
use dhow_core::config::{Config, LoadInput, NoTemplates, SourceFile};
use dhow_core::docker::audit::Tags;
use dhow_core::docker::lock::LockDetails;
use dhow_core::event::Event;
use dhow_core::plan::{self, DeployInput, Plan};
use dhow_core::selection;
use dhow_remote::transport::OutputSink;
use dhow_remote::{
    CancellationToken, ExitStatus, OutputStream, RemoteCommand, RemoteError, Transport,
};

use super::{DeployError, Executor};

const CANARY: &str = "env-canary-7c21";
const REGISTRY_CANARY: &str = "registry-canary-9d04";

/// A scripted reply: the first rule whose pattern is in the command's exec text answers.
#[derive(Clone)]
struct Rule {
    host: Option<&'static str>,
    pattern: &'static str,
    status: u32,
    stdout: &'static str,
    stderr: &'static str,
}

fn rule(pattern: &'static str, status: u32, stdout: &'static str) -> Rule {
    Rule {
        host: None,
        pattern,
        status,
        stdout,
        stderr: "",
    }
}

/// Everything every fake host saw: `(host, exec text, stdin)` and uploads.
#[derive(Default)]
struct Log {
    commands: Vec<(String, String, Option<String>)>,
    uploads: Vec<(String, String, u32, String)>,
    /// Every remote command (SSH round trip): `(host, how many commands it carried)`.
    round_trips: Vec<(String, usize)>,
}

struct FakeHost {
    host: String,
    rules: Arc<Vec<Rule>>,
    log: Arc<Mutex<Log>>,
    /// Cancelled (as by SIGTERM) when a command containing the pattern runs.
    cancel_on: Option<(&'static str, CancellationToken)>,
    /// How many more lock acquisitions find the lock held (by someone else).
    lock_busy: Arc<std::sync::atomic::AtomicUsize>,
    /// Set once `docker load` ran: `docker image inspect` succeeds from then on.
    loaded: std::sync::atomic::AtomicBool,
    /// `(held, awaited)`: a command containing `held` is answered only once a command containing
    /// `awaited` ran on the same host; after 2 s without it, it fails.
    hold: Option<(&'static str, &'static str)>,
}

#[expect(
    clippy::manual_async_fn,
    reason = "the trait spells out its futures' lifetimes"
)]
impl Transport for FakeHost {
    fn host(&self) -> &str {
        &self.host
    }

    fn exec<'a>(
        &'a self,
        command: &'a RemoteCommand,
        on_output: &'a mut OutputSink<'_>,
    ) -> impl Future<Output = Result<ExitStatus, RemoteError>> + Send + 'a {
        async move {
            let text = command.exec_text().to_owned();
            let mut stdin = command
                .stdin()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
            if let Some((held, awaited)) = self.hold
                && text.contains(held)
            {
                let seen = || {
                    let log = self.log.lock().expect("log");
                    log.commands
                        .iter()
                        .any(|(host, text, _)| host == &self.host && text.contains(awaited))
                };
                let mut waited = 0;
                while !seen() {
                    if waited == 200 {
                        return Ok(ExitStatus::Code(97));
                    }
                    waited += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            let parts = batch_parts(&text);
            self.log
                .lock()
                .expect("log")
                .round_trips
                .push((self.host.clone(), parts.as_ref().map_or(1, Vec::len)));
            // A batch script is answered part by part, as the shell runs it.
            let Some(parts) = parts else {
                let (status, stdout, stderr) = self.answer(&text, stdin);
                on_output(OutputStream::Stdout, stdout.as_bytes());
                on_output(OutputStream::Stderr, stderr.as_bytes());
                return Ok(ExitStatus::Code(status));
            };
            for (part, must) in parts {
                let (status, stdout, stderr) = self.answer(&part, stdin.take());
                on_output(OutputStream::Stdout, stdout.as_bytes());
                on_output(OutputStream::Stderr, stderr.as_bytes());
                if status != 0 && must {
                    return Ok(ExitStatus::Code(status));
                }
                on_output(
                    OutputStream::Stdout,
                    format!("{}\n", dhow_core::cmd::BATCH_MARKER).as_bytes(),
                );
            }
            Ok(ExitStatus::Code(0))
        }
    }

    fn forward_port(
        &self,
        port: u16,
        local: std::net::SocketAddr,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send + '_ {
        async move {
            self.log.lock().expect("log").commands.push((
                self.host.clone(),
                format!("<forward 127.0.0.1:{port} to {local}>"),
                None,
            ));
            if self.rules.iter().any(|rule| {
                rule.pattern == "<refuse forward>" && rule.host.is_none_or(|h| h == self.host)
            }) {
                return Err(RemoteError::Forward {
                    host: self.host.clone(),
                    port,
                    local: local.to_string(),
                    reason: "the server refused it".to_owned(),
                });
            }
            Ok(())
        }
    }

    fn stop_forward(&self, port: u16) -> impl Future<Output = Result<(), RemoteError>> + Send + '_ {
        async move {
            self.log.lock().expect("log").commands.push((
                self.host.clone(),
                format!("<stop forward 127.0.0.1:{port}>"),
                None,
            ));
            Ok(())
        }
    }

    fn upload<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        mode: u32,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send + 'a {
        async move {
            self.log.lock().expect("log").uploads.push((
                self.host.clone(),
                path.to_owned(),
                mode,
                String::from_utf8_lossy(contents).into_owned(),
            ));
            Ok(())
        }
    }
}

impl FakeHost {
    /// Logs one command and answers it: `(status, stdout, stderr)`.
    fn answer(&self, text: &str, stdin: Option<String>) -> (u32, String, String) {
        self.log
            .lock()
            .expect("log")
            .commands
            .push((self.host.clone(), text.to_owned(), stdin));
        if let Some((pattern, cancel)) = &self.cancel_on
            && text.contains(pattern)
        {
            cancel.cancel();
        }
        if text.starts_with("mkdir .kamal/lock-")
            && self
                .lock_busy
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |left| left.checked_sub(1),
                )
                .is_ok()
        {
            return (
                1,
                String::new(),
                "mkdir: cannot create directory '.kamal/lock': File exists\n".to_owned(),
            );
        }
        if text == "docker load" {
            self.loaded.store(true, std::sync::atomic::Ordering::SeqCst);
        } else if text.starts_with("docker image inspect")
            && self.loaded.load(std::sync::atomic::Ordering::SeqCst)
        {
            return (0, String::new(), String::new());
        }
        let found = self.rules.iter().find(|rule| {
            text.contains(rule.pattern) && rule.host.is_none_or(|host| host == self.host)
        });
        match found {
            Some(rule) => (rule.status, rule.stdout.to_owned(), rule.stderr.to_owned()),
            None => (0, String::new(), String::new()),
        }
    }
}

/// The parts of a batch script (`dhow_core::cmd::batch`): each command and whether its failure
/// ends the script; `None` for a single command.
fn batch_parts(text: &str) -> Option<Vec<(String, bool)>> {
    let separator = format!(" echo {} ;", dhow_core::cmd::BATCH_MARKER);
    if !text.contains(&separator) {
        return None;
    }
    let parts = text
        .split(&separator)
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (inner, must) = match part.strip_suffix(" ; } || exit $? ;") {
                Some(inner) => (inner, true),
                None => (part.strip_suffix(" ; } ;").expect("a batch part"), false),
            };
            (
                inner.strip_prefix("{ ").expect("a batch part").to_owned(),
                must,
            )
        })
        .collect();
    Some(parts)
}

fn load(text: &str) -> Config {
    let env = BTreeMap::new();
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(text),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    dhow_core::config::load(&input).expect("valid config")
}

const WORKERS: &str = "service: jobs
image: ci/jobs
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
primary_role: workers
readiness_delay: 0
deploy_timeout: 1
servers:
  workers:
    hosts: [h1, h2]
    cmd: sleep infinity
    proxy: false
env:
  secret: [CANARY_SECRET]
";

const WEB_AND_WORKER: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
servers:
  web: [h1, h2]
  workers:
    hosts: [h1, h2]
    cmd: bin/jobs
proxy:
  app_port: 3000
env:
  secret: [CANARY_SECRET]
";

fn plan_for(text: &str) -> Plan {
    plan_with(text, "v1", plan::deploy)
}

fn plan_with(text: &str, version: &str, build: impl Fn(&DeployInput<'_>) -> Plan) -> Plan {
    plan_with_pages(text, version, build, &[])
}

/// [`plan_with`] with local error pages.
fn plan_with_pages(
    text: &str,
    version: &str,
    build: impl Fn(&DeployInput<'_>) -> Plan,
    error_pages: &[plan::ErrorPage],
) -> Plan {
    let config = load(text);
    let selection = selection::select(&config, None, None, false).expect("selection");
    let tags = Tags {
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        performer: "ci".to_owned(),
        destination: None,
        version: Some(version.to_owned()),
        service_version: None,
        service: config.service.clone(),
        details: Vec::new(),
    };
    let lock = LockDetails {
        locked_by: "ci".to_owned(),
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        version: version.to_owned(),
        message: "Automatic deploy lock".to_owned(),
        run_url: None,
    };
    let password = Secret::new(REGISTRY_CANARY.to_owned());
    let mut secrets = BTreeMap::new();
    secrets.insert("CANARY_SECRET".to_owned(), Secret::new(CANARY.to_owned()));
    secrets.insert("CERT_PEM".to_owned(), Secret::new(CERT.to_owned()));
    secrets.insert("KEY_PEM".to_owned(), Secret::new(KEY.to_owned()));
    build(&DeployInput {
        config: &config,
        selection: &selection,
        version,
        tags: &tags,
        lock: &lock,
        registry: (!config.registry.is_local()).then_some(("ci", &password)),
        secrets: &secrets,
        nonce: "0123456789abcdef0123",
        error_pages,
    })
}

struct Outcome {
    result: Result<Vec<dhow_core::event::Timing>, DeployError>,
    log: Log,
    events: Vec<Event>,
    hooks: Vec<String>,
    /// The `docker save` commands the local docker ran.
    saved: Vec<String>,
}

fn execute(plan: &Plan, rules: Vec<Rule>) -> Outcome {
    execute_cancelling(plan, rules, None)
}

fn execute_cancelling(plan: &Plan, rules: Vec<Rule>, cancel_on: Option<&'static str>) -> Outcome {
    execute_with(
        plan,
        rules,
        &Options {
            cancel_on,
            ..Options::default()
        },
    )
}

/// How a test run differs from the default one.
#[derive(Default)]
struct Options {
    cancel_on: Option<&'static str>,
    /// See [`FakeHost::hold`].
    hold: Option<(&'static str, &'static str)>,
    /// Lock acquisitions that find the lock held before it is free.
    lock_busy: usize,
    lock_wait: Option<std::time::Duration>,
    /// Runs the (recording) pre-deploy hook once the lock is held.
    pre_deploy: bool,
    /// The local docker's images (`None`: no local docker).
    local_images: Option<FakeLocalImages>,
}

/// A local docker holding `images`, each saved as the bytes `archive:<image>`.
#[derive(Default)]
struct FakeLocalImages {
    images: Vec<&'static str>,
    saved: Mutex<Vec<String>>,
}

impl super::LocalImages for FakeLocalImages {
    fn has<'a>(&'a self, image: &'a str) -> super::HookFuture<'a, Result<bool, String>> {
        Box::pin(async move { Ok(self.images.contains(&image)) })
    }

    fn save(&self, save: &dhow_core::cmd::Command) -> Result<super::LocalArchive, String> {
        let text = dhow_core::cmd::for_exec(save);
        self.saved.lock().expect("saved").push(text.clone());
        let image = text.trim_start_matches("docker save ").to_owned();
        Ok(super::LocalArchive {
            output: Box::new(std::io::Cursor::new(
                format!("archive:{image}").into_bytes(),
            )),
            finished: Box::pin(async { Ok(()) }),
        })
    }
}

fn execute_with(plan: &Plan, rules: Vec<Rule>, options: &Options) -> Outcome {
    let cancel_on = options.cancel_on;
    let lock_busy = Arc::new(std::sync::atomic::AtomicUsize::new(options.lock_busy));
    let cancel = CancellationToken::new();
    let log = Arc::new(Mutex::new(Log::default()));
    let rules = Arc::new(rules);
    let sessions: BTreeMap<String, Arc<FakeHost>> = plan
        .hosts
        .iter()
        .map(|host| {
            (
                host.clone(),
                Arc::new(FakeHost {
                    host: host.clone(),
                    rules: Arc::clone(&rules),
                    log: Arc::clone(&log),
                    cancel_on: cancel_on.map(|pattern| (pattern, cancel.clone())),
                    lock_busy: Arc::clone(&lock_busy),
                    loaded: std::sync::atomic::AtomicBool::new(false),
                    hold: options.hold,
                }),
            )
        })
        .collect();
    let events = Mutex::new(Vec::new());
    let emit = |event: Event| events.lock().expect("events").push(event);
    let hooks = Mutex::new(Vec::new());
    let hook = |name: &str, hosts: &[String]| -> Result<(), String> {
        hooks
            .lock()
            .expect("hooks")
            .push(format!("{name} {}", hosts.join(",")));
        Ok(())
    };
    let pre_deploy = || -> Result<(), String> {
        hooks.lock().expect("hooks").push("pre-deploy".to_owned());
        Ok(())
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(
        Executor {
            sessions: &sessions,
            emit: &emit,
            cancel: &cancel,
            after_lock: options.pre_deploy.then_some(&pre_deploy as _),
            hook: Some(&hook),
            ci: None,
            before_release: None,
            lock_wait: options.lock_wait,
            lock_poll: std::time::Duration::from_millis(10),
            local_images: options
                .local_images
                .as_ref()
                .map(|local| local as &dyn super::LocalImages),
            known: super::Known::default(),
        }
        .run(plan),
    );
    drop(sessions);
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("sole owner")
        .into_inner()
        .expect("log");
    Outcome {
        result,
        log,
        events: events.into_inner().expect("events"),
        hooks: hooks.into_inner().expect("hooks"),
        saved: options
            .local_images
            .as_ref()
            .map(|local| local.saved.lock().expect("saved").clone())
            .unwrap_or_default(),
    }
}

fn on(log: &Log, host: &str) -> Vec<String> {
    log.commands
        .iter()
        .filter(|(h, _, _)| h == host)
        .map(|(_, text, _)| text.clone())
        .collect()
}

fn position(commands: &[String], pattern: &str) -> usize {
    commands
        .iter()
        .position(|c| c.contains(pattern))
        .unwrap_or_else(|| panic!("no command with {pattern:?} in {commands:#?}"))
}

fn running_status() -> Rule {
    rule(
        "xargs docker inspect --format '{{if .State.Health}}",
        0,
        "running\n",
    )
}

#[test]
fn workers_only_deploy_runs_kamals_steps_in_order_on_every_host() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            // The version running before the boot.
            rule("| head -1 | while read line", 0, "v0\n"),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        let order = [
            "docker login 172.17.0.1:5000",
            "docker pull 172.17.0.1:5000/ci/jobs:v1",
            "docker network create kamal",
            "Booted app version v1",
            "docker run --detach --restart unless-stopped --name jobs-workers-v1",
            "xargs docker inspect --format",
            "name=^jobs-workers-v0$' --quiet | xargs docker stop -t 30",
            "docker tag 172.17.0.1:5000/ci/jobs:v1 172.17.0.1:5000/ci/jobs:latest",
            "docker image prune --force --filter label=service=jobs",
        ];
        let positions: Vec<usize> = order.iter().map(|p| position(&commands, p)).collect();
        assert!(
            positions.is_sorted(),
            "{host}: {positions:?} in {commands:#?}"
        );
    }
    // The lock is taken and released on the primary host only.
    let h1 = on(&outcome.log, "h1");
    let acquire = position(&h1, "mkdir .kamal/lock-jobs &&");
    let release = position(&h1, "rm .kamal/lock-jobs/details && rm -r .kamal/lock-jobs");
    assert!(acquire < release);
    assert_eq!(h1.len() - 1, release, "the release is the last command");
    assert!(
        !on(&outcome.log, "h2")
            .iter()
            .any(|c| c.contains("lock-jobs"))
    );
    // Env files: one per host, mode 0600, the secret inside, never in argv or stdin.
    assert_eq!(outcome.log.uploads.len(), 2);
    for (_, path, mode, contents) in &outcome.log.uploads {
        assert_eq!(path, ".kamal/apps/jobs/env/roles/workers.env");
        assert_eq!(*mode, 0o600);
        assert_eq!(contents, &format!("CANARY_SECRET={CANARY}\n"));
    }
    for (_, text, stdin) in &outcome.log.commands {
        assert!(
            !text.contains(CANARY) && !text.contains(REGISTRY_CANARY),
            "{text}"
        );
        if let Some(stdin) = stdin {
            assert_eq!(stdin, REGISTRY_CANARY, "only the login reads stdin");
            assert!(text.contains("--password-stdin"));
        }
    }
    let events = serde_json::to_string(&outcome.events).expect("json");
    assert!(!events.contains(CANARY) && !events.contains(REGISTRY_CANARY));
    assert_eq!(outcome.hooks, ["pre-app-boot h1,h2", "post-app-boot h1,h2"]);
    let timings = outcome.result.expect("ok");
    let phases: Vec<&str> = timings.iter().map(|t| t.phase.as_str()).collect();
    assert_eq!(phases[..5], ["pull", "lock", "proxy", "boot", "prune"]);
}

#[test]
fn plain_commands_of_a_stage_share_one_round_trip_per_host() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule("| head -1 | while read line", 0, "v0\n"),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    for host in ["h1", "h2"] {
        let trips: Vec<usize> = outcome
            .log
            .round_trips
            .iter()
            .filter(|(h, _)| h == host)
            .map(|(_, parts)| *parts)
            .collect();
        let commands = on(&outcome.log, host);
        assert_eq!(trips.iter().sum::<usize>(), commands.len());
        // Two hosts, so the mirror probe runs: login, audit and image removal are one script
        // beside it, pull and label check one after it; pruning (two audit lines and three
        // prune commands): one script.
        assert_eq!(
            trips[..3],
            [1, 3, 2],
            "{host}: probe, then the scripts: {trips:?}"
        );
        assert_eq!(
            trips.iter().filter(|&&parts| parts == 5).count(),
            1,
            "{host}: {trips:?}"
        );
        assert!(trips.len() < commands.len() - 7, "{host}: {trips:?}");
        // The password reaches the script's stdin, read by the login (its first command).
        let (_, login, stdin) = outcome
            .log
            .commands
            .iter()
            .find(|(h, c, _)| h == host && c.contains("docker login"))
            .expect("login");
        assert!(login.starts_with("docker login"), "{login}");
        assert_eq!(stdin.as_deref(), Some(REGISTRY_CANARY));
    }
    // Every command a person sees is announced on its own, never the script.
    let announced: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            Event::CommandStarted { command, .. } => Some(command.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        announced.iter().all(|c| !c.contains("dhow-batch")),
        "{announced:#?}"
    );
    assert_eq!(
        announced.len(),
        outcome.log.commands.len() + outcome.log.uploads.len()
    );
}

#[test]
fn clashing_container_is_renamed_before_the_boot() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule(
                "container ls --all --filter 'name=^jobs-workers-v1$' --quiet",
                0,
                "abc123\n",
            ),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let commands = on(&outcome.log, "h1");
    let rename = position(
        &commands,
        "docker rename jobs-workers-v1 jobs-workers-v1_replaced_0123456789abcdef",
    );
    assert!(rename < position(&commands, "docker run --detach"));
}

#[test]
fn failed_primary_boot_closes_the_barrier_keeps_the_old_version_and_releases_the_lock() {
    let plan = plan_for(WEB_AND_WORKER);
    let outcome = execute(
        &plan,
        vec![
            rule("| head -1 | while read line", 0, "v0\n"),
            rule(
                "docker container ls --filter 'name=^app-web-v1$' --quiet",
                0,
                "c0ffee\n",
            ),
            Rule {
                host: None,
                pattern: "kamal-proxy deploy app-web",
                status: 1,
                stdout: "",
                stderr: "target failed to become healthy",
            },
            rule(
                "xargs docker logs --tail 50",
                0,
                "booting\ncrashed: missing DATABASE_URL\n",
            ),
            rule("{{json .State.Health}}", 0, "{\"Status\":\"unhealthy\"}\n"),
        ],
    );
    let Err(DeployError::Hosts {
        failures, total, ..
    }) = &outcome.result
    else {
        panic!("expected a host failure: {:?}", outcome.result);
    };
    assert_eq!(*total, 2);
    let failed: Vec<&str> = failures.iter().map(|f| f.host.as_str()).collect();
    assert_eq!(failed, ["h1", "h2"], "every failing host is listed");
    assert!(failures[0].message.contains("Failed to boot web on h1"));
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        assert!(
            !commands.iter().any(|c| c.contains("--name app-workers-v1")),
            "workers must not boot after the primary role failed: {commands:#?}"
        );
        assert!(
            !commands.iter().any(|c| c.contains("name=^app-web-v0$")),
            "the old version keeps serving"
        );
        position(&commands, "name=^app-web-v1$' --quiet | xargs docker stop");
        assert!(!commands.iter().any(|c| c.contains("docker tag")));
    }
    let h1 = on(&outcome.log, "h1");
    assert!(
        h1.last()
            .expect("commands")
            .contains("rm -r .kamal/lock-app")
    );
    let lines: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Output { line, .. } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        lines.contains(&"crashed: missing DATABASE_URL"),
        "{lines:?}"
    );
    assert!(lines.contains(&"{\"Status\":\"unhealthy\"}"), "{lines:?}");
}

#[test]
fn unhealthy_worker_fails_after_the_deploy_timeout() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![rule(
            "xargs docker inspect --format '{{if .State.Health}}",
            0,
            "exited\n",
        )],
    );
    let Err(DeployError::Hosts { failures, .. }) = &outcome.result else {
        panic!("expected failure");
    };
    assert_eq!(failures.len(), 2);
    assert!(
        failures[0]
            .message
            .contains("container not ready after 1 seconds (exited)"),
        "{}",
        failures[0].message
    );
}

#[test]
fn a_held_lock_stops_the_deploy_with_the_holders_details() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            Rule {
                host: Some("h1"),
                pattern: "mkdir .kamal/lock-jobs",
                status: 1,
                stdout: "",
                stderr: "mkdir: cannot create directory '.kamal/lock-jobs': File exists",
            },
            rule(
                "base64 -d",
                0,
                "Locked by: someone at 2026-11-25T13:00:00Z\n",
            ),
        ],
    );
    assert_eq!(
        outcome.result.expect_err("lock held"),
        DeployError::LockHeld {
            details: "Locked by: someone at 2026-11-25T13:00:00Z".to_owned()
        }
    );
    let h1 = on(&outcome.log, "h1");
    assert!(!h1.iter().any(|c| c.contains("docker run")));
    assert!(
        !h1.iter().any(|c| c.contains("rm -r .kamal/lock-jobs")),
        "not ours to release"
    );
}

#[test]
fn a_failed_pull_lists_every_host_and_never_takes_the_lock() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![Rule {
            host: None,
            pattern: "docker pull",
            status: 1,
            stdout: "",
            stderr: "manifest unknown",
        }],
    );
    let Err(DeployError::Hosts {
        failures, stage, ..
    }) = &outcome.result
    else {
        panic!("expected failure");
    };
    assert_eq!(stage, "Pull app image");
    assert_eq!(failures.len(), 2);
    assert!(failures[1].message.contains("manifest unknown"));
    // The pull ran in one script with the login and the audit line; the failure names the pull
    // alone, and the label check after it never ran.
    for failure in failures {
        assert!(
            failure
                .message
                .contains("docker pull 172.17.0.1:5000/ci/jobs:v1"),
            "{}",
            failure.message
        );
        assert!(
            !failure.message.contains("docker login"),
            "{}",
            failure.message
        );
        assert!(
            !failure.message.contains("dhow-batch"),
            "{}",
            failure.message
        );
    }
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker inspect -f"))
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("lock-jobs"))
    );
}

#[test]
fn stale_containers_are_stopped_except_the_running_one() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule("| head -1 | while read line", 0, "v0\n"),
            rule("--format \"{{.Names}}\" | while read line", 0, "v0\nold1\n"),
        ],
    );
    assert!(outcome.result.is_ok());
    let commands = on(&outcome.log, "h2");
    position(
        &commands,
        "name=^jobs-workers-old1$' --quiet | xargs docker stop",
    );
    let stale_stop = position(&commands, "name=^jobs-workers-old1$");
    assert!(stale_stop < position(&commands, "docker run --detach"));
}

#[test]
fn a_signal_during_the_boot_stops_the_deploy_and_releases_the_lock() {
    let plan = plan_for(WORKERS);
    let outcome = execute_cancelling(&plan, vec![running_status()], Some("docker run --detach"));
    assert_eq!(
        outcome.result.expect_err("cancelled"),
        DeployError::Cancelled
    );
    let h1 = on(&outcome.log, "h1");
    assert!(
        h1.last()
            .expect("commands")
            .contains("rm -r .kamal/lock-jobs"),
        "{h1:#?}"
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker tag"))
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker image prune"))
    );
}

const ACCESSORY_CONFIG: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: pw}
builder: {arch: amd64}
servers: [10.0.0.1, 10.0.0.2]
accessories:
  kv:
    image: 172.17.0.1:5000/kv:1
    roles: [web]
    env:
      secret: [KV_TOKEN]
    files:
      - config/kv.conf:/etc/kv.conf
    directories:
      - data:/data
";

#[test]
fn accessory_boot_skips_hosts_that_already_have_its_container() {
    use dhow_core::plan::accessory::{self, AccessoryInput, Credentials, Operation};
    let config = load(ACCESSORY_CONFIG);
    let selection = selection::select(&config, None, None, false).expect("selection");
    let tags = Tags {
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        performer: "ci".to_owned(),
        destination: None,
        version: None,
        service_version: None,
        service: "app".to_owned(),
        details: Vec::new(),
    };
    let registry = Credentials {
        username: "ci".to_owned(),
        password: Secret::new(REGISTRY_CANARY.to_owned()),
    };
    let mut secrets = BTreeMap::new();
    secrets.insert("KV_TOKEN".to_owned(), Secret::new(CANARY.to_owned()));
    let mut files = BTreeMap::new();
    files.insert("kv".to_owned(), vec![Secret::new(b"port 80\n".to_vec())]);
    let input = AccessoryInput {
        config: &config,
        selection: &selection,
        tags: &tags,
        registry: Some(&registry),
        accessory_registries: &BTreeMap::new(),
        secrets: &secrets,
        files: &files,
        version: "v1",
    };
    let lock = LockDetails {
        locked_by: "ci".to_owned(),
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        version: "v1".to_owned(),
        message: "Automatic deploy lock".to_owned(),
        run_url: None,
    };
    let kv = config.accessory("kv").expect("kv");
    let plan = accessory::plan(&input, &lock, &[kv], Operation::Boot);
    let outcome = execute(
        &plan,
        vec![Rule {
            host: Some("10.0.0.2"),
            pattern: "docker ps -a -q --filter label=service=app-kv",
            status: 0,
            stdout: "4f2a9c\n",
            stderr: "",
        }],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let first = on(&outcome.log, "10.0.0.1");
    let second = on(&outcome.log, "10.0.0.2");
    // Directories and files go to every host; only the host without a container boots.
    for commands in [&first, &second] {
        position(commands, "mkdir -p $PWD/app-kv/data");
        position(commands, "chmod 755 app-kv/etc/kv.conf");
    }
    assert!(position(&first, "docker ps -a -q") < position(&first, "docker run --name app-kv"));
    assert!(!second.iter().any(|c| c.contains("docker run")));
    assert!(outcome.events.iter().any(|event| matches!(
        event,
        Event::Warning { message } if message == "Skipping booting `kv` on 10.0.0.2, a container already exists"
    )));
    let mut uploads: Vec<(String, String, u32, bool)> = outcome
        .log
        .uploads
        .iter()
        .map(|(host, path, mode, contents)| {
            (host.clone(), path.clone(), *mode, contents.contains(CANARY))
        })
        .collect();
    uploads.sort();
    let expected = [
        ("10.0.0.1", ".kamal/apps/app/env/accessories/kv.env", true),
        ("10.0.0.1", "app-kv/etc/kv.conf", false),
        ("10.0.0.2", "app-kv/etc/kv.conf", false),
    ]
    .map(|(host, path, secret)| (host.to_owned(), path.to_owned(), 0o600, secret));
    assert_eq!(uploads, expected);
    assert!(
        outcome
            .log
            .commands
            .iter()
            .all(|(_, text, _)| !text.contains(CANARY) && !text.contains(REGISTRY_CANARY))
    );
}

#[test]
fn rollback_checks_the_version_then_boots_it_without_pull_or_prune() {
    let plan = plan_with(WEB_AND_WORKER, "v1", plan::rollback);
    let outcome = execute_with(
        &plan,
        vec![
            running_status(),
            // Every role's container of v1 exists (stopped) on every host.
            rule("--filter 'name=^app-web-v1$' --quiet", 0, "c0ffee\n"),
            rule("--filter 'name=^app-workers-v1$' --quiet", 0, "beef\n"),
            rule("| head -1 | while read line", 0, "v2\n"),
        ],
        &Options {
            pre_deploy: true,
            ..Options::default()
        },
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(outcome.hooks[0], "pre-deploy");
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        let order = [
            "--filter 'name=^app-web-v1$' --quiet",
            "--filter 'name=^app-workers-v1$' --quiet",
            // The stopped v1 container is renamed aside, a fresh one is booted.
            "docker rename app-web-v1 app-web-v1_replaced_0123456789abcdef",
            "docker run --detach --restart unless-stopped --name app-web-v1",
            "kamal-proxy deploy app-web --target=\"c0ffee:3000\"",
            "name=^app-web-v2$' --quiet | xargs docker stop",
            "docker run --detach --restart unless-stopped --name app-workers-v1",
            "docker tag 172.17.0.1:5000/ci/app:v1 172.17.0.1:5000/ci/app:latest",
        ];
        let positions: Vec<usize> = order.iter().map(|p| position(&commands, p)).collect();
        assert!(
            positions.is_sorted(),
            "{host}: {positions:?} in {commands:#?}"
        );
        assert!(!commands.iter().any(|c| c.contains("docker pull")));
        assert!(!commands.iter().any(|c| c.contains("prune")));
    }
}

#[test]
fn rollback_to_an_unknown_version_fails_naming_the_hosts_and_changes_nothing() {
    let plan = plan_with(WEB_AND_WORKER, "v9", plan::rollback);
    let mut lacking = rule("--filter 'name=^app-workers-v9$' --quiet", 0, "");
    lacking.host = Some("h2");
    let outcome = execute_with(
        &plan,
        vec![
            lacking,
            rule("--filter 'name=^app-web-v9$' --quiet", 0, "c0ffee\n"),
            rule("--filter 'name=^app-workers-v9$' --quiet", 0, "beef\n"),
        ],
        &Options {
            pre_deploy: true,
            ..Options::default()
        },
    );
    let error = outcome.result.expect_err("unknown version");
    let DeployError::Hosts { failures, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        failures,
        &[super::Failure {
            host: "h2".to_owned(),
            message: "the app version 'v9' is not available as a container of role workers"
                .to_owned()
        }]
    );
    assert!(error.to_string().contains("h2"), "{error}");
    assert!(
        outcome.hooks.is_empty(),
        "no hook runs: {:?}",
        outcome.hooks
    );
    for (_, command, _) in &outcome.log.commands {
        assert!(
            !command.contains("docker run") && !command.contains("docker rename"),
            "{command}"
        );
    }
    let h1 = on(&outcome.log, "h1");
    assert!(
        h1.last()
            .expect("commands")
            .contains("rm -r .kamal/lock-app")
    );
}

#[test]
fn a_signal_writes_the_interruption_to_the_audit_log_on_every_host() {
    let plan = plan_for(WORKERS);
    let outcome = execute_cancelling(&plan, vec![running_status()], Some("docker run --detach"));
    assert_eq!(
        outcome.result.expect_err("cancelled"),
        DeployError::Cancelled
    );
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        let audit = position(&commands, "Interrupted deploy of version v1 by a signal");
        // A new container that was started is stopped again; nothing after the interrupted
        // step runs.
        if commands.iter().any(|c| c.contains("docker run --detach")) {
            position(
                &commands,
                "name=^jobs-workers-v1$' --quiet | xargs docker stop",
            );
        }
        assert!(!commands.iter().any(|c| c.contains("docker tag")));
        if host == "h1" {
            assert!(audit < position(&commands, "rm -r .kamal/lock-jobs"));
        }
    }
}

#[test]
fn a_signal_while_waiting_for_the_lock_ends_the_wait() {
    let plan = plan_for(WORKERS);
    let outcome = execute_with(
        &plan,
        vec![running_status()],
        &Options {
            cancel_on: Some("base64 -d"),
            lock_busy: usize::MAX,
            lock_wait: Some(std::time::Duration::from_secs(600)),
            ..Options::default()
        },
    );
    assert_eq!(
        outcome.result.expect_err("cancelled"),
        DeployError::Cancelled
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker run"))
    );
}

#[test]
fn lock_wait_polls_until_the_lock_is_released() {
    let plan = plan_for(WORKERS);
    let outcome = execute_with(
        &plan,
        vec![
            running_status(),
            rule(
                "base64 -d",
                0,
                "Locked by: Other at 2026-11-25T13:00:00Z\nVersion: v0\nMessage: Automatic deploy lock",
            ),
        ],
        &Options {
            lock_busy: 3,
            lock_wait: Some(std::time::Duration::from_secs(600)),
            ..Options::default()
        },
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let h1 = on(&outcome.log, "h1");
    let attempts = h1
        .iter()
        .filter(|c| c.starts_with("mkdir .kamal/lock-jobs"))
        .count();
    assert_eq!(attempts, 4, "three held, the fourth succeeds");
    let lines: Vec<String> = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Output { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.starts_with("Deploy lock already in place, waiting"))
            .count(),
        1,
        "the holder is shown once: {lines:#?}"
    );
    assert!(lines[0].contains("Locked by: Other"), "{lines:#?}");
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.starts_with("Waiting for the deploy lock ("))
            .count(),
        3
    );
    position(&h1, "docker run --detach");
}

#[test]
fn lock_wait_gives_up_with_the_holders_details() {
    let plan = plan_for(WORKERS);
    let outcome = execute_with(
        &plan,
        vec![rule(
            "base64 -d",
            0,
            "Locked by: Other at 2026-11-25T13:00:00Z\nVersion: v0\nMessage: hands off",
        )],
        &Options {
            lock_busy: usize::MAX,
            lock_wait: Some(std::time::Duration::from_millis(50)),
            ..Options::default()
        },
    );
    assert_eq!(
        outcome.result.expect_err("held"),
        DeployError::LockHeld {
            details: "Locked by: Other at 2026-11-25T13:00:00Z\nVersion: v0\nMessage: hands off"
                .to_owned()
        }
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker run") || c.contains("rm -r .kamal/lock-jobs"))
    );
}

#[test]
fn remove_takes_the_proxy_only_where_no_other_app_is_left() {
    let plan = plan_with(WEB_AND_WORKER, "v1", |input| {
        plan::remove(input, Vec::new())
    });
    let mut other_app = rule("ls .kamal/apps | wc -l", 0, "1\n");
    other_app.host = Some("h2");
    let outcome = execute_with(
        &plan,
        vec![other_app, rule("ls .kamal/apps | wc -l", 0, "0\n")],
        &Options::default(),
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let h1 = on(&outcome.log, "h1");
    let order = [
        "kamal-proxy remove app-web",
        "docker container prune --force --filter label=service=app --filter label=destination= --filter label=role=web",
        "docker image prune --all --force --filter label=service=app",
        "rm -r .kamal/apps/app",
        "rm -r .kamal/proxy/apps-config/app",
        "docker container stop kamal-proxy",
        "docker image prune --all --force --filter label=org.opencontainers.image.title=kamal-proxy",
        "docker volume rm kamal-proxy-config",
        "docker logout 172.17.0.1:5000",
        "rm -r .kamal/lock-app",
    ];
    let positions: Vec<usize> = order.iter().map(|p| position(&h1, p)).collect();
    assert!(positions.is_sorted(), "{positions:?} in {h1:#?}");
    let h2 = on(&outcome.log, "h2");
    assert!(
        !h2.iter().any(|c| c.contains("kamal-proxy-config")),
        "{h2:#?}"
    );
    position(&h2, "docker logout 172.17.0.1:5000");
}

const CERT: &str = "-----BEGIN CERTIFICATE-----\ncert-body\n-----END CERTIFICATE-----";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nkey-canary-31d8\n-----END PRIVATE KEY-----";

const WITH_FILES: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
asset_path: /public/assets
error_pages_path: public
servers:
  web: [h1]
proxy:
  host: app.example.com
  ssl: {certificate_pem: CERT_PEM, private_key_pem: KEY_PEM}
env:
  secret: [CANARY_SECRET]
";

fn files_plan() -> Plan {
    let pages = [plan::ErrorPage {
        name: "503.html".to_owned(),
        source: "public/503.html".to_owned(),
        mode: 0o640,
        contents: Secret::new(b"down".to_vec()),
    }];
    plan_with_pages(WITH_FILES, "v1", plan::deploy, &pages)
}

#[test]
fn files_are_prepared_before_the_boot_and_cleaned_after_the_old_version_stops() {
    let plan = files_plan();
    let outcome = execute(
        &plan,
        vec![
            rule("--filter 'name=^app-web-v1$' --quiet", 0, "c0ffee\n"),
            rule("| head -1 | while read line", 0, "v0\n"),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let commands = on(&outcome.log, "h1");
    let order = [
        "mkdir -p .kamal/proxy/apps-config/app/error_pages/v1",
        "docker container cp -L app-web-assets:/public/assets/. .kamal/apps/app/assets/extracted/web-v1",
        // The running version found on the host joins the sync.
        "mkdir -p .kamal/apps/app/assets/volumes/web-v1 ; cp -rnT .kamal/apps/app/assets/extracted/web-v1 .kamal/apps/app/assets/volumes/web-v1 ; cp -rnT .kamal/apps/app/assets/extracted/web-v1 .kamal/apps/app/assets/volumes/web-v0 || true ; cp -rnT .kamal/apps/app/assets/extracted/web-v0 .kamal/apps/app/assets/volumes/web-v1 || true",
        "mkdir -p .kamal/proxy/apps-config/app/tls/web",
        "chown 1000 .kamal/proxy/apps-config/app/tls/web/key.pem",
        "docker run --detach --restart unless-stopped --name app-web-v1",
        "kamal-proxy deploy app-web --target=\"c0ffee:80\"",
        "--filter 'name=^app-web-v0$' --quiet | xargs docker stop",
        "find .kamal/apps/app/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-v1",
        "find .kamal/proxy/apps-config/app/error_pages -mindepth 1 -maxdepth 1 ! -name v1",
    ];
    let positions: Vec<usize> = order.iter().map(|p| position(&commands, p)).collect();
    assert!(positions.is_sorted(), "{positions:?} in {commands:#?}");
    assert!(!commands.iter().any(|c| c.contains("chmod 644")));
    let uploads: Vec<(String, u32, String)> = outcome
        .log
        .uploads
        .iter()
        .filter(|(_, path, _, _)| !path.contains("/env/roles/"))
        .map(|(_, path, mode, contents)| (path.clone(), *mode, contents.clone()))
        .collect();
    assert_eq!(
        uploads,
        [
            (
                ".kamal/proxy/apps-config/app/error_pages/v1/503.html".to_owned(),
                0o640,
                "down".to_owned()
            ),
            (
                ".kamal/proxy/apps-config/app/tls/web/cert.pem".to_owned(),
                0o644,
                CERT.to_owned()
            ),
            (
                ".kamal/proxy/apps-config/app/tls/web/key.pem".to_owned(),
                0o600,
                KEY.to_owned()
            ),
        ]
    );
    // The PEMs travel only as upload contents: never in a command line, stdin or event.
    assert!(outcome.log.commands.iter().all(|(_, text, stdin)| {
        !text.contains("key-canary") && !stdin.as_deref().unwrap_or("").contains("key-canary")
    }));
    assert!(
        outcome
            .events
            .iter()
            .all(|event| !format!("{event:?}").contains("key-canary"))
    );
}

#[test]
fn without_a_running_version_nothing_is_synced_from_or_cleaned() {
    let plan = files_plan();
    let outcome = execute(
        &plan,
        vec![
            rule("--filter 'name=^app-web-v1$' --quiet", 0, "c0ffee\n"),
            rule("| head -1 | while read line", 0, ""),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let commands = on(&outcome.log, "h1");
    assert!(commands.contains(
        &"mkdir -p .kamal/apps/app/assets/volumes/web-v1 ; cp -rnT .kamal/apps/app/assets/extracted/web-v1 .kamal/apps/app/assets/volumes/web-v1".to_owned()
    ), "{commands:#?}");
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("<old-version>") || c.starts_with("find "))
    );
}

#[test]
fn a_key_the_ssh_user_cannot_give_to_the_proxy_falls_back_to_kamals_mode_with_a_warning() {
    let plan = files_plan();
    let outcome = execute(
        &plan,
        vec![
            rule("--filter 'name=^app-web-v1$' --quiet", 0, "c0ffee\n"),
            rule("chown 1000 ", 1, ""),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let commands = on(&outcome.log, "h1");
    let chmod = position(
        &commands,
        "chmod 644 .kamal/proxy/apps-config/app/tls/web/key.pem",
    );
    assert!(chmod < position(&commands, "docker run --detach"));
    assert!(outcome.events.iter().any(|event| matches!(
        event,
        Event::Warning { message } if message.starts_with("could not give .kamal/proxy/apps-config/app/tls/web/key.pem to the proxy's user (uid 1000)") && message.ends_with(" on h1")
    )));
}

#[test]
fn a_failed_asset_extraction_stops_the_host_before_any_boot() {
    let plan = files_plan();
    let outcome = execute(
        &plan,
        vec![
            rule("--filter 'name=^app-web-v1$' --quiet", 0, "c0ffee\n"),
            rule("docker container cp -L app-web-assets:", 1, ""),
        ],
    );
    assert!(outcome.result.is_err());
    let commands = on(&outcome.log, "h1");
    assert!(
        !commands.iter().any(|c| c.contains("docker run --detach")),
        "{commands:#?}"
    );
}

/// Kamal's `mirror_hosts`/`pull_on_hosts`: with four hosts on two mirrors, the first host of
/// each mirror pulls; only then the others.
#[test]
fn one_host_per_registry_mirror_pulls_before_the_rest() {
    let four = WORKERS.replace("[h1, h2]", "[h1, h2, h3, h4]");
    let plan = plan_for(&four);
    let probe = "docker info --format '{{index .RegistryConfig.Mirrors 0}}'";
    let mirror = |host: &'static str, stdout: &'static str| Rule {
        host: Some(host),
        pattern: "docker info --format",
        status: 0,
        stdout,
        stderr: "",
    };
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            Rule {
                host: Some("h1"),
                pattern: "docker info --format",
                status: 1,
                stdout: "",
                stderr: "template: :1:2: executing \"\" at <index .RegistryConfig.Mirrors 0>: error calling index: reflect: slice index out of range\n",
            },
            mirror("h2", "https://mirror-a.example\n"),
            mirror("h3", "https://mirror-a.example\n"),
            mirror("h4", "https://mirror-b.example\n"),
        ],
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let all: Vec<(String, String)> = outcome
        .log
        .commands
        .iter()
        .map(|(host, text, _)| (host.clone(), text.clone()))
        .collect();
    let index = |host: &str, pattern: &str| {
        all.iter()
            .position(|(h, text)| h == host && text.contains(pattern))
            .unwrap_or_else(|| panic!("{host}: no {pattern} in {all:#?}"))
    };
    // Every host is probed before any pull; the seeds (h2 for mirror a, h4 for mirror b)
    // finish their pulls before h1 and h3 start theirs.
    let last_probe = ["h1", "h2", "h3", "h4"]
        .iter()
        .map(|host| index(host, probe))
        .max()
        .expect("probes");
    let seeds_done = ["h2", "h4"]
        .iter()
        .map(|host| index(host, "docker inspect -f '{{ .Config.Labels.service }}'"))
        .max()
        .expect("seeds");
    for host in ["h1", "h3"] {
        assert!(last_probe < index(host, "docker pull "));
        assert!(seeds_done < index(host, "docker pull "), "{all:#?}");
    }
    let lines: Vec<String> = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Output {
                host: None, line, ..
            } => Some(line.clone()),
            _ => None,
        })
        .collect();
    assert!(
        lines.contains(&"Pulling image on h2, h4 to seed the mirrors...".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Pulling image on remaining hosts...".to_owned()),
        "{lines:?}"
    );
}

#[test]
fn without_mirrors_every_host_pulls_at_once_and_a_failed_probe_fails_the_pull() {
    let plan = plan_for(WORKERS);
    let outcome = execute(&plan, vec![running_status()]);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(!outcome.events.iter().any(|event| matches!(
        event,
        Event::Output { line, .. } if line.contains("seed the mirror")
    )));

    let outcome = execute(
        &plan,
        vec![Rule {
            host: Some("h2"),
            pattern: "docker info --format",
            status: 1,
            stdout: "",
            stderr: "Cannot connect to the Docker daemon",
        }],
    );
    let Err(DeployError::Hosts {
        stage, failures, ..
    }) = &outcome.result
    else {
        panic!("expected failure: {:?}", outcome.result);
    };
    assert_eq!(stage, "Pull app image");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].host, "h2");
    assert!(
        failures[0].message.contains("Cannot connect"),
        "{}",
        failures[0].message
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker pull"))
    );
}

const LOCAL_REGISTRY: &str = "service: jobs
image: ci/jobs
registry: {server: localhost:5555}
builder: {arch: amd64}
primary_role: workers
readiness_delay: 0
deploy_timeout: 1
servers:
  workers:
    hosts: [h1, h2]
    cmd: sleep infinity
    proxy: false
";

/// A `localhost:<port>` registry: each pulling host gets the port forwarded for the pull stage
/// only, no login anywhere.
#[test]
fn a_local_registry_is_forwarded_to_every_host_while_it_pulls() {
    let plan = plan_for(LOCAL_REGISTRY);
    let outcome = execute(&plan, vec![running_status()]);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        let forward = position(&commands, "<forward 127.0.0.1:5555 to 127.0.0.1:5555>");
        let pull = position(&commands, "docker pull localhost:5555/ci/jobs:v1");
        let stop = position(&commands, "<stop forward 127.0.0.1:5555>");
        let boot = position(&commands, "docker run --detach");
        assert!(
            forward < pull && pull < stop && stop < boot,
            "{commands:#?}"
        );
        assert!(
            !commands.iter().any(|c| c.contains("docker login")),
            "{commands:#?}"
        );
    }
    assert!(outcome.events.iter().any(|event| matches!(
        event,
        Event::Output { host: None, line, .. }
            if line == "Setting up local registry port forwarding to h1, h2..."
    )));
}

#[test]
fn a_refused_forward_fails_the_pull_and_closes_the_other_forwards() {
    let plan = plan_for(LOCAL_REGISTRY);
    let outcome = execute(
        &plan,
        vec![Rule {
            host: Some("h2"),
            pattern: "<refuse forward>",
            status: 0,
            stdout: "",
            stderr: "",
        }],
    );
    let Err(DeployError::Hosts {
        stage, failures, ..
    }) = &outcome.result
    else {
        panic!("expected failure: {:?}", outcome.result);
    };
    assert_eq!(stage, "Pull app image");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].host, "h2");
    assert!(
        failures[0]
            .message
            .contains("port forwarding of 127.0.0.1:5555 on h2"),
        "{}",
        failures[0].message
    );
    let h1 = on(&outcome.log, "h1");
    assert_eq!(
        h1,
        [
            "<forward 127.0.0.1:5555 to 127.0.0.1:5555>",
            "<stop forward 127.0.0.1:5555>"
        ]
    );
    assert!(
        !outcome
            .log
            .commands
            .iter()
            .any(|(_, c, _)| c.contains("docker pull"))
    );
}

const PROXY_RUN: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
servers:
  web: [h1]
proxy:
  app_port: 3000
  run:
    bind_ips: [127.0.0.1]
env:
  secret: [CANARY_SECRET]
";

const NO_SUCH_HOST: &str = "Error response from daemon: Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io: no such host";

/// The rules of a host without the proxy image that cannot pull it, and a web boot that works.
fn unpullable_proxy_image(pattern: &'static str) -> Vec<Rule> {
    vec![
        rule(pattern, 1, ""),
        Rule {
            host: None,
            pattern: "docker pull ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
            status: 1,
            stdout: "",
            stderr: NO_SUCH_HOST,
        },
        rule(
            "docker container ls --filter 'name=^app-web-v1$' --quiet",
            0,
            "c0ffee\n",
        ),
        running_status(),
    ]
}

#[test]
fn a_proxy_image_the_host_cannot_pull_is_sent_from_the_local_docker() {
    let plan = plan_for(PROXY_RUN);
    let outcome = execute_with(
        &plan,
        unpullable_proxy_image(
            "docker image inspect --format '{{.Id}}' ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
        ),
        &Options {
            local_images: Some(FakeLocalImages {
                images: vec!["ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"],
                ..FakeLocalImages::default()
            }),
            ..Options::default()
        },
    );
    outcome.result.as_ref().expect("deploy succeeds");
    let commands = on(&outcome.log, "h1");
    let order = [
        "docker container ls --all --quiet --filter 'name=^kamal-proxy$'",
        "docker image inspect --format '{{.Id}}' ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
        "docker pull ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
        "docker load",
        "docker container start kamal-proxy || docker run --name kamal-proxy",
        "kamal-proxy deploy app-web",
    ];
    let positions: Vec<usize> = order.iter().map(|p| position(&commands, p)).collect();
    assert!(positions.is_sorted(), "{positions:?} in {commands:#?}");
    assert!(
        commands[positions[4]].contains(
            "--publish 127.0.0.1:80:80 --publish 127.0.0.1:443:443 --log-opt max-size=10m ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 kamal-proxy run"
        ),
        "{}",
        commands[positions[4]]
    );
    let load = outcome
        .log
        .commands
        .iter()
        .find(|(_, text, _)| text == "docker load")
        .expect("docker load ran");
    assert_eq!(
        load.2.as_deref(),
        Some("archive:ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"),
        "the local archive is the load's stdin"
    );
    assert_eq!(
        outcome.saved,
        ["docker save ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"]
    );
    let sent: Vec<&Event> = outcome
        .events
        .iter()
        .filter(|event| matches!(event, Event::ImageSent { .. }))
        .collect();
    assert_eq!(
        sent,
        [&Event::ImageSent {
            host: "h1".to_owned(),
            image: "ghcr.io/dhow-deploy/kamal-proxy:v0.9.2".to_owned(),
            bytes: 46,
        }]
    );
    assert_eq!(
        crate::reporter::terminal::render(sent[0]).1,
        "Sent ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 to h1 from the local docker (0.0 MB): h1 could not pull it"
    );
}

#[test]
fn a_proxy_image_missing_here_too_fails_naming_host_image_and_the_way_out() {
    let plan = plan_for(PROXY_RUN);
    let outcome = execute_with(
        &plan,
        unpullable_proxy_image(
            "docker image inspect --format '{{.Id}}' ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
        ),
        &Options {
            local_images: Some(FakeLocalImages::default()),
            ..Options::default()
        },
    );
    let Err(DeployError::Hosts { failures, .. }) = &outcome.result else {
        panic!("expected a host failure: {:?}", outcome.result);
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].message,
        format!(
            "the proxy image ghcr.io/dhow-deploy/kamal-proxy:v0.9.2 is not on h1, h1 could not pull it ({NO_SUCH_HOST}), and the local docker has no copy of it either; build it here with scripts/build-proxy-image (it tags dhow's default image), or point proxy.run (registry, repository, version) at an image the hosts can pull"
        )
    );
    let commands = on(&outcome.log, "h1");
    assert!(!commands.iter().any(|c| c.contains("docker load")));
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("docker container start kamal-proxy"))
    );
    assert!(
        commands
            .last()
            .expect("commands")
            .contains("rm -r .kamal/lock-app"),
        "the lock is released: {commands:#?}"
    );
}

#[test]
fn a_pullable_or_present_proxy_image_or_an_existing_container_sends_nothing() {
    let plan = plan_for(PROXY_RUN);
    let local = || FakeLocalImages {
        images: vec!["ghcr.io/dhow-deploy/kamal-proxy:v0.9.2"],
        ..FakeLocalImages::default()
    };
    let web = || {
        vec![
            rule(
                "docker container ls --filter 'name=^app-web-v1$' --quiet",
                0,
                "c0ffee\n",
            ),
            running_status(),
        ]
    };
    // Missing, pulled.
    let mut rules = vec![rule(
        "docker image inspect --format '{{.Id}}' ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
        1,
        "",
    )];
    rules.extend(web());
    let pulled = execute_with(
        &plan,
        rules,
        &Options {
            local_images: Some(local()),
            ..Options::default()
        },
    );
    pulled.result.as_ref().expect("deploy succeeds");
    let commands = on(&pulled.log, "h1");
    position(
        &commands,
        "docker pull ghcr.io/dhow-deploy/kamal-proxy:v0.9.2",
    );
    assert!(!commands.iter().any(|c| c == "docker load"));
    assert!(pulled.saved.is_empty());
    // A proxy container exists: boot starts it, the image is not looked at.
    let mut rules = vec![rule(
        "docker container ls --all --quiet --filter 'name=^kamal-proxy$'",
        0,
        "5eed\n",
    )];
    rules.extend(web());
    let existing = execute_with(
        &plan,
        rules,
        &Options {
            local_images: Some(local()),
            ..Options::default()
        },
    );
    existing.result.as_ref().expect("deploy succeeds");
    let commands = on(&existing.log, "h1");
    assert!(!commands.iter().any(|c| c.contains("docker image inspect")));
    assert!(!commands.iter().any(|c| c.contains("docker pull ghcr.io")));
    assert!(existing.saved.is_empty());
}

#[test]
fn the_legacy_boot_files_name_the_proxy_image_on_the_host() {
    let plan = plan_for(WEB_AND_WORKER);
    let mut rules = vec![rule(
        "echo $(cat .kamal/proxy/image 2> /dev/null",
        0,
        "172.17.0.1:5000/dhow/kamal-proxy:v0.9.3\n",
    )];
    rules.extend([
        rule(
            "docker image inspect --format '{{.Id}}' 172.17.0.1:5000/dhow/kamal-proxy:v0.9.3",
            1,
            "",
        ),
        rule("docker pull 172.17.0.1:5000/dhow/kamal-proxy:v0.9.3", 1, ""),
        rule(
            "docker container ls --filter 'name=^app-web-v1$' --quiet",
            0,
            "c0ffee\n",
        ),
        running_status(),
    ]);
    let outcome = execute_with(
        &plan,
        rules,
        &Options {
            local_images: Some(FakeLocalImages {
                images: vec!["172.17.0.1:5000/dhow/kamal-proxy:v0.9.3"],
                ..FakeLocalImages::default()
            }),
            ..Options::default()
        },
    );
    outcome.result.as_ref().expect("deploy succeeds");
    assert_eq!(
        outcome.saved,
        [
            "docker save 172.17.0.1:5000/dhow/kamal-proxy:v0.9.3",
            "docker save 172.17.0.1:5000/dhow/kamal-proxy:v0.9.3"
        ],
        "once per host"
    );
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        assert!(
            position(&commands, "docker load")
                < position(&commands, "docker container start kamal-proxy || echo")
        );
    }
}

#[test]
fn health_checks_start_fast_and_never_wait_longer_than_kamal() {
    let pauses: Vec<u128> = (1..=10)
        .map(|attempt| super::health_pause(attempt).as_millis())
        .collect();
    assert_eq!(
        pauses,
        [100, 200, 400, 800, 1600, 3200, 6400, 8000, 9000, 10000]
    );
    assert_eq!(
        super::health_pause(u64::MAX),
        std::time::Duration::from_millis(100 << 16)
    );
}

/// The current-version query of a role (Kamal's `current_running_version`).
const CURRENT_VERSION: &str = "| head -1 | while read line";

fn count(commands: &[String], pattern: &str) -> usize {
    commands.iter().filter(|c| c.contains(pattern)).count()
}

#[test]
fn the_boot_stops_the_version_the_stale_check_found_without_asking_again() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![running_status(), rule(CURRENT_VERSION, 0, "v0\n")],
    );
    outcome.result.as_ref().expect("deploy succeeds");
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        assert_eq!(count(&commands, CURRENT_VERSION), 1, "{commands:#?}");
        let stop_old = position(
            &commands,
            "name=^jobs-workers-v0$' --quiet | xargs docker stop",
        );
        assert!(stop_old > position(&commands, "docker run --detach"));
    }
}

#[test]
fn a_renamed_container_makes_the_boot_ask_for_the_running_version_again() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule(CURRENT_VERSION, 0, "v1\n"),
            rule(
                "container ls --all --filter 'name=^jobs-workers-v1$' --quiet",
                0,
                "abc123\n",
            ),
        ],
    );
    outcome.result.as_ref().expect("deploy succeeds");
    let commands = on(&outcome.log, "h1");
    assert_eq!(count(&commands, CURRENT_VERSION), 2, "{commands:#?}");
    let rename = position(&commands, "docker rename jobs-workers-v1");
    let asked = commands
        .iter()
        .rposition(|c| c.contains(CURRENT_VERSION))
        .expect("asked");
    assert!(
        rename < asked,
        "asked again after the rename: {commands:#?}"
    );
}

#[test]
fn the_proxy_target_is_the_id_docker_run_printed() {
    let plan = plan_for(WEB_AND_WORKER);
    let full = "4f2a9c1be0d3".to_owned() + &"7".repeat(52);
    let printed: &'static str = Box::leak(format!("{full}\n").into_boxed_str());
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule(
                "docker run --detach --restart unless-stopped --name app-web-v1",
                0,
                printed,
            ),
        ],
    );
    outcome.result.as_ref().expect("deploy succeeds");
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        assert_eq!(
            count(
                &commands,
                "docker container ls --filter 'name=^app-web-v1$' --quiet"
            ),
            0,
            "no probe for the id: {commands:#?}"
        );
        position(
            &commands,
            "kamal-proxy deploy app-web --target=\"4f2a9c1be0d3:3000\"",
        );
    }
}

#[test]
fn without_an_id_from_docker_run_the_proxy_target_is_probed_as_kamal_does() {
    let plan = plan_for(WEB_AND_WORKER);
    let outcome = execute(
        &plan,
        vec![
            running_status(),
            rule(
                "docker run --detach --restart unless-stopped --name app-web-v1",
                0,
                "not an id\n",
            ),
            rule(
                "docker container ls --filter 'name=^app-web-v1$' --quiet",
                0,
                "c0ffee\n",
            ),
        ],
    );
    outcome.result.as_ref().expect("deploy succeeds");
    let commands = on(&outcome.log, "h1");
    let probe = position(
        &commands,
        "docker container ls --filter 'name=^app-web-v1$' --quiet",
    );
    assert!(probe < position(&commands, "--target=\"c0ffee:3000\""));
}

#[test]
fn a_proxy_found_by_the_version_check_is_not_looked_for_again() {
    let plan = plan_for(PROXY_RUN);
    let web = rule(
        "docker container ls --filter 'name=^app-web-v1$' --quiet",
        0,
        "c0ffee\n",
    );
    let found = execute(
        &plan,
        vec![
            running_status(),
            web.clone(),
            rule("docker inspect kamal-proxy --format", 0, "v0.9.2\n"),
        ],
    );
    found.result.as_ref().expect("deploy succeeds");
    let commands = on(&found.log, "h1");
    assert_eq!(
        count(&commands, "--filter 'name=^kamal-proxy$'"),
        0,
        "{commands:#?}"
    );
    assert_eq!(count(&commands, "docker image inspect"), 0, "{commands:#?}");
    position(&commands, "docker container start kamal-proxy");
    // No proxy container: the version check prints nothing, the image is looked at.
    let missing = execute(&plan, vec![running_status(), web]);
    missing.result.as_ref().expect("deploy succeeds");
    let commands = on(&missing.log, "h1");
    position(&commands, "--filter 'name=^kamal-proxy$'");
    position(&commands, "docker image inspect");
}

#[test]
fn the_steps_before_the_pull_run_while_the_mirror_probe_does() {
    let plan = plan_for(WORKERS);
    // Each host's mirror probe answers only once its registry login ran: were the login to
    // wait for the probes, the probes would time out and the pull fail.
    let outcome = execute_with(
        &plan,
        vec![running_status()],
        &Options {
            hold: Some(("docker info --format", "docker login")),
            ..Options::default()
        },
    );
    outcome.result.as_ref().expect("deploy succeeds");
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        let probe = position(&commands, "docker info --format");
        assert!(position(&commands, "docker login") < probe);
        assert!(position(&commands, "docker image rm --force") < probe);
        assert!(probe < position(&commands, "docker pull "), "{commands:#?}");
    }
    let finished: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            Event::StepFinished {
                step,
                host: Some(host),
                ..
            } if step == "Pull app image" => Some(host.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 2, "one finish per host: {finished:?}");
}

#[test]
fn a_failed_login_beside_the_mirror_probe_fails_the_pull_before_any_host_pulls() {
    let plan = plan_for(WORKERS);
    let outcome = execute(
        &plan,
        vec![Rule {
            host: Some("h2"),
            pattern: "docker login",
            status: 1,
            stdout: "",
            stderr: "unauthorized: incorrect username or password",
        }],
    );
    let Err(DeployError::Hosts { failures, .. }) = &outcome.result else {
        panic!("expected a host failure: {:?}", outcome.result);
    };
    let failed: Vec<&str> = failures.iter().map(|f| f.host.as_str()).collect();
    assert_eq!(failed, ["h2"]);
    assert!(failures[0].message.contains("unauthorized"), "{failures:?}");
    for host in ["h1", "h2"] {
        let commands = on(&outcome.log, host);
        assert!(
            !commands.iter().any(|c| c.contains("docker pull ")),
            "{commands:#?}"
        );
        assert!(!commands.iter().any(|c| c.contains(".kamal/lock-")));
    }
}
