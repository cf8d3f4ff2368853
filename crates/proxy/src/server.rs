//! The long-running server: HTTP, HTTPS and metrics listeners, the control socket, state restore
//! at start, and graceful shutdown.

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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

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
}

#[derive(Debug)]
pub struct Server {
    pub router: Arc<Router>,
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    graceful: Arc<Mutex<Option<GracefulShutdown>>>,
    socket_path: Option<PathBuf>,
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
                .await
                .map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

impl Server {
    /// Restores state, binds every listener and starts serving.
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        let roots = match &config.acme_ca_file {
            Some(path) => crate::acme::Acme::load_roots(path).map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let router = Router::with_acme(config.state_path.clone(), crate::acme::Acme::new(roots));
        router.restore();
        let shutdown = CancellationToken::new();
        let graceful = Arc::new(Mutex::new(Some(GracefulShutdown::new())));

        let http = bind(config.http_addr).await?;
        let http_addr = http.local_addr()?;
        spawn_http(
            http,
            Arc::clone(&router),
            None,
            config.http_addr.port(),
            shutdown.clone(),
            Arc::clone(&graceful),
        );

        let mut bound_https = None;
        if let Some(addr) = config.https_addr {
            let listener = bind(addr).await?;
            bound_https = Some(listener.local_addr()?);
            spawn_http(
                listener,
                Arc::clone(&router),
                Some(crate::tls::server_config(&router)),
                addr.port(),
                shutdown.clone(),
                Arc::clone(&graceful),
            );
        }

        let mut metrics_addr = None;
        if let Some(addr) = config.metrics_addr {
            let listener = bind(addr).await?;
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
            ],
        );
        Ok(Self {
            router,
            http_addr,
            https_addr: bound_https,
            metrics_addr,
            shutdown,
            graceful,
            socket_path: config.socket_path,
        })
    }

    /// Stops accepting, lets open connections finish (up to 10 s) and removes the socket.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        if let Some(graceful) = self.graceful.lock().await.take() {
            log::info("Closing active connections", &[]);
            let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
        }
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
        log::info("Server stopped", &[]);
    }
}

fn spawn_http(
    listener: TcpListener,
    router: Arc<Router>,
    tls: Option<Arc<rustls::ServerConfig>>,
    port: u16,
    shutdown: CancellationToken,
    graceful: Arc<Mutex<Option<GracefulShutdown>>>,
) {
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
            let graceful = Arc::clone(&graceful);
            tokio::spawn(async move {
                let conn = ConnInfo {
                    client_ip: peer.ip().to_canonical(),
                    client_port: peer.port(),
                    tls: tls.is_some(),
                    port,
                };
                let service = service_fn(move |req: Request<Incoming>| {
                    let router = Arc::clone(&router);
                    let conn = conn.clone();
                    async move { Ok::<Response<Body>, Infallible>(router.handle(req, &conn).await) }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                match tls {
                    None => {
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        let watched = match graceful.lock().await.as_ref() {
                            Some(g) => g.watch(connection),
                            None => return,
                        };
                        let _ = watched.await;
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
                        let server_name = start.client_hello().server_name().map(str::to_string);
                        tls_router.prepare_certificate(server_name.as_deref()).await;
                        let Ok(stream) = start.into_stream(config).await else {
                            return;
                        };
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        let watched = match graceful.lock().await.as_ref() {
                            Some(g) => g.watch(connection),
                            None => return,
                        };
                        let _ = watched.await;
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
