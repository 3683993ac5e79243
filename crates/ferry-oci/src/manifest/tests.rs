//! Unit tests of `oci/manifest.rs`.

use super::*;

const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn d() -> Digest {
    Digest::parse(D).expect("digest")
}

#[test]
fn parses_docker_manifest_list_with_platforms() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D}","size":7,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1"}}}}]}}"#,
        media_types::DOCKER_MANIFEST_LIST,
        media_types::DOCKER_MANIFEST
    );
    let m =
        Manifest::parse(body.as_bytes(), media_types::DOCKER_MANIFEST_LIST, &d()).expect("parses");
    let c = &m.children()[0];
    let p = c.platform.as_ref().expect("platform");
    assert_eq!(p.to_string(), "windows/amd64");
    assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
}

#[test]
fn refuses_mismatched_media_type_and_bad_digests() {
    let body = format!(
        r#"{{"mediaType":"{}","manifests":[]}}"#,
        media_types::OCI_INDEX
    );
    let e = Manifest::parse(body.as_bytes(), media_types::DOCKER_MANIFEST_LIST, &d()).unwrap_err();
    assert!(matches!(e, ManifestError::MediaTypeMismatch { .. }));
    let body =
        r#"{"config":{"mediaType":"x","digest":"sha256:../../etc/passwd","size":1},"layers":[]}"#;
    let e = Manifest::parse(body.as_bytes(), media_types::OCI_MANIFEST, &d()).unwrap_err();
    assert!(matches!(e, ManifestError::Malformed { .. }), "{e}");
    let e = Manifest::parse(b"{}", media_types::DOCKER_SCHEMA1_SIGNED, &d()).unwrap_err();
    assert!(matches!(e, ManifestError::Unsupported { .. }));
    let body = format!(
        r#"{{"config":{{"mediaType":"x","digest":"{D}","size":1}},"layers":[{{"mediaType":"x","digest":"{D}","size":9223372036854775808}}]}}"#
    );
    let e = Manifest::parse(body.as_bytes(), media_types::OCI_MANIFEST, &d()).unwrap_err();
    assert!(
        matches!(e, ManifestError::AbsurdSize { what: "layer", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("absurd"), "{e}");
}

#[test]
fn sums_are_checked() {
    assert_eq!(sum_sizes([1, 2, 3]), Some(6));
    assert_eq!(sum_sizes([u64::MAX, 1]), None);
}
