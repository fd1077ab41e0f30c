//! `relay-server probe`: a session and one heartbeat against the listening relay, for a
//! startup probe (exec probes need no shell, which the image does not have).

use super::settings::Settings;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::{FrameCodec, read_reply};
use kftray_relay::protocol::{Frame, Request, Status};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const DEADLINE: Duration = Duration::from_secs(3);

pub(super) async fn probe(settings: &Settings) -> ExitCode {
    match tokio::time::timeout(DEADLINE, exchange(settings)).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(why)) => {
            eprintln!("relay-server probe: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("relay-server probe: no answer within {DEADLINE:?}");
            ExitCode::FAILURE
        }
    }
}

async fn exchange(settings: &Settings) -> Result<(), String> {
    let addr = settings.listen;
    let mut conn = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    conn.write_all(&Request::Session { id: 0 }.encode())
        .await
        .map_err(|e| e.to_string())?;
    let reply = read_reply(&mut conn).await.map_err(|e| e.to_string())?;
    if reply.status != Status::Connected {
        return Err(format!("{}: {}", reply.status, reply.message));
    }
    let mut framed = Framed::new(conn, FrameCodec);
    framed
        .send(Frame::<&[u8]>::Ping(1))
        .await
        .map_err(|e| e.to_string())?;
    match framed.next().await {
        Some(Ok(Frame::Pong(1))) => Ok(()),
        Some(Ok(other)) => Err(format!("answered {:?} to a ping", other.kind())),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("closed without a pong".into()),
    }
}
