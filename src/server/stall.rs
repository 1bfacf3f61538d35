//! A request body that stops arriving ends its request. Without this, a client that sends its
//! headers and then trickles its body, or never sends the body it announced, holds its
//! connection (and, forwarded, a connection to gptme-server) for as long as it likes. The timer
//! runs only while a handler waits on the body, and starts again with each piece that arrives,
//! so a slow upload that keeps moving gets through. (A read timeout on the socket would also cut
//! WebSockets and event streams, on which the client may rightly send nothing for minutes.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a body ended before its end: nothing arrived for the given time.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving (nothing for {} s)", .0.as_secs_f64())]
pub struct BodyStalled(Duration);

/// A request's body, ended with [`BodyStalled`] once nothing arrives for `limit` while it is
/// read.
pub struct StallLimited {
    inner: Incoming,
    limit: Duration,
    /// Made at the first wait, then reset: a body that is read at once never needs one.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether `timer` counts the current wait.
    waiting: bool,
}

impl StallLimited {
    pub fn new(inner: Incoming, limit: Duration) -> Self {
        StallLimited { inner, limit, timer: None, waiting: false }
    }
}

impl HttpBody for StallLimited {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        // What has arrived counts, even at the deadline.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = Instant::now() + this.limit;
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !std::mem::replace(&mut this.waiting, true) {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error`, or any error under it, is a [`BodyStalled`]: the client's fault, answered
/// 408, not the handler's or the upstream's.
pub fn stalled(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyStalled>() {
            return true;
        }
        cause = e.source();
    }
    false
}
