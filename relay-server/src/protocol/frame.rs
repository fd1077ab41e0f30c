//! Frames: what follows a successful UDP, session or listen request, in both directions. Each
//! is a kind byte, a big-endian length and that many bytes.

use super::address::{TYPE_IPV4, TYPE_IPV6};
use super::{Decoded, ProtocolError, u16_at};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The largest UDP payload over IPv4 (65535 less the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;
const HEADER: usize = 3;
/// The longest frame: a datagram of [`MAX_DATAGRAM`] bytes from an IPv6 address, and its
/// header.
pub const MAX_FRAME_LEN: usize = HEADER + PEER_V6 + MAX_DATAGRAM;

const KIND_DATAGRAM: u8 = 1;
const KIND_PING: u8 = 2;
const KIND_PONG: u8 = 3;
const KIND_INCOMING: u8 = 4;
const KIND_REFUSE: u8 = 5;
const KIND_END: u8 = 6;
const KIND_ADDRESSED: u8 = 7;

/// An incoming frame's payload: connection id (4), address type (1), address (4 or 16), port (2).
const INCOMING_V4: usize = 4 + 1 + 4 + 2;
const INCOMING_V6: usize = 4 + 1 + 16 + 2;
/// An addressed datagram's peer: address type (1), address (4 or 16), port (2).
const PEER_V4: usize = 1 + 4 + 2;
const PEER_V6: usize = 1 + 16 + 2;
/// A refuse frame's payload: connection id (4).
const REFUSE_LEN: usize = 4;
/// An end frame's payload: connection id (4), bytes sent (8).
const END_LEN: usize = 4 + 8;

/// A frame; `B` is the datagram's bytes (borrowed when decoded from a slice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<B> {
    /// One UDP datagram (UDP flows only).
    Datagram(B),
    /// A heartbeat; the peer answers with a `Pong` carrying the same value.
    Ping(u64),
    Pong(u64),
    /// The relay accepted a connection on a listen's port (relay to client, listens only):
    /// `connection` is the id to attach it with (unique within the relay process), `from` the
    /// in-cluster client's address. An IPv6 address's flow info and scope id are not carried.
    Incoming {
        connection: u32,
        from: SocketAddr,
    },
    /// The client will not attach `connection` (client to relay, listens only): its local
    /// server is not there. The relay resets the in-cluster client's connection at once.
    Refuse {
        connection: u32,
    },
    /// One side of attached `connection` finished sending after `bytes` bytes in all (both
    /// ways, listens only): relay to client, the in-cluster client shut its write half;
    /// client to relay, the local server did. The other side shuts its own end's write half
    /// once that many bytes have come through the attach. Ends travel here, not as a
    /// half-close of the attach: a kubelet's port-forward ends the whole stream when the pod
    /// side closes its half.
    End {
        connection: u32,
        bytes: u64,
    },
    /// One UDP datagram of a UDP listen, and its peer (both ways): relay to client, what
    /// in-cluster client `peer` sent to the listen's port; client to relay, a datagram for
    /// the relay to send to `peer` from that port. A peer's flow info and scope id are not
    /// carried.
    Addressed {
        peer: SocketAddr,
        payload: B,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Datagram,
    Ping,
    Pong,
    Incoming,
    Refuse,
    End,
    Addressed,
}

impl<B: AsRef<[u8]>> Frame<B> {
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Datagram(_) => FrameKind::Datagram,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
            Frame::Incoming { .. } => FrameKind::Incoming,
            Frame::Refuse { .. } => FrameKind::Refuse,
            Frame::End { .. } => FrameKind::End,
            Frame::Addressed { .. } => FrameKind::Addressed,
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
            Frame::Incoming { connection, from } => {
                out.push(KIND_INCOMING);
                match from.ip() {
                    IpAddr::V4(ip) => {
                        out.extend_from_slice(&(INCOMING_V4 as u16).to_be_bytes());
                        out.extend_from_slice(&connection.to_be_bytes());
                        out.push(TYPE_IPV4);
                        out.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        out.extend_from_slice(&(INCOMING_V6 as u16).to_be_bytes());
                        out.extend_from_slice(&connection.to_be_bytes());
                        out.push(TYPE_IPV6);
                        out.extend_from_slice(&ip.octets());
                    }
                }
                out.extend_from_slice(&from.port().to_be_bytes());
            }
            Frame::Addressed { peer, payload } => {
                let payload = payload.as_ref();
                if payload.len() > MAX_DATAGRAM {
                    return Err(ProtocolError::DatagramTooLarge(payload.len()));
                }
                let head = if peer.is_ipv4() { PEER_V4 } else { PEER_V6 };
                out.push(KIND_ADDRESSED);
                out.extend_from_slice(&((head + payload.len()) as u16).to_be_bytes());
                match peer.ip() {
                    IpAddr::V4(ip) => {
                        out.push(TYPE_IPV4);
                        out.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        out.push(TYPE_IPV6);
                        out.extend_from_slice(&ip.octets());
                    }
                }
                out.extend_from_slice(&peer.port().to_be_bytes());
                out.extend_from_slice(payload);
            }
            Frame::Refuse { connection } => {
                out.push(KIND_REFUSE);
                out.extend_from_slice(&(REFUSE_LEN as u16).to_be_bytes());
                out.extend_from_slice(&connection.to_be_bytes());
            }
            Frame::End { connection, bytes } => {
                out.push(KIND_END);
                out.extend_from_slice(&(END_LEN as u16).to_be_bytes());
                out.extend_from_slice(&connection.to_be_bytes());
                out.extend_from_slice(&bytes.to_be_bytes());
            }
        }
        Ok(())
    }
}

impl<'a> Frame<&'a [u8]> {
    pub fn decode(buf: &'a [u8]) -> Result<Decoded<Frame<&'a [u8]>>, ProtocolError> {
        if let Some(&kind) = buf.first()
            && !matches!(
                kind,
                KIND_DATAGRAM
                    | KIND_PING
                    | KIND_PONG
                    | KIND_INCOMING
                    | KIND_REFUSE
                    | KIND_END
                    | KIND_ADDRESSED
            )
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
            KIND_INCOMING if len != INCOMING_V4 && len != INCOMING_V6 => {
                return Err(ProtocolError::IncomingLength(len));
            }
            KIND_ADDRESSED if !(PEER_V4..=PEER_V6 + MAX_DATAGRAM).contains(&len) => {
                return Err(ProtocolError::AddressedLength(len));
            }
            KIND_REFUSE if len != REFUSE_LEN => {
                return Err(ProtocolError::FrameLength {
                    kind: "refuse",
                    expected: REFUSE_LEN,
                    found: len,
                });
            }
            KIND_END if len != END_LEN => {
                return Err(ProtocolError::FrameLength {
                    kind: "end",
                    expected: END_LEN,
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
            KIND_INCOMING => decode_incoming(payload)?,
            KIND_ADDRESSED => decode_addressed(payload)?,
            KIND_REFUSE => Frame::Refuse {
                connection: u32_of(payload),
            },
            KIND_END => Frame::End {
                connection: u32_of(payload),
                bytes: u64::from_be_bytes(std::array::from_fn(|i| payload[4 + i])),
            },
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

/// The connection id at the start of a payload whose length was checked.
fn u32_of(payload: &[u8]) -> u32 {
    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
}

/// An incoming frame's payload, of a checked length (11 or 23): its address type must be the
/// one that length holds.
fn decode_incoming<'a>(payload: &[u8]) -> Result<Frame<&'a [u8]>, ProtocolError> {
    let (Some(id), Some(peer)) = (payload.get(..4), payload.get(4..)) else {
        return Err(ProtocolError::IncomingLength(payload.len()));
    };
    let from = decode_peer(peer, peer.len())?;
    Ok(Frame::Incoming {
        connection: u32_of(id),
        from,
    })
}

/// An addressed datagram: its peer (7 or 19 bytes, as its address type says), then the
/// datagram.
fn decode_addressed(payload: &[u8]) -> Result<Frame<&[u8]>, ProtocolError> {
    let head = match payload.first() {
        Some(&TYPE_IPV6) => PEER_V6,
        _ => PEER_V4,
    };
    let (Some(peer), Some(datagram)) = (payload.get(..head), payload.get(head..)) else {
        return Err(ProtocolError::AddressedLength(payload.len()));
    };
    if datagram.len() > MAX_DATAGRAM {
        return Err(ProtocolError::DatagramTooLarge(datagram.len()));
    }
    Ok(Frame::Addressed {
        peer: decode_peer(peer, peer.len())?,
        payload: datagram,
    })
}

/// A peer: address type (1), address, port (2), in `len` bytes; the type must be the one
/// that length holds.
fn decode_peer(peer: &[u8], len: usize) -> Result<SocketAddr, ProtocolError> {
    let end = len.saturating_sub(2);
    let (Some(&kind), Some(address), Some(port)) =
        (peer.first(), peer.get(1..end), peer.get(end..len))
    else {
        return Err(ProtocolError::AddressedLength(len));
    };
    let mismatch = |expected| ProtocolError::AddressLength {
        kind,
        expected,
        found: address.len().min(255) as u8,
    };
    let ip = match kind {
        TYPE_IPV4 => IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(address).map_err(|_| mismatch("4"))?,
        )),
        TYPE_IPV6 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(address).map_err(|_| mismatch("16"))?,
        )),
        other => return Err(ProtocolError::UnknownAddressType(other)),
    };
    Ok(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
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
            Frame::Incoming {
                connection: 1,
                from: "10.244.1.7:51234".parse().unwrap(),
            },
            Frame::Incoming {
                connection: u32::MAX,
                from: "[fd00::1:2]:1".parse().unwrap(),
            },
            Frame::Refuse { connection: 7 },
            Frame::Addressed {
                peer: "10.244.1.7:5353".parse().unwrap(),
                payload: b"query",
            },
            Frame::Addressed {
                peer: "[fd00::7]:53".parse().unwrap(),
                payload: &big,
            },
            Frame::Addressed {
                peer: "10.0.0.1:1".parse().unwrap(),
                payload: b"",
            },
            Frame::End {
                connection: 7,
                bytes: u64::MAX - 1,
            },
            Frame::Ping(3),
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

    #[test]
    fn the_documented_incoming_bytes() {
        // The README's example: connection 1 from 10.244.1.7:51234.
        let frame = Frame::<&[u8]>::Incoming {
            connection: 1,
            from: "10.244.1.7:51234".parse().unwrap(),
        };
        assert_eq!(
            encoded(&frame),
            [4, 0, 11, 0, 0, 0, 1, 1, 10, 244, 1, 7, 0xc8, 0x22]
        );
        assert_eq!(frame.kind(), FrameKind::Incoming);
        let v6 = encoded(&Frame::Incoming {
            connection: 2,
            from: "[::1]:80".parse().unwrap(),
        });
        assert_eq!(v6.len(), 3 + 23);
        assert_eq!(v6[..8], [4, 0, 23, 0, 0, 0, 2, 2]);
        assert_eq!(v6[24..], [0, 80]);
    }

    #[test]
    fn malformed_incoming_frames_are_refused() {
        let v4 = encoded(&Frame::Incoming {
            connection: 1,
            from: "10.244.1.7:51234".parse().unwrap(),
        });
        let v6 = encoded(&Frame::Incoming {
            connection: 1,
            from: "[fd00::1]:53".parse().unwrap(),
        });
        let with = |good: &[u8], at: usize, value: u8| {
            let mut b = good.to_vec();
            b[at] = value;
            Frame::decode(&b).map(|_| ())
        };
        // A length other than 11 or 23, known from the header alone.
        for len in [0u16, 7, 10, 12, 22, 24, 0xffff] {
            let [hi, lo] = len.to_be_bytes();
            assert_eq!(
                Frame::decode(&[4, hi, lo]),
                Err(ProtocolError::IncomingLength(usize::from(len)))
            );
        }
        // An address type that does not match the length.
        assert_eq!(
            with(&v4, 7, 2),
            Err(ProtocolError::AddressLength {
                kind: 2,
                expected: "16",
                found: 4
            })
        );
        assert_eq!(
            with(&v6, 7, 1),
            Err(ProtocolError::AddressLength {
                kind: 1,
                expected: "4",
                found: 16
            })
        );
        // No address, a host name, an unknown type.
        assert_eq!(with(&v4, 7, 0), Err(ProtocolError::UnknownAddressType(0)));
        assert_eq!(with(&v4, 7, 3), Err(ProtocolError::UnknownAddressType(3)));
        assert_eq!(with(&v6, 7, 9), Err(ProtocolError::UnknownAddressType(9)));
        // Truncated: asks for the whole frame, and no more.
        for cut in 0..v4.len() {
            match Frame::decode(&v4[..cut]) {
                Ok(Decoded::Incomplete { need }) => assert!(need > cut && need <= v4.len()),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // Port 0 and connection 0 are carried as they are.
        let mut zero = v4.clone();
        zero[3..7].copy_from_slice(&[0; 4]);
        zero[12..].copy_from_slice(&[0, 0]);
        assert_eq!(
            Frame::decode(&zero),
            Ok(Decoded::Complete {
                value: Frame::Incoming {
                    connection: 0,
                    from: "10.244.1.7:0".parse().unwrap()
                },
                len: 14
            })
        );
        assert_eq!(Frame::decode(&[8]), Err(ProtocolError::UnknownFrame(8)));
    }

    #[test]
    fn addressed_datagrams_are_checked() {
        assert_eq!(
            encoded(&Frame::Addressed {
                peer: "10.244.1.7:53".parse().unwrap(),
                payload: b"q",
            }),
            [7, 0, 8, 1, 10, 244, 1, 7, 0, 53, b'q']
        );
        // Too short for a peer, or too long for one and the largest datagram.
        for len in [0u16, 6, 0xffff] {
            let [hi, lo] = len.to_be_bytes();
            assert_eq!(
                Frame::decode(&[7, hi, lo]),
                Err(ProtocolError::AddressedLength(usize::from(len)))
            );
        }
        // An IPv6 type in a frame too short for its address; no address; a host name.
        assert!(matches!(
            Frame::decode(&[7, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::AddressedLength(_))
        ));
        assert_eq!(
            Frame::decode(&[7, 0, 7, 0, 1, 2, 3, 4, 0, 53]),
            Err(ProtocolError::UnknownAddressType(0))
        );
        assert_eq!(
            Frame::decode(&[7, 0, 7, 3, 1, 2, 3, 4, 0, 53]),
            Err(ProtocolError::UnknownAddressType(3))
        );
        let too_big = vec![0u8; MAX_DATAGRAM + 1];
        let frame = Frame::Addressed {
            peer: "10.0.0.1:1".parse().unwrap(),
            payload: &too_big[..],
        };
        assert_eq!(
            frame.encode(&mut Vec::new()),
            Err(ProtocolError::DatagramTooLarge(MAX_DATAGRAM + 1))
        );
    }

    #[test]
    fn the_documented_refuse_and_end_bytes() {
        assert_eq!(
            encoded(&Frame::Refuse { connection: 1 }),
            [5, 0, 4, 0, 0, 0, 1]
        );
        assert_eq!(
            encoded(&Frame::End {
                connection: 1,
                bytes: 1000
            }),
            [6, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]
        );
        for (kind, good) in [(5u8, 4u16), (6, 12)] {
            for len in [0, good - 1, good + 1, 0xffff] {
                let [hi, lo] = len.to_be_bytes();
                assert!(matches!(
                    Frame::decode(&[kind, hi, lo]),
                    Err(ProtocolError::FrameLength { found, .. }) if found == usize::from(len)
                ));
            }
        }
    }
}
