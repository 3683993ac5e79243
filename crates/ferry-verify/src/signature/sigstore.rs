//! Sigstore bundles (protobuf-specs `Bundle`, in protobuf's JSON form), as cosign 3 stores an
//! image signature: an OCI 1.1 referrer whose `artifactType` and one layer's media type are
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, the layer being the bundle. `cosign sign`
//! puts a DSSE envelope in it (`dsseEnvelope`) of an in-toto v1 statement whose
//! `predicateType` is `https://sigstore.dev/cosign/sign/v1` and whose one subject is the image
//! digest (`{"digest":{"sha256":…}}`); the verification material is the Fulcio certificate
//! (keyless; `x509CertificateChain` in v0.1/v0.2 bundles) or a public-key hint (`--key`), and
//! the Rekor entries (`tlogEntries`, each with its signed entry timestamp and its body).
//!
//! Also here: the legacy keyless annotation `dev.sigstore.cosign/bundle` of a `.sig` layer (the
//! same Rekor entry, with the SET, in cosign's older shape), and the Rekor entry bodies
//! (`hashedrekord` and `dsse` v0.0.1, `intoto` v0.0.2) as far as binding an entry to a signature needs them.

use base64::Engine as _;
use serde::Deserialize;

use super::dsse::{DsseError, Envelope};

/// The media type of a v0.3 bundle (cosign 3's layer and artifactType).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The in-toto predicate type of `cosign sign`'s statement in a bundle.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// The largest bundle read (a real one is 4 to 8 KiB: a certificate, a signature, a Rekor
/// entry and its inclusion proof).
pub const MAX_BUNDLE: u64 = 256 * 1024;

/// The most Rekor entries of one bundle that are tried.
pub const MAX_TLOG_ENTRIES: usize = 8;

/// The most certificates read from one bundle's chain.
pub const MAX_CERTIFICATES: usize = 8;

/// True for a sigstore bundle's media type: v0.1 and v0.2
/// (`application/vnd.dev.sigstore.bundle+json;version=0.x`) and v0.3 on
/// (`application/vnd.dev.sigstore.bundle.v0.3+json`).
pub fn is_bundle_media_type(media_type: &str) -> bool {
    let bare = ferry_oci::media_types::strip_params(media_type);
    bare == "application/vnd.dev.sigstore.bundle+json"
        || (bare.starts_with("application/vnd.dev.sigstore.bundle.v0.") && bare.ends_with("+json"))
}

/// Why a bundle cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Larger than [`MAX_BUNDLE`].
    #[error("the sigstore bundle is {0} bytes, more than ferry reads ({MAX_BUNDLE})")]
    TooLarge(usize),
    /// Not the JSON of a bundle.
    #[error("not a sigstore bundle: {0}")]
    Json(String),
    /// A field that must be base64 is not.
    #[error("the sigstore bundle's {0} is not base64")]
    Base64(&'static str),
    /// Neither a certificate nor a public key.
    #[error("the sigstore bundle has no verification material (no certificate, no public key)")]
    NoMaterial,
    /// Neither a DSSE envelope nor a message signature.
    #[error("the sigstore bundle holds neither a dsseEnvelope nor a messageSignature")]
    NoContent,
    /// The envelope is broken.
    #[error("the sigstore bundle's envelope: {0}")]
    Dsse(DsseError),
}

/// protobuf's JSON writes 64-bit integers as strings; accept numbers too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn value(&self, what: &str) -> Result<i64, BundleError> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(t) => t
                .parse()
                .map_err(|_| BundleError::Json(format!("{what} {t:?} is not an integer"))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    #[serde(default)]
    media_type: String,
    verification_material: RawMaterial,
    #[serde(default)]
    dsse_envelope: Option<serde_json::Value>,
    #[serde(default)]
    message_signature: Option<RawMessageSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    #[serde(default)]
    certificate: Option<RawBytes>,
    #[serde(default)]
    x509_certificate_chain: Option<RawChain>,
    #[serde(default)]
    public_key: Option<RawHint>,
    #[serde(default)]
    tlog_entries: Vec<RawTlogEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
struct RawHint {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTlogEntry {
    log_index: Int,
    log_id: RawLogId,
    #[serde(default)]
    kind_version: Option<RawKindVersion>,
    integrated_time: Int,
    #[serde(default)]
    inclusion_promise: Option<RawPromise>,
    #[serde(default)]
    inclusion_proof: Option<RawProof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    log_index: Int,
    root_hash: String,
    tree_size: Int,
    #[serde(default)]
    hashes: Vec<String>,
    #[serde(default)]
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawKindVersion {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessageSignature {
    #[serde(default)]
    message_digest: Option<RawMessageDigest>,
    signature: String,
}

#[derive(Deserialize)]
struct RawMessageDigest {
    #[serde(default)]
    algorithm: String,
    digest: String,
}

/// Who signed: a certificate chain (keyless) or a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// DER certificates, the signing (leaf) certificate first.
    Certificates(Vec<Vec<u8>>),
    /// A public key, named by a hint only.
    PublicKey {
        /// The hint (may be empty).
        hint: String,
    },
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A DSSE envelope (cosign 3's image signatures and attestations).
    Dsse(Envelope),
    /// A signature over an artifact known by its digest (`cosign sign-blob`).
    Message {
        /// The digest's algorithm (`SHA2_256`).
        algorithm: String,
        /// The digest's bytes.
        digest: Vec<u8>,
        /// The signature.
        signature: Vec<u8>,
    },
}

/// One transparency-log entry, as far as an offline check uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id (sha256 of its key's DER).
    pub log_id: Vec<u8>,
    /// The entry's kind (`hashedrekord`, `dsse`), when the bundle says.
    pub kind: String,
    /// The kind's version.
    pub version: String,
    /// When the log integrated it (Unix seconds): the signing time.
    pub integrated_time: i64,
    /// The signed entry timestamp, when there is one.
    pub set: Option<Vec<u8>>,
    /// The entry's canonical body.
    pub body: Vec<u8>,
    /// Its inclusion proof, when the bundle has one.
    pub proof: Option<InclusionProof>,
}

/// The most hashes of an inclusion proof (a tree of 2^64 leaves needs 64).
pub const MAX_PROOF_HASHES: usize = 64;

/// An RFC 6962 inclusion proof of an entry, with the log's signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's index in the tree the proof is for (not the entry's global index).
    pub index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The tree's root hash.
    pub root_hash: Vec<u8>,
    /// The audit path, leaf to root.
    pub hashes: Vec<Vec<u8>>,
    /// The checkpoint (a signed note) naming the tree size and root, when present.
    pub checkpoint: Option<String>,
}

/// A parsed sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Its `mediaType`.
    pub media_type: String,
    /// Who signed.
    pub material: Material,
    /// Its Rekor entries (at most [`MAX_TLOG_ENTRIES`]).
    pub tlog: Vec<TlogEntry>,
    /// What was signed.
    pub content: Content,
}

fn b64(text: &str, what: &'static str) -> Result<Vec<u8>, BundleError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| BundleError::Base64(what))
}

fn proof(raw: &RawProof) -> Result<InclusionProof, BundleError> {
    let unsigned = |n: i64, what: &str| {
        u64::try_from(n)
            .map_err(|_| BundleError::Json(format!("the inclusion proof's {what} is negative")))
    };
    if raw.hashes.len() > MAX_PROOF_HASHES {
        return Err(BundleError::Json(format!(
            "the inclusion proof has {} hashes; a proof needs at most {MAX_PROOF_HASHES}",
            raw.hashes.len()
        )));
    }
    Ok(InclusionProof {
        index: unsigned(raw.log_index.value("inclusionProof.logIndex")?, "logIndex")?,
        tree_size: unsigned(raw.tree_size.value("inclusionProof.treeSize")?, "treeSize")?,
        root_hash: b64(&raw.root_hash, "inclusionProof.rootHash")?,
        hashes: raw
            .hashes
            .iter()
            .map(|h| b64(h, "inclusionProof.hashes"))
            .collect::<Result<_, _>>()?,
        checkpoint: raw.checkpoint.as_ref().map(|c| c.envelope.clone()),
    })
}

impl Bundle {
    /// Parses a bundle's JSON (at most [`MAX_BUNDLE`] bytes).
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        if bytes.len() as u64 > MAX_BUNDLE {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
        let m = raw.verification_material;
        let material = if let Some(c) = m.certificate {
            Material::Certificates(vec![b64(&c.raw_bytes, "certificate")?])
        } else if let Some(chain) = m.x509_certificate_chain {
            let certs = chain
                .certificates
                .iter()
                .take(MAX_CERTIFICATES)
                .map(|c| b64(&c.raw_bytes, "certificate"))
                .collect::<Result<Vec<_>, _>>()?;
            if certs.is_empty() {
                return Err(BundleError::NoMaterial);
            }
            Material::Certificates(certs)
        } else if let Some(k) = m.public_key {
            Material::PublicKey { hint: k.hint }
        } else {
            return Err(BundleError::NoMaterial);
        };
        let tlog = m
            .tlog_entries
            .iter()
            .take(MAX_TLOG_ENTRIES)
            .map(|e| {
                Ok(TlogEntry {
                    log_index: e.log_index.value("logIndex")?,
                    log_id: b64(&e.log_id.key_id, "logId.keyId")?,
                    kind: e
                        .kind_version
                        .as_ref()
                        .map(|k| k.kind.clone())
                        .unwrap_or_default(),
                    version: e
                        .kind_version
                        .as_ref()
                        .map(|k| k.version.clone())
                        .unwrap_or_default(),
                    integrated_time: e.integrated_time.value("integratedTime")?,
                    set: e
                        .inclusion_promise
                        .as_ref()
                        .map(|p| b64(&p.signed_entry_timestamp, "signedEntryTimestamp"))
                        .transpose()?,
                    body: b64(&e.canonicalized_body, "canonicalizedBody")?,
                    proof: e.inclusion_proof.as_ref().map(proof).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, BundleError>>()?;
        let content = match (raw.dsse_envelope, raw.message_signature) {
            (Some(envelope), _) => {
                let bytes =
                    serde_json::to_vec(&envelope).map_err(|e| BundleError::Json(e.to_string()))?;
                Content::Dsse(Envelope::parse(&bytes).map_err(BundleError::Dsse)?)
            }
            (None, Some(m)) => {
                let (algorithm, digest) = match m.message_digest {
                    Some(d) => (d.algorithm, b64(&d.digest, "messageDigest.digest")?),
                    None => (String::new(), Vec::new()),
                };
                Content::Message {
                    algorithm,
                    digest,
                    signature: b64(&m.signature, "messageSignature.signature")?,
                }
            }
            (None, None) => return Err(BundleError::NoContent),
        };
        Ok(Bundle {
            media_type: raw.media_type,
            material,
            tlog,
            content,
        })
    }
}

/// The legacy keyless annotation `dev.sigstore.cosign/bundle` of a `.sig` layer:
/// `{"SignedEntryTimestamp", "Payload": {"body", "integratedTime", "logIndex", "logID"}}`.
pub fn legacy_entry(annotation: &str) -> Result<TlogEntry, BundleError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "SignedEntryTimestamp")]
        set: String,
        #[serde(rename = "Payload")]
        payload: RawPayload,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawPayload {
        body: String,
        integrated_time: Int,
        log_index: Int,
        #[serde(rename = "logID")]
        log_id: String,
    }
    if annotation.len() as u64 > MAX_BUNDLE {
        return Err(BundleError::TooLarge(annotation.len()));
    }
    let raw: Raw = serde_json::from_str(annotation)
        .map_err(|e| BundleError::Json(format!("the Rekor bundle annotation: {e}")))?;
    Ok(TlogEntry {
        log_index: raw.payload.log_index.value("logIndex")?,
        log_id: hex::decode(raw.payload.log_id.trim())
            .map_err(|_| BundleError::Json("the Rekor bundle's logID is not hex".into()))?,
        kind: String::new(),
        version: String::new(),
        integrated_time: raw.payload.integrated_time.value("integratedTime")?,
        set: Some(b64(&raw.set, "SignedEntryTimestamp")?),
        body: b64(&raw.payload.body, "Rekor entry body")?,
        proof: None,
    })
}

/// What a Rekor entry's body says was logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RekorBody {
    /// `hashedrekord`: a signature over an artifact's digest, with the verifier.
    HashedRekord {
        /// The artifact's sha256, lowercase hex.
        sha256: String,
        /// The signature.
        signature: Vec<u8>,
        /// The verifier (a PEM certificate or key), decoded from base64.
        verifier: Vec<u8>,
    },
    /// `dsse` (or `intoto` v0.0.2): an envelope by its payload's hash, with each signature
    /// and verifier.
    Dsse {
        /// The payload's sha256, lowercase hex.
        payload_sha256: String,
        /// Each (signature, verifier PEM).
        signatures: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

impl RekorBody {
    /// Parses an entry's canonical body; the error is a sentence.
    pub fn parse(body: &[u8]) -> Result<RekorBody, String> {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("the Rekor entry's body is not JSON: {e}"))?;
        let text = |p: &str| v.pointer(p).and_then(|x| x.as_str());
        let bytes = |p: &str| -> Result<Vec<u8>, String> {
            let t = text(p).ok_or_else(|| format!("the Rekor entry's body has no {p}"))?;
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| format!("the Rekor entry's {p} is not base64"))
        };
        let sha256 = |p: &str, alg: &str| -> Result<String, String> {
            if text(alg) != Some("sha256") {
                return Err(format!("the Rekor entry's {alg} is not sha256"));
            }
            text(p)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| format!("the Rekor entry's body has no {p}"))
        };
        match text("/kind") {
            Some("hashedrekord") => Ok(RekorBody::HashedRekord {
                sha256: sha256("/spec/data/hash/value", "/spec/data/hash/algorithm")?,
                signature: bytes("/spec/signature/content")?,
                verifier: bytes("/spec/signature/publicKey/content")?,
            }),
            Some("dsse") => {
                let signatures = v
                    .pointer("/spec/signatures")
                    .and_then(|s| s.as_array())
                    .ok_or("the Rekor dsse entry has no signatures")?
                    .iter()
                    .take(super::dsse::MAX_ENVELOPE_SIGNATURES)
                    .map(|s| {
                        let field = |k: &str| {
                            s.get(k)
                                .and_then(|x| x.as_str())
                                .and_then(|t| {
                                    base64::engine::general_purpose::STANDARD.decode(t).ok()
                                })
                                .ok_or_else(|| {
                                    format!("a signature of the Rekor dsse entry has no base64 {k}")
                                })
                        };
                        Ok((field("signature")?, field("verifier")?))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(RekorBody::Dsse {
                    payload_sha256: sha256(
                        "/spec/payloadHash/value",
                        "/spec/payloadHash/algorithm",
                    )?,
                    signatures,
                })
            }
            Some("intoto") if text("/apiVersion") == Some("0.0.2") => {
                // intoto v0.0.2 (older cosign attest, npm provenance): each signature is
                // base64 of the envelope's base64 `sig`, the verifier base64 of the PEM.
                let signatures = v
                    .pointer("/spec/content/envelope/signatures")
                    .and_then(|s| s.as_array())
                    .ok_or("the Rekor intoto entry has no signatures")?
                    .iter()
                    .take(super::dsse::MAX_ENVELOPE_SIGNATURES)
                    .map(|s| {
                        let std = &base64::engine::general_purpose::STANDARD;
                        let field = |k: &str| {
                            s.get(k)
                                .and_then(|x| x.as_str())
                                .and_then(|t| std.decode(t).ok())
                                .ok_or_else(|| {
                                    format!(
                                        "a signature of the Rekor intoto entry has no base64 {k}"
                                    )
                                })
                        };
                        let sig = std.decode(field("sig")?).map_err(
                            |_| "a signature of the Rekor intoto entry is not base64 twice",
                        )?;
                        Ok((sig, field("publicKey")?))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(RekorBody::Dsse {
                    payload_sha256: sha256(
                        "/spec/content/payloadHash/value",
                        "/spec/content/payloadHash/algorithm",
                    )?,
                    signatures,
                })
            }
            Some(other) => Err(format!(
                "the Rekor entry is of kind {other:?}; ferry checks hashedrekord, dsse and intoto v0.0.2 entries"
            )),
            None => Err("the Rekor entry's body has no kind".into()),
        }
    }
}

#[cfg(test)]
mod tests;
