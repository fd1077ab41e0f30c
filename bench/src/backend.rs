//! The pod's servers, as plain as a server can be so that they are never what is measured:
//! echo (latency), sink (upload: reads to EOF, answers the byte count), source (download:
//! reads a byte count, sends that many bytes) and UDP echo.

use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

pub const ECHO: u16 = 9000;
pub const SINK: u16 = 9001;
pub const SOURCE: u16 = 9002;
pub const UDP_ECHO: u16 = 9003;

/// Large enough that a copy costs a handful of syscalls per MiB.
pub const BUF: usize = 256 * 1024;

/// A listener with the deepest backlog the kernel allows, as Go servers have: with tokio's
/// 1024, the 1000 connections of figure 4 arriving at once lost SYNs now and then, and the
/// second each retry costs swamped what the figure measures.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

pub async fn run(ip: IpAddr) -> anyhow::Result<()> {
    let echo = listen(SocketAddr::new(ip, ECHO))?;
    let sink = listen(SocketAddr::new(ip, SINK))?;
    let source = listen(SocketAddr::new(ip, SOURCE))?;
    let udp = UdpSocket::bind(SocketAddr::new(ip, UDP_ECHO)).await?;
    tokio::try_join!(
        accept(echo, echo_one),
        accept(sink, sink_one),
        accept(source, source_one),
        udp_echo(udp),
    )?;
    Ok(())
}

async fn accept<F, Fut>(listener: TcpListener, handle: F) -> anyhow::Result<()>
where
    F: Fn(TcpStream) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = handle(stream).await;
        });
    }
}

async fn echo_one(mut stream: TcpStream) -> std::io::Result<()> {
    let (mut r, mut w) = stream.split();
    tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await
}

async fn sink_one(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut total: u64 = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    stream.write_all(&total.to_be_bytes()).await?;
    stream.shutdown().await
}

async fn source_one(mut stream: TcpStream) -> std::io::Result<()> {
    let total = stream.read_u64().await?;
    let buf = vec![0x5au8; BUF];
    let mut sent: u64 = 0;
    while sent < total {
        let n = (total - sent).min(BUF as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    stream.shutdown().await
}

async fn udp_echo(socket: UdpSocket) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
    }
}
