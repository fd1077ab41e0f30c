//! Carrying one local connection to its stream and back, with half-close done right.
//!
//! When one side finishes sending, the other side's write half is shut down and the other
//! direction carries on: a client that sends a request, shuts down its write side and then
//! reads still gets the whole reply (kube-rs drops it; we must not). Once one direction is
//! done, the other gets a linger deadline, because a peer may never close its half and a
//! connection must not stay open forever on that account.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Matches the largest DATA frame the port-forward protocols carry, so one read fills one frame.
const CHUNK: usize = 64 * 1024;

/// Bytes carried, updated as they pass so `status` shows live numbers.
#[derive(Debug, Default)]
pub struct Counters {
    /// From the pod to the local client.
    pub bytes_in: AtomicU64,
    /// From the local client to the pod.
    pub bytes_out: AtomicU64,
}

/// Sees the bytes of a connection as they pass, after they are read and before they are
/// written on: an HTTP log's tap. `()` sees nothing, and costs nothing.
pub trait Observe: Sync {
    /// Bytes from the local client to the pod.
    fn outbound(&self, bytes: &[u8]);
    /// Bytes from the pod to the local client.
    fn inbound(&self, bytes: &[u8]);
}

impl Observe for () {
    fn outbound(&self, _: &[u8]) {}
    fn inbound(&self, _: &[u8]) {}
}

/// Copies both ways until both directions finish, or one finishes and the other stays idle
/// past `linger`. Returns an error only for a failure that cut a direction short.
pub async fn splice<L, R, O>(
    local: L,
    remote: R,
    counters: &Counters,
    linger: Duration,
    observer: &O,
) -> io::Result<()>
where
    L: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + AsyncWrite + Unpin,
    O: Observe,
{
    let (mut local_read, mut local_write) = tokio::io::split(local);
    let (mut remote_read, mut remote_write) = tokio::io::split(remote);
    let outbound = pipe(
        &mut local_read,
        &mut remote_write,
        &counters.bytes_out,
        |b| observer.outbound(b),
    );
    let inbound = pipe(
        &mut remote_read,
        &mut local_write,
        &counters.bytes_in,
        |b| observer.inbound(b),
    );
    tokio::pin!(outbound, inbound);
    // Whichever direction ends first, the other gets the linger deadline.
    tokio::select! {
        done = &mut outbound => {
            done?;
            finish(inbound, linger).await
        }
        done = &mut inbound => {
            done?;
            finish(outbound, linger).await
        }
    }
}

async fn finish(rest: impl Future<Output = io::Result<()>>, linger: Duration) -> io::Result<()> {
    match tokio::time::timeout(linger, rest).await {
        Ok(done) => done,
        // The peer never closed its half: the connection is over all the same.
        Err(_) => Ok(()),
    }
}

/// One direction: copy to EOF, then shut the writer down so the far side sees the EOF too.
async fn pipe<Rd, Wr>(
    reader: &mut Rd,
    writer: &mut Wr,
    counter: &AtomicU64,
    observe: impl Fn(&[u8]),
) -> io::Result<()>
where
    Rd: AsyncRead + Unpin,
    Wr: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        observe(&buf[..n]);
        writer.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    writer.flush().await?;
    writer.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A real socket pair: (the end a test drives, the end given to splice).
    async fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn request_then_half_close_still_gets_the_whole_reply() {
        let (mut client, local) = socket_pair().await;
        let (mut server, remote) = socket_pair().await;
        let counters = std::sync::Arc::new(Counters::default());
        let task_counters = counters.clone();
        let task = tokio::spawn(async move {
            splice(local, remote, &task_counters, Duration::from_secs(30), &()).await
        });

        client.write_all(b"request").await.unwrap();
        client.shutdown().await.unwrap();
        // The server sees the request and then EOF, and only then answers at length.
        let mut request = Vec::new();
        server.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"request");
        let reply = vec![7u8; 3 * CHUNK + 11];
        server.write_all(&reply).await.unwrap();
        server.shutdown().await.unwrap();

        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, reply);
        task.await.unwrap().unwrap();
        assert_eq!(counters.bytes_out.load(Ordering::Relaxed), 7);
        assert_eq!(
            counters.bytes_in.load(Ordering::Relaxed),
            reply.len() as u64
        );
    }

    #[tokio::test]
    async fn a_peer_that_never_closes_its_half_is_let_go_after_the_linger() {
        let (mut client, local) = socket_pair().await;
        let (_server, remote) = socket_pair().await;
        let task = tokio::spawn(async move {
            splice(
                local,
                remote,
                &Counters::default(),
                Duration::from_millis(200),
                &(),
            )
            .await
        });
        client.shutdown().await.unwrap();
        // The server end stays open and silent; splice must end on its own.
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("splice outlived its linger")
            .unwrap()
            .unwrap();
    }
}
