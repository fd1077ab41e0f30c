//! kftray: Kubernetes port-forwards declared in `kftray.toml`.

pub mod cluster;
pub mod forward;
pub mod reconcile;
pub mod resolve;
pub mod state;
