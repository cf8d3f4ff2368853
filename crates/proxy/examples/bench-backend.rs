//! The backend of `scripts/bench-proxy` and of the proxy's profile-guided build: HTTP/1.1 with
//! keep-alive on 127.0.0.1:<port>, answering 200 with a short fixed body (the benchmark asks
//! only this, so the proxies in front of it are what is measured); for the build's training mix
//! also `/large` (64 KiB) and request bodies (read to the end, answered with the short body).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = b"hello from the bench backend\n";
const LARGE: &[u8] = &[b'x'; 64 * 1024];

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: bench-backend PORT"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let body = if req.uri().path() == "/large" {
                        LARGE
                    } else {
                        // Read what was sent (a form, an upload) before answering.
                        let _ = req.into_body().collect().await;
                        BODY
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
