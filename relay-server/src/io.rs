//! The protocol over tokio streams: requests and replies read byte-exact (nothing past the
//! message is consumed, so the data that follows stays in the stream), and a codec for
//! frames.

use crate::protocol::{Decoded, Frame, MAX_DATAGRAM, ProtocolError, Reply, Request};
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, Encoder};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the connection closed after {0} bytes, in the middle of a message")]
    Truncated(usize),
    #[error("the connection closed before a message")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one request, and not a byte more.
pub async fn read_request<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Request, ReadError> {
    read_exact_message(reader, Request::decode).await
}

/// Reads one reply, and not a byte more: data the destination sent at once stays unread.
pub async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Reply, ReadError> {
    read_exact_message(reader, Reply::decode).await
}

async fn read_exact_message<R, T>(
    reader: &mut R,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, ProtocolError>,
) -> Result<T, ReadError>
where
    R: AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(64);
    loop {
        match decode(&buf)? {
            Decoded::Complete { value, .. } => return Ok(value),
            Decoded::Incomplete { need } => {
                let mut filled = buf.len();
                buf.resize(need, 0);
                // The decoder never asks for more than the message, so this cannot over-read.
                while filled < need {
                    let n = reader.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        return Err(if filled == 0 {
                            ReadError::Closed
                        } else {
                            ReadError::Truncated(filled)
                        });
                    }
                    filled += n;
                }
            }
        }
    }
}

/// A decoded frame, apart from the buffer it was decoded from.
enum Found {
    Fixed(Frame<Bytes>),
    /// A datagram of that many bytes at the end of the frame, and its peer if addressed.
    Bytes(Option<std::net::SocketAddr>, usize),
}

/// Frames over a byte stream, for `tokio_util::codec::Framed{Read,Write}`. Buffers hold at
/// most one frame beyond what was read, so memory per connection stays bounded.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame<Bytes>;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        // What was found, without holding on to the borrowed buffer: a frame without bytes
        // of its own, or where a datagram's bytes are.
        let (found, len) = match Frame::decode(&src[..])? {
            Decoded::Incomplete { need } => {
                src.reserve(need - src.len());
                return Ok(None);
            }
            Decoded::Complete { value, len } => (
                match value {
                    Frame::Datagram(payload) => Found::Bytes(None, payload.len()),
                    Frame::Addressed { peer, payload } => Found::Bytes(Some(peer), payload.len()),
                    Frame::Ping(v) => Found::Fixed(Frame::Ping(v)),
                    Frame::Pong(v) => Found::Fixed(Frame::Pong(v)),
                    Frame::Incoming { connection, from } => {
                        Found::Fixed(Frame::Incoming { connection, from })
                    }
                    Frame::Refuse { connection } => Found::Fixed(Frame::Refuse { connection }),
                    Frame::End { connection, bytes } => {
                        Found::Fixed(Frame::End { connection, bytes })
                    }
                },
                len,
            ),
        };
        match found {
            Found::Fixed(frame) => {
                src.advance(len);
                Ok(Some(frame))
            }
            Found::Bytes(peer, n) => {
                src.advance(len - n);
                let payload = src.split_to(n).freeze();
                Ok(Some(match peer {
                    None => Frame::Datagram(payload),
                    Some(peer) => Frame::Addressed { peer, payload },
                }))
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ReadError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(ReadError::Truncated(src.len())),
        }
    }
}

impl<B: AsRef<[u8]>> Encoder<Frame<B>> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Frame<B>, dst: &mut BytesMut) -> io::Result<()> {
        let mut out = Vec::with_capacity(3 + MAX_DATAGRAM.min(frame_len(&frame)));
        frame
            .encode(&mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        dst.extend_from_slice(&out);
        Ok(())
    }
}

fn frame_len<B: AsRef<[u8]>>(frame: &Frame<B>) -> usize {
    match frame {
        Frame::Datagram(b) => b.as_ref().len(),
        Frame::Addressed { payload, .. } => 19 + payload.as_ref().len(),
        _ => 23,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Destination, Status, Transport};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_request_is_read_without_the_bytes_after_it() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let request = Request::Connect {
            id: 3,
            transport: Transport::Tcp,
            to: Destination::new("db.internal", 5432),
        };
        a.write_all(&[request.encode(), b"HELLO".to_vec()].concat())
            .await
            .unwrap();
        assert_eq!(read_request(&mut b).await.unwrap(), request);
        let mut rest = [0u8; 5];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"HELLO");
    }

    #[tokio::test]
    async fn a_truncated_reply_says_so() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let bytes = Reply::new(Status::Connected, None, "hi").encode();
        a.write_all(&bytes[..5]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_reply(&mut b).await,
            Err(ReadError::Truncated(_))
        ));
    }

    #[test]
    fn the_codec_splits_frames_and_keeps_the_rest() {
        let mut buf = BytesMut::new();
        let mut codec = FrameCodec;
        codec
            .encode(Frame::Datagram(&b"one"[..]), &mut buf)
            .unwrap();
        codec.encode(Frame::<&[u8]>::Ping(5), &mut buf).unwrap();
        let incoming = Frame::<&[u8]>::Incoming {
            connection: 7,
            from: "[fd00::9]:4000".parse().unwrap(),
        };
        codec.encode(incoming, &mut buf).unwrap();
        buf.extend_from_slice(&[1, 0]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Datagram(Bytes::from_static(b"one")))
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Ping(5)));
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Incoming {
                connection: 7,
                from: "[fd00::9]:4000".parse().unwrap()
            })
        );
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(ReadError::Truncated(2))
        ));
    }
}
