//! Sessions over real TCP connections, client against server.

use kftray_spdy::{Incoming, Role, Session, SessionConfig, SessionError, rst};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LONG: Duration = Duration::from_secs(60);

async fn pair() -> (Session, (Session, Incoming)) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, _) = Session::new(client.unwrap(), Role::Client, SessionConfig::default());
    let server = Session::new(accepted.unwrap().0, Role::Server, SessionConfig::default());
    (client, server)
}

/// The same, with SPDY inside WebSocket binary messages (the client masks, as it must).
async fn websocket_pair() -> (Session, (Session, Incoming)) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, _) =
        Session::over_websocket(client.unwrap(), Role::Client, SessionConfig::default());
    let server =
        Session::over_websocket(accepted.unwrap().0, Role::Server, SessionConfig::default());
    (client, server)
}

/// Echoes every stream the client opens: copies to EOF, then half-closes back.
fn echo_server(mut incoming: Incoming) {
    tokio::spawn(async move {
        while let Some((_headers, stream)) = incoming.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
        }
    });
}

fn headers(kind: &str, request: u32) -> Vec<(String, String)> {
    vec![
        ("streamtype".into(), kind.into()),
        ("port".into(), "8080".into()),
        ("requestid".into(), request.to_string()),
    ]
}

#[tokio::test]
async fn many_concurrent_streams_each_get_their_own_bytes_back() {
    many_concurrent_streams(pair().await).await;
}

#[tokio::test]
async fn many_concurrent_streams_over_websocket() {
    many_concurrent_streams(websocket_pair().await).await;
}

async fn many_concurrent_streams((client, (_server, incoming)): (Session, (Session, Incoming))) {
    echo_server(incoming);
    let tasks: Vec<_> = (0..100u32)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut stream = client.open_stream(headers("data", i)).await.unwrap();
                let message: Vec<u8> = (0..(1000 + i * 997)).map(|b| (b ^ i) as u8).collect();
                stream.write_all(&message).await.unwrap();
                stream.shutdown().await.unwrap();
                let mut back = Vec::new();
                stream.read_to_end(&mut back).await.unwrap();
                assert!(back == message, "stream {i} got other bytes");
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(LONG, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_large_transfer_keeps_every_byte_in_order() {
    large_transfer(pair().await).await;
}

/// Payloads large enough to travel as messages of their own, and small ones gathered with
/// the frames around them, both ways at once.
#[tokio::test]
async fn a_large_transfer_over_websocket_keeps_every_byte_in_order() {
    large_transfer(websocket_pair().await).await;
}

async fn large_transfer((client, (_server, incoming)): (Session, (Session, Incoming))) {
    echo_server(incoming);
    let stream = client.open_stream(headers("data", 0)).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let total = 32 * 1024 * 1024;
    let writer = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            wr.write_all(&chunk[..n]).await.unwrap();
            sent += n;
        }
        wr.shutdown().await.unwrap();
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut position = 0usize;
    loop {
        let n = tokio::time::timeout(LONG, rd.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            assert_eq!(b, ((position % 100_003) % 251) as u8, "byte {position}");
            position += 1;
        }
        got += n;
    }
    writer.await.unwrap();
    assert_eq!(got, total);
}

#[tokio::test]
async fn a_reset_stream_fails_alone() {
    let (client, (_server, incoming)) = pair().await;
    echo_server(incoming);
    let mut doomed = client.open_stream(headers("data", 0)).await.unwrap();
    let mut healthy = client.open_stream(headers("data", 1)).await.unwrap();
    doomed.reset(rst::CANCEL);
    assert!(doomed.write_all(b"x").await.is_err());
    healthy.write_all(b"still here").await.unwrap();
    healthy.shutdown().await.unwrap();
    let mut back = Vec::new();
    healthy.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"still here");
}

#[tokio::test]
async fn a_peer_reset_reads_as_an_error_on_that_stream() {
    let (client, (_server, mut incoming)) = pair().await;
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.accept().await {
            stream.reset(rst::INTERNAL_ERROR);
        }
    });
    let mut stream = client.open_stream(headers("data", 0)).await.unwrap();
    let mut buf = [0u8; 8];
    let err = tokio::time::timeout(LONG, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(!client.is_closed());
}

#[tokio::test]
async fn open_streams_count_until_dropped_or_reset() {
    let (client, (_server, incoming)) = pair().await;
    echo_server(incoming);
    assert_eq!(client.open_streams(), 0);
    let mut reset = client.open_stream(headers("data", 0)).await.unwrap();
    let mut finished = client.open_stream(headers("data", 1)).await.unwrap();
    assert_eq!(client.open_streams(), 2);
    reset.reset(rst::CANCEL);
    assert_eq!(client.open_streams(), 1);
    // Ended both ways is not yet dropped: its owner may still read what is buffered.
    finished.write_all(b"bye").await.unwrap();
    finished.shutdown().await.unwrap();
    let mut back = Vec::new();
    finished.read_to_end(&mut back).await.unwrap();
    assert_eq!(client.open_streams(), 1);
    drop((reset, finished));
    assert_eq!(client.open_streams(), 0);
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let (client, (server, _incoming)) = pair().await;
    client.ping(LONG).await.unwrap();
    server.ping(LONG).await.unwrap();
}

#[tokio::test]
async fn after_goaway_and_close_new_streams_fail_at_once() {
    let (client, (server, incoming)) = pair().await;
    echo_server(incoming);
    server.close().await;
    tokio::time::timeout(LONG, client.closed()).await.unwrap();
    match client.open_stream(headers("data", 0)).await {
        Err(SessionError::Closed(_) | SessionError::GoingAway) => {}
        other => panic!("expected a closed session, got {:?}", other.err()),
    }
}

/// A dropped connection must read as an error, never as a clean end: a client that sees a
/// clean end believes the pod answered with nothing.
#[tokio::test]
async fn an_aborted_session_ends_the_peers_streams_in_error_even_if_they_drop_after() {
    for websocket in [false, true] {
        let (client, (server, mut incoming)) = if websocket {
            websocket_pair().await
        } else {
            pair().await
        };
        let mut stream = client.open_stream(headers("data", 0)).await.unwrap();
        let (_, accepted) = incoming.accept().await.unwrap();
        server.abort();
        // Dropped after the abort: its FIN must not reach the wire.
        drop(accepted);
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(LONG, stream.read(&mut buf))
            .await
            .unwrap();
        assert!(read.is_err(), "websocket {websocket}: {read:?}");
        tokio::time::timeout(LONG, client.closed()).await.unwrap();
    }
}

#[tokio::test]
async fn two_streams_start_back_to_back_before_either_reply() {
    let (client, (_server, incoming)) = pair().await;
    echo_server(incoming);
    let error = client.start_stream(headers("error", 0)).await.unwrap();
    let data = client.start_stream(headers("data", 0)).await.unwrap();
    let (error, data) = tokio::join!(error.wait(), data.wait());
    assert_eq!(error.unwrap().id(), 1);
    assert_eq!(data.unwrap().id(), 3);
}

/// Stream ids must reach the wire in increasing order, or the peer refuses the late ones (as
/// spdystream does). Many tasks opening at once behind a full write queue used to race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_opened_at_once_behind_a_full_queue_are_all_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let tight = SessionConfig {
        write_queue: 1,
        ..SessionConfig::default()
    };
    let (client, _) = Session::new(client.unwrap(), Role::Client, tight);
    let (_server, incoming) =
        Session::new(accepted.unwrap().0, Role::Server, SessionConfig::default());
    echo_server(incoming);
    let tasks: Vec<_> = (0..600u32)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.open_stream(headers("data", i)).await.map(drop) })
        })
        .collect();
    let mut refused = 0;
    for task in tasks {
        match tokio::time::timeout(LONG, task).await.unwrap().unwrap() {
            Ok(()) => {}
            Err(SessionError::Refused(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 0, "streams refused for arriving out of order");
}
