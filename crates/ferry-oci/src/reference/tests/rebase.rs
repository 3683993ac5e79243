//! Registry prefixes (RKE's `private_registries[].url`) and rebasing images onto them.

use super::parse;
use crate::reference::{ReferenceError, RegistryPrefix, RegistryPrefixError};

fn prefix(s: &str) -> RegistryPrefix {
    match RegistryPrefix::parse(s) {
        Ok(p) => p,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

#[test]
fn registry_prefixes() {
    let valid: &[(&str, &str, Option<&str>)] = &[
        ("registry.com", "registry.com", None),
        ("registry.com:5555", "registry.com:5555", None),
        ("1.1.1.1", "1.1.1.1", None),
        (
            "1.1.1.1:5555/artifactory",
            "1.1.1.1:5555",
            Some("artifactory"),
        ),
        (
            "harbor.local/project/sub",
            "harbor.local",
            Some("project/sub"),
        ),
        ("localhost:5000", "localhost:5000", None),
        ("localhost", "localhost", None),
        ("[::1]:5000", "[::1]:5000", None),
        ("[::1]/mirror", "[::1]", Some("mirror")),
    ];
    for (input, host, path) in valid {
        let p = prefix(input);
        assert_eq!(p.host(), *host);
        assert_eq!(p.path(), *path);
        assert_eq!(p.to_string(), *input);
        assert_eq!(input.parse::<RegistryPrefix>(), Ok(p));
    }
    let perr = |s: &str| match RegistryPrefix::parse(s) {
        Ok(p) => panic!("{s:?} should be rejected, parsed as {p}"),
        Err(e) => e,
    };
    assert!(matches!(perr(""), RegistryPrefixError::Empty { .. }));
    assert!(matches!(
        perr("https://registry.com"),
        RegistryPrefixError::Scheme { .. }
    ));
    assert!(
        perr("https://registry.com")
            .to_string()
            .contains("drop \"https://\"")
    );
    assert!(matches!(
        perr("registry.com/"),
        RegistryPrefixError::TrailingSlash { .. }
    ));
    assert!(matches!(
        perr("registry.com/proj/"),
        RegistryPrefixError::TrailingSlash { .. }
    ));
    assert!(matches!(
        perr("reg_istry.com"),
        RegistryPrefixError::InvalidHost { .. }
    ));
    assert!(matches!(
        perr("/registry.com"),
        RegistryPrefixError::InvalidHost { .. }
    ));
    assert!(matches!(
        perr("registry.com:99999"),
        RegistryPrefixError::InvalidPort { .. }
    ));
    assert!(matches!(
        perr("registry"),
        RegistryPrefixError::NotARegistryHost { .. }
    ));
    assert!(matches!(
        perr("registry.com/Project"),
        RegistryPrefixError::InvalidPathComponent { .. }
    ));
    assert!(
        matches!(perr("registry.com//p"), RegistryPrefixError::InvalidPathComponent { component, .. } if component.is_empty())
    );
}

#[test]
fn rebase_like_rke() {
    let cases = [
        (
            "rancher/rke-tools:v0.1.103",
            "registry.com",
            "registry.com/rancher/rke-tools:v0.1.103",
        ),
        (
            "rancher/rke-tools:v0.1.103",
            "1.1.1.1:5555/artifactory",
            "1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.103",
        ),
        (
            "busybox",
            "harbor.local/project/sub",
            "harbor.local/project/sub/busybox:latest",
        ),
        (
            "library/busybox:1",
            "reg.local",
            "reg.local/library/busybox:1",
        ),
        ("busybox:1", "reg.local", "reg.local/busybox:1"),
        (
            "docker.io/rancher/x:v1",
            "localhost:5000",
            "localhost:5000/rancher/x:v1",
        ),
        (
            "quay.io/coreos/etcd:v3",
            "reg.local",
            "reg.local/coreos/etcd:v3",
        ),
        (
            "busybox:1",
            "index.docker.io",
            "docker.io/library/busybox:1",
        ),
        (
            "busybox:1",
            "docker.io/mirror",
            "docker.io/mirror/busybox:1",
        ),
    ];
    for (image, pre, expected) in cases {
        let r = parse(image);
        let p = prefix(pre);
        let rebased = r.rebase(&p);
        assert_eq!(rebased.to_string(), expected, "{image} onto {pre}");
        let written = format!("{}:{}", r.written_path(), r.tag().unwrap_or_default());
        assert_eq!(parse(&format!("{p}/{written}")), rebased);
        assert_eq!(r.try_rebase(&p), Ok(rebased));
    }
    let long = parse(&format!("{}/x", ["abcdefghij"; 22].join("/")));
    let too_long = long.try_rebase(&prefix("registry.example.com/mirror"));
    assert!(matches!(too_long, Err(ReferenceError::NameTooLong { .. })));
}
