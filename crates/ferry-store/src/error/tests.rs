//! Unit tests of `store/error.rs`.

use super::*;

#[test]
fn a_typed_error_survives_a_stream() {
    let d = Digest::sha256_of(b"x");
    let e = StoreError::Missing {
        what: "blob",
        digest: d.clone(),
        origin: "bundle b.tar".into(),
    };
    let io = e.into_io();
    let back = StoreError::from_stream(io, || "reading".into());
    assert!(back.is_not_found(), "{back}");
    assert!(back.to_string().contains("copy the bundle again"), "{back}");
    let plain = StoreError::from_stream(std::io::Error::other("disk"), || "writing".into());
    assert!(matches!(plain, StoreError::Io { .. }));
}
