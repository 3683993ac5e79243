//! Unit tests of `target.rs`.

use super::*;

#[test]
fn names_as_rke_rewrites_them() {
    let t = Target::parse("1.1.1.1:5555/artifactory", false).expect("target");
    assert_eq!(t.endpoint.as_str(), "https://1.1.1.1:5555/");
    let r = Reference::parse("rancher/rke-tools:v0.1.103").expect("ref");
    assert_eq!(
        t.name_for(&r).to_string(),
        "1.1.1.1:5555/artifactory/rancher/rke-tools:v0.1.103"
    );
    assert_eq!(
        Target::parse("http://r:5000", false)
            .expect("target")
            .endpoint
            .scheme(),
        "http"
    );
    assert!(Target::parse("ftp://r", false).is_err());
}

#[test]
fn a_name_known_by_digest_alone_lands_by_digest_never_as_latest() {
    let t = Target::parse("reg:5000/mirror", false).expect("target");
    let d = format!("sha256:{}", "ab".repeat(32));
    let r = Reference::parse(&format!("rancher/x@{d}")).expect("ref");
    let to = t.name_for(&r);
    assert_eq!(to.tag(), None);
    assert_eq!(to.to_string(), format!("reg:5000/mirror/rancher/x@{d}"));
    // With a tag, the tag is kept and the digest goes, as before.
    let r = Reference::parse(&format!("rancher/x:v1@{d}")).expect("ref");
    assert_eq!(t.name_for(&r).to_string(), "reg:5000/mirror/rancher/x:v1");
}
