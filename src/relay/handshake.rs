//! One request to the relay and its reply, over a fresh stream to the relay pod: the first
//! exchange of every relayed connection and of the relay's control session.

use crate::forward::PodStream;
use kftray_relay::io::{ReadError, read_reply};
use kftray_relay::protocol::{ProtocolError, Reply, Request, Status, VERSION};
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the relay may take to answer a request: it resolves and connects meanwhile, each
/// within its own deadline.
const REPLY_WAIT: Duration = Duration::from_secs(30);
/// How long the port-forward's own verdict is awaited when a stream breaks in a handshake.
const VERDICT_WAIT: Duration = Duration::from_secs(2);

/// A relay that answers in another version of the protocol: an older relay image (a tag
/// the node cached) or a newer one. Nothing it says is read any further.
#[derive(Debug, thiserror::Error)]
#[error("the relay speaks relay protocol version {0}; this kftray speaks version {VERSION}")]
pub(super) struct OtherVersion(pub u8);

impl OtherVersion {
    /// The version a relay spoke, where that is why `error` happened.
    pub(super) fn of(error: &io::Error) -> Option<u8> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<OtherVersion>())
            .map(|other| other.0)
    }
}

/// Sends `request` and reads the relay's reply: Ok when it connected, else an error that
/// says what the relay could not do, or why the stream broke.
pub(super) async fn handshake(
    stream: &mut Box<dyn PodStream>,
    request: &Request,
) -> io::Result<Reply> {
    let exchange = async {
        stream.write_all(&request.encode()).await?;
        stream.flush().await?;
        read_reply(stream).await.map_err(|e| match e {
            ReadError::Io(e) => e,
            // Every reply comes in the relay's own version, a refusal of ours included.
            ReadError::Protocol(ProtocolError::UnsupportedVersion(version)) => {
                io::Error::new(io::ErrorKind::InvalidData, OtherVersion(version))
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        })
    };
    let reply = match tokio::time::timeout(REPLY_WAIT, exchange).await {
        Ok(Ok(reply)) => reply,
        // The relay answered, in a version of its own: nothing broke.
        Ok(Err(e)) if OtherVersion::of(&e).is_some() => return Err(e),
        Ok(Err(e)) => {
            // The port-forward says why a stream to the pod broke better than the stream does
            // ("failed to connect to localhost:7000": the relay is not listening).
            let verdict = stream.take_failure();
            return Err(match tokio::time::timeout(VERDICT_WAIT, verdict).await {
                Ok(Some(why)) => io::Error::new(e.kind(), format!("relay: {why}")),
                _ => io::Error::new(e.kind(), format!("relay: {e}")),
            });
        }
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the relay did not answer within {REPLY_WAIT:?}"),
            ));
        }
    };
    if reply.status == Status::Connected {
        return Ok(reply);
    }
    let what = match request {
        Request::Connect { to, transport, .. } => format!("reach {to} ({transport})"),
        Request::Session { .. } => "open a session".to_string(),
        Request::Listen { port, .. } => format!("listen on port {port}"),
        Request::ListenUdp { port, .. } => format!("listen on UDP port {port}"),
        Request::Attach { id } => format!("take incoming connection {id}"),
    };
    let detail = if reply.message.is_empty() {
        String::new()
    } else {
        format!(" ({})", reply.message)
    };
    Err(io::Error::new(
        kind_of(reply.status),
        format!("the relay cannot {what}: {}{detail}", reply.status),
    ))
}

fn kind_of(status: Status) -> io::ErrorKind {
    match status {
        Status::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        Status::Timeout | Status::ResolveTimeout => io::ErrorKind::TimedOut,
        Status::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
        Status::HostUnreachable => io::ErrorKind::HostUnreachable,
        Status::NoSuchHost => io::ErrorKind::NotFound,
        Status::BadRequest | Status::UnsupportedVersion => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    }
}
