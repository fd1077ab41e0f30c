//! A simulated Kubernetes cluster that kubectl and kube-rs accept: an API server over
//! HTTP/1.1 and HTTPS, controllers, and pods backed by real local servers.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod controller;
pub mod discovery;
pub mod faults;
pub mod images;
pub mod kubeconfig;
pub mod kubelet;
pub(crate) mod runtime;
pub mod selector;
mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod testing;
pub mod time;
pub mod tls;

pub mod addr;
pub mod backend;
pub mod dns;
pub mod portforward;
pub mod process;
pub mod service_proxy;

pub use cluster::{Auth, Cluster, ClusterOptions, Scheme, write_kubeconfig};
pub use faults::Faults;
pub use kubeconfig::Credentials;
