//! The last-resort transport: `v4.channel.k8s.io`, one WebSocket per local connection.
//!
//! Each message is `[channel] ++ payload`; port index 0 has data channel 0 and error channel
//! 1, each opened by a 3-byte frame `[channel, port_lo, port_hi]`. v4 has no half-close, so
//! after the local side finishes sending we keep reading until the server closes, instead of
//! dropping the pod's reply as kube-rs does.

use super::Io;
use super::with_failure::WithFailure;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const DATA: u8 = 0;
const ERROR: u8 = 1;
/// Room for a few 64 KiB frames each way between the socket and the local connection.
const BUFFER: usize = 256 * 1024;

/// Bridges an upgraded v4 WebSocket to an in-process stream; the server's error-channel
/// message, if it sent one, is the stream's failure.
pub(super) fn bridge(ws: WebSocketStream<Io>, port: u16) -> WithFailure<DuplexStream> {
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    let (error_tx, error_rx) = oneshot::channel();
    tokio::spawn(async move {
        if let Some(error) = run(ws, theirs, port).await {
            let _ = error_tx.send(error);
        }
    });
    WithFailure::new(ours, error_rx)
}

async fn run(ws: WebSocketStream<Io>, local: DuplexStream, port: u16) -> Option<String> {
    let (mut sink, mut stream) = ws.split();
    let (mut local_read, mut local_write) = tokio::io::split(local);
    let mut opened = [false; 2];
    let mut error = Vec::new();
    let mut sending = true;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = local_read.read(&mut buf[1..]), if sending => match read {
                Ok(0) | Err(_) => sending = false,
                Ok(n) => {
                    buf[0] = DATA;
                    if sink.send(Message::binary(buf[..=n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Binary(frame))) => {
                    let Some((&channel, payload)) = frame.split_first() else { continue };
                    let slot = match channel {
                        DATA => 0,
                        ERROR => 1,
                        other => {
                            error.extend_from_slice(format!("unexpected channel {other}").as_bytes());
                            break;
                        }
                    };
                    if !opened[slot] {
                        // The first frame on each channel names the port, little-endian.
                        if payload != port.to_le_bytes() {
                            error.extend_from_slice(b"the server opened a different port");
                            break;
                        }
                        opened[slot] = true;
                    } else if channel == DATA {
                        if local_write.write_all(payload).await.is_err() {
                            break;
                        }
                    } else {
                        error.extend_from_slice(payload);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = local_write.shutdown().await;
    let _ = sink.close().await;
    (!error.is_empty()).then(|| String::from_utf8_lossy(&error).into_owned())
}
