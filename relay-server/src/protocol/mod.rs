//! The relay protocol, version 1: what a client sends first on each connection (a
//! [`Request`]), what the relay answers (a [`Reply`]), and the [`Frame`]s that follow on UDP
//! flows, sessions and listens. The byte layout is documented in the crate's README.
//!
//! Every decoder is a pure function over a byte slice that never panics and never reads past
//! what it says it needs: it returns [`Decoded::Incomplete`] with the total length it needs
//! to go on, [`Decoded::Complete`] with the value and the bytes it used, or a
//! [`ProtocolError`] naming the field that is wrong. A complete value encodes back to exactly
//! the bytes it was decoded from.

mod address;
mod frame;
mod reply;
mod request;

pub use address::{Address, Destination, MAX_HOST_LEN, check_host};
pub use frame::{Frame, FrameKind, MAX_DATAGRAM, MAX_FRAME_LEN};
pub use reply::{MAX_MESSAGE_LEN, MAX_REPLY_LEN, Reply, Status};
pub use request::{MAX_REQUEST_LEN, Request, Transport};

/// The first two bytes of every request and reply: "kr".
pub const MAGIC: [u8; 2] = *b"kr";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// The port the relay listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7000;

/// The outcome of decoding from the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole value, made of the first `len` bytes.
    Complete { value: T, len: usize },
    /// Not enough bytes yet: at least `need` in total (always more than were given).
    Incomplete { need: usize },
}

/// Why bytes are not a valid message. Each names the field at fault, so a log line says what
/// the peer got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("not the kftray relay protocol (first bytes {0:#04x} {1:#04x})")]
    BadMagic(u8, u8),
    #[error("protocol version {0} is not supported (this side speaks version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown command {0}")]
    UnknownCommand(u8),
    #[error("unknown address type {0}")]
    UnknownAddressType(u8),
    #[error("an address of type {kind} takes {expected} bytes, not {found}")]
    AddressLength {
        kind: u8,
        expected: &'static str,
        found: u8,
    },
    #[error("destination port 0")]
    ZeroPort,
    #[error("a session request names a destination")]
    SessionWithDestination,
    #[error("a listen request names an address (it takes a port alone)")]
    ListenWithAddress,
    #[error("an attach request names a destination (it takes a connection id alone)")]
    AttachWithDestination,
    #[error("a reply cannot carry a host name as its peer")]
    HostInReply,
    #[error("a reply without a peer address has port {0}")]
    PortWithoutPeer(u16),
    #[error("bad host name: {0}")]
    BadHost(&'static str),
    #[error("unknown status {0}")]
    UnknownStatus(u8),
    #[error("the reply's message is not UTF-8")]
    MessageNotUtf8,
    #[error("unknown frame kind {0}")]
    UnknownFrame(u8),
    #[error("a datagram of {0} bytes is larger than {MAX_DATAGRAM}")]
    DatagramTooLarge(usize),
    #[error("a {kind} frame carries {expected} bytes, not {found}")]
    FrameLength {
        kind: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("an incoming frame carries 11 (IPv4) or 23 (IPv6) bytes, not {0}")]
    IncomingLength(usize),
    #[error("an addressed datagram's frame of {0} bytes cannot hold its peer and datagram")]
    AddressedLength(usize),
}

/// Checks the magic and version at the start of a request or reply.
fn check_preamble(buf: &[u8]) -> Result<(), ProtocolError> {
    if let [a, b, ..] = *buf
        && [a, b] != MAGIC
    {
        return Err(ProtocolError::BadMagic(a, b));
    }
    if let Some(&version) = buf.get(2)
        && version != VERSION
    {
        return Err(ProtocolError::UnsupportedVersion(version));
    }
    Ok(())
}

/// Reads a big-endian u16 at `at`; the caller has checked the length.
fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}
