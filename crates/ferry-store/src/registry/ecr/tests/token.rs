//! Decoding login tokens, parsing GetAuthorizationToken answers, and the call's failures
//! before and without an answer.

use std::net::TcpListener;

use base64::Engine as _;
use url::Url;

use super::{ID, SECRET, at, b64, keys};
use crate::registry::ecr::token::parse_answer;
use crate::registry::ecr::{EcrError, decode_token, get_authorization_token};
use ferry_base::secret::Secret;

#[test]
fn decodes_tokens() {
    let (user, password) = decode_token(&Secret::new(b64("AWS:pass:with:colons"))).unwrap();
    assert_eq!(user, "AWS");
    assert_eq!(password.expose(), "pass:with:colons");
    for (bad, why) in [
        ("!!!not base64!!!".to_string(), "base64"),
        (b64("no-colon-here"), "user:password"),
        (b64("AWS:"), "empty"),
        (b64(":pw"), "empty"),
        (
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
            "UTF-8",
        ),
    ] {
        let e = decode_token(&Secret::new(bad.clone())).unwrap_err();
        assert!(e.contains(why), "{e}");
        assert!(!e.contains(&bad));
    }
}

#[test]
fn parses_answers() {
    let body = format!(
        r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1.7e9,"proxyEndpoint":"https://1.dkr.ecr.us-east-1.amazonaws.com"}}]}}"#,
        b64("AWS:secret-pw")
    );
    let t = parse_answer(body.as_bytes()).unwrap();
    assert_eq!(t.username, "AWS");
    assert_eq!(t.password.expose(), "secret-pw");
    assert_eq!(t.expires_at, Some(at(1_700_000_000)));

    let body = format!(
        r#"{{"authorizationData":[{{"authorizationToken":"{}"}}]}}"#,
        b64("AWS:pw")
    );
    assert_eq!(parse_answer(body.as_bytes()).unwrap().expires_at, None);

    for (bad, why) in [
        (r#"{"authorizationData":[]}"#.to_string(), "empty"),
        ("{}".to_string(), "empty"),
        ("<html>".to_string(), "JSON"),
        (
            r#"{"authorizationData":[{"expiresAt":1}]}"#.to_string(),
            "no authorizationToken",
        ),
        (
            r#"{"authorizationData":[{"authorizationToken":"c2VjcmV0LXRva2Vu"}]}"#.to_string(),
            "user:password",
        ),
        (
            format!(
                r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":"soon"}}]}}"#,
                b64("AWS:pw")
            ),
            "expiresAt",
        ),
        (
            r#"{"authorizationData":[{"authorizationToken":42}]}"#.to_string(),
            "JSON",
        ),
    ] {
        let e = parse_answer(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(!e.contains("c2VjcmV0LXRva2Vu") && !e.contains("secret-token"));
    }
}

#[tokio::test]
async fn bad_region_is_refused_before_any_request() {
    ferry_base::tls::install();
    let http = reqwest::Client::new();
    let e = get_authorization_token(&http, "us east", &keys(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, EcrError::Region { .. }), "{e}");
    let e = get_authorization_token(
        &http,
        "../x",
        &keys(),
        Some(&Url::parse("http://127.0.0.1:9/").unwrap()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, EcrError::Region { .. }), "{e}");
}

#[tokio::test]
async fn unreachable_endpoint_is_named() {
    // A port nothing listens on: bind, learn the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    ferry_base::tls::install();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let e = get_authorization_token(&http, "us-east-1", &keys(), Some(&endpoint))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, EcrError::Unreachable { .. }), "{text}");
    assert!(text.contains("us-east-1") && text.contains(&format!("127.0.0.1:{port}")));
    assert!(!text.contains(SECRET) && !text.contains(ID), "{text}");
}
