//! RFC 6455 framing for a tunnel that carries a byte stream, after the HTTP upgrade.
//!
//! A binary frame's payload is handed on in the pieces it arrives in, never gathered whole:
//! whole-message readers (tungstenite's among them) keep each frame contiguous, which copies
//! every frame that straddles two reads and zeroes a large read buffer per connection. A
//! tunnel whose messages are only cuts of a byte stream needs neither. Writing, each frame
//! is masked as it is copied into the output buffer, in one pass.

use crate::role::Role;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite};

/// Reads go into chunks of this size; payloads are split off them, so a chunk is never
/// copied, only replaced once used up.
const READ_CHUNK: usize = 64 * 1024;
/// Below this much room left in the chunk, the next read starts a new one.
const MIN_READ: usize = 4 * 1024;
/// An empty output buffer larger than this is given back.
const KEEP_OUT: usize = 64 * 1024;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// What the peer sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The next bytes of the tunnel (a binary or continuation frame's payload, or part of it).
    Data(Bytes),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(Bytes),
    /// The peer is closing the connection.
    Close,
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {why}"))
}

/// The frame being read.
struct Incoming {
    opcode: u8,
    left: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes already unmasked, so the key continues at the right byte.
    done: usize,
}

/// Frames read from the connection, as a stream of events. The server must get masked
/// frames; the client, unmasked ones.
pub(crate) struct Reader<R> {
    io: R,
    role: Role,
    buf: BytesMut,
    frame: Option<Incoming>,
    /// A control frame's payload, gathered whole (at most 125 bytes).
    control: BytesMut,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub(crate) fn new(io: R, role: Role) -> Self {
        Reader {
            io,
            role,
            buf: BytesMut::new(),
            frame: None,
            control: BytesMut::new(),
        }
    }

    /// The next event; `None` once the connection has ended.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Event>>> {
        loop {
            match self.step() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                self.buf.reserve(READ_CHUNK);
            }
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                &mut self.buf
            ))?;
            if n == 0 {
                return Poll::Ready(if self.frame.is_none() && self.buf.is_empty() {
                    None
                } else {
                    Some(Err(io::ErrorKind::UnexpectedEof.into()))
                });
            }
        }
    }

    /// Consumes what the buffer holds until an event comes out or more bytes are needed.
    fn step(&mut self) -> io::Result<Option<Event>> {
        loop {
            let Some(frame) = self.frame.as_mut() else {
                match self.header()? {
                    Some(frame) => {
                        self.frame = Some(frame);
                        continue;
                    }
                    None => return Ok(None),
                }
            };
            let take = usize::try_from(frame.left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let mut piece = self.buf.split_to(take);
            if let Some(key) = frame.mask {
                mask(&mut piece, key, frame.done);
            }
            frame.done += take;
            frame.left -= take as u64;
            let (opcode, finished) = (frame.opcode, frame.left == 0);
            if finished {
                self.frame = None;
            }
            match opcode {
                BINARY | CONTINUATION => {
                    if !piece.is_empty() {
                        return Ok(Some(Event::Data(piece.freeze())));
                    }
                }
                _ => {
                    self.control.extend_from_slice(&piece);
                    if finished {
                        let payload = self.control.split().freeze();
                        match opcode {
                            PING => return Ok(Some(Event::Ping(payload))),
                            CLOSE => return Ok(Some(Event::Close)),
                            _ => {} // a pong
                        }
                    }
                }
            }
            if !finished {
                return Ok(None);
            }
        }
    }

    /// Parses the next frame header if the buffer holds all of it.
    fn header(&mut self) -> io::Result<Option<Incoming>> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0f);
        let masked = b[1] & 0x80 != 0;
        let (len_bytes, short) = match b[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let size = 2 + len_bytes + if masked { 4 } else { 0 };
        if b.len() < size {
            return Ok(None);
        }
        if rsv != 0 {
            return Err(invalid("reserved bits set, but no extension was agreed"));
        }
        match opcode {
            BINARY | CONTINUATION => {}
            TEXT => return Err(invalid("a text message on a binary tunnel")),
            CLOSE | PING | PONG => {
                if !fin || short.is_none_or(|n| n > 125) {
                    return Err(invalid(
                        "a control frame longer than 125 bytes or fragmented",
                    ));
                }
            }
            other => return Err(invalid(&format!("unknown opcode {other:#x}"))),
        }
        match (self.role, masked) {
            (Role::Server, false) => return Err(invalid("an unmasked frame from the client")),
            (Role::Client, true) => return Err(invalid("a masked frame from the server")),
            _ => {}
        }
        let left = match short {
            Some(n) => n,
            None if len_bytes == 2 => u64::from(u16::from_be_bytes([b[2], b[3]])),
            None => u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")),
        };
        let mask = masked.then(|| {
            let at = 2 + len_bytes;
            [b[at], b[at + 1], b[at + 2], b[at + 3]]
        });
        self.buf.advance(size);
        Ok(Some(Incoming {
            opcode,
            left,
            mask,
            done: 0,
        }))
    }
}

/// XORs `data` with the key, starting `offset` bytes into the masked payload.
pub(crate) fn mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let v = u64::from_ne_bytes((&*word).try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Frames written to the connection through one output buffer; the client masks them.
pub(crate) struct Writer<W> {
    io: W,
    role: Role,
    out: BytesMut,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub(crate) fn new(io: W, role: Role) -> Self {
        Writer {
            io,
            role,
            out: BytesMut::new(),
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Appends one binary frame whose payload is `parts` one after the other.
    pub(crate) fn binary(&mut self, parts: &[&[u8]]) {
        self.frame(BINARY, parts);
    }

    pub(crate) fn pong(&mut self, payload: &[u8]) {
        self.frame(PONG, &[payload]);
    }

    /// A close frame with status 1000 (normal closure).
    pub(crate) fn close(&mut self) {
        self.frame(CLOSE, &[&1000u16.to_be_bytes()]);
    }

    fn frame(&mut self, opcode: u8, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mask_bit = if self.role == Role::Client { 0x80 } else { 0 };
        self.out.reserve(14 + len);
        self.out.put_u8(0x80 | opcode);
        match len {
            0..=125 => self.out.put_u8(mask_bit | len as u8),
            126..=0xffff => {
                self.out.put_u8(mask_bit | 126);
                self.out.put_u16(len as u16);
            }
            _ => {
                self.out.put_u8(mask_bit | 127);
                self.out.put_u64(len as u64);
            }
        }
        let key = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        if let Some(key) = key {
            self.out.put_slice(&key);
        }
        let start = self.out.len();
        for part in parts {
            self.out.put_slice(part);
        }
        if let Some(key) = key {
            mask(&mut self.out[start..], key, 0);
        }
    }

    /// Writes out everything buffered.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        // A burst grows the buffer to a few hundred KiB; an idle connection (of hundreds)
        // should not keep that.
        if self.out.capacity() > KEEP_OUT {
            self.out = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_by_bytes(data: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
        data.iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4])
            .collect()
    }

    #[test]
    fn masking_matches_the_byte_by_byte_definition_at_any_offset_and_length() {
        let data: Vec<u8> = (0..100u8).collect();
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        for offset in 0..8 {
            for len in [0, 1, 3, 7, 8, 9, 31, 100] {
                let mut got = data[..len].to_vec();
                mask(&mut got, key, offset);
                assert_eq!(
                    got,
                    masked_by_bytes(&data[..len], key, offset),
                    "{offset} {len}"
                );
            }
        }
    }
}
