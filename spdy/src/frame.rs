//! SPDY/3.1 frames: the subset Kubernetes port-forward uses, read and written exactly as
//! spdystream does. All integers are big-endian.
//!
//! Control frame: `1 | version(15)=3 | type(16) | flags(8) | length(24) | payload`.
//! Data frame:    `0 | stream-id(31) | flags(8) | length(24) | payload`.

use crate::compression::{Deflater, Inflater};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// DATA payloads are at most this large, as kubectl and the kubelet send them.
pub const MAX_DATA: usize = 64 * 1024;
/// A frame (control or data) longer than this is refused: nothing in port-forward needs more.
pub(crate) const MAX_FRAME: usize = 1 << 20;
const MAX_HEADERS: usize = 256;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const UNIDIRECTIONAL: u8 = 0x02;
}

/// RST_STREAM status codes.
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const STREAM_ALREADY_CLOSED: u32 = 9;
}

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Header name/value pairs, names lowercase.
pub type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// SETTINGS, HEADERS, WINDOW_UPDATE and unknown control frames: read and dropped, as
    /// spdystream does (it has no flow control).
    Ignored {
        kind: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("frame of {0} bytes is too long")]
    TooLong(usize),
    #[error("malformed {kind} frame: {why}")]
    Malformed { kind: &'static str, why: String },
}

fn malformed(kind: &'static str, why: impl Into<String>) -> FrameError {
    FrameError::Malformed {
        kind,
        why: why.into(),
    }
}

/// What one decoding step found at the front of a buffer.
#[derive(Debug)]
pub enum Decoded {
    /// A frame whose header block (if any) is still compressed, and its length in bytes.
    Frame(RawFrame, usize),
    NeedMore,
}

/// A frame as read, before its header block is inflated (that needs the connection's
/// decompression state, so it happens in the codec).
#[derive(Debug)]
pub enum RawFrame {
    /// DATA: its payload is the frame's bytes after the 8-byte header.
    Data {
        stream_id: u32,
        flags: u8,
    },
    Ready(Frame),
    WithHeaders {
        kind: u16,
        stream_id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        block: Bytes,
    },
}

/// Reads the frame at the front of `buf`, without touching compression state. A pure
/// function of its input, so a fuzzer can call it on any bytes: it never panics.
pub fn decode(buf: &[u8]) -> Result<Decoded, FrameError> {
    if buf.len() < 8 {
        return Ok(Decoded::NeedMore);
    }
    let length = (usize::from(buf[5]) << 16) | (usize::from(buf[6]) << 8) | usize::from(buf[7]);
    if length > MAX_FRAME {
        return Err(FrameError::TooLong(length));
    }
    if buf.len() < 8 + length {
        return Ok(Decoded::NeedMore);
    }
    let flags = buf[4];
    let mut payload = &buf[8..8 + length];
    let total = 8 + length;
    if buf[0] & 0x80 == 0 {
        let stream_id = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) & 0x7fff_ffff;
        return Ok(Decoded::Frame(RawFrame::Data { stream_id, flags }, total));
    }
    let version = u16::from_be_bytes([buf[0], buf[1]]) & 0x7fff;
    if version != 3 {
        return Err(FrameError::Version(version));
    }
    let kind = u16::from_be_bytes([buf[2], buf[3]]);
    let need = |payload: &[u8], n: usize, what: &'static str| {
        if payload.len() < n {
            Err(malformed(
                what,
                format!("{} bytes, need {n}", payload.len()),
            ))
        } else {
            Ok(())
        }
    };
    let raw = match kind {
        SYN_STREAM => {
            need(payload, 10, "SYN_STREAM")?;
            let stream_id = payload.get_u32() & 0x7fff_ffff;
            let associated = payload.get_u32() & 0x7fff_ffff;
            let priority = payload.get_u8() >> 5;
            let _slot = payload.get_u8();
            if stream_id == 0 {
                return Err(malformed("SYN_STREAM", "stream id 0"));
            }
            RawFrame::WithHeaders {
                kind,
                stream_id,
                associated,
                priority,
                flags,
                block: Bytes::copy_from_slice(payload),
            }
        }
        SYN_REPLY => {
            need(payload, 4, "SYN_REPLY")?;
            let stream_id = payload.get_u32() & 0x7fff_ffff;
            RawFrame::WithHeaders {
                kind,
                stream_id,
                associated: 0,
                priority: 0,
                flags,
                block: Bytes::copy_from_slice(payload),
            }
        }
        RST_STREAM => {
            if payload.len() != 8 {
                return Err(malformed("RST_STREAM", "length is not 8"));
            }
            RawFrame::Ready(Frame::RstStream {
                stream_id: payload.get_u32() & 0x7fff_ffff,
                status: payload.get_u32(),
            })
        }
        PING => {
            if payload.len() != 4 {
                return Err(malformed("PING", "length is not 4"));
            }
            RawFrame::Ready(Frame::Ping {
                id: payload.get_u32(),
            })
        }
        GOAWAY => {
            if payload.len() != 8 {
                return Err(malformed("GOAWAY", "length is not 8"));
            }
            RawFrame::Ready(Frame::GoAway {
                last_stream: payload.get_u32() & 0x7fff_ffff,
                status: payload.get_u32(),
            })
        }
        // HEADERS carries a compressed block that must still pass through the inflater to
        // keep the shared zlib stream in step, even though its content is dropped.
        HEADERS => {
            need(payload, 4, "HEADERS")?;
            let stream_id = payload.get_u32() & 0x7fff_ffff;
            RawFrame::WithHeaders {
                kind,
                stream_id,
                associated: 0,
                priority: 0,
                flags,
                block: Bytes::copy_from_slice(payload),
            }
        }
        SETTINGS | WINDOW_UPDATE => RawFrame::Ready(Frame::Ignored { kind }),
        other => RawFrame::Ready(Frame::Ignored { kind: other }),
    };
    Ok(Decoded::Frame(raw, total))
}

/// Parses an inflated header block: `n(32) {len(32) name len(32) value}*`.
pub(crate) fn parse_headers(mut block: &[u8]) -> Result<Headers, FrameError> {
    let bad = |why: &str| malformed("header block", why);
    if block.len() < 4 {
        return Err(bad("shorter than its count"));
    }
    let count = block.get_u32() as usize;
    if count > MAX_HEADERS {
        return Err(bad("too many headers"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let mut field = || -> Result<String, FrameError> {
            if block.len() < 4 {
                return Err(bad("truncated length"));
            }
            let len = block.get_u32() as usize;
            if block.len() < len {
                return Err(bad("truncated string"));
            }
            let text = std::str::from_utf8(&block[..len])
                .map_err(|_| bad("a header is not UTF-8"))?
                .to_string();
            block.advance(len);
            Ok(text)
        };
        let name = field()?;
        let value = field()?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("a header name is empty or not lowercase"));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

fn serialize_headers(headers: &Headers) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.put_u32(headers.len() as u32);
    for (name, value) in headers {
        raw.put_u32(name.len() as u32);
        raw.put_slice(name.to_ascii_lowercase().as_bytes());
        raw.put_u32(value.len() as u32);
        raw.put_slice(value.as_bytes());
    }
    raw
}

/// The 8 bytes before a DATA payload of `len` bytes.
pub(crate) fn data_header(stream_id: u32, flags: u8, len: usize) -> std::io::Result<[u8; 8]> {
    if len > MAX_DATA {
        return Err(invalid(FrameError::TooLong(len)));
    }
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    header[4..].copy_from_slice(&((u32::from(flags) << 24) | len as u32).to_be_bytes());
    Ok(header)
}

/// The frame codec of one connection: framing plus the header compression state of the
/// directions it is used for. A session reads through one codec and writes through another,
/// so each state is made when first needed, not in both.
#[derive(Default)]
pub struct FrameCodec {
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        let (raw, used) = match decode(src).map_err(invalid)? {
            Decoded::NeedMore => {
                if src.len() >= 8 {
                    let length = (usize::from(src[5]) << 16)
                        | (usize::from(src[6]) << 8)
                        | usize::from(src[7]);
                    src.reserve(8 + length - src.len());
                }
                return Ok(None);
            }
            Decoded::Frame(raw, used) => (raw, used),
        };
        let frame = match raw {
            // DATA is the hot path: its payload is handed out without a copy.
            RawFrame::Data { stream_id, flags } => {
                src.advance(8);
                let data = src.split_to(used - 8).freeze();
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                }
            }
            RawFrame::Ready(frame) => {
                src.advance(used);
                frame
            }
            RawFrame::WithHeaders {
                kind,
                stream_id,
                associated,
                priority,
                flags,
                block,
            } => {
                src.advance(used);
                let inflated = self
                    .inflater
                    .get_or_insert_with(Inflater::new)
                    .decompress(&block)
                    .map_err(|why| invalid(malformed("header block", why)))?;
                let headers = parse_headers(&inflated).map_err(invalid)?;
                match kind {
                    SYN_STREAM => Frame::SynStream {
                        stream_id,
                        associated,
                        priority,
                        flags,
                        headers,
                    },
                    SYN_REPLY => Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    },
                    _ => Frame::Ignored { kind },
                }
            }
        };
        Ok(Some(frame))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let control = |dst: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]| {
            dst.reserve(8 + payload.len());
            dst.put_u16(0x8003);
            dst.put_u16(kind);
            dst.put_u32((u32::from(flags) << 24) | payload.len() as u32);
            dst.put_slice(payload);
        };
        match frame {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let header = data_header(stream_id, flags, data.len())?;
                dst.reserve(8 + data.len());
                dst.put_slice(&header);
                dst.put_slice(&data);
            }
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut payload = Vec::new();
                payload.put_u32(stream_id & 0x7fff_ffff);
                payload.put_u32(associated & 0x7fff_ffff);
                payload.put_u8(priority << 5);
                payload.put_u8(0);
                self.deflater
                    .get_or_insert_with(Deflater::new)
                    .compress(&serialize_headers(&headers), &mut payload);
                control(dst, SYN_STREAM, flags, &payload);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let mut payload = Vec::new();
                payload.put_u32(stream_id & 0x7fff_ffff);
                self.deflater
                    .get_or_insert_with(Deflater::new)
                    .compress(&serialize_headers(&headers), &mut payload);
                control(dst, SYN_REPLY, flags, &payload);
            }
            Frame::RstStream { stream_id, status } => {
                let mut payload = [0u8; 8];
                payload[..4].copy_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload[4..].copy_from_slice(&status.to_be_bytes());
                control(dst, RST_STREAM, 0, &payload);
            }
            Frame::Ping { id } => control(dst, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_stream,
                status,
            } => {
                let mut payload = [0u8; 8];
                payload[..4].copy_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
                payload[4..].copy_from_slice(&status.to_be_bytes());
                control(dst, GOAWAY, 0, &payload);
            }
            Frame::Ignored { kind } => {
                return Err(invalid(malformed(
                    "outgoing",
                    format!("type {kind} is not sent"),
                )));
            }
        }
        Ok(())
    }
}

fn invalid(e: FrameError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}
