//! Unit tests of `store/archive/scan.rs`: names, links, extension headers and bounds of
//! untrusted archives.

use super::*;

fn options(dir: &Path) -> Options {
    Options {
        compress: Some(1),
        spool_dir: dir.to_path_buf(),
        spool_limit: u64::MAX,
        parallel: 2,
        progress: Arc::new(AtomicU64::new(0)),
    }
}

fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.set_link_name(l).expect("link");
        }
        // Set the raw name so `..` and absolute names reach the scanner as written.
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

fn scan_bytes(bytes: &[u8]) -> Result<Scanned, ArchiveError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.tar");
    std::fs::write(&path, bytes).expect("write");
    scan(&path, &options(dir.path()))
}

#[test]
fn normalizes_names_and_refuses_escapes() {
    assert_eq!(normalize("./a//b/./c").as_deref(), Some("a/b/c"));
    assert_eq!(normalize("a/../b").as_deref(), Some("b"));
    assert_eq!(normalize("../etc/passwd"), None);
    assert_eq!(normalize("/etc/passwd"), None);
    assert_eq!(normalize("a\\b"), None);
    assert_eq!(normalize("./"), None);
}

#[test]
fn follows_links_inside_and_refuses_links_out() {
    let layer = small_tar();
    let ok = tar_with(&[
        (
            "x/layer.tar",
            tar::EntryType::Symlink,
            b"",
            Some("../y/layer.tar"),
        ),
        ("y/layer.tar", tar::EntryType::Regular, &layer, None),
        ("manifest.json", tar::EntryType::Regular, b"[]", None),
    ]);
    let s = scan_bytes(&ok).expect("scan");
    assert_eq!(s.resolve("x/layer.tar").expect("resolve"), "y/layer.tar");
    assert!(s.blob("x/layer.tar").expect("blob").is_some());
    assert!(s.file("manifest.json").expect("file").is_some());

    let out = tar_with(&[(
        "x/layer.tar",
        tar::EntryType::Symlink,
        b"",
        Some("../../../etc/shadow"),
    )]);
    let e = scan_bytes(&out).expect_err("refused").to_string();
    assert!(e.contains("outside the archive"), "{e}");
    let abs = tar_with(&[("/etc/x", tar::EntryType::Regular, b"{}", None)]);
    assert!(
        scan_bytes(&abs)
            .expect_err("refused")
            .to_string()
            .contains("unsafe entry")
    );
}

#[test]
fn a_link_loop_is_refused_not_followed_forever() {
    let looped = tar_with(&[
        ("a", tar::EntryType::Symlink, b"", Some("b")),
        ("b", tar::EntryType::Symlink, b"", Some("a")),
    ]);
    let s = scan_bytes(&looped).expect("scan");
    assert!(
        s.resolve("a")
            .expect_err("loop")
            .to_string()
            .contains("does not end")
    );
}

/// A small valid tar to use as a layer.
fn small_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("f").expect("path");
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).expect("append");
    b.into_inner().expect("tar")
}

/// A raw header block.
fn block(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(name).expect("name");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `data` padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let rest = format!(" {k}={v}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        out.extend(format!("{len}{rest}").into_bytes());
    }
    out
}

#[test]
fn long_names_links_and_pax_records_are_applied_as_go_applies_them() {
    let long = format!("{}/layer.tar", "d".repeat(150));
    let layer = small_tar();
    let mut t = Vec::new();
    // GNU long name for a layer.
    t.extend(block(
        "././@LongLink",
        tar::EntryType::GNULongName,
        long.len() as u64 + 1,
    ));
    t.extend(padded(format!("{long}\0").as_bytes()));
    t.extend(block("short", tar::EntryType::Regular, layer.len() as u64));
    t.extend(padded(&layer));
    // GNU long link for a symlink to it.
    let target = format!("../{long}");
    t.extend(block(
        "././@LongLink",
        tar::EntryType::GNULongLink,
        target.len() as u64,
    ));
    t.extend(padded(target.as_bytes()));
    t.extend(block("x/link.tar", tar::EntryType::Symlink, 0));
    // A PAX path and size win over the header's (a size field of 0, as Go writes for
    // sizes too big for it).
    let body = b"[]";
    let rec = pax(&[("path", "manifest.json"), ("size", "2")]);
    t.extend(block(
        "PaxHeaders/x",
        tar::EntryType::XHeader,
        rec.len() as u64,
    ));
    t.extend(padded(&rec));
    t.extend(block("ignored", tar::EntryType::Regular, 0));
    t.extend(padded(body));
    t.extend([0u8; 1024]);
    let s = scan_bytes(&t).expect("scan");
    assert!(s.blobs.contains_key(&long), "{:?}", s.blobs.keys());
    assert_eq!(s.resolve("x/link.tar").expect("resolve"), long);
    assert_eq!(
        s.file("manifest.json").expect("file").map(|b| &b[..]),
        Some(&body[..])
    );
}

#[test]
fn an_oversized_extension_header_is_refused_before_it_is_read() {
    for kind in [
        tar::EntryType::GNULongName,
        tar::EntryType::GNULongLink,
        tar::EntryType::XHeader,
    ] {
        // Only the header: the refusal comes before any of its data would be read.
        let mut t = block("././@LongLink", kind, stream::MAX_EXTENSION + 1);
        t.extend([0u8; 1024]);
        let e = scan_bytes(&t).expect_err("refused").to_string();
        assert!(
            e.contains("@LongLink") && e.contains(&stream::MAX_EXTENSION.to_string()),
            "{e}"
        );
    }
}

#[test]
fn a_dangling_or_doubled_extension_header_is_a_bad_tar() {
    let mut t = block("././@LongLink", tar::EntryType::GNULongName, 2);
    t.extend(padded(b"a\0"));
    t.extend([0u8; 1024]);
    assert!(
        scan_bytes(&t)
            .expect_err("refused")
            .to_string()
            .contains("describes no entry")
    );
    let mut t = Vec::new();
    for _ in 0..2 {
        t.extend(block("././@LongLink", tar::EntryType::GNULongName, 2));
        t.extend(padded(b"a\0"));
    }
    t.extend(block("b", tar::EntryType::Regular, 0));
    t.extend([0u8; 1024]);
    assert!(
        scan_bytes(&t)
            .expect_err("refused")
            .to_string()
            .contains("two GNU long-name headers")
    );
}
