//! Unit tests of `store/registry/blobs.rs`.

use super::*;

#[test]
fn content_range() {
    assert_eq!(
        content_range_start(&HeaderValue::from_static("bytes 100-199/200")),
        Some(100)
    );
    assert_eq!(
        content_range_start(&HeaderValue::from_static("bytes 0-0/*")),
        Some(0)
    );
    assert_eq!(
        content_range_start(&HeaderValue::from_static("100-199")),
        None
    );
    assert_eq!(
        content_range_total(&HeaderValue::from_static("bytes 0-0/5143")),
        Some(5143)
    );
    assert_eq!(
        content_range_total(&HeaderValue::from_static("bytes 0-0/*")),
        None
    );
}
