//! Test helpers shared by the bundle tests: sample inputs, a sequential reference writer,
//! the slot protocol as the bundle destination drives it, and a raw tar builder for
//! malicious archives.

use std::io::Read;

use tar::{EntryType, Header};

use super::index::{DockerEntry, docker_manifest_json, index_json, oci_layout_bytes};
use super::layout::{EntryKind, Plan};
use super::writer::BundleWriter;
use ferry_oci::digest::{Digest, Verifier};
use ferry_oci::manifest::Descriptor;
use ferry_oci::media_types::OCI_MANIFEST;

pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest::sha256_of(bytes)
}

/// Deterministic pseudo-random bytes.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Blobs of awkward sizes, one big enough for several checkpoints of 64 KiB.
pub fn sample_blobs() -> Vec<Vec<u8>> {
    [0usize, 1, 511, 512, 513, 4096, 300_000, 70_001]
        .iter()
        .enumerate()
        .map(|(i, &n)| bytes(n, i as u64 + 1))
        .collect()
}

/// A plan over `blobs` with all four metadata files.
pub fn sample_plan(blobs: &[Vec<u8>]) -> Plan {
    let list: Vec<(Digest, u64)> = blobs
        .iter()
        .map(|b| (digest_of(b), b.len() as u64))
        .collect();
    let descriptor = Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        digest: list[1].0.clone(),
        size: list[1].1,
        platform: None,
        annotations: Default::default(),
    };
    let index = index_json(&[(
        "docker.io/rancher/rke-tools:v0.1.103".to_owned(),
        descriptor,
    )]);
    let manifest = docker_manifest_json(&[DockerEntry {
        repo_tags: vec!["rancher/rke-tools:v0.1.103".to_owned()],
        config: list[2].0.clone(),
        layers: vec![list[3].0.clone()],
    }]);
    let metadata = vec![
        ("manifest.json", manifest),
        ("images.lock", b"images: []\n".to_vec()),
        ("index.json", index),
        ("oci-layout", oci_layout_bytes()),
    ];
    match Plan::new(metadata, list) {
        Ok(plan) => plan,
        Err(e) => panic!("sample plan: {e}"),
    }
}

/// The bundle bytes as a plain sequential writer would produce them.
pub fn write_sequentially(plan: &Plan, blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; plan.total_size() as usize];
    for e in plan.entries() {
        let h = e.header_offset() as usize;
        out[h..h + 512].copy_from_slice(&e.header_bytes());
        let data: &[u8] = match e.kind() {
            EntryKind::Metadata(c) => c,
            EntryKind::Directory => &[],
            EntryKind::Blob(d) => blobs
                .iter()
                .find(|b| digest_of(b) == d.clone())
                .map(Vec::as_slice)
                .unwrap_or_default(),
        };
        let o = e.data_offset() as usize;
        out[o..o + data.len()].copy_from_slice(data);
    }
    out
}

/// Writes `blob` the way the copy engine does: resume from `existing_len` after re-hashing
/// the prefix, append in chunks, verify, commit.
pub fn fill(writer: &BundleWriter, blob: &[u8]) {
    fill_until(writer, blob, blob.len());
}

/// Like [`fill`], but stops (drops the sink without committing) after `stop` bytes.
pub fn fill_until(writer: &BundleWriter, blob: &[u8], stop: usize) {
    let digest = digest_of(blob);
    let mut sink = writer.blob_sink(&digest).expect("sink");
    let have = sink.written() as usize;
    let mut prefix = Vec::new();
    sink.prefix_reader()
        .read_to_end(&mut prefix)
        .expect("read prefix");
    assert_eq!(prefix, blob[..have], "prefix bytes of {digest}");
    let mut verifier =
        Verifier::with_prefix(digest.clone(), Some(blob.len() as u64), &prefix[..]).expect("v");
    for chunk in blob[have..stop.max(have)].chunks(7_777) {
        verifier.update(chunk).expect("update");
        sink.append(chunk).expect("append");
    }
    if stop >= blob.len() {
        verifier.finish().expect("verified");
        sink.commit().expect("commit");
    }
}

/// Builds tar files byte by byte, including ones the `tar` crate's builder refuses to make.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    /// Appends an entry with a raw name, type and data (a GNU header, checksummed).
    pub fn entry(&mut self, name: &[u8], kind: EntryType, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        self.raw(h, data)
    }

    /// Appends a prepared header (its checksum is set here) and data.
    pub fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.resize(self.bytes.len() + pad, 0);
        self
    }

    /// A valid file entry.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name.as_bytes(), EntryType::Regular, data)
    }

    /// The archive with its end-of-archive blocks.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out.resize(out.len() + 1024, 0);
        out
    }
}
