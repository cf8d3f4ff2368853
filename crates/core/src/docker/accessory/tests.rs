//! Kamal's `test/commands/accessory_test.rb` line for line (2.11's strings where 2.12 differs),
//! plus the boot lines of `test/cli/accessory_test.rb` (files, directories, `KAMAL_HOST`).

use std::collections::BTreeMap;

use super::*;
use crate::cmd::{for_exec, for_log};
use crate::config::{LoadInput, NoTemplates, SourceFile};

const COMMANDS_FIXTURE: &str = r#"service: app
image: dhh/app
registry: {server: private.registry, username: dhh, password: secret}
servers: [1.1.1.1]
builder: {arch: amd64}
accessories:
  mysql:
    image: private.registry/mysql:8.0
    host: 1.1.1.5
    port: "127.0.0.1:3306:3306"
    env:
      clear:
        MYSQL_ROOT_HOST: "%"
      secret:
        - MYSQL_ROOT_PASSWORD
    options:
      cpus: "4"
      memory: 2GB
  redis:
    image: redis:latest
    host: 1.1.1.6
    port: "127.0.0.1:6379:6379"
    labels:
      cache: "true"
    env:
      SOMETHING: else
    volumes:
      - /var/lib/redis:/data
  busybox:
    service: custom-busybox
    image: busybox:latest
    registry: {server: other.registry, username: user, password: pw}
    host: 1.1.1.7
    proxy:
      host: busybox.example.com
"#;

const CLI_FIXTURE: &str = r#"service: app
image: dhh/app
registry: {server: private.registry, username: user, password: pw}
servers: [1.1.1.1, 1.1.1.2]
builder: {arch: amd64}
accessories:
  mysql:
    image: private.registry/mysql:5.7
    host: 1.1.1.3
    port: 3306
    env:
      clear:
        MYSQL_ROOT_HOST: "%"
      secret:
        - MYSQL_ROOT_PASSWORD
    files:
      - test/fixtures/files/my.cnf:/etc/mysql/my.cnf
    directories:
      - data:/var/lib/mysql
  redis:
    image: redis:latest
    roles: [web]
    port: 6379
    directories:
      - data:/data
"#;

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

fn exec<'c>(config: &'c Config, name: &str, build: impl Fn(&Accessory<'c>) -> Command) -> String {
    let accessory = config.accessory(name).expect("accessory");
    for_exec(&build(&Accessory::new(config, accessory)))
}

fn commands() -> Config {
    load(COMMANDS_FIXTURE)
}

fn with(extra_yaml_edit: impl Fn(&str) -> String) -> Config {
    load(&extra_yaml_edit(COMMANDS_FIXTURE))
}

#[test]
fn run() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", |a| a.run(None)),
        "docker run --name app-mysql --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --publish 127.0.0.1:3306:3306 --env MYSQL_ROOT_HOST=\"%\" --env-file .kamal/apps/app/env/accessories/mysql.env --label service=\"app-mysql\" --cpus \"4\" --memory \"2GB\" private.registry/mysql:8.0"
    );
    assert_eq!(
        exec(&config, "redis", |a| a.run(None)),
        "docker run --name app-redis --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --publish 127.0.0.1:6379:6379 --env SOMETHING=\"else\" --env-file .kamal/apps/app/env/accessories/redis.env --volume /var/lib/redis:/data --label service=\"app-redis\" --label cache=\"true\" redis:latest"
    );
    assert_eq!(
        exec(&config, "busybox", |a| a.run(None)),
        "docker run --name custom-busybox --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --env-file .kamal/apps/app/env/accessories/busybox.env --label service=\"custom-busybox\" other.registry/busybox:latest"
    );
}

#[test]
fn run_with_logging_config() {
    let config = with(|text| {
        format!(
            "{text}logging:\n  driver: local\n  options:\n    max-size: 100m\n    max-file: 3\n"
        )
    });
    assert_eq!(
        exec(&config, "busybox", |a| a.run(None)),
        "docker run --name custom-busybox --detach --restart unless-stopped --network kamal --log-driver \"local\" --log-opt max-size=\"100m\" --log-opt max-file=\"3\" --env-file .kamal/apps/app/env/accessories/busybox.env --label service=\"custom-busybox\" other.registry/busybox:latest"
    );
}

#[test]
fn custom_restart_policy_is_refused_as_kamal_2_11() {
    let text = COMMANDS_FIXTURE.replace(
        "      memory: 2GB\n",
        "      memory: 2GB\n      restart: on-failure\n",
    );
    let env = BTreeMap::new();
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(&text),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    let errors = crate::config::load(&input).expect_err("restart is refused");
    assert!(
        format!("{errors:?}")
            .contains("Cannot set restart policy in docker options, unless-stopped is required"),
        "{errors:?}"
    );
}

#[test]
fn run_in_custom_network() {
    let config = with(|text| {
        text.replace(
            "    host: 1.1.1.5\n",
            "    host: 1.1.1.5\n    network: custom\n",
        )
    });
    assert_eq!(
        exec(&config, "mysql", |a| a.run(None)),
        "docker run --name app-mysql --detach --restart unless-stopped --network custom --log-opt max-size=\"10m\" --publish 127.0.0.1:3306:3306 --env MYSQL_ROOT_HOST=\"%\" --env-file .kamal/apps/app/env/accessories/mysql.env --label service=\"app-mysql\" --cpus \"4\" --memory \"2GB\" private.registry/mysql:8.0"
    );
}

#[test]
fn start_stop_info() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", Accessory::start),
        "docker container start app-mysql"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::stop),
        "docker container stop app-mysql"
    );
    assert_eq!(
        exec(&config, "mysql", |a| a.info(false, false)),
        "docker ps --filter label=service=app-mysql"
    );
    assert_eq!(
        exec(&config, "mysql", |a| a.info(true, true)),
        "docker ps -a -q --filter label=service=app-mysql"
    );
}

#[test]
fn execute_in_new_container() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", |a| a
            .execute_in_new_container("mysql -u root", None)),
        "docker run --rm --network kamal --env MYSQL_ROOT_HOST=\"%\" --env-file .kamal/apps/app/env/accessories/mysql.env --cpus \"4\" --memory \"2GB\" private.registry/mysql:8.0 mysql -u root"
    );
}

#[test]
fn execute_in_existing_container() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", |a| a
            .execute_in_existing_container("mysql -u root", None)),
        "docker exec app-mysql mysql -u root"
    );
}

#[test]
fn execute_over_ssh_with_a_terminal_or_piped_input() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", |a| a
            .execute_in_new_container("mysql -u root", Some(true))),
        "docker run -it --rm --network kamal --env MYSQL_ROOT_HOST=\"%\" --env-file .kamal/apps/app/env/accessories/mysql.env --cpus \"4\" --memory \"2GB\" private.registry/mysql:8.0 mysql -u root"
    );
    assert_eq!(
        exec(&config, "mysql", |a| a
            .execute_in_existing_container("mysql -u root", Some(true))),
        "docker exec -it app-mysql mysql -u root"
    );
    assert_eq!(
        exec(&config, "mysql", |a| a
            .execute_in_existing_container("mysql -u root", Some(false))),
        "docker exec -i app-mysql mysql -u root"
    );
}

#[test]
fn logs() {
    let config = commands();
    let logs = |options: LogOptions<'_>| exec(&config, "mysql", |a| a.logs(&options));
    assert_eq!(
        logs(LogOptions {
            timestamps: true,
            ..LogOptions::default()
        }),
        "docker logs app-mysql --timestamps 2>&1"
    );
    assert_eq!(
        logs(LogOptions {
            timestamps: true,
            since: Some("5m"),
            lines: Some(100),
            grep: Some("thing"),
            grep_options: None,
        }),
        "docker logs app-mysql  --since 5m  --tail 100 --timestamps 2>&1 | grep 'thing'"
    );
    assert_eq!(
        logs(LogOptions {
            timestamps: true,
            since: Some("5m"),
            lines: Some(100),
            grep: Some("thing"),
            grep_options: Some("-C 2"),
        }),
        "docker logs app-mysql  --since 5m  --tail 100 --timestamps 2>&1 | grep 'thing' -C 2"
    );
    assert_eq!(
        logs(LogOptions {
            timestamps: false,
            since: Some("5m"),
            lines: Some(100),
            grep: Some("thing"),
            grep_options: Some("-C 2"),
        }),
        "docker logs app-mysql  --since 5m  --tail 100 2>&1 | grep 'thing' -C 2"
    );
    // The CLI's default of 100 lines (no --since, no --grep).
    assert_eq!(
        logs(LogOptions {
            timestamps: true,
            lines: Some(100),
            ..LogOptions::default()
        }),
        "docker logs app-mysql  --tail 100 --timestamps 2>&1"
    );
}

#[test]
fn follow_logs_as_kamal_2_11() {
    let config = commands();
    let follow = |options: LogOptions<'_>| exec(&config, "mysql", |a| a.follow_logs(&options));
    assert_eq!(
        follow(LogOptions {
            timestamps: true,
            ..LogOptions::default()
        }),
        "docker logs app-mysql --timestamps --tail 10 --follow 2>&1"
    );
    assert_eq!(
        follow(LogOptions::default()),
        "docker logs app-mysql --tail 10 --follow 2>&1"
    );
    assert_eq!(
        follow(LogOptions {
            timestamps: true,
            grep: Some("hey"),
            ..LogOptions::default()
        }),
        "docker logs app-mysql --timestamps --tail 10 --follow 2>&1 | grep \"hey\""
    );
    assert_eq!(
        follow(LogOptions {
            timestamps: true,
            grep: Some("hey"),
            grep_options: Some("-C 2"),
            ..LogOptions::default()
        }),
        "docker logs app-mysql --timestamps --tail 10 --follow 2>&1 | grep \"hey\" -C 2"
    );
}

#[test]
fn remove_container_pull_and_remove_image() {
    let config = commands();
    assert_eq!(
        exec(&config, "mysql", Accessory::remove_container),
        "docker container prune --force --filter label=service=app-mysql"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::pull_image),
        "docker image pull private.registry/mysql:8.0"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::remove_image),
        "docker image rm --force private.registry/mysql:8.0"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::remove_service_directory),
        "rm -rf app-mysql"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::ensure_env_directory),
        "mkdir -p .kamal/apps/app/env/accessories"
    );
    assert_eq!(
        exec(&config, "mysql", Accessory::remove_env_file),
        "rm -f .kamal/apps/app/env/accessories/mysql.env"
    );
}

#[test]
fn proxy_deploy_and_remove() {
    let config = commands();
    assert_eq!(
        exec(&config, "busybox", |a| a
            .proxy_deploy("172.1.0.2", "999")
            .expect("proxied")),
        "docker exec kamal-proxy kamal-proxy deploy custom-busybox --target=\"172.1.0.2:80\" --host=\"busybox.example.com\" --deploy-timeout=\"30s\" --drain-timeout=\"30s\" --buffer-requests --buffer-responses --log-request-header=\"Cache-Control\" --log-request-header=\"Last-Modified\" --log-request-header=\"User-Agent\""
    );
    assert_eq!(
        exec(&config, "busybox", Accessory::proxy_remove),
        "docker exec kamal-proxy kamal-proxy remove custom-busybox"
    );
    assert_eq!(
        exec(&config, "busybox", Accessory::running_container_id),
        "docker container ls --filter 'name=^custom-busybox$' --quiet"
    );
    let mysql = config.accessory("mysql").expect("mysql");
    assert!(
        Accessory::new(&config, mysql)
            .proxy_deploy("x", "1")
            .is_none()
    );
}

#[test]
fn proxy_deploy_with_custom_tls_points_at_the_accessory_tls_directory() {
    let config = with(|text| {
        text.replace(
            "      host: busybox.example.com\n",
            "      host: busybox.example.com\n      ssl:\n        certificate_pem: CERT\n        private_key_pem: KEY\n",
        )
    });
    let command = exec(&config, "busybox", |a| {
        a.proxy_deploy("172.1.0.2", "999").expect("proxied")
    });
    assert!(
        command.contains(" --tls --tls-certificate-path=\"/home/kamal-proxy/.apps-config/app/tls/cert.pem\" --tls-private-key-path=\"/home/kamal-proxy/.apps-config/app/tls/key.pem\" "),
        "{command}"
    );
}

#[test]
fn cli_boot_run_with_files_directories_and_kamal_host() {
    let config = load(CLI_FIXTURE);
    assert_eq!(
        exec(&config, "mysql", |a| a.run(Some("1.1.1.3"))),
        "docker run --name app-mysql --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --publish 3306:3306 --env KAMAL_HOST=\"1.1.1.3\" --env MYSQL_ROOT_HOST=\"%\" --env-file .kamal/apps/app/env/accessories/mysql.env --volume $PWD/app-mysql/etc/mysql/my.cnf:/etc/mysql/my.cnf --volume $PWD/app-mysql/data:/var/lib/mysql --label service=\"app-mysql\" private.registry/mysql:5.7"
    );
    assert_eq!(
        exec(&config, "redis", |a| a.run(Some("1.1.1.1"))),
        "docker run --name app-redis --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --publish 6379:6379 --env KAMAL_HOST=\"1.1.1.1\" --env-file .kamal/apps/app/env/accessories/redis.env --volume $PWD/app-redis/data:/data --label service=\"app-redis\" redis:latest"
    );
    let redis = config.accessory("redis").expect("redis");
    assert_eq!(redis.hosts, ["1.1.1.1", "1.1.1.2"]);
}

#[test]
fn cli_upload_and_directories() {
    let config = load(CLI_FIXTURE);
    let mysql = Accessory::new(&config, config.accessory("mysql").expect("mysql"));
    let files = mysql.files();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(file.local, "test/fixtures/files/my.cnf");
    assert!(!file.erb);
    assert_eq!(file.host_path, "app-mysql/etc/mysql/my.cnf");
    assert_eq!(
        for_exec(&make_directory_for(&file.host_path)),
        "mkdir -p app-mysql/etc/mysql"
    );
    assert_eq!(
        for_exec(&chmod(file.mode.as_deref().expect("mode"), &file.host_path)),
        "chmod 755 app-mysql/etc/mysql/my.cnf"
    );
    let directories = mysql.directories();
    assert_eq!(directories.len(), 1);
    assert_eq!(
        for_exec(&make_directory(&directories[0].path)),
        "mkdir -p $PWD/app-mysql/data"
    );
    assert_eq!(directories[0].mode, None);
}

#[test]
fn file_and_directory_forms() {
    let config = load(
        r#"service: app
image: dhh/app
registry: {username: u, password: p}
servers: [1.1.1.1]
builder: {arch: amd64}
accessories:
  db:
    image: db:1
    host: 1.1.1.1
    files:
      - local: config/init.sql.erb
        remote: /docker-entrypoint-initdb.d/init.sql
        mode: "0600"
        owner: "999:999"
        options: ro
      - config/a.conf:/etc/a.conf:z
    directories:
      - local: /srv/data
        remote: /data
        mode: "0700"
        owner: "999"
      - logs:/var/log/db:rw
"#,
    );
    let db = Accessory::new(&config, config.accessory("db").expect("db"));
    let files = db.files();
    assert!(files[0].erb);
    assert_eq!(
        files[0].host_path,
        "app-db/docker-entrypoint-initdb.d/init.sql"
    );
    assert_eq!(files[0].mode.as_deref(), Some("0600"));
    assert_eq!(files[0].owner.as_deref(), Some("999:999"));
    assert_eq!(files[1].mode.as_deref(), Some("755"));
    let directories = db.directories();
    assert_eq!(directories[0].path, "/srv/data");
    assert_eq!(directories[1].path, "$PWD/app-db/logs");
    assert_eq!(
        for_exec(&chown("999", &directories[0].path)),
        "chown 999 /srv/data"
    );
    assert_eq!(
        exec(&config, "db", |a| a.run(None)),
        "docker run --name app-db --detach --restart unless-stopped --network kamal --log-opt max-size=\"10m\" --env-file .kamal/apps/app/env/accessories/db.env --volume $PWD/app-db/docker-entrypoint-initdb.d/init.sql:/docker-entrypoint-initdb.d/init.sql:ro --volume $PWD/app-db/etc/a.conf:/etc/a.conf:z --volume /srv/data:/data --volume $PWD/app-db/logs:/var/log/db:rw --label service=\"app-db\" db:1"
    );
    assert_eq!(for_exec(&make_directory_for("/a")), "mkdir -p /");
    assert_eq!(for_exec(&make_directory_for("a")), "mkdir -p .");
}

#[test]
fn env_file_holds_only_the_secrets() {
    let config = commands();
    let mysql = Accessory::new(&config, config.accessory("mysql").expect("mysql"));
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "MYSQL_ROOT_PASSWORD".to_owned(),
        Secret::new("secret\"123\n".to_owned()),
    );
    assert_eq!(
        mysql.env_file_contents(&secrets).expose(),
        "MYSQL_ROOT_PASSWORD=secret\"123\\n\n"
    );
    let run = mysql.run(Some("1.1.1.5"));
    assert!(!for_exec(&run).contains("secret123"));
    assert!(!for_log(&run).contains("secret123"));
    let redis = Accessory::new(&config, config.accessory("redis").expect("redis"));
    assert_eq!(redis.env_file_contents(&secrets).expose(), "\n");
    let env = mysql.env_for_templates(&secrets);
    assert_eq!(
        env.get("MYSQL_ROOT_HOST")
            .map(Secret::expose)
            .map(String::as_str),
        Some("%")
    );
    assert!(env.contains_key("MYSQL_ROOT_PASSWORD"));
}

#[test]
fn join_command_strips_words() {
    assert_eq!(
        join_command(&[" mysql ".to_owned(), "-u".to_owned(), "root\n".to_owned()]),
        "mysql -u root"
    );
    assert_eq!(
        exec_audit_message("mysql -v", "mysql"),
        "Executed cmd 'mysql -v' on mysql accessory"
    );
}
