//! Whatever bytes the network brings, SPDY frames and WebSocket frames alike end in frames,
//! an error, or a wait for more: never a panic, never a hang. The inputs are frames this
//! crate writes, mutated (bytes flipped, cut short, grown), and random bytes.

use crate::frame::{Frame, FrameCodec};
use crate::rfc6455::Reader;
use crate::role::Role;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio_util::codec::{Decoder, Encoder};

/// Runs `work` on a thread of its own and fails the case if it takes longer than a second:
/// a parser that loops forever is a bug as much as one that panics.
fn ends(input: &[u8], work: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("panicked on {input:02x?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hangs on {input:02x?}"),
    }
}

fn spdy_seeds() -> Vec<Vec<u8>> {
    let headers = vec![
        ("streamtype".to_owned(), "data".to_owned()),
        ("port".to_owned(), "8080".to_owned()),
        ("requestid".to_owned(), "0".to_owned()),
    ];
    let frames = [
        Frame::SynStream {
            stream_id: 1,
            associated: 0,
            priority: 0,
            flags: 0,
            headers: headers.clone(),
        },
        Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers,
        },
        Frame::Data {
            stream_id: 1,
            flags: 1,
            data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
        },
        Frame::Ping { id: 7 },
        Frame::RstStream {
            stream_id: 3,
            status: 5,
        },
        Frame::GoAway {
            last_stream: 3,
            status: 0,
        },
    ];
    let mut seeds = Vec::new();
    // One session's frames in a row: later header blocks depend on the compression state
    // the earlier ones left.
    let mut codec = FrameCodec::default();
    let mut all = BytesMut::new();
    for frame in frames {
        let mut one = BytesMut::new();
        FrameCodec::default()
            .encode(frame.clone(), &mut one)
            .unwrap();
        seeds.push(one.to_vec());
        codec.encode(frame, &mut all).unwrap();
    }
    seeds.push(all.to_vec());
    seeds
}

fn websocket_seeds() -> Vec<Vec<u8>> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let masked = |payload: &[u8]| -> Vec<u8> {
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect()
    };
    let mut server_bound = vec![0x82, 0x80 | 6];
    server_bound.extend_from_slice(&key);
    server_bound.extend(masked(b"\x00hello"));
    vec![
        // To the client: binary, ping, a fragmented message, a 16-bit length, close.
        [
            &[0x82, 0x03, 0x00, b'h', b'i'][..],
            &[0x89, 0x01, b'p'],
            &[0x88, 0x00],
        ]
        .concat(),
        [&[0x02, 0x02, 0x01, b'a'][..], &[0x80, 0x01, b'b']].concat(),
        [&[0x82, 126, 0x00, 0x80][..], &[0u8; 128]].concat(),
        server_bound,
    ]
}

/// A seed with some bytes replaced, cut at some length, and random bytes appended.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(which, flips, cut, tail)| {
            let mut bytes = seeds[which].clone();
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(tail);
            bytes
        })
}

fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => mutated(seeds),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Every frame the codec finds in `bytes`, until it wants more or refuses.
fn decode_spdy(bytes: Vec<u8>) {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&bytes[..]);
    for _ in 0..=bytes.len() {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(_)) => assert!(buf.len() < before, "a frame that took no bytes"),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("more frames than bytes");
}

/// Every WebSocket event in `bytes`, read as `role`, until the end or an error.
fn read_websocket(bytes: Vec<u8>, role: Role) {
    let mut reader = Reader::new(&bytes[..], role);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..=bytes.len() + 1 {
        match reader.poll_event(&mut cx) {
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(None | Some(Err(_))) => return,
            Poll::Pending => panic!("waits on a reader that is always ready"),
        }
    }
    panic!("more events than bytes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn spdy_frames_never_panic_or_hang(bytes in input(spdy_seeds())) {
        ends(&bytes.clone(), move || decode_spdy(bytes));
    }

    #[test]
    fn websocket_frames_never_panic_or_hang(bytes in input(websocket_seeds()), server in any::<bool>()) {
        let role = if server { Role::Server } else { Role::Client };
        ends(&bytes.clone(), move || read_websocket(bytes, role));
    }
}

#[test]
fn the_seeds_are_read_whole() {
    // So that the mutations start from inputs that reach deep into the parsers.
    for seed in spdy_seeds() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&seed[..]);
        while !buf.is_empty() {
            assert!(matches!(codec.decode(&mut buf), Ok(Some(_))), "{seed:02x?}");
        }
    }
    for (i, seed) in websocket_seeds().into_iter().enumerate() {
        let role = if i == 3 { Role::Server } else { Role::Client };
        let mut reader = Reader::new(&seed[..], role);
        let mut cx = Context::from_waker(Waker::noop());
        let mut events = 0;
        while let Poll::Ready(Some(event)) = reader.poll_event(&mut cx) {
            assert!(event.is_ok(), "{seed:02x?}: {event:?}");
            events += 1;
        }
        assert!(events > 0, "{seed:02x?}");
    }
}
