//! Unit tests of `store/archive/scan.rs`: names, links and bounds of untrusted archives.

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
