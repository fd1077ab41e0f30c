//! `ports = "all"` at run time: the ports each selected entry's target declares, listed from
//! its cluster, make it concrete forwards (`Effective::expand`).

use crate::cluster::{ClusterKey, Clusters};
use crate::config::{AllPorts, Effective, Protocol, Skipped};
use crate::resolve::declared_ports;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long listing one target's ports may take before that entry waits for the next try.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration with its `ports = "all"` entries expanded where their cluster answered.
pub struct Expansion {
    pub effective: Effective,
    /// Declared ports whose local port another forward has.
    pub skipped: Vec<Skipped>,
    /// The entries whose ports could not be listed, by alias, with why.
    pub unlisted: Vec<(String, String)>,
}

/// Expands the entries `wanted` picks, listing their ports at once.
pub async fn expand(
    effective: &Effective,
    clusters: &Clusters,
    wanted: impl Fn(&AllPorts) -> bool,
) -> Expansion {
    let lists = effective
        .all_ports
        .iter()
        .filter(|all| wanted(all))
        .map(|all| async move {
            let listed = tokio::time::timeout(LIST_TIMEOUT, list(all, clusters))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "listing the ports of {} took longer than {LIST_TIMEOUT:?}",
                        all.target
                    ))
                });
            (all.alias.clone(), listed)
        });
    let mut listed = BTreeMap::new();
    let mut unlisted = Vec::new();
    for (alias, ports) in futures::future::join_all(lists).await {
        match ports {
            Ok(ports) => {
                listed.insert(alias, ports);
            }
            Err(why) => unlisted.push((alias, why)),
        }
    }
    let (effective, skipped) = effective.expand(&listed);
    Expansion {
        effective,
        skipped,
        unlisted,
    }
}

async fn list(all: &AllPorts, clusters: &Clusters) -> Result<Vec<u16>, String> {
    let key = ClusterKey {
        kubeconfig: all.kubeconfig.clone(),
        context: all.context.clone(),
    };
    let cluster = clusters.get(&key).await.map_err(|e| e.to_string())?;
    let namespace = all
        .namespace
        .as_deref()
        .unwrap_or(&cluster.default_namespace);
    let protocol = match all.protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    declared_ports(&cluster.client, namespace, &all.target, protocol).await
}
