//! The pod half of the real control plane's kubelet: the pods a real API server binds to
//! this machine's Nodes run in kubesim's runtime (built-in servers and local programs on
//! their pod IPs), their status goes back as a kubelet reports it, and Services get a
//! kube-proxy (ClusterIP listeners fed by EndpointSlices). The Nodes, their Leases and the
//! kubelet API's port-forward are served by the Go `kubelet-api` beside it, with Kubernetes'
//! own streaming code.

mod pods;
mod proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::addr::AddressPool;
use crate::runtime::Runtime;
use crate::store::Store;

pub struct KubeletOptions {
    /// The Nodes (name, InternalIP) whose pods run here.
    pub nodes: Vec<(String, Ipv4Addr)>,
    /// Where pod IPs come from.
    pub pods: (Ipv4Addr, u8),
    /// Run containers whose image starts with PREFIX as PROGRAM; `kubesim/<kind>` images
    /// run the built-in servers; any other image fails to pull.
    pub images: Vec<(String, PathBuf)>,
    /// ENV an image carries (PREFIX, NAME, VALUE), `$(POD_IP)` and the like expanded.
    pub image_env: Vec<(String, String, String)>,
    /// The cluster DNS (its Service's ClusterIP and port), given to pods.
    pub dns: Option<SocketAddr>,
    /// Names cluster DNS answers beyond Services, as CoreDNS's `hosts` plugin would.
    pub dns_hosts: Vec<(String, IpAddr)>,
}

/// Runs until `stop` is cancelled; pods are stopped then.
pub async fn run(client: kube::Client, opts: KubeletOptions, stop: CancellationToken) {
    // The runtime reads Services and EndpointSlices from this local mirror of the API.
    let store = Store::new();
    let runtime = Arc::new(Runtime::new(
        store.clone(),
        AddressPool::within(opts.pods, opts.pods),
        opts.images.clone(),
        opts.image_env.clone(),
    ));
    for (name, ip) in &opts.dns_hosts {
        runtime.add_dns_name(name, *ip);
    }
    let proxy = tokio::spawn(proxy::run(client.clone(), store, runtime.clone()));
    let pods = tokio::spawn(pods::run(client, opts, runtime.clone()));
    stop.cancelled().await;
    proxy.abort();
    pods.abort();
    runtime.shutdown();
}
