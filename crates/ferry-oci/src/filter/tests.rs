//! Unit tests of `oci/filter.rs`.

use super::*;
use crate::manifest::Manifest;

fn d(s: &str) -> Digest {
    Digest::sha256_of(s.as_bytes())
}

#[test]
fn keeps_chosen_platforms_and_their_attestations() {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "annotations": {"kept": "yes"},
        "manifests": [
            {"mediaType": "m", "digest": d("amd64").as_str(), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "m", "digest": d("arm64").as_str(), "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "m", "digest": d("att").as_str(), "size": 1, "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {REFERENCE_DIGEST: d("amd64").as_str()}},
        ],
    });
    let bytes = serde_json::to_vec(&index).expect("json");
    let parsed =
        Manifest::parse(&bytes, "application/vnd.oci.image.index.v1+json", &d("i")).expect("index");
    let amd64 = Platform::parse("linux/amd64").expect("platform");
    let s = select_platforms(&bytes, parsed.children(), std::slice::from_ref(&amd64))
        .expect("selects")
        .expect("changes the index");
    assert_eq!(s.kept, [d("amd64"), d("att")]);
    let back: serde_json::Value = serde_json::from_slice(&s.bytes).expect("json");
    assert_eq!(back["annotations"]["kept"], "yes", "other fields stay");
    assert_eq!(back["manifests"].as_array().expect("array").len(), 2);
    // All selected: unchanged. None: an error naming what there is.
    let all = [amd64, Platform::parse("linux/arm64").expect("platform")];
    assert!(matches!(
        select_platforms(&bytes, parsed.children(), &all),
        Ok(None)
    ));
    let e = select_platforms(
        &bytes,
        parsed.children(),
        &[Platform::parse("windows/amd64").expect("p")],
    )
    .expect_err("none");
    assert!(
        matches!(&e, FilterError::NoneSelected { have } if have.len() == 3),
        "{e}"
    );
    assert!(e.to_string().contains("linux/amd64, linux/arm64"), "{e}");
}
