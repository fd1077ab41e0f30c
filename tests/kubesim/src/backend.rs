//! What a simulated pod's container really runs: built-in servers bound on the pod's IP.
//!
//! `kubesim/echo` (TCP echo, fast enough for throughput benchmarks), `kubesim/http` (answers
//! every request with the pod's name; keep-alive; `GET /bytes/N` streams N bytes, `POST
//! /echo` returns the body), `kubesim/udp-echo`, and `kubesim/dns` (A records).

use crate::dns::{Lookup, answer};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

pub enum BackendKind {
    TcpEcho,
    Http,
    UdpEcho,
    Dns(Lookup),
}

/// A running server; `kill` (or drop) closes its listener and every open connection.
pub struct Backend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    /// Binds `ip:port`, or `ip:0` when that port is taken or needs privileges.
    pub async fn start(
        kind: BackendKind,
        ip: IpAddr,
        port: u16,
        pod_name: &str,
    ) -> io::Result<Backend> {
        let name = pod_name.to_string();
        let (addr, task) = match kind {
            BackendKind::TcpEcho => tcp(ip, port, |conn, _| echo(conn), name).await?,
            BackendKind::Http => tcp(ip, port, http, name).await?,
            BackendKind::UdpEcho => {
                let socket = bind_udp(ip, port).await?;
                let addr = socket.local_addr()?;
                (addr, tokio::spawn(udp_echo(socket)))
            }
            BackendKind::Dns(lookup) => {
                let socket = bind_udp(ip, port).await?;
                let addr = socket.local_addr()?;
                (addr, tokio::spawn(udp_dns(socket, lookup)))
            }
        };
        Ok(Backend { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tcp<F, Fut>(
    ip: IpAddr,
    port: u16,
    serve: F,
    name: String,
) -> io::Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(TcpStream, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = match TcpListener::bind((ip, port)).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind((ip, 0)).await?,
    };
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Connections live in this set, so aborting the accept loop closes them all, as
        // when a container dies.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((conn, _)) => {
                        let _ = conn.set_nodelay(true);
                        connections.spawn(serve(conn, name.clone()));
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok((addr, task))
}

async fn bind_udp(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    match UdpSocket::bind((ip, port)).await {
        Ok(socket) => Ok(socket),
        Err(_) => UdpSocket::bind((ip, 0)).await,
    }
}

async fn echo(conn: TcpStream) {
    let (mut rd, mut wr) = conn.into_split();
    // Large reads keep per-byte work out of throughput figures.
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if wr.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// HTTP/1.1 with keep-alive: the pod's name for any path, `/bytes/N` for N bytes, `POST
/// /echo` for the body back.
async fn http(conn: TcpStream, name: String) {
    let (rd, mut wr) = conn.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut request_line = String::new();
        if rd.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut body = vec![0u8; length.min(64 << 20)];
        if rd.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let connection = if close { "close" } else { "keep-alive" };
        let sent = if let Some(n) = path
            .strip_prefix("/bytes/")
            .and_then(|n| n.parse::<u64>().ok())
        {
            send_bytes(&mut wr, n, connection).await
        } else {
            let reply = if method == "POST" && path == "/echo" {
                body
            } else {
                format!("{name}\n").into_bytes()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n",
                reply.len()
            );
            match wr.write_all(head.as_bytes()).await {
                Ok(()) => wr.write_all(&reply).await,
                Err(e) => Err(e),
            }
        };
        if sent.is_err() || close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

async fn send_bytes(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    n: u64,
    connection: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {n}\r\nconnection: {connection}\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await?;
    let chunk = vec![b'x'; 256 * 1024];
    let mut left = n;
    while left > 0 {
        let take = left.min(chunk.len() as u64) as usize;
        wr.write_all(&chunk[..take]).await?;
        left -= take as u64;
    }
    Ok(())
}

async fn udp_echo(socket: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        let _ = socket.send_to(&buf[..n], peer).await;
    }
}

async fn udp_dns(socket: UdpSocket, lookup: Lookup) {
    let mut buf = vec![0u8; 4096];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        if let Some(reply) = answer(&buf[..n], &*lookup) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}
