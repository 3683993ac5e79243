//! Unit tests of `store/registry/auth.rs`.

use super::*;

#[test]
fn parses_docker_hub_challenge() {
    let c = parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#).expect("parses");
    match c {
        Challenge::Bearer {
            realm,
            service,
            error,
        } => {
            assert_eq!(realm.as_str(), "https://auth.docker.io/token");
            assert_eq!(service.as_deref(), Some("registry.docker.io"));
            assert_eq!(error, None);
        }
        other => panic!("{other:?}"),
    }
    let c = parse_challenge(r#"Bearer realm="https://a/token",service="s",error="invalid_token""#)
        .expect("parses");
    assert!(matches!(c, Challenge::Bearer { error: Some(e), .. } if e == "invalid_token"));
    assert_eq!(
        parse_challenge(r#"Basic realm="Registry Realm""#),
        Some(Challenge::Basic)
    );
    assert_eq!(parse_challenge("garbage"), None);
    assert_eq!(
        parse_challenge(r#"Bearer realm="file:///etc/passwd""#),
        None
    );
}

#[test]
fn credentials_never_print() {
    let c = Credentials::Basic {
        username: "u".into(),
        password: Secret::new("pw-123"),
    };
    assert!(!format!("{c:?}").contains("pw-123"));
}
