//! The port-forward transports of a run, one per cluster and namespace, held once by the
//! supervisor and shared by every forward and relay there: forwards to the same pod then ride
//! one multiplexed session, instead of each holding a connection, its TLS state and its header
//! compressors of its own.

use super::{Deadlines, FirstChoice, PodConnector};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Keyed by what names a cluster (`K`) and a namespace.
pub struct Transports<K> {
    by: Mutex<HashMap<(K, String), Arc<PodConnector>>>,
    first: FirstChoice,
}

impl<K> Default for Transports<K> {
    /// With this machine's first choice of upgrade; a bad `KFTRAY_TRANSPORT` is refused when
    /// a command starts (`cli`), so here it can only mean the default.
    fn default() -> Self {
        Transports {
            by: Mutex::new(HashMap::new()),
            first: FirstChoice::from_env().unwrap_or_default(),
        }
    }
}

impl<K: Hash + Eq + Clone> Transports<K> {
    /// The transport of `namespace` in `cluster` (reached with `client`), made on first use.
    pub fn pods(&self, cluster: &K, client: &kube::Client, namespace: &str) -> Arc<PodConnector> {
        let mut by = self.by.lock().unwrap_or_else(|e| e.into_inner());
        by.entry((cluster.clone(), namespace.to_owned()))
            .or_insert_with(|| {
                PodConnector::new(client.clone(), namespace, Deadlines::default(), self.first)
            })
            .clone()
    }
}
