//! UDP reverse forwards. A UDP listen binds a port for in-cluster clients; each datagram that
//! arrives there goes to the client in an addressed frame naming its sender, and each
//! addressed frame the client sends is sent from that port to the peer it names. The client
//! keeps the flows (one local socket per peer); the relay only carries datagrams.

use super::listen::{connected, refuse_bind};
use super::shared::Shared;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Frame, MAX_DATAGRAM};
use std::net::SocketAddr;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::codec::Framed;

pub(super) async fn listen(mut conn: TcpStream, id: u32, port: u16, shared: &Shared) {
    let addr = SocketAddr::new(shared.settings.expose_address, port);
    let socket = match UdpSocket::bind(addr).await {
        Ok(socket) => socket,
        Err(e) => return refuse_bind(conn, id, "udp listen", addr, &e).await,
    };
    let bound = socket.local_addr().unwrap_or(addr);
    // A listen keeps the relay alive as a session does.
    let _alive = shared.clients.session();
    if !connected(&mut conn, id, "udp listen", bound).await {
        return;
    }
    let heartbeat = shared.settings.heartbeat_timeout;
    let mut framed = Framed::new(conn, FrameCodec);
    let mut heard = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (mut inbound, mut outbound) = (0u64, 0u64);
    let why = loop {
        tokio::select! {
            frame = framed.next() => match frame {
                Some(Ok(Frame::Addressed { peer, payload })) => {
                    heard = Instant::now();
                    outbound += 1;
                    // A send that fails loses this datagram only, as UDP would.
                    if let Err(e) = socket.send_to(&payload, peer).await {
                        tracing::debug!(conn = id, "udp send to {peer}: {e}");
                    }
                }
                Some(Ok(Frame::Ping(value))) => {
                    heard = Instant::now();
                    shared.clients.heard();
                    if framed.send(Frame::<&[u8]>::Pong(value)).await.is_err() {
                        break "the client went away".to_string();
                    }
                }
                Some(Ok(Frame::Pong(_))) => {
                    heard = Instant::now();
                    shared.clients.heard();
                }
                Some(Ok(other)) => {
                    tracing::warn!(conn = id, "a {:?} frame on a udp listen: closing", other.kind());
                    break format!("a {:?} frame from the client", other.kind());
                }
                Some(Err(e)) => {
                    tracing::warn!(conn = id, "bad frame on a udp listen: {e}: closing");
                    break format!("bad frame: {e}");
                }
                None => break "closed by the client".to_string(),
            },
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => {
                    inbound += 1;
                    let frame = Frame::Addressed { peer, payload: &buf[..n] };
                    if framed.send(frame).await.is_err() {
                        break "the client went away".to_string();
                    }
                }
                // An ICMP error of an earlier send, on some systems: that peer is gone.
                Err(e) => tracing::debug!(conn = id, "udp receive on port {port}: {e}"),
            },
            () = tokio::time::sleep_until(heard + heartbeat) => {
                tracing::warn!(conn = id, "no heartbeat for {heartbeat:?}: closing the udp listen");
                break format!("no frame for {heartbeat:?}");
            }
        }
    };
    tracing::info!(
        conn = id,
        "udp listen on {bound} closed ({why}): {inbound} datagrams in, {outbound} out"
    );
}
