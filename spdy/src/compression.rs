//! Header-block compression: one zlib stream per direction for the life of a connection,
//! primed with the SPDY/3 dictionary.
//!
//! What we send is a zlib stream of stored (uncompressed) deflate blocks: every inflater
//! reads it, and it needs no compressor state, where a zlib deflater holds some 380 KB per
//! connection to shrink header blocks of a few dozen bytes. What we receive is inflated with
//! zlib, whatever the peer's compressor did.

use flate2::{Decompress, FlushDecompress, Status};

/// The SPDY/3 header dictionary from the draft 3 specification (1423 bytes, Adler-32
/// 0xe3c6a7c2).
pub(crate) const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

/// A decompressed header block may not exceed this: a bound against zlib bombs.
pub(crate) const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Adler-32 of [`DICTIONARY`], which a zlib stream primed with it names in its header.
const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

/// The zlib stream header: deflate with a 32 KiB window (CMF 0x78), a preset dictionary
/// (FDICT) and the default level (FLEVEL 2), FCHECK making the pair a multiple of 31 — the
/// same two bytes zlib writes for SPDY.
const ZLIB_HEADER: [u8; 2] = [0x78, 0xbb];

/// The largest stored block deflate allows.
const MAX_STORED: usize = 65_535;

pub(crate) struct Deflater {
    started: bool,
}

impl Deflater {
    pub(crate) fn new() -> Deflater {
        Deflater { started: false }
    }

    /// Appends `input` to the stream as stored blocks, then an empty one, as zlib's sync
    /// flush ends a block: an inflater hands out what it holds when it meets the empty
    /// block, where after a stored block with data Go's reads on for the next block's header
    /// and fails at the end of the frame.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&ZLIB_HEADER);
            out.extend_from_slice(&DICTIONARY_ID.to_be_bytes());
            self.started = true;
        }
        out.reserve(input.len() + 5 * (input.len() / MAX_STORED + 2));
        for chunk in input.chunks(MAX_STORED) {
            stored_block(chunk, out);
        }
        stored_block(&[], out);
    }
}

/// BFINAL 0, BTYPE 00 (stored), padded to the byte; then LEN, its complement, the bytes.
fn stored_block(bytes: &[u8], out: &mut Vec<u8>) {
    let len = bytes.len() as u16;
    out.push(0x00);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(bytes);
}

pub(crate) struct Inflater {
    zlib: Decompress,
}

impl Inflater {
    pub(crate) fn new() -> Inflater {
        Inflater {
            zlib: Decompress::new(true),
        }
    }

    /// Decompresses one whole block; every input byte must be consumed, as spdystream
    /// requires.
    pub(crate) fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        let start_in = self.zlib.total_in();
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            let consumed = (self.zlib.total_in() - start_in) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err("header block too large".into());
                }
                out.reserve(out.len().max(1024));
            }
            let before = (self.zlib.total_in(), self.zlib.total_out());
            match self
                .zlib
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Err("header stream ended".into()),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| format!("header dictionary: {e}"))?;
                }
                Err(e) => return Err(format!("header block: {e}")),
            }
            if (self.zlib.total_in(), self.zlib.total_out()) == before && out.len() < out.capacity()
            {
                return Err("header block is truncated".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_spdy3_one() {
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for byte in DICTIONARY {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, DICTIONARY_ID);
        assert_eq!(DICTIONARY.len(), 1423);
    }

    #[test]
    fn blocks_round_trip_through_one_stateful_stream() {
        let mut deflater = Deflater::new();
        let mut inflater = Inflater::new();
        for i in 0..50 {
            let block: Vec<u8> = format!("block {i} streamtype data port 8080")
                .repeat(i + 1)
                .into_bytes();
            let mut compressed = Vec::new();
            deflater.compress(&block, &mut compressed);
            assert_eq!(inflater.decompress(&compressed).unwrap(), block);
        }
    }

    /// zlib itself, primed with the dictionary, reads what we write, and its header checks.
    #[test]
    fn zlib_reads_the_stored_blocks() {
        assert_eq!(u16::from_be_bytes(ZLIB_HEADER) % 31, 0);
        let mut deflater = Deflater::new();
        let mut zlib = Decompress::new(true);
        for block in [&b"first"[..], b"", &vec![7u8; 70_000]] {
            let mut stream = Vec::new();
            deflater.compress(block, &mut stream);
            // The empty block that makes Go's inflater hand the block out (kubectl's tests
            // against kubesim fail without it).
            assert!(stream.ends_with(&[0x00, 0x00, 0x00, 0xff, 0xff]));
            let mut out = Vec::with_capacity(block.len() + 16);
            let mut consumed = 0;
            loop {
                let before = zlib.total_in();
                match zlib.decompress_vec(&stream[consumed..], &mut out, FlushDecompress::Sync) {
                    Err(e) if e.needs_dictionary() == Some(DICTIONARY_ID) => {
                        zlib.set_dictionary(DICTIONARY).unwrap();
                    }
                    other => {
                        other.unwrap();
                    }
                }
                consumed += (zlib.total_in() - before) as usize;
                if consumed == stream.len() {
                    break;
                }
            }
            assert_eq!(out, block);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut inflater = Inflater::new();
        assert!(
            inflater
                .decompress(&[0x78, 0xf9, 0, 0, 0, 0, 1, 2, 3])
                .is_err()
        );
    }
}
