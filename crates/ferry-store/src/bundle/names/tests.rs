//! Unit tests of `store/bundle/names.rs`.

use super::*;
use proptest::prelude::*;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn accepts_exactly_the_bundle_names() {
    for m in METADATA_FILES {
        assert_eq!(classify(m.as_bytes()), Ok(EntryName::Metadata(m)));
    }
    for d in DIRECTORIES {
        assert_eq!(classify(d.as_bytes()), Ok(EntryName::Directory(d)));
    }
    let name = format!("blobs/sha256/{HEX}");
    let Ok(EntryName::Blob(d)) = classify(name.as_bytes()) else {
        panic!("blob name refused");
    };
    assert_eq!(d.hex(), HEX);
}

#[test]
fn refuses_everything_else_with_a_reason() {
    let upper = format!("blobs/sha256/{}", HEX.to_uppercase());
    let short = format!("blobs/sha256/{}", &HEX[..63]);
    let sha512 = format!("blobs/sha512/{HEX}{HEX}");
    let colon = format!("blobs/sha512:/{HEX}");
    let dot = format!("./blobs/sha256/{HEX}");
    let nested = format!("blobs/sha256/{HEX}/x");
    let cases: Vec<(&[u8], &str)> = vec![
        (b"/etc/passwd", "absolute"),
        (b"../x", "climbs"),
        (b"blobs/../index.json", "climbs"),
        (b"blobs/sha256/..", "climbs"),
        (b"blobs", "not a file"),
        (b"blobs/sha256", "not named"),
        (b"index.json/", "not a file"),
        (b"repositories", "not a file"),
        (b"\xff", "UTF-8"),
        (upper.as_bytes(), "uppercase"),
        (short.as_bytes(), "exactly 64"),
        (sha512.as_bytes(), "sha256 blob"),
        (colon.as_bytes(), "valid digest"),
        (dot.as_bytes(), "not a file"),
        (nested.as_bytes(), "valid digest"),
    ];
    for (name, why) in cases {
        let reason = classify(name).expect_err(&quote(name)).to_string();
        assert!(reason.contains(why), "{}: {reason}", quote(name));
    }
}

proptest! {
    #[test]
    fn accepted_blob_names_are_their_digest_path(name in "(blobs/)?[a-z0-9./:]{0,80}") {
        if let Ok(EntryName::Blob(d)) = classify(name.as_bytes()) {
            prop_assert_eq!(d.blob_path(), name);
        }
    }
}
