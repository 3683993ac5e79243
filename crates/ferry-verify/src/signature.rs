//! Offline signature checks with a cosign public key (`--key`): the key is read from PEM
//! (SubjectPublicKeyInfo, as `cosign generate-key-pair` and `openssl ... -pubout` write it),
//! and a cosign `.sig` manifest's simple-signing layers are checked against it. ring does the
//! cryptography (it is already in the tree for TLS); `spki` reads the key's DER.
//!
//! The algorithms are cosign's: ECDSA P-256 with SHA-256 (cosign's default keys), P-384 with
//! SHA-384 (or SHA-256, which older cosign used for every key), RSA PKCS#1 v1.5 with SHA-256,
//! SHA-384 or SHA-512, and Ed25519. A signature is over the payload blob's exact bytes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use spki::der::Decode as _;

use ferry_oci::cosign::{
    Attachment, DSSE_ENVELOPE, MAX_PAYLOAD, Payload, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use ferry_oci::digest::Digest;
use ferry_oci::manifest::{Descriptor, Manifest};
use ferry_oci::reference::Reference;
use ferry_plan::{LockFile, LockedImage};
use ferry_store::Source;

use super::{Kind, Problem};

pub mod dsse;
pub mod keyless;
pub mod sigstore;
pub mod trust;

use dsse::Envelope;
pub use keyless::{Keyless, KeylessError, Matcher};
pub use trust::{RootError, TrustedRoot};

/// The layer annotation of a keyless `.sig`: the signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";

/// The layer annotation of a keyless `.sig`: the certificate's chain (PEM, the root last).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// The layer annotation of a `.sig` logged in Rekor: the entry with its signed timestamp.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// The largest key file read.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The most signature layers of one `.sig` manifest that are checked.
pub const MAX_SIGNATURES: usize = 64;

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";
const RSA: &str = "1.2.840.113549.1.1.1";
const ED25519: &str = "1.3.101.112";

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Unreadable or too large.
    #[error(
        "cannot read public key {path}: {detail}; give the cosign public key (cosign.pub) with --key"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Not a PEM public key.
    #[error(
        "{path} is not a PEM public key (\"-----BEGIN PUBLIC KEY-----\"): {detail}; give the cosign public key (cosign.pub, or `openssl pkey -pubout` of the signing key)"
    )]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A key type cosign does not sign with.
    #[error(
        "{path} holds a {what} key, which cosign does not sign with; ferry checks ECDSA P-256 and P-384, RSA and Ed25519 keys"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What it holds (an OID when unknown).
        what: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Rsa,
    Ed25519,
}

/// A public key to check signatures with.
#[derive(Debug, Clone)]
pub struct PublicKey {
    kind: KeyKind,
    /// The key bits (the SPKI's subjectPublicKey), as ring takes them.
    bits: Vec<u8>,
    /// Where it was read from, for messages.
    path: PathBuf,
}

impl PublicKey {
    /// Reads a PEM public key file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let bytes = ferry_base::bounded::read(path, MAX_KEY_FILE).map_err(|e| KeyError::Read {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        PublicKey::from_pem(&bytes, path)
    }

    /// Parses PEM bytes; `path` is used in messages.
    pub fn from_pem(pem: &[u8], path: &Path) -> Result<PublicKey, KeyError> {
        let pem_error = |detail: String| KeyError::Pem {
            path: path.to_path_buf(),
            detail,
        };
        let der =
            SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|e| pem_error(e.to_string()))?;
        let (kind, bits) = spki_key(der.as_ref()).map_err(|e| match e {
            SpkiProblem::Der(detail) => pem_error(detail),
            SpkiProblem::Unsupported(what) => KeyError::Unsupported {
                path: path.to_path_buf(),
                what,
            },
        })?;
        Ok(PublicKey {
            kind,
            bits,
            path: path.to_path_buf(),
        })
    }

    /// Reads a DER SubjectPublicKeyInfo (a certificate's key, a log's key in a trusted root);
    /// `label` names it in messages. The error is a sentence.
    pub fn from_spki_der(der: &[u8], label: &str) -> Result<PublicKey, String> {
        let (kind, bits) = spki_key(der).map_err(|e| match e {
            SpkiProblem::Der(detail) => format!("{label} is not a DER public key: {detail}"),
            SpkiProblem::Unsupported(what) => {
                format!("{label} is a {what} key, which ferry does not check")
            }
        })?;
        Ok(PublicKey {
            kind,
            bits,
            path: PathBuf::from(label),
        })
    }

    /// Where the key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn algorithms(&self) -> &'static [&'static dyn VerificationAlgorithm] {
        const P256_ALGS: [&dyn VerificationAlgorithm; 1] = [&sig::ECDSA_P256_SHA256_ASN1];
        const P384_ALGS: [&dyn VerificationAlgorithm; 2] =
            [&sig::ECDSA_P384_SHA384_ASN1, &sig::ECDSA_P384_SHA256_ASN1];
        const RSA_ALGS: [&dyn VerificationAlgorithm; 3] = [
            &sig::RSA_PKCS1_2048_8192_SHA256,
            &sig::RSA_PKCS1_2048_8192_SHA384,
            &sig::RSA_PKCS1_2048_8192_SHA512,
        ];
        const ED25519_ALGS: [&dyn VerificationAlgorithm; 1] = [&sig::ED25519];
        match self.kind {
            KeyKind::P256 => &P256_ALGS,
            KeyKind::P384 => &P384_ALGS,
            KeyKind::Rsa => &RSA_ALGS,
            KeyKind::Ed25519 => &ED25519_ALGS,
        }
    }

    /// True when `signature` over `message` is valid for this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.algorithms().iter().any(|alg| {
            UnparsedPublicKey::new(*alg, &self.bits)
                .verify(message, signature)
                .is_ok()
        })
    }
}

enum SpkiProblem {
    Der(String),
    Unsupported(String),
}

/// The kind and key bits of a DER SubjectPublicKeyInfo.
fn spki_key(der: &[u8]) -> Result<(KeyKind, Vec<u8>), SpkiProblem> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| SpkiProblem::Der(e.to_string()))?;
    let oid = info.algorithm.oid.to_string();
    let kind = match oid.as_str() {
        EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map(|o| o.to_string())
                .unwrap_or_default();
            match curve.as_str() {
                P256 => KeyKind::P256,
                P384 => KeyKind::P384,
                other => {
                    return Err(SpkiProblem::Unsupported(format!(
                        "ECDSA key on curve {other}"
                    )));
                }
            }
        }
        RSA => KeyKind::Rsa,
        ED25519 => KeyKind::Ed25519,
        other => return Err(SpkiProblem::Unsupported(format!("algorithm {other}"))),
    };
    let bits = info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| SpkiProblem::Der("the key's bit string is not whole bytes".into()))?
        .to_vec();
    Ok((kind, bits))
}

/// Why one signature layer does not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The layer has no signature annotation.
    #[error("signature layer {layer} has no {SIGNATURE_ANNOTATION} annotation")]
    NoSignature {
        /// The layer.
        layer: Digest,
    },
    /// The annotation is not base64.
    #[error("signature layer {layer}: the signature is not base64")]
    NotBase64 {
        /// The layer.
        layer: Digest,
    },
    /// The signature does not verify with the key.
    #[error("signature layer {layer} was not made by the key {key}")]
    WrongKey {
        /// The layer.
        layer: Digest,
        /// The key file.
        key: String,
    },
    /// The payload is not a simple-signing document.
    #[error("signature layer {layer}: {detail}")]
    Payload {
        /// The layer.
        layer: Digest,
        /// Why.
        detail: String,
    },
    /// A valid attestation, but not about this image.
    #[error(
        "attestation layer {layer} ({predicate}) is validly signed but is not about this image"
    )]
    NotSubject {
        /// The layer.
        layer: Digest,
        /// Its predicate type.
        predicate: String,
    },
    /// Keyless checks need a certificate, and this was made with a key.
    #[error(
        "{what} {layer} carries no signing certificate (it was signed with a key); verify it with --key"
    )]
    NoCertificate {
        /// "signature layer" or "sigstore bundle".
        what: &'static str,
        /// The layer.
        layer: Digest,
    },
    /// The keyless checks failed.
    #[error("{what} {layer}: {reason}")]
    Keyless {
        /// "signature layer" or "sigstore bundle".
        what: &'static str,
        /// The layer.
        layer: Digest,
        /// Why.
        reason: KeylessError,
    },
    /// A sigstore bundle of an attestation, not of a signature.
    #[error("sigstore bundle {layer} is an attestation ({predicate}), not a signature")]
    NotASignature {
        /// The layer.
        layer: Digest,
        /// Its predicate type.
        predicate: String,
    },
    /// A valid bundle, but for another image.
    #[error("sigstore bundle {layer} is validly signed but its statement names another image")]
    BundleSubject {
        /// The layer.
        layer: Digest,
    },
    /// A valid signature, but for another digest.
    #[error("signature layer {layer} is valid but signs {signed}, not this image")]
    OtherDigest {
        /// The layer.
        layer: Digest,
        /// The digest it signs.
        signed: Digest,
    },
}

/// The layers of `media_type` of an attachment manifest (at most [`MAX_SIGNATURES`]).
fn layers_of<'m>(manifest: &'m Manifest, media_type: &str) -> Vec<&'m Descriptor> {
    match manifest {
        Manifest::Image { layers, .. } => layers
            .iter()
            .filter(|l| ferry_oci::media_types::strip_params(&l.media_type) == media_type)
            .take(MAX_SIGNATURES)
            .collect(),
        Manifest::Index { .. } => Vec::new(),
    }
}

/// The simple-signing layers of a `.sig` manifest (at most [`MAX_SIGNATURES`]).
pub fn signature_layers(manifest: &Manifest) -> Vec<&Descriptor> {
    layers_of(manifest, SIMPLE_SIGNING)
}

/// The DSSE layers of an `.att` manifest (at most [`MAX_SIGNATURES`]).
pub fn attestation_layers(manifest: &Manifest) -> Vec<&Descriptor> {
    layers_of(manifest, DSSE_ENVELOPE)
}

/// Checks one attestation layer's envelope (the blob `envelope`) against `key` for the image
/// `digest`: a signature of the envelope valid for the key over its PAE, and an in-toto
/// statement one of whose subjects is `digest`.
pub fn check_attestation(
    key: &PublicKey,
    layer: &Descriptor,
    envelope: &[u8],
    digest: &Digest,
) -> Result<(), Rejected> {
    let at = || layer.digest.clone();
    let envelope = Envelope::parse(envelope).map_err(|e| Rejected::Payload {
        layer: at(),
        detail: e.to_string(),
    })?;
    if !envelope.verifies(key) {
        return Err(Rejected::WrongKey {
            layer: at(),
            key: key.path().display().to_string(),
        });
    }
    let statement = envelope.statement().map_err(|e| Rejected::Payload {
        layer: at(),
        detail: e.to_string(),
    })?;
    if !statement.names(digest) {
        return Err(Rejected::NotSubject {
            layer: at(),
            predicate: statement.predicate_type,
        });
    }
    Ok(())
}

/// Checks one signature layer (`layer`, whose blob is `payload`) against `key` for the
/// image `digest`: the annotation's signature over the payload's exact bytes, then the
/// payload's `docker-manifest-digest`. The payload's `docker-reference` is not compared: it
/// names the upstream repository, and a mirror serves the image under another name.
pub fn check_layer(
    key: &PublicKey,
    layer: &Descriptor,
    payload: &[u8],
    digest: &Digest,
) -> Result<(), Rejected> {
    let at = || layer.digest.clone();
    let b64 = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| Rejected::NoSignature { layer: at() })?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Rejected::NotBase64 { layer: at() })?;
    if !key.verifies(payload, &signature) {
        return Err(Rejected::WrongKey {
            layer: at(),
            key: key.path().display().to_string(),
        });
    }
    let parsed = Payload::parse(payload).map_err(|e| Rejected::Payload {
        layer: at(),
        detail: e.to_string(),
    })?;
    if &parsed.digest != digest {
        return Err(Rejected::OtherDigest {
            layer: at(),
            signed: parsed.digest,
        });
    }
    Ok(())
}

/// How a signature must be made: by a key (`--key`), or keyless under a trust root, by an
/// identity and an OIDC issuer (`--trusted-root`, `--certificate-identity[-regexp]`,
/// `--certificate-oidc-issuer[-regexp]`).
#[derive(Debug, Clone)]
pub enum Policy {
    /// By this key.
    Key(PublicKey),
    /// Keyless.
    Keyless(Box<Keyless>),
}

impl Policy {
    /// "by the key …" or "by … from … under …", for messages.
    pub fn describe(&self) -> String {
        match self {
            Policy::Key(key) => format!("by the key {}", key.path().display()),
            Policy::Keyless(k) => format!(
                "by the identity {} of the issuer {} under the trusted root {}",
                k.identity,
                k.issuer,
                k.root.path.display()
            ),
        }
    }
}

/// Checks one signature layer of a `.sig` manifest under `policy`: with a key as
/// [`check_layer`] does; keyless from the layer's certificate, chain and Rekor bundle
/// annotations (cosign's keyless `.sig`), then the payload's digest.
pub fn check_layer_with(
    policy: &Policy,
    layer: &Descriptor,
    payload: &[u8],
    digest: &Digest,
) -> Result<(), Rejected> {
    let keyless = match policy {
        Policy::Key(key) => return check_layer(key, layer, payload, digest),
        Policy::Keyless(k) => k,
    };
    let at = || layer.digest.clone();
    let b64 = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| Rejected::NoSignature { layer: at() })?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| Rejected::NotBase64 { layer: at() })?;
    let Some(leaf) = layer.annotations.get(CERTIFICATE_ANNOTATION) else {
        return Err(Rejected::NoCertificate {
            what: "signature layer",
            layer: at(),
        });
    };
    let pem_error = |what: &str| Rejected::Payload {
        layer: at(),
        detail: format!("its {what} annotation is not PEM certificates"),
    };
    let mut certificates = Vec::new();
    for pem in std::iter::once(leaf).chain(layer.annotations.get(CHAIN_ANNOTATION)) {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()).take(sigstore::MAX_CERTIFICATES) {
            certificates.push(c.map_err(|_| pem_error("certificate"))?.as_ref().to_vec());
        }
    }
    if certificates.is_empty() {
        return Err(pem_error("certificate"));
    }
    let entries = match layer.annotations.get(BUNDLE_ANNOTATION) {
        Some(b) => vec![sigstore::legacy_entry(b).map_err(|e| Rejected::Payload {
            layer: at(),
            detail: e.to_string(),
        })?],
        None => Vec::new(),
    };
    keyless
        .check(
            &certificates,
            &entries,
            keyless::Signed::Blob {
                payload,
                signature: &signature,
            },
        )
        .map_err(|reason| Rejected::Keyless {
            what: "signature layer",
            layer: at(),
            reason,
        })?;
    let parsed = Payload::parse(payload).map_err(|e| Rejected::Payload {
        layer: at(),
        detail: e.to_string(),
    })?;
    if &parsed.digest != digest {
        return Err(Rejected::OtherDigest {
            layer: at(),
            signed: parsed.digest,
        });
    }
    Ok(())
}

/// Checks one sigstore bundle (the blob of a referrer's bundle layer `layer`) under `policy`
/// for the image `digest`: its DSSE envelope's signature (by the key; or keyless, by the
/// bundle's certificate with its Rekor entry), and an in-toto statement of `cosign sign`'s
/// predicate whose subject is `digest`. [`Rejected::NotASignature`] means the bundle is an
/// attestation (another predicate), which says nothing about a signature.
pub fn check_bundle(
    policy: &Policy,
    layer: &Digest,
    bytes: &[u8],
    digest: &Digest,
) -> Result<(), Rejected> {
    let at = || layer.clone();
    let payload = |detail: String| Rejected::Payload {
        layer: at(),
        detail,
    };
    let bundle = sigstore::Bundle::parse(bytes).map_err(|e| payload(e.to_string()))?;
    let envelope = match &bundle.content {
        sigstore::Content::Dsse(e) => e,
        sigstore::Content::Message { .. } => {
            return Err(payload(
                "the sigstore bundle holds a messageSignature (a signed blob, as cosign sign-blob makes), not an image signature, which cosign puts in a DSSE envelope".into(),
            ));
        }
    };
    let statement = envelope
        .statement()
        .map_err(|e| payload(format!("sigstore bundle: {e}")))?;
    if statement.predicate_type != sigstore::COSIGN_SIGN_PREDICATE {
        return Err(Rejected::NotASignature {
            layer: at(),
            predicate: statement.predicate_type,
        });
    }
    match policy {
        Policy::Key(key) => {
            if !envelope.verifies(key) {
                return Err(Rejected::WrongKey {
                    layer: at(),
                    key: key.path().display().to_string(),
                });
            }
        }
        Policy::Keyless(keyless) => match &bundle.material {
            sigstore::Material::Certificates(certificates) => keyless
                .check(certificates, &bundle.tlog, keyless::Signed::Dsse(envelope))
                .map_err(|reason| Rejected::Keyless {
                    what: "sigstore bundle",
                    layer: at(),
                    reason,
                })?,
            sigstore::Material::PublicKey { .. } => {
                return Err(Rejected::NoCertificate {
                    what: "sigstore bundle",
                    layer: at(),
                });
            }
        },
    }
    if !statement.names(digest) {
        return Err(Rejected::BundleSubject { layer: at() });
    }
    Ok(())
}

/// Checks that every image of `lock` (not its attachments) has at least one signature valid
/// under `policy` of its top-level digest: a cosign `.sig` layer, or a sigstore bundle
/// referrer (cosign 3), among the attachments the lock lists, read from `store` at
/// `at(source)`. A referrers attachment is either the referrers tag schema's index (its
/// children are the referrers) or a referrer manifest itself. Returns one problem per image
/// that fails, naming every reason.
pub async fn check_signed<S: Source>(
    store: &S,
    lock: &LockFile,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    policy: &Policy,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for image in lock.images.iter().filter(|i| i.attached_to.is_none()) {
        let attached = lock.images.iter().filter(|s| {
            s.attached_to.as_ref().is_some_and(|a| {
                matches!(a.kind, Attachment::Sig | Attachment::Referrers)
                    && a.image == image.name
                    && a.subject == image.digest
            })
        });
        let mut found = false;
        let mut valid = false;
        let mut reasons = Vec::new();
        for one in attached {
            let kind = one.attached_to.as_ref().map(|a| a.kind);
            let outcome = if kind == Some(Attachment::Sig) {
                found = true;
                signature_in(store, one, at, policy, &image.digest).await
            } else {
                bundles_in(store, one, at, policy, &image.digest, &mut found).await
            };
            match outcome {
                Ok(()) => {
                    valid = true;
                    break;
                }
                Err(r) => reasons.extend(r),
            }
        }
        if valid {
            continue;
        }
        let problem = if !found && reasons.is_empty() {
            Problem::new(
                Kind::Unsigned,
                format!(
                    "{} ({}) has no cosign signature (no .sig tag, no sigstore bundle referrer); sign it upstream (cosign sign) and export again, or check without --key/--trusted-root",
                    image.name, image.digest
                ),
            )
        } else {
            Problem::new(
                Kind::BadSignature,
                format!(
                    "{} ({}) has no valid signature {}: {}",
                    image.name,
                    image.digest,
                    policy.describe(),
                    reasons.join("; ")
                ),
            )
        };
        problems.push(problem.of(&image.name).at(&image.digest));
    }
    problems
}

/// Fetches an attachment's manifest, parsed.
async fn attachment_manifest<S: Source>(
    store: &S,
    attachment: &LockedImage,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    digest: &Digest,
) -> Result<(Reference, Manifest), String> {
    let source = Reference::parse(&attachment.source).map_err(|e| e.to_string())?;
    let reference = at(&source);
    let fetched = store
        .manifest(&reference, Some(digest))
        .await
        .map_err(|e| {
            format!(
                "{} ({digest}): {}",
                attachment.name,
                ferry_base::chain::flatten(&e)
            )
        })?;
    let parsed = Manifest::parse(&fetched.bytes, &fetched.media_type, &fetched.digest)
        .map_err(|e| e.to_string())?;
    Ok((reference, parsed))
}

/// The layers of one attachment manifest that `select` picks, each read (capped at
/// [`MAX_PAYLOAD`]) and given to `check`: `Ok` at the first that passes, else every reason.
/// `noun` and `layer_kind` name them in the reasons ("signature", "simple-signing").
async fn first_valid_layer<S: Source>(
    store: &S,
    attachment: &LockedImage,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    (noun, layer_kind): (&str, &str),
    select: fn(&Manifest) -> Vec<&Descriptor>,
    check: impl Fn(&Descriptor, &[u8]) -> Result<(), Rejected>,
) -> Result<(), Vec<String>> {
    let (reference, parsed) = attachment_manifest(store, attachment, at, &attachment.digest)
        .await
        .map_err(|e| vec![format!("{noun} {e}")])?;
    let layers = select(&parsed);
    if layers.is_empty() {
        return Err(vec![format!(
            "{noun} {} has no {layer_kind} layer",
            attachment.name
        )]);
    }
    let mut reasons = Vec::new();
    for layer in layers {
        match ferry_store::read_small(store, &reference, layer, MAX_PAYLOAD).await {
            Ok(blob) => match check(layer, &blob) {
                Ok(()) => return Ok(()),
                Err(r) => reasons.push(r.to_string()),
            },
            Err(e) => reasons.push(format!(
                "{noun} layer {}: {}",
                layer.digest,
                ferry_base::chain::flatten(&e)
            )),
        }
    }
    Err(reasons)
}

/// Whether one `.sig` manifest holds a valid signature of `digest` under `policy`.
async fn signature_in<S: Source>(
    store: &S,
    sig: &LockedImage,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    policy: &Policy,
    digest: &Digest,
) -> Result<(), Vec<String>> {
    first_valid_layer(
        store,
        sig,
        at,
        ("signature", "simple-signing"),
        signature_layers,
        |layer, payload| check_layer_with(policy, layer, payload, digest),
    )
    .await
}

/// Whether a referrers attachment (the tag schema's index, or one referrer manifest) holds a
/// sigstore bundle that is a valid signature of `digest` under `policy`. Sets `found` when it
/// holds a bundle that is a signature at all (valid or not).
async fn bundles_in<S: Source>(
    store: &S,
    referrers: &LockedImage,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    policy: &Policy,
    digest: &Digest,
    found: &mut bool,
) -> Result<(), Vec<String>> {
    let (reference, parsed) = attachment_manifest(store, referrers, at, &referrers.digest)
        .await
        .map_err(|e| vec![format!("referrers {e}")])?;
    let mut reasons = Vec::new();
    let mut manifests = Vec::new();
    match parsed {
        Manifest::Index {
            manifests: children,
        } => {
            for child in children.iter().take(MAX_SIGNATURES) {
                match attachment_manifest(store, referrers, at, &child.digest).await {
                    Ok((_, m)) => manifests.push(m),
                    Err(e) => reasons.push(format!("referrer {e}")),
                }
            }
        }
        image @ Manifest::Image { .. } => manifests.push(image),
    }
    for manifest in &manifests {
        let Manifest::Image { layers, .. } = manifest else {
            continue;
        };
        for layer in layers
            .iter()
            .filter(|l| sigstore::is_bundle_media_type(&l.media_type))
            .take(MAX_SIGNATURES)
        {
            let bytes =
                match ferry_store::read_small(store, &reference, layer, sigstore::MAX_BUNDLE).await
                {
                    Ok(b) => b,
                    Err(e) => {
                        *found = true;
                        reasons.push(format!(
                            "sigstore bundle {}: {}",
                            layer.digest,
                            ferry_base::chain::flatten(&e)
                        ));
                        continue;
                    }
                };
            match check_bundle(policy, &layer.digest, &bytes, digest) {
                Ok(()) => return Ok(()),
                Err(Rejected::NotASignature { .. }) => {}
                Err(r) => {
                    *found = true;
                    reasons.push(r.to_string());
                }
            }
        }
    }
    Err(reasons)
}

/// Checks that every image of `lock` (not its attachments) has at least one cosign
/// attestation (`.att`) valid for `key` about its top-level digest, as `cosign
/// verify-attestation --key` wants, among the attachments the lock lists, read from `store`
/// at `at(source)`. Returns one problem per image that fails, naming every reason.
pub async fn check_attested<S: Source>(
    store: &S,
    lock: &LockFile,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    key: &PublicKey,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for image in lock.images.iter().filter(|i| i.attached_to.is_none()) {
        let attached: Vec<&LockedImage> = lock
            .images
            .iter()
            .filter(|s| {
                s.attached_to.as_ref().is_some_and(|a| {
                    a.kind == Attachment::Att && a.image == image.name && a.subject == image.digest
                })
            })
            .collect();
        if attached.is_empty() {
            problems.push(
                Problem::new(
                    Kind::Unattested,
                    format!(
                        "{} ({}) has no cosign attestation; attest it upstream (cosign attest --key …) and export again, or verify without --attestations",
                        image.name, image.digest
                    ),
                )
                .of(&image.name)
                .at(&image.digest),
            );
            continue;
        }
        let mut reasons = Vec::new();
        let mut valid = false;
        for one in attached {
            match attestation_in(store, one, at, key, &image.digest).await {
                Ok(()) => {
                    valid = true;
                    break;
                }
                Err(r) => reasons.extend(r),
            }
        }
        if !valid {
            problems.push(
                Problem::new(
                    Kind::BadAttestation,
                    format!(
                        "{} ({}) has no valid attestation by {}: {}",
                        image.name,
                        image.digest,
                        key.path().display(),
                        reasons.join("; ")
                    ),
                )
                .of(&image.name)
                .at(&image.digest),
            );
        }
    }
    problems
}

/// Whether one `.att` manifest holds a valid attestation of `digest`; else every reason.
async fn attestation_in<S: Source>(
    store: &S,
    att: &LockedImage,
    at: &(dyn Fn(&Reference) -> Reference + Sync),
    key: &PublicKey,
    digest: &Digest,
) -> Result<(), Vec<String>> {
    first_valid_layer(
        store,
        att,
        at,
        ("attestation", "DSSE"),
        attestation_layers,
        |layer, envelope| check_attestation(key, layer, envelope, digest),
    )
    .await
}

#[cfg(test)]
mod tests;
