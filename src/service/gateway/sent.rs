//! A request body that says when it has been sent in full, so the proxy's
//! `response_timeout` counts from the end of an upload, not from its start:
//! an upstream that reads the whole body before answering must not be cut
//! off halfway through a large, slow upload.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;

/// `body`, firing `sent` once its last frame (or an error) has been read.
pub(super) fn signal_end(body: Body) -> (Body, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let signal = Signalled {
        inner: body,
        sent: Some(tx),
    };
    if signal.inner.is_end_stream() {
        // Nothing to send: the deadline starts now.
        let Signalled { inner, mut sent } = signal;
        if let Some(tx) = sent.take() {
            let _ = tx.send(());
        }
        return (inner, rx);
    }
    (Body::new(signal), rx)
}

struct Signalled {
    inner: Body,
    sent: Option<oneshot::Sender<()>>,
}

impl Signalled {
    fn fire(&mut self) {
        if let Some(tx) = self.sent.take() {
            let _ = tx.send(());
        }
    }
}

impl HttpBody for Signalled {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.fire(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.fire(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
