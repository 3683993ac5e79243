//! The bundle and Rekor parsers on good and bad input. The vectors are made by
//! `testdata/sigstore/gen.sh` (python3-cryptography), never by ferry.

use super::*;

const BUNDLE: &[u8] = include_bytes!("../testdata/sigstore/bundle.json");
const KEYED: &[u8] = include_bytes!("../testdata/sigstore/key.json");
const LEGACY: &[u8] = include_bytes!("../testdata/sigstore/legacy.json");

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("json")
}

fn parse_value(v: &serde_json::Value) -> Result<Bundle, BundleError> {
    Bundle::parse(&serde_json::to_vec(v).expect("json"))
}

#[test]
fn a_cosign_3_keyless_bundle_is_read() {
    let b = Bundle::parse(BUNDLE).expect("bundle");
    assert_eq!(b.media_type, BUNDLE_V03);
    let Material::Certificates(certs) = &b.material else {
        panic!("certificate material: {:?}", b.material);
    };
    assert_eq!(certs.len(), 1);
    assert_eq!(b.tlog.len(), 1);
    let entry = &b.tlog[0];
    assert_eq!(entry.kind, "dsse");
    assert!(entry.set.is_some());
    assert!(entry.integrated_time > 1_700_000_000);
    let Content::Dsse(envelope) = &b.content else {
        panic!("a DSSE envelope");
    };
    let statement = envelope.statement().expect("statement");
    assert_eq!(statement.predicate_type, COSIGN_SIGN_PREDICATE);
    match RekorBody::parse(&entry.body).expect("body") {
        RekorBody::Dsse { signatures, .. } => assert_eq!(signatures.len(), 1),
        other => panic!("a dsse body: {other:?}"),
    }
}

#[test]
fn a_keyed_bundle_has_a_hint_and_numbers_may_be_numbers() {
    let b = Bundle::parse(KEYED).expect("bundle");
    assert!(
        matches!(b.material, Material::PublicKey { .. }),
        "{:?}",
        b.material
    );
    // protobuf JSON writes int64 as strings; a number is read too.
    let mut v = json(BUNDLE);
    v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = serde_json::json!(7);
    assert_eq!(parse_value(&v).expect("bundle").tlog[0].log_index, 7);
}

#[test]
fn bad_bundles_are_named_not_panics() {
    // Truncated anywhere.
    for cut in [0, 1, BUNDLE.len() / 3, BUNDLE.len() / 2, BUNDLE.len() - 1] {
        let e = Bundle::parse(&BUNDLE[..cut]).expect_err("truncated");
        assert!(matches!(e, BundleError::Json(_)), "{cut}: {e}");
    }
    // Oversized.
    let mut big = BUNDLE.to_vec();
    big.resize(MAX_BUNDLE as usize + 1, b' ');
    assert!(matches!(Bundle::parse(&big), Err(BundleError::TooLarge(_))));
    // Wrong types and bad fields.
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/verificationMaterial/tlogEntries/0/integratedTime",
            serde_json::json!(true),
            "not a sigstore bundle",
        ),
        (
            "/verificationMaterial/tlogEntries/0/logIndex",
            serde_json::json!("12x"),
            "is not an integer",
        ),
        (
            "/verificationMaterial/certificate",
            serde_json::json!(5),
            "not a sigstore bundle",
        ),
        (
            "/verificationMaterial/certificate/rawBytes",
            serde_json::json!("%%%"),
            "certificate is not base64",
        ),
        (
            "/verificationMaterial/tlogEntries/0/canonicalizedBody",
            serde_json::json!("!"),
            "canonicalizedBody is not base64",
        ),
        (
            "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp",
            serde_json::json!("*"),
            "signedEntryTimestamp is not base64",
        ),
        (
            "/dsseEnvelope/signatures",
            serde_json::json!([]),
            "no signature",
        ),
        (
            "/dsseEnvelope/payload",
            serde_json::json!(["x"]),
            "not a DSSE envelope",
        ),
        (
            "/verificationMaterial",
            serde_json::json!("x"),
            "not a sigstore bundle",
        ),
    ];
    for (pointer, value, want) in cases {
        let mut v = json(BUNDLE);
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value;
        let e = parse_value(&v).expect_err(pointer);
        assert!(e.to_string().contains(want), "{pointer}: {e}");
    }
    let proof = "/verificationMaterial/tlogEntries/0/inclusionProof";
    for (field, value, want) in [
        ("treeSize", serde_json::json!("-1"), "is negative"),
        (
            "hashes",
            serde_json::json!(vec!["AA=="; MAX_PROOF_HASHES + 1]),
            "at most 64",
        ),
        ("rootHash", serde_json::json!("%"), "rootHash is not base64"),
        ("hashes", serde_json::json!(["!"]), "hashes is not base64"),
        ("logIndex", serde_json::json!({}), "not a sigstore bundle"),
    ] {
        let mut v = json(BUNDLE);
        v.pointer_mut(proof).expect("proof")[field] = value;
        let e = parse_value(&v).expect_err(field);
        assert!(e.to_string().contains(want), "{field}: {e}");
    }
    let mut v = json(BUNDLE);
    v["verificationMaterial"]
        .as_object_mut()
        .expect("object")
        .remove("certificate");
    assert_eq!(parse_value(&v), Err(BundleError::NoMaterial));
    let mut v = json(BUNDLE);
    v.as_object_mut().expect("object").remove("dsseEnvelope");
    assert_eq!(parse_value(&v), Err(BundleError::NoContent));
    for bytes in [&b"[]"[..], b"null", b"\"x\"", b"{}"] {
        assert!(matches!(Bundle::parse(bytes), Err(BundleError::Json(_))));
    }
}

#[test]
fn bundle_media_types() {
    for yes in [
        BUNDLE_V03,
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json; version=0.2",
        "application/vnd.dev.sigstore.bundle.v0.4+json",
    ] {
        assert!(is_bundle_media_type(yes), "{yes}");
    }
    for no in [
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.dsse.envelope.v1+json",
        "application/vnd.dev.sigstore.bundle.v0.3",
        "",
    ] {
        assert!(!is_bundle_media_type(no), "{no}");
    }
}

#[test]
fn the_legacy_rekor_annotation_is_read_and_bad_ones_named() {
    let v = json(LEGACY);
    let annotation = v["annotations"]["dev.sigstore.cosign/bundle"]
        .as_str()
        .expect("annotation");
    let entry = legacy_entry(annotation).expect("entry");
    assert!(entry.set.is_some());
    assert_eq!(entry.log_id.len(), 32);
    assert!(matches!(
        RekorBody::parse(&entry.body).expect("body"),
        RekorBody::HashedRekord { .. }
    ));
    for bad in [
        "",
        "{",
        "[]",
        r#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"AA==","integratedTime":1,"logIndex":1,"logID":"zz"}}"#,
        r#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"AA==","integratedTime":"x","logIndex":1,"logID":"00"}}"#,
        r#"{"SignedEntryTimestamp":"%","Payload":{"body":"AA==","integratedTime":1,"logIndex":1,"logID":"00"}}"#,
        r#"{"SignedEntryTimestamp":"AA==","Payload":{"integratedTime":1,"logIndex":1,"logID":"00"}}"#,
    ] {
        assert!(legacy_entry(bad).is_err(), "{bad}");
    }
    let huge = " ".repeat(MAX_BUNDLE as usize + 1);
    assert!(matches!(legacy_entry(&huge), Err(BundleError::TooLarge(_))));
}

#[test]
fn bad_rekor_bodies_are_named() {
    for (body, want) in [
        (&b"{"[..], "not JSON"),
        (br#"{"kind":"intoto"}"#, "ferry checks hashedrekord, dsse and intoto"),
        (br#"{"spec":{}}"#, "no kind"),
        (br#"{"kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha512","value":"00"}}}}"#, "is not sha256"),
        (br#"{"kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"00"}},"signature":{"content":"%"}}}"#, "is not base64"),
        (br#"{"kind":"dsse","spec":{"payloadHash":{"algorithm":"sha256","value":"00"}}}"#, "no signatures"),
        (br#"{"kind":"dsse","spec":{"payloadHash":{"algorithm":"sha256","value":"00"},"signatures":[{"signature":"AA=="}]}}"#, "no base64 verifier"),
        (br#"[1]"#, "no kind"),
    ] {
        let e = RekorBody::parse(body).expect_err("refused");
        assert!(e.contains(want), "{e} / {want}");
    }
}
