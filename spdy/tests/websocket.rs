//! SPDY inside WebSocket against another WebSocket implementation (tungstenite): what the
//! session writes is valid, masked framing, and what such a peer sends — pings, fragmented
//! messages, a close — is understood.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use kftray_spdy::{Frame, FrameCodec, Role, Session, SessionConfig};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_util::codec::{Decoder, Encoder};

const LONG: Duration = Duration::from_secs(60);

async fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

fn encoded(frames: Vec<Frame>) -> Vec<u8> {
    let mut codec = FrameCodec::default();
    let mut out = BytesMut::new();
    for frame in frames {
        codec.encode(frame, &mut out).unwrap();
    }
    out.to_vec()
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("streamtype".into(), "data".into()),
        ("port".into(), "80".into()),
        ("requestid".into(), "0".into()),
    ]
}

#[tokio::test]
async fn a_tungstenite_server_reads_the_clients_masked_frames() {
    let (client, server) = connected().await;
    let mut server = WebSocketStream::from_raw_socket(server, WsRole::Server, None).await;
    let (session, _incoming) =
        Session::over_websocket(client, Role::Client, SessionConfig::default());
    let opening = session.start_stream(headers()).await.unwrap();

    // tungstenite refuses unmasked frames from a client, so reading is the check.
    let mut bytes = BytesMut::new();
    let mut codec = FrameCodec::default();
    let frame = loop {
        if let Some(frame) = codec.decode(&mut bytes).unwrap() {
            break frame;
        }
        match tokio::time::timeout(LONG, server.next()).await.unwrap() {
            Some(Ok(Message::Binary(data))) => bytes.extend_from_slice(&data),
            other => panic!("expected a binary message, got {other:?}"),
        }
    };
    match frame {
        Frame::SynStream {
            stream_id, headers, ..
        } => {
            assert_eq!(stream_id, 1);
            assert!(
                headers.contains(&("port".into(), "80".into())),
                "{headers:?}"
            );
        }
        other => panic!("expected SYN_STREAM, got {other:?}"),
    }
    drop(opening);
}

#[tokio::test]
async fn pings_get_pongs_fragments_are_joined_and_a_close_is_answered() {
    let (client, server) = connected().await;
    let mut peer = WebSocketStream::from_raw_socket(client, WsRole::Client, None).await;
    let (_session, mut incoming) =
        Session::over_websocket(server, Role::Server, SessionConfig::default());

    peer.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    match tokio::time::timeout(LONG, peer.next()).await.unwrap() {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    // A SYN_STREAM and 100 KiB of DATA, cut at odd places over one fragmented message.
    let payload: Vec<u8> = (0..100 * 1024u32).map(|i| (i % 251) as u8).collect();
    let wire = encoded(vec![
        Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: headers(),
        },
        Frame::Data {
            stream_id: 1,
            flags: 0,
            data: payload[..60 * 1024].to_vec().into(),
        },
        Frame::Data {
            stream_id: 1,
            flags: kftray_spdy::flags::FIN,
            data: payload[60 * 1024..].to_vec().into(),
        },
    ]);
    let cuts = [0, 5, 9, 4000, 70_000, wire.len()];
    for (i, range) in cuts.windows(2).enumerate() {
        let piece = Bytes::copy_from_slice(&wire[range[0]..range[1]]);
        let opcode = if i == 0 {
            OpCode::Data(Data::Binary)
        } else {
            OpCode::Data(Data::Continue)
        };
        let last = range[1] == wire.len();
        peer.send(Message::Frame(WsFrame::message(piece, opcode, last)))
            .await
            .unwrap();
    }
    let (_, mut stream) = tokio::time::timeout(LONG, incoming.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(LONG, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(got == payload, "the stream's bytes differ");

    peer.send(Message::Close(None)).await.unwrap();
    loop {
        match tokio::time::timeout(LONG, peer.next()).await.unwrap() {
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the close was not answered: {e}"),
        }
    }
}
