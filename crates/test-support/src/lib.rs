//! Test doubles for dhow (dev-only). [`SshServer`]: an in-process SSH server on `127.0.0.1:0`
//! with a generated host key and public-key authentication, which runs each exec request with
//! `sh -c` in a working directory of the test's choice, records what it received, and can
//! forward `direct-tcpip` channels (to act as a jump host) and serve remote port forwards
//! (`tcpip-forward`: it listens and opens a `forwarded-tcpip` channel per connection).

pub mod github;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub use russh::keys::PrivateKey as SshPrivateKey;

/// A new random Ed25519 key.
pub fn generate_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("ed25519 key generation")
}

/// The key in OpenSSH private-key format (what `ssh-keygen` writes).
pub fn private_key_openssh(key: &PrivateKey) -> String {
    key.to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .expect("encode private key")
        .to_string()
}

/// Writes the key to `path` with mode 0600 and returns the path.
pub fn write_private_key(key: &PrivateKey, path: &Path) -> PathBuf {
    std::fs::write(path, private_key_openssh(key)).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    }
    path.to_owned()
}

/// A new random ECDSA P-256 key.
pub fn generate_ecdsa_key() -> PrivateKey {
    PrivateKey::random(
        &mut rand::rng(),
        Algorithm::Ecdsa {
            curve: russh::keys::EcdsaCurve::NistP256,
        },
    )
    .expect("ecdsa key generation")
}

/// `algorithm base64` of a public key.
pub fn public_key_openssh(key: &PublicKey) -> String {
    let text = key.to_openssh().expect("encode public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the server saw on one exec request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCommand {
    /// The authenticated user.
    pub user: String,
    /// The command text.
    pub command: String,
    /// The bytes received on stdin.
    pub stdin: Vec<u8>,
}

/// What the server recorded.
#[derive(Debug, Default)]
pub struct Journal {
    /// Exec requests, in the order they finished.
    pub commands: Vec<ReceivedCommand>,
    /// `direct-tcpip` destinations asked for, as `host:port`.
    pub forwards: Vec<String>,
    /// `tcpip-forward` requests, as `address:port`, and `cancel:address:port` for cancels.
    pub remote_forwards: Vec<String>,
    /// Users that authenticated.
    pub logins: Vec<String>,
    /// Public keys offered that were refused.
    pub refused_keys: usize,
}

/// Settings of a test server.
#[derive(Debug, Clone)]
pub struct SshServerConfig {
    /// Keys allowed to log in (any user).
    pub authorized_keys: Vec<PublicKey>,
    /// Directory commands run in (stands in for the user's home).
    pub workdir: PathBuf,
    /// Whether `direct-tcpip` channels and `tcpip-forward` requests are served.
    pub allow_forwarding: bool,
    /// The host key; a fresh one when `None`.
    pub host_key: Option<PrivateKey>,
    /// Further host keys of other algorithms (a real server has several).
    pub extra_host_keys: Vec<PrivateKey>,
}

/// A running in-process SSH server. Stops when dropped.
#[derive(Debug)]
pub struct SshServer {
    addr: SocketAddr,
    host_key: PublicKey,
    journal: Arc<Mutex<Journal>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SshServer {
    /// Binds `127.0.0.1:0` and serves in the background.
    pub async fn start(config: SshServerConfig) -> Self {
        let host_key = config.host_key.clone().unwrap_or_else(generate_key);
        let public = host_key.public_key().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let journal = Arc::new(Mutex::new(Journal::default()));
        let russh_config = Arc::new(server::Config {
            keys: std::iter::once(host_key)
                .chain(config.extra_host_keys.iter().cloned())
                .collect(),
            auth_rejection_time: std::time::Duration::from_millis(0),
            auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
            ..server::Config::default()
        });
        let mut factory = Factory {
            config: Arc::new(config),
            journal: Arc::clone(&journal),
        };
        let task = tokio::spawn(async move {
            // Errors end the server; tests then see connection failures.
            let _ = factory.run_on_socket(russh_config, &listener).await;
        });
        Self {
            addr,
            host_key: public,
            journal,
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its host key.
    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// The `known_hosts` line for this server reached as `127.0.0.1`.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[127.0.0.1]:{} {}",
            self.port(),
            public_key_openssh(&self.host_key)
        )
    }

    /// The host key's SHA256 fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.host_key
            .fingerprint(russh::keys::HashAlg::Sha256)
            .to_string()
    }

    /// A copy of what was recorded so far.
    pub fn commands(&self) -> Vec<ReceivedCommand> {
        self.journal.lock().expect("journal").commands.clone()
    }

    /// `direct-tcpip` destinations asked for so far.
    pub fn forwards(&self) -> Vec<String> {
        self.journal.lock().expect("journal").forwards.clone()
    }

    /// `tcpip-forward` requests (`address:port`) and cancels (`cancel:address:port`) so far.
    pub fn remote_forwards(&self) -> Vec<String> {
        self.journal
            .lock()
            .expect("journal")
            .remote_forwards
            .clone()
    }

    /// Users that logged in so far.
    pub fn logins(&self) -> Vec<String> {
        self.journal.lock().expect("journal").logins.clone()
    }
}

#[derive(Clone)]
struct Factory {
    config: Arc<SshServerConfig>,
    journal: Arc<Mutex<Journal>>,
}

impl server::Server for Factory {
    type Handler = Handler;

    fn new_client(&mut self, _: Option<SocketAddr>) -> Handler {
        Handler {
            config: Arc::clone(&self.config),
            journal: Arc::clone(&self.journal),
            user: String::new(),
            listeners: Listeners::default(),
        }
    }
}

struct Handler {
    config: Arc<SshServerConfig>,
    journal: Arc<Mutex<Journal>>,
    user: String,
    listeners: Listeners,
}

/// The listeners of a connection's remote forwards, by port; stopped with the connection.
#[derive(Default)]
struct Listeners(std::collections::HashMap<u32, tokio::task::JoinHandle<()>>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

impl server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.authorized(offer.public_key) {
            Ok(Auth::Accept)
        } else {
            self.journal.lock().expect("journal").refused_keys += 1;
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.authorized(key.public_key) {
            user.clone_into(&mut self.user);
            self.journal
                .lock()
                .expect("journal")
                .logins
                .push(user.to_owned());
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let workdir = self.config.workdir.clone();
        let journal = Arc::clone(&self.journal);
        let user = self.user.clone();
        tokio::spawn(serve_session(channel, workdir, journal, user));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let destination = format!("{host_to_connect}:{port_to_connect}");
        self.journal
            .lock()
            .expect("journal")
            .forwards
            .push(destination.clone());
        if !self.config.allow_forwarding {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let Ok(mut tcp) = tokio::net::TcpStream::connect(&destination).await else {
            reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(async move {
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
        });
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.journal
            .lock()
            .expect("journal")
            .remote_forwards
            .push(format!("{address}:{port}"));
        if !self.config.allow_forwarding || self.listeners.0.contains_key(port) {
            return Ok(false);
        }
        let Ok(requested) = u16::try_from(*port) else {
            return Ok(false);
        };
        let Ok(listener) = TcpListener::bind((address, requested)).await else {
            return Ok(false);
        };
        let bound = u32::from(listener.local_addr().expect("local addr").port());
        *port = bound;
        let task = tokio::spawn(serve_remote_forward(
            listener,
            session.handle(),
            address.to_owned(),
            bound,
        ));
        self.listeners.0.insert(bound, task);
        Ok(true)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.journal
            .lock()
            .expect("journal")
            .remote_forwards
            .push(format!("cancel:{address}:{port}"));
        Ok(match self.listeners.0.remove(&port) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        })
    }
}

/// Accepts connections on `listener` and bridges each through a `forwarded-tcpip` channel.
async fn serve_remote_forward(
    listener: TcpListener,
    handle: server::Handle,
    address: String,
    port: u32,
) {
    while let Ok((mut tcp, peer)) = listener.accept().await {
        let handle = handle.clone();
        let address = address.clone();
        tokio::spawn(async move {
            let Ok(channel) = handle
                .channel_open_forwarded_tcpip(
                    address,
                    port,
                    peer.ip().to_string(),
                    u32::from(peer.port()),
                )
                .await
            else {
                return;
            };
            let mut stream = channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
        });
    }
}

impl Handler {
    fn authorized(&self, key: &PublicKey) -> bool {
        self.config
            .authorized_keys
            .iter()
            .any(|allowed| allowed.key_data() == key.key_data())
    }
}

/// Waits for the exec request, runs it with `sh -c`, feeds stdin, streams output back.
async fn serve_session(
    mut channel: Channel<Msg>,
    workdir: PathBuf,
    journal: Arc<Mutex<Journal>>,
    user: String,
) {
    let command = loop {
        match channel.wait().await {
            Some(ChannelMsg::Exec { command, .. }) => {
                break String::from_utf8_lossy(&command).into_owned();
            }
            Some(_) => {}
            None => return,
        }
    };
    let Ok(mut child) = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(&workdir)
        .env("HOME", &workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    else {
        let _ = channel.exit_status(127).await;
        let _ = channel.close().await;
        return;
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (mut reader, writer) = channel.split();
    let stderr_writer = writer.make_writer_ext(Some(1));
    let stdout_writer = writer.make_writer();

    // Our client always ends stdin with EOF, so the reader stops there.
    let received = tokio::spawn(async move {
        let mut received = Vec::new();
        while let Some(message) = reader.wait().await {
            match message {
                ChannelMsg::Data { data } => {
                    received.extend_from_slice(&data);
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                ChannelMsg::Eof => break,
                _ => {}
            }
        }
        received
    });
    let out = tokio::spawn(async move {
        let mut writer = stdout_writer;
        let _ = tokio::io::copy(&mut stdout, &mut writer).await;
        let _ = writer.flush().await;
    });
    let err = tokio::spawn(async move {
        let mut writer = stderr_writer;
        let _ = tokio::io::copy(&mut stderr, &mut writer).await;
        let _ = writer.flush().await;
    });
    let stdin = received.await.unwrap_or_default();
    let status = child.wait().await;
    let _ = out.await;
    let _ = err.await;
    // Recorded before the exit status goes out, so a test sees it once the client returns.
    journal
        .lock()
        .expect("journal")
        .commands
        .push(ReceivedCommand {
            user,
            command,
            stdin,
        });
    let code = status.ok().and_then(|s| s.code()).unwrap_or(255);
    let _ = writer.exit_status(u32::try_from(code).unwrap_or(255)).await;
    let _ = writer.eof().await;
    let _ = writer.close().await;
}

/// A running in-process ssh-agent holding `keys`, listening on a Unix socket in `dir`.
/// Stops when dropped.
#[derive(Debug)]
pub struct TestAgent {
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AcceptAll;

impl russh::keys::agent::server::Agent for AcceptAll {}

impl TestAgent {
    /// Starts the agent and loads `keys` into it.
    pub async fn start(dir: &Path, keys: &[PrivateKey]) -> Self {
        let socket = dir.join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind agent socket");
        let incoming = Box::pin(futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        }));
        let task = tokio::spawn(async move {
            let _ = russh::keys::agent::server::serve(incoming, AcceptAll).await;
        });
        let mut client = russh::keys::agent::client::AgentClient::connect_uds(&socket)
            .await
            .expect("connect to test agent");
        for key in keys {
            client.add_identity(key, &[]).await.expect("add identity");
        }
        Self { socket, task }
    }

    /// The socket path (what `SSH_AUTH_SOCK` would hold).
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
