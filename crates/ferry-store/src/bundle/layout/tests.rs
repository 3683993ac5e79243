//! Unit tests of `store/bundle/layout.rs`.

use super::*;
use crate::bundle::testutil::{digest_of, write_sequentially};

fn sample_plan() -> (Plan, Vec<Vec<u8>>) {
    let blobs: Vec<Vec<u8>> = [0usize, 1, 511, 512, 513, 2000]
        .iter()
        .map(|&n| (0..n).map(|i| (i % 251) as u8).chain([n as u8]).collect())
        .collect();
    let metadata = vec![
        ("manifest.json", b"[]".to_vec()),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", vec![b'x'; 700]),
    ];
    let mut list: Vec<(Digest, u64)> = blobs
        .iter()
        .map(|b| (digest_of(b), b.len() as u64))
        .collect();
    list.push(list[2].clone()); // a duplicate is merged
    (Plan::new(metadata, list).expect("plan"), blobs)
}

#[test]
fn offsets_agree_with_the_tar_crate() {
    let (plan, blobs) = sample_plan();
    let bytes = write_sequentially(&plan, &blobs);
    assert_eq!(bytes.len() as u64, plan.total_size());
    let mut archive = tar::Archive::new(std::io::Cursor::new(bytes));
    let mut seen = Vec::new();
    for entry in archive.entries_with_seek().expect("entries") {
        let entry = entry.expect("entry");
        seen.push((
            String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            entry.raw_header_position(),
            entry.raw_file_position(),
            entry.size(),
        ));
    }
    let planned: Vec<_> = plan
        .entries()
        .map(|e| {
            let pos = (e.header_offset(), e.data_offset(), e.size());
            (e.name().to_owned(), pos.0, pos.1, pos.2)
        })
        .collect();
    assert_eq!(seen, planned);
    let names: Vec<String> = plan.entries().map(|e| e.name().to_owned()).collect();
    assert_eq!(
        &names[..5],
        [
            "oci-layout",
            "index.json",
            "manifest.json",
            "blobs/",
            "blobs/sha256/"
        ]
    );
    assert_eq!(plan.blob_count(), 6);
    let digests: Vec<Digest> = plan.blobs().filter_map(|e| e.digest().cloned()).collect();
    assert!(digests.windows(2).all(|w| w[0] < w[1]), "blobs sorted");
}

#[test]
fn headers_are_deterministic() {
    let (a, _) = sample_plan();
    let (b, _) = sample_plan();
    assert_eq!(a.fingerprint(), b.fingerprint());
    for e in a.entries() {
        let block = e.header_bytes();
        let h = Header::from_byte_slice(&block);
        let dir = matches!(e.kind(), EntryKind::Directory);
        assert_eq!(h.mode().expect("mode"), if dir { 0o755 } else { 0o644 });
        assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
        assert_eq!(h.mtime().expect("mtime"), 0);
        assert_eq!(h.username(), Ok(Some("")));
        assert_eq!(h.groupname(), Ok(Some("")));
        assert!(h.as_gnu().is_some());
        assert_eq!(h.path_bytes().as_ref(), e.name().as_bytes());
    }
    let other = Plan::new([("oci-layout", b"{}".to_vec())], []).expect("plan");
    assert_ne!(a.fingerprint(), other.fingerprint());
}

#[test]
fn sizes_over_8_gib_use_base_256() {
    let huge = 9 * 1024 * 1024 * 1024 + 7;
    let d = digest_of(b"huge");
    let plan = Plan::new(Vec::<(&str, Vec<u8>)>::new(), [(d.clone(), huge)]).expect("plan");
    let entry = plan.blob(&d).expect("planned");
    let block = entry.header_bytes();
    let header = Header::from_byte_slice(&block);
    assert_eq!(header.as_old().size[0] & 0x80, 0x80, "GNU base-256 size");
    assert_eq!(header.entry_size().expect("size"), huge);
    assert_eq!(
        plan.total_size(),
        entry.data_offset() + padded(huge).expect("pad") + 1024
    );
}

#[test]
fn refuses_inconsistent_inputs() {
    let d = digest_of(b"a");
    let none = Vec::<(&str, Vec<u8>)>::new;
    let err = |r: Result<Plan, BundleError>| r.expect_err("refused").to_string();
    assert!(err(Plan::new(none(), [(d.clone(), 1), (d.clone(), 2)])).contains("two sizes"));
    assert!(err(Plan::new([("repositories", vec![])], [])).contains("not a bundle metadata"));
    let twice = [("index.json", vec![]), ("index.json", vec![])];
    assert!(err(Plan::new(twice, [])).contains("twice"));
    let big = vec![0u8; MAX_METADATA_SIZE as usize + 1];
    assert!(err(Plan::new([("index.json", big)], [])).contains("limit"));
    let sha512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).expect("digest");
    assert!(err(Plan::new(none(), [(sha512, 1)])).contains("sha256"));
    assert!(err(Plan::new(none(), [(d, u64::MAX - 100)])).contains("2^64"));
}

#[test]
fn released_metadata_keeps_the_layout() {
    let (mut plan, _) = sample_plan();
    let before: Vec<_> = plan
        .entries()
        .map(|e| {
            (
                e.name().to_owned(),
                e.header_offset(),
                e.size(),
                e.header_bytes(),
            )
        })
        .collect();
    let fingerprint = plan.fingerprint().clone();
    plan.release_metadata();
    let after: Vec<_> = plan
        .entries()
        .map(|e| {
            (
                e.name().to_owned(),
                e.header_offset(),
                e.size(),
                e.header_bytes(),
            )
        })
        .collect();
    assert_eq!(before, after);
    assert_eq!(plan.fingerprint(), &fingerprint);
    assert!(
        plan.entries()
            .all(|e| !matches!(e.kind(), EntryKind::Metadata(c) if !c.is_empty()))
    );
}
