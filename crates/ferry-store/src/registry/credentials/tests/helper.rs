//! Credential helpers named by `credHelpers` and `credsStore`: answers, "not found", failures,
//! the timeout, the cache, and helper names that try to leave `PATH`.

#[cfg(unix)]
use std::time::{Duration, Instant};

use super::Fixture;
#[cfg(unix)]
use super::{HELPER, b64, basic_of};
use crate::registry::CredentialSource;
use crate::registry::auth::Credentials;
#[cfg(unix)]
use crate::registry::credentials::CredentialOrigin;

#[cfg(unix)]
#[test]
fn cred_helpers_and_creds_store() {
    let f = Fixture::new();
    f.helper("test", HELPER);
    f.docker_config(&format!(
        r#"{{"auths": {{"helper.example.com": {{"auth": "{a}"}}, "other.example.com": {{"auth": "{a}"}},
                           "broken.example.com": {{"auth": "{a}"}}}},
                "credHelpers": {{"helper.example.com": "test", "token.example.com": "test",
                                 "https://broken.example.com": "test", "missing.example.com": "nosuch"}}}}"#,
        a = b64("fromauths:auths-pw")
    ));
    let chain = f.builder().build();
    let c = chain.credentials("helper.example.com");
    assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
    assert_eq!(
        chain.describe("helper.example.com").to_string(),
        "credential helper docker-credential-test"
    );
    match chain.credentials("token.example.com") {
        Credentials::IdentityToken { token, .. } => assert_eq!(token.expose(), "helper-token"),
        other => panic!("expected an identity token, got {other:?}"),
    }
    // No helper for this host: auths.
    let c = chain.credentials("other.example.com");
    assert_eq!(basic_of(&c), Some(("fromauths", "auths-pw")));
    // A failing helper is a warning; ferry falls back to auths.
    let c = chain.credentials("broken.example.com");
    assert_eq!(basic_of(&c), Some(("fromauths", "auths-pw")));
    // A helper missing from PATH likewise.
    assert_eq!(
        chain.credentials("missing.example.com"),
        Credentials::Anonymous
    );

    // credsStore answers for every host; "not found" means anonymous, like docker.
    let f = Fixture::new();
    f.helper("test", HELPER);
    f.docker_config(&format!(
        r#"{{"auths": {{"https://index.docker.io/v1/": {{}}, "nope.example.com": {{"auth": "{}"}}}},
                "credsStore": "test"}}"#,
        b64("x:y")
    ));
    let chain = f.builder().build();
    assert_eq!(
        basic_of(&chain.credentials("docker.io")),
        Some(("hubuser", "hub-secret"))
    );
    assert_eq!(
        basic_of(&chain.credentials("helper.example.com")),
        Some(("hu", "helper-secret"))
    );
    assert_eq!(
        chain.credentials("nope.example.com"),
        Credentials::Anonymous
    );
    assert_eq!(
        chain.describe("nope.example.com"),
        CredentialOrigin::Anonymous
    );
}

#[cfg(unix)]
#[test]
fn helper_timeout_and_cache() {
    let f = Fixture::new();
    f.helper("test", HELPER);
    f.docker_config(r#"{"credsStore": "test"}"#);
    let chain = f
        .builder()
        .helper_timeout(Duration::from_millis(300))
        .build();
    let start = Instant::now();
    assert_eq!(
        chain.credentials("slow.example.com"),
        Credentials::Anonymous
    );
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Cached: the helper is not asked again, even after it is gone.
    let c = chain.credentials("helper.example.com");
    assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
    std::fs::remove_file(f.dir.path().join("bin/docker-credential-test")).expect("rm");
    let c = chain.credentials("helper.example.com");
    assert_eq!(basic_of(&c), Some(("hu", "helper-secret")));
}

#[test]
fn helper_names_cannot_escape_path() {
    let f = Fixture::new();
    f.docker_config(r#"{"credsStore": "../../bin/sh"}"#);
    let chain = f.builder().build();
    assert_eq!(chain.credentials("x.example.com"), Credentials::Anonymous);
}
