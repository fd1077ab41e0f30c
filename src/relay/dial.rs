//! A forward's connections through its relay: a stream to the relay pod, the request naming
//! the destination, the relay's reply; then bytes (TCP) or framed datagrams (UDP).

use super::destination::DestinationState;
use super::relays::RelayLease;
use crate::forward::{Connect, Dial, Flow, OpenFlow, OpenedFlow, PodStream};
use crate::resolve::Endpoint;
use futures::{SinkExt, StreamExt};
use relay_server::io::{FrameCodec, ReadError, read_reply};
use relay_server::protocol::{Frame, Reply, Request, Status, Transport};
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

/// How long the relay may take to answer a request: it resolves and connects meanwhile, each
/// within its own deadline.
const REPLY_WAIT: Duration = Duration::from_secs(30);
/// How long the port-forward's own verdict is awaited when a stream breaks in a handshake.
const VERDICT_WAIT: Duration = Duration::from_secs(2);
/// Datagrams waiting from the relay for the local side, per flow.
const FLOW_QUEUE: usize = 64;

/// What a relayed forward's local side dials: its relay, its destination, its transport.
pub struct RelayDialer {
    lease: RelayLease,
    destination: watch::Receiver<DestinationState>,
    transport: Transport,
}

impl RelayDialer {
    pub fn new(
        lease: RelayLease,
        destination: watch::Receiver<DestinationState>,
        transport: Transport,
    ) -> RelayDialer {
        RelayDialer {
            lease,
            destination,
            transport,
        }
    }

    /// A stream to the relay pod on which the relay has connected to the destination.
    fn dial(&self, endpoint: &Endpoint) -> Dial {
        let to = match &*self.destination.borrow() {
            DestinationState::Ready(to) => to.clone(),
            DestinationState::Waiting(why) | DestinationState::Failed(why) => {
                let why = why.clone();
                return Box::pin(async move { Err(io::Error::other(why)) });
            }
        };
        let request = Request::Connect {
            id: self.lease.next_id(),
            transport: self.transport,
            to,
        };
        let (connector, endpoint) = (self.lease.connector().clone(), endpoint.clone());
        Box::pin(async move {
            let mut stream = connector.connect(&endpoint).await?;
            handshake(&mut stream, &request).await?;
            Ok(stream)
        })
    }
}

impl Connect for RelayDialer {
    fn connect(&self, endpoint: &Endpoint) -> Dial {
        self.dial(endpoint)
    }
}

impl OpenFlow for RelayDialer {
    fn open(&self, endpoint: &Endpoint) -> OpenedFlow {
        let dial = self.dial(endpoint);
        Box::pin(async move {
            let stream = dial.await?;
            let (outbound, to_relay) = mpsc::channel(FLOW_QUEUE);
            let (from_relay, inbound) = mpsc::channel(FLOW_QUEUE);
            tokio::spawn(carry_datagrams(stream, to_relay, from_relay));
            Ok(Flow { outbound, inbound })
        })
    }
}

/// Frames a flow's datagrams onto its stream and back, until either side ends; then the
/// stream is closed so the relay ends its side too.
async fn carry_datagrams(
    stream: Box<dyn PodStream>,
    mut to_relay: mpsc::Receiver<Vec<u8>>,
    from_relay: mpsc::Sender<Vec<u8>>,
) {
    let (mut sink, mut source) = Framed::new(stream, FrameCodec).split();
    loop {
        tokio::select! {
            datagram = to_relay.recv() => {
                let Some(datagram) = datagram else { break };
                if sink.send(Frame::Datagram(datagram)).await.is_err() {
                    break;
                }
            }
            frame = source.next() => match frame {
                Some(Ok(Frame::Datagram(datagram))) => {
                    if from_relay.send(datagram.to_vec()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Frame::Ping(value))) => {
                    if sink.send(Frame::Pong::<Vec<u8>>(value)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Frame::Pong(_))) => {}
                Some(Err(e)) => {
                    tracing::debug!("relay flow: {e}");
                    break;
                }
                None => break,
            },
        }
    }
    let _ = sink.close().await;
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
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        })
    };
    let reply = match tokio::time::timeout(REPLY_WAIT, exchange).await {
        Ok(Ok(reply)) => reply,
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
