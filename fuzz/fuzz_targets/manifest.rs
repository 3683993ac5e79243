//! `Manifest::parse` with every manifest media type (and a few it must refuse), and
//! `Digest::parse`, on arbitrary bytes: never panic; a parsed digest is a safe path and
//! round-trips; every descriptor of a parsed manifest carries a valid digest.
//!
//! Input: the manifest bytes (also tried as a digest string when UTF-8).
#![no_main]

use ferry_oci::digest::Digest;
use ferry_oci::manifest::Manifest;
use ferry_oci::media_types;
use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: [&str; 7] = [
    media_types::OCI_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST,
    media_types::DOCKER_MANIFEST_LIST,
    media_types::DOCKER_SCHEMA1_SIGNED,
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
    "text/plain",
];

fn check_digest(d: &Digest) {
    let path = d.blob_path();
    assert!(path.starts_with("blobs/sha"), "{path}");
    assert!(
        !path.contains("..") && !path.contains('\\') && path.matches('/').count() == 2,
        "{path} is a safe relative path"
    );
    assert_eq!(Digest::parse(d.as_str()).as_ref(), Ok(d), "{d} round-trips");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for candidate in [text, text.trim(), text.lines().next().unwrap_or("")] {
            if let Ok(d) = Digest::parse(candidate) {
                assert_eq!(d.as_str(), candidate);
                check_digest(&d);
            }
        }
    }
    let digest = Digest::sha256_of(data);
    for media_type in MEDIA_TYPES {
        let Ok(m) = Manifest::parse(data, media_type, &digest) else {
            continue;
        };
        for desc in m.blobs().into_iter().chain(m.children()) {
            check_digest(&desc.digest);
        }
        match &m {
            Manifest::Index { .. } => assert!(m.blobs().is_empty()),
            Manifest::Image { .. } => assert!(m.children().is_empty()),
        }
    }
});
