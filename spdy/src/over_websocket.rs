//! SPDY inside WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`), with DATA payloads
//! never copied on the way in, and copied once (masked as they are copied) on the way out.
//!
//! Message boundaries mean nothing to the protocol: the Go framer cuts a frame over several
//! messages, and a server may pack several frames into one. So frames are read from the
//! messages as from a byte stream, but a DATA payload is handed out as slices of the reads
//! that carried it (a payload cut in two becomes two DATA frames, FIN on the last). Going
//! out, control frames and small payloads are gathered into one message, and a large payload
//! is a message of its own. A text message is a protocol error, as in client-go's tunneling
//! connection.

use crate::frame::{Frame, FrameCodec, FrameError, MAX_FRAME, data_header, flags};
use crate::rfc6455::{Event, Reader, Writer};
use bytes::{Bytes, BytesMut};
use futures::{Sink, Stream};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

/// A payload at least this large goes out as a message of its own instead of being copied
/// into the message of the frames around it.
const OWN_MESSAGE: usize = 16 * 1024;
/// Past this much unwritten output, the sink writes before taking more frames.
const HIGH_WATER: usize = 256 * 1024;

/// Cuts frames out of bytes that arrive in pieces.
#[derive(Default)]
pub(crate) struct FrameParser {
    codec: FrameCodec,
    /// An unfinished frame header, or a control frame being gathered whole.
    head: BytesMut,
    /// The DATA frame whose payload is arriving: its stream, its flags, the bytes to come.
    payload: Option<(u32, u8, usize)>,
}

impl FrameParser {
    /// Reads `piece`, putting every frame it completes (or payload part it carries) on `out`.
    pub(crate) fn push(&mut self, mut piece: Bytes, out: &mut VecDeque<Frame>) -> io::Result<()> {
        loop {
            if let Some((stream_id, all_flags, left)) = self.payload {
                if piece.is_empty() {
                    return Ok(());
                }
                let data = piece.split_to(left.min(piece.len()));
                let left = left - data.len();
                let flags = if left == 0 {
                    all_flags
                } else {
                    all_flags & !flags::FIN
                };
                out.push_back(Frame::Data {
                    stream_id,
                    flags,
                    data,
                });
                self.payload = (left > 0).then_some((stream_id, all_flags, left));
                continue;
            }
            if self.head.len() < 8 {
                let take = (8 - self.head.len()).min(piece.len());
                self.head.extend_from_slice(&piece.split_to(take));
                if self.head.len() < 8 {
                    return Ok(());
                }
            }
            let h = &self.head;
            let length = (usize::from(h[5]) << 16) | (usize::from(h[6]) << 8) | usize::from(h[7]);
            if length > MAX_FRAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    FrameError::TooLong(length),
                ));
            }
            if h[0] & 0x80 == 0 {
                let stream_id = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0x7fff_ffff;
                let flags = h[4];
                self.head.clear();
                if length == 0 {
                    out.push_back(Frame::Data {
                        stream_id,
                        flags,
                        data: Bytes::new(),
                    });
                } else {
                    self.payload = Some((stream_id, flags, length));
                }
                continue;
            }
            let take = (8 + length - self.head.len()).min(piece.len());
            self.head.extend_from_slice(&piece.split_to(take));
            if self.head.len() < 8 + length {
                return Ok(());
            }
            use tokio_util::codec::Decoder;
            match self.codec.decode(&mut self.head)? {
                Some(frame) => out.push_back(frame),
                None => unreachable!("a whole control frame decodes"),
            }
        }
    }
}

/// A ping the reader saw, for the writer to answer (only the latest needs a pong).
#[derive(Default)]
pub(crate) struct Pong {
    due: Mutex<Option<Bytes>>,
    /// Whether `due` holds a ping: checked on every seal, so the lock is taken only for one.
    pending: AtomicBool,
    /// Wakes the session's writer, which then flushes: a pong goes out on every flush.
    pub(crate) kick: Arc<Notify>,
}

impl Pong {
    fn take(&self) -> Option<Bytes> {
        if !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.due.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn set(&self, payload: Bytes) {
        *self.due.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
        self.pending.store(true, Ordering::Release);
        self.kick.notify_one();
    }
}

/// The frames a WebSocket carries.
pub(crate) struct WsFrames<R> {
    ws: Reader<R>,
    pong: Arc<Pong>,
    parser: FrameParser,
    ready: VecDeque<Frame>,
}

impl<R: AsyncRead + Unpin> WsFrames<R> {
    pub(crate) fn new(ws: Reader<R>, pong: Arc<Pong>) -> Self {
        WsFrames {
            ws,
            pong,
            parser: FrameParser::default(),
            ready: VecDeque::new(),
        }
    }
}

impl<R: AsyncRead + Unpin> Stream for WsFrames<R> {
    type Item = io::Result<Frame>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            match ready!(this.ws.poll_event(cx)) {
                Some(Ok(Event::Data(data))) => {
                    if let Err(e) = this.parser.push(data, &mut this.ready) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Some(Ok(Event::Ping(payload))) => {
                    this.pong.set(payload);
                }
                Some(Ok(Event::Close)) | None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// Frames out through a WebSocket.
pub(crate) struct WsFrameSink<W> {
    ws: Writer<W>,
    pong: Arc<Pong>,
    codec: FrameCodec,
    /// Control frames, DATA headers and small payloads, gathered into the next message.
    small: BytesMut,
    closing: bool,
}

impl<W: AsyncWrite + Unpin> WsFrameSink<W> {
    pub(crate) fn new(ws: Writer<W>, pong: Arc<Pong>) -> Self {
        WsFrameSink {
            ws,
            pong,
            codec: FrameCodec::default(),
            small: BytesMut::new(),
            closing: false,
        }
    }

    /// Turns what is gathered (and a pong that is due) into frames in the output buffer.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.ws.binary(&[&self.small]);
            self.small.clear();
        }
        if let Some(payload) = self.pong.take() {
            self.ws.pong(&payload);
        }
    }
}

impl<W: AsyncWrite + Unpin> Sink<Frame> for WsFrameSink<W> {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.small.len() >= OWN_MESSAGE {
            this.seal();
        }
        if this.ws.buffered() >= HIGH_WATER {
            ready!(this.ws.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> io::Result<()> {
        let this = &mut *self;
        match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } if data.len() >= OWN_MESSAGE => {
                this.seal();
                let header = data_header(stream_id, flags, data.len())?;
                this.ws.binary(&[&header, &data]);
                Ok(())
            }
            frame => {
                use tokio_util::codec::Encoder;
                this.codec.encode(frame, &mut this.small)
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.seal();
        this.ws.poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.closing {
            this.seal();
            this.ws.close();
            this.closing = true;
        }
        this.ws.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::Encoder;

    fn wire(frames: &[Frame]) -> Vec<u8> {
        let mut codec = FrameCodec::default();
        let mut out = BytesMut::new();
        for frame in frames {
            codec.encode(frame.clone(), &mut out).unwrap();
        }
        out.to_vec()
    }

    /// Joins the DATA parts of each stream back together, as the streams read them.
    fn reassembled(frames: Vec<Frame>) -> Vec<Frame> {
        let mut joined: Vec<Frame> = Vec::new();
        for frame in frames {
            if let (
                Some(Frame::Data {
                    stream_id: last_id,
                    flags: last_flags,
                    data: last,
                }),
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                },
            ) = (joined.last_mut(), &frame)
                && *last_id == *stream_id
                && *last_flags & flags::FIN == 0
            {
                let mut both = BytesMut::from(&last[..]);
                both.extend_from_slice(data);
                *last = both.freeze();
                *last_flags = *flags;
                continue;
            }
            joined.push(frame);
        }
        joined
    }

    /// However the bytes are cut into messages, the same frames come out, and no DATA
    /// frame ends a stream before its last byte.
    #[test]
    fn any_cut_of_the_stream_gives_the_same_frames() {
        let frames = vec![
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![("port".into(), "80".into())],
            },
            Frame::Data {
                stream_id: 1,
                flags: 0,
                data: Bytes::from(vec![1u8; 40_000]),
            },
            Frame::Ping { id: 7 },
            Frame::Data {
                stream_id: 3,
                flags: flags::FIN,
                data: Bytes::from_static(b"last words"),
            },
            Frame::Data {
                stream_id: 5,
                flags: flags::FIN,
                data: Bytes::new(),
            },
        ];
        let bytes = wire(&frames);
        for cut in [1, 3, 7, 8, 9, 100, 4096, 39_999, bytes.len()] {
            let mut parser = FrameParser::default();
            let mut out = VecDeque::new();
            for piece in bytes.chunks(cut) {
                parser
                    .push(Bytes::copy_from_slice(piece), &mut out)
                    .unwrap();
            }
            assert_eq!(reassembled(out.into_iter().collect()), frames, "cut {cut}");
        }
    }

    #[test]
    fn an_oversized_frame_is_an_error() {
        let mut parser = FrameParser::default();
        let header = [0x00, 0, 0, 1, 0, 0xff, 0xff, 0xff];
        assert!(
            parser
                .push(Bytes::copy_from_slice(&header), &mut VecDeque::new())
                .is_err()
        );
    }
}
