//! The `kamal-proxy` command line: kamal-proxy's subcommands, flags, defaults and validation with
//! pflag-style syntax, turned into a server configuration or one control call.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand};

use crate::commands::{
    Call, DeployArgs, PauseArgs, RolloutDeployArgs, RolloutSetArgs, ServiceDescription, StopArgs,
};
use crate::options::{
    DEFAULT_BUFFER_MEMORY, DEFAULT_HEALTH_CHECK_PATH, DeploymentOptions, HealthCheckConfig,
    LETS_ENCRYPT_STAGING, Nanos, ServiceOptions, TargetOptions,
};
use crate::paths;

/// The version this proxy is compatible with (Kamal requires at least v0.9.2).
pub const COMPATIBLE_VERSION: &str = "v0.9.2";

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing \"{value}\": invalid syntax"
        )),
    }
}

fn parse_duration(value: &str) -> Result<Nanos, String> {
    crate::duration::parse(value).map(Nanos)
}

fn parse_int(value: &str) -> Result<i64, String> {
    value
        .parse()
        .map_err(|_| format!("strconv.ParseInt: parsing \"{value}\": invalid syntax"))
}

fn parse_port(value: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| format!("strconv.ParseInt: parsing \"{value}\": invalid syntax"))
}

#[derive(Debug, Parser)]
#[command(
    name = "kamal-proxy",
    about = "HTTP proxy for zero downtime deployments",
    disable_version_flag = true,
    disable_help_subcommand = false
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Run the server
    Run(RunCmd),
    /// Deploy a target host
    Deploy(DeployCmd),
    /// Remove a service
    #[command(alias = "rm")]
    Remove(ServiceCmd),
    /// List the services currently deployed
    #[command(alias = "ls")]
    List(NoArgsCmd),
    /// Pause a service
    Pause(PauseCmd),
    /// Stop a service (maintenance mode)
    Stop(StopCmd),
    /// Resume a service
    Resume(ServiceCmd),
    /// Control rollouts
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// Print the version
    Version(NoArgsCmd),
}

#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Deploy targets to the rollout slot of a service
    Deploy(RolloutDeployCmd),
    /// Set the rollout split
    Set(RolloutSetCmd),
    /// Stop the rollout split
    Stop(ServiceCmd),
}

#[derive(Debug, Args)]
struct RunCmd {
    /// Include debugging logs
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    debug: Option<bool>,
    /// Port to serve HTTP traffic on
    #[arg(long, value_parser = parse_port)]
    http_port: Option<u16>,
    /// Port to serve HTTPS traffic on
    #[arg(long, value_parser = parse_port)]
    https_port: Option<u16>,
    /// Port to serve metrics on (0 = off)
    #[arg(long, value_parser = parse_port)]
    metrics_port: Option<u16>,
    /// Serve HTTP/3 over UDP on the HTTPS port
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    http3: Option<bool>,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct NoArgsCmd {
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct ServiceCmd {
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Debug, Args)]
struct DeployCmd {
    #[arg(hide = true)]
    args: Vec<String>,
    /// Target host(s) to deploy
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Read-only target host(s)
    #[arg(long, value_delimiter = ',')]
    read_target: Vec<String>,
    /// Host(s) to serve this target on (empty for wildcard)
    #[arg(long, value_delimiter = ',')]
    host: Vec<String>,
    /// Deploy the service with a path prefix
    #[arg(long, value_delimiter = ',')]
    path_prefix: Vec<String>,
    /// With --path-prefix, strip the prefix from the request before forwarding
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    strip_path_prefix: Option<bool>,
    /// Configure TLS for this target (requires a non-empty host, or --tls-on-demand-url)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    tls: Option<bool>,
    /// Obtain certificates for hosts this URL or service path approves (answers 200 to `?host=`)
    #[arg(long, default_value = "")]
    tls_on_demand_url: String,
    /// Use Let's Encrypt staging environment for certificate provisioning
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    tls_staging: Option<bool>,
    /// ACME directory URL for automatic certificates (default: Let's Encrypt)
    #[arg(long)]
    tls_acme_directory: Option<String>,
    /// Configure custom TLS certificate path (PEM format)
    #[arg(long, default_value = "")]
    tls_certificate_path: String,
    /// Configure custom TLS private key path (PEM format)
    #[arg(long, default_value = "")]
    tls_private_key_path: String,
    /// Path where ACME assets are stored
    #[arg(long)]
    tls_acme_cache_path: Option<String>,
    /// Redirect HTTP traffic to HTTPS when TLS is enabled
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    tls_redirect: Option<bool>,
    /// Redirect all hosts to this canonical host
    #[arg(long, default_value = "")]
    canonical_host: String,
    /// Maximum time to wait for the new target to become healthy
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    deploy_timeout: Nanos,
    /// Maximum time to allow existing connections to drain before removing old target
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Nanos,
    /// Skip the health wait and install the targets at once
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    force: Option<bool>,
    /// Time between health checks
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    health_check_interval: Nanos,
    /// Time each health check must complete in
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    health_check_timeout: Nanos,
    /// Path to check for health
    #[arg(long, default_value = DEFAULT_HEALTH_CHECK_PATH)]
    health_check_path: String,
    /// Port to check for health (0 = the target's port)
    #[arg(long, default_value = "0", value_parser = parse_port)]
    health_check_port: u16,
    /// Host header to send with health checks
    #[arg(long, default_value = "")]
    health_check_host: String,
    /// Time after a write before read requests will be routed to readers
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    writer_affinity_timeout: Nanos,
    /// Route WebSocket traffic to read targets
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    read_target_websockets: Option<bool>,
    /// Maximum time to wait for the target to respond
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    target_timeout: Nanos,
    /// Enable request buffering
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    buffer_requests: Option<bool>,
    /// Enable response buffering
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    buffer_responses: Option<bool>,
    /// Max size of memory buffer
    #[arg(long, default_value_t = DEFAULT_BUFFER_MEMORY, value_parser = parse_int)]
    buffer_memory: i64,
    /// Max size of request body when buffering (0 = unlimited)
    #[arg(long, value_parser = parse_int)]
    max_request_body: Option<i64>,
    /// Max size of response body when buffering (0 = unlimited)
    #[arg(long, value_parser = parse_int)]
    max_response_body: Option<i64>,
    /// Path to custom error pages
    #[arg(long, default_value = "")]
    error_pages: String,
    /// Additional request header to log
    #[arg(long, value_delimiter = ',')]
    log_request_header: Vec<String>,
    /// Additional response header to log
    #[arg(long, value_delimiter = ',')]
    log_response_header: Vec<String>,
    /// Forward X-Forwarded-* headers from the client (default: !tls)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    forward_headers: Option<bool>,
    /// Exact request paths (after prefix stripping) to leave out of metrics
    #[arg(long, value_delimiter = ',')]
    exclude_metrics_path: Vec<String>,
    /// Header whose value replaces X-Forwarded-For (e.g. CF-Connecting-IP)
    #[arg(long, default_value = "")]
    client_ip_header: String,
    /// Scope Set-Cookie paths under the matched path prefix
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool)]
    scope_cookie_paths: Option<bool>,
}

#[derive(Debug, Args)]
struct PauseCmd {
    #[arg(hide = true)]
    args: Vec<String>,
    /// How long to wait for in-flight requests to complete
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Nanos,
    /// How long to hold requests before failing them
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    max_pause: Nanos,
}

#[derive(Debug, Args)]
struct StopCmd {
    #[arg(hide = true)]
    args: Vec<String>,
    /// How long to wait for in-flight requests to complete
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Nanos,
    /// Message to show on the maintenance page
    #[arg(long, default_value = "")]
    message: String,
}

#[derive(Debug, Args)]
struct RolloutDeployCmd {
    #[arg(hide = true)]
    args: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    read_target: Vec<String>,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    deploy_timeout: Nanos,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Nanos,
}

#[derive(Debug, Args)]
struct RolloutSetCmd {
    #[arg(hide = true)]
    args: Vec<String>,
    /// Percentage of traffic to send to the rollout slot
    #[arg(long, value_parser = parse_int)]
    percent: Option<i64>,
    /// Cookie values that always use the rollout slot
    #[arg(long, value_delimiter = ',')]
    list: Option<Vec<String>>,
}

/// The server's settings from `run` flags and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub debug: bool,
    pub http_port: u16,
    pub https_port: u16,
    pub metrics_port: u16,
    pub http3: bool,
}

/// What a command line asks for.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum Action {
    Run(RunConfig),
    Call(Call),
    Help(String),
    Version,
}

fn exact_args(args: &[String], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("accepts {n} arg(s), received {}", args.len()))
    }
}

fn service_of(args: &[String]) -> Result<String, String> {
    exact_args(args, 1)?;
    Ok(args[0].clone())
}

fn env_value<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(format!("KAMAL_PROXY_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| std::env::var(name).ok().and_then(|v| v.parse().ok()))
}

fn env_bool(name: &str) -> Option<bool> {
    std::env::var(format!("KAMAL_PROXY_{name}"))
        .ok()
        .and_then(|v| parse_bool(&v).ok())
        .or_else(|| std::env::var(name).ok().and_then(|v| parse_bool(&v).ok()))
}

fn clap_error_text(e: &clap::Error) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg).unwrap_or_default();
            let arg = arg.split('=').next().unwrap_or_default().to_string();
            if arg.starts_with("--") || !arg.starts_with('-') {
                format!("unknown flag: {arg}")
            } else {
                let c = arg.trim_start_matches('-').chars().next().unwrap_or('?');
                format!("unknown shorthand flag: '{c}' in {arg}")
            }
        }
        ErrorKind::InvalidSubcommand => format!(
            "unknown command \"{}\" for \"kamal-proxy\"",
            context(ContextKind::InvalidSubcommand).unwrap_or_default()
        ),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(ContextKind::InvalidArg).unwrap_or_default();
            let flag = arg
                .split([' ', '=', '['])
                .next()
                .unwrap_or_default()
                .to_string();
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            let reason = std::error::Error::source(e).map(ToString::to_string);
            match reason {
                Some(reason) => {
                    format!("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")
                }
                None if value.is_empty() => format!("flag needs an argument: {flag}"),
                None => format!("invalid argument \"{value}\" for \"{flag}\" flag"),
            }
        }
        _ => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        }
    }
}

/// Parses and validates a command line (without the program name handling of `clap`).
pub fn parse<I, T>(argv: I) -> Result<Action, String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            return Ok(Action::Help(e.render().to_string()));
        }
        Err(e) => return Err(clap_error_text(&e)),
    };
    match cli.command {
        Command::Run(cmd) => {
            exact_args(&cmd.args, 0)?;
            Ok(Action::Run(RunConfig {
                debug: cmd.debug.or_else(|| env_bool("DEBUG")).unwrap_or(false),
                http_port: cmd
                    .http_port
                    .or_else(|| env_value("HTTP_PORT"))
                    .unwrap_or(80),
                https_port: cmd
                    .https_port
                    .or_else(|| env_value("HTTPS_PORT"))
                    .unwrap_or(443),
                metrics_port: cmd
                    .metrics_port
                    .or_else(|| env_value("METRICS_PORT"))
                    .unwrap_or(0),
                // kamal-proxy has no variable for this flag; dhow-proxy reads the prefixed
                // name only, so Kamal's `proxy.run.options` (docker flags) can turn it on.
                http3: cmd
                    .http3
                    .or_else(|| {
                        std::env::var("KAMAL_PROXY_HTTP3")
                            .ok()
                            .and_then(|v| parse_bool(&v).ok())
                    })
                    .unwrap_or(false),
            }))
        }
        Command::Deploy(cmd) => deploy_call(cmd).map(Action::Call),
        Command::Remove(cmd) => Ok(Action::Call(Call::Remove {
            service: service_of(&cmd.args)?,
        })),
        Command::List(cmd) => {
            exact_args(&cmd.args, 0)?;
            Ok(Action::Call(Call::List))
        }
        Command::Pause(cmd) => Ok(Action::Call(Call::Pause(PauseArgs {
            service: service_of(&cmd.args)?,
            drain_timeout: cmd.drain_timeout,
            pause_timeout: cmd.max_pause,
        }))),
        Command::Stop(cmd) => Ok(Action::Call(Call::Stop(StopArgs {
            service: service_of(&cmd.args)?,
            drain_timeout: cmd.drain_timeout,
            message: cmd.message,
        }))),
        Command::Resume(cmd) => Ok(Action::Call(Call::Resume {
            service: service_of(&cmd.args)?,
        })),
        Command::Rollout { command } => match command {
            RolloutCommand::Deploy(cmd) => {
                let service = service_of(&cmd.args)?;
                if cmd.target.is_empty() {
                    return Err("required flag(s) \"target\" not set".to_string());
                }
                Ok(Action::Call(Call::RolloutDeploy(RolloutDeployArgs {
                    service,
                    target_urls: cmd.target,
                    reader_urls: cmd.read_target,
                    deployment_options: DeploymentOptions {
                        deploy_timeout: cmd.deploy_timeout,
                        drain_timeout: cmd.drain_timeout,
                        force: false,
                    },
                })))
            }
            RolloutCommand::Set(cmd) => {
                let service = service_of(&cmd.args)?;
                if cmd.percent.is_none() && cmd.list.is_none() {
                    return Err(
                        "at least one of the flags in the group [percent list] is required"
                            .to_string(),
                    );
                }
                Ok(Action::Call(Call::RolloutSet(RolloutSetArgs {
                    service,
                    percentage: cmd.percent.unwrap_or(0),
                    allowlist: cmd.list.unwrap_or_default(),
                })))
            }
            RolloutCommand::Stop(cmd) => Ok(Action::Call(Call::RolloutStop {
                service: service_of(&cmd.args)?,
            })),
        },
        Command::Version(cmd) => {
            exact_args(&cmd.args, 0)?;
            Ok(Action::Version)
        }
    }
}

fn deploy_call(cmd: DeployCmd) -> Result<Call, String> {
    let service = service_of(&cmd.args)?;
    if cmd.target.is_empty() {
        return Err("required flag(s) \"target\" not set".to_string());
    }
    let cert = !cmd.tls_certificate_path.is_empty();
    let key = !cmd.tls_private_key_path.is_empty();
    if cert != key {
        let missing = if cert {
            "tls-private-key-path"
        } else {
            "tls-certificate-path"
        };
        return Err(format!(
            "if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [{missing}]"
        ));
    }
    if cmd.max_request_body.is_some() && cmd.buffer_requests.is_none() {
        return Err("max-request-body can only be set when request buffering is enabled".into());
    }
    if cmd.max_response_body.is_some() && cmd.buffer_responses.is_none() {
        return Err("max-response-body can only be set when response buffering is enabled".into());
    }
    let tls = cmd.tls.unwrap_or(false);
    let service_options = ServiceOptions {
        hosts: cmd.host,
        path_prefixes: cmd.path_prefix,
        tls_enabled: tls,
        tls_certificate_path: cmd.tls_certificate_path,
        tls_private_key_path: cmd.tls_private_key_path,
        tls_on_demand_url: cmd.tls_on_demand_url,
        tls_redirect: cmd.tls_redirect.unwrap_or(true),
        canonical_host: cmd.canonical_host,
        acme_directory: acme_directory(cmd.tls_acme_directory, cmd.tls_staging)?,
        acme_cache_path: cmd
            .tls_acme_cache_path
            .unwrap_or_else(|| paths::default_acme_cache_path().display().to_string()),
        error_page_path: cmd.error_pages,
        strip_prefix: cmd.strip_path_prefix.unwrap_or(true),
        writer_affinity_timeout: cmd.writer_affinity_timeout,
        read_targets_accept_websockets: cmd.read_target_websockets.unwrap_or(false),
        exclude_metrics_paths: cmd.exclude_metrics_path,
        client_ip_header: cmd.client_ip_header,
    };
    service_options.validate().map_err(|e| e.to_string())?;
    let target_options = TargetOptions {
        health_check_config: HealthCheckConfig {
            path: cmd.health_check_path,
            port: cmd.health_check_port,
            interval: cmd.health_check_interval,
            timeout: cmd.health_check_timeout,
            host: cmd.health_check_host,
        },
        response_timeout: cmd.target_timeout,
        buffer_requests: cmd.buffer_requests.unwrap_or(false),
        buffer_responses: cmd.buffer_responses.unwrap_or(false),
        max_memory_buffer_size: cmd.buffer_memory,
        max_request_body_size: cmd.max_request_body.unwrap_or(0),
        max_response_body_size: cmd.max_response_body.unwrap_or(0),
        log_request_headers: cmd.log_request_header,
        log_response_headers: cmd.log_response_header,
        forward_headers: cmd.forward_headers.unwrap_or(!tls),
        scope_cookie_paths: cmd.scope_cookie_paths.unwrap_or(false),
    };
    Ok(Call::Deploy(DeployArgs {
        service,
        target_urls: cmd.target,
        reader_urls: cmd.read_target,
        deployment_options: DeploymentOptions {
            deploy_timeout: cmd.deploy_timeout,
            drain_timeout: cmd.drain_timeout,
            force: cmd.force.unwrap_or(false),
        },
        service_options,
        target_options,
    }))
}

/// The `acme_directory` option: `--tls-acme-directory` (an https URL), Let's Encrypt staging with
/// `--tls-staging`, or empty for Let's Encrypt production.
fn acme_directory(directory: Option<String>, staging: Option<bool>) -> Result<String, String> {
    match (directory, staging.unwrap_or(false)) {
        (Some(_), true) => {
            Err("tls-acme-directory and tls-staging cannot be used together".to_string())
        }
        (Some(url), false) => {
            let valid = url
                .strip_prefix("https://")
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
            if valid {
                Ok(url)
            } else {
                Err(format!(
                    "tls-acme-directory must be an https URL (got \"{url}\")"
                ))
            }
        }
        (None, true) => Ok(LETS_ENCRYPT_STAGING.to_string()),
        (None, false) => Ok(String::new()),
    }
}

/// Renders `list` like kamal-proxy: ANSI-styled, padded cells followed by two spaces.
pub fn render_list(services: &std::collections::BTreeMap<String, ServiceDescription>) -> String {
    const HEADER: &str = "\x1b[3;94m";
    const FIRST: &str = "\x1b[1;34m";
    const RESET: &str = "\x1b[0m";
    let mut rows: Vec<[String; 6]> = vec![[
        "Service".into(),
        "Host".into(),
        "Path".into(),
        "Target".into(),
        "State".into(),
        "TLS".into(),
    ]];
    for (name, s) in services {
        rows.push([
            name.clone(),
            s.host.clone(),
            s.path.clone(),
            s.target.clone(),
            s.state.clone(),
            if s.tls { "yes" } else { "no" }.into(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            let style = if r == 0 {
                HEADER
            } else if i == 0 {
                FIRST
            } else {
                ""
            };
            let _ = write!(out, "{style}{cell:<width$}{RESET}  ", width = widths[i]);
        }
        out.push('\n');
    }
    out
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "Error: {message}");
    ExitCode::from(1)
}

/// Runs the program with the process arguments.
pub fn main_with_args(argv: Vec<String>) -> ExitCode {
    let action = match parse(argv) {
        Ok(action) => action,
        Err(message) => return fail(&message),
    };
    match action {
        Action::Help(text) => {
            let _ = write!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Action::Version => {
            let _ = writeln!(
                std::io::stdout(),
                "kamal-proxy {COMPATIBLE_VERSION} (dhow-proxy {})",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Action::Run(config) => match run_server(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => fail(&message),
        },
        Action::Call(call) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return fail(&e.to_string()),
            };
            let is_list = matches!(call, Call::List);
            let socket = paths::socket_path();
            match runtime.block_on(crate::commands::call(&socket, &call)) {
                Ok(reply) => {
                    if is_list {
                        let _ = write!(
                            std::io::stdout(),
                            "{}",
                            render_list(&reply.services.unwrap_or_default())
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(message) => fail(&message),
            }
        }
    }
}

fn run_server(config: &RunConfig) -> Result<(), String> {
    crate::log::enable(config.debug);
    // The control socket, health checks, metrics, certificates and HTTP/3 run here; HTTP and
    // HTTPS connections are served by one thread per CPU (`Server`'s serving threads).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // Listening before the server starts: a signal sent as soon as `Server started` is
        // logged still shuts it down gracefully.
        let signals = shutdown_signals();
        let any = |port: u16| SocketAddr::from(([0u16; 8], port));
        let server = crate::server::Server::start(crate::server::ServerConfig {
            http_addr: any(config.http_port),
            https_addr: Some(any(config.https_port)),
            metrics_addr: (config.metrics_port != 0).then(|| any(config.metrics_port)),
            socket_path: Some(paths::socket_path()),
            state_path: Some(paths::state_path()),
            acme_ca_file: std::env::var_os("KAMAL_PROXY_ACME_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
            serve_threads: serve_threads(),
            http3: config.http3,
        })
        .await
        .map_err(|e| e.to_string())?;
        wait_for_signal(signals).await;
        server.shutdown().await;
        Ok(())
    })
}

/// Serving threads: `TOKIO_WORKER_THREADS` when set to a positive number, else one per CPU the
/// process may use (affinity and cgroup quota included).
fn serve_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// SIGTERM and SIGINT, listened for from the moment this returns.
fn shutdown_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    Some((
        signal(SignalKind::terminate()).ok()?,
        signal(SignalKind::interrupt()).ok()?,
    ))
}

async fn wait_for_signal(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
) {
    let Some((mut term, mut int)) = signals else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
