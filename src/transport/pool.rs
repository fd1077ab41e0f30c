//! Connections to pods, shared by every local connection of a forward.
//!
//! Per pod, one multiplexed SPDY session (inside WebSocket, else raw) carries every local
//! connection as an error/data stream pair, opened ahead of need so the first local
//! connection does not wait for a handshake, and pinged while idle so proxies and load
//! balancers keep it. A cluster that refuses both gets `v4.channel.k8s.io`: one upgrade per
//! local connection, like kube-rs. What a cluster speaks is learnt once per connector.

use super::FirstChoice;
use super::channel_v4;
use super::link::{self, Held, Link, Links};
use super::upgrade::{
    CHANNEL_V4, SPDY_OVER_WEBSOCKET, UpgradeError, portforward_path, raw_spdy, websocket,
};
use super::with_failure::WithFailure;
use crate::forward::{Connect, Dial, PodStream};
use crate::target::Endpoint;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use kftray_spdy::{Role, Session, SessionConfig, SessionError, Stream};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;

/// Deadlines and periods on what talks to the API server, so nothing waits forever.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Dial, TLS and the HTTP upgrade together.
    pub upgrade: Duration,
    /// How long the server may take to accept a stream (kubectl: 30 s).
    pub stream: Duration,
    /// Idle sessions are pinged this often...
    pub ping_every: Duration,
    /// ...and dropped when a ping goes unanswered this long.
    pub ping_timeout: Duration,
    /// A new connection's stream not accepted this soon, on a session that has been silent
    /// as long, has the session checked with a quick ping...
    pub slow_open: Duration,
    /// ...which must come back this soon, or the session is given up and the connection
    /// tries a new one (a VPN that came up, a Wi-Fi that changed, without a reset).
    pub quick_ping: Duration,
    /// A dial unanswered this long has a new connection dial alongside it: one sent into a
    /// network that was down waits on TCP's retransmission schedule (seconds apart) even
    /// once the network is back, while a fresh one gets through at once.
    pub redial_after: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            upgrade: Duration::from_secs(15),
            stream: Duration::from_secs(30),
            // A dead link is noticed within 20 s (a sleeping laptop, a dead Wi-Fi), well
            // before a TCP retransmission timeout would say so.
            ping_every: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(10),
            slow_open: Duration::from_millis(1500),
            quick_ping: Duration::from_secs(2),
            redial_after: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known yet: the first choice is tried first, then the other, then channels.
    Unknown,
    SpdyOverWebSocket,
    RawSpdy,
    ChannelV4,
}

/// What a dial gives: the pod's session, or `None` when the cluster speaks only the
/// channel protocol.
type Dialled = Result<Option<Arc<PodSession>>, Arc<UpgradeError>>;

/// A dial's outcome, shared by every connection that waits for it; `None` if it was
/// aborted for a newer one.
type SharedDial = Shared<BoxFuture<'static, Option<Dialled>>>;

/// A dial in flight.
struct InFlight {
    id: u64,
    began: Instant,
    outcome: SharedDial,
    task: AbortHandle,
}

/// Dials in flight to one pod at most: past it, a new one replaces the oldest, which a
/// dead network holds longest.
const MAX_DIALS: usize = 3;

/// A pod's session, and the dials in flight to give it one, the newest last.
#[derive(Default)]
struct SessionSlot {
    session: Option<Arc<PodSession>>,
    dials: Vec<InFlight>,
}

/// The first of `dials` to get through; else the last error; `None` if every one was
/// aborted.
async fn first_through(dials: Vec<SharedDial>) -> Option<Dialled> {
    let mut racing: FuturesUnordered<SharedDial> = dials.into_iter().collect();
    let mut failed = None;
    while let Some(outcome) = racing.next().await {
        match outcome {
            Some(Ok(through)) => return Some(Ok(through)),
            Some(Err(e)) => failed = Some(Err(e)),
            None => {}
        }
    }
    failed
}

/// One pod's session and the request ids it has used.
struct PodSession {
    session: Session,
    next_request: AtomicU64,
    /// Why the session was given up, when it was this end that gave up on it.
    given_up: Mutex<Option<String>>,
}

impl PodSession {
    /// A session that is closed, or going away, is redialled rather than used.
    fn takes_streams(&self) -> bool {
        !self.session.is_closed() && !self.session.is_going_away()
    }
}

impl Held for Arc<PodSession> {
    async fn ended(&self) -> String {
        self.session.closed().await;
        self.given_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the API server ended the port-forward session".into())
    }
}

/// The transport of one (cluster, namespace): what a forward's accept loop dials through.
pub struct PodConnector {
    client: kube::Client,
    namespace: String,
    deadlines: Deadlines,
    first: FirstChoice,
    mode: Mutex<Mode>,
    sessions: Mutex<HashMap<String, SessionSlot>>,
    next_dial: AtomicU64,
    /// The link to each pod that a forward follows.
    links: Links,
}

impl PodConnector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        deadlines: Deadlines,
        first: FirstChoice,
    ) -> Arc<PodConnector> {
        Arc::new(PodConnector {
            client,
            namespace: namespace.to_string(),
            deadlines,
            first,
            mode: Mutex::new(Mode::Unknown),
            sessions: Mutex::new(HashMap::new()),
            next_dial: AtomicU64::new(0),
            links: Links::default(),
        })
    }

    /// The protocol this connector has settled on, for `status` and logs: "unknown" until
    /// the first connection.
    pub fn protocol(&self) -> &'static str {
        match self.mode() {
            Mode::Unknown => "unknown",
            Mode::SpdyOverWebSocket => "SPDY over WebSocket",
            Mode::RawSpdy => "SPDY",
            Mode::ChannelV4 => "v4.channel.k8s.io",
        }
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn learn(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// Follows the link to `pod` until every receiver is dropped: the session is opened now,
    /// not when the next connection comes, and redialled whenever it dies.
    pub fn follow(self: &Arc<Self>, pod: &str) -> watch::Receiver<Link> {
        self.links.follow(pod, |tx, reached| {
            let (this, pod) = (self.clone(), pod.to_owned());
            tokio::spawn(async move {
                let dial = || {
                    let (this, pod) = (this.clone(), pod.clone());
                    async move { this.session(&pod, false).await }
                };
                link::keep(
                    &this.links,
                    &pod,
                    tx,
                    &reached,
                    link::redial_backoff(),
                    dial,
                )
                .await;
            });
        })
    }

    /// The live session to `pod`, dialling one if needed. `None`: the cluster speaks only
    /// the channel protocol. Concurrent callers share a dial, and take the session any
    /// caller's dial opens. An `eager` caller (a connection someone waits on) that finds the
    /// newest dial older than `redial_after` starts another beside it, and gives up after
    /// the upgrade deadline.
    async fn session(self: &Arc<Self>, pod: &str, eager: bool) -> Dialled {
        if self.mode() == Mode::ChannelV4 {
            return Ok(None);
        }
        let give_up = Instant::now() + self.deadlines.upgrade;
        loop {
            let dials: Vec<SharedDial> = {
                let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                let slot = sessions.entry(pod.to_string()).or_default();
                if let Some(existing) = slot.session.as_ref().filter(|s| s.takes_streams()) {
                    return Ok(Some(existing.clone()));
                }
                let stale = slot.dials.last().is_none_or(|dial| {
                    eager && dial.began.elapsed() >= self.deadlines.redial_after
                });
                if stale {
                    if slot.dials.len() == MAX_DIALS {
                        slot.dials.remove(0).task.abort();
                    }
                    let id = self.next_dial.fetch_add(1, Ordering::Relaxed);
                    slot.dials.push(self.start_dial(pod, id));
                }
                slot.dials.iter().map(|dial| dial.outcome.clone()).collect()
            };
            // Looked at again now and then: another caller's dial may have got through.
            tokio::select! {
                dialled = first_through(dials) => if let Some(dialled) = dialled {
                    return dialled;
                },
                () = tokio::time::sleep(self.deadlines.redial_after) => {}
                () = tokio::time::sleep_until(give_up), if eager => {
                    return Err(Arc::new(UpgradeError::Timeout(self.deadlines.upgrade)));
                }
            }
        }
    }

    /// Dials `pod` in a task of its own, so that the dial ends (and its outcome is kept)
    /// whether or not anyone still waits for it.
    fn start_dial(self: &Arc<Self>, pod: &str, id: u64) -> InFlight {
        let (this, pod) = (self.clone(), pod.to_owned());
        let task = tokio::spawn(async move {
            let dialled = this.dial(&pod).await;
            this.dialled(&pod, id, dialled)
        });
        let abort = task.abort_handle();
        // A dial aborted for a newer one has no outcome: its waiters wait for the others.
        let outcome = async move { task.await.ok() }.boxed().shared();
        InFlight {
            id,
            began: Instant::now(),
            outcome,
            task: abort,
        }
    }

    /// A dial ended: a session it opened is pinged from now on, and becomes the pod's
    /// session unless another dial's already is.
    fn dialled(
        self: &Arc<Self>,
        pod: &str,
        id: u64,
        dialled: Result<Option<Session>, UpgradeError>,
    ) -> Dialled {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let slot = sessions.entry(pod.to_string()).or_default();
        slot.dials.retain(|dial| dial.id != id);
        let session = match dialled {
            Ok(Some(session)) => session,
            Ok(None) | Err(_) => {
                if slot.session.is_none() && slot.dials.is_empty() {
                    sessions.remove(pod);
                }
                return dialled.map(|_| None).map_err(Arc::new);
            }
        };
        let pod_session = Arc::new(PodSession {
            session,
            next_request: AtomicU64::new(0),
            given_up: Mutex::new(None),
        });
        tokio::spawn(keepalive(
            pod_session.clone(),
            Arc::downgrade(self),
            pod.to_owned(),
            self.deadlines,
        ));
        if slot.session.as_ref().is_none_or(|s| !s.takes_streams()) {
            slot.session = Some(pod_session.clone());
        }
        Ok(Some(pod_session))
    }

    /// Upgrades to SPDY, falling back as kubectl's dialer does: a refused protocol moves on
    /// to the next kind; a denied permission or a missing pod is the answer. Once a kind got
    /// through, the kinds before it are not asked again.
    async fn dial(&self, pod: &str) -> Result<Option<Session>, UpgradeError> {
        let path = portforward_path(&self.namespace, pod);
        let config = SessionConfig {
            reply_timeout: self.deadlines.stream,
            ..SessionConfig::default()
        };
        let order = match self.first {
            FirstChoice::Spdy => [Mode::RawSpdy, Mode::SpdyOverWebSocket],
            FirstChoice::WebSocket => [Mode::SpdyOverWebSocket, Mode::RawSpdy],
        };
        let from = match self.mode() {
            Mode::Unknown => 0,
            Mode::ChannelV4 => order.len(),
            known => order.iter().position(|m| *m == known).unwrap_or(0),
        };
        for &mode in &order[from..] {
            let upgraded = match mode {
                Mode::SpdyOverWebSocket => websocket(
                    &self.client,
                    &path,
                    "",
                    SPDY_OVER_WEBSOCKET,
                    self.deadlines.upgrade,
                )
                .await
                .map(|io| Session::over_websocket(io, Role::Client, config).0),
                _ => raw_spdy(&self.client, &path, self.deadlines.upgrade)
                    .await
                    .map(|io| Session::new(io, Role::Client, config).0),
            };
            match upgraded {
                Ok(session) => {
                    self.learn(mode);
                    return Ok(Some(session));
                }
                Err(e) if e.is_protocol_refusal() => {
                    tracing::debug!(error = %e, "{:?} refused; trying the next kind", mode);
                }
                Err(e) => return Err(e),
            }
        }
        self.learn(Mode::ChannelV4);
        Ok(None)
    }

    /// Whether `session` to `pod` still has a use beyond the connections it carries: a
    /// forward follows the pod, and it is the session new connections get (not one that
    /// lost a race of dials, or was replaced).
    fn wanted(&self, pod: &str, session: &Arc<PodSession>) -> bool {
        let current = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .get(pod)
                .and_then(|slot| slot.session.as_ref())
                .is_some_and(|s| Arc::ptr_eq(s, session))
        };
        current && self.links.is_followed(pod)
    }

    /// Takes `held` from the slot of `pod` if it is still there, and drops the slot if
    /// nothing is dialled for it, so the map does not keep one entry per pod that ever was.
    fn release(&self, pod: &str, held: &Arc<PodSession>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = sessions.get_mut(pod) else {
            return;
        };
        if slot.session.as_ref().is_some_and(|s| Arc::ptr_eq(s, held)) {
            slot.session = None;
            if slot.dials.is_empty() {
                sessions.remove(pod);
            }
        }
    }

    async fn open(self: Arc<Self>, endpoint: Endpoint) -> io::Result<Box<dyn PodStream>> {
        // A session can die between the check and the use (the pod went away, a proxy cut
        // it): one fresh dial is worth trying before the connection fails.
        for attempt in 0..2 {
            let Some(pod_session) = self
                .session(&endpoint.pod, true)
                .await
                .map_err(|e| upgrade_error(&e))?
            else {
                return self.open_channel_v4(&endpoint).await;
            };
            let opened = tokio::select! {
                opened = open_pair(&pod_session, endpoint.port) => opened,
                () = check_when_slow(&pod_session, self.deadlines) => {
                    Err(SessionError::Closed(None))
                }
            };
            match opened {
                Ok(stream) => {
                    self.links.reached(&endpoint.pod);
                    return Ok(Box::new(stream));
                }
                // The next `session()` dials afresh: this one no longer takes streams. Its
                // slot is dropped only if it still holds it, not a session another
                // connection has dialled meanwhile (which nothing would then close).
                Err(SessionError::Closed(_) | SessionError::GoingAway) if attempt == 0 => {
                    self.release(&endpoint.pod, &pod_session);
                }
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        e.to_string(),
                    ));
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the connection to the pod closed twice in a row",
        ))
    }

    async fn open_channel_v4(&self, endpoint: &Endpoint) -> io::Result<Box<dyn PodStream>> {
        let path = portforward_path(&self.namespace, &endpoint.pod);
        let query = format!("?ports={}", endpoint.port);
        let io = websocket(
            &self.client,
            &path,
            &query,
            CHANNEL_V4,
            self.deadlines.upgrade,
        )
        .await
        .map_err(|e| upgrade_error(&e))?;
        let ws = WebSocketStream::from_raw_socket(io, WsRole::Client, None).await;
        Ok(Box::new(channel_v4::bridge(ws, endpoint.port)))
    }
}

impl Connect for Arc<PodConnector> {
    fn connect(&self, endpoint: &Endpoint) -> Dial {
        Box::pin(self.clone().open(endpoint.clone()))
    }
}

/// The error and data streams of one local connection, opened back to back as kubectl does.
async fn open_pair(pod: &PodSession, port: u16) -> Result<WithFailure<Stream>, SessionError> {
    let request = pod.next_request.fetch_add(1, Ordering::Relaxed).to_string();
    let headers = |kind: &str| {
        vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".to_string(), port.to_string()),
            ("requestid".to_string(), request.clone()),
        ]
    };
    let error = pod.session.start_stream(headers("error")).await?;
    let data = pod.session.start_stream(headers("data")).await?;
    let (error, data) = tokio::join!(error.wait(), data.wait());
    let (mut error, data) = (error?, data?);
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        // The client never writes on the error stream; the server's message, if any, is the
        // reason this one connection failed.
        let _ = error.shutdown().await;
        let mut message = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut error, &mut message).await;
        if !message.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&message).into_owned());
        }
    });
    Ok(WithFailure::new(data, rx))
}

/// Resolves only if the session turns out dead while a connection waits on it: silent for
/// `slow_open`, and no answer to a ping within `quick_ping`. The session is then closed, so
/// the connection (and the pod's link) dial a new one instead of waiting out the stream
/// deadline. A session that sends anything meanwhile is alive, however slow.
async fn check_when_slow(pod: &PodSession, deadlines: Deadlines) {
    let session = &pod.session;
    loop {
        tokio::time::sleep(deadlines.slow_open).await;
        if session.silent_for() < deadlines.slow_open {
            continue;
        }
        match session.ping(deadlines.quick_ping).await {
            Ok(_) => continue,
            Err(_) if session.silent_for() < deadlines.quick_ping => continue,
            Err(e) => {
                tracing::debug!(error = %e, "a connection waits on a silent session; giving it up");
                *pod.given_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                    "the API server did not answer a ping within {:?} while a connection waited",
                    deadlines.quick_ping
                ));
                session.close().await;
                return;
            }
        }
    }
}

/// Pings while the session lives; an unanswered ping means the connection is dead, and it
/// is closed so the next local connection dials afresh instead of waiting on it. A session
/// that no forward follows any more (its pod was replaced, its forward removed) is closed
/// once its last connection ends: the API server would otherwise hold it, and this process
/// a socket, for as long as the pod's node does.
async fn keepalive(
    pod: Arc<PodSession>,
    connector: Weak<PodConnector>,
    name: String,
    deadlines: Deadlines,
) {
    let session = &pod.session;
    let given_up = loop {
        tokio::select! {
            () = session.closed() => break None,
            () = tokio::time::sleep(deadlines.ping_every) => {}
        }
        let wanted = connector.upgrade().is_some_and(|c| c.wanted(&name, &pod));
        if !wanted && session.open_streams() == 0 {
            tracing::debug!(pod = name, "closing a port-forward session nobody uses");
            break Some("the session was closed while no forward used it".to_string());
        }
        if let Err(e) = session.ping(deadlines.ping_timeout).await {
            tracing::debug!(error = %e, "port-forward session is dead");
            break Some(match e {
                SessionError::PingTimeout(after) => {
                    format!("the API server did not answer a ping within {after:?}")
                }
                other => other.to_string(),
            });
        }
    };
    if let Some(why) = given_up {
        *pod.given_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        session.close().await;
    }
    if let Some(connector) = connector.upgrade() {
        connector.release(&name, &pod);
    }
}

fn upgrade_error(e: &UpgradeError) -> io::Error {
    let kind = match e {
        UpgradeError::Timeout(_) => io::ErrorKind::TimedOut,
        UpgradeError::Refused { .. } => io::ErrorKind::ConnectionRefused,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}
