//! Unit tests of `rke/catalog.rs`.

use super::*;

fn embedded() -> Catalog {
    Catalog::load(None, "v1.6.3").expect("embedded catalog loads")
}

/// The embedded file carries the values the extraction computed independently (a Python
/// port of RKE's rules); deriving them here must give the same answer.
#[test]
fn derivation_matches_precomputed_release_values() {
    let c = embedded();
    let v: serde_json::Value = serde_json::from_str(EMBEDDED_CATALOG).expect("json");
    let rel = &v["rke_release"];
    assert_eq!(c.default_version(), rel["default_k8s_version"]);
    let cur: Vec<String> =
        serde_json::from_value(rel["k8s_versions_current"].clone()).expect("current");
    assert_eq!(c.current(), cur.as_slice());
    let avail: Vec<String> =
        serde_json::from_value(rel["k8s_versions_available"].clone()).expect("available");
    assert_eq!(
        c.available(),
        avail.as_slice(),
        "available versions, in natural order"
    );
    assert!(c.bad().is_empty());
    assert_eq!(c.available().len(), 302);
    assert!(c.unknown_keys().is_empty());
}

#[test]
fn older_rke_release_sees_older_current_set() {
    let c = Catalog::load(None, "v1.5.10").expect("loads");
    // v1.29/v1.30 need RKE >= 1.6.0-rc0 only at minor level, which RKE does not consult;
    // v1.26 and v1.25 are capped at 1.5.99, so they are current for 1.5.10.
    assert!(c.current().iter().any(|v| v.starts_with("v1.26.")));
    assert!(c.current().iter().any(|v| v.starts_with("v1.25.")));
}

#[test]
fn remote_url_is_refused() {
    let e = Catalog::load(Some("https://releases.example/data.json"), "v1.6.3").unwrap_err();
    assert!(matches!(e, MetadataError::Remote { .. }), "{e}");
    assert!(e.to_string().contains("download it first"));
}

#[test]
fn near_versions_share_the_minor() {
    let c = embedded();
    let near = c.near("v1.30.9-rancher1-1");
    assert!(near.contains(&"v1.30.5-rancher1-1"));
    assert!(near.iter().all(|v| v.starts_with("v1.30.")));
}
