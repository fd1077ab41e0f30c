//! An attached connection's bytes, carried between the socket at this side's end (the
//! in-cluster client at the relay, the local server at kftray) and the attach stream.
//!
//! Each direction's end travels on the listen as an [`End`](crate::protocol::Frame::End)
//! frame, never as a half-close of the attach: the kubelet's port-forward (containerd's too)
//! ends the whole stream once the pod side closes its half, which would cut the other
//! direction short. So each side counts what it sent into the attach; when its end finishes
//! sending, it tells the far side that count, and the far side shuts its own end's write half
//! once that many bytes have come through. Without a listen to tell it on (the listen ended
//! while the connection went on), the attach's write half is shut down instead, as a plain
//! splice would.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// Matches the largest DATA frame the port-forward protocols carry.
const CHUNK: usize = 64 * 1024;

/// How this side's end and the far side's end are told.
pub struct Ends {
    /// Tells the far side that this end finished sending after that many bytes; false when
    /// it cannot be told.
    pub tell: Box<dyn FnOnce(u64) -> bool + Send>,
    /// The far side's count when its end finished sending.
    pub told: oneshot::Receiver<u64>,
}

/// The far sides' ends that attaches wait for, by connection id: an attach waits here, and
/// the listen its connection came in on delivers.
#[derive(Default)]
pub struct Told {
    waiting: Mutex<HashMap<u32, oneshot::Sender<u64>>>,
}

impl Told {
    /// Where connection `id`'s end will come; until [`Told::forget`].
    pub fn expect(&self, id: u32) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        rx
    }

    /// Delivers connection `id`'s end; false when nothing waits for it.
    pub fn deliver(&self, id: u32, bytes: u64) -> bool {
        self.lock()
            .remove(&id)
            .is_some_and(|tx| tx.send(bytes).is_ok())
    }

    pub fn forget(&self, id: u32) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<u64>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes through, as they pass.
pub struct Tally<'a> {
    /// From this side's end into the attach.
    pub sent: &'a AtomicU64,
    /// From the attach to this side's end.
    pub received: &'a AtomicU64,
}

/// Carries both ways until both directions are done. Once one is, the other gets `linger`
/// (when given) to finish, since a peer may never close its half. An error is a failure that
/// cut a direction short.
pub async fn splice<E, S>(
    end: E,
    attach: S,
    ends: Ends,
    tally: Tally<'_>,
    linger: Option<Duration>,
) -> io::Result<()>
where
    E: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut end_read, mut end_write) = tokio::io::split(end);
    let (mut attach_read, mut attach_write) = tokio::io::split(attach);
    let Ends { tell, told } = ends;
    let sending = async {
        let sent = copy(&mut end_read, &mut attach_write, tally.sent, None).await?;
        attach_write.flush().await?;
        if !tell(sent) {
            attach_write.shutdown().await?;
        }
        Ok(())
    };
    let receiving = async {
        copy(&mut attach_read, &mut end_write, tally.received, Some(told)).await?;
        end_write.shutdown().await
    };
    tokio::pin!(sending, receiving);
    let sent_first = tokio::select! {
        done = &mut sending => {
            done?;
            true
        }
        done = &mut receiving => {
            done?;
            false
        }
    };
    let rest = async {
        if sent_first {
            (&mut receiving).await
        } else {
            (&mut sending).await
        }
    };
    match linger {
        Some(linger) => tokio::time::timeout(linger, rest).await.unwrap_or(Ok(())),
        None => rest.await,
    }
}

/// Copies to EOF, or, once `limit` says how many bytes the far side sent in all, up to that
/// many; returns the bytes copied.
async fn copy<R, W>(
    reader: &mut R,
    writer: &mut W,
    counter: &AtomicU64,
    limit: Option<oneshot::Receiver<u64>>,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0u64;
    let mut limit = limit;
    let mut total: Option<u64> = None;
    loop {
        if total.is_some_and(|t| copied >= t) {
            return Ok(copied);
        }
        let n = match limit.as_mut() {
            Some(told) => tokio::select! {
                n = reader.read(&mut buf) => n?,
                said = told => {
                    // A dropped sender says nothing: EOF alone ends this direction then.
                    total = said.ok();
                    limit = None;
                    continue;
                }
            },
            None => reader.read(&mut buf).await?,
        };
        if n == 0 {
            return Ok(copied);
        }
        writer.write_all(&buf[..n]).await?;
        copied += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    /// Two sides spliced over one attach socket pair, each side's ends told to the other
    /// through channels, as the listen does.
    #[tokio::test]
    async fn each_half_close_reaches_the_far_end_without_closing_the_attach() {
        let (mut client, client_end) = socket_pair().await;
        let (mut server, server_end) = socket_pair().await;
        let (relay_attach, kftray_attach) = socket_pair().await;
        let (to_kftray, from_relay) = oneshot::channel();
        let (to_relay, from_kftray) = oneshot::channel();
        let relay_ends = Ends {
            tell: Box::new(move |n| to_kftray.send(n).is_ok()),
            told: from_kftray,
        };
        let kftray_ends = Ends {
            tell: Box::new(move |n| to_relay.send(n).is_ok()),
            told: from_relay,
        };
        let relay = tokio::spawn(async move {
            let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
            let tally = Tally {
                sent: &a,
                received: &b,
            };
            splice(client_end, relay_attach, relay_ends, tally, None).await
        });
        let kftray = tokio::spawn(async move {
            let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
            let tally = Tally {
                sent: &a,
                received: &b,
            };
            splice(server_end, kftray_attach, kftray_ends, tally, None).await?;
            Ok::<_, io::Error>((a.into_inner(), b.into_inner()))
        });

        // The server greets and closes its half first; the client still sends after that.
        server.write_all(b"hello").await.unwrap();
        server.shutdown().await.unwrap();
        let mut greeting = Vec::new();
        client.read_to_end(&mut greeting).await.unwrap();
        assert_eq!(greeting, b"hello");
        let request = vec![3u8; 5 * CHUNK + 1];
        client.write_all(&request).await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), request.len());
        relay.await.unwrap().unwrap();
        assert_eq!(kftray.await.unwrap().unwrap(), (5, request.len() as u64));
    }

    #[tokio::test]
    async fn without_a_listen_the_attach_is_half_closed_instead() {
        let (mut client, client_end) = socket_pair().await;
        let (attach, mut far) = socket_pair().await;
        let (_keep, told) = oneshot::channel();
        let ends = Ends {
            tell: Box::new(|_| false),
            told,
        };
        let task = tokio::spawn(async move {
            let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
            let tally = Tally {
                sent: &a,
                received: &b,
            };
            splice(client_end, attach, ends, tally, None).await
        });
        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        far.write_all(b"reply").await.unwrap();
        far.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply");
        task.await.unwrap().unwrap();
    }
}
