//! Answering a request that cannot be carried: the status an error means, and the refusal
//! written back before the connection closes.

use super::shared::Shared;
use kftray_relay::protocol::{Destination, Reply, Status, Transport};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The destination's addresses; or, when there are none, the client is told why (and the
/// connection closed) and `None` returned.
pub(super) async fn resolve_or_refuse(
    conn: TcpStream,
    id: u32,
    to: &Destination,
    transport: Transport,
    shared: &Shared,
) -> Option<(TcpStream, Vec<SocketAddr>)> {
    match shared.resolver.resolve(to).await {
        Ok(addresses) => Some((conn, addresses)),
        Err(reply) => {
            fail(conn, id, to, transport, reply).await;
            None
        }
    }
}

/// Logs why a request failed, answers it, and closes.
pub(super) async fn fail(
    conn: TcpStream,
    id: u32,
    to: &Destination,
    transport: Transport,
    reply: Reply,
) {
    tracing::info!(
        conn = id,
        "{transport} to {to}: {}: {}",
        reply.status,
        reply.message
    );
    refuse(conn, reply).await;
}

/// Answers and closes, without waiting long on a client that does not read.
pub(super) async fn refuse(mut conn: TcpStream, reply: Reply) {
    let send = async {
        conn.write_all(&reply.encode()).await?;
        conn.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
}

/// The status for a failed connect or send.
pub(super) fn status_of(e: &io::Error) -> Status {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Status::ConnectionRefused,
        io::ErrorKind::TimedOut => Status::Timeout,
        io::ErrorKind::NetworkUnreachable => Status::NetworkUnreachable,
        io::ErrorKind::HostUnreachable => Status::HostUnreachable,
        _ => Status::Failed,
    }
}
