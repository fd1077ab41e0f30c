//! The relays of a `kftray up` run: one per (cluster, namespace, settings), shared by every
//! forward that needs it, stopped (and its pod deleted) a moment after the last one lets go.

use super::keeper::{self, Keeper};
use super::owner::Owner;
use super::session::RelayState;
use crate::cluster::{Cluster, ClusterKey};
use crate::config::Relay as RelaySettings;
use crate::transport::{PodConnector, Transports};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A relay is kept this long after its last forward stops, so that a forward restarted by a
/// reload finds it still there.
const LINGER: Duration = Duration::from_secs(3);

/// Which relay: forwards with the same key share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayKey {
    pub cluster: ClusterKey,
    pub namespace: String,
    pub settings: RelaySettings,
}

pub(super) struct Relay {
    key: RelayKey,
    pub(super) state: watch::Receiver<RelayState>,
    pub(super) connector: Arc<PodConnector>,
    users: AtomicUsize,
    /// Woken when the last user lets go.
    pub(super) unused: Notify,
    pub(super) stop: CancellationToken,
    next_id: AtomicU32,
}

impl Relay {
    pub(super) fn in_use(&self) -> bool {
        self.users.load(Ordering::SeqCst) > 0
    }
}

pub struct Relays {
    owner: Owner,
    transports: Arc<Transports<ClusterKey>>,
    relays: Mutex<HashMap<RelayKey, Arc<Relay>>>,
    keepers: TaskTracker,
}

/// A forward's hold on a relay; dropping the last one lets the relay go.
pub struct RelayLease {
    relay: Arc<Relay>,
}

impl Relays {
    /// Relays that say they belong to `owner`, reached over `transports`.
    pub fn new(owner: Owner, transports: Arc<Transports<ClusterKey>>) -> Arc<Relays> {
        Arc::new(Relays {
            owner,
            transports,
            relays: Mutex::new(HashMap::new()),
            keepers: TaskTracker::new(),
        })
    }

    /// Who the relays say they belong to (and what else kftray creates beside them).
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The relay for `key`, started (its pod created) if no forward uses one yet.
    pub fn acquire(self: &Arc<Self>, cluster: &Cluster, key: RelayKey) -> RelayLease {
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        let relay = match relays.get(&key) {
            Some(relay) if !relay.stop.is_cancelled() => relay.clone(),
            _ => {
                let relay = self.start(cluster, key.clone());
                relays.insert(key, relay.clone());
                relay
            }
        };
        relay.users.fetch_add(1, Ordering::SeqCst);
        RelayLease { relay }
    }

    fn start(self: &Arc<Self>, cluster: &Cluster, key: RelayKey) -> Arc<Relay> {
        let (state_tx, state) = watch::channel(RelayState::Starting(format!(
            "starting kftray's relay in namespace {}",
            key.namespace
        )));
        let connector = self
            .transports
            .pods(&key.cluster, &cluster.client, &key.namespace);
        let relay = Arc::new(Relay {
            key: key.clone(),
            state,
            connector: connector.clone(),
            users: AtomicUsize::new(0),
            unused: Notify::new(),
            stop: CancellationToken::new(),
            next_id: AtomicU32::new(1),
        });
        let keeper = Keeper {
            client: cluster.client.clone(),
            namespace: key.namespace.clone(),
            settings: key.settings.clone(),
            owner: self.owner.clone(),
            connector,
            state: state_tx,
        };
        let retire = {
            let (relays, relay) = (Arc::downgrade(self), relay.clone());
            move || match relays.upgrade() {
                Some(relays) => relays.retire(&relay),
                None => {
                    relay.stop.cancel();
                    true
                }
            }
        };
        let relay2 = relay.clone();
        self.keepers.spawn(async move {
            keeper::keep(keeper, &relay2.unused, &relay2.stop, retire, LINGER).await;
        });
        relay
    }

    /// Stops `relay` if no forward uses it, as one step under the lock that `acquire` takes,
    /// so a forward never gets a relay that is stopping; later forwards get a new one.
    fn retire(&self, relay: &Arc<Relay>) -> bool {
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        if relay.in_use() {
            return false;
        }
        relay.stop.cancel();
        if relays
            .get(&relay.key)
            .is_some_and(|r| Arc::ptr_eq(r, relay))
        {
            relays.remove(&relay.key);
        }
        true
    }

    /// Stops every relay and waits (up to `deadline`) for their pods to be deleted.
    pub async fn shutdown(&self, deadline: Duration) {
        let all: Vec<Arc<Relay>> = self
            .relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for relay in all {
            relay.stop.cancel();
        }
        self.keepers.close();
        let _ = tokio::time::timeout(deadline, self.keepers.wait()).await;
    }
}

impl RelayLease {
    pub fn state(&self) -> watch::Receiver<RelayState> {
        self.relay.state.clone()
    }

    pub fn connector(&self) -> &Arc<PodConnector> {
        &self.relay.connector
    }

    /// A number for the next connection, which the relay logs as well.
    pub fn next_id(&self) -> u32 {
        self.relay.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn namespace(&self) -> &str {
        &self.relay.key.namespace
    }
}

impl Drop for RelayLease {
    fn drop(&mut self) {
        if self.relay.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.relay.unused.notify_one();
        }
    }
}
