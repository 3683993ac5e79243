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
