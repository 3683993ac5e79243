//! `RawMetadata::from_slice` (the KDM data.json / embedded catalog reader) and
//! `Catalog::derive` (RKE's version rules) on arbitrary bytes: never panic; what parses stays
//! within the caps, and a derived catalog keeps its promises (the default and every current
//! version are available and have image lists; unknown fields are summarised in bounded
//! space).
//!
//! Input: the bytes of a data.json.
#![no_main]

use ferry_rke::catalog::{MAX_IMAGE_FIELDS, MAX_VERSIONS, MetadataSource, RawMetadata};
use ferry_rke::{Catalog, MetadataError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = match RawMetadata::from_slice(data, "fuzz input") {
        Ok(raw) => raw,
        Err(e) => {
            assert!(
                matches!(e, MetadataError::Shape { .. } | MetadataError::Limit { .. }),
                "{e}"
            );
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz input "), "{msg}");
            return;
        }
    };
    assert!(raw.images.len() <= MAX_VERSIONS);
    assert!(raw.version_info.len() <= MAX_VERSIONS);
    assert!(raw.default_versions.len() <= MAX_VERSIONS);
    let fields: usize = raw.images.values().map(|v| v.iter().count()).sum();
    assert!(fields <= MAX_IMAGE_FIELDS);
    for images in raw.images.values() {
        assert!(images.iter().all(|(_, image)| !image.is_empty()));
    }
    let unknown = raw.unknown_fields.clone();
    assert!(unknown.first.len() <= 3 && unknown.first.len() as u64 <= unknown.count);
    assert!(unknown.first.iter().all(|n| n.chars().count() <= 65));

    let Ok(catalog) = Catalog::derive(raw, MetadataSource::File("fuzz".into()), "v1.6.3") else {
        return;
    };
    assert_eq!(catalog.unknown_fields(), &unknown);
    assert!(catalog.images(catalog.default_version()).is_some());
    for v in catalog.available() {
        assert!(catalog.images(v).is_some(), "{v} has images");
    }
    for v in catalog.current() {
        assert!(catalog.available().contains(v), "{v} is available");
    }
    for v in catalog.bad() {
        assert!(catalog.images(v).is_none(), "{v} is bad, not listed");
    }
});
