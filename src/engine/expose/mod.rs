//! A reverse forward at run time: the relay listens on a port of its pod for the cluster's
//! clients, a Service of kftray's selects that pod, and each connection the relay announces
//! is attached and carried to the server on this machine; an Ingress in front of that
//! Service, when the expose has one.

mod ingress;
mod service;
mod udp;

use super::connect::LateConnector;
use super::spec::Exposed;
use crate::cluster::{ClusterKey, Clusters};
use crate::config::Protocol;
use crate::forward::{Activity, ConnectionError, Outcome, Serving};
use crate::relay::{Owner, RelayDialer};
use crate::resolve::{Endpoint, Resolution};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kftray_relay::attached::{self, Ends, Tally, Told};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Frame, Request};
use kube::Api;
use kube::api::DeleteParams;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the listen stream is pinged: the relay closes a silent one.
pub(super) const PING_EVERY: Duration = Duration::from_secs(5);
/// How long to wait before trying again after a listen or the Service failed.
const RETRY: Duration = Duration::from_secs(1);

/// What serving an expose needs besides what a forward's serving has.
pub(super) struct Exposing {
    pub(super) exposed: Exposed,
    pub(super) cluster: ClusterKey,
    pub(super) namespace: Option<String>,
    pub(super) clusters: Arc<Clusters>,
    pub(super) connector: Arc<LateConnector>,
    pub(super) owner: Owner,
}

/// The relay's port for a Service: the relay runs unprivileged, so a Service port of 80 maps
/// to a high port of its pod, the same for a given Service name at every run.
fn relay_port(service: &str, attempt: u16) -> u16 {
    let hash = service.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    20_000 + ((hash % 20_000) as u16).wrapping_add(attempt) % 20_000
}

/// Serves until the forward stops; then deletes its Service and returns the attached
/// connections still open, for the caller to drain.
pub(super) async fn serve(exposing: Exposing, serving: Serving) -> TaskTracker {
    let Serving {
        mut endpoints,
        activity,
        tuning,
        outcomes,
        stop,
        ..
    } = serving;
    let tracker = TaskTracker::new();
    let mut service: Option<(Api<Service>, Api<Ingress>)> = None;
    let mut attempt = 0u16;
    loop {
        let endpoint = tokio::select! {
            () = stop.cancelled() => break,
            endpoint = ready(&mut endpoints) => match endpoint {
                Some(endpoint) => endpoint,
                None => break,
            },
        };
        let round = async {
            let relay = exposing
                .connector
                .relay()
                .ok_or("the relay is not connected yet")?;
            let cluster = exposing
                .clusters
                .get(&exposing.cluster)
                .await
                .map_err(|e| e.to_string())?;
            let namespace = exposing
                .namespace
                .clone()
                .unwrap_or_else(|| cluster.default_namespace.clone());
            let port = relay_port(&exposing.exposed.service, attempt);
            let id = relay.next_id();
            let listen = match exposing.exposed.protocol {
                Protocol::Tcp => Request::Listen { id, port },
                Protocol::Udp => Request::ListenUdp { id, port },
            };
            let stream = relay
                .open(listen, &endpoint)
                .await
                .map_err(|e| format!("the relay cannot listen on port {port}: {e}"))?;
            let api: Api<Service> = Api::namespaced(cluster.client.clone(), &namespace);
            let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
            service::sweep(&api, &pods, &exposing.exposed.service).await;
            let made = service::ensure_service(&api, &exposing, &endpoint.pod, port).await?;
            let ingresses: Api<Ingress> = Api::namespaced(cluster.client, &namespace);
            if let Some(config) = &exposing.exposed.ingress {
                let labels = service::labels(&exposing);
                ingress::ensure(&ingresses, &exposing.exposed, labels, config, &made).await?;
            }
            Ok::<_, String>((relay, (api, ingresses), stream))
        };
        let (relay, api, stream) = match round.await {
            Ok(up) => up,
            Err(why) => {
                attempt = attempt.wrapping_add(1);
                let _ = outcomes.send(Err(ConnectionError(why)));
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        service = Some(api);
        let _ = outcomes.send(Ok(()));
        let carry = Carry {
            relay,
            endpoint: endpoint.clone(),
            local: exposing.exposed.local,
            activity: activity.clone(),
            linger: tuning.linger,
            outcomes: outcomes.clone(),
        };
        let ended = match exposing.exposed.protocol {
            Protocol::Tcp => announced(stream, &carry, &tracker, &mut endpoints, &stop).await,
            Protocol::Udp => udp::carried(stream, &carry, &mut endpoints, &stop).await,
        };
        if ended == Ended::Stopped {
            break;
        }
    }
    if let Some((services, ingresses)) = service {
        let name = &exposing.exposed.service;
        // The cluster deletes the Ingress with its Service, in its own time: at once here.
        if exposing.exposed.ingress.is_some()
            && let Err(e) = ingresses.delete(name, &DeleteParams::default()).await
        {
            tracing::warn!(ingress = %name, error = %e, "the expose's Ingress was not deleted");
        }
        if let Err(e) = services.delete(name, &DeleteParams::default()).await {
            tracing::warn!(service = %name, error = %e, "the expose's Service was not deleted");
        }
    }
    tracker.close();
    tracker
}

/// The relay pod once the forward's route has one.
async fn ready(endpoints: &mut watch::Receiver<Resolution>) -> Option<Endpoint> {
    let resolution = endpoints
        .wait_for(|r| matches!(r, Resolution::Ready(_)))
        .await
        .ok()?;
    match &*resolution {
        Resolution::Ready(endpoint) => Some(endpoint.clone()),
        _ => None,
    }
}

/// Whether the route's relay pod is no longer `endpoint`'s.
fn moved(endpoints: &watch::Receiver<Resolution>, endpoint: &Endpoint) -> bool {
    !matches!(&*endpoints.borrow(), Resolution::Ready(e) if e.pod == endpoint.pod)
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Stopped,
    /// The listen stream ended, or the relay pod changed: listen again.
    Again,
}

struct Carry {
    relay: Arc<RelayDialer>,
    endpoint: Endpoint,
    local: std::net::SocketAddr,
    activity: Arc<Activity>,
    linger: Duration,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// What an attach tells on its listen (a refusal, its end) and hears from it (the far end).
#[derive(Clone)]
struct Listen {
    to_relay: mpsc::UnboundedSender<Frame<Vec<u8>>>,
    told: Arc<Told>,
}

/// Reads the listen stream's announcements and attaches each connection, until it ends.
async fn announced(
    stream: Box<dyn crate::forward::PodStream>,
    carry: &Carry,
    tracker: &TaskTracker,
    endpoints: &mut watch::Receiver<Resolution>,
    stop: &CancellationToken,
) -> Ended {
    let (mut sink, mut source) = Framed::new(stream, FrameCodec).split();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut sent = 0u64;
    let (to_relay, mut outgoing) = mpsc::unbounded_channel();
    let listen = Listen {
        to_relay,
        told: Arc::new(Told::default()),
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            changed = endpoints.changed() => {
                if changed.is_err() || moved(endpoints, &carry.endpoint) {
                    return Ended::Again;
                }
            }
            Some(frame) = outgoing.recv() => {
                if sink.send(frame).await.is_err() {
                    return Ended::Again;
                }
            }
            _ = ping.tick() => {
                sent += 1;
                if sink.send(Frame::Ping::<Vec<u8>>(sent)).await.is_err() {
                    return Ended::Again;
                }
            }
            frame = source.next() => match frame {
                Some(Ok(Frame::Incoming { connection, from })) => {
                    tracker.spawn(attach(connection, from, carry.clone_parts(), listen.clone()));
                }
                Some(Ok(Frame::End { connection, bytes })) => {
                    listen.told.deliver(connection, bytes);
                }
                Some(Ok(Frame::Ping(value))) => {
                    if sink.send(Frame::Pong::<Vec<u8>>(value)).await.is_err() {
                        return Ended::Again;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!("listen stream: {e}");
                    return Ended::Again;
                }
                None => return Ended::Again,
            },
        }
    }
}

impl Carry {
    fn clone_parts(&self) -> Carry {
        Carry {
            relay: self.relay.clone(),
            endpoint: self.endpoint.clone(),
            local: self.local,
            activity: self.activity.clone(),
            linger: self.linger,
            outcomes: self.outcomes.clone(),
        }
    }
}

/// One in-cluster client's connection, carried to the local server. When that server does
/// not answer, the connection is refused: the relay resets it, so the client is not left
/// waiting and does not take the close for an answer.
async fn attach(connection: u32, from: std::net::SocketAddr, carry: Carry, listen: Listen) {
    let activity = &carry.activity;
    activity.total_connections.fetch_add(1, Ordering::Relaxed);
    activity.open_connections.fetch_add(1, Ordering::Relaxed);
    let outcome = match TcpStream::connect(carry.local).await {
        Ok(local) => carry_to(local, connection, from, &carry, &listen).await,
        Err(e) => {
            let _ = listen.to_relay.send(Frame::Refuse { connection });
            Err(ConnectionError(format!(
                "{from} came, but the local server at {} did not answer: {e}",
                carry.local
            )))
        }
    };
    activity.open_connections.fetch_sub(1, Ordering::Relaxed);
    if outcome.is_err() {
        activity.failed_connections.fetch_add(1, Ordering::Relaxed);
    }
    let _ = carry.outcomes.send(outcome);
}

async fn carry_to(
    local: TcpStream,
    connection: u32,
    from: std::net::SocketAddr,
    carry: &Carry,
    listen: &Listen,
) -> Outcome {
    let _ = local.set_nodelay(true);
    // Expected before the attach is answered, after which the relay may tell the end.
    let told = listen.told.expect(connection);
    let remote = match carry
        .relay
        .open(Request::Attach { id: connection }, &carry.endpoint)
        .await
    {
        Ok(remote) => remote,
        Err(e) => {
            listen.told.forget(connection);
            return Err(ConnectionError(format!("{from}: the relay: {e}")));
        }
    };
    let to_relay = listen.to_relay.clone();
    let ends = Ends {
        tell: Box::new(move |bytes| to_relay.send(Frame::End { connection, bytes }).is_ok()),
        told,
    };
    let bytes = &carry.activity.bytes;
    let tally = Tally {
        sent: &bytes.bytes_out,
        received: &bytes.bytes_in,
    };
    let carried = attached::splice(local, remote, ends, tally, Some(carry.linger)).await;
    listen.told.forget(connection);
    carried.map_err(|e| ConnectionError(format!("{from} to {}: {e}", carry.local)))
}
