//! Frames: what follows a successful UDP or session request, in both directions. Each is a
//! kind byte, a big-endian length and that many bytes.

use super::{Decoded, ProtocolError, u16_at};

/// The largest UDP payload over IPv4 (65535 less the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;
const HEADER: usize = 3;

const KIND_DATAGRAM: u8 = 1;
const KIND_PING: u8 = 2;
const KIND_PONG: u8 = 3;

/// A frame; `B` is the datagram's bytes (borrowed when decoded from a slice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<B> {
    /// One UDP datagram (UDP flows only).
    Datagram(B),
    /// A heartbeat; the peer answers with a `Pong` carrying the same value.
    Ping(u64),
    Pong(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Datagram,
    Ping,
    Pong,
}

impl<B: AsRef<[u8]>> Frame<B> {
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Datagram(_) => FrameKind::Datagram,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
        }
    }

    /// Appends the frame to `out`. A datagram larger than [`MAX_DATAGRAM`] is refused, as the
    /// decoder would refuse it.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match self {
            Frame::Datagram(payload) => {
                let payload = payload.as_ref();
                if payload.len() > MAX_DATAGRAM {
                    return Err(ProtocolError::DatagramTooLarge(payload.len()));
                }
                out.push(KIND_DATAGRAM);
                out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                out.extend_from_slice(payload);
            }
            Frame::Ping(value) | Frame::Pong(value) => {
                out.push(if matches!(self, Frame::Ping(_)) {
                    KIND_PING
                } else {
                    KIND_PONG
                });
                out.extend_from_slice(&8u16.to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        Ok(())
    }
}

impl<'a> Frame<&'a [u8]> {
    pub fn decode(buf: &'a [u8]) -> Result<Decoded<Frame<&'a [u8]>>, ProtocolError> {
        if let Some(&kind) = buf.first()
            && !matches!(kind, KIND_DATAGRAM | KIND_PING | KIND_PONG)
        {
            return Err(ProtocolError::UnknownFrame(kind));
        }
        if buf.len() < HEADER {
            return Ok(Decoded::Incomplete { need: HEADER });
        }
        let len = usize::from(u16_at(buf, 1));
        match buf[0] {
            KIND_DATAGRAM if len > MAX_DATAGRAM => {
                return Err(ProtocolError::DatagramTooLarge(len));
            }
            KIND_PING | KIND_PONG if len != 8 => {
                return Err(ProtocolError::FrameLength {
                    kind: if buf[0] == KIND_PING { "ping" } else { "pong" },
                    expected: 8,
                    found: len,
                });
            }
            _ => {}
        }
        let total = HEADER + len;
        let Some(payload) = buf.get(HEADER..total) else {
            return Ok(Decoded::Incomplete { need: total });
        };
        let value = match buf[0] {
            KIND_DATAGRAM => Frame::Datagram(payload),
            kind => {
                let value = u64::from_be_bytes(payload.try_into().map_err(|_| {
                    ProtocolError::FrameLength {
                        kind: "heartbeat",
                        expected: 8,
                        found: payload.len(),
                    }
                })?);
                if kind == KIND_PING {
                    Frame::Ping(value)
                } else {
                    Frame::Pong(value)
                }
            }
        };
        Ok(Decoded::Complete { value, len: total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let big = vec![9u8; MAX_DATAGRAM];
        let frames: Vec<Frame<&[u8]>> = vec![
            Frame::Datagram(b"dns query"),
            Frame::Datagram(b""),
            Frame::Ping(42),
            Frame::Pong(u64::MAX),
            Frame::Datagram(&big),
        ];
        let stream: Vec<u8> = frames.iter().flat_map(encoded).collect();
        let mut at = 0;
        for frame in &frames {
            let Ok(Decoded::Complete { value, len }) = Frame::decode(&stream[at..]) else {
                panic!("no frame at {at}");
            };
            assert_eq!(&value, frame);
            at += len;
        }
        assert_eq!(at, stream.len());
        assert_eq!(encoded(&Frame::Ping(1)), [2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn bad_frames_are_refused() {
        assert_eq!(Frame::decode(&[9]), Err(ProtocolError::UnknownFrame(9)));
        assert_eq!(
            Frame::decode(&[1, 0xff, 0xff]),
            Err(ProtocolError::DatagramTooLarge(65535))
        );
        assert!(matches!(
            Frame::decode(&[2, 0, 7]),
            Err(ProtocolError::FrameLength { found: 7, .. })
        ));
        assert_eq!(
            Frame::decode(&[1, 0, 4, 1]),
            Ok(Decoded::Incomplete { need: 7 })
        );
        let too_big = vec![0u8; MAX_DATAGRAM + 1];
        assert_eq!(
            Frame::Datagram(&too_big[..]).encode(&mut Vec::new()),
            Err(ProtocolError::DatagramTooLarge(MAX_DATAGRAM + 1))
        );
    }
}
