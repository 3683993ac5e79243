use super::*;

fn d(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn desc(n: u8, artifact: &str) -> Value {
    serde_json::json!({"mediaType": media_types::OCI_MANIFEST, "digest": d(n), "size": 10 + n as u64, "artifactType": artifact})
}

fn index(entries: &[Value]) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap()
}

#[test]
fn entries_keep_manifests_once_and_drop_the_rest() {
    let blob =
        serde_json::json!({"mediaType": "application/octet-stream", "digest": d(3), "size": 1});
    let bad = serde_json::json!({"mediaType": media_types::OCI_MANIFEST, "digest": "sha256:zz", "size": 1});
    let list = index(&[desc(1, "a"), blob, desc(1, "a"), bad, desc(2, "b")]);
    let e = entries(&list).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].digest.to_string(), d(1));
    assert_eq!(e[0].artifact_type.as_deref(), Some("a"));
    assert_eq!(e[1].size, 12);
    assert!(entries(b"[1,2]").is_err());
    assert!(entries(br#"{"manifests": 3}"#).is_err());
    assert!(entries(br#"{"schemaVersion": 2}"#).unwrap().is_empty());
}

#[test]
fn merge_keeps_theirs_in_order_and_appends_ours() {
    let theirs = index(&[desc(9, "theirs"), desc(1, "a")]);
    let Merged::Write(out) = merge(Some(&theirs), &[desc(1, "a"), desc(2, "b")]).unwrap() else {
        panic!("expected a write");
    };
    let digests: Vec<String> = entries(&out)
        .unwrap()
        .iter()
        .map(|e| e.digest.to_string())
        .collect();
    assert_eq!(digests, [d(9), d(1), d(2)]);
    // All there: nothing to write; nothing of ours: nothing either.
    assert_eq!(
        merge(Some(&out), &[desc(2, "b")]).unwrap(),
        Merged::Unchanged
    );
    assert_eq!(merge(None, &[]).unwrap(), Merged::Unchanged);
    // None there: a new index of ours.
    let Merged::Write(new) = merge(None, &[desc(4, "x")]).unwrap() else {
        panic!("expected a write");
    };
    let v: Value = serde_json::from_slice(&new).unwrap();
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["manifests"][0]["digest"], d(4));
}

#[test]
fn merge_never_drops_an_entry_it_does_not_understand() {
    let odd = serde_json::json!({"mediaType": "application/x-other", "digest": d(7), "size": 1, "x": true});
    let theirs = index(std::slice::from_ref(&odd));
    let Merged::Write(out) = merge(Some(&theirs), &[desc(1, "a")]).unwrap() else {
        panic!("expected a write");
    };
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["manifests"][0], odd);
    assert_eq!(v["manifests"][1]["digest"], d(1));
}

#[test]
fn a_descriptor_copies_artifact_type_and_annotations() {
    let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"},"annotations":{"k":"v"},"subject":{"digest":"sha256:0101010101010101010101010101010101010101010101010101010101010101"}}"#;
    let digest = Digest::parse(&d(5)).unwrap();
    let v = descriptor_for(m, media_types::OCI_MANIFEST, &digest);
    assert_eq!(v["artifactType"], "application/spdx+json");
    assert_eq!(v["annotations"]["k"], "v");
    assert_eq!(v["size"], m.len() as u64);
    assert_eq!(subject_of(m).unwrap().to_string(), d(1));
    // No artifactType: the config's media type.
    let m = br#"{"config":{"mediaType":"application/vnd.dev.cosign.x"}}"#;
    assert_eq!(
        descriptor_for(m, media_types::OCI_MANIFEST, &digest)["artifactType"],
        "application/vnd.dev.cosign.x"
    );
    assert!(subject_of(m).is_none());
    assert!(subject_of(b"not json").is_none());
}
