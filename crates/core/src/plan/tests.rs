use std::collections::BTreeMap;

use super::*;
use crate::config::{LoadInput, NoTemplates, SourceFile};
use crate::selection;

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
    crate::config::load(&input).expect("valid config")
}

const WORKERS: &str = "service: jobs
image: ci/jobs
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
primary_role: workers
readiness_delay: 0
servers:
  workers:
    hosts: [10.0.0.1, 10.0.0.2]
    cmd: sleep infinity
    proxy: false
env:
  clear: {MODE: batch}
  secret: [CANARY_SECRET]
";

const WEB_AND_WORKER: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
servers:
  web: [10.0.0.1, 10.0.0.2]
  workers:
    hosts: [10.0.0.2]
    cmd: bin/jobs
proxy:
  app_port: 3000
env:
  secret: [DB_PASSWORD]
";

const CANARY: &str = "canary-3f9a1c";
const CERT_CANARY: &str = "-----BEGIN CERTIFICATE-----cert-canary-77e1";
const KEY_CANARY: &str = "-----BEGIN PRIVATE KEY-----key-canary-5b2d";

fn plan_for(text: &str) -> Plan {
    plan_with(text, "v1", deploy)
}

/// The plan `build` makes from a test input for `text` at `version`.
fn plan_with(text: &str, version: &str, build: impl Fn(&DeployInput<'_>) -> Plan) -> Plan {
    plan_with_pages(text, version, build, &[])
}

/// [`plan_with`] with local error pages.
fn plan_with_pages(
    text: &str,
    version: &str,
    build: impl Fn(&DeployInput<'_>) -> Plan,
    error_pages: &[ErrorPage],
) -> Plan {
    let config = load(text);
    let selection = selection::select(&config, None, None, false).expect("selection");
    let tags = Tags {
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        performer: "ci@example.com".to_owned(),
        destination: None,
        version: Some(version.to_owned()),
        service_version: Some(format!("{}@{version}", config.service)),
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
    let password = Secret::new("registry-pw-canary".to_owned());
    let mut secrets = BTreeMap::new();
    secrets.insert("CANARY_SECRET".to_owned(), Secret::new(CANARY.to_owned()));
    secrets.insert("DB_PASSWORD".to_owned(), Secret::new(CANARY.to_owned()));
    secrets.insert("CERT_PEM".to_owned(), Secret::new(CERT_CANARY.to_owned()));
    secrets.insert("KEY_PEM".to_owned(), Secret::new(KEY_CANARY.to_owned()));
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

#[test]
fn workers_only_plan() {
    let rendered = render(&plan_for(WORKERS));
    assert!(!rendered.contains(CANARY));
    assert!(!rendered.contains("registry-pw-canary"));
    insta::assert_snapshot!(rendered);
}

#[test]
fn web_and_worker_plan() {
    let rendered = render(&plan_for(WEB_AND_WORKER));
    assert!(!rendered.contains(CANARY));
    insta::assert_snapshot!(rendered);
}

#[test]
fn env_file_holds_the_secrets_with_mode_0600() {
    let plan = plan_for(WORKERS);
    let boot = &plan.locked[2].hosts[0].roles[0];
    let upload = boot
        .start
        .iter()
        .find_map(|step| match &step.action {
            Action::Upload {
                path,
                mode,
                contents,
            } => Some((path.clone(), *mode, contents.expose().clone())),
            _ => None,
        })
        .expect("upload step");
    assert_eq!(
        upload,
        (
            ".kamal/apps/jobs/env/roles/workers.env".to_owned(),
            0o600,
            format!("CANARY_SECRET={CANARY}\n")
        )
    );
    for step in boot.prepare.iter().chain(&boot.start) {
        for command in step.action.commands() {
            assert!(!crate::cmd::for_exec(command).contains(CANARY));
        }
    }
}

#[test]
fn login_passes_the_password_on_stdin() {
    let plan = plan_for(WORKERS);
    let Action::Run(login) = &plan.before_lock[0].hosts[0].steps[0].action else {
        panic!("login first");
    };
    assert!(!crate::cmd::for_exec(login).contains("registry-pw-canary"));
    assert_eq!(
        login.stdin().map(|s| s.expose().as_str()),
        Some("registry-pw-canary")
    );
}

#[test]
fn roles_boot_primary_first_and_only_primary_opens_the_barrier() {
    let plan = plan_for(WEB_AND_WORKER);
    let boot = &plan.locked[2];
    let host2 = boot
        .hosts
        .iter()
        .find(|h| h.host == "10.0.0.2")
        .expect("host 2");
    let roles: Vec<(&str, bool)> = host2
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.primary))
        .collect();
    assert_eq!(roles, [("web", true), ("workers", false)]);
}

#[test]
fn substitute_fills_placeholders() {
    let command = Command::from_words(["docker", "stop", OLD_VERSION]);
    assert_eq!(
        crate::cmd::for_exec(&substitute(&command, OLD_VERSION, "v0")),
        "docker stop v0"
    );
}

#[test]
fn container_hostnames_drop_the_user_and_port() {
    assert_eq!(ssh_hostname("127.0.0.1:2201"), "127.0.0.1");
    assert_eq!(ssh_hostname("deploy@web1:22"), "web1");
    assert_eq!(ssh_hostname("[::1]:22"), "::1");
    assert_eq!(ssh_hostname("web1.example.com"), "web1.example.com");
}

#[test]
fn boot_limit_splits_the_boot_into_groups_with_the_wait_between() {
    let text = WORKERS.replace(
        "readiness_delay: 0\n",
        "readiness_delay: 0\nboot:\n  limit: 1\n  wait: 4\n",
    );
    let plan = plan_for(&text);
    let boots: Vec<(String, Vec<String>, u64)> = plan
        .locked
        .iter()
        .filter(|stage| stage.hosts.iter().any(|host| !host.roles.is_empty()))
        .map(|stage| {
            (
                stage.label.clone(),
                stage.hosts.iter().map(|h| h.host.clone()).collect(),
                stage.pause_after,
            )
        })
        .collect();
    assert_eq!(
        boots,
        [
            (
                "Start container with version v1 on 10.0.0.1".to_owned(),
                vec!["10.0.0.1".to_owned()],
                4
            ),
            (
                "Start container with version v1 on 10.0.0.2".to_owned(),
                vec!["10.0.0.2".to_owned()],
                0
            ),
        ]
    );
}

#[test]
fn rollback_digests_resolve_to_versions() {
    use super::rollback::{digest_of, image_versions, versions_with_digest};
    let digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
    assert_eq!(digest_of(digest), Some(digest));
    assert_eq!(
        digest_of(&format!("registry:5000/ci/app@{digest}")),
        Some(digest)
    );
    assert_eq!(digest_of("v1"), None);
    assert_eq!(digest_of("sha256:xyz"), None);
    let config = load(WEB_AND_WORKER);
    assert_eq!(
        crate::cmd::for_exec(&image_versions(&config)),
        "docker image ls --digests --no-trunc --filter label=service=app --format '{{.Tag}} {{.Digest}} {{.ID}}' 172.17.0.1:5000/ci/app"
    );
    let listing = format!(
        "latest {digest} sha256:aaa\nv2 {digest} sha256:aaa\nv1 sha256:other sha256:bbb\n<none> <none> {digest}\n"
    );
    assert_eq!(
        versions_with_digest(&listing, digest),
        vec!["v2".to_owned()]
    );
    assert_eq!(
        versions_with_digest(&listing, "sha256:bbb"),
        vec!["v1".to_owned()]
    );
    assert!(versions_with_digest(&listing, "sha256:ccc").is_empty());
}

fn canary_free(rendered: &str) -> &str {
    assert!(!rendered.contains(CANARY), "{rendered}");
    assert!(!rendered.contains("registry-pw-canary"), "{rendered}");
    rendered
}

#[test]
fn setup_plan() {
    let plan = plan_with(WEB_AND_WORKER, "v1", |input| setup(input, Vec::new()));
    assert!(plan.before_lock.is_empty(), "setup locks first");
    assert_eq!(plan.checks[0].after_hook.as_deref(), Some("docker-setup"));
    insta::assert_snapshot!(canary_free(&render(&plan)));
}

#[test]
fn redeploy_plan() {
    let plan = plan_with(WEB_AND_WORKER, "v2", redeploy);
    let labels: Vec<&str> = plan.locked.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Detect stale containers",
            "Start container with version v2",
            "Tag the latest image"
        ]
    );
    insta::assert_snapshot!(canary_free(&render(&plan)));
}

#[test]
fn rollback_plan() {
    let plan = plan_with(WEB_AND_WORKER, "v1", rollback);
    assert!(plan.before_lock.is_empty(), "no pull");
    let rendered = render(&plan);
    assert!(!rendered.contains("docker pull"));
    assert!(!rendered.contains("prune"));
    insta::assert_snapshot!(canary_free(&rendered));
}

#[test]
fn rollback_checks_every_role_on_every_host() {
    let plan = plan_with(WEB_AND_WORKER, "v1", rollback);
    let probes: Vec<(String, String)> = plan.checks[0]
        .hosts
        .iter()
        .flat_map(|host| {
            host.steps.iter().map(|step| match &step.action {
                Action::Require { probe, .. } => (host.host.clone(), crate::cmd::for_exec(probe)),
                other => panic!("unexpected {other:?}"),
            })
        })
        .collect();
    assert_eq!(
        probes,
        [
            (
                "10.0.0.1".to_owned(),
                "docker container ls --all --filter 'name=^app-web-v1$' --quiet".to_owned()
            ),
            (
                "10.0.0.2".to_owned(),
                "docker container ls --all --filter 'name=^app-web-v1$' --quiet".to_owned()
            ),
            (
                "10.0.0.2".to_owned(),
                "docker container ls --all --filter 'name=^app-workers-v1$' --quiet".to_owned()
            ),
        ]
    );
}

#[test]
fn remove_plan() {
    let plan = plan_with(WEB_AND_WORKER, "v1", |input| remove(input, Vec::new()));
    insta::assert_snapshot!(canary_free(&render(&plan)));
}

#[test]
fn remove_plan_without_a_proxy_role_keeps_the_proxy_stage_empty() {
    let plan = plan_with(WORKERS, "v1", |input| remove(input, Vec::new()));
    let proxy = plan
        .locked
        .iter()
        .find(|stage| stage.label.starts_with("Remove kamal-proxy"))
        .expect("proxy stage");
    assert!(proxy.hosts.is_empty());
    let rendered = render(&plan);
    assert!(rendered.contains("docker logout 172.17.0.1:5000"));
    assert!(rendered.contains("docker image prune --all --force --filter label=service=jobs"));
}

#[test]
fn lock_group_renderings() {
    let config = load(WEB_AND_WORKER);
    let selection = selection::select(&config, None, None, false).expect("selection");
    let details = LockDetails {
        locked_by: "Deployer".to_owned(),
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        version: "v1".to_owned(),
        message: "Integration Tests".to_owned(),
        run_url: Some("https://github.com/o/r/actions/runs/7".to_owned()),
    };
    let plan = lock_plan(&config, &selection, &details);
    insta::assert_snapshot!(format!(
        "{}\n{}\n{}",
        render_lock(&plan, LockAction::Status),
        render_lock(&plan, LockAction::Acquire),
        render_lock(&plan, LockAction::Release)
    ));
}

/// Web behind the proxy with assets and a custom certificate, workers without; error pages.
const WITH_FILES: &str = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
asset_path: /public/assets:ro
error_pages_path: public
servers:
  web: [10.0.0.1, 10.0.0.2]
  workers:
    hosts: [10.0.0.2]
    cmd: bin/jobs
proxy:
  host: app.example.com
  ssl:
    certificate_pem: CERT_PEM
    private_key_pem: KEY_PEM
env:
  secret: [DB_PASSWORD]
";

fn error_pages() -> Vec<ErrorPage> {
    ["404.html", "503.html"]
        .into_iter()
        .map(|name| ErrorPage {
            name: name.to_owned(),
            source: format!("public/{name}"),
            mode: 0o644,
            contents: Secret::new(format!("page-canary {name}").into_bytes()),
        })
        .collect()
}

fn files_plan(version: &str, build: impl Fn(&DeployInput<'_>) -> Plan) -> Plan {
    plan_with_pages(WITH_FILES, version, build, &error_pages())
}

fn assert_no_file_contents(rendered: &str) {
    for canary in [CANARY, CERT_CANARY, KEY_CANARY, "page-canary"] {
        assert!(!rendered.contains(canary), "{canary} in\n{rendered}");
    }
}

#[test]
fn deploy_plan_with_assets_error_pages_and_certificate() {
    let rendered = render(&files_plan("v2", deploy));
    assert_no_file_contents(&rendered);
    insta::assert_snapshot!(rendered);
}

#[test]
fn redeploy_and_rollback_prepare_the_files_too() {
    for (name, plan) in [
        ("redeploy", files_plan("v2", redeploy)),
        ("rollback", files_plan("v1", rollback)),
    ] {
        let labels: Vec<&str> = plan.locked.iter().map(|s| s.label.as_str()).collect();
        let prepare = labels
            .iter()
            .position(|l| *l == "Prepare error pages, assets and certificates")
            .unwrap_or_else(|| panic!("{name}: no prepare stage in {labels:?}"));
        let boot = labels
            .iter()
            .position(|l| l.starts_with("Start container with version"))
            .expect("boot stage");
        assert_eq!(prepare + 1, boot, "{name}: {labels:?}");
        assert_no_file_contents(&render(&plan));
    }
    let rendered = render(&files_plan("v1", rollback));
    assert!(rendered.contains(
        "mkdir -p .kamal/apps/app/assets/extracted/web-v1 && docker container rm app-web-assets 2> /dev/null || true && docker container create --name app-web-assets 172.17.0.1:5000/ci/app:v1 && docker container cp -L app-web-assets:/public/assets/. .kamal/apps/app/assets/extracted/web-v1 && docker container rm app-web-assets"
    ), "{rendered}");
}

#[test]
fn prepared_files_per_host_and_role() {
    let plan = files_plan("v2", deploy);
    let stage = plan
        .locked
        .iter()
        .find(|stage| stage.label == "Prepare error pages, assets and certificates")
        .expect("prepare stage");
    let labels = |host: usize| -> Vec<&str> {
        stage.hosts[host]
            .steps
            .iter()
            .map(|step| step.label.as_str())
            .collect()
    };
    let web = [
        "error pages directory",
        "error pages of the version",
        "error page 404.html",
        "error page 503.html",
        "extract assets of web",
        "sync asset volumes of web",
        "TLS directory of web",
        "TLS certificate of web",
        "TLS private key of web",
        "TLS private key owner of web",
    ];
    assert_eq!(labels(0), web);
    // The workers run no proxy: no assets, no certificate; the error pages go to every app host.
    assert_eq!(labels(1), web);
    let uploads: Vec<(String, u32, String)> = stage.hosts[0]
        .steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Upload {
                path,
                mode,
                contents,
            } => Some((path.clone(), *mode, contents.expose().clone())),
            Action::UploadFile {
                path,
                mode,
                contents,
                ..
            } => Some((
                path.clone(),
                *mode,
                String::from_utf8_lossy(contents.expose()).into_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        uploads,
        [
            (
                ".kamal/proxy/apps-config/app/error_pages/v2/404.html".to_owned(),
                0o644,
                "page-canary 404.html".to_owned()
            ),
            (
                ".kamal/proxy/apps-config/app/error_pages/v2/503.html".to_owned(),
                0o644,
                "page-canary 503.html".to_owned()
            ),
            (
                ".kamal/proxy/apps-config/app/tls/web/cert.pem".to_owned(),
                0o644,
                CERT_CANARY.to_owned()
            ),
            (
                ".kamal/proxy/apps-config/app/tls/web/key.pem".to_owned(),
                0o600,
                KEY_CANARY.to_owned()
            ),
        ]
    );
    // Nothing in any command line carries a PEM.
    for step in &stage.hosts[0].steps {
        for command in step.action.commands() {
            let text = crate::cmd::for_exec(command);
            assert!(!text.contains("cert-canary") && !text.contains("key-canary"));
        }
    }
}

#[test]
fn old_version_clean_up_follows_the_stop() {
    let plan = files_plan("v2", deploy);
    let boot = plan
        .locked
        .iter()
        .find(|stage| stage.label.starts_with("Start container with version"))
        .expect("boot stage");
    let web = &boot.hosts[0].roles[0];
    assert_eq!(web.role, "web");
    let finish: Vec<String> = web
        .finish
        .iter()
        .map(|step| {
            format!(
                "{}: {}",
                step.label,
                crate::cmd::for_exec(step.action.commands()[0])
            )
        })
        .collect();
    assert_eq!(
        finish,
        [
            "stop old version: docker container ls --all --filter 'name=^app-web-<old-version>$' --quiet | xargs docker stop".to_owned(),
            "clean up assets: find .kamal/apps/app/assets/extracted -maxdepth 1 -name 'web-*' ! -name web-v2 -exec rm -rf \"{}\" + ; find .kamal/apps/app/assets/volumes -maxdepth 1 -name 'web-*' ! -name web-v2 -exec rm -rf \"{}\" +".to_owned(),
            "clean up error pages: find .kamal/proxy/apps-config/app/error_pages -mindepth 1 -maxdepth 1 ! -name v2 -exec rm -rf {} +".to_owned(),
        ]
    );
    let workers = &boot.hosts[1].roles[1];
    assert_eq!(workers.role, "workers");
    let labels: Vec<&str> = workers.finish.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["stop old version", "clean up error pages"]);
}

#[test]
fn no_prepare_stage_without_files() {
    let plan = plan_for(WEB_AND_WORKER);
    assert!(
        plan.locked
            .iter()
            .all(|stage| stage.label != "Prepare error pages, assets and certificates")
    );
}
#[test]
fn mirror_seeds_are_the_first_host_of_each_mirror() {
    let probes = vec![
        ("h1".to_owned(), None),
        ("h2".to_owned(), Some("https://mirror-a.example".to_owned())),
        (
            "h3".to_owned(),
            Some("https://mirror-b.example\n".to_owned()),
        ),
        ("h4".to_owned(), Some("https://mirror-a.example".to_owned())),
        ("h5".to_owned(), Some("  ".to_owned())),
    ];
    assert_eq!(mirror_seed_hosts(&probes), ["h2", "h3"]);
    assert!(mirror_seed_hosts(&[("h1".to_owned(), None)]).is_empty());
}

#[test]
fn mirror_probe_results_read_as_kamal_does() {
    assert_eq!(
        Mirror::from_probe(true, "https://mirror.example\n", ""),
        Mirror::First("https://mirror.example".to_owned())
    );
    assert_eq!(Mirror::from_probe(true, "\n", ""), Mirror::None);
    assert_eq!(Mirror::from_probe(true, "<no value>\n", ""), Mirror::None);
    assert_eq!(
        Mirror::from_probe(
            false,
            "",
            "template: :1:2: executing \"\" at <index .RegistryConfig.Mirrors 0>: error calling index: reflect: slice index out of range\n"
        ),
        Mirror::None
    );
    assert_eq!(
        Mirror::from_probe(false, "", "Cannot connect to the Docker daemon\n"),
        Mirror::Failed
    );
}

#[test]
fn pull_stage_probes_mirrors_on_many_hosts_and_forwards_a_local_registry() {
    let plan = plan_for(WORKERS);
    let pull = plan.before_lock[0].pull.as_ref().expect("pull setup");
    assert_eq!(pull.forward_port, None);
    assert_eq!(
        pull.mirror_probe.as_ref().map(crate::cmd::for_exec),
        Some("docker info --format '{{index .RegistryConfig.Mirrors 0}}'".to_owned())
    );

    let one_host = WORKERS.replace("[10.0.0.1, 10.0.0.2]", "[10.0.0.1]");
    let plan = plan_for(&one_host);
    let pull = plan.before_lock[0].pull.as_ref().expect("pull setup");
    assert_eq!(pull.mirror_probe, None, "Kamal probes only with many hosts");

    let local = WORKERS.replace(
        "registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}",
        "registry: {server: localhost:5555}",
    );
    let plan = plan_with(&local, "v1", deploy);
    let stage = &plan.before_lock[0];
    assert_eq!(stage.pull.as_ref().and_then(|p| p.forward_port), Some(5555));
    let rendered = render(&plan);
    assert!(
        rendered.contains(
            "  (while it runs, each host's 127.0.0.1:5555 is forwarded over SSH to localhost:5555 here)"
        ),
        "{rendered}"
    );
    assert!(
        rendered.contains("docker pull localhost:5555/ci/jobs:v1"),
        "{rendered}"
    );
    assert!(!rendered.contains("docker login"), "{rendered}");
    // setup and redeploy pull the same way.
    for plan in [
        plan_with(&local, "v1", |input| setup(input, Vec::new())),
        plan_with(&local, "v1", redeploy),
    ] {
        let pulls: Vec<&Stage> = plan
            .before_lock
            .iter()
            .chain(&plan.checks)
            .filter(|stage| stage.phase == Phase::Pull)
            .collect();
        assert_eq!(pulls.len(), 1, "{}", plan.title);
        assert_eq!(
            pulls[0].pull.as_ref().and_then(|p| p.forward_port),
            Some(5555)
        );
    }
}

#[test]
fn proxy_boot_takes_each_hosts_own_proxy_run() {
    let text = "service: app
image: ci/app
registry: {server: 172.17.0.1:5000, username: ci, password: [KAMAL_REGISTRY_PASSWORD]}
builder: {arch: amd64}
servers:
  web: [10.0.0.1]
  api:
    hosts: [10.0.0.3]
    proxy:
      host: api.example.com
      run: {http_port: 8081, https_port: 8444}
proxy:
  host: example.com
  run: {http_port: 8080}
";
    let plan = plan_for(text);
    let start = |host: &str| {
        plan.before_lock
            .iter()
            .chain(&plan.checks)
            .chain(&plan.locked)
            .flat_map(|stage| &stage.hosts)
            .filter(|h| h.host == host)
            .flat_map(|h| &h.steps)
            .find_map(|step| match &step.action {
                Action::Run(command) if step.label == "proxy start" => {
                    Some(crate::cmd::for_log(command))
                }
                _ => None,
            })
            .expect("a proxy start step")
    };
    let web = start("10.0.0.1");
    assert!(web.contains("--publish 8080:80 --publish 443:443"), "{web}");
    let api = start("10.0.0.3");
    assert!(
        api.contains("--publish 8081:80 --publish 8444:443"),
        "{api}"
    );
}
