//! A forward through the relay: the relay of its cluster and namespace, its destination
//! followed, and the two combined into the forward's state.

use super::RunSpec;
use super::connect::{LateConnector, connect_cluster};
use crate::cluster::Clusters;
use crate::config::Protocol;
use crate::publish::publish;
use crate::relay::{
    DestinationState, RelayDialer, RelayKey, RelayState, Relays, follow_destination,
};
use crate::resolve::{Endpoint, Resolution};
use crate::transport::Link;
use kftray_relay::protocol::Transport;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs until the forward stops: its relay lease is held as long as this runs. The link
/// is the relay session's: down while a relay that was up is redialled.
pub(super) async fn route(
    spec: RunSpec,
    clusters: Arc<Clusters>,
    relays: Arc<Relays>,
    connector: Arc<LateConnector>,
    out: watch::Sender<Resolution>,
    link_out: watch::Sender<Link>,
) {
    let Some(relayed) = spec.relay.clone() else {
        return;
    };
    let cluster = connect_cluster(&clusters, &spec.cluster, &out).await;
    let namespace = spec
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let transport = match relayed.protocol {
        Protocol::Tcp => Transport::Tcp,
        Protocol::Udp => Transport::Udp,
    };
    let lease = relays.acquire(
        &cluster,
        RelayKey {
            cluster: spec.cluster.clone(),
            namespace: relayed
                .settings
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            settings: relayed.settings.clone(),
        },
    );
    let mut relay = lease.state();
    let mut destination = follow_destination(
        cluster.client.clone(),
        &namespace,
        &spec.target,
        &spec.remote_port,
        transport,
    );
    let dialer = Arc::new(RelayDialer::new(lease, destination.clone(), transport));
    connector.set_connect(dialer.clone());
    connector.set_flows(dialer.clone());
    connector.set_relay(dialer);
    // A proxy's destination is fixed: its channel closes at once, its value stays.
    let mut destination_moves = true;
    loop {
        let (next, link) = combine(&relay.borrow_and_update(), &destination.borrow_and_update());
        publish(&out, next);
        publish(&link_out, link);
        tokio::select! {
            changed = relay.changed() => if changed.is_err() { return },
            changed = destination.changed(), if destination_moves => {
                destination_moves = changed.is_ok();
            }
        }
    }
}

/// The forward is Ready when its relay is (or is reconnecting: then its link is down) and
/// its destination is known; the endpoint dialled is the relay pod's.
fn combine(relay: &RelayState, destination: &DestinationState) -> (Resolution, Link) {
    let resolution = match (relay, destination) {
        (RelayState::Failed(why), _) | (_, DestinationState::Failed(why)) => {
            Resolution::Failed(why.clone())
        }
        (RelayState::Starting(why), _) | (_, DestinationState::Waiting(why)) => {
            Resolution::Waiting(why.clone())
        }
        (
            RelayState::Ready { pod, uid, port } | RelayState::Reconnecting { pod, uid, port, .. },
            DestinationState::Ready(_),
        ) => Resolution::Ready(Endpoint {
            pod: pod.clone(),
            uid: uid.clone(),
            port: *port,
        }),
    };
    let link = match (&resolution, relay) {
        (Resolution::Ready(_), RelayState::Reconnecting { why, .. }) => Link::Down(why.clone()),
        _ => Link::Up,
    };
    (resolution, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kftray_relay::protocol::Destination;

    #[test]
    fn ready_needs_both_and_a_failure_wins() {
        let ready = RelayState::Ready {
            pod: "kftray-relay-x".into(),
            uid: "u".into(),
            port: 7000,
        };
        let to = DestinationState::Ready(Destination::new("10.96.0.10", 53));
        assert!(matches!(
            combine(&ready, &to),
            (Resolution::Ready(e), Link::Up) if e.pod == "kftray-relay-x" && e.port == 7000
        ));
        let waiting = DestinationState::Waiting("no pod".into());
        assert_eq!(
            combine(&ready, &waiting),
            (Resolution::Waiting("no pod".into()), Link::Up)
        );
        let denied = RelayState::Failed("forbidden".into());
        assert_eq!(
            combine(&denied, &waiting),
            (Resolution::Failed("forbidden".into()), Link::Up)
        );
        let starting = RelayState::Starting("creating".into());
        assert_eq!(
            combine(&starting, &DestinationState::Failed("no port".into())),
            (Resolution::Failed("no port".into()), Link::Up)
        );
    }

    #[test]
    fn a_relay_being_redialled_keeps_its_pod_with_the_link_down() {
        let reconnecting = RelayState::Reconnecting {
            pod: "kftray-relay-x".into(),
            uid: "u".into(),
            port: 7000,
            why: "no answer to a heartbeat".into(),
        };
        let to = DestinationState::Ready(Destination::new("10.96.0.10", 53));
        assert!(matches!(
            combine(&reconnecting, &to),
            (Resolution::Ready(e), Link::Down(why)) if e.pod == "kftray-relay-x" && why == "no answer to a heartbeat"
        ));
        // A destination that is gone says more than the relay's link.
        let waiting = DestinationState::Waiting("no pod".into());
        assert_eq!(
            combine(&reconnecting, &waiting),
            (Resolution::Waiting("no pod".into()), Link::Up)
        );
    }
}
