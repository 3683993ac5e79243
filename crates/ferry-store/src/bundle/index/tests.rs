//! Unit tests of `store/bundle/index.rs`.

use super::*;
use crate::bundle::testutil::digest_of;
use ferry_oci::media_types::{DOCKER_MANIFEST_LIST, OCI_MANIFEST};

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

/// The builders as they were, over `serde_json::Value` (whose compact form is the format):
/// the oracle the direct writers must match byte for byte.
mod oracle {
    use super::*;
    use serde_json::Map;

    pub fn index_json_annotated(
        entries: &[(String, Descriptor)],
        annotations: &BTreeMap<String, String>,
    ) -> Vec<u8> {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(reference, descriptor)| {
                let mut annotations = descriptor.annotations.clone();
                annotations.insert(OCI_REF_NAME.to_owned(), reference.clone());
                annotations.insert(CONTAINERD_NAME.to_owned(), reference.clone());
                let mut out = Map::new();
                out.insert("mediaType".into(), json!(descriptor.media_type));
                out.insert("digest".into(), json!(descriptor.digest.as_str()));
                out.insert("size".into(), json!(descriptor.size));
                if let Some(p) = &descriptor.platform {
                    let mut v = Map::new();
                    v.insert("architecture".into(), json!(p.architecture));
                    v.insert("os".into(), json!(p.os));
                    if let Some(x) = &p.os_version {
                        v.insert("os.version".into(), json!(x));
                    }
                    if let Some(x) = &p.variant {
                        v.insert("variant".into(), json!(x));
                    }
                    out.insert("platform".into(), Value::Object(v));
                }
                out.insert("annotations".into(), json!(annotations));
                Value::Object(out)
            })
            .collect();
        let mut index = Map::new();
        index.insert("schemaVersion".into(), json!(2));
        index.insert("mediaType".into(), json!(OCI_INDEX));
        index.insert("manifests".into(), Value::Array(manifests));
        if !annotations.is_empty() {
            index.insert("annotations".into(), json!(annotations));
        }
        Value::Object(index).to_string().into_bytes()
    }

    pub fn docker_manifest_json(entries: &[DockerEntry]) -> Vec<u8> {
        let images: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut image = Map::new();
                image.insert("Config".into(), json!(e.config.blob_path()));
                image.insert("RepoTags".into(), json!(e.repo_tags));
                let layers: Vec<String> = e.layers.iter().map(Digest::blob_path).collect();
                image.insert("Layers".into(), json!(layers));
                Value::Object(image)
            })
            .collect();
        Value::Array(images).to_string().into_bytes()
    }
}

use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\x00-\\x7f]{0,12}", "[a-z./:@-]{1,40}"]
}

fn any_descriptor() -> impl Strategy<Value = (String, Descriptor)> {
    (
        any_text(),
        any_text(),
        any::<u64>(),
        proptest::option::of((
            any_text(),
            any_text(),
            proptest::option::of(any_text()),
            proptest::option::of(any_text()),
        )),
        proptest::collection::btree_map(
            prop_oneof![any_text(), Just(OCI_REF_NAME.to_owned())],
            any_text(),
            0..3,
        ),
        any::<[u8; 32]>(),
    )
        .prop_map(|(reference, media_type, size, platform, annotations, d)| {
            let descriptor = Descriptor {
                media_type,
                digest: Digest::from_sha256_bytes(&d),
                size,
                platform: platform.map(|(os, architecture, variant, os_version)| Platform {
                    os,
                    architecture,
                    variant,
                    os_version,
                }),
                annotations,
            };
            (reference, descriptor)
        })
}

proptest! {
    #[test]
    fn index_json_is_what_serde_json_writes(
        entries in proptest::collection::vec(any_descriptor(), 0..4),
        annotations in proptest::collection::btree_map(any_text(), any_text(), 0..3),
    ) {
        prop_assert_eq!(
            index_json_annotated(&entries, &annotations),
            oracle::index_json_annotated(&entries, &annotations)
        );
    }

    #[test]
    fn manifest_json_is_what_serde_json_writes(
        entries in proptest::collection::vec(
            (
                proptest::collection::vec(any_text(), 0..3),
                any::<[u8; 32]>(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..3),
            ),
            0..4,
        ),
    ) {
        let entries: Vec<DockerEntry> = entries
            .into_iter()
            .map(|(repo_tags, config, layers)| DockerEntry {
                repo_tags,
                config: Digest::from_sha256_bytes(&config),
                layers: layers.iter().map(Digest::from_sha256_bytes).collect(),
            })
            .collect();
        prop_assert_eq!(
            docker_manifest_json(&entries),
            oracle::docker_manifest_json(&entries)
        );
    }
}
