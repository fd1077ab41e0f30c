//! Sessions: the client's heartbeat. Each ping is answered with a pong; a session silent for
//! longer than the heartbeat timeout is closed, and with no session the relay's idle clock
//! runs.

use super::shared::Shared;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Frame, Reply, Status};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub(super) async fn run(mut conn: TcpStream, id: u32, shared: &Shared) {
    use tokio::io::AsyncWriteExt;
    let _alive = shared.clients.session();
    if conn
        .write_all(&Reply::new(Status::Connected, None, "").encode())
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(conn = id, "session open");
    let timeout = shared.settings.heartbeat_timeout;
    let mut framed = Framed::new(conn, FrameCodec);
    loop {
        let frame = match tokio::time::timeout(timeout, framed.next()).await {
            Err(_) => {
                tracing::warn!(
                    conn = id,
                    "no heartbeat for {timeout:?}: closing the session"
                );
                return;
            }
            Ok(None) => {
                tracing::debug!(conn = id, "session closed by the client");
                return;
            }
            Ok(Some(Err(e))) => {
                tracing::warn!(conn = id, "bad frame in a session: {e}: closing");
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Frame::Ping(value) => {
                shared.clients.heard();
                if framed.send(Frame::<&[u8]>::Pong(value)).await.is_err() {
                    return;
                }
            }
            Frame::Pong(_) => shared.clients.heard(),
            _ => {
                tracing::warn!(
                    conn = id,
                    "a {:?} frame in a session: closing",
                    frame.kind()
                );
                return;
            }
        }
    }
}
