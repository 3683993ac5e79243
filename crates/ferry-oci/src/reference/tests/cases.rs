//! docker's documented reference cases, every parse error and its message, the modifiers
//! (`with_digest`, `without_digest`, `with_tag`) and equality across spellings.

use super::parse;
use crate::digest::{Digest, DigestError};
use crate::reference::{Reference, ReferenceError};

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn err(s: &str) -> ReferenceError {
    match Reference::parse(s) {
        Ok(r) => panic!("{s:?} should be rejected, parsed as {r}"),
        Err(e) => e,
    }
}

/// Parses `input` (with `{D}` replaced by a sha256 digest) and checks every accessor.
/// `Display` is checked as `registry/repository[:tag][@digest]`.
fn check_case(
    input: &str,
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    familiar: &str,
    written: &str,
) {
    let digest = format!("sha256:{HEX}");
    let input = input.replace("{D}", &digest);
    let familiar = familiar.replace("{D}", &digest);
    let has_digest = input.contains('@');
    let r = parse(&input);
    assert_eq!(r.registry(), registry, "{input}");
    assert_eq!(r.repository(), repository, "{input}");
    assert_eq!(r.tag(), tag, "{input}");
    let expected_digest = has_digest.then_some(digest.as_str());
    assert_eq!(r.digest().map(Digest::as_str), expected_digest, "{input}");
    let mut display = format!("{registry}/{repository}");
    if let Some(tag) = tag {
        display = format!("{display}:{tag}");
    }
    if has_digest {
        display = format!("{display}@{digest}");
    }
    assert_eq!(r.to_string(), display, "{input}");
    assert_eq!(r.familiar(), familiar, "{input}");
    assert_eq!(r.written_path(), written, "{input}");
    assert_eq!(r.is_docker_hub(), registry == "docker.io", "{input}");
    assert_eq!(parse(&display), r, "{input}: Display must round-trip");
    assert_eq!(parse(&familiar), r, "{input}: familiar() must round-trip");
    assert_eq!(input.parse::<Reference>(), Ok(r.clone()));
}

#[test]
#[rustfmt::skip]
fn docker_documented_cases() {
    let latest = Some("latest");
    // input, registry, repository, tag, familiar(), written_path()
    check_case("alpine", "docker.io", "library/alpine", latest, "alpine:latest", "alpine");
    check_case("localhost/foo", "localhost", "foo", latest, "localhost/foo:latest", "foo");
    check_case("localhost:5000/foo/bar:t", "localhost:5000", "foo/bar", Some("t"),
        "localhost:5000/foo/bar:t", "foo/bar");
    check_case("foo.com/bar", "foo.com", "bar", latest, "foo.com/bar:latest", "bar");
    check_case("foo:5000/bar", "foo:5000", "bar", latest, "foo:5000/bar:latest", "bar");
    check_case("rancher/rke-tools:v0.1.103", "docker.io", "rancher/rke-tools", Some("v0.1.103"),
        "rancher/rke-tools:v0.1.103", "rancher/rke-tools");
    check_case("docker.io/rancher/x", "docker.io", "rancher/x", latest, "rancher/x:latest",
        "rancher/x");
    check_case("index.docker.io/library/alpine", "docker.io", "library/alpine", latest,
        "alpine:latest", "library/alpine");
    check_case("docker.io/alpine", "docker.io", "library/alpine", latest, "alpine:latest",
        "alpine");
    check_case("library/busybox", "docker.io", "library/busybox", latest, "busybox:latest",
        "library/busybox");
    check_case("library/a/b", "docker.io", "library/a/b", latest, "library/a/b:latest",
        "library/a/b");
    check_case("a/b/c/d:tag@{D}", "docker.io", "a/b/c/d", Some("tag"), "a/b/c/d:tag@{D}",
        "a/b/c/d");
    check_case("alpine@{D}", "docker.io", "library/alpine", None, "alpine@{D}", "alpine");
    check_case("reg.example.com:5000/a/b@{D}", "reg.example.com:5000", "a/b", None,
        "reg.example.com:5000/a/b@{D}", "a/b");
    check_case("[::1]:5000/x:y", "[::1]:5000", "x", Some("y"), "[::1]:5000/x:y", "x");
    check_case("[2001:db8::1]/x", "[2001:db8::1]", "x", latest, "[2001:db8::1]/x:latest", "x");
    check_case("192.168.1.1/a__b.c-d---e_f:V1.0_rc-1", "192.168.1.1", "a__b.c-d---e_f",
        Some("V1.0_rc-1"), "192.168.1.1/a__b.c-d---e_f:V1.0_rc-1", "a__b.c-d---e_f");
    // No '/' means no domain, even with a ':' (that is the tag).
    check_case("foo:5000", "docker.io", "library/foo", Some("5000"), "foo:5000", "foo");
    check_case("reg.example.com", "docker.io", "library/reg.example.com", latest,
        "reg.example.com:latest", "reg.example.com");
    // Domains may be mixed case; only the repository must be lowercase.
    check_case("Reg.Example.com/x", "Reg.Example.com", "x", latest, "Reg.Example.com/x:latest",
        "x");
}

#[test]
fn errors() {
    let long_tag = "t".repeat(129);
    assert!(matches!(err(""), ReferenceError::Empty { .. }));
    assert!(matches!(err("UPPER/x"), ReferenceError::Uppercase { .. }));
    assert!(
        matches!(err("a//b"), ReferenceError::InvalidPathComponent { component, .. } if component.is_empty())
    );
    assert!(matches!(err("a/b:"), ReferenceError::InvalidTag { tag, .. } if tag.is_empty()));
    assert!(
        matches!(err("-a/b"), ReferenceError::InvalidPathComponent { component, .. } if component == "-a")
    );
    assert!(
        matches!(err("a/b:tag with space"), ReferenceError::InvalidTag { tag, .. } if tag == "tag with space")
    );
    assert!(matches!(err("a:b:c"), ReferenceError::InvalidTag { tag, .. } if tag == "b:c"));
    assert!(matches!(
        err(&format!("a/b:{long_tag}")),
        ReferenceError::InvalidTag { .. }
    ));
    assert!(parse(&format!("a/b:{}", "t".repeat(128))).tag().is_some());
    assert!(matches!(
        err("a/b@sha256:abc"),
        ReferenceError::InvalidDigest {
            error: DigestError::WrongLength { .. },
            ..
        }
    ));
    assert!(matches!(
        err(&format!("a/b@md5:{HEX}")),
        ReferenceError::InvalidDigest { .. }
    ));
    assert!(matches!(
        err("a/b@"),
        ReferenceError::InvalidDigest {
            error: DigestError::Empty,
            ..
        }
    ));
    assert!(
        matches!(err("https://reg/x"), ReferenceError::Scheme { scheme, rest, .. } if scheme == "https" && rest == "reg/x")
    );
    assert!(matches!(err(HEX), ReferenceError::HexIdentifier { .. }));
    assert!(matches!(
        err("reg.example.com/"),
        ReferenceError::MissingRepository { .. }
    ));
    assert!(matches!(
        err(":v1"),
        ReferenceError::MissingRepository { .. }
    ));
    assert!(matches!(
        err(&format!("@sha256:{HEX}")),
        ReferenceError::MissingRepository { .. }
    ));
    assert!(
        matches!(err("reg_x.com/a"), ReferenceError::InvalidDomain { domain, .. } if domain == "reg_x.com")
    );
    assert!(matches!(
        err("-reg.com/a"),
        ReferenceError::InvalidDomain { .. }
    ));
    assert!(matches!(
        err("reg..com/a"),
        ReferenceError::InvalidDomain { .. }
    ));
    assert!(matches!(
        err("[::1/a"),
        ReferenceError::InvalidDomain { .. }
    ));
    assert!(matches!(
        err("[]:5000/a"),
        ReferenceError::InvalidDomain { .. }
    ));
    assert!(matches!(
        err("[::1]x/a"),
        ReferenceError::InvalidDomain { .. }
    ));
    assert!(matches!(err("reg.com:0/a"), ReferenceError::InvalidPort { port, .. } if port == "0"));
    assert!(matches!(
        err("reg.com:65536/a"),
        ReferenceError::InvalidPort { .. }
    ));
    assert!(matches!(
        err("reg.com:/a"),
        ReferenceError::InvalidPort { .. }
    ));
    assert!(matches!(
        err("reg.com:50a/a"),
        ReferenceError::InvalidPort { .. }
    ));
    assert!(
        matches!(err("a/b_/c"), ReferenceError::InvalidPathComponent { component, .. } if component == "b_")
    );
    assert!(matches!(
        err("a/b___c"),
        ReferenceError::InvalidPathComponent { .. }
    ));
    assert!(matches!(
        err("a/b._c"),
        ReferenceError::InvalidPathComponent { .. }
    ));
    assert!(matches!(
        err("a/.b"),
        ReferenceError::InvalidPathComponent { .. }
    ));
    assert!(matches!(
        err("a/b/"),
        ReferenceError::InvalidPathComponent { .. }
    ));
    assert!(matches!(err("a/b:.tag"), ReferenceError::InvalidTag { .. }));
    assert!(matches!(err("a/b:-tag"), ReferenceError::InvalidTag { .. }));
    let long_name = format!("reg.com/{}", ["abcdefghij"; 23].join("/"));
    assert!(matches!(
        err(&long_name),
        ReferenceError::NameTooLong { length: 260, .. }
    ));
    let just_fits = format!(
        "docker.io/{}/abcdefghijklmnopqrst",
        ["abcdefghij"; 20].join("/")
    );
    assert_eq!(just_fits.len(), 250);
    assert!(Reference::parse(&just_fits).is_ok());
}

#[test]
fn error_messages() {
    assert_eq!(
        err("rancher/RKE-tools:v1").to_string(),
        "invalid image reference \"rancher/RKE-tools:v1\": repository names must be lowercase (e.g. rancher/rke-tools:v0.1.103)"
    );
    let msg = err("https://reg/x").to_string();
    assert!(
        msg.contains("drop \"https://\"") && msg.contains("(e.g. reg/x)"),
        "{msg}"
    );
    let msg = err("a/b:tag with space").to_string();
    assert!(msg.contains("tag \"tag with space\""), "{msg}");
    let msg = err("a/b@sha256:abc").to_string();
    assert!(
        msg.contains("\"sha256:abc\"") && msg.contains("64 hex digits"),
        "{msg}"
    );
    let msg = err(&format!("a/{}:{}", "b".repeat(300), "x y")).to_string();
    assert!(msg.len() < 600 && msg.contains('…'), "{msg}");
}

#[test]
fn modifiers() -> Result<(), ReferenceError> {
    let digest = Digest::sha256_of(b"x");
    let r = parse("alpine");
    let pinned = r.with_digest(digest.clone());
    assert_eq!(
        pinned.to_string(),
        format!("docker.io/library/alpine:latest@{digest}")
    );
    assert_eq!(pinned.without_digest(), r);
    let digest_only = parse(&format!("alpine@{digest}"));
    assert_eq!(digest_only.tag(), None);
    assert_eq!(digest_only.without_digest().tag(), Some("latest"));
    let retagged = pinned.with_tag("3.20")?;
    assert_eq!(retagged.familiar(), format!("alpine:3.20@{digest}"));
    assert_eq!(retagged.written_path(), "alpine");
    assert!(matches!(
        r.with_tag("bad tag"),
        Err(ReferenceError::InvalidTag { .. })
    ));
    Ok(())
}

#[test]
fn equality_ignores_spelling() {
    use std::collections::HashSet;
    let set: HashSet<Reference> = [
        "alpine",
        "docker.io/library/alpine:latest",
        "index.docker.io/alpine",
    ]
    .into_iter()
    .map(parse)
    .collect();
    assert_eq!(set.len(), 1);
}

/// Found by the `reference` fuzz target: a Docker Hub namespace that looks like a host must
/// keep `docker.io/` in the short form, or the short form names another registry.
#[test]
fn familiar_keeps_docker_io_before_a_host_like_namespace() {
    for input in [
        "docker.io/libray.io/coreos/etcd:v3.5.1",
        "docker.io/localhost/x:1",
        "docker.io/a:5000/b:1",
    ] {
        let Ok(r) = Reference::parse(input) else {
            continue;
        };
        let familiar = r.familiar();
        let back = Reference::parse(&familiar).expect("familiar parses");
        assert_eq!(back, r, "{input} -> {familiar}");
    }
    let r = Reference::parse("docker.io/libray.io/coreos/etcd:v3.5.1").expect("parses");
    assert_eq!(r.familiar(), "docker.io/libray.io/coreos/etcd:v3.5.1");
    let r = Reference::parse("rancher/rke-tools:v0.1.103").expect("parses");
    assert_eq!(r.familiar(), "rancher/rke-tools:v0.1.103");
}
