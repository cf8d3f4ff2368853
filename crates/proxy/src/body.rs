//! Body types shared by the server and the upstream client, plus the wrappers that keep an
//! in-flight request registered until its response body has been fully sent.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn boxed<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Wraps an inbound body and records whether reading it failed (a malformed chunked body).
pub struct ErrorFlagBody {
    inner: Body,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for ErrorFlagBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorFlagBody").finish_non_exhaustive()
    }
}

impl ErrorFlagBody {
    pub fn new(inner: Body, failed: Arc<AtomicBool>) -> Self {
        Self { inner, failed }
    }
}

impl HttpBody for ErrorFlagBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let result = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &result {
            self.failed.store(true, Ordering::SeqCst);
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

/// A response body that holds a guard until it ends and aborts when its token is cancelled.
///
/// The token is checked on every poll; a wake-up on cancellation is registered only when the
/// inner body has to wait (most bodies arrive whole, so they never allocate that future).
pub struct GuardedBody<G: Send + 'static> {
    inner: Body,
    cancel: CancellationToken,
    cancelled: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    guard: Option<G>,
}

impl<G: Send + 'static> std::fmt::Debug for GuardedBody<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedBody").finish_non_exhaustive()
    }
}

impl<G: Send + 'static> GuardedBody<G> {
    pub fn new(inner: Body, cancel: CancellationToken, guard: G) -> Self {
        Self {
            inner,
            cancel,
            cancelled: None,
            guard: Some(guard),
        }
    }

    /// The body has ended (or was cut off): the request is no longer in flight.
    fn release(&mut self) {
        self.guard = None;
        self.cancelled = None;
    }

    fn abort(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.release();
        Poll::Ready(Some(Err("request cancelled due to draining".into())))
    }
}

impl<G: Send + Unpin + 'static> HttpBody for GuardedBody<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.guard.is_some() && self.cancel.is_cancelled() {
            return self.abort();
        }
        let result = Pin::new(&mut self.inner).poll_frame(cx);
        match &result {
            Poll::Ready(None | Some(Err(_))) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Pending if self.guard.is_some() => {
                // Waiting on the target: be woken if the request is cancelled meanwhile.
                let this = &mut *self;
                let cancelled = this
                    .cancelled
                    .get_or_insert_with(|| Box::pin(this.cancel.clone().cancelled_owned()));
                if cancelled.as_mut().poll(cx).is_ready() {
                    return self.abort();
                }
            }
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
