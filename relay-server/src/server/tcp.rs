//! TCP: resolve, connect, answer with the peer reached, then carry bytes both ways. When one
//! side finishes sending, the other side's write half is shut down and the other direction
//! goes on (half-close kept).

use super::reply::{fail, resolve_or_refuse, status_of};
use super::shared::Shared;
use kftray_relay::protocol::{Destination, Reply, Status, Transport};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes in flight per direction: a slow reader holds up its own connection, nothing else.
const BUFFER: usize = 16 * 1024;

pub(super) async fn run(conn: TcpStream, id: u32, to: Destination, shared: &Shared) {
    let Some((mut conn, addresses)) =
        resolve_or_refuse(conn, id, &to, Transport::Tcp, shared).await
    else {
        return;
    };
    let (upstream, peer) = match connect(&addresses, shared.settings.connect_timeout).await {
        Ok(connected) => connected,
        Err(reply) => return fail(conn, id, &to, Transport::Tcp, reply).await,
    };
    let _ = upstream.set_nodelay(true);
    let reply = Reply::new(Status::Connected, Some(peer), "");
    if conn.write_all(&reply.encode()).await.is_err() {
        return;
    }
    tracing::info!(conn = id, "tcp to {to} ({peer})");
    splice(conn, upstream, id, &format!("tcp to {to}")).await;
}

/// Carries bytes both ways between the client's connection and the other end until both
/// directions are done, keeping half-closes, and logs how it ended as "`what` done" or "`what`
/// cut".
async fn splice(mut conn: TcpStream, mut other: TcpStream, id: u32, what: &str) {
    match tokio::io::copy_bidirectional_with_sizes(&mut conn, &mut other, BUFFER, BUFFER).await {
        Ok((out, back)) => {
            tracing::info!(conn = id, "{what} done: {out} bytes out, {back} back");
        }
        Err(e) => tracing::info!(conn = id, "{what} cut: {e}"),
    }
}

/// The first address that accepts, in the resolver's order, all within `deadline`.
async fn connect(
    addresses: &[SocketAddr],
    deadline: Duration,
) -> Result<(TcpStream, SocketAddr), Reply> {
    let attempts = async {
        let mut last = None;
        for &addr in addresses {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok((stream, addr)),
                Err(e) => last = Some((addr, e)),
            }
        }
        Err(last)
    };
    match tokio::time::timeout(deadline, attempts).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(Some((addr, e)))) => Err(Reply::new(status_of(&e), None, format!("{addr}: {e}"))),
        Ok(Err(None)) => Err(Reply::new(Status::NoSuchHost, None, "no address")),
        Err(_) => Err(Reply::new(
            Status::Timeout,
            None,
            format!("no answer within {deadline:?}"),
        )),
    }
}
