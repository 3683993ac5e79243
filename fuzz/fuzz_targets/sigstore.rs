//! The keyless parsers and checks on arbitrary bytes: a sigstore bundle (`Bundle::parse`, then
//! `check_bundle` under a keyless policy, which reads certificates with x509-cert and
//! rustls-webpki, Rekor bodies, SETs and SCTs), a `trusted_root.json`, a Rekor entry body and
//! the legacy `dev.sigstore.cosign/bundle` annotation: never panic.
//!
//! Input: the bytes, tried as each of them.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use ferry_verify::signature::sigstore::{Bundle, RekorBody, legacy_entry};
use ferry_verify::signature::{Keyless, Matcher, Policy, TrustedRoot, check_bundle};
use libfuzzer_sys::fuzz_target;

const ROOT: &[u8] =
    include_bytes!("../../crates/ferry-verify/src/signature/testdata/sigstore/trusted_root.json");

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::Keyless(Box::new(Keyless {
            root: TrustedRoot::parse(ROOT, Path::new("trusted_root.json")).expect("root"),
            identity: Matcher::Exact("builder@example.test".into()),
            issuer: Matcher::Exact("https://oidc.example.test".into()),
        }))
    })
}

fuzz_target!(|data: &[u8]| {
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        .parse()
        .expect("digest");
    if Bundle::parse(data).is_ok() {
        let _ = check_bundle(policy(), &digest, data, &digest);
    }
    let _ = TrustedRoot::parse(data, Path::new("fuzz.json"));
    let _ = RekorBody::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = legacy_entry(text);
    }
});
