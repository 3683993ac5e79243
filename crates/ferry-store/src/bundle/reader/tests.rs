//! Tests of the reader against damaged and malicious archives.

use std::path::PathBuf;

use tar::{EntryType, Header};

use crate::bundle::testutil::{RawTar, digest_of, sample_blobs, sample_plan, write_sequentially};
use crate::bundle::{BundleError, BundleReader, INDEX_JSON, MAX_METADATA_SIZE, padded};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn open_bytes(
    bytes: &[u8],
) -> (
    tempfile::TempDir,
    PathBuf,
    Result<BundleReader, BundleError>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundle.tar");
    std::fs::write(&path, bytes).expect("write");
    let result = BundleReader::open(&path);
    (dir, path, result)
}

fn refused(bytes: &[u8]) -> String {
    let (_dir, path, result) = open_bytes(bytes);
    let err = result.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "names the file: {text}"
    );
    text
}

/// One PAX record, `<len> <key>=<value>\n`, its length counting itself.
fn pax(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    loop {
        let record = format!("{n}{body}");
        if record.len() == n {
            return record.into_bytes();
        }
        n = record.len();
    }
}

/// A valid start, then `bad`.
fn with_bad(bad: impl FnOnce(&mut RawTar)) -> Vec<u8> {
    let mut tar = RawTar::default();
    tar.file("oci-layout", b"{}");
    bad(&mut tar);
    tar.finish()
}

#[test]
fn accepts_a_minimal_bundle() {
    let blob = b"hello";
    let name = digest_of(blob).blob_path();
    let bytes = RawTar::default()
        .file("oci-layout", b"{}")
        .entry(b"blobs/", EntryType::Directory, b"")
        .file(&name, blob)
        .finish();
    let (_dir, _path, reader) = open_bytes(&bytes);
    let reader = reader.expect("opens");
    let loc = reader.blob(&digest_of(blob)).expect("indexed");
    assert_eq!((loc.offset, loc.size), (512 * 4, 5));
    assert_eq!(reader.metadata("oci-layout"), Some(&b"{}"[..]));
    assert_eq!(reader.metadata(INDEX_JSON), None);
    let missing = reader.open_blob(&digest_of(b"other")).expect_err("missing");
    assert!(matches!(missing, BundleError::MissingBlob { .. }));
}

#[test]
fn refuses_unsafe_and_unknown_entries() {
    let upper = format!("blobs/sha256/{}", HEX.to_uppercase());
    let short = format!("blobs/sha256/{}", &HEX[..60]);
    let sha512 = format!("blobs/sha512:/{HEX}");
    let good_blob = format!("blobs/sha256/{HEX}");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            with_bad(|t| _ = t.file("/etc/passwd", b"x")),
            "absolute path",
        ),
        (with_bad(|t| _ = t.file("../x", b"x")), "climbs out"),
        (
            with_bad(|t| _ = t.file("blobs/sha256/..", b"x")),
            "climbs out",
        ),
        (with_bad(|t| _ = t.file(&upper, b"x")), "uppercase"),
        (with_bad(|t| _ = t.file(&short, b"x")), "exactly 64"),
        (with_bad(|t| _ = t.file(&sha512, b"x")), "valid digest"),
        (
            with_bad(|t| _ = t.file("repositories", b"x")),
            "not a file of a ferry bundle",
        ),
        (
            with_bad(|t| _ = t.file("blobs/", b"")),
            "regular file where a directory",
        ),
        (
            with_bad(|t| _ = t.entry(b"index.json", EntryType::Directory, b"")),
            "directory where a file",
        ),
        (
            with_bad(|t| {
                let mut h = Header::new_gnu();
                h.set_path("index.json").expect("path");
                h.set_entry_type(EntryType::Symlink);
                h.set_link_name("/etc/passwd").expect("link");
                h.set_size(0);
                t.raw(h, b"");
            }),
            "symbolic link",
        ),
        (
            with_bad(|t| {
                let mut h = Header::new_gnu();
                h.set_path(&good_blob).expect("path");
                h.set_entry_type(EntryType::Link);
                h.set_link_name("oci-layout").expect("link");
                h.set_size(0);
                t.raw(h, b"");
            }),
            "hard link",
        ),
        (
            with_bad(|t| _ = t.entry(b"manifest.json", EntryType::Char, b"")),
            "character device",
        ),
        (
            with_bad(|t| _ = t.entry(b"images.lock", EntryType::Fifo, b"")),
            "FIFO",
        ),
        (
            with_bad(|t| {
                t.entry(b"././@LongLink", EntryType::GNULongName, b"index.json\0");
                t.file("repositories", b"x");
            }),
            "GNU long-name",
        ),
        (
            with_bad(|t| {
                t.entry(
                    b"PaxHeader/x",
                    EntryType::XHeader,
                    &pax("path", "blobs/../../x"),
                );
                t.file("index.json", b"{}");
            }),
            "overrides \"path\"",
        ),
        (
            with_bad(|t| {
                t.entry(b"PaxHeader/x", EntryType::XHeader, b"13 size=9999\n");
                t.file("index.json", b"{}");
            }),
            "overrides \"size\"",
        ),
        (
            with_bad(|t| _ = t.entry(b"PaxHeader/x", EntryType::XHeader, b"12 mtime=10\n")),
            "describing no entry",
        ),
        (
            with_bad(|t| _ = t.entry(b"PaxHeader/x", EntryType::XHeader, b"99 mtime=1\n")),
            "malformed PAX",
        ),
    ];
    for (bytes, why) in cases {
        let text = refused(&bytes);
        assert!(text.contains(why), "expected {why:?} in: {text}");
    }
}

#[test]
fn accepts_a_harmless_pax_header() {
    let bytes = with_bad(|t| {
        t.entry(b"PaxHeader/x", EntryType::XHeader, b"12 mtime=10\n");
        t.file("index.json", b"{}");
    });
    let (_dir, _path, reader) = open_bytes(&bytes);
    let reader = reader.expect("opens");
    assert_eq!(reader.metadata(INDEX_JSON), Some(&b"{}"[..]));
}

#[test]
fn refuses_duplicates() {
    for name in [
        "index.json",
        "blobs/sha256/",
        &format!("blobs/sha256/{HEX}"),
    ] {
        let kind = if name.ends_with('/') {
            EntryType::Directory
        } else {
            EntryType::Regular
        };
        let bytes = with_bad(|t| {
            t.entry(name.as_bytes(), kind, b"");
            t.entry(name.as_bytes(), kind, b"");
        });
        let text = refused(&bytes);
        assert!(text.contains("twice"), "{text}");
    }
}

#[test]
fn detects_truncation_and_names_the_entry() {
    let blobs = sample_blobs();
    let plan = sample_plan(&blobs);
    let bytes = write_sequentially(&plan, &blobs);
    // A truncated bundle opens, keeps what lies before the cut, and says why it is short.
    let truncation = |cut: usize| {
        let (_dir, path, result) = open_bytes(&bytes[..cut]);
        let reader = result.expect("a truncated bundle still opens");
        let text = reader.truncated().expect("truncation reported").to_string();
        assert!(
            text.contains(&path.display().to_string()),
            "names the file: {text}"
        );
        (reader, text)
    };
    // The last 1000 bytes are all end-of-archive marker: every blob is still there.
    let (reader, text) = truncation(bytes.len() - 1000);
    assert!(
        text.contains("is truncated") && text.contains("copy it again"),
        "{text}"
    );
    assert_eq!(reader.blobs().count(), plan.blob_count());
    // Cutting into a blob names it, and that blob (only) is missing.
    let last = plan
        .blobs()
        .filter(|e| e.size() > 1)
        .last()
        .expect("a blob");
    let cut = last.data_offset() + last.size() / 2;
    let (reader, text) = truncation(cut as usize);
    let missing = last.size() - last.size() / 2;
    let expected = format!("entry {} needs {missing} bytes", last.name());
    assert!(text.contains(&expected), "{text}");
    assert!(text.contains("past the end of the file"), "{text}");
    let digest = last.digest().expect("blob digest");
    assert!(reader.blob(digest).is_none(), "the cut blob is missing");
    assert!(
        reader.metadata("index.json").is_some(),
        "metadata before the cut is kept"
    );
    // A file ending inside a header block.
    let (_, text) = truncation(last.header_offset() as usize + 100);
    assert!(text.contains("is truncated"), "{text}");
}

#[test]
fn refuses_a_broken_header_checksum() {
    let mut bytes = with_bad(|t| _ = t.file("index.json", b"{}"));
    bytes[1024 + 10] ^= 1; // in the header of index.json
    let text = refused(&bytes);
    assert!(text.contains("not a readable tar archive"), "{text}");
}

#[test]
fn refuses_oversized_metadata_without_reading_it() {
    let size = MAX_METADATA_SIZE + 1;
    let mut h = Header::new_gnu();
    h.set_path("index.json").expect("path");
    h.set_size(size);
    h.set_mode(0o644);
    let header_only = RawTar::default().raw(h, b"").bytes.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.tar");
    std::fs::write(&path, &header_only).expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    let total = 512 + padded(size).expect("pad") + 1024;
    file.set_len(total).expect("sparse size");
    let err = BundleReader::open(&path).expect_err("refused");
    assert!(matches!(err, BundleError::MetadataTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");
}

#[test]
fn verify_blob_detects_a_flipped_byte() {
    let blobs = sample_blobs();
    let plan = sample_plan(&blobs);
    let mut bytes = write_sequentially(&plan, &blobs);
    let victim = digest_of(&blobs[5]);
    let entry = plan.blob(&victim).expect("planned");
    bytes[entry.data_offset() as usize + 100] ^= 0x40;
    let (_dir, _path, reader) = open_bytes(&bytes);
    let reader = reader.expect("opens");
    let err = reader.verify_blob(&victim).expect_err("corrupt");
    assert!(matches!(err, BundleError::CorruptBlob { .. }), "{err}");
    assert!(err.to_string().contains(victim.as_str()), "{err}");
    for blob in &blobs {
        let d = digest_of(blob);
        if d != victim {
            reader.verify_blob(&d).expect("intact");
        }
    }
}

#[test]
fn says_what_a_file_that_is_not_a_bundle_is() {
    let text = refused(b"");
    assert!(
        text.contains("not a ferry bundle") && text.contains("empty"),
        "{text}"
    );
    let text = refused(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
    assert!(text.contains("gzip-compressed"), "{text}");
    let text = refused(&[0u8; 1024]);
    assert!(text.contains("empty tar archive"), "{text}");
    let text = refused(b"<html>404 Not Found</html>\n");
    assert!(text.contains("less than one tar header"), "{text}");
    let text = refused(&[b'x'; 4096]);
    assert!(text.contains("does not start with a tar header"), "{text}");
    // A real bundle's first header passes the check.
    let blobs = sample_blobs();
    let bytes = write_sequentially(&sample_plan(&blobs), &blobs);
    let (_dir, _path, result) = open_bytes(&bytes);
    result.expect("a bundle opens");
}
