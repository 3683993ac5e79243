//! The order of the sources, what flags, environment and cluster.yml entries apply to, and
//! that `Debug` shows no secret.

#[cfg(unix)]
use super::HELPER;
use super::{Fixture, b64, basic_of};
use crate::registry::CredentialSource;
use crate::registry::auth::Credentials;
use crate::registry::credentials::CredentialOrigin;
use ferry_base::secret::Secret;

#[test]
fn anonymous_without_sources() {
    let f = Fixture::new();
    let chain = f.builder().build();
    assert_eq!(chain.credentials("docker.io"), Credentials::Anonymous);
    assert_eq!(chain.describe("docker.io"), CredentialOrigin::Anonymous);
    assert_eq!(chain.describe("docker.io").to_string(), "anonymous");
}

#[test]
fn precedence_explicit_env_cluster_config() {
    let mut f = Fixture::new();
    f.set("FERRY_USERNAME", "envuser")
        .set("FERRY_PASSWORD", "env-pw");
    let all = format!(
        r#"{{"auths": {{"reg.example.com": {{"auth": "{}"}}}}}}"#,
        b64("cfguser:cfg-pw")
    );
    f.docker_config(&all);
    let full = || {
        f.builder().target("reg.example.com").cluster_registry(
            "reg.example.com",
            "clusteruser",
            Secret::new("cluster-pw"),
        )
    };
    let with_explicit = full()
        .explicit("reg.example.com", "flaguser", Secret::new("flag-pw"))
        .build();
    let c = with_explicit.credentials("reg.example.com");
    assert_eq!(basic_of(&c), Some(("flaguser", "flag-pw")));
    assert_eq!(
        with_explicit.describe("reg.example.com").to_string(),
        "--username"
    );

    let env = full().build();
    assert_eq!(
        basic_of(&env.credentials("reg.example.com")),
        Some(("envuser", "env-pw"))
    );
    assert_eq!(
        env.describe("reg.example.com").to_string(),
        "FERRY_USERNAME"
    );

    let f2 = Fixture::new();
    f2.docker_config(&all);
    let cluster = f2
        .builder()
        .target("reg.example.com")
        .cluster_registry("reg.example.com", "clusteruser", Secret::new("cluster-pw"))
        .build();
    let c = cluster.credentials("reg.example.com");
    assert_eq!(basic_of(&c), Some(("clusteruser", "cluster-pw")));
    assert_eq!(
        cluster.describe("reg.example.com"),
        CredentialOrigin::ClusterYml
    );

    let config = f2.builder().build();
    assert_eq!(
        basic_of(&config.credentials("reg.example.com")),
        Some(("cfguser", "cfg-pw"))
    );
    let origin = config.describe("reg.example.com");
    assert_eq!(origin.to_string(), "docker config auths");
    assert_eq!(
        origin.file(),
        Some(f2.dir.path().join("home/.docker/config.json").as_path())
    );
}

#[test]
fn explicit_and_env_apply_to_their_registry_only() {
    let mut f = Fixture::new();
    f.set("FERRY_USERNAME", "envuser")
        .set("FERRY_PASSWORD", "env-pw");
    let chain = f
        .builder()
        .target("target.example.com:5000")
        .explicit("flags.example.com", "flaguser", Secret::new("flag-pw"))
        .build();
    assert_eq!(chain.credentials("docker.io"), Credentials::Anonymous);
    assert_eq!(
        chain.credentials("target.example.com"),
        Credentials::Anonymous
    );
    let c = chain.credentials("target.example.com:5000");
    assert_eq!(basic_of(&c), Some(("envuser", "env-pw")));
    let c = chain.credentials("flags.example.com");
    assert_eq!(basic_of(&c), Some(("flaguser", "flag-pw")));
}

#[test]
fn env_needs_both_variables_and_a_target() {
    let mut f = Fixture::new();
    f.set("FERRY_USERNAME", "envuser");
    let chain = f.builder().target("t.example.com").build();
    assert_eq!(chain.credentials("t.example.com"), Credentials::Anonymous);
    f.set("FERRY_PASSWORD", "env-pw");
    let chain = f.builder().build();
    assert_eq!(chain.credentials("t.example.com"), Credentials::Anonymous);
}

#[test]
fn cluster_entries_match_host_with_or_without_path() {
    let f = Fixture::new();
    let chain = f
        .builder()
        .cluster_registry("1.1.1.1:5555/artifactory", "art", Secret::new("art-pw"))
        .cluster_registry("", "hub", Secret::new("hub-pw"))
        .cluster_registry("ecr.example.com", "", Secret::default())
        .cluster_registry("exact.example.com/path", "pathuser", Secret::new("p1"))
        .cluster_registry("exact.example.com", "old", Secret::new("p2"))
        .cluster_registry("exact.example.com", "new", Secret::new("p3"))
        .build();
    let c = chain.credentials("1.1.1.1:5555");
    assert_eq!(basic_of(&c), Some(("art", "art-pw")));
    assert_eq!(chain.credentials("1.1.1.1:5556"), Credentials::Anonymous);
    assert_eq!(chain.credentials("1.1.1.1"), Credentials::Anonymous);
    assert_eq!(
        basic_of(&chain.credentials("docker.io")),
        Some(("hub", "hub-pw"))
    );
    assert_eq!(chain.credentials("ecr.example.com"), Credentials::Anonymous);
    // An exact url beats a path-prefixed one; a later duplicate wins, as in RKE.
    let c = chain.credentials("exact.example.com");
    assert_eq!(basic_of(&c), Some(("new", "p3")));
}

#[cfg(unix)]
#[test]
fn debug_never_shows_secrets() {
    let mut f = Fixture::new();
    f.set("FERRY_USERNAME", "envuser")
        .set("FERRY_PASSWORD", "env-s3cret");
    f.helper("test", HELPER);
    f.docker_config(&format!(
        r#"{{"auths": {{"cfg.example.com": {{"auth": "{}", "identitytoken": "tok-s3cret"}}}},
                "credHelpers": {{"helper.example.com": "test"}}}}"#,
        b64("cfguser:cfg-s3cret")
    ));
    let chain = f
        .builder()
        .target("t.example.com")
        .explicit("e.example.com", "flaguser", Secret::new("flag-s3cret"))
        .cluster_registry("c.example.com/path", "cuser", Secret::new("cluster-s3cret"))
        .build();
    for r in [
        "t.example.com",
        "e.example.com",
        "c.example.com",
        "cfg.example.com",
        "helper.example.com",
    ] {
        assert_ne!(chain.credentials(r), Credentials::Anonymous, "{r}");
    }
    let debug = format!("{chain:?}");
    for secret in ["s3cret", "helper-secret", &b64("cfguser:cfg-s3cret")] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(
        debug.contains("flaguser") && debug.contains("c.example.com/path"),
        "{debug}"
    );
}
