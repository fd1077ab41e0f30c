//! A pod stream as every transport hands it out: the data, and the server's error message for
//! this connection (if it sends one) as its failure.

use crate::forward::{PodStream, Verdict};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

pub(super) struct WithFailure<S> {
    data: S,
    failure: oneshot::Receiver<String>,
}

impl<S> WithFailure<S> {
    pub(super) fn new(data: S, failure: oneshot::Receiver<String>) -> Self {
        WithFailure { data, failure }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> PodStream for WithFailure<S> {
    fn take_failure(&mut self) -> Verdict {
        let (_, empty) = oneshot::channel();
        let failure = std::mem::replace(&mut self.failure, empty);
        Box::pin(async { failure.await.ok() })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WithFailure<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WithFailure<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.data).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.data).poll_shutdown(cx)
    }
}
