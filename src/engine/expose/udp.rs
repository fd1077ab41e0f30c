//! A UDP expose at run time: the relay's UDP listen sends each in-cluster peer's datagrams
//! in addressed frames; each peer gets a socket of its own towards the local server (so the
//! server tells peers apart as it would on the network), whose replies go back addressed to
//! that peer. A peer quiet for the idle time is forgotten.

use super::{Carry, Ended, PING_EVERY, moved};
use crate::forward::{PodStream, UdpTuning};
use crate::resolve::Resolution;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::Frame;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

/// One in-cluster peer: its socket towards the local server, the task reading the replies
/// on it (ended when the peer is forgotten), and when it was last active.
struct Peer {
    socket: Arc<UdpSocket>,
    reader: AbortHandle,
    last: Instant,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Carries the listen's datagrams until it ends, the relay moves or the forward stops.
pub(super) async fn carried(
    stream: Box<dyn PodStream>,
    carry: &Carry,
    endpoints: &mut watch::Receiver<Resolution>,
    stop: &CancellationToken,
) -> Ended {
    let tuning = UdpTuning::default();
    let activity = &carry.activity;
    let (mut sink, mut source) = Framed::new(stream, FrameCodec).split();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut sweep = tokio::time::interval(tuning.idle / 4);
    let mut sent = 0u64;
    let (replies_tx, mut replies) = mpsc::channel::<(SocketAddr, Vec<u8>)>(tuning.queue);
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    // The readers of the peers' sockets; dropping the set ends them.
    let mut readers = JoinSet::new();
    let ended = loop {
        tokio::select! {
            () = stop.cancelled() => break Ended::Stopped,
            changed = endpoints.changed() => {
                if changed.is_err() || moved(endpoints, &carry.endpoint) {
                    break Ended::Again;
                }
            }
            _ = ping.tick() => {
                sent += 1;
                if sink.send(Frame::Ping::<Vec<u8>>(sent)).await.is_err() {
                    break Ended::Again;
                }
            }
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
            _ = sweep.tick() => {
                let before = peers.len();
                peers.retain(|_, p| p.last.elapsed() < tuning.idle);
                let gone = before - peers.len();
                activity.open_connections.fetch_sub(gone as i64, Ordering::Relaxed);
            }
            Some((peer, datagram)) = replies.recv() => {
                if let Some(p) = peers.get_mut(&peer) {
                    p.last = Instant::now();
                }
                activity.bytes.bytes_out.fetch_add(datagram.len() as u64, Ordering::Relaxed);
                let frame = Frame::Addressed { peer, payload: datagram };
                if sink.send(frame).await.is_err() {
                    break Ended::Again;
                }
            }
            frame = source.next() => match frame {
                Some(Ok(Frame::Addressed { peer, payload })) => {
                    if !peers.contains_key(&peer) {
                        if peers.len() >= tuning.max_flows {
                            forget_oldest(&mut peers);
                            activity.open_connections.fetch_sub(1, Ordering::Relaxed);
                        }
                        match open(carry.local).await {
                            Ok(socket) => {
                                let socket = Arc::new(socket);
                                let reader = readers.spawn(read_replies(socket.clone(), peer, replies_tx.clone()));
                                peers.insert(peer, Peer { socket, reader, last: Instant::now() });
                                activity.total_connections.fetch_add(1, Ordering::Relaxed);
                                activity.open_connections.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                activity.failed_connections.fetch_add(1, Ordering::Relaxed);
                                let why = format!("{peer}: no socket towards {}: {e}", carry.local);
                                let _ = carry.outcomes.send(Err(crate::forward::ConnectionError(why)));
                                continue;
                            }
                        }
                    }
                    if let Some(p) = peers.get_mut(&peer) {
                        p.last = Instant::now();
                        activity.bytes.bytes_in.fetch_add(payload.len() as u64, Ordering::Relaxed);
                        // A send that fails (nothing listens) loses this datagram, as UDP would.
                        let _ = p.socket.send(&payload).await;
                    }
                }
                Some(Ok(Frame::Ping(value))) => {
                    if sink.send(Frame::Pong::<Vec<u8>>(value)).await.is_err() {
                        break Ended::Again;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!("udp listen stream: {e}");
                    break Ended::Again;
                }
                None => break Ended::Again,
            },
        }
    };
    activity
        .open_connections
        .fetch_sub(peers.len() as i64, Ordering::Relaxed);
    ended
}

/// A socket connected to the local server, from loopback (or the server's own address).
async fn open(local: SocketAddr) -> std::io::Result<UdpSocket> {
    let from: IpAddr = match local.ip() {
        ip if ip.is_unspecified() && local.is_ipv4() => Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip if ip.is_loopback() => ip,
        _ if local.is_ipv4() => Ipv4Addr::UNSPECIFIED.into(),
        _ => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).await?;
    let to = match local.ip() {
        ip if ip.is_unspecified() => SocketAddr::new(from, local.port()),
        _ => local,
    };
    socket.connect(to).await?;
    Ok(socket)
}

/// The local server's replies to one peer, until the peer is forgotten or the listen ends.
async fn read_replies(
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let received = tokio::select! {
            received = socket.recv(&mut buf) => received,
            () = replies.closed() => return,
        };
        // An error is a refusal (the server is down): later datagrams may find it up.
        if let Ok(n) = received
            && replies.send((peer, buf[..n].to_vec())).await.is_err()
        {
            return;
        }
    }
}

fn forget_oldest(peers: &mut HashMap<SocketAddr, Peer>) {
    if let Some(oldest) = peers
        .iter()
        .min_by_key(|(_, p)| p.last)
        .map(|(peer, _)| *peer)
    {
        peers.remove(&oldest);
    }
}
