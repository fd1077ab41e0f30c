//! The relay's answer to a request: a status, the address it reached, and a message.

use super::address::{TYPE_NONE, check_length, decode_address, encode_address};
use super::{Address, Decoded, MAGIC, ProtocolError, VERSION, check_preamble, u16_at};
use std::fmt;
use std::net::SocketAddr;

/// Magic, version, status, port, address type and length.
const FIXED: usize = 8;
/// The longest message a reply carries, in bytes.
pub const MAX_MESSAGE_LEN: usize = 255;
/// The longest reply: an IPv6 peer and the longest message.
pub const MAX_REPLY_LEN: usize = FIXED + 16 + 1 + MAX_MESSAGE_LEN;

/// What became of a request. Only `Connected` is followed by data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Connected (TCP), the flow is open (UDP), or the session started.
    Connected,
    /// The request broke the protocol; the message says which field.
    BadRequest,
    /// The client speaks a version this relay does not.
    UnsupportedVersion,
    /// The host name does not exist (NXDOMAIN, or no address records).
    NoSuchHost,
    /// The resolver did not answer in time.
    ResolveTimeout,
    /// The resolver failed otherwise (SERVFAIL, refused, no nameserver).
    ResolveFailed,
    /// The destination refused the connection.
    ConnectionRefused,
    /// The destination did not answer in time.
    Timeout,
    NetworkUnreachable,
    HostUnreachable,
    /// The relay is at its connection limit.
    Busy,
    /// Anything else; the message says what.
    Failed,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Connected,
        Status::BadRequest,
        Status::UnsupportedVersion,
        Status::NoSuchHost,
        Status::ResolveTimeout,
        Status::ResolveFailed,
        Status::ConnectionRefused,
        Status::Timeout,
        Status::NetworkUnreachable,
        Status::HostUnreachable,
        Status::Busy,
        Status::Failed,
    ];

    pub fn code(self) -> u8 {
        match self {
            Status::Connected => 0,
            Status::BadRequest => 1,
            Status::UnsupportedVersion => 2,
            Status::NoSuchHost => 3,
            Status::ResolveTimeout => 4,
            Status::ResolveFailed => 5,
            Status::ConnectionRefused => 6,
            Status::Timeout => 7,
            Status::NetworkUnreachable => 8,
            Status::HostUnreachable => 9,
            Status::Busy => 10,
            Status::Failed => 11,
        }
    }

    pub fn from_code(code: u8) -> Result<Status, ProtocolError> {
        Status::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or(ProtocolError::UnknownStatus(code))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Connected => "connected",
            Status::BadRequest => "bad request",
            Status::UnsupportedVersion => "unsupported protocol version",
            Status::NoSuchHost => "no such host",
            Status::ResolveTimeout => "name resolution timed out",
            Status::ResolveFailed => "name resolution failed",
            Status::ConnectionRefused => "connection refused",
            Status::Timeout => "timed out",
            Status::NetworkUnreachable => "network unreachable",
            Status::HostUnreachable => "host unreachable",
            Status::Busy => "the relay is busy",
            Status::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: Status,
    /// The address connected to (a host name's resolved address), when there is one.
    pub peer: Option<SocketAddr>,
    /// Details for people and logs; at most [`MAX_MESSAGE_LEN`] bytes.
    pub message: String,
}

impl Reply {
    pub fn new(status: Status, peer: Option<SocketAddr>, message: impl Into<String>) -> Reply {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_LEN {
            let mut end = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Reply {
            status,
            peer,
            message,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + 16 + 1 + self.message.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.status.code());
        match self.peer {
            Some(peer) => {
                out.extend_from_slice(&peer.port().to_be_bytes());
                encode_address(&Address::Ip(peer.ip()), &mut out);
            }
            None => out.extend_from_slice(&[0, 0, TYPE_NONE, 0]),
        }
        let message = &self.message.as_bytes()[..self.message.len().min(MAX_MESSAGE_LEN)];
        out.push(message.len() as u8);
        out.extend_from_slice(message);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Decoded<Reply>, ProtocolError> {
        check_preamble(buf)?;
        let status = match buf.get(3) {
            Some(&code) => Status::from_code(code)?,
            None => return Ok(Decoded::Incomplete { need: FIXED }),
        };
        if buf.len() < FIXED {
            return Ok(Decoded::Incomplete { need: FIXED });
        }
        let port = u16_at(buf, 4);
        let (kind, len) = (buf[6], buf[7]);
        check_length(kind, len, false)?;
        if kind == TYPE_NONE && port != 0 {
            return Err(ProtocolError::PortWithoutPeer(port));
        }
        let message_at = FIXED + usize::from(len);
        let Some(&message_len) = buf.get(message_at) else {
            return Ok(Decoded::Incomplete {
                need: message_at + 1,
            });
        };
        let total = message_at + 1 + usize::from(message_len);
        let Some(message) = buf.get(message_at + 1..total) else {
            return Ok(Decoded::Incomplete { need: total });
        };
        let message = std::str::from_utf8(message)
            .map_err(|_| ProtocolError::MessageNotUtf8)?
            .to_string();
        let peer = match decode_address(kind, &buf[FIXED..message_at])? {
            Some(Address::Ip(ip)) => Some(SocketAddr::new(ip, port)),
            Some(Address::Host(_)) => return Err(ProtocolError::HostInReply),
            None => None,
        };
        Ok(Decoded::Complete {
            value: Reply {
                status,
                peer,
                message,
            },
            len: total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip_and_prefixes_ask_for_more() {
        for reply in [
            Reply::new(
                Status::Connected,
                Some("10.1.2.3:6379".parse().unwrap()),
                "",
            ),
            Reply::new(
                Status::Connected,
                Some("[fd00::7]:53".parse().unwrap()),
                "ok",
            ),
            Reply::new(Status::NoSuchHost, None, "redis.internal: no such host"),
            Reply::new(Status::Connected, None, ""),
        ] {
            let bytes = reply.encode();
            assert_eq!(
                Reply::decode(&bytes),
                Ok(Decoded::Complete {
                    value: reply.clone(),
                    len: bytes.len()
                })
            );
            for cut in 0..bytes.len() {
                match Reply::decode(&bytes[..cut]) {
                    Ok(Decoded::Incomplete { need }) => assert!(need > cut && need <= bytes.len()),
                    other => panic!("{reply:?} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_status_has_its_own_code() {
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Ok(status));
        }
        assert_eq!(
            Status::from_code(200),
            Err(ProtocolError::UnknownStatus(200))
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let reply = Reply::new(Status::Failed, None, "é".repeat(200));
        assert!(reply.message.len() <= MAX_MESSAGE_LEN);
        assert!(matches!(
            Reply::decode(&reply.encode()),
            Ok(Decoded::Complete { .. })
        ));
    }

    #[test]
    fn a_peer_must_be_an_ip_address() {
        let mut bytes = Reply::new(Status::Connected, None, "").encode();
        bytes[6] = 3;
        bytes[7] = 1;
        assert_eq!(Reply::decode(&bytes), Err(ProtocolError::HostInReply));
        let mut bytes = Reply::new(Status::Connected, None, "").encode();
        bytes[5] = 80;
        assert_eq!(
            Reply::decode(&bytes),
            Err(ProtocolError::PortWithoutPeer(80))
        );
    }
}
