//! The relay kftray runs in a cluster for UDP forwards and for hosts only the cluster can
//! reach, and its wire protocol.
//!
//! The library is the protocol, shared by the relay and by kftray's client side so that there
//! is one codec: [`protocol`] is pure functions over bytes (requests, replies, frames), and
//! [`io`] (feature `io`) reads them from tokio streams. The `relay-server` binary (feature
//! `server`) is the relay itself.
//!
//! ```
//! use kftray_relay::protocol::{Decoded, Destination, Request, Transport};
//!
//! let request = Request::Connect {
//!     id: 1,
//!     transport: Transport::Udp,
//!     to: Destination::new("kube-dns.kube-system", 53),
//! };
//! let bytes = request.encode();
//! assert_eq!(
//!     Request::decode(&bytes),
//!     Ok(Decoded::Complete { value: request, len: bytes.len() })
//! );
//! ```

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

#[cfg(feature = "io")]
pub mod attached;
#[cfg(feature = "io")]
pub mod io;
pub mod protocol;
