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
    assert_eq!(c.unknown_fields().count, 0);
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

/// `n` empty versions plus one real one (the default).
fn with_versions(n: usize) -> Vec<u8> {
    let mut s = String::from(
        r#"{"RKEDefaultK8sVersions":{"default":"v1.0.0"},"K8sVersionRKESystemImages":{"v1.0.0":{"etcd":"e:1"}"#,
    );
    for i in 1..n {
        s.push_str(&format!(r#","v1.0.{i}":{{}}"#));
    }
    s.push_str("}}");
    s.into_bytes()
}

#[test]
fn versions_are_capped_with_a_clear_error() {
    let raw = RawMetadata::from_slice(&with_versions(MAX_VERSIONS), "f").expect("at the cap");
    assert_eq!(raw.images.len(), MAX_VERSIONS);
    let e = RawMetadata::from_slice(&with_versions(MAX_VERSIONS + 1), "metadata file x.json")
        .unwrap_err();
    assert!(matches!(e, MetadataError::Limit { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("metadata file x.json has more than 10,000 Kubernetes versions"),
        "{msg}"
    );
}

#[test]
fn image_fields_are_capped() {
    // Each version repeats etcd 41 times: the cap counts every stored field.
    let per = 41;
    let versions = MAX_IMAGE_FIELDS / per + 1;
    let fields = vec![r#""etcd":"e:1""#; per].join(",");
    let mut s =
        String::from(r#"{"RKEDefaultK8sVersions":{"default":"v0"},"K8sVersionRKESystemImages":{"#);
    for i in 0..versions {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(r#""v{i}":{{{fields}}}"#));
    }
    s.push_str("}}");
    let e = RawMetadata::from_slice(s.as_bytes(), "f").unwrap_err();
    assert!(e.to_string().contains("400,000 image fields"), "{e}");
}

#[test]
fn unknown_fields_are_counted_not_stored() {
    let long = "n".repeat(1000);
    let text = format!(
        r#"{{"RKEDefaultK8sVersions":{{"default":"v1"}},"K8sVersionRKESystemImages":{{"v1":{{"b":"","etcd":"e:1","a":1,"b":"x","{long}":"","c":"","d":""}},"v2":{{"a":""}}}}}}"#
    );
    let raw = RawMetadata::from_slice(text.as_bytes(), "f").expect("parses");
    assert_eq!(raw.unknown_fields.count, 7);
    assert_eq!(raw.unknown_fields.first.len(), 3);
    assert_eq!(&raw.unknown_fields.first[..2], ["b", "a"]);
    assert_eq!(raw.unknown_fields.first[2].chars().count(), 65, "cut");
    let v1 = &raw.images["v1"];
    assert_eq!(
        v1.iter().map(|(f, v)| (f.json, v)).collect::<Vec<_>>(),
        [("etcd", "e:1")]
    );
    assert_eq!(raw.images["v2"].iter().count(), 0);
}

#[test]
fn shape_errors_name_the_source() {
    for bad in [
        &b"[]"[..],
        b"{}",
        b"{\"K8sVersionRKESystemImages\":{}}",
        b"{} x",
        b"\xff",
    ] {
        let e = RawMetadata::from_slice(bad, "metadata file y").unwrap_err();
        assert!(matches!(e, MetadataError::Shape { .. }), "{e}");
        assert!(e.to_string().starts_with("metadata file y is not"), "{e}");
    }
}

/// The real KDM data of 2022-11-21: 239 versions, 7,840 image fields, none unknown.
#[test]
fn real_kdm_data_parses_in_full() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/kdm-data-2022-11-21.json"
    );
    let bytes = std::fs::read(path).expect("fixture");
    let raw = RawMetadata::from_slice(&bytes, "kdm").expect("parses");
    assert_eq!(raw.images.len(), 239);
    // Empty values are not stored; the count of non-empty ones is what the lists use.
    assert!(raw.images.values().map(|v| v.iter().count()).sum::<usize>() > 5_000);
    assert_eq!(raw.unknown_fields.count, 0);
    assert_eq!(raw.version_info.len(), 127);
}

#[test]
fn thousands_groups_digits() {
    use crate::thousands;
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(thousands(4_500_000), "4,500,000");
}
