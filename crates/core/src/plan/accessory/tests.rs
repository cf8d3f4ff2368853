use std::collections::BTreeMap;

use super::*;
use crate::cmd::for_exec;
use crate::config::{LoadInput, NoTemplates, SourceFile};
use crate::selection;

const CONFIG: &str = r#"service: app
image: dhh/app
registry: {server: private.registry, username: user, password: [KAMAL_REGISTRY_PASSWORD]}
servers:
  web: [1.1.1.1, 1.1.1.2]
  workers: [1.1.1.3]
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
      - config/my.cnf:/etc/mysql/my.cnf
      - local: config/init.sql.erb
        remote: /docker-entrypoint-initdb.d/init.sql
        mode: "0600"
        owner: "999"
    directories:
      - local: data
        remote: /var/lib/mysql
        mode: "0700"
  redis:
    image: redis:latest
    roles: [web]
    port: 6379
    directories:
      - data:/data
  busybox:
    service: custom-box
    image: busybox:latest
    registry: {server: other.registry, username: other, password: [OTHER_PASSWORD]}
    host: 1.1.1.3
    proxy:
      host: box.example.com
"#;

const CANARY: &str = "canary-accessory-7d1e";
const REGISTRY_CANARY: &str = "registry-canary-2b9f";

fn load() -> Config {
    let env = BTreeMap::new();
    let input = LoadInput {
        base: SourceFile {
            name: "config/deploy.yml",
            text: Some(CONFIG),
        },
        destination: None,
        env: &env,
        running_version: "2.11.0",
        local_arch: Some("amd64"),
        renderer: &NoTemplates,
    };
    crate::config::load(&input).expect("valid config")
}

fn tags(config: &Config) -> Tags {
    Tags {
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        performer: "ci@example.com".to_owned(),
        destination: None,
        version: Some("v1".to_owned()),
        service_version: Some(format!("{}@v1", config.service)),
        service: config.service.clone(),
        details: Vec::new(),
    }
}

fn lock_details() -> LockDetails {
    LockDetails {
        locked_by: "ci".to_owned(),
        recorded_at: "2026-11-25T14:00:00Z".to_owned(),
        version: "v1".to_owned(),
        message: "Automatic deploy lock".to_owned(),
        run_url: None,
    }
}

struct Fixture {
    config: Config,
    selection: Selection,
    tags: Tags,
    registry: Credentials,
    accessory_registries: BTreeMap<String, Credentials>,
    secrets: BTreeMap<String, Secret<String>>,
    files: BTreeMap<String, Vec<Secret<Vec<u8>>>>,
}

impl Fixture {
    fn new(hosts: Option<&str>) -> Self {
        let config = load();
        let selection = selection::select(&config, hosts, None, false).expect("selection");
        let tags = tags(&config);
        let mut accessory_registries = BTreeMap::new();
        accessory_registries.insert(
            "busybox".to_owned(),
            Credentials {
                username: "other".to_owned(),
                password: Secret::new(REGISTRY_CANARY.to_owned()),
            },
        );
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "MYSQL_ROOT_PASSWORD".to_owned(),
            Secret::new(CANARY.to_owned()),
        );
        let mut files = BTreeMap::new();
        files.insert(
            "mysql".to_owned(),
            vec![
                Secret::new(b"[mysqld]\n".to_vec()),
                Secret::new(format!("-- {CANARY}\n").into_bytes()),
            ],
        );
        Self {
            config,
            selection,
            tags,
            registry: Credentials {
                username: "user".to_owned(),
                password: Secret::new(REGISTRY_CANARY.to_owned()),
            },
            accessory_registries,
            secrets,
            files,
        }
    }

    fn input(&self) -> AccessoryInput<'_> {
        AccessoryInput {
            config: &self.config,
            selection: &self.selection,
            tags: &self.tags,
            registry: Some(&self.registry),
            accessory_registries: &self.accessory_registries,
            secrets: &self.secrets,
            files: &self.files,
            version: "v1",
        }
    }

    fn plan(&self, names: &[&str], operation: Operation) -> Plan {
        let accessories: Vec<&config::Accessory> = names
            .iter()
            .map(|name| self.config.accessory(name).expect("accessory"))
            .collect();
        plan(&self.input(), &lock_details(), &accessories, operation)
    }

    fn rendered(&self, names: &[&str], operation: Operation) -> String {
        let rendered = render(&self.plan(names, operation), operation, names);
        assert!(!rendered.contains(CANARY), "{rendered}");
        assert!(!rendered.contains(REGISTRY_CANARY), "{rendered}");
        rendered
    }
}

fn every_command(plan: &Plan) -> Vec<String> {
    plan.locked
        .iter()
        .flat_map(|stage| &stage.hosts)
        .flat_map(|host| &host.steps)
        .flat_map(|step| step.action.commands())
        .map(for_exec)
        .collect()
}

#[test]
fn boot_plan() {
    insta::assert_snapshot!(Fixture::new(None).rendered(&["mysql"], Operation::Boot));
}

#[test]
fn boot_all_plan() {
    let fixture = Fixture::new(None);
    insta::assert_snapshot!(fixture.rendered(&["mysql", "redis", "busybox"], Operation::Boot));
}

#[test]
fn reboot_plan() {
    insta::assert_snapshot!(Fixture::new(None).rendered(&["mysql"], Operation::Reboot));
}

#[test]
fn start_stop_restart_of_a_proxied_accessory() {
    let fixture = Fixture::new(None);
    insta::assert_snapshot!(fixture.rendered(&["busybox"], Operation::Restart));
}

#[test]
fn remove_plan() {
    insta::assert_snapshot!(Fixture::new(None).rendered(&["mysql"], Operation::Remove));
}

#[test]
fn rolling_upgrade_reboots_one_host_at_a_time() {
    let fixture = Fixture::new(None);
    let plan = fixture.plan(&["redis"], Operation::Upgrade { rolling: true });
    let hosts: Vec<(String, Vec<String>)> = plan
        .locked
        .iter()
        .map(|stage| {
            (
                stage.label.clone(),
                stage.hosts.iter().map(|h| h.host.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        hosts.first().map(|h| h.1.clone()),
        Some(vec!["1.1.1.1".to_owned()])
    );
    assert_eq!(
        hosts.last().map(|h| h.1.clone()),
        Some(vec!["1.1.1.2".to_owned()])
    );
    assert!(hosts.iter().all(|(_, hosts)| hosts.len() == 1));
    assert_eq!(
        hosts.first().map(|h| h.0.as_str()),
        Some("Prepare redis accessory on 1.1.1.1")
    );
    let together = fixture.plan(&["redis"], Operation::Upgrade { rolling: false });
    assert_eq!(
        together.locked[0]
            .hosts
            .iter()
            .map(|h| h.host.as_str())
            .collect::<Vec<_>>(),
        ["1.1.1.1", "1.1.1.2"]
    );
}

#[test]
fn secrets_reach_hosts_only_in_the_0600_env_file_and_uploads() {
    let fixture = Fixture::new(None);
    let plan = fixture.plan(&["mysql", "busybox"], Operation::Boot);
    for command in every_command(&plan) {
        assert!(!command.contains(CANARY), "{command}");
        assert!(!command.contains(REGISTRY_CANARY), "{command}");
    }
    let uploads: Vec<(String, u32, String)> = plan
        .locked
        .iter()
        .flat_map(|stage| &stage.hosts)
        .flat_map(|host| &host.steps)
        .filter_map(|step| match &step.action {
            Action::Upload {
                path,
                mode,
                contents,
            } => Some((path.clone(), *mode, contents.expose().clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        uploads,
        [
            (
                ".kamal/apps/app/env/accessories/mysql.env".to_owned(),
                0o600,
                format!("MYSQL_ROOT_PASSWORD={CANARY}\n")
            ),
            (
                ".kamal/apps/app/env/accessories/busybox.env".to_owned(),
                0o600,
                "\n".to_owned()
            )
        ]
    );
    let logins: Vec<&Command> = plan
        .locked
        .iter()
        .flat_map(|stage| &stage.hosts)
        .flat_map(|host| &host.steps)
        .filter(|step| step.label == "registry login")
        .flat_map(|step| step.action.commands())
        .collect();
    assert_eq!(
        logins.iter().map(|c| for_exec(c)).collect::<Vec<_>>(),
        [
            "docker login private.registry -u \"user\" --password-stdin",
            "docker login other.registry -u \"other\" --password-stdin"
        ]
    );
    assert!(logins.iter().all(|login| {
        login
            .stdin()
            .is_some_and(|password| password.expose() == REGISTRY_CANARY)
    }));
}

#[test]
fn hosts_are_cut_to_the_selection() {
    let fixture = Fixture::new(Some("1.1.1.2"));
    let plan = fixture.plan(&["redis"], Operation::Boot);
    assert_eq!(stage_hosts(&plan), ["1.1.1.2"]);
    let boot = plan.locked.last().expect("boot stage");
    assert_eq!(boot.hosts.len(), 1);
    assert!(
        boot.hosts[0]
            .steps
            .iter()
            .flat_map(|step| step.action.commands())
            .any(|command| for_exec(command).contains("--env KAMAL_HOST=\"1.1.1.2\""))
    );
    // An accessory with no selected host contributes no stages.
    assert!(fixture.plan(&["mysql"], Operation::Boot).locked.is_empty());
}

#[test]
fn setup_and_remove_get_every_accessory() {
    let fixture = Fixture::new(None);
    let boot = boot_all(&fixture.input());
    assert_eq!(
        boot.iter()
            .filter(|stage| stage.label.starts_with("Boot "))
            .map(|stage| stage.label.as_str())
            .collect::<Vec<_>>(),
        [
            "Boot mysql accessory",
            "Boot redis accessory",
            "Boot busybox accessory"
        ]
    );
    let remove = remove_all(&fixture.input());
    let commands: Vec<String> = remove
        .iter()
        .flat_map(|stage| &stage.hosts)
        .flat_map(|host| &host.steps)
        .flat_map(|step| step.action.commands())
        .map(for_exec)
        .collect();
    for expected in [
        "docker container prune --force --filter label=service=app-mysql",
        "docker image rm --force redis:latest",
        "rm -rf custom-box",
        "rm -f .kamal/apps/app/env/accessories/busybox.env",
        "docker exec kamal-proxy kamal-proxy remove custom-box",
    ] {
        assert!(commands.iter().any(|c| c == expected), "{expected}");
    }
}
