//! The long-running server: HTTP, HTTPS, HTTP/3 and metrics listeners, the control socket, state
//! restore at start, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::{self, Body};
use crate::commands::{Call, Reply};
use crate::log;
use crate::router::Router;
use crate::target::ConnInfo;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    pub socket_path: Option<PathBuf>,
    pub state_path: Option<PathBuf>,
    /// PEM certificates trusted, beside the system's, for ACME directories
    /// (`KAMAL_PROXY_ACME_CA_FILE`; a private ACME server or a test one).
    pub acme_ca_file: Option<PathBuf>,
    /// Threads that accept and serve the HTTP and HTTPS connections, each with its own
    /// single-threaded runtime and its own listening sockets (`SO_REUSEPORT`); 0 serves them on
    /// the calling runtime.
    pub serve_threads: usize,
    /// Also serve HTTP/3 over UDP on the HTTPS port's number (`run --http3`), advertised by
    /// `Alt-Svc` on the HTTPS responses. Needs `https_addr`.
    pub http3: bool,
}

#[derive(Debug)]
pub struct Server {
    pub router: Arc<Router>,
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    /// The UDP address HTTP/3 is served on.
    pub http3_addr: Option<SocketAddr>,
    quic: std::sync::Mutex<Option<quinn::Endpoint>>,
    shutdown: CancellationToken,
    /// Ends the serving threads once their connections are closed.
    stopped: CancellationToken,
    workers: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    connections: Connections,
    socket_path: Option<PathBuf>,
}

/// Binds `count` listening sockets to `addr` (with `[::]` falling back to `0.0.0.0` where IPv6
/// is off), non-blocking, for tokio to adopt.
fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    match bind_at(addr, count) {
        Ok(l) => Ok(l),
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            bind_at(SocketAddr::from(([0, 0, 0, 0], addr.port())), count).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// One socket, or several sharing the port through `SO_REUSEPORT` so the kernel spreads new
/// connections over them. The port is first claimed by a plain bind, so a port that another
/// process holds is refused ("address already in use") rather than silently shared.
fn bind_at(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let first = std::net::TcpListener::bind(addr)?;
    if count <= 1 {
        first.set_nonblocking(true)?;
        return Ok(vec![first]);
    }
    let addr = first.local_addr()?;
    drop(first);
    (0..count)
        .map(|_| {
            use socket2::{Domain, Protocol, Socket, Type};
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            if addr.is_ipv6() {
                socket.set_only_v6(false)?;
            }
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok(socket.into())
        })
        .collect()
}

/// What every HTTP/HTTPS accept loop shares.
#[derive(Clone)]
struct Serving {
    router: Arc<Router>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Added to every response (HTTPS with HTTP/3 on).
    alt_svc: Option<http::HeaderValue>,
    shutdown: CancellationToken,
    connections: Connections,
}

impl Server {
    /// Restores state, binds every listener and starts serving. Call it on a runtime: the
    /// listeners served there (`serve_threads == 0`) and the control socket register with it.
    #[allow(
        clippy::unused_async,
        reason = "needs the calling runtime's reactor, which an async fn makes sure of"
    )]
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        let roots = match &config.acme_ca_file {
            Some(path) => crate::acme::Acme::load_roots(path).map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let router = Router::with_acme(config.state_path.clone(), crate::acme::Acme::new(roots));
        router.restore();
        let shutdown = CancellationToken::new();
        let stopped = CancellationToken::new();
        let connections = Connections::default();
        let serving = Serving {
            router: Arc::clone(&router),
            tls: None,
            alt_svc: None,
            shutdown: shutdown.clone(),
            connections: connections.clone(),
        };

        let listeners = config.serve_threads.max(1);
        let http = bind(config.http_addr, listeners)?;
        let http_addr = http[0].local_addr()?;
        let https = match config.https_addr {
            Some(addr) => bind(addr, listeners)?,
            None => Vec::new(),
        };
        let bound_https = https
            .first()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        // HTTP/3 binds the UDP port of the same number as the HTTPS listener (the one it got,
        // when asked for port 0).
        let quic = match (config.http3, bound_https) {
            (true, Some(bound)) => {
                let ip = config.https_addr.map_or(bound.ip(), |a| a.ip());
                let addr = SocketAddr::new(ip, bound.port());
                let (stop, open) = (shutdown.clone(), connections.clone());
                Some(crate::http3::start(addr, &router, stop, open)?)
            }
            _ => None,
        };
        let quic_addr = quic.as_ref().map(quinn::Endpoint::local_addr).transpose()?;
        let https_serving = Serving {
            tls: bound_https.map(|_| crate::tls::server_config(&router)),
            alt_svc: quic_addr.and_then(|a| crate::http3::alt_svc(a.port())),
            ..serving.clone()
        };

        let mut workers = Vec::new();
        if config.serve_threads == 0 {
            for listener in http {
                spawn_http(TcpListener::from_std(listener)?, serving.clone());
            }
            for listener in https {
                spawn_http(TcpListener::from_std(listener)?, https_serving.clone());
            }
        } else {
            let mut https = https.into_iter();
            for (index, http) in http.into_iter().enumerate() {
                workers.push(spawn_worker(
                    index,
                    (http, serving.clone()),
                    https.next().map(|l| (l, https_serving.clone())),
                    stopped.clone(),
                )?);
            }
        }

        let mut metrics_addr = None;
        if let Some(addr) = config.metrics_addr {
            let listener = TcpListener::from_std(bind(addr, 1)?.remove(0))?;
            metrics_addr = Some(listener.local_addr()?);
            spawn_metrics(listener, shutdown.clone());
        }

        if let Some(path) = &config.socket_path {
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path)?;
            spawn_control(listener, Arc::clone(&router), shutdown.clone());
        }

        log::info(
            "Server started",
            &[
                ("http", http_addr.port().into()),
                ("https", bound_https.map_or(0, |a| a.port()).into()),
                ("http3", quic_addr.is_some().into()),
            ],
        );
        Ok(Self {
            router,
            http_addr,
            https_addr: bound_https,
            metrics_addr,
            http3_addr: quic_addr,
            quic: std::sync::Mutex::new(quic),
            shutdown,
            stopped,
            workers: std::sync::Mutex::new(workers),
            connections,
            socket_path: config.socket_path,
        })
    }

    /// Stops accepting, lets open connections finish (up to 10 s), stops the serving threads and
    /// removes the socket.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        if !self.connections.closing.is_cancelled() {
            log::info("Closing active connections", &[]);
            let _ = tokio::time::timeout(Duration::from_secs(10), self.connections.close()).await;
        }
        let quic = self.quic.lock().ok().and_then(|mut q| q.take());
        if let Some(quic) = quic {
            // Connections still open after the 10 s are closed; the UDP socket goes with the
            // last handle.
            quic.close(quinn::VarInt::from_u32(0), b"");
            let _ = tokio::time::timeout(Duration::from_secs(1), quic.wait_idle()).await;
        }
        self.stopped.cancel();
        let workers = self
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for worker in workers {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
        log::info("Server stopped", &[]);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.stopped.cancel();
    }
}

/// A thread with its own single-threaded runtime serving its share of the connections (its
/// `SO_REUSEPORT` listeners): a connection stays on one thread from accept to close, with no
/// cross-thread wake-ups or work stealing on the request path.
fn spawn_worker(
    index: usize,
    http: (std::net::TcpListener, Serving),
    https: Option<(std::net::TcpListener, Serving)>,
    stopped: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listeners = {
        let _entered = runtime.enter();
        std::iter::once(http)
            .chain(https)
            .map(|(listener, serving)| Ok((TcpListener::from_std(listener)?, serving)))
            .collect::<std::io::Result<Vec<_>>>()?
    };
    std::thread::Builder::new()
        .name(format!("serve-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                for (listener, serving) in listeners {
                    spawn_http(listener, serving);
                }
                stopped.cancelled().await;
            });
        })
}

/// Open connections, and the signal that asks them to finish: on shutdown each stops reading
/// new requests, answers the ones in flight and closes; `close` returns when all have closed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    pub(crate) closing: CancellationToken,
    pub(crate) open: TaskTracker,
}

impl Connections {
    async fn close(&self) {
        self.closing.cancel();
        self.open.close();
        self.open.wait().await;
    }
}

/// Serves a hyper connection to its end, or, once the server closes, lets it answer what is in
/// flight (`graceful_shutdown`) and close. A macro: the two connection types share no trait that
/// a generic function's `Send` bounds would prove through.
macro_rules! serve_until_closed {
    ($connections:expr, $connection:expr) => {{
        let connections = &$connections;
        if !connections.closing.is_cancelled() {
            let _open = connections.open.token();
            let mut connection = std::pin::pin!($connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = connections.closing.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        }
    }};
}

/// Accepts on `listener` and serves each connection (TLS first when `serving` has a config).
fn spawn_http(listener: TcpListener, serving: Serving) {
    let port = listener.local_addr().map_or(0, |addr| addr.port());
    let Serving {
        router,
        tls,
        alt_svc,
        shutdown,
        connections,
    } = serving;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shutdown.cancelled() => return,
            };
            let Ok((stream, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let router = Arc::clone(&router);
            let tls_router = Arc::clone(&router);
            let tls = tls.clone();
            let connections = connections.clone();
            let alt_svc = alt_svc.clone();
            tokio::spawn(async move {
                let conn =
                    ConnInfo::new(peer.ip().to_canonical(), peer.port(), tls.is_some(), port);
                let service = service_fn(move |req: Request<Incoming>| {
                    let router = Arc::clone(&router);
                    let conn = conn.clone();
                    let alt_svc = alt_svc.clone();
                    async move {
                        let mut response = router.handle(req, &conn).await;
                        if let Some(value) = alt_svc {
                            response.headers_mut().insert(http::header::ALT_SVC, value);
                        }
                        Ok::<Response<Body>, Infallible>(response)
                    }
                });
                match tls {
                    None => {
                        // Cleartext is HTTP/1.1 only, as kamal-proxy serves it: no h2c.
                        let connection = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        serve_until_closed!(connections, connection);
                    }
                    Some(config) => {
                        // Read the ClientHello first: a host with automatic TLS may need its
                        // certificate loaded or obtained before the handshake can go on.
                        let acceptor = tokio_rustls::LazyConfigAcceptor::new(
                            rustls::server::Acceptor::default(),
                            stream,
                        );
                        let Ok(start) = acceptor.await else {
                            return;
                        };
                        let hello = start.client_hello();
                        let server_name = hello.server_name().map(str::to_string);
                        let validation = hello.alpn().is_some_and(|mut protocols| {
                            protocols.any(|p| p == crate::acme::ACME_TLS_ALPN)
                        });
                        if validation {
                            // An ACME server validating TLS-ALPN-01: the handshake with the
                            // challenge certificate is the whole answer.
                            let config = server_name
                                .as_deref()
                                .and_then(|name| tls_router.acme().alpn_challenge_config(name));
                            if let Some(config) = config {
                                let _ = start.into_stream(config).await;
                            }
                            return;
                        }
                        tls_router.prepare_certificate(server_name.as_deref()).await;
                        let Ok(stream) = start.into_stream(config).await else {
                            return;
                        };
                        let connection = auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        serve_until_closed!(connections, connection);
                    }
                }
            });
        }
    });
}

fn spawn_metrics(listener: TcpListener, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shutdown.cancelled() => return,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|_req: Request<Incoming>| async {
                    let mut response = Response::new(body::full(crate::metrics::global().render()));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn spawn_control(listener: UnixListener, router: Arc<Router>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shutdown.cancelled() => return,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let router = Arc::clone(&router);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let reply = match serde_json::from_str::<Call>(&line) {
                    Ok(call) => router.dispatch(call).await,
                    Err(e) => Reply {
                        error: Some(format!("invalid request: {e}")),
                        services: None,
                    },
                };
                if let Ok(mut text) = serde_json::to_string(&reply) {
                    text.push('\n');
                    let _ = write.write_all(text.as_bytes()).await;
                }
            });
        }
    });
}
