//! Pull-request previews through the public loader: `x-dhow-preview` is ignored by a normal
//! load (as Kamal ignores `x-` keys), and `load_preview` derives a configuration in which every
//! name carries `pr-<N>`, only the chosen roles and accessories remain, on configured hosts only.

use std::collections::BTreeMap;

use dhow_core::cmd::for_log;
use dhow_core::config::preview::{self, WhenFull};
use dhow_core::config::{self, Config, ConfigErrors, LoadInput, NoTemplates, SourceFile};
use dhow_core::docker::app::App;

const APP: &str = r"service: shop
image: acme/shop
registry:
  server: 127.0.0.1:5000
  username: ci
  password: [KAMAL_REGISTRY_PASSWORD]
builder:
  arch: amd64
servers:
  web:
    hosts: [10.0.0.1, 10.0.0.2]
    labels:
      team: web
  workers:
    hosts: [10.0.0.3]
    cmd: bin/jobs
proxy:
  host: shop.example.com
  app_port: 3000
env:
  clear:
    DATABASE_URL: postgres://shop-db:5432/shop
    REDIS_HOST: shop-redis-replica
  secret: [SECRET_KEY_BASE]
volumes:
  - uploads:/rails/uploads
  - /srv/shop/tmp:/rails/tmp
accessories:
  db:
    image: postgres:16
    host: 10.0.0.3
    port: 5432
    volumes: [pgdata:/var/lib/postgresql/data]
    directories: [data:/data]
  redis:
    image: redis:7
    host: 10.0.0.3
";

const PREVIEW: &str = r"x-dhow-preview:
  domain: preview.example.com
  accessories: [db]
  hosts: [10.0.0.2]
  memory: 512m
  cpus: 0.5
  max: 3
  when_full: remove_oldest
  ttl: 3d
";

fn input<'a>(text: &'a str, env: &'a BTreeMap<String, String>) -> LoadInput<'a> {
    LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(text),
        },
        destination: None,
        env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    }
}

fn preview(text: &str, pr: u64) -> Result<(Config, preview::PreviewSettings), ConfigErrors> {
    let env = BTreeMap::new();
    config::load_preview(&input(text, &env), pr)
}

fn messages(text: &str) -> Vec<String> {
    match preview(text, 7) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e
            .errors
            .iter()
            .map(|e| format!("{} @{}", e, e.key_path))
            .collect(),
    }
}

#[test]
fn a_normal_load_ignores_the_preview_block() {
    let env = BTreeMap::new();
    let text = format!("{APP}{PREVIEW}");
    let config = config::load(&input(&text, &env)).expect("loads");
    assert_eq!(config.service, "shop");
    assert_eq!(config.role_names(), vec!["web", "workers"]);
    assert_eq!(config.accessories.len(), 2);
}

#[test]
fn every_name_of_a_preview_carries_its_number() {
    let (config, settings) = preview(&format!("{APP}{PREVIEW}"), 7).expect("preview loads");
    assert_eq!(settings.max, 3);
    assert_eq!(settings.when_full, WhenFull::RemoveOldest);
    assert_eq!(settings.ttl_seconds, 3 * 86_400);
    assert!(!settings.forks);

    assert_eq!(config.service, "shop-pr-7");
    assert_eq!(config.repository(), "127.0.0.1:5000/acme/shop");
    assert_eq!(config.role_names(), vec!["web"]);
    let web = config.role("web").expect("web");
    let hosts: Vec<&str> = web.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, vec!["10.0.0.2"]);
    assert_eq!(config.proxy.hosts(), vec!["pr-7.preview.example.com"]);
    assert_eq!(config.env_directory(), ".kamal/apps/shop-pr-7/env");
    assert_eq!(
        config.latest_tag(),
        "latest-pr-7",
        "production's latest tag never moves"
    );
    assert_eq!(
        config.scope().latest_image(),
        "127.0.0.1:5000/acme/shop:latest-pr-7"
    );

    let accessories: Vec<(&str, &str, Vec<String>)> = config
        .accessories
        .iter()
        .map(|a| (a.name.as_str(), a.service_name.as_str(), a.hosts.clone()))
        .collect();
    assert_eq!(
        accessories,
        vec![("db", "shop-pr-7-db", vec!["10.0.0.2".to_owned()])]
    );
    let db = config.accessory("db").expect("db");
    assert_eq!(db.port, None, "a preview publishes no fixed host port");
    assert_eq!(db.volumes, vec!["pgdata-pr-7:/var/lib/postgresql/data"]);
    assert!(
        db.labels
            .contains(&("dhow.preview".to_owned(), "7".to_owned())),
        "{:?}",
        db.labels
    );
    assert!(preview::unmarked_names(&config, 7).is_empty());

    let env = config.env_for("web", "10.0.0.2");
    let clear: BTreeMap<&str, &str> = env
        .clear
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(clear["DATABASE_URL"], "postgres://shop-pr-7-db:5432/shop");
    assert_eq!(clear["REDIS_HOST"], "shop-redis-replica");
    assert_eq!(clear["DHOW_PREVIEW"], "7");
    assert_eq!(clear["DHOW_PREVIEW_URL"], "http://pr-7.preview.example.com");
    assert_eq!(env.secret_keys, vec!["SECRET_KEY_BASE"]);

    let run = for_log(&App::new(&config, web, "abc123").run("10.0.0.2", None));
    for expected in [
        "--name shop-pr-7-web-abc123",
        "--env-file .kamal/apps/shop-pr-7/env/roles/web.env",
        "--volume uploads-pr-7:/rails/uploads",
        "--volume /srv/shop/tmp-pr-7:/rails/tmp",
        "--label service=\"shop-pr-7\"",
        "--label dhow.preview=\"7\"",
        "--memory \"512m\"",
        "--cpus \"0.5\"",
        "127.0.0.1:5000/acme/shop:abc123",
    ] {
        assert!(run.contains(expected), "{expected} not in\n{run}");
    }
    assert!(!run.contains("--volume uploads:"), "{run}");
}

#[test]
fn a_path_prefix_preview_keeps_the_app_host() {
    let text = format!("{APP}x-dhow-preview:\n  path_prefix: true\n");
    let (config, settings) = preview(&text, 12).expect("loads");
    assert!(settings.path_prefix);
    assert_eq!(config.proxy.hosts(), vec!["shop.example.com"]);
    assert_eq!(
        config.proxy.raw.get("path_prefix").and_then(|n| n.as_str()),
        Some("/pr-12")
    );
    assert_eq!(config.role_names(), vec!["web"]);
    let web = config.role("web").expect("web");
    assert_eq!(
        web.hosts.len(),
        2,
        "without `hosts` the role keeps its hosts"
    );
    assert!(config.accessories.is_empty());
}

#[test]
fn previews_refuse_unknown_roles_hosts_and_keys_with_their_paths() {
    let text = format!(
        "{APP}x-dhow-preview:\n  domain: p.example.com\n  roles: [web, cron]\n  hosts: [10.9.9.9]\n  accessories: [mq]\n  colour: blue\n  ttl: soon\n"
    );
    let all = messages(&text).join("\n");
    for expected in [
        "unknown key: colour @x-dhow-preview/colour",
        "should be a duration such as 7d, 12h or 30m @x-dhow-preview/ttl",
    ] {
        assert!(all.contains(expected), "{expected} not in\n{all}");
    }
    // Settings are checked before the derivation; fix them to see the derivation's errors.
    let text = format!(
        "{APP}x-dhow-preview:\n  domain: p.example.com\n  roles: [web, cron]\n  hosts: [10.9.9.9]\n  accessories: [mq]\n"
    );
    let all = messages(&text).join("\n");
    for expected in [
        "10.9.9.9 is not a host of this configuration; previews run only on its hosts (10.0.0.1, 10.0.0.2, 10.0.0.3) @x-dhow-preview/hosts/0",
        "cron is not a role of this configuration (roles: web, workers) @x-dhow-preview/roles/1",
        "mq is not an accessory of this configuration @x-dhow-preview/accessories/0",
        "role web has none of the preview hosts @x-dhow-preview/hosts",
    ] {
        assert!(all.contains(expected), "{expected} not in\n{all}");
    }
}

#[test]
fn a_preview_needs_the_block_and_a_domain_or_prefix() {
    let all = messages(APP).join("\n");
    assert!(all.contains("x-dhow-preview: is not set"), "{all}");
    let all = messages(&format!("{APP}x-dhow-preview:\n  max: 2\n")).join("\n");
    assert!(all.contains("needs `domain`"), "{all}");
    let all = messages(&format!("{APP}x-dhow-preview: true\n")).join("\n");
    assert!(all.contains("should be a map of preview settings"), "{all}");
}

#[test]
fn list_form_servers_become_the_web_role() {
    let text = "service: blog\nimage: me/blog\nregistry:\n  username: u\n  password: [P]\nbuilder:\n  arch: amd64\nservers: [10.0.0.1, 10.0.0.2]\nproxy:\n  host: blog.example.com\nx-dhow-preview:\n  domain: preview.blog.example.com\n  hosts: [10.0.0.1]\n";
    let (config, _) = preview(text, 3).expect("loads");
    assert_eq!(config.service, "blog-pr-3");
    assert_eq!(config.role_names(), vec!["web"]);
    assert_eq!(config.proxy.hosts(), vec!["pr-3.preview.blog.example.com"]);
    let hosts: Vec<&str> = config
        .role("web")
        .expect("web")
        .hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(hosts, vec!["10.0.0.1"]);
}
