//! The command groups (`dhow app`, `proxy`, `prune`, `registry`, `audit`, `details`) with
//! `--dry-run`, end to end without any host: each prints the exact commands per host in
//! Kamal's order, mutating ones inside the deploy lock, with every secret redacted; and the
//! argument checks that need no host.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const REGISTRY_CANARY: &str = "groups-registry-canary-71c3";
const CURRENT_WEB: &str = "sh -c 'docker ps --latest --quiet --filter label=service=shop --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting --filter ancestor=$(docker image ls --filter reference=ghcr.io/acme/shop:latest --format '\\''{{.ID}}'\\'') ; docker ps --latest --quiet --filter label=service=shop --filter label=destination= --filter label=role=web --filter status=running --filter status=restarting' | head -1";

fn dhow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhow"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("VERSION", "v7")
        .output()
        .expect("run dhow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("config")).expect("config");
    fs::create_dir_all(dir.path().join(".kamal")).expect(".kamal");
    fs::write(
        dir.path().join("config/deploy.yml"),
        "service: shop\nimage: acme/shop\nservers:\n  web: [10.0.0.1, 10.0.0.2]\n  jobs:\n    hosts: \
         [10.0.0.2]\n    cmd: bin/jobs\nproxy:\n  app_port: 3000\nregistry:\n  server: ghcr.io\n  \
         username: acme\n  password: [REGISTRY_PASSWORD]\nbuilder: {arch: amd64}\nretain_containers: 3\n\
         accessories:\n  db:\n    image: mysql:8\n    host: 10.0.0.3\n",
    )
    .expect("deploy.yml");
    fs::write(
        dir.path().join(".kamal/secrets"),
        format!("REGISTRY_PASSWORD={REGISTRY_CANARY}\n"),
    )
    .expect("secrets");
    dir
}

/// The dry-run's stdout; nothing secret anywhere.
fn dry(dir: &Path, args: &[&str]) -> String {
    let output = dhow(dir, args);
    assert!(
        output.status.success(),
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(!all.contains(REGISTRY_CANARY), "{all}");
    text(&output.stdout)
}

/// The lines of `host`'s block in `stage` (rendered as `== stage` then `  host:` blocks).
fn block(plan: &str, stage: &str, host: &str) -> Vec<String> {
    let start = plan
        .find(&format!("== {stage}\n"))
        .unwrap_or_else(|| panic!("no stage {stage} in:\n{plan}"));
    let rest = &plan[start..];
    let end = rest[3..].find("\n== ").map_or(rest.len(), |i| i + 3);
    let stage_text = &rest[..end];
    let mut lines = Vec::new();
    let mut inside = false;
    for line in stage_text.lines() {
        if line.starts_with("  ") && !line.starts_with("    ") {
            inside = line.trim() == format!("{host}:");
            continue;
        }
        if inside {
            lines.push(line.trim().to_owned());
        }
    }
    lines
}

#[test]
fn app_stop_takes_the_lock_removes_proxy_roles_from_the_proxy_and_stops() {
    let dir = app();
    let plan = dry(dir.path(), &["app", "stop", "--dry-run"]);
    assert!(
        plan.starts_with("app stop\nHosts: 10.0.0.2, 10.0.0.1, 10.0.0.3\nRoles: web, jobs\n"),
        "{plan}"
    );
    assert!(plan.contains("== Acquire the deploy lock\n"), "{plan}");
    assert!(plan.contains("mkdir .kamal/lock-shop && echo "), "{plan}");
    let web = block(&plan, "Stop app containers", "10.0.0.1");
    assert_eq!(web.len(), 4, "{web:?}");
    assert!(web[0].starts_with("mkdir -p .kamal && echo \"["), "{web:?}");
    assert!(
        web[0].ends_with("[web] Stopped app\" >> .kamal/shop-audit.log"),
        "{web:?}"
    );
    assert_eq!(web[1], CURRENT_WEB);
    assert_eq!(
        web[2],
        "if it prints something: docker exec kamal-proxy kamal-proxy remove shop-web  (failure ignored)"
    );
    assert_eq!(
        web[3],
        format!("{CURRENT_WEB} | xargs docker stop  (failure ignored)")
    );
    let both = block(&plan, "Stop app containers", "10.0.0.2");
    // The jobs role is not behind the proxy: no proxy call, `docker stop -t <drain_timeout>`.
    assert!(
        both.iter()
            .any(|l| l.ends_with("[jobs] Stopped app\" >> .kamal/shop-audit.log"))
    );
    assert!(both.iter().any(|l| l.ends_with("--filter label=role=jobs --filter status=running --filter status=restarting' | head -1 | xargs docker stop -t 30  (failure ignored)")), "{both:?}");
    assert!(
        plan.trim_end()
            .ends_with("rm .kamal/lock-shop/details && rm -r .kamal/lock-shop")
    );
}

#[test]
fn app_start_maintenance_live_and_stale_containers() {
    let dir = app();
    let start = dry(dir.path(), &["app", "start", "--dry-run"]);
    let web = block(&start, "Start app containers", "10.0.0.1");
    assert!(
        web[0].ends_with("] Started app version v7\" >> .kamal/shop-audit.log"),
        "{web:?}"
    );
    assert_eq!(web[1], "docker start shop-web-v7  (failure ignored)");
    assert_eq!(web[2], CURRENT_WEB);
    assert_eq!(
        web[3],
        "docker exec kamal-proxy kamal-proxy deploy shop-web --target=\"<container-id>:3000\" --deploy-timeout=\"30s\" --drain-timeout=\"30s\" --buffer-requests --buffer-responses --log-request-header=\"Cache-Control\" --log-request-header=\"Last-Modified\" --log-request-header=\"User-Agent\""
    );

    let maintenance = dry(
        dir.path(),
        &[
            "app",
            "maintenance",
            "--drain-timeout",
            "10",
            "--message",
            "Back soon",
            "--dry-run",
        ],
    );
    for host in ["10.0.0.1", "10.0.0.2"] {
        assert_eq!(
            block(&maintenance, "Set the app to maintenance mode", host),
            [
                "docker exec kamal-proxy kamal-proxy stop shop-web --drain-timeout=\"10s\" --message=\"Back soon\""
            ]
        );
    }
    let live = dry(dir.path(), &["app", "live", "--dry-run"]);
    assert_eq!(
        block(&live, "Set the app to live mode", "10.0.0.2"),
        ["docker exec kamal-proxy kamal-proxy resume shop-web"]
    );

    let stale = dry(
        dir.path(),
        &["app", "stale_containers", "--stop", "--dry-run"],
    );
    let lines = block(&stale, "Stop stale containers", "10.0.0.1");
    assert_eq!(
        lines[0],
        "docker ps --filter label=service=shop --filter label=destination= --filter label=role=web --format \"{{.Names}}\" | while read line; do echo ${line#shop-web-}; done"
    );
    assert_eq!(
        lines[2],
        "for each stale version: docker container ls --all --filter 'name=^shop-web-<stale-version>$' --quiet | xargs docker stop"
    );
}

#[test]
fn app_read_only_commands_show_per_host() {
    let dir = app();
    let details = dry(dir.path(), &["app", "details", "--dry-run"]);
    assert_eq!(
        details,
        "app details\n  10.0.0.2:\n    docker ps --filter label=service=shop --filter label=destination= --filter label=role=web  (output shown)\n    docker ps --filter label=service=shop --filter label=destination= --filter label=role=jobs  (output shown)\n  10.0.0.1:\n    docker ps --filter label=service=shop --filter label=destination= --filter label=role=web  (output shown)\n"
    );
    let containers = dry(dir.path(), &["app", "containers", "--dry-run"]);
    assert!(containers.contains("  10.0.0.2:\n    docker container ls --all --filter label=service=shop --filter label=destination=  (output shown)\n"), "{containers}");
    let images = dry(dir.path(), &["app", "images", "--dry-run"]);
    assert!(
        images.contains("docker image ls ghcr.io/acme/shop  (output shown)"),
        "{images}"
    );
    let logs = dry(dir.path(), &["app", "logs", "-r", "web", "--dry-run"]);
    assert!(logs.contains(&format!("{CURRENT_WEB} | xargs docker logs --timestamps --tail 100 2>&1  (output shown; \"Nothing found\" when it fails)")), "{logs}");
    let grep = dry(
        dir.path(),
        &[
            "app",
            "logs",
            "-g",
            "GET /",
            "-T",
            "--since",
            "5m",
            "--dry-run",
        ],
    );
    assert!(
        grep.contains("| xargs docker logs --since 5m 2>&1 | grep 'GET /'  (output shown"),
        "{grep}"
    );
    let follow = dry(dir.path(), &["app", "logs", "-f", "--dry-run"]);
    assert_eq!(
        follow,
        format!(
            "Following logs on 10.0.0.1...\n  {CURRENT_WEB} | xargs docker logs --timestamps --tail 10 --follow 2>&1\n"
        )
    );
    let version = dry(dir.path(), &["app", "version", "--dry-run"]);
    assert!(
        version.contains(
            "| head -1 | while read line; do echo ${line#shop-web-}; done  (output shown)"
        ),
        "{version}"
    );
}

#[test]
fn app_exec_in_a_new_or_the_running_container() {
    let dir = app();
    let exec = dry(
        dir.path(),
        &[
            "app",
            "--dry-run",
            "exec",
            "-e",
            "A:1",
            "bin/rails",
            "db:migrate",
        ],
    );
    let web = block(
        &format!("== x\n{}", exec.split_once('\n').expect("title").1),
        "x",
        "10.0.0.1",
    );
    assert_eq!(
        web[0],
        "docker login ghcr.io -u [REDACTED] --password-stdin"
    );
    assert!(web[1].starts_with("mkdir -p .kamal && echo \"[") && web[1].contains("] Executed cmd 'bin/rails db:migrate' on app version latest\" >> .kamal/shop-audit.log"), "{web:?}");
    assert!(
        web[2].starts_with("docker run --rm --name shop-web-exec-latest-"),
        "{web:?}"
    );
    assert!(web[2].ends_with(" --network kamal --env-file .kamal/apps/shop/env/roles/web.env --env A=\"1\" --log-opt max-size=\"10m\" ghcr.io/acme/shop:latest bin/rails db:migrate  (output shown)"), "{web:?}");

    let reuse = dry(
        dir.path(),
        &[
            "app",
            "--dry-run",
            "--version",
            "v6",
            "exec",
            "--reuse",
            "ls",
        ],
    );
    assert!(
        reuse.contains("[web] Executed cmd 'ls' on app version v6\" >> .kamal/shop-audit.log"),
        "{reuse}"
    );
    assert!(
        reuse.contains("docker exec shop-web-v6 ls  (output shown)"),
        "{reuse}"
    );
    assert!(
        reuse.contains("docker exec shop-jobs-v6 ls  (output shown)"),
        "{reuse}"
    );

    let detach = dhow(dir.path(), &["app", "exec", "--detach", "--reuse", "ls"]);
    assert_eq!(detach.status.code(), Some(2));
    assert!(text(&detach.stderr).contains("Detach is not compatible with reuse"));
    let empty = dhow(dir.path(), &["app", "exec"]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("No command provided"));
}

#[test]
fn app_remove_stops_then_removes_containers_images_and_directories() {
    let dir = app();
    let plan = dry(dir.path(), &["app", "remove", "--dry-run"]);
    let stages: Vec<&str> = plan.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(
        stages,
        [
            "== Acquire the deploy lock",
            "== Stop app containers",
            "== Remove app containers",
            "== Remove app images",
            "== Remove app directories",
            "== Release the deploy lock (also on failure)"
        ]
    );
    let images = block(&plan, "Remove app images", "10.0.0.2");
    assert_eq!(
        images[1],
        "docker image prune --all --force --filter label=service=shop"
    );
    let dirs = block(&plan, "Remove app directories", "10.0.0.1");
    assert_eq!(dirs[0], "rm -r .kamal/apps/shop  (failure ignored)");
    assert!(dirs[1].ends_with("] Removed .kamal/apps/shop\" >> .kamal/shop-audit.log"));
    assert_eq!(
        dirs[2],
        "rm -r .kamal/proxy/apps-config/shop  (failure ignored)"
    );

    // Only the jobs role on 10.0.0.2: web stays there, so no images or directories go.
    let jobs = dry(dir.path(), &["app", "remove", "-r", "jobs", "--dry-run"]);
    assert!(
        block(&jobs, "Remove app images", "10.0.0.2").is_empty(),
        "{jobs}"
    );
    assert!(block(&jobs, "Remove app containers", "10.0.0.2")
        .contains(&"docker container prune --force --filter label=service=shop --filter label=destination= --filter label=role=jobs".to_owned()));
}

#[test]
fn prune_keeps_retain_containers() {
    let dir = app();
    let all = dry(dir.path(), &["prune", "all", "--dry-run"]);
    let host = block(&all, "Prune old containers", "10.0.0.2");
    assert!(host[0].ends_with("] Pruned containers\" >> .kamal/shop-audit.log"));
    assert_eq!(
        host[1],
        "docker ps -q -a --filter label=service=shop --filter status=created --filter status=exited --filter status=dead | tail -n +4 | while read container_id; do docker rm $container_id; done"
    );
    let images = block(&all, "Prune unused images", "10.0.0.1");
    assert_eq!(
        images[1],
        "docker image prune --force --filter label=service=shop"
    );
    assert!(images[2].contains("grep -v -w \"$(docker container ls -a --format '{{.Image}}\\|' --filter label=service=shop | tr -d '\\n')ghcr.io/acme/shop:latest\\|ghcr.io/acme/shop:<none>\""));
    // The accessory host is a host too (Kamal prunes on KAMAL.hosts).
    assert!(
        !block(&all, "Prune unused images", "10.0.0.3").is_empty(),
        "{all}"
    );
    let retain = dry(
        dir.path(),
        &["prune", "containers", "--retain", "1", "--dry-run"],
    );
    assert!(retain.contains("| tail -n +2 |"), "{retain}");
    let zero = dhow(
        dir.path(),
        &["prune", "containers", "--retain", "0", "--dry-run"],
    );
    assert_eq!(zero.status.code(), Some(2));
    assert!(text(&zero.stderr).contains("retain must be at least 1"));
}

#[test]
fn proxy_reboot_plan() {
    let dir = app();
    let rolling = dry(
        dir.path(),
        &["proxy", "reboot", "--rolling", "-y", "--dry-run"],
    );
    let reboot = block(&rolling, "Reboot kamal-proxy on 10.0.0.2", "10.0.0.2");
    assert!(reboot[0].ends_with("] Rebooted proxy\" >> .kamal/shop-audit.log"));
    // The image is on the host before the old proxy stops (whether or not a container exists).
    assert!(
        reboot[2].starts_with("echo $(cat .kamal/proxy/image "),
        "{reboot:?}"
    );
    assert_eq!(
        reboot[3..6],
        [
            "docker image inspect --format '{{.Id}}' <proxy-image>",
            "if missing: docker pull <proxy-image>",
            "if the pull fails: docker save <proxy-image> (here) | docker load",
        ]
    );
    assert_eq!(
        reboot[6],
        "docker container stop kamal-proxy  (failure ignored)"
    );
    assert_eq!(
        reboot[7],
        "docker container prune --force --filter label=org.opencontainers.image.title=kamal-proxy"
    );
    assert!(
        reboot[9].starts_with("echo $(cat .kamal/proxy/options "),
        "{reboot:?}"
    );
    assert!(reboot[9].ends_with(" | xargs docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config"), "{reboot:?}");
    assert!(rolling.contains("== Reboot kamal-proxy on 10.0.0.1\n"));
}

#[test]
fn proxy_group_plans() {
    let dir = app();
    let boot = dry(dir.path(), &["proxy", "boot", "--dry-run"]);
    assert_eq!(
        block(&boot, "Boot kamal-proxy", "10.0.0.1"),
        [
            "docker network create kamal",
            "docker login ghcr.io -u [REDACTED] --password-stdin",
            "docker inspect kamal-proxy --format '{{.Config.Image}}' | awk -F: '{print $NF}'",
            "mkdir -p .kamal/proxy/apps-config",
            // No proxy.run in the config: Kamal's legacy boot files; without an image file,
            // dhow's own image (basecamp's when only an image_version file pins one of its
            // versions). The image reaches the host first: present, pulled, or sent from here.
            "docker container ls --all --quiet --filter 'name=^kamal-proxy$'  (a proxy container there, or found by the version check: nothing to do)",
            "echo $(cat .kamal/proxy/image 2> /dev/null || { test -f .kamal/proxy/image_version && echo \"basecamp/kamal-proxy\"; } || echo \"ghcr.io/dhow-deploy/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\")  (prints <proxy-image>)",
            "docker image inspect --format '{{.Id}}' <proxy-image>",
            "if missing: docker pull <proxy-image>",
            "if the pull fails: docker save <proxy-image> (here) | docker load",
            "docker container start kamal-proxy || echo $(cat .kamal/proxy/options 2> /dev/null || echo \"--publish 80:80 --publish 443:443 --log-opt max-size=10m\") $(cat .kamal/proxy/image 2> /dev/null || { test -f .kamal/proxy/image_version && echo \"basecamp/kamal-proxy\"; } || echo \"ghcr.io/dhow-deploy/kamal-proxy\"):$(cat .kamal/proxy/image_version 2> /dev/null || echo \"v0.9.2\") $(cat .kamal/proxy/run_command 2> /dev/null || echo \"\") | xargs docker run --name kamal-proxy --network kamal --detach --restart unless-stopped --volume kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy --volume $PWD/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config",
        ]
    );
    // The accessory-only host gets the network only.
    assert_eq!(
        block(&boot, "Boot kamal-proxy", "10.0.0.3"),
        ["docker network create kamal"]
    );

    let restart = dry(dir.path(), &["proxy", "restart", "--dry-run"]);
    assert_eq!(
        block(&restart, "Stop kamal-proxy", "10.0.0.1")[1],
        "docker container stop kamal-proxy  (failure ignored)"
    );
    assert_eq!(
        block(&restart, "Start kamal-proxy", "10.0.0.1")[1],
        "docker container start kamal-proxy"
    );

    let remove = dry(dir.path(), &["proxy", "remove", "--dry-run"]);
    assert_eq!(
        block(&remove, "Remove the proxy image", "10.0.0.1")[1],
        "docker image prune --all --force --filter label=org.opencontainers.image.title=kamal-proxy"
    );
    assert_eq!(
        block(&remove, "Remove the proxy directory", "10.0.0.1"),
        ["rm -r .kamal/proxy  (failure ignored)"]
    );

    let logs = dry(dir.path(), &["proxy", "logs", "-n", "5", "--dry-run"]);
    assert!(
        logs.contains("docker logs kamal-proxy --tail 5 --timestamps 2>&1  (output shown)"),
        "{logs}"
    );
    let details = dry(dir.path(), &["proxy", "details", "--dry-run"]);
    assert!(details.contains("docker ps --filter 'name=^kamal-proxy$'  (output shown)"));

    let set = dry(
        dir.path(),
        &[
            "proxy",
            "boot_config",
            "set",
            "--repository",
            "dhow",
            "--image-version",
            "v0.9.2",
            "--dry-run",
        ],
    );
    assert!(
        set.starts_with(
            ".kamal/proxy/image: dhow/kamal-proxy\n.kamal/proxy/image_version: v0.9.2\n"
        ),
        "{set}"
    );
    let files = block(&set, "Write the proxy boot config", "10.0.0.1");
    assert_eq!(files[0], "mkdir -p .kamal/proxy");
    assert_eq!(files[1], "rm .kamal/proxy/options  (failure ignored)");
    assert_eq!(
        files[2],
        "upload .kamal/proxy/image (mode 0644, [REDACTED])"
    );
}

#[test]
fn registry_audit_and_details() {
    let dir = app();
    let login = dry(dir.path(), &["registry", "login", "--dry-run"]);
    assert!(
        login.starts_with(
            "login (this machine)\n  docker login ghcr.io -u [REDACTED] --password-stdin\n"
        ),
        "{login}"
    );
    assert!(
        login.contains("  10.0.0.3:\n    docker login ghcr.io -u [REDACTED] --password-stdin\n"),
        "{login}"
    );
    let logout = dry(dir.path(), &["registry", "logout", "-L", "--dry-run"]);
    assert!(!logout.contains("this machine"));
    assert!(
        logout.contains("  10.0.0.1:\n    docker logout ghcr.io\n"),
        "{logout}"
    );
    let audit = dry(dir.path(), &["audit", "--dry-run"]);
    assert_eq!(
        audit,
        "audit\n  10.0.0.2:\n    tail -n 50 .kamal/shop-audit.log  (output shown)\n  10.0.0.1:\n    tail -n 50 .kamal/shop-audit.log  (output shown)\n  10.0.0.3:\n    tail -n 50 .kamal/shop-audit.log  (output shown)\n"
    );
    let details = dry(dir.path(), &["details", "--dry-run"]);
    assert!(details.contains("proxy details\n  10.0.0.2:\n    docker ps --filter 'name=^kamal-proxy$'  (output shown)\n"), "{details}");
    assert!(details.contains("accessory details\n  10.0.0.3:\n    docker ps --filter label=service=shop-db  (output shown)\n"), "{details}");
}

/// A `localhost:PORT` registry: `registry setup`/`remove` run Kamal's local container commands
/// here and nothing on the hosts; `login`/`logout` are refused; the deploy plan pulls through
/// the forwarded port without a login.
#[test]
fn local_registry_setup_remove_and_the_forwarded_pull() {
    let dir = app();
    let config = dir.path().join("config/deploy.yml");
    let yaml = fs::read_to_string(&config).expect("read");
    fs::write(
        &config,
        yaml.replace(
            "registry:\n  server: ghcr.io\n  username: acme\n  password: [REGISTRY_PASSWORD]\n",
            "registry:\n  server: localhost:5555\n",
        ),
    )
    .expect("write");
    let setup = dry(dir.path(), &["registry", "setup", "--dry-run"]);
    assert_eq!(
        setup,
        "setup (this machine)\n  docker --version\n  docker start kamal-docker-registry || docker run --detach -p 127.0.0.1:5555:5000 --name kamal-docker-registry registry:3\n"
    );
    let remove = dry(dir.path(), &["registry", "remove", "--dry-run"]);
    assert_eq!(
        remove,
        "remove (this machine)\n  docker stop kamal-docker-registry && docker rm kamal-docker-registry\n"
    );
    assert_eq!(
        dry(dir.path(), &["registry", "setup", "-L", "--dry-run"]),
        ""
    );
    for (subcommand, instead) in [("login", "setup"), ("logout", "remove")] {
        let output = dhow(dir.path(), &["registry", subcommand, "--dry-run"]);
        assert!(!output.status.success());
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "Cannot use {subcommand} command with a local registry. Use `dhow registry {instead}` instead."
            )),
            "{stderr}"
        );
    }
    let plan = dry(dir.path(), &["plan"]);
    assert!(
        plan.contains("== Pull app image\n  (while it runs, each host's 127.0.0.1:5555 is forwarded over SSH to localhost:5555 here)\n  (on each host, beside the steps before the pull: docker info --format '{{index .RegistryConfig.Mirrors 0}}'; one host per registry mirror pulls before the others)\n"),
        "{plan}"
    );
    assert!(
        plan.contains("docker pull localhost:5555/acme/shop:v7"),
        "{plan}"
    );
    assert!(!plan.contains("docker login"), "{plan}");
}

/// With a registry on the network, `registry setup`/`remove` log in and out as `login`/`logout`.
#[test]
fn registry_setup_and_remove_log_in_and_out_of_a_remote_registry() {
    let dir = app();
    let setup = dry(dir.path(), &["registry", "setup", "--dry-run"]);
    assert!(
        setup.starts_with(
            "setup (this machine)\n  docker login ghcr.io -u [REDACTED] --password-stdin\n"
        ),
        "{setup}"
    );
    assert!(
        setup.contains("  10.0.0.3:\n    docker login ghcr.io -u [REDACTED] --password-stdin\n"),
        "{setup}"
    );
    let remove = dry(dir.path(), &["registry", "remove", "-L", "--dry-run"]);
    assert!(
        remove.contains("  10.0.0.1:\n    docker logout ghcr.io\n"),
        "{remove}"
    );
}
