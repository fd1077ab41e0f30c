//! kftray: Kubernetes port-forwards declared in `kftray.toml`.

#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod api_error;
mod backoff;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod edit;
pub mod engine;
mod error_chain;
pub mod forward;
pub mod interop;
pub mod reconcile;
pub mod relay;
pub mod resolve;
pub mod source;
pub mod state;
pub mod target;
pub mod transport;
