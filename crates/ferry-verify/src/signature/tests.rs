//! The checks against vectors made by openssl (`testdata/gen.sh`), never by ferry.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/signature/testdata")
            .join(name),
    )
    .expect("test vector")
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(&data(&format!("{name}.pub")), Path::new(name)).expect("key")
}

fn layer(signature_b64: &str) -> Descriptor {
    let payload = data("payload.json");
    let mut annotations = BTreeMap::new();
    annotations.insert(SIGNATURE_ANNOTATION.to_string(), signature_b64.to_string());
    Descriptor {
        media_type: SIMPLE_SIGNING.to_string(),
        digest: Digest::sha256_of(&payload),
        size: payload.len() as u64,
        platform: None,
        annotations,
    }
}

fn subject() -> Digest {
    Digest::parse(String::from_utf8(data("digest.txt")).expect("utf8").trim()).expect("digest")
}

#[test]
fn every_algorithm_cosign_signs_with_verifies() {
    let payload = data("payload.json");
    for name in ["p256", "p384", "rsa", "ed25519"] {
        let sig = String::from_utf8(data(&format!("{name}.sig.b64"))).expect("b64");
        check_layer(&key(name), &layer(&sig), &payload, &subject())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_flipped_byte_the_wrong_key_or_another_digest_is_rejected() {
    let payload = data("payload.json");
    let sig = String::from_utf8(data("p256.sig.b64")).expect("b64");
    // The wrong key.
    assert!(matches!(
        check_layer(&key("p384"), &layer(&sig), &payload, &subject()),
        Err(Rejected::WrongKey { .. })
    ));
    // A flipped byte of the payload.
    let mut flipped = payload.clone();
    flipped[10] ^= 1;
    assert!(matches!(
        check_layer(&key("p256"), &layer(&sig), &flipped, &subject()),
        Err(Rejected::WrongKey { .. })
    ));
    // A flipped byte of the signature.
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(&sig)
        .expect("b64");
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let bad = base64::engine::general_purpose::STANDARD.encode(raw);
    assert!(matches!(
        check_layer(&key("p256"), &layer(&bad), &payload, &subject()),
        Err(Rejected::WrongKey { .. })
    ));
    // A valid signature of another image.
    assert!(matches!(
        check_layer(
            &key("p256"),
            &layer(&sig),
            &payload,
            &Digest::sha256_of(b"other")
        ),
        Err(Rejected::OtherDigest { .. })
    ));
    // No annotation; not base64.
    let mut none = layer(&sig);
    none.annotations.clear();
    assert!(matches!(
        check_layer(&key("p256"), &none, &payload, &subject()),
        Err(Rejected::NoSignature { .. })
    ));
    assert!(matches!(
        check_layer(&key("p256"), &layer("!!"), &payload, &subject()),
        Err(Rejected::NotBase64 { .. })
    ));
}

#[test]
fn keys_cosign_does_not_use_and_non_keys_are_clear_errors() {
    let e = PublicKey::from_pem(&data("k256.pub"), Path::new("k256.pub")).expect_err("secp256k1");
    assert!(e.to_string().contains("does not sign with"), "{e}");
    let e = PublicKey::from_pem(b"not a key", Path::new("x.pub")).expect_err("garbage");
    assert!(e.to_string().contains("not a PEM public key"), "{e}");
}

fn attestation_layer() -> (Descriptor, Vec<u8>) {
    let envelope = data("dsse.json");
    let d = Descriptor {
        media_type: DSSE_ENVELOPE.to_string(),
        digest: Digest::sha256_of(&envelope),
        size: envelope.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    };
    (d, envelope)
}

#[test]
fn an_openssl_signed_attestation_verifies_and_names_its_subject() {
    let (layer, envelope) = attestation_layer();
    check_attestation(&key("p256"), &layer, &envelope, &subject()).expect("valid");
    let other = Digest::sha256_of(b"another image");
    assert!(matches!(
        check_attestation(&key("p256"), &layer, &envelope, &other),
        Err(Rejected::NotSubject { .. })
    ));
    assert!(matches!(
        check_attestation(&key("p384"), &layer, &envelope, &subject()),
        Err(Rejected::WrongKey { .. })
    ));
}

#[test]
fn a_changed_attestation_payload_fails_the_signature() {
    let (layer, envelope) = attestation_layer();
    let mut v: serde_json::Value = serde_json::from_slice(&envelope).expect("json");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(v["payload"].as_str().expect("payload"))
        .expect("b64");
    let changed = String::from_utf8(payload)
        .expect("utf8")
        .replace("example.com/ci", "example.com/cj");
    v["payload"] = base64::engine::general_purpose::STANDARD
        .encode(changed)
        .into();
    let bytes = serde_json::to_vec(&v).expect("json");
    assert!(matches!(
        check_attestation(&key("p256"), &layer, &bytes, &subject()),
        Err(Rejected::WrongKey { .. })
    ));
    // The envelope's own bytes may change (whitespace, key order): the PAE does not.
    let reordered = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&envelope).expect("json"),
    )
    .expect("json");
    check_attestation(&key("p256"), &layer, &reordered, &subject()).expect("still valid");
}
