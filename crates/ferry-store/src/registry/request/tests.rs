//! Unit tests of `store/registry/request.rs`.

use super::*;

#[test]
fn rate_limit_headers() {
    let mut h = HeaderMap::new();
    h.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
    h.insert(
        "ratelimit-remaining",
        HeaderValue::from_static("76;w=21600"),
    );
    h.insert(
        "docker-ratelimit-source",
        HeaderValue::from_static("203.0.113.7"),
    );
    let rl = parse_rate_limit(&h).expect("parsed");
    assert_eq!(
        rl,
        RateLimit {
            limit: 100,
            remaining: Some(76),
            window_seconds: Some(21600),
            source: Some("203.0.113.7".into())
        }
    );
}

#[test]
fn retry_after_forms() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
    h.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
    h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
    assert_eq!(parse_retry_after(&h), None);
}
