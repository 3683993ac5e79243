//! A gzip writer kept by a layer worker from one layer to the next ([`Gz`]): its deflate
//! state and output buffer are made once and reset per layer. A new encoder per layer
//! costs an allocation of a few hundred KiB and its set-up each time, which for an archive
//! of 40,000 tiny entries was most of the work, and fragmented the heap into ~100 MiB of
//! RSS. The output is a plain gzip member, as `flate2::write::GzEncoder` writes it.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// One worker's gzip writer.
pub(super) struct Gz {
    level: Compression,
    compress: Compress,
    out: Vec<u8>,
}

impl Gz {
    /// A writer at `level` (0–9), with an output buffer of `buffer` bytes.
    pub fn new(level: u32, buffer: usize) -> Gz {
        let level = Compression::new(level.min(9));
        Gz {
            level,
            compress: Compress::new(level, false),
            out: Vec::with_capacity(buffer.max(1024)),
        }
    }

    /// The gzip header flate2 writes: no name, mtime 0, OS "unknown" (reproducible).
    fn header(&self) -> [u8; 10] {
        let xfl = if self.level.level() >= Compression::best().level() {
            2
        } else if self.level.level() <= Compression::fast().level() {
            4
        } else {
            0
        };
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
    }

    /// Writes `chunks` to `w` as one gzip member, calling `each` on every chunk first.
    pub fn member<W: Write>(
        &mut self,
        w: &mut W,
        chunks: impl IntoIterator<Item = Vec<u8>>,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        self.compress.reset();
        let mut crc = Crc::new();
        w.write_all(&self.header())?;
        for c in chunks {
            each(&c);
            crc.update(&c);
            self.feed(w, &c, FlushCompress::None)?;
        }
        self.feed(w, &[], FlushCompress::Finish)?;
        w.write_all(&crc.sum().to_le_bytes())?;
        w.write_all(&crc.amount().to_le_bytes())
    }

    /// Compresses `input` (all of it; with `Finish`, to the end of the stream) into `w`.
    fn feed<W: Write>(
        &mut self,
        w: &mut W,
        mut input: &[u8],
        flush: FlushCompress,
    ) -> io::Result<()> {
        loop {
            self.out.clear();
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let used = usize::try_from(self.compress.total_in() - before).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            w.write_all(&self.out)?;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty(),
            };
            if done {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn members_read_back_and_the_writer_is_reused() {
        let mut gz = Gz::new(6, 1024);
        for data in [b"".to_vec(), b"x".to_vec(), vec![7u8; 3 << 20]] {
            let mut out = Vec::new();
            let chunks: Vec<Vec<u8>> = data.chunks(100_000).map(<[u8]>::to_vec).collect();
            let mut seen = 0;
            gz.member(&mut out, chunks, |c| seen += c.len())
                .expect("gzip");
            assert_eq!(seen, data.len());
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .expect("gunzip");
            assert_eq!(back, data);
        }
    }
}
