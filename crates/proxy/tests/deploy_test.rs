//! CLI flag parsing and validation (kamal-proxy's `internal/cmd/deploy_test.go` plus the CLI contract).

use std::process::Command;
use std::time::Duration;

use dhow_proxy::cli::{Action, parse};
use dhow_proxy::commands::{Call, DeployArgs};

fn deploy(args: &[&str]) -> Result<DeployArgs, String> {
    let mut command_line = vec!["kamal-proxy", "deploy"];
    command_line.extend_from_slice(args);
    match parse(command_line)? {
        Action::Call(Call::Deploy(d)) => Ok(d),
        other => panic!("unexpected {other:?}"),
    }
}

fn error(argv: &[&str]) -> String {
    match parse(argv.iter().copied()) {
        Err(e) => e,
        Ok(action) => panic!("expected an error, got {action:?}"),
    }
}

#[test]
fn deploy_test_tls_requires_a_real_host() {
    for hosts in [
        vec![],
        vec!["--host="],
        vec!["--host=*.example.com", "--host="],
    ] {
        let mut args = vec!["app", "--target=web:80", "--tls"];
        args.extend(hosts);
        let err = deploy(&args).unwrap_err();
        assert!(err.starts_with("service options invalid"), "{err}");
        assert_eq!(
            err,
            "service options invalid: host must be set when using TLS"
        );
    }
    assert!(deploy(&["app", "--target=web:80", "--tls", "--host=example.com"]).is_ok());
    assert!(
        deploy(&[
            "app",
            "--target=web:80",
            "--tls",
            "--host=example.com,*.example.com"
        ])
        .is_ok()
    );
}

/// kamal-proxy's `TestDeployCommand_preRun_TLSOnDemandUrl` and the on-demand validation.
#[test]
fn deploy_test_tls_on_demand_url() {
    // It removes the need for a host, and reaches the service options.
    let d = deploy(&[
        "app",
        "--target=web:80",
        "--tls",
        "--tls-on-demand-url=http://example.com/validate",
    ])
    .unwrap();
    assert_eq!(
        d.service_options.tls_on_demand_url,
        "http://example.com/validate"
    );
    assert!(d.service_options.tls_enabled);
    assert!(
        deploy(&[
            "app",
            "--target=web:80",
            "--tls",
            "--tls-on-demand-url",
            "/allow-host?token=abc",
        ])
        .is_ok()
    );
    let invalid = |extra: &[&str]| {
        let mut argv = vec!["app", "--target=web:80"];
        argv.extend_from_slice(extra);
        deploy(&argv).unwrap_err()
    };
    assert_eq!(
        invalid(&[
            "--tls",
            "--tls-on-demand-url=http://example.com/validate",
            "--host=example.com",
        ]),
        "service options invalid: cannot set hosts when using a TLS on-demand URL"
    );
    assert!(
        invalid(&["--tls", "--tls-on-demand-url=ftp://example.com/validate"])
            .contains("unsupported scheme"),
    );
    assert_eq!(
        invalid(&["--tls-on-demand-url=/allow"]),
        "service options invalid: TLS must be enabled to use a TLS on-demand URL"
    );
    assert_eq!(
        invalid(&[
            "--tls",
            "--tls-on-demand-url=/allow",
            "--tls-certificate-path=c.pem",
            "--tls-private-key-path=k.pem",
        ]),
        "service options invalid: cannot use a custom TLS certificate with a TLS on-demand URL"
    );
    assert_eq!(
        invalid(&[
            "--tls",
            "--tls-on-demand-url=/allow",
            "--canonical-host=a.com",
        ]),
        "service options invalid: cannot set a canonical host when using a TLS on-demand URL"
    );
    for (url, message) in [
        ("allow", "unable to parse tls-on-demand-url"),
        (
            "//example.com/x",
            "must be a path or an absolute http(s) URL",
        ),
        ("https://", "missing host"),
    ] {
        let err = invalid(&["--tls", &format!("--tls-on-demand-url={url}")]);
        assert!(err.starts_with("service options invalid: "), "{err}");
        assert!(err.contains(message), "{url}: {err}");
    }
}

#[test]
fn deploy_test_canonical_host_must_be_in_host_list() {
    let err = deploy(&[
        "app",
        "--target=web:80",
        "--host=a.com",
        "--host=b.com",
        "--canonical-host=c.com",
    ])
    .unwrap_err();
    assert_eq!(
        err,
        "service options invalid: canonical-host 'c.com' must be present in the hosts list: [a.com b.com]"
    );
    assert!(
        deploy(&[
            "app",
            "--target=web:80",
            "--host=a.com",
            "--canonical-host="
        ])
        .is_ok()
    );
    assert!(deploy(&["app", "--target=web:80", "--canonical-host=c.com"]).is_ok());
    let ok = deploy(&[
        "app",
        "--target=web:80",
        "--host=a.com,b.com",
        "--canonical-host=b.com",
    ]);
    assert_eq!(ok.unwrap().service_options.canonical_host, "b.com");
}

#[test]
fn deploy_test_tls_must_be_on_root_path_service() {
    let err = deploy(&[
        "app",
        "--target=web:80",
        "--host=a.com",
        "--tls",
        "--path-prefix=/api",
    ])
    .unwrap_err();
    assert_eq!(
        err,
        "service options invalid: TLS settings must be specified on the root path service"
    );
}

#[test]
fn deploy_defaults_match_kamal_proxy() {
    let d = deploy(&["app", "--target=web:3000"]).unwrap();
    assert_eq!(d.service, "app");
    assert_eq!(d.target_urls, vec!["web:3000"]);
    assert_eq!(
        d.deployment_options.deploy_timeout.0,
        Duration::from_secs(30)
    );
    assert_eq!(
        d.deployment_options.drain_timeout.0,
        Duration::from_secs(30)
    );
    assert!(!d.deployment_options.force);
    let t = &d.target_options;
    assert_eq!(t.health_check_config.path, "/up");
    assert_eq!(t.health_check_config.interval.0, Duration::from_secs(1));
    assert_eq!(t.health_check_config.timeout.0, Duration::from_secs(5));
    assert_eq!(t.response_timeout.0, Duration::from_secs(30));
    assert_eq!(t.max_memory_buffer_size, 1 << 20);
    assert!(!t.buffer_requests && !t.buffer_responses);
    assert!(t.forward_headers, "forward headers default to !tls");
    let s = &d.service_options;
    assert!(s.strip_prefix && s.tls_redirect && !s.tls_enabled);
    assert_eq!(s.writer_affinity_timeout.0, Duration::from_secs(1));
    assert!(s.acme_cache_path.ends_with("certs"));
}

#[test]
fn deploy_accepts_kamal_flag_syntax() {
    // Exactly what Kamal 2 sends (after the shell removed the quotes).
    let d = deploy(&[
        "app-web",
        "--target=172.1.0.2:80",
        "--host=example.com",
        "--host=anotherexample.com",
        "--tls",
        "--deploy-timeout=30s",
        "--drain-timeout=30s",
        "--buffer-requests",
        "--buffer-responses=false",
        "--log-request-header=Cache-Control",
        "--log-request-header=Last-Modified",
        "--log-request-header=User-Agent",
        "--health-check-interval",
        "500ms",
        "--strip-path-prefix=false",
    ])
    .unwrap();
    assert_eq!(
        d.service_options.hosts,
        vec!["example.com", "anotherexample.com"]
    );
    assert!(d.service_options.tls_enabled);
    assert!(
        !d.target_options.forward_headers,
        "forward headers default off with TLS"
    );
    assert!(d.target_options.buffer_requests);
    assert!(!d.target_options.buffer_responses);
    assert!(!d.service_options.strip_prefix);
    assert_eq!(
        d.target_options.log_request_headers,
        vec!["Cache-Control", "Last-Modified", "User-Agent"]
    );
    assert_eq!(
        d.target_options.health_check_config.interval.0,
        Duration::from_millis(500)
    );
}

#[test]
fn slice_flags_repeat_and_split_on_commas() {
    let d = deploy(&[
        "app",
        "--target=a:1,b:2",
        "--target",
        "c:3",
        "--read-target=r:1",
    ])
    .unwrap();
    assert_eq!(d.target_urls, vec!["a:1", "b:2", "c:3"]);
    assert_eq!(d.reader_urls, vec!["r:1"]);
}

#[test]
fn bool_flags_need_equals_for_values() {
    let err = deploy(&["app", "--target=web:80", "--tls", "false"]).unwrap_err();
    assert_eq!(err, "accepts 1 arg(s), received 2");
    let err = deploy(&["app", "--target=web:80", "--tls=maybe"]).unwrap_err();
    assert_eq!(
        err,
        "invalid argument \"maybe\" for \"--tls\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
}

#[test]
fn validation_errors_match_kamal_proxy() {
    assert_eq!(
        error(&["kamal-proxy", "deploy", "app"]),
        "required flag(s) \"target\" not set"
    );
    assert_eq!(
        error(&["kamal-proxy", "deploy", "--target=web:80"]),
        "accepts 1 arg(s), received 0"
    );
    assert_eq!(
        error(&[
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--deploy-timeout=30"
        ]),
        "invalid argument \"30\" for \"--deploy-timeout\" flag: time: missing unit in duration \"30\""
    );
    assert_eq!(
        error(&[
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--max-request-body=10"
        ]),
        "max-request-body can only be set when request buffering is enabled"
    );
    assert!(
        parse([
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--buffer-requests=false",
            "--max-request-body=10"
        ])
        .is_ok()
    );
    assert_eq!(
        error(&[
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--max-response-body=10"
        ]),
        "max-response-body can only be set when response buffering is enabled"
    );
    assert_eq!(
        error(&[
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--tls-certificate-path=/c"
        ]),
        "if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [tls-private-key-path]"
    );
    assert_eq!(
        error(&["kamal-proxy", "deploy", "app", "--target=web:80", "--bogus"]),
        "unknown flag: --bogus"
    );
    assert_eq!(
        error(&["kamal-proxy", "frobnicate"]),
        "unknown command \"frobnicate\" for \"kamal-proxy\""
    );
    assert_eq!(
        error(&[
            "kamal-proxy",
            "deploy",
            "app",
            "--target=web:80",
            "--buffer-memory=1MB"
        ]),
        "invalid argument \"1MB\" for \"--buffer-memory\" flag: strconv.ParseInt: parsing \"1MB\": invalid syntax"
    );
}

#[test]
fn other_subcommands_parse() {
    let call = |argv: &[&str]| match parse(argv.iter().copied()).unwrap() {
        Action::Call(c) => c,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(call(&["kamal-proxy", "rm", "app"]), Call::Remove { service } if service == "app")
    );
    assert!(matches!(call(&["kamal-proxy", "ls"]), Call::List));
    assert!(matches!(
        call(&["kamal-proxy", "resume", "app"]),
        Call::Resume { .. }
    ));
    match call(&[
        "kamal-proxy",
        "stop",
        "app-web",
        "--drain-timeout=10s",
        "--message=Hi",
    ]) {
        Call::Stop(s) => {
            assert_eq!(s.message, "Hi");
            assert_eq!(s.drain_timeout.0, Duration::from_secs(10));
        }
        other => panic!("{other:?}"),
    }
    match call(&["kamal-proxy", "pause", "app", "--max-pause=5s"]) {
        Call::Pause(p) => {
            assert_eq!(p.pause_timeout.0, Duration::from_secs(5));
            assert_eq!(p.drain_timeout.0, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    match call(&[
        "kamal-proxy",
        "rollout",
        "set",
        "app",
        "--percent=20",
        "--list=a,b",
    ]) {
        Call::RolloutSet(r) => {
            assert_eq!(r.percentage, 20);
            assert_eq!(r.allowlist, vec!["a", "b"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error(&["kamal-proxy", "rollout", "set", "app"]),
        "at least one of the flags in the group [percent list] is required"
    );
    assert!(matches!(
        call(&["kamal-proxy", "rollout", "deploy", "app", "--target=w:80"]),
        Call::RolloutDeploy(_)
    ));
    assert!(matches!(
        call(&["kamal-proxy", "rollout", "stop", "app"]),
        Call::RolloutStop { .. }
    ));
    assert_eq!(
        error(&["kamal-proxy", "remove"]),
        "accepts 1 arg(s), received 0"
    );
}

#[test]
fn run_flags_and_defaults() {
    match parse([
        "kamal-proxy",
        "run",
        "--http-port=8080",
        "--metrics-port",
        "9000",
        "--debug",
    ])
    .unwrap()
    {
        Action::Run(r) => {
            assert_eq!(
                (r.http_port, r.https_port, r.metrics_port),
                (8080, 443, 9000)
            );
            assert!(r.debug);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn binary_prints_error_and_exits_1() {
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("kamal-proxy.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
        .args(["deploy", "app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: required flag(s) \"target\" not set\n"
    );
    assert!(out.stdout.is_empty());

    let out = Command::new(env!("CARGO_BIN_EXE_kamal-proxy"))
        .args(["remove", "app"])
        .env("KAMAL_PROXY_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Error: dial unix {}: connect: no such file or directory\n",
            socket.display()
        )
    );
}

#[test]
fn deploy_acme_directory_and_cache_path() {
    let base = ["app", "--target=web:80", "--tls", "--host=a.com"];
    let d = deploy(&base).unwrap();
    assert_eq!(d.service_options.acme_directory, "");
    assert!(
        d.service_options.acme_cache_path.ends_with("/certs"),
        "{}",
        d.service_options.acme_cache_path
    );
    let mut args = base.to_vec();
    args.push("--tls-staging");
    assert_eq!(
        deploy(&args).unwrap().service_options.acme_directory,
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    );
    let mut args = base.to_vec();
    args.extend([
        "--tls-acme-directory=https://ca.internal:14000/dir",
        "--tls-acme-cache-path=/data/certs",
    ]);
    let d = deploy(&args).unwrap();
    assert_eq!(
        d.service_options.acme_directory,
        "https://ca.internal:14000/dir"
    );
    assert_eq!(d.service_options.acme_cache_path, "/data/certs");
    let mut args = base.to_vec();
    args.push("--tls-acme-directory=http://ca.internal/dir");
    assert_eq!(
        deploy(&args).unwrap_err(),
        "tls-acme-directory must be an https URL (got \"http://ca.internal/dir\")"
    );
    let mut args = base.to_vec();
    args.extend(["--tls-acme-directory=https://ca/dir", "--tls-staging"]);
    assert_eq!(
        deploy(&args).unwrap_err(),
        "tls-acme-directory and tls-staging cannot be used together"
    );
}
