//! A real Kubernetes control plane on this machine, for kftray's tests and for people:
//! etcd, kube-apiserver and kube-controller-manager built from the Go module proxy at a
//! pinned release (`scripts/controlplane-build.sh`), a kubelet whose Go half (`kubelet-api`)
//! keeps the Nodes and serves port-forward with Kubernetes' own streaming code and whose Rust
//! half (kubesim's runtime) runs pods as local processes on their own pod IPs, a kube-proxy
//! for ClusterIPs and a cluster DNS pod.
//!
//! Pod IPs and ClusterIPs come from 198.18.0.0/15 (RFC 2544's range for test networks),
//! which a `local` route makes this machine's own: the API server refuses loopback
//! addresses in EndpointSlices, so 127/8 will not do.

mod binaries;
mod cluster;
mod fault_proxy;
mod network;
mod pki;
mod process;
pub mod shared;

pub use binaries::{Version, bin_dir};
pub use cluster::{ControlPlane, Options};
pub use fault_proxy::FaultProxy;
pub use network::Slot;
pub use pki::{RESTRICTED_GROUP, RESTRICTED_USER};
