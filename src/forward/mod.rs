//! A forward's local side: the listener and the carrying of each accepted connection.

mod bind;
mod serve;
mod splice;

pub use bind::{BindError, listen, owner_of};
pub use serve::{
    Activity, Connect, ConnectionError, Dial, PodStream, Tuning, Verdict, drain, serve,
};
pub use splice::{Counters, splice};
