//! Header-block compression: one zlib stream per direction for the life of a connection,
//! primed with the SPDY/3 dictionary, each block ending with a sync flush.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The SPDY/3 header dictionary from the draft 3 specification (1423 bytes, Adler-32
/// 0xe3c6a7c2).
pub(crate) const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

/// A decompressed header block may not exceed this: a bound against zlib bombs.
pub(crate) const MAX_HEADER_BLOCK: usize = 256 * 1024;

pub(crate) struct Deflater {
    zlib: Compress,
}

impl Deflater {
    pub(crate) fn new() -> Deflater {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(DICTIONARY)
            .expect("the zlib-rs backend supports preset dictionaries");
        Deflater { zlib }
    }

    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let start_in = self.zlib.total_in();
        loop {
            out.reserve(input.len() + 64);
            let consumed = (self.zlib.total_in() - start_in) as usize;
            // Compressing into a Vec with spare room cannot fail on a stream we own.
            let _ = self
                .zlib
                .compress_vec(&input[consumed..], out, FlushCompress::Sync);
            let done_in = (self.zlib.total_in() - start_in) as usize == input.len();
            // The sync flush is complete once a call leaves output room unused.
            if done_in && out.len() < out.capacity() {
                break;
            }
        }
    }
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
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
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
