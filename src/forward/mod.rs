//! A forward's local side: the TCP listener and the carrying of each accepted connection, or
//! the UDP socket and its flows.

mod bind;
pub mod http_log;
pub mod proxy;
mod serve;
mod splice;
mod udp;

pub use bind::{BindError, bind_udp, listen, owner_of, udp_owner_of, unprivileged_port_start};
pub use serve::{
    Activity, Connect, ConnectionError, Dial, Outcome, PodStream, Serving, Tuning, Verdict, drain,
    serve,
};
pub use splice::{Counters, Observe, splice};
pub use udp::{Flow, OpenFlow, OpenedFlow, UdpTuning, serve_udp};
