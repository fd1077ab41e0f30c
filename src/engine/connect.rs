//! What a forward's two routes (to pods directly, through the relay) share: connecting to the
//! cluster with backoff, and the connector set once it answers.

use crate::backoff::Backoff;
use crate::cluster::{Cluster, ClusterKey, Clusters};
use crate::forward::proxy::{DialError, ProxyDial, ProxyStream, Target as ProxyTarget};
use crate::forward::{Connect, Dial, OpenFlow, OpenedFlow, Serving};
use crate::relay::RelayDialer;
use crate::resolve::{Endpoint, Resolution};
use futures::future::BoxFuture;
use kftray_relay::protocol::Destination;
use std::io;
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
    /// For the proxy, whose destinations are its clients' to name.
    relay: OnceLock<Arc<RelayDialer>>,
}

impl LateConnector {
    pub(super) fn set_relay(&self, relay: Arc<RelayDialer>) {
        let _ = self.relay.set(relay);
    }

    pub(super) fn relay(&self) -> Option<Arc<RelayDialer>> {
        self.relay.get().cloned()
    }

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

/// The proxy's way into the cluster: each connection, once the relay is Ready, is a stream
/// through it to the host its client named, resolved by the cluster's DNS.
pub(super) struct ClusterDial {
    connector: Arc<LateConnector>,
    endpoints: watch::Receiver<Resolution>,
    wait: Duration,
}

impl ClusterDial {
    pub(super) fn new(connector: Arc<LateConnector>, serving: &Serving) -> ClusterDial {
        ClusterDial {
            connector,
            endpoints: serving.endpoints.clone(),
            wait: serving.tuning.wait_for_pod,
        }
    }
}

impl ProxyDial for ClusterDial {
    fn dial(&self, to: ProxyTarget) -> BoxFuture<'static, Result<ProxyStream, DialError>> {
        let (connector, mut endpoints, wait) =
            (self.connector.clone(), self.endpoints.clone(), self.wait);
        Box::pin(async move {
            // As a forward's connections do, wait for the relay rather than fail at once.
            let settled = {
                let ready = endpoints.wait_for(|r| !matches!(r, Resolution::Waiting(_)));
                match tokio::time::timeout(wait, ready).await {
                    Ok(Ok(r)) => Some(r.clone()),
                    Ok(Err(_)) => return Err(DialError::Other("the proxy is stopping".into())),
                    Err(_) => None,
                }
            };
            let endpoint = match settled {
                Some(Resolution::Ready(endpoint)) => endpoint,
                Some(Resolution::Failed(why) | Resolution::Waiting(why)) => {
                    return Err(DialError::Other(why));
                }
                None => {
                    let why = match &*endpoints.borrow() {
                        Resolution::Waiting(why) => why.clone(),
                        _ => "the relay is not ready".into(),
                    };
                    return Err(DialError::TimedOut(why));
                }
            };
            let Some(relay) = connector.relay.get() else {
                return Err(DialError::Other("the cluster is not connected yet".into()));
            };
            let to = Destination::new(&to.host, to.port);
            match relay.dial_to(to, &endpoint).await {
                Ok(stream) => Ok(Box::new(stream) as ProxyStream),
                Err(e) => Err(dial_error(&e)),
            }
        })
    }
}

/// The relay's reply, as the proxy protocols tell it to their clients.
fn dial_error(e: &io::Error) -> DialError {
    let why = e.to_string();
    match e.kind() {
        io::ErrorKind::NotFound => DialError::NotFound(why),
        io::ErrorKind::ConnectionRefused => DialError::Refused(why),
        io::ErrorKind::TimedOut => DialError::TimedOut(why),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            DialError::Unreachable(why)
        }
        _ => DialError::Other(why),
    }
}
