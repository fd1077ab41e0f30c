//! The relay binary end to end: real sockets, real processes, its own settings shortened so
//! that timeouts happen within a test.

use futures::{SinkExt, StreamExt};
use kftray_relay::attached::{self, Ends, Tally};
use kftray_relay::io::{FrameCodec, read_reply};
use kftray_relay::protocol::{Destination, Frame, Reply, Request, Status, Transport};
use kubesim::backend::{Backend, BackendKind};
use kubesim::dns::DnsServer;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::codec::Framed;

/// Generous, for a loaded 2-core machine; only a guard against hanging.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The user the relay's image runs as.
const RELAY_USER: u32 = 65532;

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The relay binary, run as its image runs it: as root (a test machine's usual user here) the
/// relay would refuse to serve, so it runs as user 65532, from a link in a folder that user
/// can reach (the build's folder may be under /root), kept as long as the relay runs.
fn relay_command() -> (Command, Option<tempfile::TempDir>) {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_relay-server"));
    if !running_as_root() {
        return (Command::new(binary), None);
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("relay-image-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let linked = dir.path().join("relay-server");
    if std::fs::hard_link(binary, &linked).is_err() {
        std::fs::copy(binary, &linked).unwrap();
    }
    let mut command = Command::new(&linked);
    std::os::unix::process::CommandExt::uid(&mut command, RELAY_USER);
    std::os::unix::process::CommandExt::gid(&mut command, RELAY_USER);
    (command, Some(dir))
}

/// The relay-server binary on a free loopback port, with its log kept.
struct Relay {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _image: Option<tempfile::TempDir>,
}

impl Relay {
    fn start(env: &[(&str, String)]) -> Relay {
        let (mut command, image) = relay_command();
        let mut child = command
            .env("RELAY_LISTEN", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(';').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                kept.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(TIMEOUT)
            .expect("the relay never said where it listens")
            .parse()
            .unwrap();
        Relay {
            child,
            addr,
            log,
            _image: image,
        }
    }

    /// How the relay exited, once it has (within the tests' deadline).
    async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "never exited");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `text`.
    async fn logged(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !self.log().contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the relay never logged {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a request and reads the reply.
    async fn request(&self, request: Request) -> (TcpStream, Reply) {
        let mut conn = TcpStream::connect(self.addr).await.unwrap();
        conn.write_all(&request.encode()).await.unwrap();
        let reply = tokio::time::timeout(TIMEOUT, read_reply(&mut conn))
            .await
            .expect("no reply")
            .unwrap();
        (conn, reply)
    }

    async fn connect(&self, transport: Transport, to: Destination) -> (TcpStream, Reply) {
        self.request(Request::Connect {
            id: 1,
            transport,
            to,
        })
        .await
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn to(addr: SocketAddr) -> Destination {
    Destination::new(&addr.ip().to_string(), addr.port())
}

async fn udp_echo() -> Backend {
    Backend::start(
        BackendKind::UdpEcho,
        "127.0.0.1".parse().unwrap(),
        0,
        "echo",
    )
    .await
    .unwrap()
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Sends a datagram on a flow and waits for the next one back.
async fn round_trip(flow: &mut Framed<TcpStream, FrameCodec>, datagram: &[u8]) -> Vec<u8> {
    flow.send(Frame::Datagram(datagram)).await.unwrap();
    loop {
        match tokio::time::timeout(TIMEOUT, flow.next()).await.unwrap() {
            Some(Ok(Frame::Datagram(back))) => return back.to_vec(),
            Some(Ok(_)) => continue,
            other => panic!("flow ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn tcp_is_carried_both_ways_with_half_close() {
    // A server that reads the whole request, then answers at length.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = server.accept().await.unwrap();
        let mut request = Vec::new();
        conn.read_to_end(&mut request).await.unwrap();
        let mut reply = b"got ".to_vec();
        reply.extend_from_slice(&request);
        reply.extend(std::iter::repeat_n(b'.', 200_000));
        conn.write_all(&reply).await.unwrap();
    });
    let relay = Relay::start(&[]);
    let (mut conn, reply) = relay.connect(Transport::Tcp, to(server_addr)).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    assert_eq!(reply.peer, Some(server_addr));
    conn.write_all(b"hello").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got.starts_with(b"got hello"));
    assert_eq!(got.len(), 9 + 200_000);
}

#[tokio::test]
async fn each_failure_has_its_status() {
    let known: IpAddr = "127.0.0.1".parse().unwrap();
    let echo = Backend::start(BackendKind::TcpEcho, known, 0, "echo")
        .await
        .unwrap();
    let lookup: kubesim::dns::Lookup =
        Arc::new(move |name: &str| (name == "echo.cluster.test").then(|| vec![known]));
    let dns = DnsServer::start(known, 0, lookup).await.unwrap();
    // A nameserver that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(&[("RELAY_NAMESERVER", dns.addr().to_string())]);

    let (mut conn, reply) = relay
        .connect(
            Transport::Tcp,
            Destination::new("echo.cluster.test", echo.addr().port()),
        )
        .await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    assert_eq!(reply.peer, Some(echo.addr()));
    conn.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");

    let (_, reply) = relay
        .connect(Transport::Tcp, Destination::new("nope.cluster.test", 80))
        .await;
    assert_eq!(reply.status, Status::NoSuchHost, "{reply:?}");
    assert!(reply.message.contains("nope.cluster.test"), "{reply:?}");
    let (_, reply) = relay
        .connect(Transport::Udp, Destination::new("nope.cluster.test", 53))
        .await;
    assert_eq!(reply.status, Status::NoSuchHost, "{reply:?}");

    let (_, reply) = relay.connect(Transport::Tcp, to(closed_port())).await;
    assert_eq!(reply.status, Status::ConnectionRefused, "{reply:?}");

    let slow = Relay::start(&[
        ("RELAY_NAMESERVER", silent.local_addr().unwrap().to_string()),
        ("RELAY_RESOLVE_TIMEOUT", "1s".into()),
    ]);
    let (_, reply) = slow
        .connect(Transport::Tcp, Destination::new("db.cluster.test", 5432))
        .await;
    assert_eq!(reply.status, Status::ResolveTimeout, "{reply:?}");
}

#[tokio::test]
async fn bad_requests_close_only_their_own_connection() {
    let echo = udp_echo().await;
    let relay = Relay::start(&[("RELAY_REQUEST_TIMEOUT", "1s".into())]);
    let (conn, reply) = relay.request(Request::Session { id: 9 }).await;
    assert_eq!(reply.status, Status::Connected);
    let mut session = Framed::new(conn, FrameCodec);
    let (conn, reply) = relay.connect(Transport::Udp, to(echo.addr())).await;
    assert_eq!(reply.status, Status::Connected);
    let mut flow = Framed::new(conn, FrameCodec);

    // Garbage, a wrong version, an unknown command: each answered, each closed.
    let mut wrong_version = Request::Session { id: 1 }.encode();
    wrong_version[2] = 2;
    let mut unknown_command = Request::Session { id: 1 }.encode();
    unknown_command[3] = 77;
    for (bytes, status) in [
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), Status::BadRequest),
        (wrong_version, Status::UnsupportedVersion),
        (unknown_command, Status::BadRequest),
    ] {
        let mut conn = TcpStream::connect(relay.addr).await.unwrap();
        conn.write_all(&bytes).await.unwrap();
        let reply = read_reply(&mut conn).await.unwrap();
        assert_eq!(reply.status, status, "{reply:?}");
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut rest))
            .await
            .expect("the bad connection stayed open")
            .unwrap();
    }
    relay
        .logged("bad request: not the kftray relay protocol")
        .await;
    // Half a request, then silence: closed at the request deadline, the rest untouched.
    let mut stalled = TcpStream::connect(relay.addr).await.unwrap();
    stalled
        .write_all(&Request::Session { id: 1 }.encode()[..5])
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, stalled.read_to_end(&mut rest))
        .await
        .expect("a stalled request held its connection")
        .unwrap();
    relay.logged("no request within").await;
    // A bad frame on a flow closes that flow.
    let (conn, _) = relay.connect(Transport::Udp, to(echo.addr())).await;
    let mut broken = Framed::new(conn, FrameCodec);
    broken.get_mut().write_all(&[0xee, 0, 0]).await.unwrap();
    assert!(
        tokio::time::timeout(TIMEOUT, broken.next())
            .await
            .unwrap()
            .is_none()
    );

    // The session and the flow opened before all this still work.
    session.send(Frame::<&[u8]>::Ping(77)).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
    assert!(matches!(pong, Some(Ok(Frame::Pong(77)))), "{pong:?}");
    assert_eq!(round_trip(&mut flow, b"still here").await, b"still here");
}

#[tokio::test]
async fn udp_flows_carry_datagrams_and_close_when_idle() {
    let echo = udp_echo().await;
    let relay = Relay::start(&[("RELAY_FLOW_IDLE", "2s".into())]);
    let (conn, reply) = relay.connect(Transport::Udp, to(echo.addr())).await;
    assert_eq!(reply.status, Status::Connected);
    assert_eq!(reply.peer, Some(echo.addr()));
    let mut flow = Framed::new(conn, FrameCodec);
    for n in 0..20u32 {
        let datagram = format!("datagram {n}");
        assert_eq!(
            round_trip(&mut flow, datagram.as_bytes()).await,
            datagram.as_bytes()
        );
    }
    // An empty datagram is a datagram too.
    assert_eq!(round_trip(&mut flow, b"").await, b"");
    // A ping on a flow is answered and does not count as traffic.
    flow.send(Frame::<&[u8]>::Ping(5)).await.unwrap();
    let end = tokio::time::timeout(TIMEOUT, async {
        let mut pongs = 0;
        while let Some(frame) = flow.next().await {
            if matches!(frame, Ok(Frame::Pong(5))) {
                pongs += 1;
            }
        }
        pongs
    })
    .await
    .expect("an idle flow was never closed");
    assert_eq!(end, 1);
    relay.logged("closed (idle for").await;
}

#[tokio::test]
async fn sessions_answer_heartbeats_and_silent_ones_are_closed() {
    let relay = Relay::start(&[("RELAY_HEARTBEAT_TIMEOUT", "2s".into())]);
    let (conn, reply) = relay.request(Request::Session { id: 3 }).await;
    assert_eq!(reply.status, Status::Connected);
    assert_eq!(reply.peer, None);
    let mut session = Framed::new(conn, FrameCodec);
    for value in [1u64, u64::MAX, 42] {
        session.send(Frame::<&[u8]>::Ping(value)).await.unwrap();
        let pong = tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
        assert!(
            matches!(pong, Some(Ok(Frame::Pong(v))) if v == value),
            "{pong:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Silence past the timeout closes it.
    let closed = tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
    assert!(closed.is_none(), "{closed:?}");
    relay.logged("no heartbeat for").await;
}

#[tokio::test]
async fn the_relay_exits_when_no_client_is_left() {
    let mut relay = Relay::start(&[
        ("RELAY_IDLE_EXIT", "2s".into()),
        ("RELAY_HEARTBEAT_TIMEOUT", "5s".into()),
    ]);
    let (conn, _) = relay.request(Request::Session { id: 1 }).await;
    let mut session = Framed::new(conn, FrameCodec);
    // Twice the idle limit with a live session: still running.
    for _ in 0..16 {
        session.send(Frame::<&[u8]>::Ping(1)).await.unwrap();
        tokio::time::timeout(TIMEOUT, session.next()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(relay.child.try_wait().unwrap().is_none(), "{}", relay.log());
    drop(session);
    let status = relay.exited().await;
    assert!(status.success(), "{status}");
    assert!(
        relay.log().contains("no client session for"),
        "{}",
        relay.log()
    );
}

#[tokio::test]
async fn past_the_connection_limit_the_answer_is_busy() {
    let relay = Relay::start(&[("RELAY_MAX_CONNECTIONS", "1".into())]);
    let (_held, reply) = relay.request(Request::Session { id: 1 }).await;
    assert_eq!(reply.status, Status::Connected);
    let (_, reply) = relay.request(Request::Session { id: 2 }).await;
    assert_eq!(reply.status, Status::Busy, "{reply:?}");
}

#[test]
fn it_refuses_to_serve_as_root() {
    if !running_as_root() {
        eprintln!("not root here: the refusal cannot be seen");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_relay-server"))
        .env("RELAY_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("does not run as root") && said.contains("runAsUser"),
        "{said}"
    );
}

#[tokio::test]
async fn the_probe_command_checks_a_live_relay() {
    let relay = Relay::start(&[]);
    let probe = |listen: String| {
        // The probe serves nobody: root may run it.
        Command::new(env!("CARGO_BIN_EXE_relay-server"))
            .arg("probe")
            .env("RELAY_LISTEN", listen)
            .output()
            .unwrap()
    };
    let addr = relay.addr.to_string();
    let ok = tokio::task::spawn_blocking(move || probe(addr))
        .await
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let nothing = closed_port().to_string();
    let failed = tokio::task::spawn_blocking(move || probe(nothing))
        .await
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("relay-server probe"));
}

// Reverse forwards: listen, incoming, attach.

/// Settings for a relay whose listens open on loopback, as the tests' pods are loopback IPs.
fn exposed(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("RELAY_EXPOSE_ADDRESS", "127.0.0.1".to_string())];
    env.extend(extra.iter().map(|&(k, v)| (k, v.to_string())));
    env
}

/// An echo server on the "kftray side": echoes until the end of what it is sent, then adds
/// "bye" and finishes, so that a half-closed connection is seen still answering.
async fn echo_then_bye() -> SocketAddr {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = server.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut read, mut write) = conn.split();
                tokio::io::copy(&mut read, &mut write).await.unwrap();
                write.write_all(b"bye").await.unwrap();
                write.shutdown().await.unwrap();
            });
        }
    });
    addr
}

/// Opens a listen on `port` and checks its reply.
async fn open_listen(relay: &Relay, port: u16) -> Framed<TcpStream, FrameCodec> {
    let (conn, reply) = relay.request(Request::Listen { id: 1, port }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    assert_eq!(
        reply.peer,
        Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port))
    );
    Framed::new(conn, FrameCodec)
}

/// The next incoming frame of a listen.
async fn next_incoming(listen: &mut Framed<TcpStream, FrameCodec>) -> (u32, SocketAddr) {
    match tokio::time::timeout(TIMEOUT, listen.next()).await {
        Ok(Some(Ok(Frame::Incoming { connection, from }))) => (connection, from),
        other => panic!("no incoming frame: {other:?}"),
    }
}

/// Waits for a connection the relay should reset: a reset or an end, quickly, not a hang.
async fn is_reset(conn: &mut TcpStream, within: Duration) {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(within, conn.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(Ok(n)) => panic!("read {n} bytes from a connection that was never attached"),
        Err(_) => panic!("the connection was not reset within {within:?}"),
    }
}

/// Connects until the port refuses (the relay closes it once it notices the listen ended).
async fn refused_soon(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{addr} still open: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_listen_carries_in_cluster_connections_to_attach_streams() {
    let relay = Relay::start(&exposed(&[]));
    let echo = echo_then_bye().await;
    let port = closed_port().port();
    let mut listen = open_listen(&relay, port).await;
    relay.logged(&format!("listen on 127.0.0.1:{port}")).await;

    // An in-cluster client connects to the exposed port.
    let client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let (connection, from) = next_incoming(&mut listen).await;
    assert_eq!(from, client_addr);

    // kftray attaches it and carries it to its local echo server, each side's end told on
    // the listen.
    let (mut attached, reply) = relay.request(Request::Attach { id: connection }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    assert_eq!(reply.peer, Some(client_addr));
    let (tell, mut to_tell) = tokio::sync::mpsc::unbounded_channel();
    let (deliver, told) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let local = TcpStream::connect(echo).await.unwrap();
        let ends = Ends {
            tell: Box::new(move |bytes| tell.send(bytes).is_ok()),
            told,
        };
        let (sent, received) = (AtomicU64::new(0), AtomicU64::new(0));
        let tally = Tally {
            sent: &sent,
            received: &received,
        };
        attached::splice(local, &mut attached, ends, tally, None).await
    });

    // 1 MiB there and back; the client finishes sending first and still gets the answer.
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = client.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    let reading = tokio::time::timeout(TIMEOUT, read.read_to_end(&mut back));
    tokio::pin!(reading);
    let mut deliver = Some(deliver);
    loop {
        tokio::select! {
            done = &mut reading => {
                done.expect("the echo never ended").unwrap();
                break;
            }
            frame = listen.next() => match frame {
                Some(Ok(Frame::End { connection: c, bytes })) if c == connection => {
                    assert_eq!(bytes, data.len() as u64);
                    deliver.take().expect("one end").send(bytes).unwrap();
                }
                other => panic!("not the client's end: {other:?}"),
            },
            Some(bytes) = to_tell.recv() => {
                listen.send(Frame::<&[u8]>::End { connection, bytes }).await.unwrap();
            }
        }
    }
    writer.await.unwrap();
    assert_eq!(back.len(), data.len() + 3);
    assert!(back.starts_with(&data) && back.ends_with(b"bye"));
    relay
        .logged(&format!(
            "attach {client_addr} on port {port} done: 1048576 bytes from the client, 1048579 to it"
        ))
        .await;

    // Attached already, or never announced: refused, and the listen goes on.
    for id in [connection, 999_999] {
        let (_, reply) = relay.request(Request::Attach { id }).await;
        assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
        assert!(reply.message.contains(&id.to_string()), "{reply:?}");
    }
    listen.send(Frame::<&[u8]>::Ping(9)).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, listen.next()).await.unwrap();
    assert!(matches!(pong, Some(Ok(Frame::Pong(9)))), "{pong:?}");

    // A second listen on the same port is refused, and says why.
    let (_, reply) = relay.request(Request::Listen { id: 2, port }).await;
    assert_eq!(reply.status, Status::Failed, "{reply:?}");
    assert!(reply.message.contains("in use"), "{reply:?}");

    // Each connection gets its own id.
    let _second = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (other, _) = next_incoming(&mut listen).await;
    assert_ne!(other, connection);
}

#[tokio::test]
async fn a_connection_not_attached_in_time_is_reset() {
    let relay = Relay::start(&exposed(&[("RELAY_ATTACH_TIMEOUT", "300ms")]));
    let port = closed_port().port();
    let mut listen = open_listen(&relay, port).await;
    let started = tokio::time::Instant::now();
    let mut late = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (connection, _) = next_incoming(&mut listen).await;
    is_reset(&mut late, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    relay.logged("not attached within 300ms: reset").await;
    // No longer attachable; the listen goes on.
    let (_, reply) = relay.request(Request::Attach { id: connection }).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    let _next = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    next_incoming(&mut listen).await;
}

#[tokio::test]
async fn a_refused_connection_is_reset_at_once() {
    // The default attach timeout (10 s): a reset sooner is the refusal's doing.
    let relay = Relay::start(&exposed(&[]));
    let port = closed_port().port();
    let mut listen = open_listen(&relay, port).await;
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (connection, from) = next_incoming(&mut listen).await;
    let started = tokio::time::Instant::now();
    listen
        .send(Frame::<&[u8]>::Refuse { connection })
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(TIMEOUT, client.read(&mut buf)).await;
    let error = read.expect("no reset").expect_err("an end, not a reset");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    relay
        .logged(&format!(
            "connection {connection} from {from} refused by the client: reset"
        ))
        .await;
    // Refused is gone: not attachable; a refusal of what is not parked here changes nothing.
    let (_, reply) = relay.request(Request::Attach { id: connection }).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    listen
        .send(Frame::<&[u8]>::Refuse {
            connection: 999_999,
        })
        .await
        .unwrap();
    listen.send(Frame::<&[u8]>::Ping(4)).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, listen.next()).await.unwrap();
    assert!(matches!(pong, Some(Ok(Frame::Pong(4)))), "{pong:?}");
}

#[tokio::test]
async fn a_closed_listen_closes_its_port_and_resets_waiting_connections() {
    // The default attach timeout (10 s): a reset sooner is the listen's doing.
    let relay = Relay::start(&exposed(&[]));
    let port = closed_port().port();
    let exposed_at = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    let mut listen = open_listen(&relay, port).await;
    // One attached (the test answers for kftray itself), one left waiting.
    let mut kept = TcpStream::connect(exposed_at).await.unwrap();
    let (connection, _) = next_incoming(&mut listen).await;
    let (mut attached, reply) = relay.request(Request::Attach { id: connection }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    let mut waiting = TcpStream::connect(exposed_at).await.unwrap();
    let (waiting_id, _) = next_incoming(&mut listen).await;

    // The listen ends: its port closes, the waiting one is reset, the attached one goes on.
    drop(listen);
    is_reset(&mut waiting, Duration::from_secs(5)).await;
    refused_soon(exposed_at).await;
    relay
        .logged(&format!(
            "listen on {exposed_at} closed (closed by the client): 2 accepted, 1 reset"
        ))
        .await;
    let (_, reply) = relay.request(Request::Attach { id: waiting_id }).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    kept.write_all(b"still").await.unwrap();
    let mut buf = [0u8; 5];
    attached.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still");
    attached.write_all(b"there").await.unwrap();
    kept.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"there");
    // The port can be listened on again.
    let _again = open_listen(&relay, port).await;
}

#[tokio::test]
async fn past_64_waiting_connections_the_next_is_reset() {
    let relay = Relay::start(&exposed(&[]));
    let port = closed_port().port();
    let mut listen = open_listen(&relay, port).await;
    let mut waiting = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..64 {
        waiting.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        ids.push(next_incoming(&mut listen).await.0);
    }
    // The 65th is reset at once, without an incoming frame.
    // (So soon that the reset may already be what the connect reports.)
    match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(mut one_more) => is_reset(&mut one_more, Duration::from_secs(5)).await,
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    relay
        .logged("64 connections already wait to be attached")
        .await;
    // Attaching one makes room for the next.
    let (_attached, reply) = relay.request(Request::Attach { id: ids[0] }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    let next = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (connection, from) = next_incoming(&mut listen).await;
    assert_eq!(from, next.local_addr().unwrap());
    assert!(!ids.contains(&connection));
}

#[tokio::test]
async fn a_listen_keeps_the_relay_alive_until_it_falls_silent() {
    let mut relay = Relay::start(&exposed(&[
        ("RELAY_IDLE_EXIT", "1s"),
        ("RELAY_HEARTBEAT_TIMEOUT", "1500ms"),
    ]));
    let port = closed_port().port();
    let mut listen = open_listen(&relay, port).await;
    // Three times the idle limit with a listen open and pinging: still running.
    for value in 0..12u64 {
        listen.send(Frame::<&[u8]>::Ping(value)).await.unwrap();
        let pong = tokio::time::timeout(TIMEOUT, listen.next()).await.unwrap();
        assert!(
            matches!(pong, Some(Ok(Frame::Pong(v))) if v == value),
            "{pong:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(relay.child.try_wait().unwrap().is_none(), "{}", relay.log());
    // Silent past the heartbeat timeout: the listen is closed, then the relay exits.
    let closed = tokio::time::timeout(TIMEOUT, listen.next()).await.unwrap();
    assert!(closed.is_none(), "{closed:?}");
    relay
        .logged("no heartbeat for 1.5s: closing the listen")
        .await;
    let status = relay.exited().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn listens_count_against_the_connection_limit() {
    let relay = Relay::start(&exposed(&[("RELAY_MAX_CONNECTIONS", "1")]));
    let port = closed_port().port();
    let _listen = open_listen(&relay, port).await;
    let (_, reply) = relay.request(Request::Listen { id: 2, port: 1 }).await;
    assert_eq!(reply.status, Status::Busy, "{reply:?}");
    let (_, reply) = relay.request(Request::Attach { id: 1 }).await;
    assert_eq!(reply.status, Status::Busy, "{reply:?}");
}

#[tokio::test]
async fn a_udp_listen_carries_each_peers_datagrams_both_ways() {
    let relay = Relay::start(&exposed(&[]));
    let port = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (conn, reply) = relay.request(Request::ListenUdp { id: 2, port }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
    let exposed_at = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
    assert_eq!(reply.peer, Some(exposed_at));
    let mut listen = Framed::new(conn, FrameCodec);
    relay.logged(&format!("udp listen on {exposed_at}")).await;

    // Two in-cluster clients: each datagram comes with its sender, each answer goes to the
    // peer it names, from the listen's port.
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    for (client, text) in [(&a, &b"from a"[..]), (&b, &b"from b"[..])] {
        client.send_to(text, exposed_at).await.unwrap();
        let frame = tokio::time::timeout(TIMEOUT, listen.next()).await.unwrap();
        let Some(Ok(Frame::Addressed { peer, payload })) = frame else {
            panic!("not an addressed datagram: {frame:?}");
        };
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(&payload[..], text);
        let mut answer = b"to ".to_vec();
        answer.extend_from_slice(&text[5..]);
        listen
            .send(Frame::Addressed {
                peer,
                payload: &answer[..],
            })
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(TIMEOUT, client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&answer[..], exposed_at));
    }

    // The port is the listen's: a second one is refused, and the first closing frees it.
    let (_, reply) = relay.request(Request::ListenUdp { id: 3, port }).await;
    assert_eq!(reply.status, Status::Failed, "{reply:?}");
    drop(listen);
    relay
        .logged(&format!(
            "udp listen on {exposed_at} closed (closed by the client): 2 datagrams in, 2 out"
        ))
        .await;
    let (_, reply) = relay.request(Request::ListenUdp { id: 4, port }).await;
    assert_eq!(reply.status, Status::Connected, "{reply:?}");
}
