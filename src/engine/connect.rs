//! What a forward's two routes (to pods directly, through the relay) share: connecting to the
//! cluster with backoff, and the connector set once it answers.

use crate::backoff::Backoff;
use crate::cluster::{Cluster, ClusterKey, Clusters};
use crate::forward::{Connect, Dial, OpenFlow, OpenedFlow};
use crate::resolve::{Endpoint, Resolution};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Connects to the cluster, retrying with backoff and jitter until it answers; meanwhile the
/// forward waits with the reason.
pub(super) async fn connect_cluster(
    clusters: &Clusters,
    key: &ClusterKey,
    out: &watch::Sender<Resolution>,
) -> Cluster {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match clusters.get(key).await {
            Ok(cluster) => return cluster,
            Err(e) => {
                out.send_replace(Resolution::Waiting(e.to_string()));
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// The transport is known only once the cluster answers, after the listener is up; no
/// connection dials before the forward is Ready, which needs the cluster, so it is set by then.
#[derive(Default)]
pub(super) struct LateConnector {
    connect: OnceLock<Arc<dyn Connect>>,
    flows: OnceLock<Arc<dyn OpenFlow>>,
}

impl LateConnector {
    pub(super) fn set_connect(&self, connect: Arc<dyn Connect>) {
        let _ = self.connect.set(connect);
    }

    pub(super) fn set_flows(&self, flows: Arc<dyn OpenFlow>) {
        let _ = self.flows.set(flows);
    }
}

fn not_yet() -> std::io::Error {
    std::io::Error::other("the cluster is not connected yet")
}

impl Connect for LateConnector {
    fn connect(&self, endpoint: &Endpoint) -> Dial {
        match self.connect.get() {
            Some(connector) => connector.connect(endpoint),
            None => Box::pin(async { Err(not_yet()) }),
        }
    }
}

impl OpenFlow for LateConnector {
    fn open(&self, endpoint: &Endpoint) -> OpenedFlow {
        match self.flows.get() {
            Some(flows) => flows.open(endpoint),
            None => Box::pin(async { Err(not_yet()) }),
        }
    }
}
