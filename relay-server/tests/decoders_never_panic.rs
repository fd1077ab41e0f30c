//! The decoders on hostile input, on stable Rust: random bytes, every truncation of valid
//! messages, and valid messages with bytes flipped, inserted and removed. Whatever comes in,
//! the checks of `fuzz/fuzz_targets/checks.rs` hold; cargo-fuzz runs the same checks with
//! coverage guidance.

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

use checks::{check_all, check_frame, check_reply, check_request};
use kftray_relay::protocol::{Destination, Frame, Reply, Request, Status, Transport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Valid messages of every kind, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        Request::Session { id: 1 }.encode(),
        Request::Listen { id: 3, port: 8080 }.encode(),
        Request::Attach { id: 5 }.encode(),
        Reply::new(Status::Connected, Some("10.0.0.1:80".parse().unwrap()), "").encode(),
        Reply::new(
            Status::Connected,
            Some("[fd00::1]:53".parse().unwrap()),
            "ok",
        )
        .encode(),
    ];
    for (transport, host) in [
        (Transport::Tcp, "redis.internal"),
        (Transport::Udp, "10.96.0.10"),
        (Transport::Tcp, "fd00::5"),
        (Transport::Udp, "_sip._udp.example.com."),
    ] {
        seeds.push(
            Request::Connect {
                id: 42,
                transport,
                to: Destination::new(host, 53),
            }
            .encode(),
        );
    }
    for status in Status::ALL {
        seeds.push(Reply::new(status, None, format!("{status}")).encode());
    }
    for frame in [
        Frame::Datagram(&b"query"[..]),
        Frame::Datagram(&b""[..]),
        Frame::Ping(7),
        Frame::Pong(7),
        Frame::Incoming {
            connection: 1,
            from: "10.244.1.7:51234".parse().unwrap(),
        },
        Frame::Incoming {
            connection: u32::MAX,
            from: "[fd00::1]:8080".parse().unwrap(),
        },
        Frame::Refuse { connection: 3 },
        Frame::Addressed {
            peer: "10.244.1.7:53".parse().unwrap(),
            payload: &b"query"[..],
        },
        Frame::Addressed {
            peer: "[fd00::1]:53".parse().unwrap(),
            payload: &b""[..],
        },
        Frame::End {
            connection: 3,
            bytes: 1 << 40,
        },
    ] {
        let mut out = Vec::new();
        frame.encode(&mut out).unwrap();
        seeds.push(out);
    }
    seeds
}

#[test]
fn random_bytes() {
    let mut rng = StdRng::seed_from_u64(0x6b72);
    for _ in 0..50_000 {
        let len = rng.random_range(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        check_all(&bytes);
        // Random bytes rarely pass the magic: also try them behind a valid preamble.
        if bytes.len() >= 3 {
            bytes[..3].copy_from_slice(&[b'k', b'r', 1]);
            check_request(&bytes);
            check_reply(&bytes);
            // And behind an incoming frame's header, whose payload has a fixed layout.
            let len = if rng.random() { 11 } else { 23 };
            bytes[..3].copy_from_slice(&[4, 0, len]);
            check_frame(&bytes);
        }
    }
}

#[test]
fn every_truncation_of_valid_messages() {
    for seed in seeds() {
        for cut in 0..=seed.len() {
            check_all(&seed[..cut]);
        }
    }
}

#[test]
fn mutated_valid_messages() {
    let mut rng = StdRng::seed_from_u64(7);
    let seeds = seeds();
    for _ in 0..100_000 {
        let mut bytes = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..4) {
                0 if !bytes.is_empty() => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
                1 if !bytes.is_empty() => {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
                2 => {
                    let at = rng.random_range(0..=bytes.len());
                    bytes.insert(at, rng.random());
                }
                _ if !bytes.is_empty() => {
                    bytes.remove(rng.random_range(0..bytes.len()));
                }
                _ => {}
            }
        }
        check_all(&bytes);
    }
}
