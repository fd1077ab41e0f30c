//! SPDY/3.1 as Kubernetes port-forward speaks it (kubectl, the kubelet, spdystream): the
//! frames, the zlib header compression with the SPDY/3 dictionary, a multiplexed session
//! usable as client or server over a raw connection or inside WebSocket binary messages
//! (`SPDY/3.1+portforward.k8s.io`).
//!
//! One implementation serves both the simulated cluster and kftray's own transport.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod compression;
mod error;
mod frame;
#[cfg(test)]
mod fuzz;
mod over_websocket;
mod rfc6455;
mod role;
mod session;
mod stream;

pub use frame::{
    Decoded, Frame, FrameCodec, FrameError, Headers, MAX_DATA, RawFrame, decode, flags, rst,
};
pub use session::{Incoming, Opening, Role, Session, SessionConfig, SessionError};
pub use stream::Stream;
