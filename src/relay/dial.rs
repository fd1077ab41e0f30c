//! A forward's connections through its relay: a stream to the relay pod, the request naming
//! the destination, the relay's reply; then bytes (TCP) or framed datagrams (UDP).

use super::destination::DestinationState;
use super::handshake::handshake;
use super::relays::RelayLease;
use crate::forward::{Connect, Dial, Flow, OpenFlow, OpenedFlow, PodStream};
use crate::resolve::Endpoint;
use futures::{SinkExt, StreamExt};
use kftray_relay::io::FrameCodec;
use kftray_relay::protocol::{Destination, Frame, Request, Transport};
use std::io;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

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
        self.dial_to(to, endpoint)
    }

    /// A stream on which the relay has connected to `to`, whatever the forward's own
    /// destination: the proxy's connections each name theirs.
    pub fn dial_to(&self, to: Destination, endpoint: &Endpoint) -> Dial {
        let request = Request::Connect {
            id: self.lease.next_id(),
            transport: self.transport,
            to,
        };
        self.open(request, endpoint)
    }

    /// A stream on which the relay said yes to `request` (a listen, an attach).
    pub fn open(&self, request: Request, endpoint: &Endpoint) -> Dial {
        let (connector, endpoint) = (self.lease.connector().clone(), endpoint.clone());
        Box::pin(async move {
            let mut stream = connector.connect(&endpoint).await?;
            handshake(&mut stream, &request).await?;
            Ok(stream)
        })
    }

    /// A request id of this run's relays, for the relay's log and ours.
    pub fn next_id(&self) -> u32 {
        self.lease.next_id()
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
                // Only a listen stream announces connections and their ends: on a flow it is
                // the relay's mistake, and the flow cannot be trusted further.
                Some(Ok(other)) => {
                    tracing::debug!("relay flow: a {:?} frame on a UDP flow", other.kind());
                    break;
                }
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
