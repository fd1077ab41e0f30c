//! kftray: Kubernetes port-forwards declared in `kftray.toml`.

pub mod cli;
pub mod cluster;
pub mod config;
mod error_chain;
pub mod forward;
pub mod reconcile;
pub mod relay;
pub mod resolve;
pub mod state;
pub mod status;
pub mod transport;
pub mod up;
