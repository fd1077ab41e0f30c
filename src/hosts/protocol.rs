//! What kftray and kftray-helper say to each other: one JSON object per line over the unix
//! stream, a request, then its reply. A `Bound` reply carries the bound socket as SCM_RIGHTS
//! ancillary data on the same message as its line, so the reader must read with `recvmsg`.
//!
//! The exchange is strictly one request, one reply: that is what lets the client pair each
//! descriptor it receives with the `Bound` reply it came with.

use crate::hosts::names::NameError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The number both sides compare in their `Hello`: bumped whenever a message changes shape.
pub const PROTOCOL: u32 = 1;

/// This build's version, told in `Hello` so that a mismatch can name both sides.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest line either side accepts: far more than any real set of entries, small enough
/// that a confused peer cannot make the other buffer without bound.
pub const MAX_LINE: usize = 1 << 20;

/// One host-name entry: `name` resolves to `address` while its run lasts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// A loopback address.
    pub address: IpAddr,
    /// A host name, compared without regard to case.
    pub name: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.name, self.address)
    }
}

/// Which kind of socket a `Bind` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A listening TCP socket.
    Tcp,
    /// A bound UDP socket.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// What the client sends. The first request of a connection must be `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Opens the conversation; the server answers with its own `Hello`, or an error when the
    /// protocol numbers differ.
    Hello {
        /// The client's [`PROTOCOL`].
        protocol: u32,
        /// The client's [`VERSION`].
        version: String,
    },
    /// Replaces this connection's whole set of entries. Declarative, so that kftray can send
    /// its desired set after every reload without remembering what it sent before.
    SetEntries {
        /// The complete desired set.
        entries: Vec<Entry>,
    },
    /// Adds a loopback alias (macOS; a no-op success on Linux).
    AddAlias {
        /// The loopback address to alias on lo0.
        address: IpAddr,
    },
    /// Removes a loopback alias this connection added.
    RemoveAlias {
        /// The loopback address.
        address: IpAddr,
    },
    /// Binds a low port on a loopback address and sends the socket back.
    Bind {
        /// Where to bind.
        address: SocketAddr,
        /// TCP (listening) or UDP.
        protocol: Transport,
    },
}

impl Request {
    /// The request's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::SetEntries { .. } => "set_entries",
            Request::AddAlias { .. } => "add_alias",
            Request::RemoveAlias { .. } => "remove_alias",
            Request::Bind { .. } => "bind",
        }
    }
}

/// What the server answers, one reply per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The server's side of the greeting.
    Hello {
        /// The server's [`PROTOCOL`].
        protocol: u32,
        /// The server's [`VERSION`].
        version: String,
    },
    /// Done.
    Ok,
    /// The socket is attached to this message as SCM_RIGHTS.
    Bound,
    /// Refused or failed; nothing was changed.
    Error {
        /// What sort of failure, for a program to branch on.
        kind: ErrorKind,
        /// What went wrong and what to do, for a person.
        message: String,
    },
}

/// The sort of an [`Reply::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peers speak different protocols.
    Version,
    /// The caller is not the user this helper serves.
    Forbidden,
    /// A line that is not a request, or a request out of order.
    Protocol,
    /// A name, address or port the helper will not accept.
    Invalid,
    /// A name that someone else already has.
    Conflict,
    /// The address and port are taken.
    InUse,
    /// Not possible on this operating system.
    Unsupported,
    /// The helper tried and the system said no.
    Failed,
}

/// A request turned down, as the [`Reply::Error`] that tells it: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What sort of failure.
    pub kind: ErrorKind,
    /// What went wrong and what to do.
    pub message: String,
}

impl Refusal {
    /// A refusal of `kind`, saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Refusal> for Reply {
    fn from(Refusal { kind, message }: Refusal) -> Reply {
        Reply::Error { kind, message }
    }
}

/// A name or address the helper will not take.
impl From<NameError> for Refusal {
    fn from(e: NameError) -> Refusal {
        Refusal::new(ErrorKind::Invalid, e.to_string())
    }
}

/// One line of JSON, with its newline.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing these plain enums cannot fail: no maps with non-string keys, no custom
    // Serialize impls. Fall back to an empty object rather than panic all the same.
    let mut line = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// Takes the first complete line out of `buffer`, without its newline (and a CR before it).
pub fn take_line(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buffer.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buffer.drain(..=end).collect();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(line)
}

/// An entry from text, for the tests of every part of the helper.
#[cfg(test)]
pub(crate) fn entry(address: &str, name: &str) -> Entry {
    Entry {
        address: address.parse().expect("an IP address"),
        name: name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let line = encode(&Request::Bind {
            address: "127.0.0.1:80".parse().unwrap(),
            protocol: Transport::Udp,
        });
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"type\":\"bind\",\"address\":\"127.0.0.1:80\",\"protocol\":\"udp\"}\n"
        );
        let back: Reply =
            serde_json::from_str("{\"type\":\"error\",\"kind\":\"in_use\",\"message\":\"taken\"}")
                .unwrap();
        assert_eq!(
            back,
            Reply::Error {
                kind: ErrorKind::InUse,
                message: "taken".into()
            }
        );
    }

    #[test]
    fn lines_are_taken_one_at_a_time() {
        let mut buffer = b"one\r\ntwo\nthr".to_vec();
        assert_eq!(take_line(&mut buffer).unwrap(), b"one");
        assert_eq!(take_line(&mut buffer).unwrap(), b"two");
        assert_eq!(take_line(&mut buffer), None);
        assert_eq!(buffer, b"thr");
    }
}
