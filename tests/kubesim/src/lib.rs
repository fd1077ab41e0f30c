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

#[cfg(kubesim_world)]
pub mod addr;
#[cfg(kubesim_world)]
pub mod backend;
#[cfg(kubesim_world)]
pub mod dns;
#[cfg(kubesim_world)]
pub mod process;
#[cfg(kubesim_world)]
pub mod service_proxy;
#[cfg(kubesim_pf)]
pub mod portforward;

#[cfg(not(kubesim_pf))]
pub use standin::portforward;
#[cfg(not(kubesim_world))]
pub use standin::world::{self as addr, self as backend, self as dns, self as process, self as service_proxy};
#[cfg(any(not(kubesim_pf), not(kubesim_world)))]
mod standin;

pub use cluster::{Auth, Cluster, ClusterOptions, Scheme, write_kubeconfig};
pub use faults::Faults;
pub use kubeconfig::Credentials;
