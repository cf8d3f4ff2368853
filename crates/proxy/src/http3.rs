//! HTTP/3 (`run --http3`): QUIC over UDP on the HTTPS port's number, every request served through
//! the router as an HTTPS one, and the `Alt-Svc` value that advertises it on HTTPS responses.
//!
//! Certificates come from the same SNI resolver as HTTPS. A certificate that automatic TLS has
//! not obtained yet is not fetched during a QUIC handshake (the handshake fails and the client
//! stays on TCP, where the certificate is obtained): clients find HTTP/3 through `Alt-Svc` on a
//! TCP response first anyway.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::{Body, BoxError};
use crate::router::Router;
use crate::server::Connections;
use crate::target::ConnInfo;

/// The `Alt-Svc` value for HTTP/3 on `port`, as quic-go's server writes it (30 days).
pub fn alt_svc(port: u16) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("h3=\":{port}\"; ma=2592000")).ok()
}

/// The QUIC endpoint's TLS: TLS 1.3 only (QUIC has no other), `h3` via ALPN, certificates by SNI
/// from the router, no 0-RTT (replayable requests are not accepted early).
fn quic_config(router: &Arc<Router>) -> std::io::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(crate::tls::SniResolver {
            router: Arc::downgrade(router),
        }));
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.max_early_data_size = 0;
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(std::io::Error::other)?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// Binds the UDP socket (`[::]` falling back to `0.0.0.0` where IPv6 is off, as the TCP
/// listeners do) and serves HTTP/3 on it from the calling runtime (see [`spawn`]).
pub(crate) fn start(
    addr: SocketAddr,
    router: &Arc<Router>,
    shutdown: CancellationToken,
    connections: Connections,
) -> std::io::Result<quinn::Endpoint> {
    let endpoint = bind(addr, router)?;
    spawn(endpoint.clone(), Arc::clone(router), shutdown, connections);
    Ok(endpoint)
}

fn bind(addr: SocketAddr, router: &Arc<Router>) -> std::io::Result<quinn::Endpoint> {
    let socket = match bind_udp(addr) {
        Ok(socket) => socket,
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            bind_udp(SocketAddr::from(([0, 0, 0, 0], addr.port()))).map_err(|_| e)?
        }
        Err(e) => return Err(e),
    };
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(quic_config(router)?),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Accepts QUIC connections until `shutdown`, serving each connection's requests; on
/// `connections.closing` every connection sends GOAWAY, finishes its requests and closes.
fn spawn(
    endpoint: quinn::Endpoint,
    router: Arc<Router>,
    shutdown: CancellationToken,
    connections: Connections,
) {
    let port = endpoint.local_addr().map_or(0, |addr| addr.port());
    tokio::spawn(async move {
        loop {
            let incoming = tokio::select! {
                i = endpoint.accept() => i,
                () = shutdown.cancelled() => break,
            };
            let Some(incoming) = incoming else {
                break;
            };
            let router = Arc::clone(&router);
            let connections = connections.clone();
            tokio::spawn(async move {
                if connections.closing.is_cancelled() {
                    incoming.refuse();
                    return;
                }
                let _open = connections.open.token();
                let Ok(connection) = incoming.await else {
                    return;
                };
                let peer = connection.remote_address();
                let conn = ConnInfo::new(peer.ip().to_canonical(), peer.port(), true, port);
                serve_connection(connection, router, conn, &connections.closing).await;
            });
        }
        // No new connections from here on; the open ones finish on `connections.closing`.
        endpoint.set_server_config(None);
    });
}

async fn serve_connection(
    connection: quinn::Connection,
    router: Arc<Router>,
    conn: ConnInfo,
    closing: &CancellationToken,
) {
    let quic = connection.clone();
    let Ok(mut h3) = h3::server::builder()
        .build::<_, Bytes>(h3_quinn::Connection::new(connection))
        .await
    else {
        return;
    };
    let requests = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    let router = Arc::clone(&router);
                    let conn = conn.clone();
                    requests.spawn(async move {
                        let Ok((req, stream)) = resolver.resolve_request().await else {
                            return;
                        };
                        serve_request(req, stream, &router, &conn).await;
                    });
                }
                // The client closed the connection, or it failed.
                Ok(None) | Err(_) => break,
            },
            () = closing.cancelled() => {
                // GOAWAY: nothing after the requests accepted so far. The connection stays
                // open (dropping it closes it) until they are answered.
                let _ = h3.shutdown(0).await;
                requests.close();
                let answered = async {
                    requests.wait().await;
                    // The last answers are queued, not yet delivered: closing now would discard
                    // what the client has not acknowledged. Linger a few round trips (or until
                    // the client closes) first.
                    let linger = (quic.rtt() * 4).clamp(LINGER_MIN, LINGER_MAX);
                    tokio::time::sleep(linger).await;
                };
                let mut answered = std::pin::pin!(answered);
                loop {
                    tokio::select! {
                        () = &mut answered => break,
                        accepted = h3.accept() => if !matches!(accepted, Ok(Some(_))) {
                            break;
                        },
                    }
                }
                break;
            }
        }
    }
    requests.close();
    requests.wait().await;
}

/// How long a closing connection stays open after its last answer, at least and at most.
const LINGER_MIN: std::time::Duration = std::time::Duration::from_millis(20);
const LINGER_MAX: std::time::Duration = std::time::Duration::from_secs(1);

type RecvStream = RequestStream<h3_quinn::RecvStream, Bytes>;
type SendStream = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

async fn serve_request(
    req: Request<()>,
    stream: RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    router: &Router,
    conn: &ConnInfo,
) {
    let (mut send, recv) = stream.split();
    let mut body = RequestBody::new(recv, content_length(req.headers()));
    // Without a non-zero Content-Length, wait for the body's first frame or its end: a request
    // without a body (most) then reaches the target without one, not as an empty chunked body.
    if body.remaining.is_none_or(|n| n == 0) {
        body.settle().await;
    }
    let response = router.handle(req.map(|()| body), conn).await;
    send_response(&mut send, response).await;
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Sends the response head, its body frames as they come (streaming responses are not held
/// back) and its trailers, then ends the stream. A body that fails resets the stream.
async fn send_response(send: &mut SendStream, response: Response<Body>) {
    let (mut parts, mut body) = response.into_parts();
    remove_connection_headers(&mut parts.headers);
    if send
        .send_response(Response::from_parts(parts, ()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
            return;
        };
        match frame.into_data() {
            Ok(data) => {
                if !data.is_empty() && send.send_data(data).await.is_err() {
                    return;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    if send.send_trailers(trailers).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
    let _ = send.finish().await;
}

/// HTTP/3 forbids connection-specific header fields (RFC 9114 §4.2); an HTTP/1.1 target may
/// send them.
fn remove_connection_headers(headers: &mut HeaderMap) {
    let listed: Vec<http::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        http::HeaderName::from_static("keep-alive"),
        http::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// A request body read from an HTTP/3 stream: data frames, then trailers.
struct RequestBody {
    stream: RecvStream,
    /// A frame read ahead by `settle`.
    first: Option<Result<Frame<Bytes>, BoxError>>,
    data_done: bool,
    ended: bool,
    /// Bytes still to come, from Content-Length.
    remaining: Option<u64>,
}

impl RequestBody {
    fn new(stream: RecvStream, length: Option<u64>) -> Self {
        Self {
            stream,
            first: None,
            data_done: false,
            ended: false,
            remaining: length,
        }
    }

    /// Reads until the first frame or the end of the body.
    async fn settle(&mut self) {
        let frame = std::future::poll_fn(|cx| self.poll_read(cx)).await;
        self.first = frame;
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if !self.data_done {
            match ready!(self.stream.poll_recv_data(cx)) {
                Ok(Some(mut data)) => {
                    let data = data.copy_to_bytes(data.remaining());
                    self.remaining = self.remaining.map(|n| n.saturating_sub(data.len() as u64));
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) => self.data_done = true,
                Err(e) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
        let trailers = ready!(self.stream.poll_recv_trailers(cx));
        self.ended = true;
        match trailers {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(frame));
        }
        self.poll_read(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.first.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            return SizeHint::with_exact(0);
        }
        let buffered = match &self.first {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        match self.remaining {
            Some(n) => SizeHint::with_exact(n + buffered),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_svc_names_the_port_as_quic_go_does() {
        assert_eq!(alt_svc(443).unwrap(), "h3=\":443\"; ma=2592000");
        assert_eq!(alt_svc(8443).unwrap(), "h3=\":8443\"; ma=2592000");
    }

    #[test]
    fn connection_specific_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        remove_connection_headers(&mut headers);
        let names: Vec<&str> = headers.keys().map(http::HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);
    }
}
