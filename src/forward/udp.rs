//! A UDP forward's local side: one flow per client address, its datagrams carried to the
//! target and the replies sent back to that client alone.
//!
//! The socket's receive loop never waits on a flow: each flow has a bounded queue, and a
//! datagram that finds it full is dropped, as the network would drop it. A flow opens when
//! its client's first datagram arrives (which waits in the queue meanwhile), ends after a
//! quiet spell, and the least recently active flow makes room when there are too many.

use super::serve::ready_endpoint;
use super::{Activity, ConnectionError, Serving, Tuning};
use crate::resolve::{Endpoint, Resolution};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// One client's datagrams to the target and back, whatever carries them. The flow ends when
/// either side closes its channel.
pub struct Flow {
    pub outbound: mpsc::Sender<Vec<u8>>,
    pub inbound: mpsc::Receiver<Vec<u8>>,
}

pub type OpenedFlow = Pin<Box<dyn Future<Output = io::Result<Flow>> + Send>>;

/// Opens a flow to the target through `endpoint`: what a UDP forward dials through.
pub trait OpenFlow: Send + Sync + 'static {
    fn open(&self, endpoint: &Endpoint) -> OpenedFlow;
}

#[derive(Debug, Clone, Copy)]
pub struct UdpTuning {
    /// A flow with no datagram either way for this long ends.
    pub idle: Duration,
    /// Flows at once; past this, the least recently active one ends.
    pub max_flows: usize,
    /// Datagrams waiting per flow, each way.
    pub queue: usize,
}

impl Default for UdpTuning {
    fn default() -> Self {
        UdpTuning {
            idle: Duration::from_secs(60),
            max_flows: 1024,
            queue: 64,
        }
    }
}

/// The largest datagram a socket receives.
const MAX_DATAGRAM: usize = 65_535;

/// A flow as the receive loop sees it: its queue, and when it last carried anything.
struct Slot {
    queue: mpsc::Sender<Vec<u8>>,
    last: Arc<AtomicU64>,
}

/// Milliseconds since `base`, the clock flows share to say when they were last active.
fn since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Receives until `stop` fires; returns the flows still open, for [`drain`](super::drain).
/// How each flow ended (idle, or cut, and why) goes to `serving.outcomes`.
pub async fn serve_udp(
    socket: UdpSocket,
    opener: Arc<dyn OpenFlow>,
    udp: UdpTuning,
    serving: Serving,
) -> TaskTracker {
    let Serving {
        endpoints,
        activity,
        tuning,
        outcomes,
        stop,
        http_log: _,
    } = serving;
    let socket = Arc::new(socket);
    let tracker = TaskTracker::new();
    let base = Instant::now();
    let mut flows: HashMap<SocketAddr, Slot> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            () = stop.cancelled() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                // An ICMP error for an earlier reply, or no memory: pause, keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let mut datagram = buf[..n].to_vec();
        if let Some(slot) = flows.get(&peer) {
            match slot.queue.try_send(datagram) {
                Ok(()) => {
                    slot.last.store(since(base), Ordering::Relaxed);
                    continue;
                }
                // The flow is behind: this datagram is lost, as on a congested link.
                Err(TrySendError::Full(_)) => continue,
                // The flow ended; this client starts a new one.
                Err(TrySendError::Closed(back)) => {
                    flows.remove(&peer);
                    datagram = back;
                }
            }
        }
        if flows.len() >= udp.max_flows {
            make_room(&mut flows, udp.max_flows);
        }
        let (queue, pending) = mpsc::channel(udp.queue);
        let _ = queue.try_send(datagram);
        let last = Arc::new(AtomicU64::new(since(base)));
        flows.insert(
            peer,
            Slot {
                queue,
                last: last.clone(),
            },
        );
        activity.total_connections.fetch_add(1, Ordering::Relaxed);
        let flow = ClientFlow {
            peer,
            socket: socket.clone(),
            activity: activity.clone(),
            last,
            base,
            idle: udp.idle,
        };
        let (endpoints, opener, outcomes) = (endpoints.clone(), opener.clone(), outcomes.clone());
        let span = tracing::debug_span!("flow", %peer);
        tracker.spawn(
            async move {
                flow.activity
                    .open_connections
                    .fetch_add(1, Ordering::Relaxed);
                let result = flow.run(pending, endpoints, &*opener, tuning).await;
                flow.activity
                    .open_connections
                    .fetch_sub(1, Ordering::Relaxed);
                if let Err(e) = &result {
                    tracing::debug!(error = %e.0, "flow cut");
                    flow.activity
                        .failed_connections
                        .fetch_add(1, Ordering::Relaxed);
                }
                let _ = outcomes.send(result);
            }
            .instrument(span),
        );
    }
    // Ending every queue ends every flow, once it has sent what it holds.
    drop(flows);
    tracker.close();
    tracker
}

/// Forgets ended flows, then ends the least recently active ones until there is room.
fn make_room(flows: &mut HashMap<SocketAddr, Slot>, max: usize) {
    flows.retain(|_, slot| !slot.queue.is_closed());
    while flows.len() >= max {
        let Some(oldest) = flows
            .iter()
            .min_by_key(|(_, slot)| slot.last.load(Ordering::Relaxed))
            .map(|(peer, _)| *peer)
        else {
            return;
        };
        flows.remove(&oldest);
    }
}

/// One client's flow, on the forward's side.
struct ClientFlow {
    peer: SocketAddr,
    socket: Arc<UdpSocket>,
    activity: Arc<Activity>,
    last: Arc<AtomicU64>,
    base: Instant,
    idle: Duration,
}

impl ClientFlow {
    async fn run(
        &self,
        mut pending: mpsc::Receiver<Vec<u8>>,
        mut endpoints: watch::Receiver<Resolution>,
        opener: &dyn OpenFlow,
        tuning: Tuning,
    ) -> Result<(), ConnectionError> {
        let endpoint = ready_endpoint(&mut endpoints, tuning.wait_for_pod).await?;
        let Flow {
            outbound,
            mut inbound,
        } = opener
            .open(&endpoint)
            .await
            .map_err(|e| ConnectionError(format!("udp from {}: {e}", self.peer)))?;
        let counters = &self.activity.bytes;
        loop {
            let quiet_until =
                self.base + Duration::from_millis(self.last.load(Ordering::Relaxed)) + self.idle;
            tokio::select! {
                datagram = pending.recv() => {
                    // None: the forward stops, or this flow made room for another.
                    let Some(datagram) = datagram else { return Ok(()) };
                    let n = datagram.len() as u64;
                    if outbound.send(datagram).await.is_err() {
                        return Err(ConnectionError(format!(
                            "udp from {}: the flow to the target closed", self.peer
                        )));
                    }
                    counters.bytes_out.fetch_add(n, Ordering::Relaxed);
                    self.last.store(since(self.base), Ordering::Relaxed);
                }
                reply = inbound.recv() => {
                    let Some(reply) = reply else {
                        return Err(ConnectionError(format!(
                            "udp from {}: the flow to the target closed", self.peer
                        )));
                    };
                    // A client that went away loses its reply, as UDP would.
                    if self.socket.send_to(&reply, self.peer).await.is_ok() {
                        counters.bytes_in.fetch_add(reply.len() as u64, Ordering::Relaxed);
                    }
                    self.last.store(since(self.base), Ordering::Relaxed);
                }
                () = tokio::time::sleep_until(quiet_until) => {
                    if since(self.base).saturating_sub(self.last.load(Ordering::Relaxed))
                        >= self.idle.as_millis() as u64
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    /// Flows that echo each datagram back with a prefix, opened in-process.
    struct Echo {
        opened: AtomicU64,
    }

    impl OpenFlow for Echo {
        fn open(&self, _: &Endpoint) -> OpenedFlow {
            let n = self.opened.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                let (outbound, mut from_client) = mpsc::channel::<Vec<u8>>(8);
                let (to_client, inbound) = mpsc::channel(8);
                tokio::spawn(async move {
                    while let Some(d) = from_client.recv().await {
                        let mut reply = format!("flow{n}:").into_bytes();
                        reply.extend_from_slice(&d);
                        if to_client.send(reply).await.is_err() {
                            return;
                        }
                    }
                });
                Ok(Flow { outbound, inbound })
            })
        }
    }

    fn ready() -> watch::Receiver<Resolution> {
        watch::channel(Resolution::Ready(Endpoint {
            pod: "p".into(),
            uid: "u".into(),
            port: 1,
        }))
        .1
    }

    async fn exchange(client: &UdpSocket, to: SocketAddr, text: &str) -> String {
        client.send_to(text.as_bytes(), to).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, from) = tokio::time::timeout(Duration::from_secs(30), client.recv_from(&mut buf))
            .await
            .expect("no reply")
            .unwrap();
        assert_eq!(from, to);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn each_client_has_its_flow_and_idle_flows_end() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let activity = Arc::new(Activity::default());
        let stop = CancellationToken::new();
        let (outcomes, _) = mpsc::unbounded_channel();
        let udp = UdpTuning {
            idle: Duration::from_secs(1),
            max_flows: 2,
            queue: 4,
        };
        let server = tokio::spawn(serve_udp(
            socket,
            Arc::new(Echo {
                opened: AtomicU64::new(0),
            }),
            udp,
            Serving {
                endpoints: ready(),
                activity: activity.clone(),
                tuning: Tuning::default(),
                outcomes,
                stop: stop.clone(),
                http_log: None,
            },
        ));
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Activity is kept in milliseconds: pauses keep the order of these exchanges clear.
        let pause = || tokio::time::sleep(Duration::from_millis(20));
        assert_eq!(exchange(&a, addr, "x").await, "flow0:x");
        pause().await;
        assert_eq!(exchange(&b, addr, "y").await, "flow1:y");
        pause().await;
        assert_eq!(exchange(&a, addr, "z").await, "flow0:z");
        pause().await;
        // A third client makes room by ending the least recently active flow (b's).
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(exchange(&c, addr, "w").await, "flow2:w");
        pause().await;
        assert_eq!(exchange(&b, addr, "v").await, "flow3:v");
        // After a quiet spell, c's flow has ended and its next datagram opens another.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(exchange(&c, addr, "u").await, "flow4:u");
        assert_eq!(activity.total_connections.load(Ordering::Relaxed), 5);
        assert_eq!(
            activity.bytes.bytes_out.load(Ordering::Relaxed),
            6,
            "one byte per datagram"
        );
        stop.cancel();
        server.await.unwrap();
    }
}
