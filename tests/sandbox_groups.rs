//! The command groups on the sandbox (`scripts/sandbox up`): a web app behind kamal-proxy (the
//! image of `scripts/build-proxy-image`) deployed with `dhow deploy --skip-push` as v1, v2 and v3
//! on hosts 19 and 20, then `dhow app details/containers/images/version/logs` show it, `app
//! exec` runs in a new container and `--reuse` in the running one, `app stop`/`start` take it out
//! of and back into the proxy, `app maintenance` makes the proxy answer 503 with its page and
//! `app live` 200 again, `prune all` keeps `retain_containers` stopped containers and their
//! images, `audit` shows the lines, `registry logout`/`login` change the host's Docker login. On
//! host 12: `dhow proxy details/logs/boot_config get`, `stop`/`start`/`restart`, `reboot
//! --rolling` keeps the app routed, `remove` refuses while the app is installed.
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the tests fail under CI (`CI=true`) and
//! print a notice otherwise.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{PROXY_IMAGE, http, http_when_up, ok, on_host, push_proxy_image, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-groups";
const PROXY_SERVICE: &str = "dhow-e2e-proxygroup";
/// Sandbox hosts of the app/prune/registry/audit test (1-based).
const HOSTS: [usize; 2] = [19, 20];
/// Sandbox host of the proxy group test.
const PROXY_HOST: usize = 12;

fn build_image(service: &str, version: &str) {
    ok(&Command::new(repo().join("scripts/sandbox"))
        .args(["image", service, version, "--kind", "web", "--push"])
        .output()
        .expect("scripts/sandbox image"));
}

struct App {
    dir: tempfile::TempDir,
    known_hosts: String,
}

impl App {
    /// An app directory with config/deploy.yml for `service` on `hosts` (web role behind the
    /// proxy, the proxy image from the sandbox registry) and the registry password secret.
    fn new(json: &Value, service: &str, hosts: &[usize], extra: &str) -> Self {
        let app = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
        };
        app.configure(json, service, hosts, extra);
        std::fs::write(
            app.dir.path().join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\n",
                json["registry"]["password"].as_str().expect("password")
            ),
        )
        .expect("secrets");
        app
    }

    fn configure(&self, json: &Value, service: &str, hosts: &[usize], extra: &str) {
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        let mut servers = String::new();
        for index in hosts {
            servers.push_str("    - 127.0.0.1:");
            servers.push_str(&json["hosts"][index - 1]["ssh_port"].to_string());
            servers.push('\n');
        }
        let config = format!(
            "service: {service}\nimage: {service}\nservers:\n  web:\n{servers}proxy:\n  app_port: 80\n  \
             run:\n    registry: {registry}\n    repository: dhow/kamal-proxy\nregistry:\n  server: \
             {registry}\n  username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: \
             amd64\nssh:\n  user: deploy\n  keys: [{}]\n  keys_only: true\n{extra}",
            json["ssh"]["key"].as_str().expect("key"),
        );
        std::fs::create_dir_all(self.dir.path().join("config")).expect("config");
        std::fs::create_dir_all(self.dir.path().join(".kamal")).expect(".kamal");
        std::fs::create_dir_all(self.dir.path().join("home")).expect("home");
        std::fs::write(self.dir.path().join("config/deploy.yml"), config).expect("deploy.yml");
    }

    fn output(&self, version: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dhow"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .stdin(Stdio::null());
        match version {
            Some(version) => command.env("VERSION", version),
            None => command.env_remove("VERSION"),
        };
        command.output().expect("run dhow")
    }

    /// Runs dhow (expecting success); returns stdout.
    fn dhow(&self, version: Option<&str>, args: &[&str]) -> String {
        ok(&self.output(version, args))
    }
}

fn clean(index: usize, service: &str) {
    on_host(
        index,
        &format!(
            "docker ps -aq --filter label=service={service} | xargs -r docker rm -f >/dev/null; \
             docker image ls --filter label=service={service} -q | sort -u | xargs -r docker rmi -f >/dev/null 2>&1; \
             rm -rf .kamal/apps/{service} .kamal/{service}-audit.log .kamal/lock-{service} \
             .kamal/proxy/apps-config/{service}; \
             docker exec kamal-proxy kamal-proxy remove {service}-web >/dev/null 2>&1; true"
        ),
    );
}

fn names(index: usize, service: &str, all: bool) -> Vec<String> {
    let listing = on_host(
        index,
        &format!(
            "docker ps {} --filter label=service={service} --format '{{{{.Names}}}}' | sort",
            if all { "-a" } else { "" }
        ),
    );
    listing.lines().map(str::to_owned).collect()
}

fn host_name(json: &Value, index: usize) -> String {
    format!("127.0.0.1:{}", json["hosts"][index - 1]["ssh_port"])
}

fn port(json: &Value, index: usize) -> String {
    json["hosts"][index - 1]["http_port"].to_string()
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario: the app group on a deployed app, in order"
)]
fn app_prune_registry_and_audit_groups() {
    let Some(json) = sandbox(20) else { return };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    for version in ["v1", "v2", "v3"] {
        build_image(SERVICE, version);
    }
    for index in HOSTS {
        clean(index, SERVICE);
    }
    let app = App::new(&json, SERVICE, &HOSTS, "");
    for version in ["v1", "v2", "v3"] {
        app.dhow(Some(version), &["deploy", "-P"]);
    }
    for index in HOSTS {
        assert_eq!(
            http(&port(&json, index), "/version"),
            (200, "v3\n".to_owned())
        );
    }

    // details, containers, images, version: per host, under "App Host: <host>".
    let details = app.dhow(Some("v3"), &["app", "details"]);
    for index in HOSTS {
        assert!(
            details.contains(&format!(
                "App Host: {}\nCONTAINER ID",
                host_name(&json, index)
            )),
            "{details}"
        );
    }
    assert_eq!(
        details.matches(&format!("{SERVICE}-web-v3")).count(),
        2,
        "{details}"
    );
    assert!(
        !details.contains(&format!("{SERVICE}-web-v2")),
        "only running ones: {details}"
    );
    let containers = app.dhow(Some("v3"), &["app", "containers"]);
    for version in ["v1", "v2", "v3"] {
        assert_eq!(
            containers
                .matches(&format!("{SERVICE}-web-{version}"))
                .count(),
            2,
            "{containers}"
        );
    }
    let images = app.dhow(Some("v3"), &["app", "images"]);
    assert!(
        images.contains(&format!("{registry}/{SERVICE}")),
        "{images}"
    );
    assert!(
        images.contains("latest") && images.contains("v3"),
        "{images}"
    );
    let version = app.dhow(None, &["app", "version"]);
    assert_eq!(
        version,
        format!(
            "App Host: {}\nv3\n\nApp Host: {}\nv3\n\n",
            host_name(&json, HOSTS[0]),
            host_name(&json, HOSTS[1])
        )
    );

    // logs: the app's own output.
    let logs = app.dhow(None, &["app", "logs", "-n", "20"]);
    assert_eq!(logs.matches("web v3 listening on :80").count(), 2, "{logs}");
    let quiet = app.dhow(None, &["app", "logs", "-q", "-T", "-g", "listening"]);
    assert_eq!(
        quiet, "web v3 listening on :80\n\nweb v3 listening on :80\n\n",
        "{quiet}"
    );

    // exec: a new container of the image tagged latest, and the running one with --reuse.
    let exec = app.dhow(None, &["app", "exec", "cat /www/version /etc/hostname"]);
    let running_hostname = on_host(
        HOSTS[0],
        &format!("docker exec {SERVICE}-web-v3 cat /etc/hostname"),
    );
    assert_eq!(exec.matches("v3\n").count(), 2, "{exec}");
    assert!(!exec.contains(running_hostname.trim()), "{exec}");
    let reuse = app.dhow(None, &["app", "exec", "--reuse", "cat /etc/hostname"]);
    assert!(
        reuse.starts_with(&format!(
            "App Host: {}\n{}\n\n",
            host_name(&json, HOSTS[0]),
            running_hostname.trim()
        )),
        "{reuse}"
    );
    assert!(
        names(HOSTS[0], SERVICE, true)
            .iter()
            .all(|name| !name.contains("-exec-")),
        "exec containers are removed"
    );

    // stop: out of the proxy and stopped; start: running and routed again.
    app.dhow(Some("v3"), &["app", "stop"]);
    for index in HOSTS {
        assert!(
            names(index, SERVICE, false).is_empty(),
            "stopped on {index}"
        );
        assert_ne!(http(&port(&json, index), "/version").0, 200);
    }
    app.dhow(Some("v3"), &["app", "start"]);
    for index in HOSTS {
        assert_eq!(names(index, SERVICE, false), [format!("{SERVICE}-web-v3")]);
        assert_eq!(
            http(&port(&json, index), "/version"),
            (200, "v3\n".to_owned())
        );
    }

    // maintenance: 503 with the maintenance page and the message; live: 200.
    app.dhow(
        Some("v3"),
        &[
            "app",
            "maintenance",
            "--message",
            "Back at noon",
            "--drain-timeout",
            "1",
        ],
    );
    for index in HOSTS {
        let (status, body) = http(&port(&json, index), "/version");
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("503 Service Unavailable") && body.contains("Back at noon"),
            "{body}"
        );
    }
    app.dhow(Some("v3"), &["app", "live"]);
    for index in HOSTS {
        assert_eq!(
            http(&port(&json, index), "/version"),
            (200, "v3\n".to_owned())
        );
    }

    // stale containers: none while only v3 runs.
    let stale = app.dhow(Some("v3"), &["app", "stale_containers"]);
    assert_eq!(stale, "", "{stale}");

    // prune with retain_containers: 1 keeps the newest stopped container (v2) and the images
    // containers use; v1's container and image go.
    app.configure(&json, SERVICE, &HOSTS, "retain_containers: 1\n");
    app.dhow(Some("v3"), &["prune", "all"]);
    for index in HOSTS {
        assert_eq!(
            names(index, SERVICE, true),
            [format!("{SERVICE}-web-v2"), format!("{SERVICE}-web-v3")],
            "host {index}"
        );
        let tags = on_host(
            index,
            &format!("docker image ls {registry}/{SERVICE} --format '{{{{.Tag}}}}' | sort"),
        );
        assert_eq!(
            tags.lines().collect::<Vec<_>>(),
            ["latest", "v2", "v3"],
            "host {index}"
        );
        assert_eq!(
            http(&port(&json, index), "/version"),
            (200, "v3\n".to_owned())
        );
    }

    // audit: the lines of what was done, per host.
    let audit = app.dhow(Some("v3"), &["audit"]);
    for line in [
        "Booted app version v3",
        "[web] Stopped app",
        "Started app version v3",
        "Pruned containers",
        "Pruned images",
        "Executed cmd 'cat /etc/hostname' on app version v3",
    ] {
        // Once per host at least (deploys prune too).
        assert!(audit.matches(line).count() >= 2, "{line}: {audit}");
    }
    assert!(
        audit.starts_with(&format!("App Host: {}\n[", host_name(&json, HOSTS[0]))),
        "{audit}"
    );

    // registry logout / login on the hosts (-L: this machine's Docker is left alone).
    let logged_in = |index: usize| {
        on_host(index, "cat .docker/config.json 2>/dev/null || true").contains(&registry)
    };
    assert!(logged_in(HOSTS[0]));
    app.dhow(None, &["registry", "logout", "-L"]);
    for index in HOSTS {
        assert!(!logged_in(index), "logged out on {index}");
    }
    let login = app.output(None, &["registry", "login", "-L"]);
    let all = ok(&login) + &text(&login.stderr);
    assert!(
        !all.contains(json["registry"]["password"].as_str().expect("password")),
        "{all}"
    );
    for index in HOSTS {
        assert!(logged_in(index), "logged in on {index}");
    }

    for index in HOSTS {
        clean(index, SERVICE);
    }
}

#[test]
fn proxy_group_on_one_host() {
    let Some(json) = sandbox(20) else { return };
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    build_image(PROXY_SERVICE, "v1");
    clean(PROXY_HOST, PROXY_SERVICE);
    let app = App::new(&json, PROXY_SERVICE, &[PROXY_HOST], "");
    app.dhow(Some("v1"), &["deploy", "-P"]);
    let port = port(&json, PROXY_HOST);
    let host = host_name(&json, PROXY_HOST);
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));

    let details = app.dhow(Some("v1"), &["proxy", "details"]);
    assert!(
        details.starts_with(&format!("Proxy Host: {host}\nCONTAINER ID")),
        "{details}"
    );
    assert!(
        details.contains(&format!("{registry}/{PROXY_IMAGE}")),
        "{details}"
    );
    let logs = app.dhow(Some("v1"), &["proxy", "logs", "-n", "5"]);
    assert!(logs.starts_with(&format!("Proxy Host: {host}\n")), "{logs}");
    let boot_config = app.dhow(Some("v1"), &["proxy", "boot_config", "get"]);
    assert_eq!(
        boot_config,
        format!(
            "Host {host}: --publish 80:80 --publish 443:443 --log-opt max-size=10m ghcr.io/dhow-deploy/kamal-proxy:v0.9.2\n"
        )
    );

    app.dhow(Some("v1"), &["proxy", "stop"]);
    assert_eq!(
        http(&port, "/version").0,
        0,
        "nothing answers while stopped"
    );
    app.dhow(Some("v1"), &["proxy", "start"]);
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));
    app.dhow(Some("v1"), &["proxy", "restart"]);
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));

    // reboot: a new container from the state volume keeps the app routed.
    let before = on_host(PROXY_HOST, "docker inspect kamal-proxy --format '{{.Id}}'");
    let refused = app.output(Some("v1"), &["proxy", "reboot"]);
    assert!(refused.status.success());
    assert!(
        text(&refused.stderr).contains("Aborted"),
        "{}",
        text(&refused.stderr)
    );
    app.dhow(Some("v1"), &["proxy", "reboot", "--rolling", "-y"]);
    let after = on_host(PROXY_HOST, "docker inspect kamal-proxy --format '{{.Id}}'");
    assert_ne!(before, after, "a new proxy container");
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));

    // remove refuses while this app is installed on the host.
    let remove = app.output(Some("v1"), &["proxy", "remove"]);
    assert!(remove.status.success());
    assert!(
        text(&remove.stderr).contains("Not removing the proxy, as other apps are installed"),
        "{}",
        text(&remove.stderr)
    );
    assert_eq!(http_when_up(&port, "/version"), (200, "v1\n".to_owned()));

    let audit = app.dhow(Some("v1"), &["audit"]);
    for line in ["Stopped proxy", "Started proxy", "Rebooted proxy"] {
        assert!(audit.contains(line), "{line}: {audit}");
    }
    clean(PROXY_HOST, PROXY_SERVICE);
}
