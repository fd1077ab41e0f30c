//! One SPDY stream as an `AsyncRead + AsyncWrite`: writes become DATA frames, shutdown sends
//! an empty DATA with FIN (a half-close: reading goes on), the peer's FIN reads as EOF, and a
//! RST_STREAM fails this stream alone.

use crate::error::SessionError;
use crate::frame::{Frame, MAX_DATA, flags};
use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// What a stream needs of its session: the frame queue, and to be forgotten when it ends.
pub(crate) trait Outbox: Send + Sync {
    fn queue(&self) -> &mpsc::Sender<Frame>;
    /// Queues a frame from a context that cannot wait (a Drop).
    fn send_soon(&self, frame: Frame);
    fn forget(&self, id: u32);
}

pub(crate) enum Event {
    Data(Bytes),
    Fin,
    Reset(u32),
    Lost,
}

pub struct Stream {
    id: u32,
    inner: Arc<dyn Outbox>,
    events: mpsc::Receiver<Event>,
    pending: Bytes,
    read: ReadState,
    out: PollSender<Frame>,
    write_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Open,
    Eof,
    Reset(u32),
    Lost,
}

impl Stream {
    pub(crate) fn new(id: u32, inner: Arc<dyn Outbox>, events: mpsc::Receiver<Event>) -> Stream {
        let out = PollSender::new(inner.queue().clone());
        Stream {
            id,
            inner,
            events,
            pending: Bytes::new(),
            read: ReadState::Open,
            out,
            write_closed: false,
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Aborts the stream both ways with RST_STREAM (e.g. `rst::CANCEL`).
    pub fn reset(&mut self, status: u32) {
        if !self.write_closed || self.read == ReadState::Open {
            self.inner.send_soon(Frame::RstStream {
                stream_id: self.id,
                status,
            });
        }
        self.write_closed = true;
        self.read = ReadState::Reset(status);
        self.inner.forget(self.id);
    }

    pub(crate) fn session_error(&self) -> SessionError {
        SessionError::Closed(None)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match self.read {
                ReadState::Open => {}
                ReadState::Eof => return Poll::Ready(Ok(())),
                ReadState::Reset(status) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        format!("stream reset by the peer (status {status})"),
                    )));
                }
                ReadState::Lost => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the SPDY connection was lost",
                    )));
                }
            }
            self.read = match ready!(self.events.poll_recv(cx)) {
                Some(Event::Data(data)) => {
                    self.pending = data;
                    ReadState::Open
                }
                Some(Event::Fin) => ReadState::Eof,
                Some(Event::Reset(status)) => ReadState::Reset(status),
                Some(Event::Lost) | None => ReadState::Lost,
            };
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the stream is closed for writing",
            )));
        }
        if let ReadState::Reset(_) | ReadState::Lost = self.read {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the stream was reset",
            )));
        }
        if ready!(self.out.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the SPDY connection was lost",
            )));
        }
        let n = buf.len().min(MAX_DATA);
        let frame = Frame::Data {
            stream_id: self.id,
            flags: 0,
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        if self.out.send_item(frame).is_err() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the SPDY connection was lost",
            )));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames handed over are written by the session's writer as soon as it can.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_closed {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.out.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the SPDY connection was lost",
            )));
        }
        let fin = Frame::Data {
            stream_id: self.id,
            flags: flags::FIN,
            data: Bytes::new(),
        };
        let sent = self.out.send_item(fin);
        self.write_closed = true;
        Poll::Ready(sent.map_err(|_| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the SPDY connection was lost",
            )
        }))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A stream dropped without shutdown still ends cleanly with FIN, never RST: kubectl
        // treats a reset as a lost connection to the pod.
        if !self.write_closed && self.read != ReadState::Lost {
            self.inner.send_soon(Frame::Data {
                stream_id: self.id,
                flags: flags::FIN,
                data: Bytes::new(),
            });
        }
        self.inner.forget(self.id);
    }
}
