//! Unit tests of `store/registry/upload.rs`.

use super::*;

#[test]
fn upload_status_ranges() {
    assert_eq!(parse_range_end("0-1023"), Some(1024));
    assert_eq!(
        parse_range_end("0-0"),
        Some(0),
        "ambiguous: resend from the start"
    );
    assert_eq!(parse_range_end("bytes=0-9"), Some(10));
    assert_eq!(parse_range_end("5-9"), None);
    assert_eq!(parse_range_end("garbage"), None);
}

#[test]
fn digest_is_appended_to_the_location_query() {
    let d =
        Digest::parse("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
            .expect("digest");
    let l = Url::parse("https://r.example/v2/a/blobs/uploads/uuid?_state=abc").expect("url");
    let u = with_digest(&l, &d);
    assert_eq!(
        u.query(),
        Some(
            "_state=abc&digest=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        )
    );
}
