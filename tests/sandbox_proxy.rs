//! dhow's kamal-proxy image on real sandbox hosts, driven as Kamal drives it
//! (`docker exec kamal-proxy kamal-proxy deploy …` over SSH).
//!
//! - Host 10, zero downtime: a load generator keeps a constant request rate against the proxy's
//!   port published on 127.0.0.1 while the target is switched five times (one of them to a
//!   target that never becomes healthy, which must be refused with the timeout error while
//!   traffic stays on the old target); every request must answer 200, each switch must show the
//!   new version to every request sent after its deploy returned, and at least 20 000 requests
//!   are sent.
//! - Host 11, restart: several services (host and path routing, a custom certificate from the
//!   apps-config directory, one in maintenance) survive `docker kill` + `docker start` and a
//!   replacement container on the same `kamal-proxy-config` volume, from the state file alone.
//!
//! `DHOW_SANDBOX` points at `sandbox.json`; without it the tests fail under CI (`CI=true`) and
//! print a notice otherwise. Each test cleans its host at the start and at the end.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

mod common;
use common::{PROXY_IMAGE, ok, repo, sandbox, text};

const ZERO_DOWNTIME_HOST: usize = 10;
const RESTART_HOST: usize = 11;
const APP: &str = "dhow-proxy-app";
/// Versions the zero-downtime test switches through (v1 first, then five switches, one bad).
const VERSIONS: [&str; 5] = ["v1", "v2", "v3", "v4", "v5"];
const MIN_REQUESTS: usize = 20_000;
/// Hard bounds of the load: requests and seconds.
const MAX_REQUESTS: usize = 60_000;
const MAX_LOAD: Duration = Duration::from_secs(240);
const RATE_PER_SECOND: u64 = 400;
const WORKERS: usize = 48;

/// One sandbox host, reached with plain `ssh` and the sandbox's config (keys, `known_hosts`).
struct Host {
    name: String,
    config: String,
    http_port: u64,
    https_port: u64,
}

impl Host {
    fn new(json: &Value, index: usize) -> Self {
        let host = &json["hosts"][index - 1];
        Self {
            name: host["name"].as_str().expect("name").to_string(),
            config: json["ssh"]["config"]
                .as_str()
                .expect("ssh config")
                .to_string(),
            http_port: host["http_port"].as_u64().expect("http_port"),
            https_port: host["https_port"].as_u64().expect("https_port"),
        }
    }

    fn run(&self, script: &str, stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new("ssh")
            .args(["-F", &self.config, &self.name, script])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh");
        if let Some(input) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input).expect("ssh stdin");
        }
        child.wait_with_output().expect("ssh")
    }

    fn sh(&self, script: &str) -> String {
        ok(&self.run(script, None))
    }
}

/// Images on the sandbox registry: the proxy, and the test web app per version.
struct Images {
    registry: String,
    password: String,
    proxy: String,
    app: Vec<String>,
}

fn images(json: &Value) -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let registry = json["registry"]["from_hosts"]
            .as_str()
            .expect("registry")
            .to_string();
        let password = json["registry"]["password"]
            .as_str()
            .expect("registry password")
            .to_string();
        let present = Command::new("docker")
            .args(["image", "inspect", PROXY_IMAGE])
            .output()
            .expect("docker image inspect")
            .status
            .success();
        if !present {
            ok(&Command::new(repo().join("scripts/build-proxy-image"))
                .output()
                .expect("scripts/build-proxy-image"));
        }
        let proxy = format!("{registry}/{PROXY_IMAGE}");
        ok(&Command::new("docker")
            .args(["tag", PROXY_IMAGE, &proxy])
            .output()
            .expect("docker tag"));
        ok(&Command::new("docker")
            .args(["push", "-q", &proxy])
            .output()
            .expect("docker push"));
        let app = VERSIONS
            .iter()
            .map(|version| {
                let out = ok(&Command::new(repo().join("scripts/sandbox"))
                    .args(["image", APP, version, "--kind", "web", "--push"])
                    .output()
                    .expect("scripts/sandbox image"));
                out.lines().last().expect("image reference").to_string()
            })
            .collect();
        Images {
            registry,
            password,
            proxy,
            app,
        }
    })
}

/// Removes what an earlier run left (containers, the proxy volume), then logs in and pulls.
fn prepare_host(host: &Host, images: &Images, prefix: &str) {
    clean_host(host, prefix);
    ok(&host.run(
        &format!(
            "docker login {} -u ci --password-stdin >/dev/null",
            images.registry
        ),
        Some(images.password.as_bytes()),
    ));
    let mut pulls = vec![format!("docker pull -q {} >/dev/null", images.proxy)];
    pulls.extend(
        images
            .app
            .iter()
            .map(|image| format!("docker pull -q {image} >/dev/null")),
    );
    host.sh(&format!(
        "set -e; {}; docker network create kamal >/dev/null 2>&1 || true",
        pulls.join("; ")
    ));
}

fn clean_host(host: &Host, prefix: &str) {
    host.sh(&format!(
        "ids=$(docker ps -aq --filter name=^{prefix}- --filter name=^kamal-proxy$); \
         [ -z \"$ids\" ] || docker rm -f $ids >/dev/null; \
         docker volume rm kamal-proxy-config >/dev/null 2>&1 || true; \
         rm -rf .kamal/proxy"
    ));
}

/// Kamal's `docker run` of the proxy (`proxy.run` form): the state volume, the apps-config bind
/// mount, ports 80/443 published (the sandbox publishes the host's on 127.0.0.1).
fn run_proxy(host: &Host, image: &str) {
    host.sh(&format!(
        "mkdir -p .kamal/proxy/apps-config && docker run --name kamal-proxy --network kamal \
         --detach --restart unless-stopped \
         --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy \
         --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config \
         --publish 80:80 --publish 443:443 --log-opt max-size=10m {image} kamal-proxy run \
         >/dev/null"
    ));
}

/// Starts an app container; returns its short id (Kamal's target name).
fn run_app(host: &Host, name: &str, image: &str, command: &str) -> String {
    host.sh(&format!(
        "docker run --detach --restart unless-stopped --name {name} --network kamal {image} \
         {command} >/dev/null && docker container ls --all --filter name=^{name}$ --quiet"
    ))
    .trim()
    .to_string()
}

/// `docker exec kamal-proxy kamal-proxy deploy …` with Kamal's default flags.
fn deploy_command(service: &str, target: &str, extra: &str) -> String {
    format!(
        "docker exec kamal-proxy kamal-proxy deploy {service} --target=\"{target}:80\" \
         --deploy-timeout=\"10s\" --drain-timeout=\"5s\" --buffer-requests --buffer-responses \
         --log-request-header=\"Cache-Control\" --log-request-header=\"Last-Modified\" \
         --log-request-header=\"User-Agent\" {extra}"
    )
}

// ------------------------------------------------------------------------------------------
// the load generator

/// One request: when it was sent and what came back (`Ok(body)` only for a 2xx).
struct Sample {
    sent: Instant,
    result: Result<String, String>,
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn request(client: &HttpClient, port: u64) -> Result<String, String> {
    let req = http::Request::get(format!("http://127.0.0.1:{port}/version"))
        .header("host", "zero-downtime.test")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_string())?
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    if status.is_success() {
        Ok(text(&body).trim().to_string())
    } else {
        Err(format!("status {status}: {}", text(&body).trim()))
    }
}

/// Sends requests at a constant rate (request `i` is due at `start + i / rate`) from a pool of
/// keep-alive connections until `stop` is set and at least `MIN_REQUESTS` were sent, within
/// `MAX_REQUESTS` and `MAX_LOAD`.
async fn load(port: u64, stop: Arc<AtomicBool>) -> Vec<Sample> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(WORKERS)
        .build_http();
    let next = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let period = Duration::from_micros(1_000_000 / RATE_PER_SECOND);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, next, stop) = (client.clone(), Arc::clone(&next), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let due = start + period * u32::try_from(i).expect("bounded count");
                if i >= MAX_REQUESTS
                    || due.duration_since(start) > MAX_LOAD
                    || (stop.load(Ordering::SeqCst) && i >= MIN_REQUESTS)
                {
                    return samples;
                }
                tokio::time::sleep_until(due).await;
                let sent = Instant::now();
                let result = request(&client, port).await;
                samples.push(Sample { sent, result });
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("load worker"));
    }
    all.sort_by_key(|s| s.sent);
    all
}

/// A switch as the test saw it: the version, when its deploy began and when it returned.
struct Switch {
    version: String,
    began: Instant,
    returned: Instant,
}

fn wait_for_version(port: u64, version: &str) {
    for _ in 0..100 {
        let output = Command::new("curl")
            .args(["-s", "-m", "2", &format!("http://127.0.0.1:{port}/version")])
            .output()
            .expect("curl");
        if text(&output.stdout).trim() == version {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the proxy on 127.0.0.1:{port} never answered {version}");
}

/// Every response is a 2xx; each request sent after a switch returned shows that switch's
/// version (or the next one's, once that has begun); the refused target never answers.
fn check_samples(samples: &[Sample], switches: &[Switch], refused: &Switch) -> Vec<usize> {
    let failures: Vec<String> = samples
        .iter()
        .filter_map(|s| s.result.as_ref().err().cloned())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, the first: {:?}",
        failures.len(),
        samples.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
    let mut per_switch = vec![0usize; switches.len()];
    for sample in samples {
        let version = sample.result.as_deref().unwrap_or_default();
        let Some(k) = switches.iter().rposition(|s| s.returned <= sample.sent) else {
            continue;
        };
        let next = switches.get(k + 1);
        let allowed_next = next.is_some_and(|n| n.began <= sample.sent && version == n.version);
        assert!(
            version == switches[k].version || allowed_next,
            "a request sent after the switch to {} returned got {version:?}",
            switches[k].version
        );
        if version == switches[k].version {
            per_switch[k] += 1;
        }
        if refused.began <= sample.sent && sample.sent <= refused.returned {
            assert_ne!(version, refused.version, "the unhealthy target got traffic");
        }
    }
    for (k, count) in per_switch.iter().enumerate() {
        assert!(
            *count > 0,
            "no request saw {} after its switch",
            switches[k].version
        );
    }
    per_switch
}

/// Deploys a target that never becomes healthy (the v1 image without its health path, with a
/// version of its own): the deploy must fail with kamal-proxy's timeout error.
fn refused_switch(host: &Host, images: &Images) -> Switch {
    let id = run_app(
        host,
        "zd-bad",
        &images.app[0],
        "sh -c 'rm /www/up; echo bad > /www/version; exec /start.sh'",
    );
    let began = Instant::now();
    let output = host.run(&deploy_command("zd-web", &id, ""), None);
    let returned = Instant::now();
    assert_eq!(
        output.status.code(),
        Some(1),
        "the unhealthy deploy is refused"
    );
    assert_eq!(
        text(&output.stderr).trim(),
        "Error: target failed to become healthy within configured timeout (10s)"
    );
    host.sh("docker rm -f zd-bad >/dev/null");
    Switch {
        version: "bad".to_string(),
        began,
        returned,
    }
}

#[test]
fn zero_downtime_switches_under_constant_load() {
    let Some(json) = sandbox(RESTART_HOST) else {
        return;
    };
    let host = Host::new(&json, ZERO_DOWNTIME_HOST);
    let images = images(&json);
    let prefix = "zd";
    prepare_host(&host, images, prefix);
    run_proxy(&host, &images.proxy);

    let first = run_app(&host, "zd-v1", &images.app[0], "");
    host.sh(&deploy_command("zd-web", &first, ""));
    wait_for_version(host.http_port, VERSIONS[0]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let load_task = runtime.spawn(load(host.http_port, Arc::clone(&stop)));
    std::thread::sleep(Duration::from_secs(3));

    let mut switches = vec![Switch {
        version: VERSIONS[0].to_string(),
        began: Instant::now(),
        returned: Instant::now(),
    }];
    let mut refused = None;
    let mut previous = "zd-v1".to_string();
    // Five switches: v2, v3, a target that never becomes healthy, v4, v5.
    for step in ["v2", "v3", "bad", "v4", "v5"] {
        if step == "bad" {
            refused = Some(refused_switch(&host, images));
        } else {
            let index = VERSIONS.iter().position(|v| *v == step).expect("version");
            let name = format!("zd-{step}");
            let id = run_app(&host, &name, &images.app[index], "");
            let began = Instant::now();
            host.sh(&deploy_command("zd-web", &id, ""));
            let returned = Instant::now();
            // As Kamal does once the deploy returns: the old version stops.
            host.sh(&format!("docker stop {previous} >/dev/null"));
            switches.push(Switch {
                version: step.to_string(),
                began,
                returned,
            });
            previous = name;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::SeqCst);
    let samples = runtime.block_on(load_task).expect("load");
    let refused = refused.expect("the refused switch ran");
    let failed = samples.iter().filter(|s| s.result.is_err()).count();
    let elapsed = samples
        .last()
        .zip(samples.first())
        .map_or(Duration::ZERO, |(l, f)| l.sent - f.sent);
    {
        eprintln!(
            "zero downtime: {} requests in {:.1} s ({:.0}/s), {failed} failed or non-2xx",
            samples.len(),
            elapsed.as_secs_f64(),
            f64::from(u32::try_from(samples.len()).unwrap_or(u32::MAX))
                / elapsed.as_secs_f64().max(0.001)
        );
    }
    let per_switch = check_samples(&samples, &switches, &refused);
    {
        for (switch, count) in switches.iter().zip(&per_switch) {
            eprintln!(
                "  {}: {count} requests after its deploy returned",
                switch.version
            );
        }
        eprintln!(
            "  refused switch: {:.1} s, answered by the previous version",
            (refused.returned - refused.began).as_secs_f64()
        );
    }
    assert!(
        samples.len() >= MIN_REQUESTS,
        "only {} requests were sent",
        samples.len()
    );
    clean_host(&host, prefix);
}

// ------------------------------------------------------------------------------------------
// restart

const CERT: &str = include_str!("../crates/proxy/tests/fixtures/cert.pem");
const KEY: &str = include_str!("../crates/proxy/tests/fixtures/key.pem");
const CA: &str = include_str!("../crates/proxy/tests/fixtures/ca.pem");

/// `curl` through the published ports with a Host header (HTTP) or SNI (HTTPS): the status
/// and the body with its whitespace collapsed.
fn fetch(
    host: &Host,
    scheme: &str,
    name: &str,
    path: &str,
    ca: &std::path::Path,
) -> (String, String) {
    let port = if scheme == "https" {
        host.https_port
    } else {
        host.http_port
    };
    let output = Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
            &ca.display().to_string(),
            "--resolve",
            &format!("{name}:{port}:127.0.0.1"),
            &format!("{scheme}://{name}:{port}{path}"),
        ])
        .output()
        .expect("curl");
    let out = text(&output.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
    (
        code.trim().to_string(),
        body.split_whitespace().collect::<Vec<_>>().join(" "),
    )
}

/// Every route: `(scheme, host, path)`, the status and what the body must contain.
const ROUTES: [(&str, &str, &str, &str, &str); 7] = [
    ("http", "a.restart.test", "/version", "200", "v1"),
    ("http", "b.restart.test", "/version", "200", "v2"),
    ("http", "a.restart.test", "/c/version", "200", "v3"),
    ("https", "example.com", "/version", "200", "v4"),
    ("https", "www.example.com", "/version", "200", "v4"),
    (
        "http",
        "example.com",
        "/version",
        "301",
        "https://example.com/version",
    ),
    ("http", "m.restart.test", "/version", "503", "Back at noon"),
];

fn assert_routes(host: &Host, ca: &std::path::Path, when: &str) {
    let mut last = Vec::new();
    // The proxy may still be starting: retry the whole set for a bounded time.
    for _ in 0..50 {
        last = ROUTES
            .iter()
            .map(|(scheme, name, path, ..)| fetch(host, scheme, name, path, ca))
            .collect();
        let all = ROUTES
            .iter()
            .zip(&last)
            .all(|((.., code, want), (got_code, body))| {
                got_code == code && (body == want || (*code != "200" && body.contains(want)))
            });
        if all {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{when}: routes answered {last:?}");
}

#[test]
fn restart_keeps_every_service_from_the_state_file() {
    let Some(json) = sandbox(RESTART_HOST) else {
        return;
    };
    let host = Host::new(&json, RESTART_HOST);
    let images = images(&json);
    let prefix = "rs";
    prepare_host(&host, images, prefix);
    run_proxy(&host, &images.proxy);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, CA).expect("ca.pem");

    // The custom certificate where Kamal uploads it (apps-config/<service>/tls/<role>/).
    ok(&host.run(
        "mkdir -p .kamal/proxy/apps-config/rs-tls/tls/web && \
         cat > .kamal/proxy/apps-config/rs-tls/tls/web/cert.pem",
        Some(CERT.as_bytes()),
    ));
    ok(&host.run(
        "cat > .kamal/proxy/apps-config/rs-tls/tls/web/key.pem",
        Some(KEY.as_bytes()),
    ));
    let ids: Vec<String> = images
        .app
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, image)| run_app(&host, &format!("rs-{}", i + 1), image, ""))
        .collect();
    host.sh(&deploy_command(
        "rs-a",
        &ids[0],
        "--host=\"a.restart.test\"",
    ));
    host.sh(&deploy_command(
        "rs-b",
        &ids[1],
        "--host=\"b.restart.test\"",
    ));
    host.sh(&deploy_command(
        "rs-c",
        &ids[2],
        "--host=\"a.restart.test\" --path-prefix=\"/c\"",
    ));
    host.sh(&deploy_command(
        "rs-tls",
        &ids[3],
        "--host=\"example.com\" --host=\"www.example.com\" --tls \
         --tls-certificate-path=\"/home/kamal-proxy/.apps-config/rs-tls/tls/web/cert.pem\" \
         --tls-private-key-path=\"/home/kamal-proxy/.apps-config/rs-tls/tls/web/key.pem\"",
    ));
    host.sh(&deploy_command(
        "rs-m",
        &ids[0],
        "--host=\"m.restart.test\"",
    ));
    host.sh("docker exec kamal-proxy kamal-proxy stop rs-m --drain-timeout=\"1s\" --message=\"Back at noon\"");
    assert_routes(&host, &ca, "after the deploys");

    // Killed and started again: the same container, state from the volume.
    host.sh("docker kill kamal-proxy >/dev/null && docker start kamal-proxy >/dev/null");
    assert_routes(&host, &ca, "after docker kill + docker start");

    // Replaced by a new container on the same volume (what `kamal proxy reboot` does).
    host.sh("docker container stop kamal-proxy >/dev/null && \
         docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy \
         >/dev/null");
    run_proxy(&host, &images.proxy);
    assert_routes(&host, &ca, "after replacing the container");
    let list = host.sh("docker exec kamal-proxy kamal-proxy list");
    for service in ["rs-a", "rs-b", "rs-c", "rs-tls", "rs-m"] {
        assert!(list.contains(service), "{service} in {list}");
    }
    let logs = text(&host.run("docker logs kamal-proxy 2>&1", None).stdout);
    assert!(logs.contains("Restored saved state"), "{logs}");
    clean_host(&host, prefix);
}
