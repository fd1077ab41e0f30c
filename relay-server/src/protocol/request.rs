//! The request header: the first bytes a client sends on a connection to the relay.

use super::address::{TYPE_HOST, TYPE_NONE, check_length, decode_address, encode_address};
use super::{Decoded, Destination, MAGIC, ProtocolError, VERSION, check_preamble, u16_at};

/// The fixed part: magic, version, command, id, port, address type and length.
const FIXED: usize = 12;
/// The longest request: a host name of 253 bytes and its final dot.
pub const MAX_REQUEST_LEN: usize = FIXED + 254;

const COMMAND_TCP: u8 = 1;
const COMMAND_UDP: u8 = 2;
const COMMAND_SESSION: u8 = 3;
const COMMAND_LISTEN: u8 = 4;
const COMMAND_ATTACH: u8 = 5;
const COMMAND_LISTEN_UDP: u8 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// What a connection to the relay is for. `id` is the client's number for it, so that the
/// relay's log lines and the client's can be matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Carry a TCP connection, or a UDP flow of framed datagrams, to `to`.
    Connect {
        id: u32,
        transport: Transport,
        to: Destination,
    },
    /// A session: the client's heartbeat (ping and pong frames), which keeps the relay alive.
    Session { id: u32 },
    /// Listen on `port` for in-cluster clients (a reverse forward). Each connection accepted
    /// there is announced on this stream with a [`Frame::Incoming`](super::Frame::Incoming);
    /// the stream also carries pings and pongs, and closing it closes the port.
    Listen { id: u32, port: u16 },
    /// Carry the connection announced with connection id `id` (from a
    /// [`Frame::Incoming`](super::Frame::Incoming)) as a TCP connect carries its destination.
    Attach { id: u32 },
    /// Listen on UDP `port` for in-cluster clients (a UDP reverse forward). Each datagram
    /// that arrives there comes on this stream in a
    /// [`Frame::Addressed`](super::Frame::Addressed) naming its sender, and each one the
    /// client sends back in one is sent to the address it names, from that port.
    ListenUdp { id: u32, port: u16 },
}

impl Request {
    pub fn id(&self) -> u32 {
        match self {
            Request::Connect { id, .. }
            | Request::Session { id }
            | Request::Listen { id, .. }
            | Request::ListenUdp { id, .. }
            | Request::Attach { id } => *id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + 32);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        match self {
            Request::Connect { id, transport, to } => {
                out.push(match transport {
                    Transport::Tcp => COMMAND_TCP,
                    Transport::Udp => COMMAND_UDP,
                });
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&to.port.to_be_bytes());
                encode_address(&to.address, &mut out);
            }
            Request::Session { id } => {
                out.push(COMMAND_SESSION);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&[0, 0, TYPE_NONE, 0]);
            }
            Request::Listen { id, port } | Request::ListenUdp { id, port } => {
                out.push(if matches!(self, Request::Listen { .. }) {
                    COMMAND_LISTEN
                } else {
                    COMMAND_LISTEN_UDP
                });
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&port.to_be_bytes());
                out.extend_from_slice(&[TYPE_NONE, 0]);
            }
            Request::Attach { id } => {
                out.push(COMMAND_ATTACH);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&[0, 0, TYPE_NONE, 0]);
            }
        }
        out
    }

    /// Decodes a request from the start of `buf`, checking every field.
    pub fn decode(buf: &[u8]) -> Result<Decoded<Request>, ProtocolError> {
        check_preamble(buf)?;
        if let Some(&command) = buf.get(3)
            && !matches!(
                command,
                COMMAND_TCP
                    | COMMAND_UDP
                    | COMMAND_SESSION
                    | COMMAND_LISTEN
                    | COMMAND_ATTACH
                    | COMMAND_LISTEN_UDP
            )
        {
            return Err(ProtocolError::UnknownCommand(command));
        }
        if buf.len() < FIXED {
            return Ok(Decoded::Incomplete { need: FIXED });
        }
        let command = buf[3];
        let id = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let port = u16_at(buf, 8);
        let (kind, len) = (buf[10], buf[11]);
        let value = match command {
            COMMAND_SESSION if port != 0 || kind != TYPE_NONE || len != 0 => {
                return Err(ProtocolError::SessionWithDestination);
            }
            COMMAND_SESSION => Some(Request::Session { id }),
            COMMAND_LISTEN | COMMAND_LISTEN_UDP if kind != TYPE_NONE || len != 0 => {
                return Err(ProtocolError::ListenWithAddress);
            }
            COMMAND_LISTEN | COMMAND_LISTEN_UDP if port == 0 => {
                return Err(ProtocolError::ZeroPort);
            }
            COMMAND_LISTEN => Some(Request::Listen { id, port }),
            COMMAND_LISTEN_UDP => Some(Request::ListenUdp { id, port }),
            COMMAND_ATTACH if port != 0 || kind != TYPE_NONE || len != 0 => {
                return Err(ProtocolError::AttachWithDestination);
            }
            COMMAND_ATTACH => Some(Request::Attach { id }),
            _ => None,
        };
        if let Some(value) = value {
            return Ok(Decoded::Complete { value, len: FIXED });
        }
        if kind == TYPE_NONE {
            return Err(ProtocolError::UnknownAddressType(kind));
        }
        check_length(kind, len, true)?;
        if port == 0 {
            return Err(ProtocolError::ZeroPort);
        }
        let total = FIXED + usize::from(len);
        let Some(bytes) = buf.get(FIXED..total) else {
            return Ok(Decoded::Incomplete { need: total });
        };
        debug_assert!(kind == TYPE_HOST || bytes.len() <= 16);
        let Some(address) = decode_address(kind, bytes)? else {
            return Err(ProtocolError::UnknownAddressType(kind));
        };
        let transport = if command == COMMAND_TCP {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        Ok(Decoded::Complete {
            value: Request::Connect {
                id,
                transport,
                to: Destination { address, port },
            },
            len: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Address;

    fn tcp(host: &str, port: u16) -> Request {
        Request::Connect {
            id: 7,
            transport: Transport::Tcp,
            to: Destination::new(host, port),
        }
    }

    #[test]
    fn the_documented_bytes() {
        // The example of the README's byte table.
        let bytes = tcp("redis.internal", 6379).encode();
        assert_eq!(
            bytes,
            [
                b"kr".as_slice(),
                &[1, 1, 0, 0, 0, 7, 0x18, 0xeb, 3, 14],
                b"redis.internal"
            ]
            .concat()
        );
        let udp = Request::Connect {
            id: 1,
            transport: Transport::Udp,
            to: Destination::new("10.96.0.10", 53),
        };
        assert_eq!(
            udp.encode(),
            [b'k', b'r', 1, 2, 0, 0, 0, 1, 0, 53, 1, 4, 10, 96, 0, 10]
        );
    }

    #[test]
    fn every_kind_round_trips_and_reads_no_further() {
        for request in [
            tcp("redis.internal", 6379),
            tcp("10.0.0.1", 1),
            tcp("fd00::1", 65535),
            Request::Session { id: u32::MAX },
            Request::Listen { id: 3, port: 8080 },
            Request::Listen { id: 0, port: 1 },
            Request::ListenUdp { id: 4, port: 53 },
            Request::Listen {
                id: u32::MAX,
                port: 65535,
            },
            Request::Attach { id: 0 },
            Request::Attach { id: u32::MAX },
        ] {
            let mut bytes = request.encode();
            let len = bytes.len();
            bytes.extend_from_slice(b"payload that follows");
            assert_eq!(
                Request::decode(&bytes),
                Ok(Decoded::Complete {
                    value: request.clone(),
                    len
                })
            );
            // Every prefix asks for more, and for no more than the whole header.
            for cut in 0..len {
                match Request::decode(&bytes[..cut]) {
                    Ok(Decoded::Incomplete { need }) => assert!(need > cut && need <= len),
                    other => panic!("{request:?} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn each_field_is_checked() {
        let good = tcp("db", 5432).encode();
        let with = |at: usize, value: u8| {
            let mut b = good.clone();
            b[at] = value;
            Request::decode(&b)
        };
        assert_eq!(with(0, b'x'), Err(ProtocolError::BadMagic(b'x', b'r')));
        assert_eq!(with(2, 9), Err(ProtocolError::UnsupportedVersion(9)));
        assert_eq!(with(3, 7), Err(ProtocolError::UnknownCommand(7)));
        assert_eq!(with(3, 0), Err(ProtocolError::UnknownCommand(0)));
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 1, 0, 0, 0, 1, 0, 0, 3, 2, b'd', b'b']),
            Err(ProtocolError::ZeroPort)
        );
        assert_eq!(with(10, 7), Err(ProtocolError::UnknownAddressType(7)));
        assert_eq!(with(10, 0), Err(ProtocolError::UnknownAddressType(0)));
        assert!(matches!(
            with(10, 1),
            Err(ProtocolError::AddressLength { kind: 1, .. })
        ));
        assert!(matches!(with(12, b' '), Err(ProtocolError::BadHost(_))));
        let session = Request::Session { id: 1 }.encode();
        let mut with_port = session.clone();
        with_port[9] = 80;
        assert_eq!(
            Request::decode(&with_port),
            Err(ProtocolError::SessionWithDestination)
        );
        // A wrong magic is known from two bytes, before the rest arrives.
        assert!(Request::decode(b"GE").is_err());
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 1, 0, 0, 0, 1, 0, 80, 3, 1, 0xff]),
            Err(ProtocolError::BadHost("not ASCII"))
        );
        assert!(matches!(
            Request::decode(&[b'k', b'r', 1, 1, 0, 0, 0, 1, 0, 80, 3, 0]),
            Err(ProtocolError::AddressLength { found: 0, .. })
        ));
        let Ok(Decoded::Complete { value, .. }) = Request::decode(&good) else {
            panic!()
        };
        assert!(
            matches!(value, Request::Connect { to: Destination { address: Address::Host(h), .. }, .. } if h == "db")
        );
    }

    #[test]
    fn the_documented_listen_and_attach_bytes() {
        // The README's example: listen on port 8080, request id 3.
        assert_eq!(
            Request::Listen { id: 3, port: 8080 }.encode(),
            [0x6b, 0x72, 1, 4, 0, 0, 0, 3, 0x1f, 0x90, 0, 0]
        );
        assert_eq!(
            Request::Attach { id: 0x0102_0304 }.encode(),
            [0x6b, 0x72, 1, 5, 1, 2, 3, 4, 0, 0, 0, 0]
        );
        assert_eq!(
            Request::ListenUdp { id: 3, port: 53 }.encode(),
            [0x6b, 0x72, 1, 6, 0, 0, 0, 3, 0, 53, 0, 0]
        );
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 6, 0, 0, 0, 3, 0, 0, 0, 0]),
            Err(ProtocolError::ZeroPort)
        );
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 6, 0, 0, 0, 3, 0, 53, 1, 4]),
            Err(ProtocolError::ListenWithAddress)
        );
    }

    #[test]
    fn listen_and_attach_fields_are_checked() {
        let listen = Request::Listen { id: 3, port: 8080 }.encode();
        let attach = Request::Attach { id: 9 }.encode();
        let with = |good: &[u8], at: usize, value: u8| {
            let mut b = good.to_vec();
            b[at] = value;
            Request::decode(&b)
        };
        // A listen names a port and no address.
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 4, 0, 0, 0, 3, 0, 0, 0, 0]),
            Err(ProtocolError::ZeroPort)
        );
        assert_eq!(with(&listen, 10, 1), Err(ProtocolError::ListenWithAddress));
        assert_eq!(with(&listen, 10, 3), Err(ProtocolError::ListenWithAddress));
        assert_eq!(with(&listen, 11, 4), Err(ProtocolError::ListenWithAddress));
        // An attach names neither a port nor an address.
        assert_eq!(
            with(&attach, 8, 1),
            Err(ProtocolError::AttachWithDestination)
        );
        assert_eq!(
            with(&attach, 9, 80),
            Err(ProtocolError::AttachWithDestination)
        );
        assert_eq!(
            with(&attach, 10, 1),
            Err(ProtocolError::AttachWithDestination)
        );
        assert_eq!(
            with(&attach, 11, 4),
            Err(ProtocolError::AttachWithDestination)
        );
        // Nothing after the fixed part belongs to them: the next bytes are left alone.
        let mut more = listen.clone();
        more.extend_from_slice(&[1, 4, 10, 0, 0, 1]);
        assert_eq!(
            Request::decode(&more),
            Ok(Decoded::Complete {
                value: Request::Listen { id: 3, port: 8080 },
                len: 12
            })
        );
        // The command is known from its byte, before the rest arrives.
        assert_eq!(
            Request::decode(&[b'k', b'r', 1, 5]),
            Ok(Decoded::Incomplete { need: 12 })
        );
        assert_eq!(Request::Listen { id: 3, port: 1 }.id(), 3);
        assert_eq!(Request::Attach { id: 4 }.id(), 4);
    }
}
