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
fn remote_url_is_fetched_through_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = RemoteOptions {
        offline: true,
        cache_dir: Some(dir.path().to_path_buf()),
        ..RemoteOptions::default()
    };
    let url = "https://user:secret@releases.example/data.json";
    let e = Catalog::load_with(Some(url), "v1.6.3", &opts).unwrap_err();
    assert!(
        matches!(e, MetadataError::Remote(RemoteError::NotCached { .. })),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("https://releases.example/data.json") && !msg.contains("secret"));

    // A cached copy in the embedded catalog's shape is read and named by its URL.
    let key = super::super::remote::MetadataUrl::parse(url)
        .expect("url")
        .cache_key();
    let cache = super::super::remote::cache::Cache::new(dir.path());
    let meta = super::super::remote::cache::Meta::new(url, None, None, 0, EMBEDDED_CATALOG);
    cache.store(&key, &meta, EMBEDDED_CATALOG).expect("store");
    let c = Catalog::load_with(Some(url), "v1.6.3", &opts).expect("from the cache");
    assert_eq!(
        c.source(),
        &MetadataSource::Url("https://releases.example/data.json".into())
    );
    assert_eq!(c.default_version(), embedded().default_version());
}

#[test]
fn near_versions_share_the_minor() {
    let c = embedded();
    let near = c.near("v1.30.9-rancher1-1");
    assert!(near.contains(&"v1.30.5-rancher1-1"));
    assert!(near.iter().all(|v| v.starts_with("v1.30.")));
}
