//! Unit tests per configuration section and per cross-field rule, through the public loader.

use std::collections::BTreeMap;

use dhow_core::config::{
    self, BootLimit, Config, ConfigErrors, Credential, HooksOutput, LoadInput, NoTemplates,
    SourceFile, SshConfigFiles, SshProxy, Ssl,
};

const BASE: &str = "service: app\nimage: dhh/app\nregistry:\n  username: user\n  password: [KAMAL_REGISTRY_PASSWORD]\nbuilder:\n  arch: amd64\n";

fn load_with(
    text: &str,
    destination: Option<(&str, Option<&str>)>,
    version: &str,
) -> Result<Config, ConfigErrors> {
    let env = BTreeMap::new();
    let dest_name = destination.map(|(d, _)| config::destination_file_name("config/deploy.yml", d));
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(text),
        },
        destination: destination
            .zip(dest_name.as_deref())
            .map(|((d, t), n)| (d, SourceFile { name: n, text: t })),
        env: &env,
        running_version: version,
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    config::load(&input)
}

fn load(extra: &str) -> Result<Config, ConfigErrors> {
    load_with(&format!("{BASE}{extra}"), None, "2.11.0")
}

fn ok(extra: &str) -> Config {
    match load(extra) {
        Ok(c) => c,
        Err(e) => panic!("{}", e.render()),
    }
}

fn errors(extra: &str) -> Vec<String> {
    match load(extra) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn root_defaults_and_derived_values() {
    let c = ok("servers: [1.1.1.1, 1.1.1.2]\n");
    assert_eq!(c.retain_containers, 5);
    assert_eq!(c.readiness_delay, 7);
    assert_eq!((c.deploy_timeout, c.drain_timeout), (30, 30));
    assert_eq!(c.hooks_path, ".kamal/hooks");
    assert_eq!(c.secrets_path, ".kamal/secrets");
    assert_eq!(c.run_directory(), ".kamal");
    assert_eq!(c.repository(), "dhh/app");
    assert_eq!(c.absolute_image("abc"), "dhh/app:abc");
    assert_eq!(c.latest_tag(), "latest");
    assert_eq!(c.service_and_destination(), "app");
    assert_eq!(c.container_prefix("web"), "app-web");
    assert_eq!(c.container_name("web", "abc"), "app-web-abc");
    assert_eq!(Config::abbreviated_version("0123456789"), "0123456");
    assert_eq!(
        Config::abbreviated_version("0123456789_uncommitted_x"),
        "0123456789_uncommitted_x"
    );
    assert_eq!(c.primary_host(), Some("1.1.1.1"));
    assert_eq!(c.role_names(), ["web"]);
    assert_eq!(
        c.registry.password,
        Some(Credential::Secret("KAMAL_REGISTRY_PASSWORD".into()))
    );
    assert_eq!(c.registry.username, Some(Credential::Clear("user".into())));
    assert_eq!(
        c.secrets_files(),
        [".kamal/secrets-common", ".kamal/secrets"]
    );
}

#[test]
fn servers_in_three_shapes_with_tags() {
    let c = ok("servers:\n  - 1.1.1.1\n  - 1.1.1.2: blue\n  - 1.1.1.3: [red, blue]\n");
    assert_eq!(
        c.role("web").unwrap().host_names(),
        ["1.1.1.1", "1.1.1.2", "1.1.1.3"]
    );
    assert_eq!(c.host_tags("web", "1.1.1.3"), ["red", "blue"]);
    let c = ok(
        "servers:\n  workers: [1.1.1.3]\n  web:\n    hosts: [1.1.1.1, {1.1.1.2: t}]\n    cmd: bin/web\n",
    );
    assert_eq!(c.role_names(), ["web", "workers"]);
    assert_eq!(c.role("web").unwrap().cmd.as_deref(), Some("bin/web"));
    assert_eq!(c.all_hosts(), ["1.1.1.1", "1.1.1.2", "1.1.1.3"]);
    let c = ok("primary_role: workers\nservers:\n  workers: [1.1.1.3]\n  alpha: [1.1.1.1]\n");
    let order: Vec<&str> = c
        .roles_primary_first()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(order, ["workers", "alpha"]);
    assert_eq!(c.primary_host(), Some("1.1.1.3"));
}

#[test]
fn env_clear_secret_tags_and_aliases() {
    let c = ok(
        "servers:\n  web:\n    hosts: [{1.1.1.1: [blue]}]\n    env:\n      clear: {ROLE: web, PORT: 3000}\n      secret: [R]\nenv:\n  clear: {A: a, ROLE: root}\n  secret: [DB_PASSWORD:MAIN_DB_PASSWORD, S]\n  tags:\n    blue: {TAGGED: 'yes'}\n",
    );
    let env = c.env_for("web", "1.1.1.1");
    assert_eq!(
        env.clear,
        [
            ("A".into(), "a".into()),
            ("ROLE".into(), "web".into()),
            ("PORT".into(), "3000".into()),
            ("TAGGED".into(), "yes".into())
        ]
    );
    let secrets: Vec<(String, String)> = env
        .secrets()
        .into_iter()
        .map(|s| (s.name, s.secret))
        .collect();
    assert_eq!(
        secrets,
        [
            ("DB_PASSWORD".into(), "MAIN_DB_PASSWORD".into()),
            ("S".into(), "S".into()),
            ("R".into(), "R".into())
        ]
    );
}

#[test]
fn env_validation_messages() {
    assert_eq!(
        errors("servers: [a]\nenv:\n  clear: {A: [x]}\n  secret: A\n"),
        [
            "env/clear/A: should be a string",
            "env/secret: should be an array"
        ]
    );
    assert_eq!(
        errors("servers:\n  web:\n    hosts: [a]\n    env:\n      tags: {x: {A: b}}\n"),
        ["servers/web/env: tags are only allowed in the root env"]
    );
}

#[test]
fn registry_local_and_missing() {
    let c = load_with(
        "service: app\nregistry:\n  server: localhost:5555\nservers: [a]\nbuilder: {arch: amd64}\n",
        None,
        "2.11.0",
    )
    .unwrap();
    assert!(c.registry.is_local());
    assert_eq!(c.registry.local_port(), Some(5555));
    assert_eq!(c.image, "app");
    assert_eq!(c.repository(), "localhost:5555/app");
    let e = load_with(
        "service: app\nimage: x\nservers: [a]\nbuilder: {arch: amd64}\n",
        None,
        "2.11.0",
    )
    .unwrap_err();
    let messages: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "registry/username: is required",
            "registry/password: is required",
            "Missing required configuration for registry"
        ]
    );
}

#[test]
fn builder_settings() {
    let c = ok("servers: [a]\n");
    assert_eq!(c.builder.arches, ["amd64"]);
    assert_eq!(c.builder.driver, "docker-container");
    assert_eq!(c.builder.dockerfile, "Dockerfile");
    assert!(c.builder.local);
    let c = load_with(
        "service: app\nimage: i\nregistry: {username: u, password: p}\nservers: [a]\nbuilder:\n  arch: [amd64, arm64]\n  remote: ssh://b\n  cache: {type: gha, options: mode=max}\n  args: {A: 1}\n  secrets: [S]\n",
        None,
        "2.11.0",
    )
    .unwrap();
    assert_eq!(c.builder.local_arches(Some("amd64")), ["amd64"]);
    assert_eq!(c.builder.remote_arches(Some("amd64")), ["arm64"]);
    assert_eq!(c.builder.cache.as_ref().unwrap().kind, "gha");
    assert_eq!(c.builder.args, [("A".to_string(), "1".to_string())]);
    assert_eq!(
        load_with(
            "service: app\nimage: i\nregistry: {username: u, password: p}\nservers: [a]\n",
            None,
            "2.11.0"
        )
        .unwrap_err()
        .errors[0]
            .to_string(),
        "builder: Builder arch not set"
    );
}

#[test]
fn proxy_per_role_merge_and_defaults() {
    let c = ok(
        "servers:\n  web: [a]\n  api:\n    hosts: [b]\n    proxy:\n      host: api.example.com\n      app_port: 4000\n  jobs: [c]\nproxy:\n  host: example.com\n  healthcheck: {path: /health}\n",
    );
    let web = c.role("web").unwrap().proxy.as_ref().unwrap();
    assert_eq!(web.hosts(), ["example.com"]);
    assert_eq!(web.app_port(), 80);
    assert_eq!(
        web.log_request_headers(),
        ["Cache-Control", "Last-Modified", "User-Agent"]
    );
    assert!(web.buffering("requests"));
    let api = c.role("api").unwrap().proxy.as_ref().unwrap();
    assert_eq!(api.hosts(), ["api.example.com"]);
    assert_eq!(api.app_port(), 4000);
    assert_eq!(api.healthcheck_path().as_deref(), Some("/health"));
    assert!(c.role("jobs").unwrap().proxy.is_none());
    let c = ok("servers:\n  web:\n    hosts: [a]\n    proxy: false\n");
    assert!(c.role("web").unwrap().proxy.is_none());
    let c = ok(
        "servers: [a]\nproxy:\n  host: a.com,b.com\n  ssl: {certificate_pem: C, private_key_pem: K}\n",
    );
    let p = c.role("web").unwrap().proxy.as_ref().unwrap();
    assert_eq!(p.hosts(), ["a.com", "b.com"]);
    assert_eq!(
        p.ssl(),
        Ssl::Custom {
            certificate_pem: "C".into(),
            private_key_pem: "K".into()
        }
    );
}

#[test]
fn ssl_rules() {
    assert_eq!(
        errors("servers: [a]\nproxy:\n  ssl: true\n"),
        ["proxy: Must set a host to enable automatic SSL"]
    );
    assert_eq!(
        errors("servers: [a, b]\nproxy:\n  ssl: true\n  host: x.com\n"),
        [
            "SSL is only supported on a single server unless you provide custom certificates, found 2 servers for role web"
        ]
    );
    assert_eq!(
        errors(
            "servers:\n  web: [a]\n  api:\n    hosts: [b]\n    proxy: true\nproxy:\n  ssl: true\n  host: x.com\n"
        ),
        ["Different roles can't share the same host for SSL: x.com"]
    );
    assert_eq!(
        errors("servers: [a]\nproxy:\n  host: x\n  hosts: [y]\n"),
        ["proxy: Specify one of 'host' or 'hosts', not both"]
    );
    assert_eq!(
        errors("servers: [a]\nproxy: false\n"),
        ["proxy: should be a hash"]
    );
}

#[test]
fn proxy_run_rules() {
    assert_eq!(
        errors("servers: [a]\nproxy:\n  run: {publish: false, http_port: 8080}\n"),
        ["proxy: Cannot set http_port, https_port or bind_ips when publish is false"]
    );
    assert_eq!(
        errors(
            "servers:\n  web: [a]\n  api:\n    hosts: [a]\n    proxy:\n      run: {http_port: 81}\nproxy:\n  run: {http_port: 80}\n"
        ),
        ["Conflicting proxy run configurations for host a"]
    );
    let c = ok("servers: [a]\nproxy:\n  run: {http_port: 8080, version: v0.9.3, registry: r.io}\n");
    let run = c.proxy_run("a").unwrap();
    assert_eq!(run.http_port(), 8080);
    assert_eq!(run.https_port(), 443);
    assert_eq!(run.image(), "r.io/basecamp/kamal-proxy:v0.9.3");
}

#[test]
fn accessories_hosts_files_and_rules() {
    let c = ok(
        "servers:\n  web: [{1.1.1.1: db}, 1.1.1.2]\n  jobs:\n    hosts: [{1.1.1.3: db}]\naccessories:\n  mysql:\n    image: mysql:8\n    tag: db\n    port: 3306\n    files:\n      - my.cnf:/etc/mysql/my.cnf\n      - {local: a.key, remote: /etc/a.key, mode: '0600', owner: 'mysql:mysql'}\n    directories: ['data:/var/lib/mysql:z']\n    registry: {server: ghcr.io, username: u, password: [P]}\n  redis:\n    image: redis\n    roles: [web, jobs]\n",
    );
    let mysql = c.accessory("mysql").unwrap();
    assert_eq!(
        mysql.hosts,
        ["1.1.1.1"],
        "tags only match list-form roles, as in Kamal"
    );
    assert_eq!(mysql.port.as_deref(), Some("3306:3306"));
    assert_eq!(mysql.service_name, "app-mysql");
    assert_eq!(mysql.image, "ghcr.io/mysql:8");
    assert_eq!(mysql.files[0].mode.as_deref(), Some("755"));
    assert_eq!(mysql.files[1].mode.as_deref(), Some("0600"));
    assert_eq!(mysql.directories[0].options.as_deref(), Some("z"));
    assert_eq!(mysql.directories[0].mode, None);
    assert_eq!(
        c.accessory("redis").unwrap().hosts,
        ["1.1.1.1", "1.1.1.2", "1.1.1.3"]
    );
    assert_eq!(c.accessory("redis").unwrap().network, "kamal");
    assert_eq!(
        errors(
            "servers: [a]\naccessories:\n  db:\n    image: x\n    roles: [web, nope]\n  cache:\n    image: y\n    role: jobz\n"
        ),
        [
            "accessories/db: unknown roles nope",
            "accessories/cache: unknown role jobz"
        ]
    );
    assert_eq!(
        errors(
            "servers: [a]\naccessories:\n  db:\n    image: x\n    host: a\n    options: {restart: always}\n"
        ),
        ["accessories/db: Cannot set restart policy in docker options, unless-stopped is required"]
    );
}

#[test]
fn boot_ssh_sshkit_logging_aliases() {
    let c = ok(
        "servers: [a, b, c, d]\nboot: {limit: 25%, wait: 2}\nssh:\n  user: app\n  port: '2222'\n  proxy: bastion\n  keys: [k1]\n  config: false\nsshkit: {max_concurrent_starts: 10}\nlogging: {driver: json-file, options: {max-size: 100m}}\naliases:\n  console: app exec -i bin/rails console\nhooks_output: {pre-deploy: :verbose}\n",
    );
    assert_eq!(c.boot.limit, Some(BootLimit::Percent(25)));
    assert_eq!(c.boot.limit_for(4), Some(1));
    assert_eq!(c.ssh.user, "app");
    assert_eq!(c.ssh.port, "2222");
    assert_eq!(c.ssh.proxy, Some(SshProxy::Jump("root@bastion".into())));
    assert_eq!(c.ssh.config, SshConfigFiles::Default(false));
    assert_eq!(c.sshkit.max_concurrent_starts, 10);
    assert_eq!(c.sshkit.pool_idle_timeout, 900);
    assert_eq!(
        c.logging.args(),
        [
            "--log-driver",
            "\"json-file\"",
            "--log-opt",
            "max-size=\"100m\""
        ]
    );
    assert_eq!(
        c.aliases,
        [(
            "console".to_string(),
            "app exec -i bin/rails console".to_string()
        )]
    );
    assert_eq!(
        c.hooks_output,
        HooksOutput::PerHook(vec![("pre-deploy".into(), "verbose".into())])
    );
    assert_eq!(c.hooks_output_for("pre-deploy"), Some("verbose"));
    assert_eq!(
        errors("servers: [a]\nhooks_output: loud\n"),
        ["Invalid hooks_output 'loud', must be one of: quiet, verbose"]
    );
    assert_eq!(
        errors("servers: [a]\naliases:\n  deploy: app details\n"),
        ["aliases/deploy: Alias 'deploy' conflicts with a built-in command."]
    );
}

#[test]
fn required_keys_and_roles() {
    assert_eq!(
        load_with("image: x\n", None, "2.11.0")
            .unwrap_err()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "registry/username: is required",
            "registry/password: is required",
            "builder: Builder arch not set",
            "Missing required configuration for service"
        ]
    );
    assert_eq!(errors(""), ["No servers or accessories specified"]);
    assert_eq!(
        errors("servers:\n  jobs: [a]\n"),
        ["The primary_role web isn't defined"]
    );
    assert_eq!(
        errors("servers:\n  web: []\n"),
        ["No servers specified for the web primary_role"]
    );
    assert_eq!(
        errors("servers:\n  web: [a]\n  jobs: []\n"),
        [
            "No servers specified for the jobs role. You can ignore this with allow_empty_roles: true"
        ]
    );
    ok("servers:\n  web: [a]\n  jobs: []\nallow_empty_roles: true\n");
    assert_eq!(
        errors("servers: [a]\nservice: my app\n"),
        ["Service name can only include alphanumeric characters, hyphens, and underscores"]
    );
    assert_eq!(
        errors("servers: [a]\nretain_containers: 0\n"),
        ["Must retain at least 1 container"]
    );
    assert_eq!(
        errors("servers: [a]\nminimum_version: 2.12.0\n"),
        ["Current version is 2.11.0, minimum required is 2.12.0"]
    );
    ok("servers: [a]\nminimum_version: 2.11.0\n");
}

#[test]
fn local_registry_with_remote_builder_needs_ssh() {
    let text = "service: app\nregistry: {server: 'localhost:5000'}\nservers: [a]\nbuilder: {arch: arm64, remote: 'tcp://b:2375'}\n";
    let e = load_with(text, None, "2.11.0").unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "Local registry with remote builder requires an SSH URL (e.g., ssh://user@host)"
    );
    assert!(load_with(&text.replace("tcp://b:2375", "ssh://b"), None, "2.11.0").is_ok());
}

#[test]
fn destinations_merge_and_require() {
    let base =
        format!("{BASE}servers: [a]\nenv:\n  clear: {{A: 1, B: 2}}\nrequire_destination: true\n");
    let e = load_with(&base, None, "2.11.0").unwrap_err();
    assert_eq!(e.errors[0].to_string(), "You must specify a destination");
    let c = load_with(
        &base,
        Some(("staging", Some("servers: [b, c]\nenv:\n  clear: {B: 3}\n"))),
        "2.11.0",
    )
    .unwrap();
    assert_eq!(c.all_hosts(), ["b", "c"]);
    assert_eq!(
        c.env.clear,
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "3".to_string())
        ]
    );
    assert_eq!(c.latest_tag(), "latest-staging");
    assert_eq!(c.container_prefix("web"), "app-web-staging");
    assert_eq!(
        c.secrets_files(),
        [".kamal/secrets-common", ".kamal/secrets.staging"]
    );
    let e = load_with(&base, Some(("prod", None)), "2.11.0").unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "Configuration file not found in config/deploy.prod.yml"
    );
}

#[test]
fn extensions_anchors_and_unknown_keys() {
    let c = ok("x-hosts: &hosts [a, b]\nservers: *hosts\n");
    assert_eq!(c.all_hosts(), ["a", "b"]);
    let e = load("servers: [a]\nservice_name: x\nproxy:\n  x-foo: 1\n").unwrap_err();
    assert_eq!(e.errors[0].to_string(), "unknown key: service_name");
    assert_eq!(e.errors[0].hint.as_deref(), Some("did you mean `service`?"));
    assert_eq!(e.errors[1].to_string(), "proxy: unknown key: x-foo");
}

#[test]
fn erb_is_refused_without_a_renderer() {
    let e = load("servers: [<%= ENV['HOST'] %>]\n").unwrap_err();
    assert_eq!(e.errors[0].kind, config::ErrorKind::Template);
    assert_eq!(e.errors[0].span.as_ref().unwrap().line, 8);
}

#[test]
fn traefik_hooks_are_rejected() {
    let c = ok("servers: [a]\n");
    assert!(c.check_hook_files(&["pre-deploy".into()]).is_ok());
    assert_eq!(
        c.check_hook_files(&["pre-traefik-reboot".into(), "post-traefik-reboot".into()])
            .unwrap_err()
            .to_string(),
        "Found pre-traefik-reboot, post-traefik-reboot, these should be renamed to (pre|post)-proxy-reboot"
    );
}

#[test]
fn every_error_is_collected_with_positions() {
    let e = load("servers:\n  web:\n    hosts: [a]\n    labels: {role: x}\n    optoins: {}\nretain_containers: x\n").unwrap_err();
    let found: Vec<(String, usize)> = e
        .errors
        .iter()
        .map(|x| (x.to_string(), x.span.as_ref().map_or(0, |s| s.line)))
        .collect();
    assert_eq!(
        found,
        [
            ("retain_containers: should be an integer".to_string(), 13),
            ("servers/web: unknown key: optoins".to_string(), 12),
            ("servers/web/labels/role: invalid label. destination, role, and service are reserved labels".to_string(), 11),
        ]
    );
    assert_eq!(e.errors[1].hint.as_deref(), Some("did you mean `options`?"));
}

#[test]
fn docs_sections() {
    assert_eq!(config::SECTIONS.len(), 13);
    assert!(config::docs(Some("proxy")).unwrap().contains("app_port"));
    assert!(
        config::docs(None)
            .unwrap()
            .starts_with("# Kamal Configuration")
    );
}

#[test]
fn secret_references_name_every_secret_and_where() {
    let c = ok(
        "servers:\n  web:\n    hosts: [a]\n    env: {secret: [ROLE_S]}\nenv:\n  secret: [DB_PASSWORD:MAIN_DB]\n  tags:\n    t: {secret: [TAG_S]}\nproxy:\n  host: x\n  ssl: {certificate_pem: CERT, private_key_pem: KEY}\nbuilder:\n  arch: amd64\n  secrets: [GITHUB_TOKEN]\nssh:\n  key_data: [SSH_KEY]\naccessories:\n  db:\n    image: x\n    host: a\n    env: {secret: [MYSQL_PASSWORD]}\n    registry: {server: r.io, username: [R_USER], password: [R_PASS]}\n",
    );
    let refs: Vec<(String, String)> = c.secret_references();
    let expect = |s: &str, p: &str| {
        assert!(
            refs.contains(&(s.to_string(), p.to_string())),
            "{s} at {p} in {refs:?}"
        );
    };
    expect("KAMAL_REGISTRY_PASSWORD", "registry/password");
    expect("MAIN_DB", "env/secret");
    expect("TAG_S", "env/tags/t/secret");
    expect("ROLE_S", "servers/web/env/secret");
    expect("CERT", "servers/web/proxy/ssl/certificate_pem");
    expect("KEY", "servers/web/proxy/ssl/private_key_pem");
    expect("MYSQL_PASSWORD", "accessories/db/env/secret");
    expect("R_USER", "accessories/db/registry/username");
    expect("R_PASS", "accessories/db/registry/password");
    expect("GITHUB_TOKEN", "builder/secrets");
    expect("SSH_KEY", "ssh/key_data");
    assert!(!refs.iter().any(|(s, _)| s == "user" || s == "DB_PASSWORD"));
}

#[test]
fn kamal_1_keys_get_a_migration_hint() {
    let e = load("servers: [a]\ntraefik: {}\nhealthcheck: {path: /up}\n").unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "unknown keys: traefik, healthcheck"
    );
    let hint = e.errors[0].hint.as_deref().unwrap();
    assert!(
        hint.contains("`traefik`: Kamal 2 replaced Traefik with kamal-proxy"),
        "{hint}"
    );
    assert!(
        hint.contains("`healthcheck`: Kamal 2 checks health through the proxy"),
        "{hint}"
    );
}
