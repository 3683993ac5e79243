//! Unit tests of `rke/fields.rs`.

use super::*;

/// The table above must agree with the field list shipped in the embedded catalog,
/// which was extracted from RKE's own struct.
#[test]
fn fields_match_embedded_catalog() {
    let v: serde_json::Value =
        serde_json::from_str(crate::catalog::EMBEDDED_CATALOG).expect("embedded json");
    let listed = v["system_image_fields"].as_array().expect("fields array");
    assert_eq!(listed.len(), FIELDS.len());
    for (f, l) in FIELDS.iter().zip(listed) {
        assert_eq!(l["go"], f.go);
        assert_eq!(l["yaml"], f.yaml);
        assert_eq!(l["json"], f.json);
    }
}
