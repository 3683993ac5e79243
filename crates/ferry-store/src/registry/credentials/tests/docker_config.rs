//! docker and podman config files: key normalisation, `auths` entries, `identitytoken`,
//! `DOCKER_CONFIG` and `REGISTRY_AUTH_FILE`, malformed files and entries.

use super::{Fixture, b64, basic_of};
use crate::registry::CredentialSource;
use crate::registry::auth::Credentials;
use crate::registry::credentials::canonical_host;
use crate::registry::credentials::docker_config::{DOCKER_HUB_SERVER, load_config, server_url};
use ferry_base::secret::Secret;

#[test]
fn docker_hub_keys_are_normalised() {
    for key in [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "registry-1.docker.io",
        "docker.io",
        "https://registry-1.docker.io/v2/",
    ] {
        let f = Fixture::new();
        f.docker_config(&format!(
            r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
            b64("hub:hub-pw")
        ));
        let chain = f.builder().build();
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            let c = chain.credentials(name);
            assert_eq!(
                basic_of(&c),
                Some(("hub", "hub-pw")),
                "key {key}, name {name}"
            );
        }
        assert_eq!(
            chain.credentials("quay.io"),
            Credentials::Anonymous,
            "key {key}"
        );
    }
}

#[test]
fn auths_keys_match_host_and_port_exactly() {
    let f = Fixture::new();
    f.docker_config(
        r#"{"auths": {
                "http://reg.example.com:5000/v2/": {"username": "u5000", "password": "pw5000"},
                "https://reg.example.com": {"username": "u443", "password": "pw443"},
                "127.0.0.1:5000": {"username": "local", "password": "pwlocal"},
                "empty.example.com": {}
            }}"#,
    );
    let chain = f.builder().build();
    assert_eq!(
        basic_of(&chain.credentials("reg.example.com:5000")),
        Some(("u5000", "pw5000"))
    );
    assert_eq!(
        basic_of(&chain.credentials("reg.example.com")),
        Some(("u443", "pw443"))
    );
    assert_eq!(
        basic_of(&chain.credentials("127.0.0.1:5000")),
        Some(("local", "pwlocal"))
    );
    assert_eq!(
        chain.credentials("reg.example.com:5001"),
        Credentials::Anonymous
    );
    assert_eq!(
        chain.credentials("empty.example.com"),
        Credentials::Anonymous
    );
}

#[test]
fn identitytoken_and_docker_config_env() {
    let mut f = Fixture::new();
    let dir = f.dir.path().join("dockercfg");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"auths": {{"tok.example.com": {{"auth": "{}", "identitytoken": "refresh-tok"}}}}}}"#,
            b64("tokuser:")
        ),
    )
    .expect("write");
    // DOCKER_CONFIG replaces ~/.docker.
    f.docker_config(r#"{"auths": {"tok.example.com": {"username": "home", "password": "x"}}}"#);
    f.set("DOCKER_CONFIG", &dir.display().to_string());
    let chain = f.builder().build();
    match chain.credentials("tok.example.com") {
        Credentials::IdentityToken { username, token } => {
            assert_eq!(username, "tokuser");
            assert_eq!(token.expose(), "refresh-tok");
        }
        other => panic!("expected an identity token, got {other:?}"),
    }
}

#[test]
fn registry_auth_file_is_read_after_docker_config() {
    let mut f = Fixture::new();
    f.docker_config(r#"{"auths": {"a.example.com": {"username": "docker", "password": "d"}}}"#);
    let podman = f.dir.path().join("auth.json");
    std::fs::write(
        &podman,
        r#"{"auths": {"a.example.com": {"username": "podman", "password": "p"},
                          "b.example.com/ns": {"username": "podman-b", "password": "pb"}}}"#,
    )
    .expect("write");
    f.set("REGISTRY_AUTH_FILE", &podman.display().to_string());
    let chain = f.builder().build();
    assert_eq!(
        basic_of(&chain.credentials("a.example.com")),
        Some(("docker", "d"))
    );
    assert_eq!(
        basic_of(&chain.credentials("b.example.com")),
        Some(("podman-b", "pb"))
    );
    assert_eq!(
        chain.describe("b.example.com").file(),
        Some(podman.as_path())
    );
}

#[test]
fn malformed_config_is_ignored_with_position() {
    let f = Fixture::new();
    let path =
        f.docker_config("{\n  \"auths\": {\n    \"reg.example.com\": {\"auth\": \"c2VjcmV0\"\n");
    let err = load_config(&path).expect_err("malformed");
    let msg = err.to_string();
    assert!(
        msg.contains("config.json") && msg.contains("line 4 column 0"),
        "{msg}"
    );
    let f2 = Fixture::new();
    let path = f2.docker_config(r#"{"auths": "dXNlcjpzZWNyZXQ="}"#);
    let msg = load_config(&path).expect_err("wrong type").to_string();
    assert!(!msg.contains("dXNlcjpzZWNyZXQ="), "{msg}");
    let chain = f
        .builder()
        .cluster_registry("other.example.com", "u", Secret::new("p"))
        .build();
    assert_eq!(chain.credentials("reg.example.com"), Credentials::Anonymous);
    assert!(basic_of(&chain.credentials("other.example.com")).is_some());
}

#[test]
fn bad_entries_are_skipped_not_fatal() {
    let f = Fixture::new();
    f.docker_config(
        r#"{"auths": {"bad.example.com": {"auth": "%%%"}, "num.example.com": {"password": 5},
                          "ok.example.com": {"auth": "dTpw"}}}"#,
    );
    let chain = f.builder().build();
    assert_eq!(chain.credentials("bad.example.com"), Credentials::Anonymous);
    assert_eq!(chain.credentials("num.example.com"), Credentials::Anonymous);
    assert_eq!(
        basic_of(&chain.credentials("ok.example.com")),
        Some(("u", "p"))
    );
    assert!(
        load_config(&f.dir.path().join("missing.json"))
            .expect("absent")
            .is_none()
    );
}

#[test]
fn canonical_hosts() {
    assert_eq!(canonical_host("https://index.docker.io/v1/"), "docker.io");
    assert_eq!(
        canonical_host("HTTP://Reg.Example.com:5000/v2/"),
        "reg.example.com:5000"
    );
    assert_eq!(canonical_host("127.0.0.1:5000"), "127.0.0.1:5000");
    assert_eq!(canonical_host("reg.example.com/ns/repo"), "reg.example.com");
    assert_eq!(server_url("docker.io"), DOCKER_HUB_SERVER);
    assert_eq!(server_url("reg.example.com"), "reg.example.com");
}
