//! The pod's servers, as plain as a server can be so that they are never what is measured:
//! echo (latency), sink (upload: reads to EOF, answers the byte count), source (download:
//! reads a byte count, sends that many bytes), UDP echo, an HTTP/1.1 server (keep-alive;
//! `GET /bytes/N`, `POST` of any body, anything else a two-byte answer), and whoami (the
//! pod's IP).

use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

pub const ECHO: u16 = 9000;
pub const SINK: u16 = 9001;
pub const SOURCE: u16 = 9002;
pub const UDP_ECHO: u16 = 9003;
pub const HTTP: u16 = 9004;
/// Answers the pod's IP and closes: which pod a forward reached.
pub const WHOAMI: u16 = 9005;

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
    let http = listen(SocketAddr::new(ip, HTTP))?;
    let whoami = listen(SocketAddr::new(ip, WHOAMI))?;
    let udp = UdpSocket::bind(SocketAddr::new(ip, UDP_ECHO)).await?;
    tokio::try_join!(
        accept(echo, echo_one),
        accept(sink, sink_one),
        accept(source, source_one),
        accept(http, http_one),
        accept(whoami, move |mut stream| async move {
            stream.write_all(ip.to_string().as_bytes()).await?;
            stream.shutdown().await
        }),
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
    send(&mut stream, total).await?;
    stream.shutdown().await
}

/// `total` bytes of filler.
async fn send(stream: &mut (impl AsyncWriteExt + Unpin), total: u64) -> std::io::Result<()> {
    let buf = vec![0x5au8; BUF];
    let mut sent: u64 = 0;
    while sent < total {
        let n = (total - sent).min(BUF as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    Ok(())
}

/// Requests one after another on a connection until the client closes it.
async fn http_one(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::with_capacity(BUF, read);
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut words = line.split_whitespace();
        let (method, path) = (
            words.next().unwrap_or_default().to_owned(),
            words.next().unwrap_or_default().to_owned(),
        );
        let mut length: u64 = 0;
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        // A body is read and counted, never kept.
        let mut left = length;
        while left > 0 {
            let chunk = read.fill_buf().await?;
            if chunk.is_empty() {
                return Ok(());
            }
            let n = chunk.len().min(left as usize);
            read.consume(n);
            left -= n as u64;
        }
        let size: u64 = match (method.as_str(), path.strip_prefix("/bytes/")) {
            ("GET", Some(n)) => n.parse().unwrap_or(0),
            _ => 2,
        };
        write
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        send(&mut write, size).await?;
    }
}

async fn udp_echo(socket: UdpSocket) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
    }
}
