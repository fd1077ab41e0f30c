//! UDP: one flow per connection. A socket connected to the destination (so only its replies
//! come back), datagrams framed both ways, and the flow closed after a quiet spell.

use super::reply::{fail, resolve_or_refuse, status_of};
use super::shared::Shared;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Destination, Frame, MAX_DATAGRAM, Reply, Status, Transport};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::codec::Framed;

pub(super) async fn run(conn: TcpStream, id: u32, to: Destination, shared: &Shared) {
    let Some((mut conn, addresses)) =
        resolve_or_refuse(conn, id, &to, Transport::Udp, shared).await
    else {
        return;
    };
    // UDP has no handshake: the first address is the one used.
    let peer = addresses[0];
    let socket = match open(peer).await {
        Ok(socket) => socket,
        Err(e) => {
            let reply = Reply::new(status_of(&e), None, format!("{peer}: {e}"));
            return fail(conn, id, &to, Transport::Udp, reply).await;
        }
    };
    if conn
        .write_all(&Reply::new(Status::Connected, Some(peer), "").encode())
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(conn = id, "udp to {to} ({peer})");
    let idle = shared.settings.flow_idle;
    let mut framed = Framed::new(conn, FrameCodec);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (mut out, mut back) = (0u64, 0u64);
    let mut quiet_since = Instant::now();
    let why = loop {
        tokio::select! {
            frame = framed.next() => match frame {
                Some(Ok(Frame::Datagram(datagram))) => {
                    quiet_since = Instant::now();
                    out += 1;
                    // A send that fails (no route, a full buffer) loses this datagram only,
                    // as UDP would.
                    if let Err(e) = socket.send(&datagram).await {
                        tracing::debug!(conn = id, "udp send to {peer}: {e}");
                    }
                }
                Some(Ok(Frame::Ping(value))) => {
                    if framed.send(Frame::<&[u8]>::Pong(value)).await.is_err() {
                        break "the client went away".to_string();
                    }
                }
                Some(Ok(Frame::Pong(_))) => {}
                Some(Ok(other)) => {
                    tracing::warn!(conn = id, "a {:?} frame on a flow: closing", other.kind());
                    break format!("a {:?} frame from the client", other.kind());
                }
                Some(Err(e)) => {
                    tracing::warn!(conn = id, "bad frame: {e}: closing");
                    break format!("bad frame: {e}");
                }
                None => break "closed by the client".to_string(),
            },
            received = socket.recv(&mut buf) => match received {
                Ok(n) => {
                    quiet_since = Instant::now();
                    back += 1;
                    // Waiting here is the backpressure: while the client does not read, the
                    // socket's own buffer fills and the kernel drops, as it would for UDP.
                    if framed.send(Frame::Datagram(&buf[..n])).await.is_err() {
                        break "the client went away".to_string();
                    }
                }
                // An ICMP error for an earlier datagram (nothing listens there yet).
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::debug!(conn = id, "udp {peer}: {e}");
                }
                Err(e) => break format!("receiving: {e}"),
            },
            () = tokio::time::sleep_until(quiet_since + idle) => {
                break format!("idle for {idle:?}");
            }
        }
    };
    tracing::info!(
        conn = id,
        "udp to {to} closed ({why}): {out} datagrams out, {back} back"
    );
}

/// A socket of the destination's family, connected to it.
async fn open(peer: SocketAddr) -> io::Result<UdpSocket> {
    let any = match peer.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    socket.connect(peer).await?;
    Ok(socket)
}
