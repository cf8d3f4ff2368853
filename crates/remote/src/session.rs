//! One SSH connection to one host (russh): TCP connect with DNS retries, or a jump host's
//! direct-tcpip channel, or a proxy command's stdio; host-key verification; public-key
//! authentication from key files, key data and ssh-agent; keepalive; channel exec with streamed
//! output; uploads through `cat` into a private temporary file renamed into place; SSH remote
//! port forwarding (`tcpip-forward`), each `forwarded-tcpip` channel bridged to a local address.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhow_core::Secret;
use russh::client::{self, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::Child;

use crate::error::{ConnectError, RemoteError};
use crate::host_key::{HostKeyAcceptance, HostKeyError, HostKeyVerifier, LearnedHostKey};
use crate::known_hosts::HostKey;
use crate::transport::{
    ExitStatus, InputStream, OutputSink, OutputStream, RemoteCommand, Transport,
};

/// Kamal's fixed keepalive interval.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// `ssh.proxy`: a jump host, `[user@]host[:port]` (user defaults to `root`, port to 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// SSH user on the jump host.
    pub user: String,
    /// Jump host name or address.
    pub host: String,
    /// SSH port of the jump host.
    pub port: u16,
}

/// A jump host specification could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ssh proxy {spec:?}: expected [user@]host[:port]")]
pub struct JumpHostParseError {
    /// The text given.
    pub spec: String,
}

impl JumpHost {
    /// Parses `[user@]host[:port]`; IPv6 addresses go in brackets: `root@[::1]:2222`.
    pub fn parse(spec: &str) -> Result<Self, JumpHostParseError> {
        let error = || JumpHostParseError {
            spec: spec.to_owned(),
        };
        let (user, rest) = match spec.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (user.to_owned(), rest),
            Some(_) => return Err(error()),
            None => ("root".to_owned(), spec),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(error)?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| error())?,
                None if after.is_empty() => 22,
                None => return Err(error()),
            };
            (host.to_owned(), port)
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().map_err(|_| error())?),
                None => (rest.to_owned(), 22),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) || port == 0 {
            return Err(error());
        }
        Ok(Self { user, host, port })
    }
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// How the TCP stream to a host is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// `ssh.proxy`: through an SSH connection to a jump host.
    Jump(JumpHost),
    /// `ssh.proxy_command`: a command run with `sh -c` whose stdin/stdout carry the SSH stream.
    /// `%h`, `%p`, `%r` and `%%` are replaced by host, port, user and `%`.
    Command(String),
}

/// Connection and authentication settings shared by every host of a run.
#[derive(Clone)]
pub struct SshOptions {
    /// `ssh.user` (default `root`).
    pub user: String,
    /// `ssh.port` (default 22).
    pub port: u16,
    /// `ssh.keys`: private key files.
    pub keys: Vec<PathBuf>,
    /// `ssh.key_data`: private keys as text (resolved secrets).
    pub key_data: Vec<Secret<String>>,
    /// `ssh.keys_only`: use only `keys` and `key_data` (ssh-agent identities only when they
    /// match one of those keys; no default key files).
    pub keys_only: bool,
    /// The ssh-agent socket (`SSH_AUTH_SOCK`), if any.
    pub agent_socket: Option<PathBuf>,
    /// Key files tried when neither `keys` nor `key_data` is given and `keys_only` is off
    /// (OpenSSH's `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`); missing files are skipped.
    pub default_keys: Vec<PathBuf>,
    /// `ssh.proxy` / `ssh.proxy_command`.
    pub proxy: Option<Proxy>,
    /// Limit on connect + handshake + authentication.
    pub connect_timeout: Duration,
    /// Keepalive interval (Kamal: 30 s).
    pub keepalive_interval: Duration,
    /// Retries when a host name does not resolve (sshkit `dns_retries`, default 3).
    pub dns_retries: u32,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            user: "root".to_owned(),
            port: 22,
            keys: Vec::new(),
            key_data: Vec::new(),
            keys_only: false,
            agent_socket: None,
            default_keys: Vec::new(),
            proxy: None,
            connect_timeout: Duration::from_secs(30),
            keepalive_interval: KEEPALIVE_INTERVAL,
            dns_retries: 3,
        }
    }
}

impl fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshOptions")
            .field("user", &self.user)
            .field("port", &self.port)
            .field("keys", &self.keys)
            .field("key_data", &self.key_data)
            .field("keys_only", &self.keys_only)
            .field("agent_socket", &self.agent_socket)
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl SshOptions {
    /// OpenSSH's default identity files under a home directory.
    pub fn default_key_files(home: &std::path::Path) -> Vec<PathBuf> {
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| home.join(".ssh").join(name))
            .collect()
    }
}

/// Remote ports this connection forwards, and where their connections go on this machine.
type Forwards = Arc<Mutex<HashMap<u32, SocketAddr>>>;

/// The russh client handler: verifies the host key and remembers why it refused one; bridges
/// the server's `forwarded-tcpip` channels of the ports asked for to their local addresses.
struct ClientHandler {
    host: String,
    port: u16,
    ip: Option<IpAddr>,
    verifier: Arc<HostKeyVerifier>,
    outcome: Arc<Mutex<Option<Result<HostKeyAcceptance, HostKeyError>>>>,
    forwards: Forwards,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            // Host certificates are not requested; a server presenting one is refused.
            return Ok(false);
        };
        let presented = HostKey::from_public_key(key);
        let verdict = self
            .verifier
            .verify(&self.host, self.port, self.ip, &presented);
        let accepted = verdict.is_ok();
        *self
            .outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(verdict);
        Ok(accepted)
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        _connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let local = self
            .forwards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&connected_port)
            .copied();
        let Some(local) = local else {
            // Not a port this connection asked for: refuse the channel.
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        // Connecting may take a moment: the handler must keep serving the connection meanwhile.
        tokio::spawn(async move {
            match tokio::net::TcpStream::connect(local).await {
                Ok(mut tcp) => {
                    reply.accept().await;
                    let mut stream = channel.into_stream();
                    // Either side closing ends the bridge; there is no one to tell about errors.
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                }
                Err(_) => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
            }
        });
        Ok(())
    }
}

/// An authenticated SSH connection to one host. Commands run on channels multiplexed over it.
pub struct SshSession {
    name: String,
    address: String,
    port: u16,
    user: String,
    handle: Handle<ClientHandler>,
    learned: Option<LearnedHostKey>,
    // Kept alive for as long as the session: the jump connection or the proxy command.
    jump: Option<Arc<SshSession>>,
    proxy: Mutex<Option<ProxyProcess>>,
    forwards: Forwards,
}

impl fmt::Debug for SshSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshSession")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server entry as configured (e.g. `web1` or `deploy@10.0.0.5:2222`); names the host
    /// in command errors and fan-out results.
    pub name: String,
    /// Host name or address to connect to.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
}

impl SshSession {
    /// Connects to `target` directly or with a proxy command (`options.proxy` is read only for
    /// `Proxy::Command`; a jump host is passed as `via`, already connected).
    pub async fn connect(
        target: &Target,
        options: &SshOptions,
        verifier: Arc<HostKeyVerifier>,
        via: Option<Arc<SshSession>>,
    ) -> Result<Self, ConnectError> {
        let timeout = options.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(target, options, verifier, via))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                host: target.host.clone(),
                port: target.port,
                timeout,
            }),
        }
    }

    async fn connect_inner(
        target: &Target,
        options: &SshOptions,
        verifier: Arc<HostKeyVerifier>,
        via: Option<Arc<SshSession>>,
    ) -> Result<Self, ConnectError> {
        let host = target.host.clone();
        let port = target.port;
        if let Some(jump) = via {
            let channel = jump
                .handle
                .channel_open_direct_tcpip(host.clone(), u32::from(port), "127.0.0.1", 0)
                .await
                .map_err(|error| ConnectError::JumpForward {
                    host: host.clone(),
                    port,
                    via: format!("{}@{}:{}", jump.user, jump.address, jump.port),
                    reason: error.to_string(),
                })?;
            let ip = host.parse().ok();
            let mut session =
                Self::handshake(target, options, verifier, ip, channel.into_stream(), None).await?;
            session.jump = Some(jump);
            return Ok(session);
        }
        if let Some(Proxy::Command(command)) = &options.proxy {
            let (stream, child) = spawn_proxy_command(command, target)?;
            let ip = host.parse().ok();
            return Self::handshake(target, options, verifier, ip, stream, Some(child)).await;
        }
        let (stream, peer) = tcp_connect(&host, port, options.dns_retries).await?;
        Self::handshake(target, options, verifier, Some(peer.ip()), stream, None).await
    }

    async fn handshake<S>(
        target: &Target,
        options: &SshOptions,
        verifier: Arc<HostKeyVerifier>,
        ip: Option<IpAddr>,
        stream: S,
        mut proxy: Option<ProxyProcess>,
    ) -> Result<Self, ConnectError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let host = target.host.clone();
        let port = target.port;
        let known = verifier.known_algorithms(&host, port, ip);
        let config = Arc::new(client_config(options, &known));
        let outcome = Arc::new(Mutex::new(None));
        let forwards = Forwards::default();
        let handler = ClientHandler {
            host: host.clone(),
            port,
            ip,
            verifier,
            outcome: Arc::clone(&outcome),
            forwards: Arc::clone(&forwards),
        };
        let connected = client::connect_stream(config, stream, handler).await;
        let recorded = outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let mut handle = match connected {
            Ok(handle) => handle,
            Err(error) => {
                if let Some(Err(host_key_error)) = recorded {
                    return Err(host_key_error.into());
                }
                let reason = error.to_string();
                if let Some(process) = proxy.as_mut() {
                    let reason = process.failure_reason(&reason).await;
                    return Err(ConnectError::ProxyCommand { host, port, reason });
                }
                return Err(ConnectError::Handshake { host, port, reason });
            }
        };
        let learned = match recorded {
            Some(Ok(HostKeyAcceptance::Learned(learned))) => Some(learned),
            _ => None,
        };
        authenticate(&mut handle, target, options).await?;
        Ok(Self {
            name: target.name.clone(),
            address: host,
            port,
            user: target.user.clone(),
            handle,
            learned,
            jump: None,
            proxy: Mutex::new(proxy),
            forwards,
        })
    }

    /// The key trust-on-first-use wrote for this host while connecting, if it did.
    pub fn learned_host_key(&self) -> Option<&LearnedHostKey> {
        self.learned.as_ref()
    }

    /// The SSH user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The SSH port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True once the connection has been closed by either side.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.jump.as_ref().is_some_and(|jump| jump.is_closed())
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        // The peer may already be gone; there is nothing to report then.
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        let process = self
            .proxy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut process) = process {
            process.kill();
        }
    }

    fn forward_error(
        &self,
        port: u16,
        local: SocketAddr,
        reason: impl Into<String>,
    ) -> RemoteError {
        RemoteError::Forward {
            host: self.name.clone(),
            port,
            local: local.to_string(),
            reason: reason.into(),
        }
    }

    /// Asks the server to listen on `127.0.0.1:<port>` and bridges every connection made there
    /// to `local` on this machine (`ssh -R 127.0.0.1:<port>:<local>`), until
    /// [`SshSession::stop_forward`] or the end of the connection.
    pub async fn forward_port(&self, port: u16, local: SocketAddr) -> Result<(), RemoteError> {
        self.forwards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(u32::from(port), local);
        match self
            .handle
            .tcpip_forward("127.0.0.1", u32::from(port))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                self.forwards
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&u32::from(port));
                let reason = match error {
                    russh::Error::RequestDenied => {
                        "the server refused it (is the port in use there, or AllowTcpForwarding off?)"
                            .to_owned()
                    }
                    other => other.to_string(),
                };
                Err(self.forward_error(port, local, reason))
            }
        }
    }

    /// Cancels the forward of `port`; connections already bridged run to their end.
    pub async fn stop_forward(&self, port: u16) -> Result<(), RemoteError> {
        let local = self
            .forwards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&u32::from(port));
        let Some(local) = local else {
            return Ok(());
        };
        self.handle
            .cancel_tcpip_forward("127.0.0.1", u32::from(port))
            .await
            .map_err(|error| self.forward_error(port, local, error.to_string()))
    }

    fn channel_error(&self, command: &RemoteCommand, error: &russh::Error) -> RemoteError {
        RemoteError::Channel {
            host: self.name.clone(),
            command: command.display().to_owned(),
            reason: error.to_string(),
        }
    }

    async fn exec_inner(
        &self,
        command: &RemoteCommand,
        input: Option<&mut InputStream<'_>>,
        on_output: &mut OutputSink<'_>,
    ) -> Result<ExitStatus, RemoteError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|error| self.channel_error(command, &error))?;
        channel
            .exec(true, command.exec_text())
            .await
            .map_err(|error| self.channel_error(command, &error))?;
        let (mut reader, writer) = channel.split();
        // Stdin is written while output is read: a command that echoes its input would
        // otherwise fill the channel window in both directions and stall.
        let send_stdin = async {
            if let Some(input) = input {
                writer.data(input).await?;
            } else if let Some(stdin) = command.stdin() {
                writer.data(stdin).await?;
            }
            writer.eof().await
        };
        let receive = async {
            let mut status = ExitStatus::Unknown;
            let mut refused = false;
            while let Some(message) = reader.wait().await {
                match message {
                    ChannelMsg::Data { data } => on_output(OutputStream::Stdout, &data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        on_output(OutputStream::Stderr, &data);
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = ExitStatus::Code(exit_status);
                    }
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = ExitStatus::Signal(signal_label(&signal_name));
                    }
                    ChannelMsg::Failure => {
                        refused = true;
                        break;
                    }
                    _ => {}
                }
            }
            (status, refused)
        };
        let (sent, (status, refused)) = tokio::join!(send_stdin, receive);
        if refused {
            return Err(RemoteError::Channel {
                host: self.name.clone(),
                command: command.display().to_owned(),
                reason: "the server refused to run the command".to_owned(),
            });
        }
        // A command may exit without reading all of its stdin; that is its business, and its
        // exit status says how it went. Without a status, the write error explains the failure.
        if let (Err(error), ExitStatus::Unknown) = (&sent, &status) {
            return Err(self.channel_error(command, error));
        }
        if status == ExitStatus::Unknown && self.handle.is_closed() {
            return Err(RemoteError::Channel {
                host: self.name.clone(),
                command: command.display().to_owned(),
                reason: "connection closed".to_owned(),
            });
        }
        Ok(status)
    }
}

fn signal_label(signal: &russh::Sig) -> String {
    match signal {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

impl Transport for SshSession {
    fn host(&self) -> &str {
        &self.name
    }

    async fn forward_port(&self, port: u16, local: SocketAddr) -> Result<(), RemoteError> {
        SshSession::forward_port(self, port, local).await
    }

    async fn stop_forward(&self, port: u16) -> Result<(), RemoteError> {
        SshSession::stop_forward(self, port).await
    }

    fn exec<'a>(
        &'a self,
        command: &'a RemoteCommand,
        on_output: &'a mut OutputSink<'_>,
    ) -> impl Future<Output = Result<ExitStatus, RemoteError>> + Send + 'a {
        self.exec_inner(command, None, on_output)
    }

    fn exec_with_input<'a>(
        &'a self,
        command: &'a RemoteCommand,
        input: &'a mut InputStream<'_>,
        on_output: &'a mut OutputSink<'_>,
    ) -> impl Future<Output = Result<ExitStatus, RemoteError>> + Send + 'a {
        self.exec_inner(command, Some(input), on_output)
    }

    async fn upload(&self, contents: &[u8], path: &str, mode: u32) -> Result<(), RemoteError> {
        let script = upload_script(path, mode, &random_suffix());
        let command = RemoteCommand::plain(script).with_stdin(Secret::new(contents.to_vec()));
        let output = self.capture(&command).await.map_err(|error| match error {
            RemoteError::Channel { reason, .. } => RemoteError::Upload {
                host: self.name.clone(),
                path: path.to_owned(),
                reason,
            },
            other => other,
        })?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = crate::transport::tail(&output.stderr, 1024);
            Err(RemoteError::Upload {
                host: self.name.clone(),
                path: path.to_owned(),
                reason: format!("{}: {}", output.status, stderr.trim_end()),
            })
        }
    }
}

/// Single-quotes a word for POSIX `sh`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The script behind [`Transport::upload`]: with `umask 077` the temporary file is created
/// private, `chmod` sets the wanted mode before `mv` puts it in place atomically; the temporary
/// file is removed if anything fails.
pub fn upload_script(path: &str, mode: u32, suffix: &str) -> String {
    let temporary = quote(&format!("{path}.dhow-upload-{suffix}"));
    format!(
        "umask 077 && cat > {temporary} && chmod {mode:o} {temporary} && mv -f {temporary} {} \
         || {{ status=$?; rm -f {temporary}; exit $status; }}",
        quote(path)
    )
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    // The suffix only avoids collisions between concurrent uploads; a failing RNG degrades to
    // a time-based suffix.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().fold(String::new(), |mut text, byte| {
        use std::fmt::Write as _;
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn client_config(options: &SshOptions, known_algorithms: &[String]) -> client::Config {
    let mut preferred = russh::Preferred::default();
    if !known_algorithms.is_empty() {
        let defaults: Vec<russh::keys::Algorithm> = preferred.key.to_vec();
        let mut ordered: Vec<russh::keys::Algorithm> = Vec::new();
        for known in known_algorithms {
            for algorithm in &defaults {
                let name = algorithm.as_str();
                let rsa = matches!(algorithm, russh::keys::Algorithm::Rsa { .. });
                let same = name == known
                    || (rsa && (known == "ssh-rsa" || known.starts_with("rsa-sha2-")));
                if same && !ordered.contains(algorithm) {
                    ordered.push(algorithm.clone());
                }
            }
        }
        for algorithm in defaults {
            if !ordered.contains(&algorithm) {
                ordered.push(algorithm);
            }
        }
        preferred.key = Cow::Owned(ordered);
    }
    client::Config {
        keepalive_interval: Some(options.keepalive_interval),
        keepalive_max: 3,
        nodelay: true,
        preferred,
        ..client::Config::default()
    }
}

async fn tcp_connect(
    host: &str,
    port: u16,
    dns_retries: u32,
) -> Result<(tokio::net::TcpStream, SocketAddr), ConnectError> {
    let mut attempt = 0;
    let mut delay = Duration::from_millis(100);
    let addresses: Vec<SocketAddr> = loop {
        match tokio::net::lookup_host((host, port)).await {
            Ok(found) => break found.collect(),
            Err(error) if attempt >= dns_retries => {
                return Err(ConnectError::Resolve {
                    host: host.to_owned(),
                    reason: error.to_string(),
                });
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    };
    let mut last_error = None;
    for address in &addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => {
                // Nagle only delays small SSH packets.
                let _ = stream.set_nodelay(true);
                return Ok((stream, *address));
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        Some(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            ConnectError::Refused {
                host: host.to_owned(),
                port,
            }
        }
        Some(error) => ConnectError::Io {
            host: host.to_owned(),
            port,
            reason: error.to_string(),
        },
        None => ConnectError::Resolve {
            host: host.to_owned(),
            reason: "no addresses".to_owned(),
        },
    })
}

/// Expands `%h`, `%p`, `%r` and `%%` in a proxy command.
pub fn expand_proxy_command(command: &str, target: &Target) -> String {
    let mut expanded = String::new();
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            expanded.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => expanded.push_str(&target.host),
            Some('p') => expanded.push_str(&target.port.to_string()),
            Some('r') => expanded.push_str(&target.user),
            Some(other) if other != '%' => {
                expanded.push('%');
                expanded.push(other);
            }
            Some(_) | None => expanded.push('%'),
        }
    }
    expanded
}

type ProxyStream = tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>;

/// A running proxy command. Its stderr is drained in the background (so a chatty command
/// never blocks on a full pipe) and the end of it is kept for error messages.
struct ProxyProcess {
    child: Child,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    drain: tokio::task::JoinHandle<()>,
}

const PROXY_STDERR_KEEP: usize = 4096;

fn spawn_proxy_command(
    command: &str,
    target: &Target,
) -> Result<(ProxyStream, ProxyProcess), ConnectError> {
    let expanded = expand_proxy_command(command, target);
    let failed = |reason: String| ConnectError::ProxyCommand {
        host: target.host.clone(),
        port: target.port,
        reason,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&expanded)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| failed(format!("cannot start `{expanded}`: {error}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no stdout".to_owned()))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| failed("no stdin".to_owned()))?;
    let stderr = child.stderr.take();
    let stderr_tail = Arc::new(Mutex::new(Vec::new()));
    let tail = Arc::clone(&stderr_tail);
    let drain = tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let Some(mut stderr) = stderr else { return };
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stderr.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            let mut kept = tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kept.extend_from_slice(&buffer[..read]);
            let excess = kept.len().saturating_sub(PROXY_STDERR_KEEP);
            kept.drain(..excess);
        }
    });
    Ok((
        tokio::io::join(stdout, stdin),
        ProxyProcess {
            child,
            stderr_tail,
            drain,
        },
    ))
}

impl ProxyProcess {
    async fn failure_reason(&mut self, ssh_reason: &str) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => format!("the command exited with {status}"),
            _ => "the command did not exit".to_owned(),
        };
        // Once the command is gone its stderr reaches end-of-file shortly.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.drain).await;
        let kept = self
            .stderr_tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let stderr = crate::transport::tail(&kept, 1024);
        let stderr = stderr.trim_end();
        if stderr.is_empty() {
            format!("{ssh_reason}; {status}")
        } else {
            format!("{ssh_reason}; {status}: {stderr}")
        }
    }

    fn kill(&mut self) {
        // The command may already have exited with the connection.
        let _ = self.child.start_kill();
        self.drain.abort();
    }
}

fn describe(key: &PublicKey) -> String {
    let host_key = HostKey::from_public_key(key);
    format!("{} {}", host_key.algorithm(), host_key.fingerprint())
}

/// Outcome of one authentication attempt.
enum Attempt {
    Success,
    Refused { publickey_still_allowed: bool },
}

fn attempt_result(result: &client::AuthResult) -> Attempt {
    match result {
        client::AuthResult::Success => Attempt::Success,
        client::AuthResult::Failure {
            remaining_methods, ..
        } => Attempt::Refused {
            publickey_still_allowed: remaining_methods
                .iter()
                .any(|method| matches!(method, russh::MethodKind::PublicKey)),
        },
    }
}

async fn try_private_key(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    key: PrivateKey,
) -> Result<Attempt, russh::Error> {
    let hash = if key.algorithm().is_rsa() {
        handle.best_supported_rsa_hash().await?.flatten()
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await?;
    Ok(attempt_result(&result))
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear sequence of authentication methods"
)]
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    target: &Target,
    options: &SshOptions,
) -> Result<(), ConnectError> {
    let user = target.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let handshake_error = |error: &russh::Error| ConnectError::Handshake {
        host: target.host.clone(),
        port: target.port,
        reason: error.to_string(),
    };
    // Public keys the user named; with keys_only, agent identities must be one of these.
    let mut named_public_keys: Vec<PublicKey> = Vec::new();

    let explicit = !options.keys.is_empty() || !options.key_data.is_empty();
    let mut files: Vec<(PathBuf, bool)> = options.keys.iter().map(|p| (p.clone(), true)).collect();
    if !explicit && !options.keys_only {
        files.extend(options.default_keys.iter().map(|p| (p.clone(), false)));
    }

    for (path, named) in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Secret::new(text),
            Err(error) => {
                if *named {
                    tried.push(format!("key file {} (unreadable: {error})", path.display()));
                }
                continue;
            }
        };
        match russh::keys::decode_secret_key(text.expose(), None) {
            Ok(key) => {
                named_public_keys.push(key.public_key().clone());
                let label = format!(
                    "key file {} ({})",
                    path.display(),
                    describe(key.public_key())
                );
                tried.push(label);
                match try_private_key(handle, user, key)
                    .await
                    .map_err(|e| handshake_error(&e))?
                {
                    Attempt::Success => return Ok(()),
                    Attempt::Refused {
                        publickey_still_allowed: false,
                    } => break,
                    Attempt::Refused { .. } => {}
                }
            }
            Err(russh::keys::Error::KeyIsEncrypted) => {
                // Its public half may be in the agent.
                let public = std::fs::read_to_string(path.with_extension("pub"))
                    .ok()
                    .and_then(|text| PublicKey::from_openssh(text.trim()).ok());
                if let Some(public) = public {
                    named_public_keys.push(public);
                }
                tried.push(format!(
                    "key file {} (encrypted; needs its key in ssh-agent)",
                    path.display()
                ));
            }
            Err(_) => tried.push(format!("key file {} (not a private key)", path.display())),
        }
    }

    for (index, data) in options.key_data.iter().enumerate() {
        let label = format!("key_data[{index}]");
        match russh::keys::decode_secret_key(data.expose(), None) {
            Ok(key) => {
                named_public_keys.push(key.public_key().clone());
                tried.push(format!("{label} ({})", describe(key.public_key())));
                match try_private_key(handle, user, key)
                    .await
                    .map_err(|e| handshake_error(&e))?
                {
                    Attempt::Success => return Ok(()),
                    Attempt::Refused {
                        publickey_still_allowed: false,
                    } => break,
                    Attempt::Refused { .. } => {}
                }
            }
            Err(russh::keys::Error::KeyIsEncrypted) => {
                tried.push(format!(
                    "{label} (encrypted; passphrases are not supported)"
                ));
            }
            Err(_) => tried.push(format!("{label} (not a private key)")),
        }
    }

    if let Some(socket) = &options.agent_socket {
        match AgentClient::connect_uds(socket).await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(identities) => {
                    let mut offered = 0;
                    for identity in identities {
                        let AgentIdentity::PublicKey { key, .. } = identity else {
                            continue;
                        };
                        if options.keys_only
                            && !named_public_keys
                                .iter()
                                .any(|named| named.key_data() == key.key_data())
                        {
                            continue;
                        }
                        offered += 1;
                        tried.push(format!("ssh-agent key {}", describe(&key)));
                        let hash = if key.algorithm().is_rsa() {
                            handle
                                .best_supported_rsa_hash()
                                .await
                                .map_err(|e| handshake_error(&e))?
                                .flatten()
                        } else {
                            None
                        };
                        match handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            Ok(result) => match attempt_result(&result) {
                                Attempt::Success => return Ok(()),
                                Attempt::Refused {
                                    publickey_still_allowed: false,
                                } => break,
                                Attempt::Refused { .. } => {}
                            },
                            Err(error) => {
                                tried.push(format!("ssh-agent signing failed: {error}"));
                            }
                        }
                    }
                    if offered == 0 {
                        tried.push("ssh-agent (no usable identities)".to_owned());
                    }
                }
                Err(error) => tried.push(format!("ssh-agent (cannot list keys: {error})")),
            },
            Err(error) => tried.push(format!(
                "ssh-agent at {} (cannot connect: {error})",
                socket.display()
            )),
        }
    }

    Err(ConnectError::Auth {
        host: target.host.clone(),
        port: target.port,
        user: user.to_owned(),
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_host_parsing() {
        assert_eq!(
            JumpHost::parse("bastion").unwrap(),
            JumpHost {
                user: "root".into(),
                host: "bastion".into(),
                port: 22
            }
        );
        assert_eq!(
            JumpHost::parse("ops@bastion:2222").unwrap(),
            JumpHost {
                user: "ops".into(),
                host: "bastion".into(),
                port: 2222
            }
        );
        assert_eq!(
            JumpHost::parse("root@[::1]:2200").unwrap(),
            JumpHost {
                user: "root".into(),
                host: "::1".into(),
                port: 2200
            }
        );
        assert_eq!(
            JumpHost::parse("ops@bastion:2222").unwrap().to_string(),
            "ops@bastion:2222"
        );
        assert_eq!(
            JumpHost::parse("root@[::1]:2200").unwrap().to_string(),
            "root@[::1]:2200"
        );
        for bad in ["", "@host", "host:port", "host:0", "a b", "[::1", "[::1]x"] {
            assert!(JumpHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_command_expansion() {
        let target = Target {
            name: "web1".into(),
            host: "web1".into(),
            port: 2201,
            user: "deploy".into(),
        };
        assert_eq!(
            expand_proxy_command("nc -x proxy %h %p # %r 100%% %z", &target),
            "nc -x proxy web1 2201 # deploy 100% %z"
        );
    }

    #[test]
    fn upload_script_is_private_until_renamed() {
        assert_eq!(
            upload_script(".kamal/apps/app/env/roles/web.env", 0o600, "abc"),
            "umask 077 && cat > '.kamal/apps/app/env/roles/web.env.dhow-upload-abc' && \
             chmod 600 '.kamal/apps/app/env/roles/web.env.dhow-upload-abc' && \
             mv -f '.kamal/apps/app/env/roles/web.env.dhow-upload-abc' '.kamal/apps/app/env/roles/web.env' \
             || { status=$?; rm -f '.kamal/apps/app/env/roles/web.env.dhow-upload-abc'; exit $status; }"
        );
        assert!(upload_script("it's", 0o644, "x").contains("'it'\\''s.dhow-upload-x'"));
    }

    #[test]
    fn known_algorithms_come_first() {
        let config = client_config(&SshOptions::default(), &["ssh-rsa".to_owned()]);
        assert!(matches!(
            config.preferred.key[0],
            russh::keys::Algorithm::Rsa { .. }
        ));
        assert_eq!(config.keepalive_interval, Some(KEEPALIVE_INTERVAL));
        let default = client_config(&SshOptions::default(), &[]);
        assert_eq!(default.preferred.key, russh::Preferred::default().key);
    }

    #[test]
    fn options_debug_hides_key_data() {
        let options = SshOptions {
            key_data: vec![Secret::from("-----BEGIN OPENSSH PRIVATE KEY----- canary")],
            ..SshOptions::default()
        };
        let debug = format!("{options:?}");
        assert!(!debug.contains("canary"), "{debug}");
    }
}
