//! The control protocol between the `kamal-proxy` client subcommands and the server: one JSON
//! request line and one JSON response line over the unix socket, mirroring kamal-proxy's RPC calls.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::options::{DeploymentOptions, Nanos, ServiceOptions, TargetOptions};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DeployArgs {
    pub service: String,
    pub target_urls: Vec<String>,
    pub reader_urls: Vec<String>,
    pub deployment_options: DeploymentOptions,
    pub service_options: ServiceOptions,
    pub target_options: TargetOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PauseArgs {
    pub service: String,
    pub drain_timeout: Nanos,
    pub pause_timeout: Nanos,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StopArgs {
    pub service: String,
    pub drain_timeout: Nanos,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RolloutDeployArgs {
    pub service: String,
    pub target_urls: Vec<String>,
    pub reader_urls: Vec<String>,
    pub deployment_options: DeploymentOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RolloutSetArgs {
    pub service: String,
    pub percentage: i64,
    pub allowlist: Vec<String>,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceDescription {
    pub host: String,
    pub path: String,
    pub tls: bool,
    pub target: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "args")]
#[expect(clippy::large_enum_variant, reason = "one call per connection")]
pub enum Call {
    Deploy(DeployArgs),
    Remove { service: String },
    Pause(PauseArgs),
    Stop(StopArgs),
    Resume { service: String },
    List,
    RolloutDeploy(RolloutDeployArgs),
    RolloutSet(RolloutSetArgs),
    RolloutStop { service: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<BTreeMap<String, ServiceDescription>>,
}

/// Sends one call and waits for its reply. Errors are the text printed after `Error: `.
pub async fn call(socket: &Path, request: &Call) -> Result<Reply, String> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("dial unix {}: connect: {}", socket.display(), os_text(&e)))?;
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut response = String::new();
    reader
        .read_line(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    if response.is_empty() {
        return Err("unexpected EOF".to_string());
    }
    let reply: Reply = serde_json::from_str(&response).map_err(|e| e.to_string())?;
    match reply.error {
        Some(error) => Err(error),
        None => Ok(reply),
    }
}

fn os_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}
