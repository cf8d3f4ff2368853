//! The upstream connections of the forwarding path: one pool of idle keep-alive HTTP/1.1
//! connections per thread, keyed by target authority, and sending a request on a pooled or a new
//! connection (retrying on a new one a request that a pooled connection closed before writing).

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustc_hash::{FxBuildHasher, FxHashMap};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::body::Body;

/// Idle connections kept per authority (per thread); a connection freed beyond that is closed.
pub const MAX_IDLE_PER_AUTHORITY: usize = 100;

/// How long a connection may sit idle in the pool before it is closed rather than reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting to the target: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP/1.1 handshake with the target: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("sending the request to the target: {0}")]
    Request(#[source] hyper::Error),
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// One thread's idle connections.
struct Pool {
    /// By authority text; each list is in the order the connections came back (newest last).
    idle: FxHashMap<Box<str>, Vec<Idle>>,
    /// When to next drop the expired and closed connections of every authority.
    next_sweep: Option<Instant>,
}

thread_local! {
    /// A serving thread reuses the connections its own requests freed; the connections' tasks
    /// run on its runtime. Only ever borrowed for a check-in or check-out, never across an await,
    /// so a request whose future moves to another thread simply uses that thread's pool.
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            idle: FxHashMap::with_hasher(FxBuildHasher),
            next_sweep: None,
        })
    };
}

impl Pool {
    /// The newest live idle connection to `key`, dropping what it passes over: connections that
    /// closed or are no longer ready, and (once the newest is too old) all of them.
    fn checkout(&mut self, key: &str, now: Instant) -> Option<SendRequest<Body>> {
        let list = self.idle.get_mut(key)?;
        while let Some(idle) = list.pop() {
            if now.saturating_duration_since(idle.since) > IDLE_TIMEOUT {
                list.clear();
                return None;
            }
            if idle.sender.is_ready() {
                return Some(idle.sender);
            }
        }
        None
    }

    fn checkin(&mut self, key: &str, sender: SendRequest<Body>, now: Instant) {
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now);
            self.next_sweep = Some(now + IDLE_TIMEOUT);
        }
        let idle = Idle { sender, since: now };
        match self.idle.get_mut(key) {
            Some(list) => {
                if list.len() >= MAX_IDLE_PER_AUTHORITY {
                    list.retain(|i| i.sender.is_ready());
                }
                if list.len() < MAX_IDLE_PER_AUTHORITY {
                    list.push(idle);
                }
            }
            None => {
                self.idle.insert(key.into(), vec![idle]);
            }
        }
    }

    /// Drops the expired and closed connections, and the authorities left without any.
    fn sweep(&mut self, now: Instant) {
        self.idle.retain(|_, list| {
            list.retain(|i| {
                i.sender.is_ready() && now.saturating_duration_since(i.since) <= IDLE_TIMEOUT
            });
            !list.is_empty()
        });
    }
}

fn checkout(key: &str) -> Option<SendRequest<Body>> {
    POOL.try_with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        if pool.idle.is_empty() {
            return None;
        }
        pool.checkout(key, Instant::now())
    })
    .ok()
    .flatten()
}

/// Puts a connection that is ready for its next request into this thread's pool.
fn checkin(key: &str, sender: SendRequest<Body>) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.checkin(key, sender, Instant::now());
        }
    });
}

/// Idle connections to `authority` in this thread's pool (live or not yet found closed).
pub fn idle_connections(authority: &str) -> usize {
    POOL.try_with(|pool| {
        pool.try_borrow()
            .ok()
            .and_then(|p| p.idle.get(authority).map(Vec::len))
    })
    .ok()
    .flatten()
    .unwrap_or(0)
}

/// Opens a connection to `authority` (`TCP_NODELAY`) and starts its task on this runtime; upgrades
/// (`101 Switching Protocols`) hand the connection over to the response.
async fn connect(authority: &Authority) -> Result<SendRequest<Body>, UpstreamError> {
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(UpstreamError::Connect)?;
    stream.set_nodelay(true).map_err(UpstreamError::Connect)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(connection.with_upgrades());
    Ok(sender)
}

/// Sends `req` to `authority`: on this thread's newest idle connection to it, or on a new one.
/// The URI must be in origin form (authority form for `CONNECT`); a request without `Host` gets
/// the authority's. A request that a pooled connection gave back unwritten (the target had closed
/// it) is sent again on a new connection; one already written is not.
///
/// The connection goes back to the pool once the response body has ended and the connection is
/// ready for another request.
pub async fn send(
    authority: &Authority,
    mut req: Request<Body>,
) -> Result<Response<PooledBody>, UpstreamError> {
    if !req.headers().contains_key(header::HOST) {
        let value = match authority.port_u16() {
            Some(80) => HeaderValue::from_str(authority.host()),
            _ => HeaderValue::from_str(authority.as_str()),
        };
        if let Ok(value) = value {
            req.headers_mut().insert(header::HOST, value);
        }
    }
    if let Some(mut sender) = checkout(authority.as_str()) {
        match sender.try_send_request(req).await {
            Ok(response) => return Ok(pooled(authority, sender, response)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => req = unsent,
                None => return Err(UpstreamError::Request(e.into_error())),
            },
        }
    }
    let mut sender = connect(authority).await?;
    match sender.try_send_request(req).await {
        Ok(response) => Ok(pooled(authority, sender, response)),
        Err(e) => Err(UpstreamError::Request(e.into_error())),
    }
}

fn pooled(
    authority: &Authority,
    sender: SendRequest<Body>,
    response: Response<Incoming>,
) -> Response<PooledBody> {
    // An upgraded connection belongs to the response: it never returns.
    let release = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Release {
        key: authority.clone(),
        sender,
    });
    response.map(|inner| PooledBody { inner, release })
}

struct Release {
    key: Authority,
    sender: SendRequest<Body>,
}

impl Release {
    /// Returns the connection to the pool once it is ready for another request: at once when
    /// it already is (usually, since the body's end was read), else from a task that waits.
    fn run(self) {
        let Self { key, mut sender } = self;
        if sender.is_ready() {
            checkin(key.as_str(), sender);
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    checkin(key.as_str(), sender);
                }
            });
        }
    }
}

/// A response body from a target; when it has been read to its end, its connection goes back to
/// the pool (a body dropped before its end closes the connection).
pub struct PooledBody {
    inner: Incoming,
    release: Option<Release>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").finish_non_exhaustive()
    }
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(release) = self.release.take() {
            release.run();
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let result = Pin::new(&mut self.inner).poll_frame(cx);
        match &result {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.release = None,
            _ => {}
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body without content (`HEAD`, `204`, `304`, `Content-Length: 0`) may never be polled.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use tokio::io::DuplexStream;

    use super::*;

    /// A connection over an in-memory pipe, ready for a request; the pipe's other end is the
    /// "target" (dropping it closes the connection).
    async fn idle_sender() -> (SendRequest<Body>, DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (mut sender, connection) = http1::handshake(TokioIo::new(ours)).await.unwrap();
        tokio::spawn(connection);
        sender.ready().await.unwrap();
        (sender, theirs)
    }

    /// A keep-alive HTTP/1.1 backend answering "ok"; counts the requests it gets.
    async fn backend() -> (Authority, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async { Ok::<_, Infallible>(Response::new(crate::body::full("ok"))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (authority, requests)
    }

    fn get() -> Request<Body> {
        Request::builder()
            .uri("/")
            .body(crate::body::empty())
            .unwrap()
    }

    async fn text(response: Response<PooledBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (authority, requests) = backend().await;
        for _ in 0..3 {
            let response = send(&authority, get()).await.unwrap();
            assert_eq!(text(response).await, "ok");
            assert_eq!(idle_connections(authority.as_str()), 1);
        }
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_a_pooled_connection_gave_back_unwritten_goes_on_a_new_one() {
        let (authority, requests) = backend().await;
        let (stale, target_end) = idle_sender().await;
        checkin(authority.as_str(), stale);
        // The target closes the idle connection; its task has not run since, so the pool still
        // takes it for ready and the request is queued on it, then handed back unwritten.
        drop(target_end);
        let still_ready = POOL.with(|p| p.borrow().idle[authority.as_str()][0].sender.is_ready());
        assert!(still_ready);
        let response = send(&authority, get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "ok");
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert_eq!(idle_connections(authority.as_str()), 1);
    }

    #[tokio::test]
    async fn a_request_without_host_gets_the_authority() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service_fn(|req: Request<Incoming>| {
                let host = req.headers()[header::HOST].clone();
                async move {
                    Ok::<_, Infallible>(Response::new(crate::body::full(host.as_bytes().to_vec())))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let response = send(&authority, get()).await.unwrap();
        assert_eq!(text(response).await, authority.as_str());
    }

    #[tokio::test]
    async fn a_response_body_dropped_before_its_end_does_not_return_its_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(crate::body::full(vec![b'x'; 1 << 20])))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let response = send(&authority, get()).await.unwrap();
        let mut body = response.into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(idle_connections(authority.as_str()), 0);
        // Read to its end, it does.
        let response = send(&authority, get()).await.unwrap();
        assert_eq!(text(response).await.len(), 1 << 20);
        for _ in 0..100 {
            if idle_connections(authority.as_str()) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the connection did not come back");
    }

    #[tokio::test]
    async fn at_most_100_connections_per_authority_stay_idle() {
        let mut pool = Pool {
            idle: FxHashMap::default(),
            next_sweep: None,
        };
        let now = Instant::now();
        let mut ends = Vec::new();
        for _ in 0..=MAX_IDLE_PER_AUTHORITY {
            let (sender, end) = idle_sender().await;
            ends.push(end);
            pool.checkin("a:80", sender, now);
        }
        assert_eq!(pool.idle["a:80"].len(), MAX_IDLE_PER_AUTHORITY);
        let (sender, end) = idle_sender().await;
        ends.push(end);
        pool.checkin("b:80", sender, now);
        assert_eq!(pool.idle["b:80"].len(), 1);
    }

    #[tokio::test]
    async fn connections_idle_longer_than_the_timeout_are_not_reused() {
        let mut pool = Pool {
            idle: FxHashMap::default(),
            next_sweep: None,
        };
        let now = Instant::now();
        let (first, _first_end) = idle_sender().await;
        let (second, _second_end) = idle_sender().await;
        pool.checkin("a:80", first, now);
        pool.checkin("a:80", second, now);
        assert!(pool.checkout("a:80", now + IDLE_TIMEOUT).is_some());
        assert!(
            pool.checkout("a:80", now + IDLE_TIMEOUT + Duration::from_secs(1))
                .is_none()
        );
        assert!(pool.idle["a:80"].is_empty());
    }

    #[tokio::test]
    async fn closed_connections_are_skipped_and_swept() {
        let mut pool = Pool {
            idle: FxHashMap::default(),
            next_sweep: None,
        };
        let now = Instant::now();
        let (live, _live_end) = idle_sender().await;
        let (closed, closed_end) = idle_sender().await;
        pool.checkin("a:80", live, now);
        pool.checkin("a:80", closed, now);
        drop(closed_end);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The newest is closed: passed over for the live one.
        assert!(pool.checkout("a:80", now).is_some());
        assert!(pool.idle["a:80"].is_empty());

        let (stale, _stale_end) = idle_sender().await;
        let (gone, gone_end) = idle_sender().await;
        pool.checkin("a:80", stale, now);
        pool.checkin("b:80", gone, now);
        drop(gone_end);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The next check-in after the sweep interval drops what expired or closed.
        let later = now + IDLE_TIMEOUT + Duration::from_secs(1);
        let (fresh, _fresh_end) = idle_sender().await;
        pool.checkin("c:80", fresh, later);
        assert!(!pool.idle.contains_key("a:80"));
        assert!(!pool.idle.contains_key("b:80"));
        assert_eq!(pool.idle["c:80"].len(), 1);
    }
}
