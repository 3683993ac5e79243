//! Streaming writer of one large, deterministic, incompressible layer blob.
//!
//! The blob is a genuine `tar+gzip`: a tar holding one regular file of pseudo-random bytes (the
//! harness's SplitMix64 [`Prng`]), wrapped in gzip with *stored* deflate blocks (like
//! `ferry_test_support::blobs::gzip_stored`, so any gunzip reads it and no compression library is involved).
//! Nothing is held in memory beyond a 1 MiB buffer: the layer digest (sha256 of the gzip
//! stream), the diff_id (sha256 of the tar) and the gzip CRC-32 are computed while writing.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use ferry_test_support::blobs::Prng;

/// What a written layer is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:…` of the blob (the gzip stream).
    pub digest: String,
    /// `sha256:…` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// Largest stored deflate block.
const BLOCK: usize = 65_535;

/// CRC-32 (IEEE) with slicing-by-8 tables: ~10× the bitwise loop of the test harness, so the
/// CRC does not dominate generating gigabytes.
struct Crc32 {
    state: u32,
}

fn crc_tables() -> &'static [[u32; 256]; 8] {
    static T: OnceLock<Box<[[u32; 256]; 8]>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Box::new([[0u32; 256]; 8]);
        for i in 0..256u32 {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                };
            }
            t[0][i as usize] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        t
    })
}

impl Crc32 {
    fn new() -> Self {
        Crc32 { state: !0 }
    }
    fn update(&mut self, data: &[u8]) {
        let t = crc_tables();
        let mut crc = self.state;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
            let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            crc = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xff) as usize]
                ^ t[2][((hi >> 8) & 0xff) as usize]
                ^ t[1][((hi >> 16) & 0xff) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
        }
        self.state = crc;
    }
    fn finish(&self) -> u32 {
        !self.state
    }
}

/// Tar bytes in, gzip (stored blocks) out to a hashed file.
struct GzipStoredWriter {
    out: BufWriter<File>,
    digest: Sha256,
    diff_id: Sha256,
    crc: Crc32,
    tar_len: u64,
    gz_len: u64,
    /// The current deflate block; written when full *and* more data follows (so the last one
    /// can carry BFINAL).
    block: Vec<u8>,
}

impl GzipStoredWriter {
    fn new(file: File) -> io::Result<Self> {
        let mut w = GzipStoredWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            digest: Sha256::new(),
            diff_id: Sha256::new(),
            crc: Crc32::new(),
            tar_len: 0,
            gz_len: 0,
            block: Vec::with_capacity(BLOCK),
        };
        // gzip header: deflate, no flags, mtime 0, no extra flags, OS 255 (as gzip_stored).
        w.emit(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(w)
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.digest.update(bytes);
        self.gz_len += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn flush_block(&mut self, last: bool) -> io::Result<()> {
        let len = self.block.len() as u16;
        let mut hdr = [0u8; 5];
        hdr[0] = u8::from(last);
        hdr[1..3].copy_from_slice(&len.to_le_bytes());
        hdr[3..5].copy_from_slice(&(!len).to_le_bytes());
        let block = std::mem::take(&mut self.block);
        self.emit(&hdr)?;
        self.emit(&block)?;
        self.block = block;
        self.block.clear();
        Ok(())
    }

    /// Appends tar bytes.
    fn write_tar(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.diff_id.update(data);
        self.crc.update(data);
        self.tar_len += data.len() as u64;
        while !data.is_empty() {
            if self.block.len() == BLOCK {
                self.flush_block(false)?;
            }
            let n = (BLOCK - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<LayerInfo> {
        self.flush_block(true)?;
        let crc = self.crc.finish();
        let isize = self.tar_len as u32; // gzip ISIZE is the length mod 2^32
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&isize.to_le_bytes());
        self.emit(&trailer)?;
        // No fsync: bench.sh runs `sync` before every timed phase.
        self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(LayerInfo {
            digest: format!("sha256:{}", hex::encode(self.digest.finalize())),
            diff_id: format!("sha256:{}", hex::encode(self.diff_id.finalize())),
            size: self.gz_len,
        })
    }
}

/// Writes to `path` a layer whose tar holds one file `file_path` of `content_len` bytes from
/// the PRNG seeded with `seed`. Returns its digest, diff_id and size.
pub fn write_layer(
    path: &Path,
    seed: &str,
    file_path: &str,
    content_len: u64,
) -> io::Result<LayerInfo> {
    let mut w = GzipStoredWriter::new(File::create(path)?)?;

    let mut h = tar::Header::new_ustar();
    h.set_path(file_path)?;
    h.set_size(content_len);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    w.write_tar(h.as_bytes())?;

    let mut prng = Prng::new(seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = content_len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            word.copy_from_slice(&prng.next_u64().to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        w.write_tar(&buf[..n])?;
        left -= n as u64;
    }

    // Pad the entry to 512 bytes, then the two zero records that end an archive.
    let pad = (512 - (content_len % 512) as usize) % 512;
    let zeros = [0u8; 512];
    w.write_tar(&zeros[..pad])?;
    w.write_tar(&zeros)?;
    w.write_tar(&zeros)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_bitwise() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut c = Crc32::new();
        c.update(&data[..17]);
        c.update(&data[17..]);
        assert_eq!(c.finish(), ferry_test_support::blobs::crc32(&data));
    }
}
