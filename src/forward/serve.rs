//! A forward's accept loop: every local connection is carried to the pod in use right now.
//!
//! The listener stays open whatever happens to pods: a connection that arrives while no pod
//! is usable waits (up to `Tuning::wait_for_pod`) for one instead of being reset, and a
//! connection that fails affects nothing but itself.

use super::http_log::Sink;
use super::{Counters, Observe, splice};
use crate::resolve::{Endpoint, Resolution};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A stream to a pod port, whatever carries it.
pub trait PodStream: AsyncRead + AsyncWrite + Send + Unpin {
    /// Why the server failed this connection, if it does: the port-forward protocols say so
    /// on a separate error stream, which may speak before, during or after the data. Taken
    /// once; `None` from the future means a clean finish.
    fn take_failure(&mut self) -> Verdict;
}

pub type Verdict = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

pub type Dial = Pin<Box<dyn Future<Output = io::Result<Box<dyn PodStream>>> + Send>>;

/// Opens a stream to a pod port: the transport a forward uses.
pub trait Connect: Send + Sync + 'static {
    fn connect(&self, endpoint: &Endpoint) -> Dial;
}

#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// How long a new local connection waits for a usable pod before it is closed.
    pub wait_for_pod: Duration,
    /// How long one direction may stay open after the other finished.
    pub linger: Duration,
    /// How long open connections may finish when the forward stops.
    pub drain: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            wait_for_pod: Duration::from_secs(30),
            linger: Duration::from_secs(60),
            drain: Duration::from_secs(3),
        }
    }
}

/// Live numbers of one forward, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct Activity {
    pub bytes: Counters,
    pub open_connections: AtomicI64,
    pub total_connections: AtomicI64,
    pub failed_connections: AtomicI64,
}

/// Why a local connection was closed without reaching a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError(pub String);

/// How a local connection (or UDP flow) ended: carried to its end, or why not.
pub type Outcome = Result<(), ConnectionError>;

/// What serving a forward's local side needs besides its socket and its way into the
/// cluster: the same for TCP ([`serve`]) and UDP ([`serve_udp`](super::serve_udp)).
#[derive(Clone)]
pub struct Serving {
    /// Where connections go now: a pod, or none yet.
    pub endpoints: watch::Receiver<Resolution>,
    pub activity: Arc<Activity>,
    pub tuning: Tuning,
    /// Receives how each connection ended, so the forward's last error is the latest
    /// connection's and a success clears it.
    pub outcomes: tokio::sync::mpsc::UnboundedSender<Outcome>,
    /// Fires when the forward stops.
    pub stop: CancellationToken,
    /// Where its HTTP traffic is logged, if it is (TCP only).
    pub http_log: Option<Arc<Sink>>,
}

/// Accepts until `stop` fires, closes the listener (so the port can be bound again at once)
/// and returns the connections still open, for the caller to drain (see [`drain`]).
pub async fn serve(
    listener: TcpListener,
    connector: Arc<dyn Connect>,
    serving: Serving,
) -> TaskTracker {
    let Serving {
        endpoints,
        activity,
        tuning,
        outcomes,
        stop,
        http_log,
    } = serving;
    accept_each(listener, &stop, &activity.clone(), move |local, peer, _| {
        let (endpoints, connector, activity, outcomes, http_log) = (
            endpoints.clone(),
            connector.clone(),
            activity.clone(),
            outcomes.clone(),
            http_log.clone(),
        );
        async move {
            let result = carry(local, endpoints, &*connector, &activity, tuning, http_log).await;
            let _ = outcomes.send(result.clone());
            result.map_err(|e| e.0)
        }
        .instrument(tracing::debug_span!("connection", %peer))
    })
    .await
}

/// Accepts until `stop` fires and carries each connection with `handle`, on a task of the
/// returned tracker (which `handle` is given, for tasks of its own), counted in `activity`;
/// then closes the listener (so the port can be
/// bound again at once) and returns the tracker, closed, holding the connections still open
/// for the caller to drain (see [`drain`]).
pub(super) async fn accept_each<H, F>(
    listener: TcpListener,
    stop: &CancellationToken,
    activity: &Arc<Activity>,
    handle: H,
) -> TaskTracker
where
    H: Fn(TcpStream, SocketAddr, &TaskTracker) -> F,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (local, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: pause instead of spinning, keep listening.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = local.set_nodelay(true);
        activity.total_connections.fetch_add(1, Ordering::Relaxed);
        let (activity, carried) = (activity.clone(), handle(local, peer, &tracker));
        tracker.spawn(async move {
            activity.open_connections.fetch_add(1, Ordering::Relaxed);
            let result = carried.await;
            activity.open_connections.fetch_sub(1, Ordering::Relaxed);
            if let Err(why) = result {
                tracing::debug!(%peer, error = %why, "not carried");
                activity.failed_connections.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker
}

/// Lets the connections `serve` left open finish, for `tuning.drain` at most. Those still
/// open then are cut when the caller's runtime drops them.
pub async fn drain(open: TaskTracker, tuning: Tuning) {
    let _ = tokio::time::timeout(tuning.drain, open.wait()).await;
}

async fn carry(
    local: tokio::net::TcpStream,
    mut endpoints: watch::Receiver<Resolution>,
    connector: &dyn Connect,
    activity: &Arc<Activity>,
    tuning: Tuning,
    http_log: Option<Arc<Sink>>,
) -> Result<(), ConnectionError> {
    let endpoint = ready_endpoint(&mut endpoints, tuning.wait_for_pod).await?;
    let mut remote = connector
        .connect(&endpoint)
        .await
        .map_err(|e| ConnectionError(format!("to pod {}: {e}", endpoint.pod)))?;
    let carrying = Carrying {
        endpoint: &endpoint,
        activity,
        tuning,
    };
    match (http_log, local.local_addr()) {
        (Some(log), Ok(addr)) => carrying.carry(local, &mut remote, &log.tap(addr)).await,
        _ => carrying.carry(local, &mut remote, &()).await,
    }
}

/// One connection to its pod, once the stream is open.
struct Carrying<'a> {
    endpoint: &'a Endpoint,
    activity: &'a Activity,
    tuning: Tuning,
}

impl Carrying<'_> {
    async fn carry(
        self,
        local: tokio::net::TcpStream,
        remote: &mut Box<dyn PodStream>,
        observer: &impl Observe,
    ) -> Result<(), ConnectionError> {
        let mut verdict = Some(remote.take_failure());
        let carried = {
            let carrying = splice(
                local,
                &mut *remote,
                &self.activity.bytes,
                self.tuning.linger,
                observer,
            );
            tokio::pin!(carrying);
            loop {
                tokio::select! {
                    carried = &mut carrying => break carried,
                    // A failure ends the connection at once, as kubectl ends it; a clean
                    // verdict lets the bytes carry on.
                    why = async { verdict.as_mut().expect("guarded").await }, if verdict.is_some() => {
                        verdict = None;
                        if let Some(why) = why {
                            return Err(ConnectionError(why));
                        }
                    }
                }
            }
        };
        // The verdict follows the data at once; it says more than a broken pipe does.
        if let Some(verdict) = verdict
            && let Ok(Some(why)) = tokio::time::timeout(VERDICT_WAIT, verdict).await
        {
            return Err(ConnectionError(why));
        }
        carried.map_err(|e| ConnectionError(format!("with pod {}: {e}", self.endpoint.pod)))
    }
}

/// How long, after its bytes are done, a connection waits for the server's verdict: it
/// follows the data at once, so this only bounds a server that never sends one.
const VERDICT_WAIT: Duration = Duration::from_secs(2);

/// The endpoint to use now, waiting up to `limit` for one to become usable.
pub(super) async fn ready_endpoint(
    endpoints: &mut watch::Receiver<Resolution>,
    limit: Duration,
) -> Result<Endpoint, ConnectionError> {
    let outcome = {
        let wait =
            endpoints.wait_for(|r| matches!(r, Resolution::Ready(_) | Resolution::Failed(_)));
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(resolution)) => Some(match &*resolution {
                Resolution::Ready(endpoint) => Ok(endpoint.clone()),
                Resolution::Failed(why) | Resolution::Waiting(why) => {
                    Err(ConnectionError(why.clone()))
                }
            }),
            Ok(Err(_)) => Some(Err(ConnectionError("the forward is stopping".into()))),
            Err(_) => None,
        }
    };
    outcome.unwrap_or_else(|| {
        let why = match &*endpoints.borrow() {
            Resolution::Waiting(why) | Resolution::Failed(why) => why.clone(),
            Resolution::Ready(endpoint) => format!("pod {} came too late", endpoint.pod),
        };
        Err(ConnectionError(format!(
            "no pod within {}s: {why}",
            limit.as_secs()
        )))
    })
}
