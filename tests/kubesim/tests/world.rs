//! The servers inside simulated pods and services, over real sockets.

use kubesim::backend::{Backend, BackendKind};
use kubesim::service_proxy::{Protocol, ServiceProxy};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const LONG: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request on an open connection; returns the body.
async fn request(
    conn: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<u8> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: pod\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await.unwrap();
    conn.get_mut().write_all(body).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut reply = vec![0u8; length];
    conn.read_exact(&mut reply).await.unwrap();
    reply
}

#[tokio::test]
async fn http_keeps_the_connection_and_serves_names_bytes_and_echo() {
    let backend = Backend::start(BackendKind::Http, LOCAL, 0, "web-1")
        .await
        .unwrap();
    let mut conn = BufReader::new(TcpStream::connect(backend.addr()).await.unwrap());
    assert_eq!(request(&mut conn, "GET", "/", b"").await, b"web-1\n");
    assert_eq!(
        request(&mut conn, "GET", "/bytes/300000", b"").await.len(),
        300_000
    );
    assert_eq!(
        request(&mut conn, "POST", "/echo", b"hello").await,
        b"hello"
    );
}

#[tokio::test]
async fn kill_closes_open_connections_and_the_listener() {
    let backend = Backend::start(BackendKind::TcpEcho, LOCAL, 0, "db-0")
        .await
        .unwrap();
    let mut conn = TcpStream::connect(backend.addr()).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    conn.read_exact(&mut buf).await.unwrap();
    backend.kill();
    let read = tokio::time::timeout(LONG, conn.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let deadline = tokio::time::Instant::now() + LONG;
    while TcpStream::connect(backend.addr()).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_taken_port_falls_back_to_a_free_one() {
    let first = Backend::start(BackendKind::TcpEcho, LOCAL, 0, "a")
        .await
        .unwrap();
    let second = Backend::start(BackendKind::TcpEcho, LOCAL, first.addr().port(), "b")
        .await
        .unwrap();
    assert_ne!(second.addr(), first.addr());
}

#[tokio::test]
async fn the_service_proxy_balances_and_follows_its_endpoints() {
    let a = Backend::start(BackendKind::Http, LOCAL, 0, "a")
        .await
        .unwrap();
    let b = Backend::start(BackendKind::Http, LOCAL, 0, "b")
        .await
        .unwrap();
    let endpoints: Arc<Mutex<Vec<SocketAddr>>> = Arc::new(Mutex::new(vec![a.addr(), b.addr()]));
    let current = endpoints.clone();
    let proxy = ServiceProxy::start(
        LOCAL,
        0,
        Protocol::Tcp,
        Arc::new(move || current.lock().unwrap().clone()),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (_, body) = kubesim::testing::http_get(proxy.addr(), "/").await.unwrap();
        seen.push(body.trim().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
    *endpoints.lock().unwrap() = vec![b.addr()];
    for _ in 0..3 {
        let (_, body) = kubesim::testing::http_get(proxy.addr(), "/").await.unwrap();
        assert_eq!(body.trim(), "b");
    }
}

#[tokio::test]
async fn udp_through_the_service_proxy_keeps_clients_apart() {
    let echo = Backend::start(BackendKind::UdpEcho, LOCAL, 0, "u")
        .await
        .unwrap();
    let target = echo.addr();
    let proxy = ServiceProxy::start(LOCAL, 0, Protocol::Udp, Arc::new(move || vec![target]))
        .await
        .unwrap();
    let one = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let two = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    for round in 0..5u8 {
        one.send_to(&[1, round], proxy.addr()).await.unwrap();
        two.send_to(&[2, round], proxy.addr()).await.unwrap();
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(LONG, one.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], &[1, round]);
        let n = tokio::time::timeout(LONG, two.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], &[2, round]);
    }
}

#[tokio::test]
async fn the_dns_server_answers_over_udp_and_tcp() {
    let lookup: kubesim::dns::Lookup = Arc::new(|name: &str| {
        (name == "web.demo.svc.cluster.local").then(|| vec!["127.96.1.2".parse().unwrap()])
    });
    let server = kubesim::dns::DnsServer::start(LOCAL, 0, lookup)
        .await
        .unwrap();
    let mut query = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["web", "demo", "svc", "cluster", "local"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    socket.send_to(&query, server.addr()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(LONG, socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[n - 4..n], &[127, 96, 1, 2]);
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(&(query.len() as u16).to_be_bytes())
        .await
        .unwrap();
    tcp.write_all(&query).await.unwrap();
    let len = tcp.read_u16().await.unwrap();
    let mut reply = vec![0u8; usize::from(len)];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[reply.len() - 4..], &[127, 96, 1, 2]);
}
