//! Frames captured from kubectl v1.32.4, or accepted by it, decode and encode byte for byte.

use bytes::BytesMut;
use kftray_spdy::{Decoded, Frame, FrameCodec, decode, flags, rst};
use tokio_util::codec::{Decoder, Encoder};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_one(codec: &mut FrameCodec, bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = codec.decode(&mut buf).unwrap().expect("a whole frame");
    assert!(buf.is_empty(), "bytes left over");
    frame
}

fn encode_one(codec: &mut FrameCodec, frame: Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    codec.encode(frame, &mut buf).unwrap();
    buf.to_vec()
}

#[test]
fn kubectl_error_stream_syn_stream() {
    let bytes = hex(
        "80030001 0000003e 00000001 00000000 00 00
         78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c60616061c0c0c0c0590489c64c50f2663400000000ffff",
    );
    let frame = decode_one(&mut FrameCodec::default(), &bytes);
    let Frame::SynStream {
        stream_id,
        associated,
        mut headers,
        ..
    } = frame
    else {
        panic!("not a SYN_STREAM: {frame:?}");
    };
    assert_eq!((stream_id, associated), (1, 0));
    headers.sort();
    let expected = [
        ("port", "8080"),
        ("requestid", "0"),
        ("streamtype", "error"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(headers, expected);
}

#[test]
fn syn_reply_kubectl_accepted_decodes_and_ours_decodes_alike() {
    // zlib output is not unique, so compare what the blocks mean, not their bytes.
    let reply = Frame::SynReply {
        stream_id: 1,
        flags: 0,
        headers: Vec::new(),
    };
    let captured = hex("80030002000000140000000178bbe3c6a7c202a6230600000000ffff");
    assert_eq!(decode_one(&mut FrameCodec::default(), &captured), reply);
    let ours = encode_one(&mut FrameCodec::default(), reply.clone());
    // Version, type and flags, then the stream id; the length is the header block's own.
    assert_eq!(&ours[..5], &captured[..5], "version, type and flags");
    assert_eq!(&ours[8..12], &captured[8..12], "stream id");
    assert_eq!(decode_one(&mut FrameCodec::default(), &ours), reply);
}

#[test]
fn fixed_frames_match_the_captures_both_ways() {
    let cases = [
        (
            "0000000301000000",
            Frame::Data {
                stream_id: 3,
                flags: flags::FIN,
                data: bytes::Bytes::new(),
            },
        ),
        ("800300060000000400000001", Frame::Ping { id: 1 }),
        (
            "80030003000000080000000300000005",
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL,
            },
        ),
        (
            "80030007000000080000000000000000",
            Frame::GoAway {
                last_stream: 0,
                status: 0,
            },
        ),
    ];
    for (wire, frame) in cases {
        let mut codec = FrameCodec::default();
        assert_eq!(decode_one(&mut codec, &hex(wire)), frame, "{wire}");
        assert_eq!(encode_one(&mut codec, frame), hex(wire), "{wire}");
    }
}

#[test]
fn header_blocks_round_trip_across_many_frames_on_one_connection() {
    let (mut writer, mut reader) = (FrameCodec::default(), FrameCodec::default());
    let mut wire = BytesMut::new();
    for id in (1..400u32).step_by(2) {
        let headers = vec![
            (
                "streamtype".to_string(),
                if id % 4 == 1 { "error" } else { "data" }.to_string(),
            ),
            ("port".to_string(), "8080".to_string()),
            ("requestid".to_string(), (id / 4).to_string()),
        ];
        let frame = Frame::SynStream {
            stream_id: id,
            associated: 0,
            priority: 0,
            flags: 0,
            headers,
        };
        writer.encode(frame.clone(), &mut wire).unwrap();
        // Fed a byte at a time, as the Go framer's tiny WebSocket messages arrive.
        let mut partial = BytesMut::new();
        let mut got = None;
        while got.is_none() {
            partial.extend_from_slice(&wire.split_to(1));
            got = reader.decode(&mut partial).unwrap();
        }
        assert_eq!(got.unwrap(), frame);
    }
}

#[test]
fn the_decoder_never_panics_on_random_bytes() {
    // A small xorshift keeps the test deterministic without a dependency.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half the rounds look like control frames of version 3, to get past the first check.
        if round % 2 == 0 && bytes.len() >= 8 {
            bytes[0] = 0x80;
            bytes[1] = 0x03;
            bytes[2] = 0;
            bytes[3] = (next() % 10) as u8;
            bytes[5] = 0;
            bytes[6] = 0;
            bytes[7] = (bytes.len() - 8) as u8;
        }
        let _ = decode(&bytes);
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        if let Ok(Decoded::Frame(_, used)) = decode(&bytes) {
            assert!(used <= bytes.len());
        }
    }
}
