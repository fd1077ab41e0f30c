//! A forward's local side: the listener and the carrying of each accepted connection.

mod bind;
mod splice;

pub use bind::{BindError, listen, owner_of};
pub use splice::{Counters, splice};
