//! Reverse forwards. A listen opens a port for in-cluster clients and announces each
//! connection accepted there with an incoming frame; the connection then waits ("parked") for
//! an attach, which carries it as a TCP connect carries its destination. A connection not
//! attached in time is reset, and so are those still waiting when their listen ends, and
//! those the client refuses. Each side's end of an attached connection is told on the listen
//! (see `kftray_relay::attached`).

use super::parked::{MAX_PARKED, Waiting};
use super::reply::refuse;
use super::shared::Shared;
use futures::{SinkExt, StreamExt};
use kftray_relay::attached::{self, Ends, Tally};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Frame, Reply, Status};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// Closes a connection with a reset (SO_LINGER 0), so that its client sees at once that
/// nobody will answer.
fn reset(conn: TcpStream) {
    let _ = conn.set_zero_linger();
    drop(conn);
}

/// A listen request: bind the port on the expose address, answer with the address bound, then
/// announce each connection accepted there until the client goes away or falls silent.
pub(super) async fn listen(mut conn: TcpStream, id: u32, port: u16, shared: &Shared) {
    let addr = SocketAddr::new(shared.settings.expose_address, port);
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => return refuse_bind(conn, id, "listen", addr, &e).await,
    };
    let bound = listener.local_addr().unwrap_or(addr);
    // A listen keeps the relay alive as a session does.
    let _alive = shared.clients.session();
    if !connected(&mut conn, id, "listen", bound).await {
        return;
    }
    let heartbeat = shared.settings.heartbeat_timeout;
    let attach_timeout = shared.settings.attach_timeout;
    let mut framed = Framed::new(conn, FrameCodec);
    let mut heard = Instant::now();
    // This listen's parked connections, oldest first, with their deadlines.
    let mut mine: VecDeque<(Instant, u32)> = VecDeque::new();
    // The in-cluster clients' ends of this listen's attached connections, to tell the client.
    let (ends, mut ended) = mpsc::unbounded_channel::<(u32, u64)>();
    let (mut accepted, mut resets) = (0u64, 0u64);
    let why = loop {
        let deadline = mine.front().map(|&(at, _)| at);
        tokio::select! {
            frame = framed.next() => match frame {
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
                Some(Ok(Frame::Refuse { connection })) => {
                    let parked_here = mine.iter().any(|&(_, c)| c == connection);
                    if let Some(waiting) = parked_here.then(|| shared.parked.take(connection)).flatten() {
                        reset_parked(id, connection, waiting, "refused by the client");
                        resets += 1;
                    }
                }
                Some(Ok(Frame::End { connection, bytes })) => {
                    if !shared.told.deliver(connection, bytes) {
                        tracing::debug!(conn = id, "an end for connection {connection}, which is not attached");
                    }
                }
                Some(Ok(other)) => {
                    tracing::warn!(conn = id, "a {:?} frame on a listen: closing", other.kind());
                    break format!("a {:?} frame from the client", other.kind());
                }
                Some(Err(e)) => {
                    tracing::warn!(conn = id, "bad frame on a listen: {e}: closing");
                    break format!("bad frame: {e}");
                }
                None => break "closed by the client".to_string(),
            },
            incoming = listener.accept() => match incoming {
                Ok((client, from)) => {
                    accepted += 1;
                    {
                        // Forget those attached since.
                        let waiting = shared.parked.lock();
                        mine.retain(|(_, connection)| waiting.contains_key(connection));
                    }
                    if mine.len() >= MAX_PARKED {
                        tracing::warn!(
                            conn = id,
                            "{from} on port {port}: {MAX_PARKED} connections already wait to be attached: reset"
                        );
                        reset(client);
                        resets += 1;
                        continue;
                    }
                    let _ = client.set_nodelay(true);
                    let connection = shared.parked.park(client, from, port, ends.clone());
                    mine.push_back((Instant::now() + attach_timeout, connection));
                    tracing::debug!(conn = id, "connection {connection} from {from} on port {port}");
                    let frame = Frame::<&[u8]>::Incoming { connection, from };
                    if framed.send(frame).await.is_err() {
                        break "the client went away".to_string();
                    }
                }
                // Out of descriptors, or a client gone before it was accepted.
                Err(e) => {
                    tracing::debug!(conn = id, "accept on port {port}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some((connection, bytes)) = ended.recv() => {
                if framed.send(Frame::<&[u8]>::End { connection, bytes }).await.is_err() {
                    break "the client went away".to_string();
                }
            }
            () = sleep_until_some(deadline) => {
                if let Some((_, connection)) = mine.pop_front()
                    && let Some(waiting) = shared.parked.take(connection)
                {
                    let why = format!("not attached within {attach_timeout:?}");
                    reset_parked(id, connection, waiting, &why);
                    resets += 1;
                }
            }
            () = tokio::time::sleep_until(heard + heartbeat) => {
                tracing::warn!(conn = id, "no heartbeat for {heartbeat:?}: closing the listen");
                break format!("no frame for {heartbeat:?}");
            }
        }
    };
    // The port closes first, so that nothing new arrives while the parked ones are reset.
    drop(listener);
    for (_, connection) in mine {
        if let Some(waiting) = shared.parked.take(connection) {
            reset(waiting.conn);
            resets += 1;
        }
    }
    tracing::info!(
        conn = id,
        "listen on {bound} closed ({why}): {accepted} accepted, {resets} reset"
    );
}

/// Resets a parked connection, and says why.
fn reset_parked(id: u32, connection: u32, waiting: Waiting, why: &str) {
    tracing::info!(
        conn = id,
        "connection {connection} from {} {why}: reset",
        waiting.from
    );
    reset(waiting.conn);
}

/// Answers a listen (`what`) whose port could not be bound with `failed` and why.
pub(super) async fn refuse_bind(
    conn: TcpStream,
    id: u32,
    what: &str,
    addr: SocketAddr,
    e: &io::Error,
) {
    let reply = Reply::new(Status::Failed, None, bind_error(addr, e));
    tracing::info!(
        conn = id,
        "{what} on {addr}: {}: {}",
        reply.status,
        reply.message
    );
    refuse(conn, reply).await
}

/// Answers a listen (`what`) with `connected` and the address bound; false when the client
/// is gone.
pub(super) async fn connected(
    conn: &mut TcpStream,
    id: u32,
    what: &str,
    bound: SocketAddr,
) -> bool {
    let reply = Reply::new(Status::Connected, Some(bound), "").encode();
    if conn.write_all(&reply).await.is_err() {
        return false;
    }
    tracing::info!(conn = id, "{what} on {bound}");
    true
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a port cannot be listened on, in words for the client's user.
fn bind_error(addr: SocketAddr, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => format!("port {} is in use on {addr}", addr.port()),
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "port {} is below 1024, which the relay may not bind (it does not run as root)",
            addr.port()
        ),
        io::ErrorKind::AddrNotAvailable => {
            format!("{addr}: the relay has no such address ({e})")
        }
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// An attach request: the parked connection `id`, answered with its client's address, then
/// carried both ways.
pub(super) async fn attach(mut conn: TcpStream, id: u32, shared: &Shared) {
    let Some(Waiting {
        conn: client,
        from,
        port,
        ends,
    }) = shared.parked.take(id)
    else {
        let reply = Reply::new(
            Status::BadRequest,
            None,
            format!("no connection {id} waits to be attached: unknown, already attached, or reset"),
        );
        tracing::info!(conn = id, "attach: {}: {}", reply.status, reply.message);
        return refuse(conn, reply).await;
    };
    // Expected before the client hears `connected`, after which it may tell its end.
    let told = shared.told.expect(id);
    if conn
        .write_all(&Reply::new(Status::Connected, Some(from), "").encode())
        .await
        .is_err()
    {
        shared.told.forget(id);
        reset(client);
        return;
    }
    tracing::info!(conn = id, "attach {from} on port {port}");
    let ends = Ends {
        tell: Box::new(move |bytes| ends.send((id, bytes)).is_ok()),
        told,
    };
    let (out, back) = (AtomicU64::new(0), AtomicU64::new(0));
    let tally = Tally {
        sent: &out,
        received: &back,
    };
    let what = format!("attach {from} on port {port}");
    match attached::splice(client, conn, ends, tally, None).await {
        Ok(()) => tracing::info!(
            conn = id,
            "{what} done: {} bytes from the client, {} to it",
            out.into_inner(),
            back.into_inner()
        ),
        Err(e) => tracing::info!(conn = id, "{what} cut: {e}"),
    }
    shared.told.forget(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_say_what_is_wrong() {
        let at = |port| SocketAddr::new("10.244.0.5".parse().unwrap(), port);
        let error = |kind| io::Error::from(kind);
        assert_eq!(
            bind_error(at(8080), &error(io::ErrorKind::AddrInUse)),
            "port 8080 is in use on 10.244.0.5:8080"
        );
        assert!(
            bind_error(at(80), &error(io::ErrorKind::PermissionDenied))
                .starts_with("port 80 is below 1024")
        );
        assert!(
            bind_error(at(8080), &error(io::ErrorKind::PermissionDenied))
                .starts_with("cannot listen on 10.244.0.5:8080")
        );
    }
}
