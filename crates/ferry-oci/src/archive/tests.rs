//! Unit tests of `oci/archive.rs`.

use super::*;

#[test]
fn two_names_of_one_image_are_one_entry() {
    let d = |s: &str| Digest::sha256_of(s.as_bytes());
    let e = |tag: &str, layer: &str| DockerEntry {
        repo_tags: vec![tag.into()],
        config: d("c"),
        layers: vec![d(layer)],
    };
    let merged = merge([
        e("a:1", "l"),
        e("b:1", "l"),
        e("c:1", "other"),
        e("a:1", "l"),
    ]);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].repo_tags, ["a:1", "b:1"]);
    assert_eq!(merged[1].repo_tags, ["c:1"]);
}
