//! Deterministic bytes for fixture blobs: a seeded PRNG, tar archives with fixed headers, and
//! gzip written with *stored* deflate blocks (valid gzip that any gunzip reads, with bytes that
//! depend on no compression library or version). So layers are genuine `tar+gzip` whose
//! `diff_id` (sha256 of the tar) is right, and identical in every run.

use super::sha256_digest;

/// The 32-byte gzip of an empty tar (1024 zero bytes) that Docker uses as "the empty layer".
pub const EMPTY_LAYER: [u8; 32] = [
    31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0, 8, 0, 0, 255, 255,
    46, 175, 181, 239, 0, 4, 0, 0,
];
/// Its digest, well known from Docker Hub images.
pub const EMPTY_LAYER_DIGEST: &str =
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
/// Its diff_id: sha256 of 1024 zero bytes.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// SplitMix64 seeded from a string: the only source of "randomness" in fixtures.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: &str) -> Prng {
        // FNV-1a of the seed string.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Prng(h)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// `n` deterministic pseudo-random bytes for `seed`.
pub fn pseudo_random(seed: &str, n: usize) -> Vec<u8> {
    Prng::new(seed).bytes(n)
}

/// CRC-32 (IEEE), as gzip needs.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// gzip of `data` using stored (uncompressed) deflate blocks; header mtime 0, OS 255.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Inverse of [`gzip_stored`] (only stored blocks), for self-checks.
pub fn gunzip_stored(gz: &[u8]) -> Option<Vec<u8>> {
    if gz.len() < 18 || gz[..4] != [0x1f, 0x8b, 8, 0] {
        return None;
    }
    let mut i = 10;
    let mut out = Vec::new();
    loop {
        let hdr = *gz.get(i)?;
        if hdr & 0b110 != 0 {
            return None;
        }
        let len = u16::from_le_bytes([*gz.get(i + 1)?, *gz.get(i + 2)?]) as usize;
        out.extend_from_slice(gz.get(i + 5..i + 5 + len)?);
        i += 5 + len;
        if hdr & 1 == 1 {
            break;
        }
    }
    let crc = u32::from_le_bytes(gz.get(i..i + 4)?.try_into().ok()?);
    (crc == crc32(&out)).then_some(out)
}

/// A tar archive of regular files with fixed metadata (mode 0644, uid/gid 0, mtime 0).
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).expect("tar path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data.as_slice()).expect("append to tar");
    }
    b.into_inner().expect("finish tar")
}

/// A layer blob: `tar+gzip` bytes and the `diff_id` of its tar.
#[derive(Debug, Clone)]
pub struct Layer {
    pub gz: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

/// A layer of files with pseudo-random content; `files` are `(path, size)`, seeded by `seed`.
pub fn layer(seed: &str, files: &[(&str, usize)]) -> Layer {
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, n)| (p.to_string(), pseudo_random(&format!("{seed}/{p}"), *n)))
        .collect();
    layer_of_tar(tar_of(&files))
}

/// A layer with exactly this tar content.
pub fn layer_of_tar(tar: Vec<u8>) -> Layer {
    let gz = gzip_stored(&tar);
    Layer {
        digest: sha256_digest(&gz),
        diff_id: sha256_digest(&tar),
        gz,
    }
}

/// Docker's empty layer (the exact 32 well-known bytes).
pub fn empty_layer() -> Layer {
    Layer {
        gz: EMPTY_LAYER.to_vec(),
        digest: EMPTY_LAYER_DIGEST.to_string(),
        diff_id: EMPTY_LAYER_DIFF_ID.to_string(),
    }
}
