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
}

struct FakeHost {
    host: String,
    rules: Arc<Vec<Rule>>,
    log: Arc<Mutex<Log>>,
    /// Cancelled (as by SIGTERM) when a command containing the pattern runs.
    cancel_on: Option<(&'static str, CancellationToken)>,
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
            let stdin = command
                .stdin()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
            self.log
                .lock()
                .expect("log")
                .commands
                .push((self.host.clone(), text.clone(), stdin));
            if let Some((pattern, cancel)) = &self.cancel_on
                && text.contains(pattern)
            {
                cancel.cancel();
            }
            let found = self.rules.iter().find(|rule| {
                text.contains(rule.pattern) && rule.host.is_none_or(|host| host == self.host)
            });
            match found {
                Some(rule) => {
                    on_output(OutputStream::Stdout, rule.stdout.as_bytes());
                    on_output(OutputStream::Stderr, rule.stderr.as_bytes());
                    Ok(ExitStatus::Code(rule.status))
                }
                None => Ok(ExitStatus::Code(0)),
            }
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
    let config = load(text);
    let selection = selection::select(&config, None, None, false).expect("selection");
    let tags = Tags {
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        performer: "ci".to_owned(),
        destination: None,
        version: Some("v1".to_owned()),
        service_version: None,
        service: config.service.clone(),
        details: Vec::new(),
    };
    let lock = LockDetails {
        locked_by: "ci".to_owned(),
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        version: "v1".to_owned(),
        message: "Automatic deploy lock".to_owned(),
    };
    let password = Secret::new(REGISTRY_CANARY.to_owned());
    let mut secrets = BTreeMap::new();
    secrets.insert("CANARY_SECRET".to_owned(), Secret::new(CANARY.to_owned()));
    plan::deploy(&DeployInput {
        config: &config,
        selection: &selection,
        version: "v1",
        tags: &tags,
        lock: &lock,
        registry: Some(("ci", &password)),
        secrets: &secrets,
        nonce: "0123456789abcdef0123",
    })
}

struct Outcome {
    result: Result<Vec<dhow_core::event::Timing>, DeployError>,
    log: Log,
    events: Vec<Event>,
    hooks: Vec<String>,
}

fn execute(plan: &Plan, rules: Vec<Rule>) -> Outcome {
    execute_cancelling(plan, rules, None)
}

fn execute_cancelling(plan: &Plan, rules: Vec<Rule>, cancel_on: Option<&'static str>) -> Outcome {
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(
        Executor {
            sessions: &sessions,
            emit: &emit,
            cancel: &cancel,
            after_lock: None,
            hook: Some(&hook),
            ci: None,
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
