//! A simulated Kubernetes cluster that kubectl and kube-rs accept: an API server over
//! HTTP/1.1 and HTTPS, controllers, and pods backed by real local servers.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod controller;
pub mod discovery;
pub mod faults;
pub mod kubeconfig;
pub(crate) mod runtime;
pub mod selector;
mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod testing;
pub mod time;
pub mod tls;

#[cfg(kubesim_has_addr)]
#[rustfmt::skip]
pub mod addr;
#[cfg(kubesim_has_backend)]
#[rustfmt::skip]
pub mod backend;
#[cfg(kubesim_has_dns)]
#[rustfmt::skip]
pub mod dns;
pub mod portforward;
#[cfg(kubesim_has_process)]
#[rustfmt::skip]
pub mod process;
#[cfg(kubesim_has_service_proxy)]
#[rustfmt::skip]
pub mod service_proxy;

// Stand-ins for modules still being written by other helpers (see build.rs).
mod standin;
#[cfg(not(kubesim_has_addr))]
pub use standin::addr;
#[cfg(not(kubesim_has_backend))]
pub use standin::backend;
#[cfg(not(kubesim_has_dns))]
pub use standin::dns;
#[cfg(not(kubesim_has_process))]
pub use standin::process;
#[cfg(not(kubesim_has_service_proxy))]
pub use standin::service_proxy;

pub use cluster::{Auth, Cluster, ClusterOptions, Scheme, write_kubeconfig};
pub use faults::Faults;
pub use kubeconfig::Credentials;
