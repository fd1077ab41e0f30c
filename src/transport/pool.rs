//! Connections to pods, shared by every local connection of a forward.
//!
//! Per pod, one multiplexed SPDY session (inside WebSocket, else raw) carries every local
//! connection as an error/data stream pair, opened ahead of need so the first local
//! connection does not wait for a handshake, and pinged while idle so proxies and load
//! balancers keep it. A cluster that refuses both gets `v4.channel.k8s.io`: one upgrade per
//! local connection, like kube-rs. What a cluster speaks is learnt once per connector.

use super::channel_v4;
use super::link::{self, Held, Link, Links};
use super::upgrade::{
    CHANNEL_V4, SPDY_OVER_WEBSOCKET, UpgradeError, portforward_path, raw_spdy, websocket,
};
use super::with_failure::WithFailure;
use crate::forward::{Connect, Dial, PodStream};
use crate::target::Endpoint;
use kftray_spdy::{Role, Session, SessionConfig, SessionError, Stream};
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch};
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not known yet: try SPDY in WebSocket first, as kubectl ≥ 1.31 does.
    Unknown,
    SpdyOverWebSocket,
    RawSpdy,
    ChannelV4,
}

/// A pod's session, or none yet; its async lock makes concurrent first connections share
/// one dial.
type SessionSlot = Arc<tokio::sync::Mutex<Option<Arc<PodSession>>>>;

/// One pod's session and the request ids it has used.
struct PodSession {
    session: Session,
    next_request: AtomicU64,
    /// Why the session was given up, when it was this end that gave up on it.
    given_up: Mutex<Option<String>>,
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
    mode: Mutex<Mode>,
    sessions: Mutex<HashMap<String, SessionSlot>>,
    /// The link to each pod that a forward follows.
    links: Links,
}

impl PodConnector {
    pub fn new(client: kube::Client, namespace: &str, deadlines: Deadlines) -> Arc<PodConnector> {
        Arc::new(PodConnector {
            client,
            namespace: namespace.to_string(),
            deadlines,
            mode: Mutex::new(Mode::Unknown),
            sessions: Mutex::new(HashMap::new()),
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
        self.links.follow(pod, |tx| {
            let (this, pod) = (self.clone(), pod.to_owned());
            tokio::spawn(async move {
                let dial = || {
                    let (this, pod) = (this.clone(), pod.clone());
                    async move { this.session(&pod).await }
                };
                link::keep(&this.links, &pod, tx, dial).await;
            });
        })
    }

    /// The live session to `pod`, dialling one if needed. `None`: the cluster speaks only
    /// the channel protocol.
    async fn session(self: &Arc<Self>, pod: &str) -> Result<Option<Arc<PodSession>>, UpgradeError> {
        let slot = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.entry(pod.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(existing) = slot.as_ref().filter(|s| !s.session.is_closed()) {
            return Ok(Some(existing.clone()));
        }
        let Some(session) = self.dial(pod).await? else {
            return Ok(None);
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
        *slot = Some(pod_session.clone());
        Ok(Some(pod_session))
    }

    /// Upgrades to SPDY, falling back as kubectl's dialer does: a refused protocol moves on
    /// to the next kind; a denied permission or a missing pod is the answer.
    async fn dial(&self, pod: &str) -> Result<Option<Session>, UpgradeError> {
        let path = portforward_path(&self.namespace, pod);
        let config = SessionConfig {
            reply_timeout: self.deadlines.stream,
            ..SessionConfig::default()
        };
        if matches!(self.mode(), Mode::Unknown | Mode::SpdyOverWebSocket) {
            match websocket(
                &self.client,
                &path,
                "",
                SPDY_OVER_WEBSOCKET,
                self.deadlines.upgrade,
            )
            .await
            {
                Ok(io) => {
                    self.learn(Mode::SpdyOverWebSocket);
                    return Ok(Some(Session::over_websocket(io, Role::Client, config).0));
                }
                Err(e) if e.is_protocol_refusal() => {
                    tracing::debug!(error = %e, "no SPDY over WebSocket; trying raw SPDY");
                }
                Err(e) => return Err(e),
            }
        }
        if self.mode() != Mode::ChannelV4 {
            match raw_spdy(&self.client, &path, self.deadlines.upgrade).await {
                Ok(io) => {
                    self.learn(Mode::RawSpdy);
                    return Ok(Some(Session::new(io, Role::Client, config).0));
                }
                Err(e) if e.is_protocol_refusal() => {
                    tracing::debug!(error = %e, "no SPDY; falling back to v4.channel.k8s.io");
                }
                Err(e) => return Err(e),
            }
        }
        self.learn(Mode::ChannelV4);
        Ok(None)
    }

    fn forget(&self, pod: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pod);
    }

    /// Whether a session to `pod` still has a use beyond the connections it carries: a
    /// forward follows the pod.
    fn wanted(&self, pod: &str) -> bool {
        self.links.is_followed(pod)
    }

    /// Drops the slot of `pod` if it still holds `held`, so the map does not keep one entry
    /// per pod that ever was. A slot being dialled is left to its dialler.
    fn release(&self, pod: &str, held: &Arc<PodSession>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let holds_it = sessions.get(pod).is_some_and(|slot| {
            slot.try_lock()
                .is_ok_and(|s| s.as_ref().is_some_and(|s| Arc::ptr_eq(s, held)))
        });
        if holds_it {
            sessions.remove(pod);
        }
    }

    async fn open(self: Arc<Self>, endpoint: Endpoint) -> io::Result<Box<dyn PodStream>> {
        // A session can die between the check and the use (the pod went away, a proxy cut
        // it): one fresh dial is worth trying before the connection fails.
        for attempt in 0..2 {
            let Some(pod_session) = self.session(&endpoint.pod).await.map_err(upgrade_error)?
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
                Ok(stream) => return Ok(Box::new(stream)),
                Err(SessionError::Closed(_) | SessionError::GoingAway) if attempt == 0 => {
                    self.forget(&endpoint.pod);
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
        .map_err(upgrade_error)?;
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
        let wanted = connector.upgrade().is_some_and(|c| c.wanted(&name));
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

fn upgrade_error(e: UpgradeError) -> io::Error {
    let kind = match &e {
        UpgradeError::Timeout(_) => io::ErrorKind::TimedOut,
        UpgradeError::Refused { .. } => io::ErrorKind::ConnectionRefused,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}
