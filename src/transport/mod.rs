//! Port-forward connections to pods: the upgrades that open them and the multiplexed
//! sessions that carry every local connection to a pod.

mod channel_v4;
mod first_choice;
mod link;
mod owner;
mod pool;
mod upgrade;
mod with_failure;

pub use first_choice::FirstChoice;
pub use link::Link;
pub use owner::Transports;
pub use pool::{Deadlines, PodConnector};
pub use upgrade::{
    CHANNEL_V4, Io, SPDY_OVER_WEBSOCKET, UpgradeError, portforward_path, raw_spdy, websocket,
};
