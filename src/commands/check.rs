//! `dhow check`: before anything is changed, verifies on every selected host that SSH connects,
//! the host key is trusted, Docker is installed and running, the registry login works (in a
//! throw-away Docker config, so the host's own login is left alone), and that every secret the
//! configuration references resolves. Prints one row per host and fails listing every failing
//! host.

use std::fmt::Write as _;
use std::sync::Arc;

use dhow_core::Secret;
use dhow_core::cmd::Command;
use dhow_core::config::{Config, Credential};
use dhow_core::docker::{registry, server};
use dhow_core::secrets::Reference;
use dhow_remote::{ConnectError, RemoteCommand, Transport};

use super::server::{Run, cancel_on_signals, runtime};
use crate::cli::GlobalArgs;
use crate::error::{Error, ExitCode};
use crate::printer::Printer;

/// One cell of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Ok,
    Skipped(String),
    NotChecked,
    Failed(String),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Ok => "ok".to_owned(),
            Cell::Skipped(reason) => format!("skipped ({reason})"),
            Cell::NotChecked => "-".to_owned(),
            Cell::Failed(reason) => format!("FAILED: {reason}"),
        }
    }
}

/// A host's row.
#[derive(Debug, Clone)]
struct Row {
    host: String,
    ssh: Cell,
    host_key: Cell,
    docker: Cell,
    registry: Cell,
    secrets: Cell,
    code: ExitCode,
}

impl Row {
    fn failed(&self) -> bool {
        [
            &self.ssh,
            &self.host_key,
            &self.docker,
            &self.registry,
            &self.secrets,
        ]
        .iter()
        .any(|cell| matches!(cell, Cell::Failed(_)))
    }
}

/// Every secret name the configuration refers to, with where.
fn referenced_secrets(config: &Config, file: &str) -> Vec<(String, Reference)> {
    let mut wanted: Vec<(String, Reference)> = Vec::new();
    let mut add = |name: &str, key_path: String| {
        if !wanted.iter().any(|(existing, _)| existing == name) {
            wanted.push((name.to_owned(), Reference::new(key_path, file, None)));
        }
    };
    for secret in config.env.secrets() {
        add(&secret.secret, "env.secret".to_owned());
    }
    for (tag, env) in &config.env_tags {
        for secret in env.secrets() {
            add(&secret.secret, format!("env.tags.{tag}.secret"));
        }
    }
    for role in &config.roles {
        for secret in role.specialized_env.secrets() {
            add(&secret.secret, format!("servers.{}.env.secret", role.name));
        }
    }
    for accessory in &config.accessories {
        for secret in accessory.env.secrets() {
            add(
                &secret.secret,
                format!("accessories.{}.env.secret", accessory.name),
            );
        }
    }
    for (key, credential) in [
        ("registry.username", &config.registry.username),
        ("registry.password", &config.registry.password),
    ] {
        if let Some(Credential::Secret(name)) = credential {
            add(name, key.to_owned());
        }
    }
    for name in &config.builder.secrets {
        add(name, "builder.secrets".to_owned());
    }
    for (index, item) in config.ssh.key_data.iter().enumerate() {
        if !item.contains("-----BEGIN") {
            add(item, format!("ssh.key_data[{index}]"));
        }
    }
    wanted
}

pub fn run(global: &GlobalArgs, printer: Printer) -> Result<(), Error> {
    let run = Run::prepare(global, printer, "check", None, true)?;
    let file = global.config_file.to_string_lossy().into_owned();

    // Secrets are resolved here, on this machine; the result is the same for every host.
    let wanted = referenced_secrets(&run.config, &file);
    let secrets_cell = match &run.secrets {
        Some(secrets) => {
            let items = wanted
                .iter()
                .map(|(name, reference)| (name.as_str(), Some(reference)));
            match secrets.resolve_all(items, &run.env) {
                Ok(_) => Cell::Ok,
                Err(missing) => Cell::Failed(
                    missing
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            }
        }
        None => Cell::NotChecked,
    };

    let login = registry_login(&run);
    run.pre_connect()?;
    let pool = run.pool()?;
    let hosts = run.selection.hosts.clone();
    let runtime = runtime()?;
    let rows: Vec<Row> = runtime.block_on(async {
        let cancel = cancel_on_signals();
        let mut tasks = Vec::new();
        for host in &hosts {
            let pool = pool.clone();
            let host = host.clone();
            let login = login.clone();
            let secrets = secrets_cell.clone();
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    row = check_host(&pool, &host, login, secrets.clone()) => row,
                    () = cancel.cancelled() => Row {
                        host: host.clone(),
                        ssh: Cell::Failed("interrupted".to_owned()),
                        host_key: Cell::NotChecked,
                        docker: Cell::NotChecked,
                        registry: Cell::NotChecked,
                        secrets,
                        code: ExitCode::Failure,
                    },
                }
            }));
        }
        let mut rows = Vec::new();
        for (task, host) in tasks.into_iter().zip(&hosts) {
            rows.push(task.await.unwrap_or_else(|error| Row {
                host: host.clone(),
                ssh: Cell::Failed(format!("internal error: {error}")),
                host_key: Cell::NotChecked,
                docker: Cell::NotChecked,
                registry: Cell::NotChecked,
                secrets: Cell::NotChecked,
                code: ExitCode::Failure,
            }));
        }
        pool.close().await;
        rows
    });
    run.report_learned(&pool);
    printer.data(&table(&rows));
    let failing: Vec<&Row> = rows.iter().filter(|row| row.failed()).collect();
    if failing.is_empty() {
        return Ok(());
    }
    Err(Error::CheckFailed {
        hosts: failing.iter().map(|row| row.host.clone()).collect(),
        total: rows.len(),
        code: ExitCode::most_specific(failing.iter().map(|row| row.code)),
    })
}

/// The login to try on each host, or why there is none.
#[derive(Clone)]
enum Login {
    Try(Arc<RemoteCommand>),
    Skip(String),
    Fail(String),
}

fn registry_login(run: &Run) -> Login {
    let registry = &run.config.registry;
    if registry.is_local() {
        return Login::Skip("local registry".to_owned());
    }
    let resolve = |credential: &Option<Credential>| -> Result<Option<Secret<String>>, String> {
        match credential {
            None => Ok(None),
            Some(Credential::Clear(value)) => Ok(Some(Secret::new(value.clone()))),
            Some(Credential::Secret(name)) => run
                .secrets
                .as_ref()
                .and_then(|secrets| secrets.resolve(name, &run.env, None).ok())
                .map(Some)
                .ok_or_else(|| format!("secret {name} does not resolve")),
        }
    };
    let (username, password) = match (resolve(&registry.username), resolve(&registry.password)) {
        (Ok(Some(username)), Ok(Some(password))) => (username, password),
        (Err(reason), _) | (_, Err(reason)) => return Login::Fail(reason),
        _ => return Login::Skip("no registry credentials".to_owned()),
    };
    let server = registry.server.as_deref();
    let login = registry::login(server, username.expose(), &password);
    // A throw-away DOCKER_CONFIG: the check must not change (or log out) the host's login.
    let mut command = Command::new("d=$(mktemp -d) && DOCKER_CONFIG=\"$d\"")
        .tokens(login.as_tokens().to_vec())
        .arg(">/dev/null; s=$?; DOCKER_CONFIG=\"$d\"")
        .tokens(registry::logout(server).as_tokens().to_vec())
        .args([">/dev/null", "2>&1;", "rm", "-rf", "\"$d\";", "exit", "$s"]);
    if let Some(stdin) = login.stdin() {
        command = command.with_stdin(stdin.clone());
    }
    Login::Try(Arc::new(
        RemoteCommand::from(&command).with_scrubbed([username, password]),
    ))
}

/// The last non-empty line of some output, for a table cell.
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no output")
        .to_owned()
}

async fn check_host(pool: &dhow_remote::Pool, host: &str, login: Login, secrets: Cell) -> Row {
    let mut row = Row {
        host: host.to_owned(),
        ssh: Cell::Ok,
        host_key: Cell::Ok,
        docker: Cell::NotChecked,
        registry: Cell::NotChecked,
        secrets,
        code: ExitCode::Failure,
    };
    let session = match pool.session(host).await {
        Ok(session) => session,
        Err(error) => {
            row.code = ExitCode::of_remote(&error.clone().into());
            let mut root = &error;
            while let ConnectError::Jump { source, .. } = root {
                root = source;
            }
            match root {
                ConnectError::HostKey(_) => row.host_key = Cell::Failed(error.to_string()),
                // Authentication comes after the key exchange: the key was verified.
                ConnectError::Auth { .. } => row.ssh = Cell::Failed(error.to_string()),
                _ => {
                    row.ssh = Cell::Failed(error.to_string());
                    row.host_key = Cell::NotChecked;
                }
            }
            return row;
        }
    };
    let version = RemoteCommand::from(&server::docker_running());
    row.docker = match session.capture(&version).await {
        Ok(output) if output.status.success() => Cell::Ok,
        Ok(output) => Cell::Failed(format!(
            "`docker version` {}: {}",
            output.status,
            last_line(&output.stderr_text())
        )),
        Err(error) => Cell::Failed(error.to_string()),
    };
    row.registry = match login {
        Login::Skip(reason) => Cell::Skipped(reason),
        Login::Fail(reason) => Cell::Failed(reason),
        Login::Try(_) if row.docker != Cell::Ok => Cell::NotChecked,
        Login::Try(command) => match session.capture(&command).await {
            Ok(output) if output.status.success() => Cell::Ok,
            Ok(output) => Cell::Failed(format!(
                "docker login {}: {}",
                output.status,
                command.scrub(&last_line(&output.stderr_text()))
            )),
            Err(error) => Cell::Failed(error.to_string()),
        },
    };
    row
}

/// A plain-text table, columns padded.
fn table(rows: &[Row]) -> String {
    let header = ["HOST", "SSH", "HOST KEY", "DOCKER", "REGISTRY", "SECRETS"].map(str::to_owned);
    let mut lines: Vec<[String; 6]> = vec![header];
    for row in rows {
        lines.push([
            row.host.clone(),
            row.ssh.text(),
            row.host_key.text(),
            row.docker.text(),
            row.registry.text(),
            row.secrets.text(),
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (index, (cell, width)) in line.iter().zip(widths).enumerate() {
            if index + 1 == line.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_shows_reasons() {
        let rows = vec![
            Row {
                host: "web-1".to_owned(),
                ssh: Cell::Ok,
                host_key: Cell::Ok,
                docker: Cell::Ok,
                registry: Cell::Skipped("local registry".to_owned()),
                secrets: Cell::Ok,
                code: ExitCode::Failure,
            },
            Row {
                host: "w2".to_owned(),
                ssh: Cell::Failed("connection to w2:22 refused".to_owned()),
                host_key: Cell::NotChecked,
                docker: Cell::NotChecked,
                registry: Cell::NotChecked,
                secrets: Cell::Ok,
                code: ExitCode::Ssh,
            },
        ];
        assert_eq!(
            table(&rows),
            "HOST   SSH                                  HOST KEY  DOCKER  REGISTRY                  SECRETS\n\
             web-1  ok                                   ok        ok      skipped (local registry)  ok\n\
             w2     FAILED: connection to w2:22 refused  -         -       -                         ok\n"
        );
        assert!(!rows[0].failed());
        assert!(rows[1].failed());
    }
}
