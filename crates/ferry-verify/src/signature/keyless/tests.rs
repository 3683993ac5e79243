//! Keyless checks on vectors made by `testdata/sigstore/gen.sh` (python3-cryptography, a
//! harness CA, Rekor and CT log keys), never by ferry: what passes, and each way to fail.

use std::path::Path;

use super::*;
use crate::signature::sigstore::{self, Bundle};
use crate::signature::{Policy, Rejected, check_bundle, check_layer_with};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::Descriptor;

const BUNDLE: &[u8] = include_bytes!("../testdata/sigstore/bundle.json");
const OTHER: &[u8] = include_bytes!("../testdata/sigstore/other.json");
const KEYED: &[u8] = include_bytes!("../testdata/sigstore/key.json");
const LEGACY: &[u8] = include_bytes!("../testdata/sigstore/legacy.json");
const DIGEST: &str = include_str!("../testdata/digest.txt");

fn digest() -> Digest {
    DIGEST.trim().parse().expect("digest")
}

fn layer() -> Digest {
    "sha256:0000000000000000000000000000000000000000000000000000000000000001"
        .parse()
        .expect("digest")
}

fn root(name: &str) -> TrustedRoot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/signature/testdata/sigstore")
        .join(name);
    TrustedRoot::load(&path).expect("trusted root")
}

fn keyless(root_name: &str, identity: &str, issuer: &str) -> Policy {
    Policy::Keyless(Box::new(Keyless {
        root: root(root_name),
        identity: Matcher::Exact(identity.into()),
        issuer: Matcher::Exact(issuer.into()),
    }))
}

fn good() -> Policy {
    keyless(
        "trusted_root.json",
        "builder@example.test",
        "https://oidc.example.test",
    )
}

fn reason(r: Result<(), Rejected>) -> String {
    r.expect_err("rejected").to_string()
}

#[test]
fn a_cosign_3_keyless_bundle_passes() {
    check_bundle(&good(), &layer(), BUNDLE, &digest()).expect("valid");
    let no_ct = keyless(
        "trusted_root_no_ct.json",
        "builder@example.test",
        "https://oidc.example.test",
    );
    check_bundle(&no_ct, &layer(), BUNDLE, &digest()).expect("valid without CT logs");
    let patterns = Policy::Keyless(Box::new(Keyless {
        root: root("trusted_root.json"),
        identity: Matcher::pattern("@example\\.test$").expect("regex"),
        issuer: Matcher::pattern("^https://oidc\\.").expect("regex"),
    }));
    check_bundle(&patterns, &layer(), BUNDLE, &digest()).expect("valid by patterns");
}

#[test]
fn each_wrong_thing_is_named() {
    let other: Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
        .parse()
        .expect("digest");
    let r = reason(check_bundle(&good(), &layer(), BUNDLE, &other));
    assert!(r.contains("names another image"), "{r}");
    let p = keyless(
        "trusted_root.json",
        "other@example.test",
        "https://oidc.example.test",
    );
    let r = reason(check_bundle(&p, &layer(), BUNDLE, &digest()));
    assert!(r.contains("identity is \"builder@example.test\""), "{r}");
    let p = keyless(
        "trusted_root.json",
        "builder@example.test",
        "https://x.test",
    );
    let r = reason(check_bundle(&p, &layer(), BUNDLE, &digest()));
    assert!(
        r.contains("OIDC issuer is \"https://oidc.example.test\""),
        "{r}"
    );
    for (name, want) in [
        ("trusted_root_other_ca.json", "does not chain"),
        (
            "trusted_root_expired_ca.json",
            "was valid at the signing time",
        ),
        (
            "trusted_root_forged_ct.json",
            "does not verify with its key",
        ),
        (
            "trusted_root_other_ct.json",
            "which the trusted root does not name",
        ),
        (
            "trusted_root_forged_rekor.json",
            "signed entry timestamp of entry",
        ),
    ] {
        let p = keyless(name, "builder@example.test", "https://oidc.example.test");
        let r = reason(check_bundle(&p, &layer(), BUNDLE, &digest()));
        assert!(r.contains(want), "{name}: {r}");
    }
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    f(&mut v);
    serde_json::to_vec(&v).expect("json")
}

#[test]
fn a_valid_set_of_another_entry_does_not_pass() {
    // other.json's Rekor entry is genuine (its SET verifies) but logs another signature.
    let other: serde_json::Value = serde_json::from_slice(OTHER).expect("json");
    let swapped = edit(BUNDLE, |v| {
        v["verificationMaterial"]["tlogEntries"] =
            other["verificationMaterial"]["tlogEntries"].clone();
    });
    let r = reason(check_bundle(&good(), &layer(), &swapped, &digest()));
    assert!(r.contains("another DSSE payload"), "{r}");
    // Another integratedTime under the same SET: the SET no longer verifies.
    let moved = edit(BUNDLE, |v| {
        v["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1700000000".into();
    });
    let r = reason(check_bundle(&good(), &layer(), &moved, &digest()));
    assert!(r.contains("does not verify with the key of the log"), "{r}");
    // No SET, no entry.
    let unpromised = edit(BUNDLE, |v| {
        v["verificationMaterial"]["tlogEntries"][0]
            .as_object_mut()
            .expect("entry")
            .remove("inclusionPromise");
    });
    let r = reason(check_bundle(&good(), &layer(), &unpromised, &digest()));
    assert!(r.contains("no signed entry timestamp"), "{r}");
    let unlogged = edit(BUNDLE, |v| {
        v["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
    });
    let r = reason(check_bundle(&good(), &layer(), &unlogged, &digest()));
    assert!(r.contains("no Rekor entry"), "{r}");
    // Another certificate than the one that signed.
    let other_cert = edit(BUNDLE, |v| {
        v["verificationMaterial"]["certificate"] =
            other["verificationMaterial"]["certificate"].clone();
    });
    let r = reason(check_bundle(&good(), &layer(), &other_cert, &digest()));
    assert!(r.contains("not made by the key of its certificate"), "{r}");
}

#[test]
fn a_keyed_bundle_needs_the_key_and_fails_keyless() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/signature/testdata/sigstore/cosign.pub");
    let key = Policy::Key(crate::signature::PublicKey::load(&path).expect("key"));
    check_bundle(&key, &layer(), KEYED, &digest()).expect("valid with the key");
    let r = reason(check_bundle(&key, &layer(), BUNDLE, &digest()));
    assert!(r.contains("was not made by the key"), "{r}");
    let r = reason(check_bundle(&good(), &layer(), KEYED, &digest()));
    assert!(r.contains("signed with a key"), "{r}");
}

#[test]
fn an_attestation_bundle_is_not_a_signature() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let attestation = edit(BUNDLE, |v| {
        let payload = b64
            .decode(v["dsseEnvelope"]["payload"].as_str().expect("payload"))
            .expect("base64");
        let mut statement: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        statement["predicateType"] = "https://slsa.dev/provenance/v1".into();
        v["dsseEnvelope"]["payload"] = b64
            .encode(serde_json::to_vec(&statement).expect("json"))
            .into();
    });
    assert!(matches!(
        check_bundle(&good(), &layer(), &attestation, &digest()),
        Err(Rejected::NotASignature { .. })
    ));
}

fn legacy_layer(edit_annotations: impl FnOnce(&mut serde_json::Value)) -> (Descriptor, Vec<u8>) {
    let mut v: serde_json::Value = serde_json::from_slice(LEGACY).expect("json");
    edit_annotations(&mut v["annotations"]);
    let payload = v["payload"].as_str().expect("payload").as_bytes().to_vec();
    let annotations = v["annotations"]
        .as_object()
        .expect("annotations")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect();
    let descriptor = Descriptor {
        media_type: ferry_oci::cosign::SIMPLE_SIGNING.into(),
        digest: layer(),
        size: payload.len() as u64,
        platform: None,
        annotations,
    };
    (descriptor, payload)
}

#[test]
fn a_cosign_2_keyless_sig_layer_passes_and_fails_for_cause() {
    let (d, payload) = legacy_layer(|_| {});
    check_layer_with(&good(), &d, &payload, &digest()).expect("valid");
    // Without the chain annotation the CA's own intermediate (in the trusted root) serves.
    let (d, payload) = legacy_layer(|a| {
        a.as_object_mut()
            .expect("object")
            .remove("dev.sigstore.cosign/chain");
    });
    check_layer_with(&good(), &d, &payload, &digest()).expect("valid without the chain");
    let (d, payload) = legacy_layer(|a| {
        a.as_object_mut()
            .expect("object")
            .remove("dev.sigstore.cosign/certificate");
    });
    let r = reason(check_layer_with(&good(), &d, &payload, &digest()));
    assert!(r.contains("carries no signing certificate"), "{r}");
    let (d, payload) = legacy_layer(|a| {
        a.as_object_mut()
            .expect("object")
            .remove("dev.sigstore.cosign/bundle");
    });
    let r = reason(check_layer_with(&good(), &d, &payload, &digest()));
    assert!(r.contains("no Rekor entry"), "{r}");
    let (d, mut payload) = legacy_layer(|_| {});
    payload.push(b' ');
    let r = reason(check_layer_with(&good(), &d, &payload, &digest()));
    assert!(r.contains("not made by the key of its certificate"), "{r}");
    let (d, payload) = legacy_layer(|a| {
        a["dev.sigstore.cosign/certificate"] =
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    });
    let r = reason(check_layer_with(&good(), &d, &payload, &digest()));
    assert!(r.contains("cannot be read"), "{r}");
}

#[test]
fn truncated_and_hostile_sct_lists_are_named() {
    assert!(scts(&[]).is_err());
    assert!(scts(&[0x00]).is_err());
    assert!(scts(&[0x00, 0x05, 0x00]).is_err());
    // A declared SCT longer than the list.
    assert!(scts(&[0x00, 0x04, 0x00, 0x10, 0x00, 0x00]).is_err());
    // Version 2 is refused.
    let mut v2 = vec![0x00, 0x2f, 0x00, 0x2d, 0x01];
    v2.extend([0u8; 44]);
    assert!(scts(&v2).expect_err("v2").contains("version"));
    // An empty list is read as empty; the caller refuses it.
    assert!(scts(&[0x00, 0x00]).expect("empty").is_empty());
}

#[test]
fn bad_trusted_roots_are_named() {
    let path = Path::new("t.json");
    let good = include_bytes!("../testdata/sigstore/trusted_root.json");
    for cut in [0, 10, good.len() / 2] {
        let e = TrustedRoot::parse(&good[..cut], path).expect_err("truncated");
        assert!(e.to_string().contains("t.json"), "{e}");
    }
    let v: serde_json::Value = serde_json::from_slice(good).expect("json");
    for (pointer, value, want) in [
        (
            "/certificateAuthorities",
            serde_json::json!([]),
            "no certificate authority",
        ),
        ("/tlogs", serde_json::json!([]), "no transparency log"),
        (
            "/tlogs/0/publicKey/rawBytes",
            serde_json::json!("%%"),
            "is not base64",
        ),
        (
            "/tlogs/0/publicKey/rawBytes",
            serde_json::json!("AAAA"),
            "is not a DER public key",
        ),
        (
            "/tlogs/0/publicKey/validFor/start",
            serde_json::json!("yesterday"),
            "is not an RFC 3339 time",
        ),
        (
            "/certificateAuthorities/0/certChain/certificates",
            serde_json::json!([]),
            "has 0 certificates",
        ),
        ("/ctlogs", serde_json::json!({}), "invalid type"),
        ("/tlogs/0/logId", serde_json::json!(3), "invalid type"),
    ] {
        let mut v = v.clone();
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value;
        let e =
            TrustedRoot::parse(&serde_json::to_vec(&v).expect("json"), path).expect_err(pointer);
        assert!(e.to_string().contains(want), "{pointer}: {e}");
    }
    let many = serde_json::json!({
        "tlogs": vec![v["tlogs"][0].clone(); crate::signature::trust::MAX_ENTRIES + 1],
        "certificateAuthorities": v["certificateAuthorities"].clone(),
    });
    let e = TrustedRoot::parse(&serde_json::to_vec(&many).expect("json"), path).expect_err("many");
    assert!(e.to_string().contains("at most"), "{e}");
    let missing = std::env::temp_dir().join("ferry-no-such-trusted-root.json");
    let e = TrustedRoot::load(&missing).expect_err("missing");
    assert!(e.to_string().contains("--trusted-root"), "{e}");
}

#[test]
fn matchers_behave_like_cosigns() {
    assert!(Matcher::Exact("a@b".into()).matches("a@b"));
    assert!(!Matcher::Exact("a@b".into()).matches("xa@b"));
    // cosign's -regexp flags match anywhere (Go's MatchString).
    let p = Matcher::pattern("a@b").expect("regex");
    assert!(p.matches("xa@by"));
    assert!(Matcher::pattern("(").is_err());
}

#[test]
fn a_real_public_good_sigstore_bundle_verifies_offline() {
    // sigstore's own bundle and trusted root (testdata/sigstore/public-good/SOURCE.md): the
    // real Fulcio chain, Rekor SET and CT log SCT, none made by this project.
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/signature/testdata/sigstore/public-good");
    let root = TrustedRoot::load(&dir.join("trusted-root-public-good.json")).expect("root");
    let bytes = std::fs::read(dir.join("bundle-provenance.json")).expect("bundle");
    let bundle = Bundle::parse(&bytes).expect("bundle");
    let sigstore::Material::Certificates(certs) = &bundle.material else {
        panic!("a certificate chain");
    };
    let sigstore::Content::Dsse(envelope) = &bundle.content else {
        panic!("a DSSE envelope");
    };
    let policy = |identity: &str, issuer: &str| Keyless {
        root: root.clone(),
        identity: Matcher::Exact(identity.into()),
        issuer: Matcher::Exact(issuer.into()),
    };
    let workflow =
        "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
    let actions = "https://token.actions.githubusercontent.com";
    policy(workflow, actions)
        .check(certs, &bundle.tlog, Signed::Dsse(envelope))
        .expect("sigstore's own bundle verifies");
    // And fails for cause.
    let e = policy("https://github.com/someone/else", actions)
        .check(certs, &bundle.tlog, Signed::Dsse(envelope))
        .expect_err("another identity");
    assert!(matches!(e, KeylessError::Identity { .. }), "{e}");
    let mut moved = bundle.tlog.clone();
    moved[0].log_index += 1;
    let e = policy(workflow, actions)
        .check(certs, &moved, Signed::Dsse(envelope))
        .expect_err("another log index");
    assert!(e.to_string().contains("signed entry timestamp"), "{e}");
}

#[test]
fn cosigns_own_v0_3_oci_bundle_verifies_offline() {
    // cosign's test data (testdata/sigstore/public-good/SOURCE.md): a v0.3 bundle with a Rekor
    // dsse v0.0.1 entry, the shape cosign 3 stores for an image, by the public sigstore.
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/signature/testdata/sigstore/public-good");
    let root = TrustedRoot::load(&dir.join("cosign-trusted_root_pgi.json")).expect("root");
    let bytes = std::fs::read(dir.join("cosign-oci-attestation.sigstore.json")).expect("bundle");
    let bundle = Bundle::parse(&bytes).expect("bundle");
    assert_eq!(bundle.media_type, sigstore::BUNDLE_V03);
    assert_eq!(bundle.tlog[0].kind, "dsse");
    let sigstore::Material::Certificates(certs) = &bundle.material else {
        panic!("a certificate");
    };
    let sigstore::Content::Dsse(envelope) = &bundle.content else {
        panic!("a DSSE envelope");
    };
    let keyless = Keyless {
        root,
        identity: Matcher::Exact("cody@soyland.com".into()),
        issuer: Matcher::Exact("https://github.com/login/oauth".into()),
    };
    keyless
        .check(certs, &bundle.tlog, Signed::Dsse(envelope))
        .expect("cosign's own bundle verifies");
    let statement = envelope.statement().expect("statement");
    let subject: Digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
        .parse()
        .expect("digest");
    assert!(statement.names(&subject));
    // As an image signature it is refused for what it is: an attestation.
    let policy = Policy::Keyless(Box::new(keyless));
    assert!(matches!(
        check_bundle(&policy, &layer(), &bytes, &subject),
        Err(Rejected::NotASignature { .. })
    ));
}

#[test]
fn a_broken_inclusion_proof_or_checkpoint_is_named() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/signature/testdata/sigstore/public-good");
    let root = TrustedRoot::load(&dir.join("cosign-trusted_root_pgi.json")).expect("root");
    let bytes = std::fs::read(dir.join("cosign-oci-attestation.sigstore.json")).expect("bundle");
    let keyless = Keyless {
        root,
        identity: Matcher::Exact("cody@soyland.com".into()),
        issuer: Matcher::Exact("https://github.com/login/oauth".into()),
    };
    let check = |bytes: &[u8]| {
        let bundle = Bundle::parse(bytes).expect("bundle");
        let sigstore::Material::Certificates(certs) = &bundle.material else {
            panic!("a certificate");
        };
        let sigstore::Content::Dsse(envelope) = &bundle.content else {
            panic!("a DSSE envelope");
        };
        keyless
            .check(certs, &bundle.tlog, Signed::Dsse(envelope))
            .map_err(|e| e.to_string())
    };
    check(&bytes).expect("valid");
    const PROOF: &str = "/verificationMaterial/tlogEntries/0/inclusionProof";
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| {
                *v.pointer_mut(&format!("{PROOF}/hashes/3")).expect("hash") =
                    "V8kTVhZDHU0oMb8SoiG+IJzfi1+zs8k07t7msfdk3DU=".into();
            }),
            "does not lead to the proof's root hash",
        ),
        (
            Box::new(|v| {
                *v.pointer_mut(&format!("{PROOF}/treeSize")).expect("size") = "3".into();
            }),
            "does not fit its tree size",
        ),
        (
            Box::new(|v| {
                let cp = v
                    .pointer_mut(&format!("{PROOF}/checkpoint/envelope"))
                    .expect("checkpoint");
                let text = cp
                    .as_str()
                    .expect("text")
                    .replace("\n53604735\n", "\n53604736\n");
                *cp = text.into();
            }),
            "names another tree size",
        ),
        (
            Box::new(|v| {
                let cp = v
                    .pointer_mut(&format!("{PROOF}/checkpoint/envelope"))
                    .expect("checkpoint");
                let text = cp.as_str().expect("text").replace(
                    "rekor.sigstore.dev - 1193050959916656506",
                    "rekor.sigstore.dev - 1",
                );
                *cp = text.into();
            }),
            "is not signed by the log",
        ),
        (
            Box::new(|v| {
                *v.pointer_mut(&format!("{PROOF}/checkpoint/envelope"))
                    .expect("checkpoint") = "x".into();
            }),
            "is not a signed note",
        ),
    ];
    for (f, want) in cases {
        let e = check(&edit(&bytes, f)).expect_err(want);
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn merkle_paths_follow_rfc_9162() {
    use sha2::Digest as _;
    let h = |b: &[u8]| sha2::Sha256::digest(b).to_vec();
    let leaf = |d: &[u8]| h(&[&[0u8][..], d].concat());
    let node = |l: &[u8], r: &[u8]| h(&[&[1u8][..], l, r].concat());
    let (a, b, c) = (leaf(b"a"), leaf(b"b"), leaf(b"c"));
    // A tree of three: root = node(node(a, b), c).
    let root = node(&node(&a, &b), &c);
    assert_eq!(
        merkle_root(0, 3, &a, &[b.clone(), c.clone()]),
        Some(root.clone())
    );
    assert_eq!(
        merkle_root(1, 3, &b, &[a.clone(), c.clone()]),
        Some(root.clone())
    );
    assert_eq!(merkle_root(2, 3, &c, &[node(&a, &b)]), Some(root.clone()));
    assert_eq!(merkle_root(0, 1, &a, &[]), Some(a.clone()));
    assert_eq!(merkle_root(3, 3, &a, &[]), None);
    assert_eq!(merkle_root(2, 3, &c, &[node(&a, &b), a.clone()]), None);
    assert_ne!(merkle_root(0, 3, &a, &[c.clone(), b.clone()]), Some(root));
}

/// A lock of one image (the vectors' digest) with one referrers attachment `attached`.
fn lock_with(attached_source: &str, attached_digest: &Digest) -> ferry_plan::LockFile {
    use ferry_plan::{AttachedTo, LockedImage};
    let image = LockedImage {
        name: "rancher/mirrored-pause:3.7".into(),
        source: "docker.io/rancher/mirrored-pause:3.7".into(),
        digest: digest(),
        media_type: ferry_oci::media_types::OCI_INDEX.into(),
        size: 1,
        total_size: 1,
        written_digest: None,
        platforms: Vec::new(),
        attached_to: None,
    };
    let referrers = LockedImage {
        name: attached_source.trim_start_matches("docker.io/").into(),
        source: attached_source.into(),
        digest: attached_digest.clone(),
        media_type: ferry_oci::media_types::OCI_MANIFEST.into(),
        size: 1,
        total_size: 1,
        written_digest: None,
        platforms: Vec::new(),
        attached_to: Some(AttachedTo {
            image: image.name.clone(),
            subject: digest(),
            kind: ferry_oci::cosign::Attachment::Referrers,
        }),
    };
    ferry_plan::LockFile::new(vec![image, referrers], 2)
}

#[tokio::test]
async fn check_signed_reads_a_referrers_index_and_a_referrer_manifest() {
    use ferry_store::memory::MemoryStore;
    let repo = "rancher/mirrored-pause";
    let store = MemoryStore::new(false);
    let layer = store.put_blob(repo, BUNDLE);
    let config = store.put_blob(repo, b"{}");
    let referrer = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": sigstore::BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": sigstore::BUNDLE_V03, "digest": layer.to_string(), "size": BUNDLE.len()}],
        "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest().to_string(), "size": 1}
    }))
    .expect("json");
    let referrer_digest =
        store.put_manifest(repo, ferry_oci::media_types::OCI_MANIFEST, &referrer, None);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": referrer_digest.to_string(), "size": referrer.len(),
                       "artifactType": sigstore::BUNDLE_V03}]
    }))
    .expect("json");
    let tag = format!("sha256-{}", digest().hex());
    let index_digest =
        store.put_manifest(repo, ferry_oci::media_types::OCI_INDEX, &index, Some(&tag));
    let same = |r: &ferry_oci::reference::Reference| r.clone();
    for (source, attached) in [
        (format!("docker.io/{repo}:{tag}"), &index_digest),
        (
            format!("docker.io/{repo}@{referrer_digest}"),
            &referrer_digest,
        ),
    ] {
        let lock = lock_with(&source, attached);
        let problems = crate::signature::check_signed(&store, &lock, &same, &good()).await;
        assert!(problems.is_empty(), "{source}: {problems:?}");
        let wrong = keyless("trusted_root.json", "x@y", "https://oidc.example.test");
        let problems = crate::signature::check_signed(&store, &lock, &same, &wrong).await;
        assert_eq!(problems.len(), 1, "{source}: {problems:?}");
        assert_eq!(problems[0].kind, crate::Kind::BadSignature);
        assert!(
            problems[0].detail.contains("identity"),
            "{}",
            problems[0].detail
        );
    }
    // A referrers index with no bundle in it (an SBOM only) leaves the image unsigned.
    let sbom = store.put_blob(repo, b"{}");
    let other = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom.to_string(), "size": 2}]
    }))
    .expect("json");
    let other_digest = store.put_manifest(repo, ferry_oci::media_types::OCI_MANIFEST, &other, None);
    let lock = lock_with(&format!("docker.io/{repo}@{other_digest}"), &other_digest);
    let problems = crate::signature::check_signed(&store, &lock, &same, &good()).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, crate::Kind::Unsigned);
}
