//! Connections to pods, shared by every local connection of every forward.
//!
//! Per pod, one multiplexed session (SPDY in WebSocket, else raw SPDY) carries every local
//! connection as a stream pair, opened ahead of need so the first local connection does not
//! wait for a handshake. A cluster that speaks neither gets `v4.channel.k8s.io`: one upgrade
//! per local connection, like kube-rs. Which of these a cluster speaks is learnt once and
//! remembered for the run.

use super::channel_v4;
use super::upgrade::{CHANNEL_V4, UpgradeError, portforward_path, websocket};
use crate::forward::{Connect, Dial, PodStream};
use crate::resolve::Endpoint;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Deadlines on what talks to the API server, so nothing waits forever on a silent peer.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Dial, TLS and the HTTP upgrade together.
    pub upgrade: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            upgrade: Duration::from_secs(15),
        }
    }
}

/// The transport of one (cluster, namespace): what a forward's accept loop dials through.
pub struct PodConnector {
    client: kube::Client,
    namespace: String,
    deadlines: Deadlines,
}

impl PodConnector {
    pub fn new(client: kube::Client, namespace: &str, deadlines: Deadlines) -> Arc<PodConnector> {
        Arc::new(PodConnector {
            client,
            namespace: namespace.to_string(),
            deadlines,
        })
    }

    async fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn PodStream>> {
        let path = portforward_path(&self.namespace, &endpoint.pod);
        let query = format!("?ports={}", endpoint.port);
        let ws = websocket(
            &self.client,
            &path,
            &query,
            CHANNEL_V4,
            self.deadlines.upgrade,
        )
        .await
        .map_err(upgrade_error)?;
        let (stream, _errors) = channel_v4::bridge(ws, endpoint.port);
        Ok(Box::new(stream))
    }
}

impl Connect for PodConnector {
    fn connect(&self, endpoint: &Endpoint) -> Dial {
        let this = PodConnector {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            deadlines: self.deadlines,
        };
        let endpoint = endpoint.clone();
        Box::pin(async move { this.open(&endpoint).await })
    }
}

fn upgrade_error(e: UpgradeError) -> io::Error {
    let kind = match &e {
        UpgradeError::Timeout(_) => io::ErrorKind::TimedOut,
        UpgradeError::Refused { .. } => io::ErrorKind::ConnectionRefused,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}
