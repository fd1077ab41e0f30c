//! Temporary stand-ins for modules other helpers are writing (see build.rs).

#[cfg(not(kubesim_has_addr))]
pub mod addr {
    #![allow(
        clippy::type_complexity,
        clippy::new_without_default,
        dead_code,
        unused_imports
    )]
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    pub struct AddressPool(AtomicU32, AtomicU32);
    impl AddressPool {
        pub fn new() -> Self {
            Self(
                AtomicU32::new(rand::random_range(1..60_000)),
                AtomicU32::new(rand::random_range(1..60_000)),
            )
        }
        pub fn pod_ip(&self) -> Ipv4Addr {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ipv4Addr::new(127, 244, (n >> 8) as u8, n as u8)
        }
        pub fn cluster_ip(&self) -> Ipv4Addr {
            let n = self.1.fetch_add(1, Ordering::SeqCst);
            Ipv4Addr::new(127, 96, (n >> 8) as u8, n as u8)
        }
    }
}

#[cfg(not(kubesim_has_backend))]
pub mod backend {
    #![allow(
        clippy::type_complexity,
        clippy::new_without_default,
        dead_code,
        unused_imports
    )]
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    pub enum BackendKind {
        TcpEcho,
        Http,
        UdpEcho,
        Dns(Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>),
    }

    pub struct Backend(SocketAddr, tokio::task::JoinHandle<()>);
    impl Backend {
        pub async fn start(
            kind: BackendKind,
            ip: IpAddr,
            port: u16,
            pod_name: &str,
        ) -> io::Result<Backend> {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let l = match tokio::net::TcpListener::bind((ip, port)).await {
                Ok(l) => l,
                Err(_) => tokio::net::TcpListener::bind((ip, 0)).await?,
            };
            let addr = l.local_addr()?;
            let http = matches!(kind, BackendKind::Http);
            let body = format!("{pod_name}\n");
            let task = tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    let body = body.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        if http {
                            let _ = s.read(&mut buf).await;
                            let r = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = s.write_all(r.as_bytes()).await;
                            return;
                        }
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
            Ok(Backend(addr, task))
        }
        pub fn addr(&self) -> SocketAddr {
            self.0
        }
        pub fn kill(&self) {
            self.1.abort();
        }
    }
}

#[cfg(not(kubesim_has_dns))]
pub mod dns {
    #![allow(
        clippy::type_complexity,
        clippy::new_without_default,
        dead_code,
        unused_imports
    )]
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    pub struct DnsServer(SocketAddr);
    impl DnsServer {
        pub async fn start(
            ip: IpAddr,
            port: u16,
            _lookup: Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>,
        ) -> io::Result<DnsServer> {
            let s = std::net::UdpSocket::bind((ip, port))?;
            Ok(DnsServer(s.local_addr()?))
        }
        pub fn addr(&self) -> SocketAddr {
            self.0
        }
    }
}

#[cfg(not(kubesim_has_service_proxy))]
pub mod service_proxy {
    #![allow(
        clippy::type_complexity,
        clippy::new_without_default,
        dead_code,
        unused_imports
    )]
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    pub enum Protocol {
        Tcp,
        Udp,
    }
    pub struct ServiceProxy(SocketAddr);
    impl ServiceProxy {
        pub async fn start(
            ip: IpAddr,
            port: u16,
            _p: Protocol,
            _e: Arc<dyn Fn() -> Vec<SocketAddr> + Send + Sync>,
        ) -> io::Result<ServiceProxy> {
            Ok(ServiceProxy(SocketAddr::new(ip, port)))
        }
        pub fn addr(&self) -> SocketAddr {
            self.0
        }
    }
}

#[cfg(not(kubesim_has_process))]
pub mod process {
    #![allow(
        clippy::type_complexity,
        clippy::new_without_default,
        dead_code,
        unused_imports
    )]
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    pub struct LocalProcess(std::process::Child);
    impl LocalProcess {
        pub fn spawn(
            program: &Path,
            args: &[String],
            env: &[(String, String)],
            _name: &str,
        ) -> io::Result<LocalProcess> {
            let mut c = std::process::Command::new(program);
            c.args(args).envs(env.iter().map(|(k, v)| (k, v)));
            Ok(LocalProcess(c.spawn()?))
        }
        pub fn kill(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        pub fn is_running(&mut self) -> bool {
            matches!(self.0.try_wait(), Ok(None))
        }
    }
}
