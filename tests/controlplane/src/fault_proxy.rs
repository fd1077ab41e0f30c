//! A TCP proxy in front of the API server, for the faults a laptop's network makes: every
//! connection dropped at once, connections that stall (no byte goes through), and latency.
//! TLS passes through untouched, so clients verify the API server itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct State {
    stalled: AtomicBool,
    latency_ms: AtomicU64,
    accepted: AtomicU64,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    /// Cancelled (and replaced) to drop every open connection.
    drop_all: Arc<std::sync::Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_on(([127, 0, 0, 1], 0).into(), upstream).await
    }

    /// Listening on `bind`: two proxies on one port of two loopback addresses are one API
    /// server's name resolving to one address, then to the other.
    pub async fn start_on(bind: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let drop_all = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (s, d, st) = (state.clone(), drop_all.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = st.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                s.accepted.fetch_add(1, Ordering::Relaxed);
                let cut = d.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = pipe(cr, sw, s.clone()) => {}
                        _ = pipe(sr, cw, s) => {}
                    }
                });
            }
        });
        Ok(FaultProxy {
            addr,
            state,
            drop_all,
            stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`: the API server through this proxy.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Resets every open connection, as a network change does.
    pub fn drop_connections(&self) {
        let mut token = self.drop_all.lock().unwrap_or_else(|e| e.into_inner());
        token.cancel();
        *token = CancellationToken::new();
    }

    /// While stalled, no byte goes through either way (connections stay open).
    pub fn stall(&self, stalled: bool) {
        self.state.stalled.store(stalled, Ordering::Relaxed);
    }

    /// Delay added to every chunk, each way.
    pub fn latency(&self, delay: Duration) {
        self.state
            .latency_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.drop_connections();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        while state.stalled.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delay = state.latency_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
