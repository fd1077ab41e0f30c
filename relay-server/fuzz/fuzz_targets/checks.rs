//! What every decoder must do with any input, shared by the cargo-fuzz target and the stable
//! test `tests/decoders_never_panic.rs`: answer without panicking, claim no more bytes than
//! it was given, ask for more than it has when incomplete, and encode a complete value back
//! to exactly the bytes it came from.

use kftray_relay::protocol::{Decoded, Frame, MAX_REPLY_LEN, MAX_REQUEST_LEN, Reply, Request};

pub fn check_request(bytes: &[u8]) {
    match Request::decode(bytes) {
        Ok(Decoded::Complete { value, len }) => {
            assert!(len <= bytes.len() && len <= MAX_REQUEST_LEN);
            assert_eq!(value.encode(), bytes[..len], "{value:?}");
        }
        Ok(Decoded::Incomplete { need }) => {
            assert!(need > bytes.len() && need <= MAX_REQUEST_LEN, "{need}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

pub fn check_reply(bytes: &[u8]) {
    match Reply::decode(bytes) {
        Ok(Decoded::Complete { value, len }) => {
            assert!(len <= bytes.len() && len <= MAX_REPLY_LEN);
            assert_eq!(value.encode(), bytes[..len], "{value:?}");
        }
        Ok(Decoded::Incomplete { need }) => {
            assert!(need > bytes.len() && need <= MAX_REPLY_LEN, "{need}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

pub fn check_frame(bytes: &[u8]) {
    match Frame::decode(bytes) {
        Ok(Decoded::Complete { value, len }) => {
            assert!(len <= bytes.len());
            let mut again = Vec::new();
            value.encode(&mut again).unwrap();
            assert_eq!(again, bytes[..len]);
        }
        Ok(Decoded::Incomplete { need }) => assert!(need > bytes.len()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

pub fn check_all(bytes: &[u8]) {
    check_request(bytes);
    check_reply(bytes);
    check_frame(bytes);
}
