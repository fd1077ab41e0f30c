//! The heartbeat session with a relay pod, held through the same port-forward transport as
//! TCP forwards: its state is the relay's state for the forwards that use it.

use super::forbidden;
use super::handshake::{OtherVersion, handshake};
use crate::backoff::Backoff;
use crate::forward::Connect;
use crate::resolve::Endpoint;
use crate::transport::{Link, PodConnector};
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Frame, Request};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::codec::Framed;

/// The session pings this often, and gives up on a pong after `PONG_WAIT`.
const PING_EVERY: Duration = Duration::from_secs(5);
const PONG_WAIT: Duration = Duration::from_secs(10);

/// Where a relay stands, as the forwards using it see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayState {
    /// Being created, started or reconnected; the text says what is awaited.
    Starting(String),
    /// Its session is up: connections can go to `pod` on `port`.
    Ready { pod: String, uid: String, port: u16 },
    /// Its session to the same pod died and is being redialled (the text says why):
    /// connections still go to `pod`, and wait for the session as a TCP forward's do.
    Reconnecting {
        pod: String,
        uid: String,
        port: u16,
        why: String,
    },
    /// Something only a person can fix (a permission, an image); retried meanwhile.
    Failed(String),
}

/// Why a session ended.
enum Ended {
    /// It broke, or never started; the text says why.
    Broke(String),
    /// The relay speaks this other version of the protocol.
    OtherVersion(u8),
}

/// The heartbeat session with the relay, reopened whenever it drops; its state is the
/// relay's state for the forwards. Returns only for a relay that speaks another version of
/// the protocol (that version): no session with it will ever work.
pub(super) async fn sessions(
    connector: Arc<PodConnector>,
    endpoint: Endpoint,
    namespace: String,
    state: watch::Sender<RelayState>,
) -> u8 {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    // Following the pod keeps its port-forward session dialled (and redialled) by the
    // transport, which learns at once when a forward's own connection gets through.
    let mut link = connector.follow(&endpoint.pod);
    loop {
        let started = tokio::time::Instant::now();
        let why = match session(&connector, &endpoint, &state).await {
            Ended::Broke(why) => why,
            Ended::OtherVersion(version) => return version,
        };
        let was_up = matches!(
            *state.borrow(),
            RelayState::Ready { .. } | RelayState::Reconnecting { .. }
        );
        let next = if why.starts_with("403") {
            RelayState::Failed(forbidden("create", "pods/portforward", &namespace, &why))
        } else if was_up {
            RelayState::Reconnecting {
                pod: endpoint.pod.clone(),
                uid: endpoint.uid.clone(),
                port: endpoint.port,
                why: why.clone(),
            }
        } else {
            RelayState::Starting(format!("connecting to relay pod {}: {why}", endpoint.pod))
        };
        tracing::info!(pod = endpoint.pod, "relay session: {why}");
        state.send_replace(next);
        // A session that lasted a while was a success: the next failure starts afresh.
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        // A transport that is down is redialled by its link: once it is up again, so is the
        // relay's next session, without waiting out the backoff.
        let transport_down = matches!(*link.borrow_and_update(), Link::Down(_));
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = link.wait_for(|l| *l == Link::Up), if transport_down => {}
        }
    }
}

/// One session: opened through the port-forward, announced Ready, pinged until a pong is
/// late or the stream breaks. Returns why it ended.
async fn session(
    connector: &Arc<PodConnector>,
    endpoint: &Endpoint,
    state: &watch::Sender<RelayState>,
) -> Ended {
    let mut stream = match connector.connect(endpoint).await {
        Ok(stream) => stream,
        Err(e) => return Ended::Broke(e.to_string()),
    };
    if let Err(e) = handshake(&mut stream, &Request::Session { id: 0 }).await {
        return match OtherVersion::of(&e) {
            Some(version) => Ended::OtherVersion(version),
            None => Ended::Broke(e.to_string()),
        };
    }
    state.send_replace(RelayState::Ready {
        pod: endpoint.pod.clone(),
        uid: endpoint.uid.clone(),
        port: endpoint.port,
    });
    let mut framed = Framed::new(stream, FrameCodec);
    let mut n: u64 = 0;
    loop {
        tokio::time::sleep(PING_EVERY).await;
        n += 1;
        if let Err(e) = framed.send(Frame::<&[u8]>::Ping(n)).await {
            return Ended::Broke(format!("the session broke: {e}"));
        }
        let pong = tokio::time::timeout(PONG_WAIT, async {
            loop {
                match framed.next().await {
                    Some(Ok(Frame::Pong(v))) if v == n => return Ok(()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("the relay closed the session".to_string()),
                }
            }
        })
        .await;
        match pong {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Ended::Broke(why),
            Err(_) => {
                return Ended::Broke(format!("no answer to a heartbeat within {PONG_WAIT:?}"));
            }
        }
    }
}
