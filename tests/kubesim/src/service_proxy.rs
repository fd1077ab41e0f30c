//! kube-proxy for the simulated cluster: a service's ClusterIP really listens, and each new
//! TCP connection or UDP flow goes to one of the service's current endpoints, in turn.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub type Endpoints = Arc<dyn Fn() -> Vec<SocketAddr> + Send + Sync>;

/// A UDP flow with no traffic this long is forgotten, as conntrack forgets it.
const UDP_IDLE: Duration = Duration::from_secs(30);

pub enum Protocol {
    Tcp,
    Udp,
}

pub struct ServiceProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ServiceProxy {
    pub async fn start(
        ip: IpAddr,
        port: u16,
        proto: Protocol,
        endpoints: Endpoints,
    ) -> io::Result<ServiceProxy> {
        let next = Arc::new(AtomicUsize::new(0));
        let pick = move || {
            let all = endpoints();
            (!all.is_empty()).then(|| all[next.fetch_add(1, Ordering::Relaxed) % all.len()])
        };
        let (addr, task) = match proto {
            Protocol::Tcp => {
                let listener = match bind_again(|| TcpListener::bind((ip, port))).await {
                    Ok(l) => l,
                    Err(_) => TcpListener::bind((ip, 0)).await?,
                };
                let addr = listener.local_addr()?;
                (addr, tokio::spawn(tcp(listener, pick)))
            }
            Protocol::Udp => {
                let socket = match bind_again(|| UdpSocket::bind((ip, port))).await {
                    Ok(s) => s,
                    Err(_) => UdpSocket::bind((ip, 0)).await?,
                };
                let addr = socket.local_addr()?;
                (addr, tokio::spawn(udp(Arc::new(socket), pick)))
            }
        };
        Ok(ServiceProxy { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds, trying again for a moment while the proxy being replaced still holds the address
/// (its task is aborted, and lets go of its socket when the runtime next polls it).
async fn bind_again<T, F, Fut>(bind: F) -> io::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = bind().await;
    for _ in 0..50 {
        match &last {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                last = bind().await;
            }
            _ => break,
        }
    }
    last
}

impl Drop for ServiceProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tcp(listener: TcpListener, pick: impl Fn() -> Option<SocketAddr> + Send + 'static) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        // No endpoint: the connection is reset, as kube-proxy's REJECT rule answers for a
        // Service without Ready pods.
        let Some(endpoint) = pick() else {
            reset(client);
            continue;
        };
        tokio::spawn(async move {
            let Ok(mut backend) = TcpStream::connect(endpoint).await else {
                return reset(client);
            };
            // kube-proxy only rewrites addresses, so a reset from either side reaches the
            // other as a reset, never as a clean end.
            if tokio::io::copy_bidirectional(&mut client, &mut backend)
                .await
                .is_err()
            {
                reset(client);
                reset(backend);
            }
        });
    }
}

/// Closes with a reset (SO_LINGER 0).
fn reset(conn: TcpStream) {
    let _ = conn.set_zero_linger();
}

async fn udp(socket: Arc<UdpSocket>, pick: impl Fn() -> Option<SocketAddr> + Send + 'static) {
    // One upstream socket per client address, so replies find their way back.
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    while let Ok((n, client)) = socket.recv_from(&mut buf).await {
        let existing = flows.lock().await.get(&client).cloned();
        let upstream = match existing {
            Some(upstream) => upstream,
            None => {
                let Some(endpoint) = pick() else { continue };
                let Ok(upstream) = UdpSocket::bind(SocketAddr::new(endpoint.ip(), 0)).await else {
                    continue;
                };
                if upstream.connect(endpoint).await.is_err() {
                    continue;
                }
                let upstream = Arc::new(upstream);
                flows.lock().await.insert(client, upstream.clone());
                let (socket, flows, back) = (socket.clone(), flows.clone(), upstream.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, back.recv(&mut buf)).await
                    {
                        let _ = socket.send_to(&buf[..n], client).await;
                    }
                    flows.lock().await.remove(&client);
                });
                upstream
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}
