//! One running forward: its listener, the task that finds its pod, and its live numbers.

use super::bind::Bound;
use super::connect::{ClusterDial, LateConnector, connect_cluster};
use super::expose::{self, Exposing};
use super::{RunSpec, relayed};
use crate::cluster::{ClusterKey, Clusters};
use crate::forward::http_log::Sink;
use crate::forward::proxy::serve_proxy;
use crate::forward::{Activity, Outcome, Serving, Tuning, UdpTuning, drain, serve, serve_udp};
use crate::publish::publish;
use crate::relay::Relays;
use crate::resolve::{Endpoint, Resolution, follow};
use crate::state::ForwardState;
use crate::transport::{Link, Transports};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Where a forward stands, as `status` and the live view show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Listening; a pod is being looked for, or the first session to it opened (the text
    /// says which).
    Waiting(String),
    /// Listening, and new connections go to this pod, over a session already open.
    Ready { pod: String, port: u16 },
    /// Listening, with a pod chosen, but its session died and is being redialled (the text
    /// says why): connections wait for it, up to the dial's deadline.
    Reconnecting { pod: String, port: u16, why: String },
    /// Listening, but the target is wrong (a port name that does not exist, a cluster that
    /// rejects us): connections are closed until it is fixed.
    Failed(String),
}

impl Phase {
    pub fn state(&self) -> ForwardState {
        match self {
            Phase::Waiting(_) => ForwardState::Waiting,
            Phase::Ready { .. } => ForwardState::Ready,
            Phase::Reconnecting { .. } => ForwardState::Reconnecting,
            Phase::Failed(_) => ForwardState::Failed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ForwardReport {
    pub name: String,
    pub spec: RunSpec,
    pub local: SocketAddr,
    pub phase: Phase,
    pub open_connections: i64,
    pub total_connections: i64,
    pub failed_connections: i64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_error: Option<String>,
}

pub(super) struct RunningForward {
    name: String,
    pub(super) spec: RunSpec,
    local: SocketAddr,
    resolution: watch::Receiver<Resolution>,
    /// The link to the chosen pod (for a relayed forward, its relay's session).
    link: watch::Receiver<Link>,
    activity: Arc<Activity>,
    last_error: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
    /// Cancelled once the listener is closed.
    closed: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningForward {
    /// Serves `bound` (taken by `bind::bind`, so a taken port failed there, at once) in the
    /// background.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        name: &str,
        spec: RunSpec,
        bound: Bound,
        clusters: Arc<Clusters>,
        transports: Arc<Transports<ClusterKey>>,
        relays: Arc<Relays>,
        tuning: Tuning,
        http_log: Option<Arc<Sink>>,
    ) -> RunningForward {
        let (resolution_tx, resolution) =
            watch::channel(Resolution::Waiting("connecting to the cluster".into()));
        let (link_tx, link) = watch::channel(Link::Up);
        let connector = Arc::new(LateConnector::default());
        let activity = Arc::new(Activity::default());
        let last_error = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let closed = CancellationToken::new();
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        let local = bound.local();
        let serving = Serving {
            endpoints: resolution.clone(),
            activity: activity.clone(),
            tuning,
            outcomes: outcomes_tx,
            stop: stop.clone(),
            http_log,
        };
        let serving: BoxFuture<'static, TaskTracker> = match (bound, spec.proxy) {
            (Bound::Exposed(exposed), _) => {
                let exposing = Exposing {
                    exposed,
                    cluster: spec.cluster.clone(),
                    namespace: spec.namespace.clone(),
                    clusters: clusters.clone(),
                    connector: connector.clone(),
                    owner: relays.owner().clone(),
                };
                Box::pin(expose::serve(exposing, serving))
            }
            (Bound::Udp(socket), _) => {
                let opener = connector.clone();
                Box::pin(serve_udp(socket, opener, UdpTuning::default(), serving))
            }
            (Bound::Tcp(listener), Some(kind)) => {
                let dial = Arc::new(ClusterDial::new(connector.clone(), &serving));
                let (activity, stop) = (serving.activity.clone(), serving.stop.clone());
                Box::pin(serve_proxy(kind, listener, dial, activity, stop))
            }
            (Bound::Tcp(listener), None) => Box::pin(serve(listener, connector.clone(), serving)),
        };
        let finding: BoxFuture<'static, ()> = if spec.relay.is_some() {
            Box::pin(relayed::route(
                spec.clone(),
                clusters,
                relays,
                connector,
                resolution_tx,
                link_tx,
            ))
        } else {
            Box::pin(find_pods(
                spec.clone(),
                clusters,
                transports,
                connector,
                resolution_tx,
                link_tx,
            ))
        };
        // Every log line of this forward, its pod search and its connections names it.
        let span = tracing::info_span!("forward", name = %name, local = %local);
        let task = tokio::spawn({
            let (closed, last_error) = (closed.clone(), last_error.clone());
            let work = async move {
                let record = record_outcomes(outcomes, last_error);
                // Serving ends only when stopped; the other two end with it.
                let open = tokio::select! {
                    open = serving => open,
                    () = async { tokio::join!(finding, record); } => return,
                };
                closed.cancel();
                drain(open, tuning).await;
            };
            work.instrument(span)
        });
        RunningForward {
            name: name.to_string(),
            spec,
            local,
            resolution,
            link,
            activity,
            last_error,
            stop,
            closed,
            task,
        }
    }

    /// Where it listens.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and returns once the port is free again; open connections finish in
    /// the background (for the drain time at most), so a reload does not wait for them.
    pub(super) async fn close(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(1), self.closed.cancelled())
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    pub(super) async fn stop(self, drain: Duration) {
        self.stop.cancel();
        // serve() drains for `drain` itself; past a margin on top, the task is cut.
        let mut task = self.task;
        if tokio::time::timeout(drain + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }

    /// Resolves at the next change of phase. It marks the change seen on the forward's own
    /// receiver, so the next call waits for the change after; a forward whose finder ended
    /// (the sender is gone) never changes again rather than resolving at once forever.
    pub(super) async fn phase_changed(&mut self) {
        let changed = tokio::select! {
            changed = self.resolution.changed() => changed,
            changed = self.link.changed() => changed,
        };
        if changed.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub(super) fn report(&self) -> ForwardReport {
        let phase = match &*self.resolution.borrow() {
            Resolution::Waiting(why) => Phase::Waiting(why.clone()),
            Resolution::Ready(Endpoint { pod, port, .. }) => match &*self.link.borrow() {
                Link::Opening => Phase::Waiting(format!("opening a session to pod {pod}")),
                Link::Up => Phase::Ready {
                    pod: pod.clone(),
                    port: *port,
                },
                Link::Down(why) => Phase::Reconnecting {
                    pod: pod.clone(),
                    port: *port,
                    why: why.clone(),
                },
            },
            Resolution::Failed(why) => Phase::Failed(why.clone()),
        };
        let a = &self.activity;
        ForwardReport {
            name: self.name.clone(),
            spec: self.spec.clone(),
            local: self.local,
            phase,
            open_connections: a.open_connections.load(Ordering::Relaxed),
            total_connections: a.total_connections.load(Ordering::Relaxed),
            failed_connections: a.failed_connections.load(Ordering::Relaxed),
            bytes_in: a.bytes.bytes_in.load(Ordering::Relaxed),
            bytes_out: a.bytes.bytes_out.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Connects to the cluster, then follows the target and mirrors its resolution into the
/// forward's own channel, which outlives cluster reconnects; and the link to the chosen pod
/// into `link_out`.
async fn find_pods(
    spec: RunSpec,
    clusters: Arc<Clusters>,
    transports: Arc<Transports<ClusterKey>>,
    connector: Arc<LateConnector>,
    out: watch::Sender<Resolution>,
    link_out: watch::Sender<Link>,
) {
    let cluster = connect_cluster(&clusters, &spec.cluster, &out).await;
    let namespace = spec
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let pods = transports.pods(&spec.cluster, &cluster.client, &namespace);
    connector.set_connect(Arc::new(pods.clone()));
    let mut found = follow(cluster.client, &namespace, spec.target, spec.remote_port);
    // The pod followed, and its link: the session to a newly chosen pod opens now, not when
    // the next connection comes, and is redialled whenever it dies.
    let mut link: Option<(String, watch::Receiver<Link>)> = None;
    loop {
        let resolution = found.borrow_and_update().clone();
        match &resolution {
            Resolution::Ready(endpoint) => {
                if link.as_ref().is_none_or(|(pod, _)| *pod != endpoint.pod) {
                    link = Some((endpoint.pod.clone(), pods.follow(&endpoint.pod)));
                }
            }
            _ => link = None,
        }
        out.send_replace(resolution);
        loop {
            let now = match &mut link {
                Some((_, l)) => l.borrow_and_update().clone(),
                None => Link::Up,
            };
            publish(&link_out, now);
            let link_changed = async {
                match &mut link {
                    Some((_, l)) => l.changed().await.is_ok(),
                    None => false,
                }
            };
            tokio::select! {
                changed = found.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                // The link's sender lives as long as a receiver: it is never dropped first.
                true = link_changed => {}
            }
        }
    }
}

/// Keeps the error of the latest connection that ended: one carried to its end clears it,
/// so a forward that works again does not show a failure from before.
async fn record_outcomes(
    mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    last_error: Arc<Mutex<Option<String>>>,
) {
    while let Some(outcome) = outcomes.recv().await {
        *last_error.lock().unwrap_or_else(|e| e.into_inner()) = outcome.err().map(|e| e.0);
    }
}
