//! Unit tests of `store/bundle/index.rs`.

use super::*;
use crate::oci::media_types::{DOCKER_MANIFEST_LIST, OCI_MANIFEST};
use crate::store::bundle::testutil::digest_of;

fn descriptor(media_type: &str, body: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: digest_of(body),
        size: body.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

#[test]
fn oci_layout_is_exact() {
    assert_eq!(oci_layout_bytes(), br#"{"imageLayoutVersion":"1.0.0"}"#);
}

#[test]
fn index_keeps_true_media_types_order_and_names_both_annotations() {
    let list = descriptor(DOCKER_MANIFEST_LIST, b"list");
    let mut image = descriptor(OCI_MANIFEST, b"image");
    image.platform = Some(Platform::parse("linux/arm64/v8").expect("platform"));
    let entries = vec![
        (
            "docker.io/rancher/rke-tools:v0.1.103".to_owned(),
            list.clone(),
        ),
        ("quay.io/coreos/etcd:v3".to_owned(), image.clone()),
    ];
    let bytes = index_json(&entries);
    assert_eq!(bytes, index_json(&entries), "deterministic");
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let expected_first = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{DOCKER_MANIFEST_LIST}","digest":"{}","size":4,"annotations":{{"{CONTAINERD_NAME}":"docker.io/rancher/rke-tools:v0.1.103","{OCI_REF_NAME}":"docker.io/rancher/rke-tools:v0.1.103"}}}},"#,
        list.digest
    );
    assert!(text.starts_with(&expected_first), "{text}");
    // It reads back, names and all.
    let read = read_index(&bytes).expect("reads");
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[0].name.as_deref(),
        Some("docker.io/rancher/rke-tools:v0.1.103")
    );
    assert_eq!(
        read[0].descriptor.as_ref().expect("valid").digest,
        list.digest
    );
    assert!(read_index(b"[]").is_err());
    let bad = read_index(br#"{"manifests":[{"digest":"sha256:nope","size":1,"mediaType":"x"}]}"#)
        .expect("an index");
    assert!(bad[0].descriptor.is_err());
    // It parses back as descriptors equal to the input plus the two annotations.
    let parsed: Value = serde_json::from_slice(&bytes).expect("json");
    let back: Vec<Descriptor> =
        serde_json::from_value(parsed["manifests"].clone()).expect("descriptors");
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].platform, image.platform);
    assert_eq!(back[1].media_type, OCI_MANIFEST);
    assert_eq!(
        back[1].annotations[CONTAINERD_NAME],
        "quay.io/coreos/etcd:v3"
    );
}

#[test]
fn docker_manifest_lists_blob_paths_and_tags() {
    let entry = DockerEntry {
        repo_tags: vec!["rancher/rke-tools:v0.1.103".to_owned()],
        config: digest_of(b"config"),
        layers: vec![digest_of(b"l1"), digest_of(b"l2")],
    };
    let text =
        String::from_utf8(docker_manifest_json(std::slice::from_ref(&entry))).expect("utf-8");
    let expected = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["rancher/rke-tools:v0.1.103"],"Layers":["blobs/sha256/{}","blobs/sha256/{}"]}}]"#,
        entry.config.hex(),
        entry.layers[0].hex(),
        entry.layers[1].hex()
    );
    assert_eq!(text, expected);
    assert_eq!(docker_manifest_json(&[]), b"[]");
}
